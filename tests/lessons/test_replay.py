"""The lesson screen's UI-free replay model: state at any step, cursor jumps, highlights, text.

The replay must show exactly what the naive loops computed: the state at step K is checked
against applying the first K recorded events one by one, and the end state against the result.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_tui.errors import UsageError
from cnn_tui.lessons import naive
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.replay import (
    READ,
    WINDOW,
    WRITE,
    Replay,
    build_replays,
    format_array,
    grid_specs,
    make_example,
    parse_array,
    size_formula,
)
from cnn_tui.lessons.step_text import fmt_num


def state_by_hand(replay: Replay, position: int, name: str) -> np.ndarray:
    """The array `name` after applying events[:position] one at a time (NaN = never written)."""
    array = np.full(replay.targets[name], np.nan)
    for event in replay.events[:position]:
        if event.target == name:
            array[event.target_index] = event.after
    return array


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.fixture(scope="module")
def conv():
    example = build_example("conv", channels=2, filters=2, padding=1, seed=3)
    forward, backward = build_replays(example)
    return example, forward, backward


def test_the_end_of_each_replay_is_the_naive_result(conv) -> None:
    example, forward, backward = conv
    out, cache = example.forward()
    grads = example.backward(cache)
    forward.seek(forward.total)
    backward.seek(backward.total)
    assert np.array_equal(forward.values("out"), out)
    assert np.array_equal(backward.values("db"), grads["db"])
    assert np.array_equal(backward.values("dw"), grads["dw"])
    ph, pw = example.padding
    dx = backward.values("dx_pad")[:, :, ph:-ph, pw:-pw]
    assert np.array_equal(dx, grads["dx"])


def test_nothing_is_computed_at_step_zero(conv) -> None:
    _, forward, _ = conv
    forward.seek(0)
    assert np.isnan(forward.values("out")).all()
    assert forward.current is None
    assert forward.highlights() == {}
    assert "Press →" in forward.step_lines()[0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-50, max_value=2000), min_size=1, max_size=12))
def test_any_sequence_of_jumps_gives_the_state_of_the_first_k_events(jumps) -> None:
    example = build_example("conv", height=4, width=4, channels=2, kernel=2, padding=1, seed=1)
    _, backward = build_replays(example)
    for jump in jumps:
        position = backward.step(jump) if abs(jump) < 5 else backward.seek(jump)
        assert 0 <= position <= backward.total
        for name in ("db", "dw", "dx_pad"):
            assert same(backward.values(name), state_by_hand(backward, position, name))


def test_stepping_back_undoes_exactly_one_event(conv) -> None:
    _, forward, _ = conv
    forward.seek(37)
    before = forward.values("out").copy()
    forward.step(1)
    forward.step(-1)
    assert same(forward.values("out"), before)
    assert forward.position == 37


def test_positions_are_clamped(conv) -> None:
    _, forward, _ = conv
    assert forward.seek(-5) == 0
    assert forward.seek(forward.total + 100) == forward.total


def test_next_cell_finishes_one_output_cell_at_a_time(conv) -> None:
    example, forward, _ = conv
    forward.seek(0)
    n, f, oh, ow = example.output_shape
    assert forward.cell_count == n * f * oh * ow
    steps_per_cell = 1 + example.x.shape[1] * example.kernel[0] * example.kernel[1]
    forward.next_cell()
    assert forward.position == steps_per_cell
    assert np.count_nonzero(~np.isnan(forward.values("out"))) == 1
    forward.step(3)  # into the second cell: the next jump finishes it
    forward.next_cell()
    assert forward.position == 2 * steps_per_cell
    forward.prev_cell()
    assert forward.position == steps_per_cell
    forward.step(2)  # inside a cell, going back drops the partial cell
    forward.prev_cell()
    assert forward.position == steps_per_cell
    forward.seek(forward.total)
    assert forward.next_cell() == forward.total


def test_backward_phases_run_in_the_naive_order(conv) -> None:
    _, _, backward = conv
    assert [p.phase for p in backward.phases] == ["grad_bias", "grad_weight", "grad_input"]
    backward.seek(0)
    labels = []
    for _ in range(4):
        backward.next_phase()
        labels.append(backward.phase_at().label)
    # step 0 is db's start: the jumps land on the start of dW, dX, db (round again), dW,
    # before each phase's first step
    assert labels == ["backward · dW", "backward · dX", "backward · db", "backward · dW"]
    assert backward.position == backward.phases[1].start and backward.current is None


def test_a_mac_step_highlights_its_window_operands_and_output(conv) -> None:
    example, forward, _ = conv
    forward.seek(0)
    forward.step(5)  # bias, then the 4th multiply-add of out[0,0,0,0]
    event = forward.current
    assert event.kind == "mac"
    marks = forward.highlights()
    assert marks["out"] == {(0, 0, 0, 0): WRITE}
    x_index = event.operands[0].index
    w_index = event.operands[1].index
    assert marks["x_pad"][x_index] == READ
    assert marks["w"][w_index] == READ
    channels, (kh, kw) = example.x.shape[1], example.kernel
    assert len(marks["x_pad"]) == channels * kh * kw  # the window in every channel
    assert sum(role == WINDOW for role in marks["x_pad"].values()) == channels * kh * kw - 1
    assert forward.view_indices() == {"n": 0, "f": 0, "c": event.loop("c")}


def test_the_step_text_spells_out_the_arithmetic(conv) -> None:
    _, forward, _ = conv
    forward.seek(0)
    forward.step(1)
    first, numbers, _ = forward.step_lines()
    assert first.startswith("out[f=0, 0,0] = b[0]")
    forward.step(1)
    event = forward.current
    first, numbers, cell = forward.step_lines()
    assert first == "out[f=0, 0,0] += x_pad[c=0, 0,0]·w[f=0, c=0, 0,0]"
    x, w = (o.value for o in event.operands)
    # every number as its array's grid writes it (the same decimals, the same minus sign)
    assert numbers.startswith(f"= {forward.number_format('x_pad')(x)}·")
    assert numbers.endswith(f"→ {forward.number_format('out')(event.after)}")
    assert cell.startswith("out[f=0, 0,0] = b + Σ_c Σ_ki,kj x·w")


def test_the_channel_sum_shows_each_channels_partial_sum(conv) -> None:
    example, forward, _ = conv
    per_channel = example.kernel[0] * example.kernel[1]
    forward.seek(1 + per_channel + 2)  # bias, all of channel 0, two steps of channel 1
    cell = forward.step_lines()[2]
    assert "c0: " in cell and "c1: " in cell and "…" in cell
    assert "so far" in cell
    forward.seek(1 + 2 * per_channel)
    assert "done" in forward.step_lines()[2]


def test_gradient_steps_name_their_sums(conv) -> None:
    _, _, backward = conv
    backward.seek(1)
    assert backward.step_lines()[0] == "db[0] += dout[f=0, 0,0]"
    assert backward.step_lines()[2].startswith("db[0] = Σ_n,i,j dout")
    backward.seek(backward.phases[1].start + 1)
    assert backward.step_lines()[2].startswith("dw[f=0, c=0, 0,0] = Σ_n,i,j x_pad·dout")
    backward.seek(backward.phases[2].start + 1)
    assert backward.step_lines()[2].startswith("spreading dout[f=0, 0,0] over its window")


def test_max_pool_routing_marks_the_window_and_its_max() -> None:
    example = build_example("pool", height=4, width=4, kernel=2, seed=2)
    forward, backward = build_replays(example)
    backward.seek(1)
    event = backward.current
    assert event.kind == "route"
    marks = backward.highlights()
    assert marks["dx"][event.target_index] == WRITE  # the max's cell gets the gradient
    assert marks["x"][event.target_index] == READ
    assert len(marks["x"]) == 4  # the 2×2 window of dout[0,0,0,0]
    # dx marks the same window (a cropped dx holds still within it), the rest of it WINDOW
    assert set(marks["dx"]) == set(marks["x"])
    assert {mark for index, mark in marks["dx"].items() if index != event.target_index} == {WINDOW}
    assert "was the max" in backward.step_lines()[0]
    assert "x" in backward.grid_names and "dx" in backward.grid_names


def test_max_pool_compare_text_keeps_the_running_max() -> None:
    example = build_example("pool", height=4, width=4, kernel=2, seed=2)
    forward, _ = build_replays(example)
    forward.seek(1)
    assert forward.step_lines()[1].startswith("= max(-∞, ")
    forward.seek(2)
    assert forward.step_lines()[0] == "out[0,0] = max(out[0,0], x[0,1])"


def test_average_pool_steps_scale_by_the_window_size() -> None:
    example = build_example("pool", height=4, width=4, kernel=2, pool_type="avg", seed=2)
    forward, backward = build_replays(example)
    forward.seek(1)
    assert forward.step_lines()[0] == "out[0,0] += x[0,0]·1/4"
    backward.seek(1)
    assert backward.step_lines()[0] == "dx[0,0] += dout[0,0]·1/4"


def test_average_pool_running_line_is_a_partial_sum_of_x_over_4() -> None:
    """Finding 13e: "window mean so far: -0.450 (1/4)" after one x/4 was a partial sum, not a
    mean; the running line says so, and names the mean once the window is done."""
    example = build_example("pool", height=4, width=4, kernel=2, pool_type="avg", seed=2)
    forward, _ = build_replays(example)
    x = example.x[0, 0]
    for k in range(1, 5):  # x[0,0], x[0,1], x[1,0], x[1,1]: the window row by row
        forward.seek(k)
        line = forward.step_lines()[-1]
        partial = x[:2, :2].flat[:k].sum() / 4
        assert forward.write("out", partial) in line and f"({k}/4)" in line
        assert "mean so far" not in line
        if k < 4:
            assert line.startswith("sum of x/4 so far: ")
        else:
            assert line.startswith("sum of x/4 = the window's mean: ")
            assert np.isclose(partial, x[:2, :2].mean())


def test_grid_specs_follow_the_view_and_map_marks_to_rows_and_columns(conv) -> None:
    example, forward, _ = conv
    forward.seek(1 + 9 + 4)  # channel 1 of out[0,0,0,0]
    view = forward.view_indices()
    specs = {spec.name: spec for spec in grid_specs(forward, view, example.padding)}
    assert list(specs) == ["x_pad", "w", "b", "out"]
    assert specs["x_pad"].title == "x_pad[c=1] input, padded"
    assert specs["x_pad"].pad == example.padding
    assert specs["w"].title == "w[f=0, c=1] kernel"
    assert specs["out"].marks == {(0, 0): WRITE}
    event = forward.current
    r, s = event.operands[0].index[2:]
    assert specs["x_pad"].marks[(r, s)] == READ
    assert specs["b"].marks == {(0, 0): WINDOW}
    other = {spec.name: spec for spec in grid_specs(forward, {**view, "c": 0}, example.padding)}
    assert all(role == WINDOW for role in other["x_pad"].marks.values())
    assert np.isnan(specs["out"].values).sum() == specs["out"].values.size - 1
    assert not np.isnan(specs["out"].final).any()  # the column width is known up front


def test_a_number_of_no_array() -> None:
    assert fmt_num(-1.3) == "-1.3" and fmt_num(0.4200001) == "0.42" and fmt_num(-0.0) == "0"
    assert fmt_num(float("-inf")) == "-∞" and fmt_num(float("nan")) == "·"


def test_size_formula_shows_the_numbers() -> None:
    conv = build_example("conv", padding=1)
    assert size_formula(conv) == (
        "output size: OH = OW = ⌊(H + 2P − K)/S⌋ + 1 = ⌊(5 + 2·1 − 3)/1⌋ + 1 = 5"
    )
    pool = build_example("pool", height=6, width=5, kernel=2, stride=(2, 1))
    text = size_formula(pool)
    assert "OH = ⌊(6 − 2)/2⌋ + 1 = 3" in text and "OW = ⌊(5 − 2)/1⌋ + 1 = 4" in text


def test_arrays_round_trip_through_their_text() -> None:
    array = np.arange(2 * 3 * 4, dtype=float).reshape(1, 2, 3, 4) / 4 - 1
    text = format_array("x", array)
    assert text.startswith("# x[0, 0]\n-1, -0.75, -0.5, -0.25\n")
    assert np.array_equal(parse_array("x", text, array.shape), array)
    vector = np.array([0.5, -2.0])
    assert np.array_equal(parse_array("b", format_array("b", vector), (2,)), vector)
    assert parse_array("b", "1 −2", (2,)).tolist() == [1.0, -2.0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1, 2\n3", "line 2: expected 2 numbers, got 1"),
        ("1, x\n3, 4", "line 1: not a number"),
        ("1, 2", "expected 2 rows of 2 numbers, got 1 rows"),
        ("1, inf\n3, 4", "numbers must be finite"),
    ],
)
def test_bad_array_text_says_which_line(text: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_array("w", text, (1, 1, 2, 2))


def test_make_example_applies_edited_arrays_and_checks_their_shape() -> None:
    w = np.ones((1, 1, 3, 3))
    example = make_example("conv", {"seed": 4}, {"w": w})
    assert np.array_equal(example.w, w)
    out, _ = example.forward()
    expected, _ = naive.conv2d_forward(example.x, w, example.b)
    assert np.array_equal(out, expected)
    with pytest.raises(UsageError, match="w: the edited values have shape"):
        make_example("conv", {"kernel": 2}, {"w": w})


def test_the_model_imports_neither_textual_nor_torch() -> None:
    code = (
        "import sys, cnn_tui.lessons.replay\n"
        "print(sorted(m for m in ('textual', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_event_kind_of_every_op_has_a_description() -> None:
    for op, params in (("conv", {"channels": 2}), ("pool", {}), ("pool", {"pool_type": "avg"})):
        for replay in build_replays(build_example(op, **params)):
            for position in (1, replay.total // 2, replay.total):
                replay.seek(position)
                lines = replay.step_lines()
                assert len(lines) == 3 and all(lines)
                assert not any("nan" in line for line in lines)
                assert math.isfinite(replay.current.after)
