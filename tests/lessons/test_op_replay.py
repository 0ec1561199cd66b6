"""The conv / pool lesson's UI-free model (`OpReplay`): its passes, the phase walk, the hints and
the status line, without Textual."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import leftovers_text, size_formula
from cnn_tui.lessons.rules import dout_source


def where(model: OpReplay) -> tuple[str, str, int]:
    """The pass on screen, its phase and its position."""
    return model.mode, model.replay.phase_at().phase, model.position


def test_next_phase_walks_forward_db_dw_dx_transposed_and_back() -> None:
    model = OpReplay(build_example("conv", padding=1))
    assert set(model.replays) == {"forward", "backward", "transposed"} and model.has_transposed
    model.step(2)
    phases = []
    for _ in range(5):
        model.next_phase()
        phases.append(where(model)[:2])
    assert phases == [
        ("backward", "grad_bias"),
        ("backward", "grad_weight"),
        ("backward", "grad_input"),
        ("transposed", "grad_input_transposed"),
        ("forward", "forward"),
    ]
    assert model.position == 2  # each pass keeps its own position
    model.next_phase()
    assert where(model) == ("backward", "grad_bias", 0)  # before the first phase's first step


def test_next_phase_lands_before_the_phases_first_step() -> None:
    """`p` lands on a phase's first step not yet done: at its start, nothing of it applied."""
    model = OpReplay(build_example("conv", height=8, width=8, padding=1), "backward")
    db, dw, dx = model.replay.phases
    model.next_phase()
    assert where(model) == ("backward", "grad_weight", dw.start)
    assert model.replay.current is None and model.replay.highlights() == {}
    assert model.replay.cell_number() == 1  # db's one cell done, none of dW's begun
    assert model.step_lines()[0].startswith("backward · dW: 576 steps, none run yet.")
    assert model.replay.grid_names == ["x_pad", "dout", "w", "dw"]
    model.step(1)  # → runs dW's first step
    assert model.replay.current is model.replay.events[dw.start]
    assert model.replay.current.phase == "grad_weight" and model.position == dw.start + 1
    model.step(-1)  # back: the end of db, as any other position
    assert where(model) == ("backward", "grad_bias", dw.start)
    model.next_phase()
    model.next_phase()
    assert where(model) == ("backward", "grad_input", dx.start)
    assert model.replay.values("dx_pad")[0, 0, 0, 0] != model.replay.values("dx_pad")[0, 0, 0, 0]
    model.next_cell()  # the first cell of dX, not of db
    assert model.replay.current.phase == "grad_input"
    model.prev_cell()  # back to the end of dW's last cell: dW on screen again
    assert where(model) == ("backward", "grad_weight", dx.start)
    model.next_phase()
    assert where(model) == ("backward", "grad_input", dx.start)
    model.next_phase()
    assert model.mode == "transposed"


def test_phases_hide_the_arrays_they_do_not_use() -> None:
    """The forward output is no operand of the backward pass; each phase shows what it reads,
    the kernel, and what it writes."""
    model = OpReplay(build_example("conv", padding=1), "backward")
    shown = []
    for _ in range(3):
        model.next_phase() if shown else None
        shown.append([spec.name for spec in model.grid_specs({})])
    assert shown == [["dout", "w", "db"], ["x_pad", "dout", "w", "dw"], ["w", "dout", "dx_pad"]]
    pool = OpReplay(build_example("pool"), "backward")
    assert [spec.name for spec in pool.grid_specs({})] == ["x", "dout", "dx"]


def test_pooling_has_no_transposed_view() -> None:
    model = OpReplay(build_example("pool"))
    assert not model.has_transposed and set(model.replays) == {"forward", "backward"}
    model.next_phase()
    assert where(model) == ("backward", "grad_input", 0)
    model.next_phase()
    assert model.mode == "forward"
    model.toggle_transposed()  # nothing to toggle
    assert model.mode == "forward"
    # a pass the example lacks falls back to its backward pass
    assert OpReplay(build_example("pool"), "transposed").mode == "backward"
    with pytest.raises(ValueError, match="mode must be one of"):
        OpReplay(build_example("pool"), "sideways")


def test_toggles_switch_the_pass_on_screen() -> None:
    model = OpReplay(build_example("conv"))
    model.toggle_backward()
    assert model.mode == "backward"
    model.toggle_transposed()
    assert model.mode == "transposed" and model.replay is model.replays["transposed"]
    model.toggle_transposed()
    assert model.mode == "backward"
    model.toggle_transposed()
    model.toggle_backward()  # from the transposed view: the forward pass
    assert model.mode == "forward"


def test_moves_act_on_the_pass_on_screen() -> None:
    model = OpReplay(build_example("conv"))
    assert (model.position, model.total) == (0, 90)
    assert model.next_cell() == 10 and model.replay.cell_number() == 1
    assert model.prev_cell() == 0
    assert model.jump("end") == 90 and model.jump("start") == 0
    model.step(3)
    model.toggle_backward()
    assert model.position == 0 and model.replays["forward"].position == 3
    assert model.axis_sizes() == {"n": 1, "c": 1, "f": 1}
    assert OpReplay(build_example("conv", channels=2, filters=3, batch=2)).axis_sizes() == {
        "n": 2,
        "c": 2,
        "f": 3,
    }


def test_the_panel_says_the_size_formula_where_dout_comes_from_and_what_to_press() -> None:
    example = build_example("conv", padding=1)
    model = OpReplay(example)
    assert model.info_line() == size_formula(example)
    model.jump("end")
    assert model.info_line().startswith("forward pass done: press b for the backward pass")
    model.toggle_backward()
    assert model.info_line() == dout_source(example)
    model.jump("end")
    assert "press t to see dX again as a transposed convolution" in model.info_line()
    model.toggle_transposed()
    model.jump("end")
    assert "the same dx as the dX phase" in model.info_line()
    pool = OpReplay(build_example("pool"), "backward")
    pool.jump("end")
    assert pool.info_line().endswith("press b for the forward pass, m for the other pooling")


def test_the_status_line_names_the_phase_the_step_the_cell_and_the_example() -> None:
    model = OpReplay(build_example("conv"))
    assert model.status_parts(5) == [
        "conv2d · forward",
        "step 0 / 90",
        "cell 0 / 9",
        "5 steps/s",
        "seed 0",
    ]
    model.next_phase()  # db 9 steps, dW and dX 9·9 each
    assert model.status_parts(20)[:2] == ["conv2d · backward · db", "step 0 / 171"]
    named = OpReplay(build_example("conv", example="edge-detect", conv_mode="convolution"))
    assert named.status_parts(1)[-2:] == [
        "true convolution, kernel rotated 180°",
        "example edge-detect, seed 0",
    ]


def test_the_model_imports_neither_textual_nor_torch() -> None:
    code = (
        "import sys, cnn_tui.lessons.op_replay\n"
        "print(sorted(m for m in ('textual', 'torch', 'argparse') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("params", "rows", "cols"),
    [
        ({"height": 8, "width": 8, "stride": 2}, (7,), (7,)),
        ({"height": 8, "width": 8, "stride": 2, "padding": 1}, (9,), (9,)),
        ({"height": 7, "width": 8, "stride": 3, "padding": 1}, (), (9,)),
        ({"height": 9, "width": 9, "stride": 3, "kernel": 2}, (8,), (8,)),
        ({"height": 10, "width": 6, "stride": 4}, (7, 8, 9), (3, 4, 5)),
        ({"height": 9, "width": 9, "stride": 2, "dilation": 2}, (), ()),
        ({"height": 5, "width": 5}, (), ()),
    ],
)
def test_stride_leftovers_are_the_lines_no_window_reaches(params, rows, cols) -> None:
    """The rows / columns of x_pad no output window reaches: the dX phase writes none of their
    cells, their gradient is 0, and they are what conv_transpose2d's output_padding adds."""
    example = build_example("conv", **params)
    model = OpReplay(example)
    left = model.leftovers
    assert (left.rows, left.cols) == (rows, cols)
    backward = model.replays["backward"]
    written = {
        e.target_index[2:] for e in backward.events if e.phase == "grad_input"
    }  # every (row, col) of dx_pad some step adds to
    height, width = example.x_pad.shape[2:]
    lines = {(r, c) for r, c in np.ndindex(height, width) if r in rows or c in cols}
    untouched = {(r, c) for r in range(height) for c in range(width)} - written
    # a stride wider than the window (or a dilation) also skips lines between windows; those
    # the transposed view does reach, with zero products
    assert lines <= untouched
    gaps = example.stride[0] > example.dilation[0] * (example.kernel[0] - 1) + 1
    assert (lines == untouched) or gaps or example.dilation != (1, 1)
    assert left.cells == len(lines)
    grads = example.backward(example.forward()[1])
    ph, pw = example.padding
    for r in left.input_lines(0):
        assert not grads["dx"][:, :, r, :].any() and ph <= r + ph < ph + example.x.shape[2]
    for c in left.input_lines(1):
        assert not grads["dx"][:, :, :, c].any() and pw <= c + pw < pw + example.x.shape[3]
    # the transposed convolution reaches exactly the other rows: its output, before
    # output_padding, is (OH − 1)·S − 2P + D·(K − 1) + 1 rows of x
    (sh, sw), (dh, dw), (kh, kw) = example.stride, example.dilation, example.kernel
    oh, ow = example.output_shape[2:]
    reached = (
        (oh - 1) * sh - 2 * ph + dh * (kh - 1) + 1,
        (ow - 1) * sw - 2 * pw + dw * (kw - 1) + 1,
    )
    assert (
        tuple(a + b for a, b in zip(reached, left.output_padding, strict=True))
        == example.x.shape[2:]
    )
    transposed = model.replays.get("transposed")
    if transposed is not None:  # it writes every cell but the left-over lines
        assert {e.target_index[2:] for e in transposed.events} == set(
            np.ndindex(height, width)
        ) - lines


def test_the_transposed_view_names_the_stride_leftovers() -> None:
    model = OpReplay(build_example("conv", height=8, width=8, stride=2), "transposed")
    line = model.info_line()
    assert line.startswith("stride 2: x_pad row 7, col 7 (15 cells) in no window")
    assert "dx = 0 there" in line and "output_padding=(1, 1)" in line
    model.jump("end")
    assert "Stride 2: x_pad row 7, col 7" in model.info_line()
    padded = OpReplay(build_example("conv", height=8, width=8, stride=2, padding=1), "transposed")
    assert "(19 cells, padding only)" in padded.info_line()
    even = OpReplay(build_example("conv"), "transposed")
    assert even.leftovers_line() == "" and even.info_line() == dout_source(even.example)


def test_the_description_line_is_one_safe_line() -> None:
    example = dataclasses.replace(
        build_example("conv"), title="Evil\x1b]0;pwned\x07", description="a\n\tb \x1b[2J c"
    )
    model = OpReplay(example)
    line = model.description_line()
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line
    assert line == "Evil\\x1b]0;pwned\\x07: a b \\x1b[2J c"
    assert model.step_lines()[1] == line
    assert OpReplay(build_example("conv")).description_line() == ""
    long = dataclasses.replace(example, description="x" * 500)
    assert len(OpReplay(long).description_line()) == 240


def test_rotated_kernel_grid_in_true_convolution_and_the_transposed_view() -> None:
    """A true convolution (and the transposed view of a cross-correlation) multiplies by the
    kernel rotated by 180°: a "w rotated 180°" grid marks the entry in the rotated place."""
    true_conv = OpReplay(build_example("conv", conv_mode="convolution"))
    true_conv.step(2)  # the bias, then x_pad[0,0]·w[2,2]
    specs = {spec.name: spec for spec in true_conv.grid_specs({})}
    assert specs["w"].marks[(2, 2)] == "read" and specs["w_rot"].marks[(0, 0)] == "read"
    assert (specs["w_rot"].values == specs["w"].values[::-1, ::-1]).all()
    assert "w_rot" not in {s.name for s in OpReplay(build_example("conv")).grid_specs({})}
    transposed = OpReplay(build_example("conv"), "transposed")
    assert "w_rot" in {s.name for s in transposed.grid_specs({})}
    twice = OpReplay(build_example("conv", conv_mode="convolution"), "transposed")
    assert "w_rot" not in {s.name for s in twice.grid_specs({})}  # rotated twice: w itself


def test_padded_titles_only_with_padding() -> None:
    unpadded = OpReplay(build_example("conv"), "backward")
    unpadded.replay.enter_phase("grad_input")
    titles = {spec.name: spec.title for spec in unpadded.grid_specs({})}
    assert titles["dx_pad"] == "dx_pad = dx, grad input"
    padded = OpReplay(build_example("conv", padding=1), "backward")
    padded.replay.enter_phase("grad_input")
    assert {s.name: s.title for s in padded.grid_specs({})}["dx_pad"] == (
        "dx_pad grad input, padded"
    )


def test_at_a_phase_start_the_view_shows_the_slice_of_the_next_step() -> None:
    model = OpReplay(build_example("conv", channels=2, filters=2))
    model.jump("end")
    assert model.view_indices()["c"] == 1  # the last forward step: channel 1
    model.next_phase()  # db's start
    model.next_phase()  # dW's start: its first step works on filter 0, channel 0
    assert model.replay.current is None
    assert model.view_indices() == {"n": 0, "f": 0, "c": 0}


def test_the_dx_phase_names_the_stride_leftovers_too() -> None:
    model = OpReplay(build_example("conv", height=8, width=8, stride=2))
    model.next_phase()  # backward: db, entered at its start
    assert model.info_line() == dout_source(model.example)  # db and dW: where dout came from
    model.next_phase()
    assert model.info_line() == dout_source(model.example)
    model.next_phase()  # dX, before its first step
    assert model.replay.phase_at().phase == "grad_input"
    line = model.info_line()
    assert line == model.leftovers_line() == leftovers_text(model.example)
    assert line.startswith("stride 2: x_pad row 7, col 7 (15 cells) in no window")
    model.step(5)
    assert model.info_line() == line
    model.jump("end")  # the end of the pass: what to press next comes first
    assert model.info_line() == model.end_hint()
    even = OpReplay(build_example("conv"))
    for _ in range(3):
        even.next_phase()
    assert even.replay.phase_at().phase == "grad_input"
    assert even.info_line() == dout_source(even.example)  # no leftovers: dout's source
    pooled = OpReplay(build_example("pool", height=5, width=5, stride=2, kernel=2))
    pooled.next_phase()
    assert pooled.replay.phase_at().phase == "grad_input"
    assert pooled.info_line() == dout_source(pooled.example)


def test_back_from_an_entered_phase_shows_the_previous_phase_s_last_step() -> None:
    model = OpReplay(build_example("conv"))
    model.next_phase()
    model.next_phase()  # dW, before its first step
    replay = model.replay
    start = replay.phase_at().start
    assert replay.phase_at().phase == "grad_weight" and replay.current is None
    model.step(-1)  # db's last step: the phase as it was left
    assert replay.position == start and replay.current_index == start - 1
    assert replay.phase_at().phase == "grad_bias"
    model.step(-1)
    assert replay.position == start - 1


@pytest.mark.parametrize(
    ("op", "params", "variant"),
    [
        ("conv", {"height": 8, "width": 8, "padding": 1}, {"conv_mode": "convolution"}),
        ("pool", {"height": 8, "width": 8}, {"pool_type": "avg"}),
    ],
)
def test_the_other_variant_keeps_every_pass_where_it_stood(op, params, variant) -> None:
    """`v` / `m` (finding 3: `v` at step 491 went to step 0): the forward steps map one to
    one; the backward pass keeps its step when the passes have as many, else its cell; an
    entered phase stays entered."""
    before = OpReplay(build_example(op, **params))
    before.seek(491 if op == "conv" else 37)
    before.mode = "backward"
    before.next_phase()  # db entered (conv) / dX entered (pool): before its first step
    before.mode = "forward"
    after = OpReplay(build_example(op, **params, **variant))
    after.follow(before)
    assert after.mode == "forward" and after.position == before.position
    assert after.replay.current.target_index == before.replay.current.target_index
    assert after.replays["backward"].phase_at().phase == before.replays["backward"].phase_at().phase
    assert after.replays["backward"].current is None  # still before the entered phase's step
    before.mode = "backward"
    before.seek(before.total // 2 + 1)
    after.follow(before)
    assert after.mode == "backward"
    if after.total == before.total:
        assert after.position == before.position
    else:  # max pooling routes each cell's gradient in fewer steps than average pooling
        assert after.replay.cell_number() == before.replay.cell_number()
