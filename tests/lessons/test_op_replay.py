"""The conv / pool lesson's UI-free model (`OpReplay`): its passes, the phase walk, the hints and
the status line, without Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import size_formula
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
        "true convolution (kernel rotated 180°)",
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
