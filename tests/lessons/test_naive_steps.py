"""Step events of the naive engine: counts, arithmetic, replay; and the numerical gradient check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_tui.lessons import naive
from cnn_tui.lessons.naive import StepEvent


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def conv_problem(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )


def check_arithmetic(event: StepEvent) -> None:
    """`after` is exactly the arithmetic the event describes, applied to `before`."""
    values = [o.value for o in event.operands]
    if event.kind == "bias":
        assert event.before == 0.0 and event.after == values[0]
    elif event.kind == "mac":
        assert event.after == event.before + values[0] * values[1]
    elif event.kind in ("add", "route"):
        assert event.after == event.before + values[0]
    elif event.kind == "compare":
        assert event.after == (values[0] if values[0] > event.before else event.before)
    else:
        raise AssertionError(f"unknown kind {event.kind}")


def replay(events, shapes, start=0.0):
    """Rebuild the written arrays from the events alone, checking each `before` on the way."""
    arrays = {name: np.full(shape, start) for name, shape in shapes.items()}
    for event in events:
        check_arithmetic(event)
        target = arrays[event.target]
        if not (event.kind == "compare" and event.before == -math.inf):
            assert event.before == target[event.target_index], event
        target[event.target_index] = event.after
    return arrays


def check_operands(events, arrays):
    for event in events:
        for operand in event.operands:
            if operand.name == "scale":
                assert operand.index == ()
                continue
            assert operand.value == arrays[operand.name][operand.index], (event, operand)


CONV_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    ((2, 2, 5, 4), (3, 2, 2, 3), (2, 1), (1, 2)),
    ((1, 3, 3, 3), (2, 3, 1, 1), 2, 1),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), CONV_CASES)
def test_conv_events_count_replay_and_read_the_right_cells(x_shape, w_shape, stride, padding):
    x, w, b = conv_problem(x_shape, w_shape)
    (out, cache), forward = naive.collect_steps(naive.conv2d_forward, x, w, b, stride, padding)
    n, c, h, wd = x_shape
    f, _, kh, kw = w_shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    cells, macs = n * f * oh * ow, n * f * oh * ow * c * kh * kw

    assert len(forward) == cells + macs
    assert [e.step for e in forward] == list(range(len(forward)))
    assert [e.kind for e in forward].count("bias") == cells
    rebuilt = replay(forward, {"out": out.shape})
    np.testing.assert_array_equal(rebuilt["out"], out)
    check_operands(forward, {"x_pad": cache.x_pad, "w": w, "b": b})
    for e in forward:
        assert e.op == "conv2d" and e.phase == "forward" and e.target == "out"
        assert e.target_index == tuple(e.loop(k) for k in "nfij")
        if e.kind == "mac":
            assert [name for name, _ in e.loops] == ["n", "f", "i", "j", "c", "ki", "kj"]
            xi = e.operands[0].index
            row, col = e.loop("i") * sh + e.loop("ki"), e.loop("j") * sw + e.loop("kj")
            assert xi == (e.loop("n"), e.loop("c"), row, col)
            assert e.operands[1].index == (e.loop("f"), e.loop("c"), e.loop("ki"), e.loop("kj"))

    dout = np.random.default_rng(5).standard_normal(out.shape)
    (dx, dw, db), backward = naive.collect_steps(naive.conv2d_backward, dout, cache)
    phases = [e.phase for e in backward]
    assert phases == ["grad_bias"] * cells + ["grad_weight"] * macs + ["grad_input"] * macs
    assert [e.step for e in backward] == list(range(len(backward)))
    assert naive.count_steps("conv2d", x_shape, w_shape, stride=stride, padding=padding) == {
        "forward": len(forward),
        "grad_bias": cells,
        "grad_weight": macs,
        "grad_input": macs,
    }
    rebuilt = replay(backward, {"db": db.shape, "dw": dw.shape, "dx_pad": cache.x_pad.shape})
    np.testing.assert_array_equal(rebuilt["db"], db)
    np.testing.assert_array_equal(rebuilt["dw"], dw)
    np.testing.assert_array_equal(rebuilt["dx_pad"][:, :, ph : ph + h, pw : pw + wd], dx)
    check_operands(backward, {"x_pad": cache.x_pad, "w": w, "dout": dout})
    for e in backward:
        if e.phase == "grad_input":
            row, col = e.loop("i") * sh + e.loop("ki"), e.loop("j") * sw + e.loop("kj")
            assert e.target_index == (e.loop("n"), e.loop("c"), row, col)
        if e.phase == "grad_weight":
            assert e.target_index == tuple(e.loop(k) for k in ("f", "c", "ki", "kj"))


POOL_CASES = [((1, 1, 4, 4), 2, None), ((2, 2, 5, 5), 3, 2), ((1, 1, 5, 6), (2, 3), (1, 2))]


@pytest.mark.parametrize(("x_shape", "kernel", "stride"), POOL_CASES)
def test_maxpool_events(x_shape, kernel, stride):
    x = np.random.default_rng(3).standard_normal(x_shape)
    (out, cache), forward = naive.collect_steps(naive.maxpool2d_forward, x, kernel, stride)
    kh, kw = pair(kernel)
    cells = out.size
    assert len(forward) == cells * kh * kw
    assert {e.kind for e in forward} == {"compare"}
    firsts = [e for e in forward if e.loop("ki") == 0 and e.loop("kj") == 0]
    assert len(firsts) == cells and all(e.before == -math.inf for e in firsts)
    np.testing.assert_array_equal(replay(forward, {"out": out.shape})["out"], out)
    check_operands(forward, {"x": x})

    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx, backward = naive.collect_steps(naive.maxpool2d_backward, dout, cache)
    assert len(backward) == cells
    assert {(e.kind, e.phase, e.target) for e in backward} == {("route", "grad_input", "dx")}
    np.testing.assert_array_equal(replay(backward, {"dx": x.shape})["dx"], dx)
    check_operands(backward, {"dout": dout})
    for e in backward:  # routed to the window's max
        assert x[e.target_index] == out[e.operands[0].index]
    counts = naive.count_steps("maxpool2d", x_shape, kernel_size=kernel, stride=stride)
    assert counts == {"forward": len(forward), "grad_input": len(backward)}


@pytest.mark.parametrize(("x_shape", "kernel", "stride"), POOL_CASES)
def test_avgpool_events(x_shape, kernel, stride):
    x = np.random.default_rng(3).standard_normal(x_shape)
    (out, cache), forward = naive.collect_steps(naive.avgpool2d_forward, x, kernel, stride)
    kh, kw = pair(kernel)
    assert len(forward) == out.size * kh * kw
    assert {(e.kind, e.operands[1].value) for e in forward} == {("mac", 1 / (kh * kw))}
    np.testing.assert_array_equal(replay(forward, {"out": out.shape})["out"], out)
    check_operands(forward, {"x": x})
    dout = np.random.default_rng(4).standard_normal(out.shape)
    dx, backward = naive.collect_steps(naive.avgpool2d_backward, dout, cache)
    assert len(backward) == out.size * kh * kw
    np.testing.assert_array_equal(replay(backward, {"dx": x.shape})["dx"], dx)
    check_operands(backward, {"dout": dout})
    counts = naive.count_steps("avgpool2d", x_shape, kernel_size=kernel, stride=stride)
    assert counts == {"forward": len(forward), "grad_input": len(backward)}


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    c=st.integers(1, 2),
    f=st.integers(1, 2),
)
def test_conv_event_counts_equal_trip_counts_property(h, w, k, s, p, c, f):
    if k > min(h, w) + 2 * p:
        return
    x, weights, b = conv_problem((1, c, h, w), (f, c, k, k))
    (out, cache), forward = naive.collect_steps(naive.conv2d_forward, x, weights, b, s, p)
    _, backward = naive.collect_steps(naive.conv2d_backward, np.ones_like(out), cache)
    o = ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1)
    assert len(forward) == f * o * (1 + c * k * k)
    assert len(backward) == f * o + 2 * f * o * c * k * k


def test_no_events_are_built_without_on_step(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a StepEvent was built with on_step=None")

    monkeypatch.setattr(naive, "StepEvent", refuse)
    monkeypatch.setattr(naive, "Operand", refuse)
    x, w, b = conv_problem((1, 2, 4, 4), (2, 2, 3, 3))
    out, cache = naive.conv2d_forward(x, w, b, padding=1)
    naive.conv2d_backward(out, cache)
    for forward, backward in (
        (naive.maxpool2d_forward, naive.maxpool2d_backward),
        (naive.avgpool2d_forward, naive.avgpool2d_backward),
    ):
        out, cache = forward(x, 3, 1)
        backward(out, cache)


def test_step_event_is_immutable_and_loop_lookup_works():
    (_, _), events = naive.collect_steps(
        naive.conv2d_forward, *conv_problem((1, 1, 3, 3), (1, 1, 2, 2))
    )
    event = events[1]
    assert (event.loop("c"), event.loop("ki"), event.loop("kj")) == (0, 0, 0)
    with pytest.raises(KeyError):
        event.loop("z")
    with pytest.raises(AttributeError):
        event.after = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- gradient check


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding"),
    [((1, 1, 5, 5), (1, 1, 3, 3), 1, 0), ((2, 2, 5, 4), (2, 2, 3, 2), (2, 1), (1, 0))],
)
def test_gradient_check_conv_is_tiny(x_shape, w_shape, stride, padding):
    x, w, b = conv_problem(x_shape, w_shape)
    check = naive.gradient_check("conv2d", x, w, b, stride=stride, padding=padding)
    assert check.passed() and check.max_error < 1e-6
    assert check.dw is not None and check.db is not None
    assert check.summary().startswith("max relative error ")


@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
def test_gradient_check_pool_is_tiny(op):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    check = naive.gradient_check(op, x, kernel_size=3, stride=2)
    assert check.max_error < 1e-6 and check.dw is None and check.db is None


def test_gradient_check_skips_tied_maxima_and_still_passes():
    x = np.array([[[[0.5, 0.5, 0.1, 0.2], [0.0, 0.3, 0.9, 0.4]]]])
    check = naive.gradient_check("maxpool2d", x, kernel_size=2)
    assert check.skipped == 2 and check.passed()
    assert "2 tied max entries skipped" in check.summary()


def test_gradient_check_catches_a_wrong_conv_gradient(monkeypatch):
    x, w, b = conv_problem((1, 2, 4, 4), (2, 2, 3, 3))
    correct = naive.conv2d_backward

    def flipped_kernel(dout, cache):  # a plausible bug: dx computed with the kernel flipped
        dx, dw, db = correct(dout, cache)
        flipped = naive.ConvCache(
            cache.x, cache.x_pad, cache.w[:, :, ::-1, ::-1], cache.b, cache.stride, cache.padding
        )
        return correct(dout, flipped)[0], dw, db

    monkeypatch.setattr(naive, "conv2d_backward", flipped_kernel)
    check = naive.gradient_check("conv2d", x, w, b, padding=1)
    assert check.dx > 1e-2 and not check.passed()
    assert check.dw < 1e-6 and check.db < 1e-6


def test_gradient_check_catches_a_wrong_pool_gradient(monkeypatch):
    correct = naive.avgpool2d_backward
    monkeypatch.setattr(naive, "avgpool2d_backward", lambda d, c: correct(d, c) * 2)
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    assert naive.gradient_check("avgpool2d", x).dx > 0.1


def test_gradient_check_samples_big_arrays():
    x, w, b = conv_problem((1, 1, 12, 12), (1, 1, 3, 3))
    check = naive.gradient_check("conv2d", x, w, b, max_entries=10)
    assert check.checked == 10 + 9 + 1 and check.passed()
