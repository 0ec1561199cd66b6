"""The naive loops against PyTorch (float64 forward and autograd) over many shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_tui.lessons import naive

FAST = settings(max_examples=40, deadline=None)


def torch_conv(x, w, b, stride, padding, dout):
    xt, wt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def torch_pool(kind, x, kernel, stride, dout):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    out = pool(xt, kernel, stride)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), xt.grad.numpy()


def check_conv(x, w, b, stride, padding, seed=0):
    out, cache = naive.conv2d_forward(x, w, b, stride=stride, padding=padding)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    ref_out, ref_dx, ref_dw, ref_db = torch_conv(x, w, b, stride, padding, dout)
    dx, dw, db = naive.conv2d_backward(dout, cache)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=1e-12, atol=1e-12)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float64
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape


def check_pool(kind, x, kernel, stride, seed=0):
    forward = naive.maxpool2d_forward if kind == "max" else naive.avgpool2d_forward
    backward = naive.maxpool2d_backward if kind == "max" else naive.avgpool2d_backward
    out, cache = forward(x, kernel_size=kernel, stride=stride)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    ref_out, ref_dx = torch_pool(kind, x, kernel, kernel if stride is None else stride, dout)
    dx = backward(dout, cache)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-12)
    assert dx.shape == x.shape


def rand(rng, *shape):
    return rng.standard_normal(shape)


# (x shape, w shape, stride, padding): hand-picked corners of the shape space
CONV_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),  # the lesson default
    ((2, 3, 7, 5), (4, 3, 3, 2), (2, 1), (1, 2)),  # non-square everything, (h, w) pairs
    ((1, 2, 6, 6), (3, 2, 1, 1), 1, 0),  # 1×1 kernel
    ((1, 2, 6, 6), (2, 2, 1, 1), 2, 1),  # 1×1 kernel, stride and padding
    ((2, 1, 4, 3), (2, 1, 4, 3), 1, 0),  # kernel equal to the input: 1×1 output
    ((1, 2, 3, 2), (2, 2, 5, 6), 1, (1, 2)),  # kernel equal to the padded input
    ((1, 1, 8, 8), (1, 1, 3, 3), 3, 1),  # stride leaves rows and columns unused
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0),  # one pixel
    ((1, 4, 5, 4), (2, 4, 2, 3), (1, 2), (0, 1)),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding"), CONV_CASES)
def test_conv_matches_torch_on_chosen_shapes(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(1)
    check_conv(rand(rng, *x_shape), rand(rng, *w_shape), rand(rng, w_shape[0]), stride, padding)


@st.composite
def conv_problems(draw):
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    padding = draw(st.sampled_from([(ph, pw), ph]))
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    kh, kw = draw(st.integers(1, h + 2 * ph)), draw(st.integers(1, w + 2 * pw))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, weights, b = rand(rng, n, c, h, w), rand(rng, f, c, kh, kw), rand(rng, f)
    stride = draw(st.sampled_from([(sh, sw), sh]))
    return x, weights, b, stride, padding


@FAST
@given(conv_problems())
def test_conv_matches_torch_property(problem):
    check_conv(*problem)


POOL_CASES = [
    ((1, 1, 4, 4), 2, None),  # the lesson default
    ((2, 3, 5, 5), 3, 2),  # overlapping windows
    ((1, 2, 7, 6), 3, 2),  # overlapping, non-square input
    ((1, 1, 5, 7), (2, 3), (1, 2)),  # non-square kernel, (h, w) stride
    ((2, 1, 3, 3), 3, None),  # kernel equal to the input
    ((1, 1, 6, 6), 1, 1),  # 1×1 windows
    ((1, 2, 7, 7), 2, 3),  # stride larger than the kernel: gaps
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("x_shape", "kernel", "stride"), POOL_CASES)
def test_pool_matches_torch_on_chosen_shapes(kind, x_shape, kernel, stride):
    check_pool(kind, rand(np.random.default_rng(2), *x_shape), kernel, stride)


@st.composite
def pool_problems(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    kernel = draw(st.sampled_from([(kh, kw), min(kh, kw)]))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * 2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rand(rng, n, c, h, w), kernel, stride


@FAST
@given(pool_problems(), st.sampled_from(["max", "avg"]))
def test_pool_matches_torch_property(problem, kind):
    check_pool(kind, *problem)


def test_maxpool_ties_go_to_the_first_max_like_torch():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [2.0, 2.0, 2.0]]]])
    check_pool("max", x, 2, 1)
    _, cache = naive.maxpool2d_forward(x, 2, 1)
    assert cache.argmax[0, 0, 0, 0].tolist() == [0, 0]  # four-way tie 1, 1 / 1, 0: first wins
    assert cache.argmax[0, 0, 1, 1].tolist() == [2, 1]  # 0, 1 / 2, 2: first of the 2s


def test_maxpool_overlapping_windows_accumulate_on_a_shared_max():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 9.0  # the centre is in all four 3×3 windows of stride 2
    out, cache = naive.maxpool2d_forward(x, kernel_size=3, stride=2)
    assert out.tolist() == [[[[9.0, 9.0], [9.0, 9.0]]]]
    dx = naive.maxpool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    assert dx[0, 0, 2, 2] == 10.0
    assert np.count_nonzero(dx) == 1


def test_float32_stays_float32_and_integers_become_float64():
    x32 = np.ones((1, 1, 3, 3), dtype=np.float32)
    w32 = np.ones((1, 1, 2, 2), dtype=np.float32)
    out, cache = naive.conv2d_forward(x32, w32, np.zeros(1, dtype=np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in naive.conv2d_backward(np.ones_like(out), cache))
    assert naive.maxpool2d_forward(x32)[0].dtype == np.float32
    out, _ = naive.conv2d_forward(np.ones((1, 1, 3, 3), int), np.ones((1, 1, 2, 2), int), [1])
    assert out.dtype == np.float64 and out.tolist() == [[[[5.0, 5.0], [5.0, 5.0]]]]
    assert naive.avgpool2d_forward(np.arange(16).reshape(1, 1, 4, 4))[0].dtype == np.float64


@pytest.mark.parametrize(
    ("n", "kernel", "stride", "padding", "expected"),
    [(5, 3, 1, 0, 3), (5, 3, 2, 1, 3), (7, 3, 2, 0, 3), (4, 4, 1, 0, 1), (6, 1, 3, 0, 2)],
)
def test_output_size(n, kernel, stride, padding, expected):
    assert naive.output_size(n, kernel, stride, padding) == expected
    formula = naive.output_size_formula(n, kernel, stride, padding)
    assert formula == f"⌊({n} + 2·{padding} − {kernel})/{stride}⌋ + 1 = {expected}"
