"""The network lesson's UI-free model: one cursor over every stage, the grids, the text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cnn_tui.lessons.net_replay import NetReplay, cell_ref
from cnn_tui.lessons.network import build_net_example, run_network
from cnn_tui.lessons.replay import READ, WINDOW, WRITE


@pytest.fixture
def model() -> NetReplay:
    return NetReplay(run_network(build_net_example()))


def test_positions_run_through_every_stage_end_to_end(model):
    assert model.total == sum(stage.steps for stage in model.stages) == 1150
    assert model.position == 0 and model.stage.key == "conv.forward" and model.current is None
    seen = []
    for position in range(1, model.total + 1):
        model.seek(position)
        if not seen or seen[-1] != model.stage.key:
            seen.append(model.stage.key)
            assert model.local == 1  # a stage is entered at its first step
    assert seen == [stage.key for stage in model.stages]
    assert model.seek(model.total + 5) == model.total and model.stage.key == "after"
    assert model.seek(-3) == 0


def test_the_end_of_a_stage_shows_it_finished_and_one_step_more_enters_the_next(model):
    model.first_of("relu.forward")
    model.stage_end()
    assert model.stage.key == "relu.forward" and model.local == model.stage.steps
    np.testing.assert_array_equal(model.values("a1"), model.run.values["a1"])
    model.step(1)
    assert model.stage.key == "pool.forward" and model.local == 1
    model.step(-1)
    assert model.stage.key == "relu.forward"


def test_the_arrays_fill_in_as_the_steps_run(model):
    model.first_of("conv.forward")
    z1 = model.values("z1")
    assert np.isnan(z1).sum() == z1.size - 1  # one cell started: b1
    model.stage_end()
    np.testing.assert_array_equal(model.values("z1"), model.run.values["z1"])
    model.first_of("sgd.w2")
    assert np.isnan(model.values("w2_new")).sum() == 15


def test_cell_jumps_cross_stage_boundaries(model):
    assert model.next_cell() == 10  # the first conv output cell: a bias and 9 products
    model.first_of("linear.forward")
    model.next_cell()
    assert model.local == 9  # b2 + 8 products
    model.next_cell()
    assert model.local == 18 and model.stage.key == "linear.forward"
    model.next_cell()  # the stage is done: the first cell of the next (the softmax's max)
    assert model.stage.key == "softmax.forward" and model.local == 2
    model.prev_cell()
    assert model.stage.key == "linear.forward" and model.local == 18
    model.seek(model.total - 1)
    model.next_cell()
    assert model.stage.key == "after" and model.position == model.total


def test_phase_and_pass_keys(model):
    # p enters a stage at its start, before its first step, as the conv / pool lesson does
    conv = model.stages[0].steps
    assert model.next_phase() == conv
    assert model.stage.key == "relu.forward" and model.local == 0 and model.current is None
    assert model.step_lines()[0] == (
        f"{model.stage.title}: {model.stage.steps} steps, none run yet. "
        "Press → to run the first one."
    )
    assert np.isnan(model.values("a1")).all()  # none of its cells written yet
    model.step(1)  # → runs its first step
    assert model.stage.key == "relu.forward" and model.local == 1
    model.seek(model.position + 3)
    model.prev_phase()
    assert model.stage.key == "conv.forward" and model.position == 0
    model.next_phase()
    model.step(-1)  # ← from a stage's start: the previous stage's last step
    assert model.stage.key == "conv.forward" and model.local == conv
    model.next_phase()
    model.next_phase()
    assert model.stage.key == "pool.forward" and model.local == 0
    model.prev_phase()
    assert model.stage.key == "relu.forward" and model.local == 0
    model.next_pass()
    assert model.stage.key == "softmax.backward"
    model.next_pass()
    assert model.stage.key == "sgd.w1"
    model.next_pass()
    assert model.stage.key == "after"
    assert model.next_pass() == 0
    model.seek(model.total)
    assert model.next_phase() == 0


def test_the_ends_a_jump_reaches_are_the_current_stage_s_and_the_view_picks_a_filter(model):
    model.first_of("relu.forward")
    model.step(3)
    assert model.jump("end") == model.stage_end() and model.stage.key == "relu.forward"
    assert model.jump("start") == model.starts[model.stage_index] + 1
    assert model.axis_sizes() == {"f": model.example.w1.shape[0]}


def test_the_step_text_and_the_running_sum(model):
    model.first_of("conv.forward")
    model.step(1)
    assert model.step_lines() == [
        "z1[f=0, 0,0] += x[0,0]·w1[f=0, 0,0]",
        "= 0.2·(-1) = -0.20   0.05 + (-0.20) → -0.15",  # the product as z1 writes it
        "z1[f=0, 0,0] = b1 + Σ_ki,kj x·w1 = -0.15 so far (2/10)",
    ]
    model.first_of("softmax.backward")
    formula, numbers, note = model.step_lines()
    assert formula == "dz2[0] = p[0] − y[0]"
    assert numbers.startswith("= 0.4514 − 1 → -0.5486") and "(the true class: y = 1)" in numbers
    model.first_of("relu.backward")
    formula, numbers, _ = model.step_lines()
    assert formula.startswith("dz1[f=0, 0,0] = da1[f=0, 0,0] where z1[f=0, 0,0] > 0, else 0")
    assert numbers.startswith("z1[f=0, 0,0] = -0.15 ≤ 0 → 0") and "(blocked)" in numbers
    model.first_of("sgd.w2")
    _, numbers, _ = model.step_lines()
    assert numbers.startswith("= 0.3 − 0.1·(-1.563) = 0.3 − (-0.156) → 0.456")


def test_every_step_has_text_without_nan(model):
    for position in range(0, model.total + 1, 7):
        model.seek(position)
        lines = model.step_lines()
        assert len(lines) == 3 and (position == 0 or all(lines))
        assert not any("nan" in line for line in lines)
        rule, source = model.rule_lines()
        assert rule and source


def test_backward_stages_state_the_chain_rule_and_where_dout_came_from(model):
    rules = {stage.key: (stage.rule, stage.source) for stage in model.stages}
    assert rules["softmax.backward"][0].startswith("∂L/∂z2 = p − y")
    assert "∂L/∂w2 = ∂L/∂z2 · hᵀ" in rules["linear.grad_weight"][0]
    assert "routes ∂L/∂m1 to the argmax" in rules["pool.backward"][0]
    assert "where z1 > 0" in rules["relu.backward"][0]
    assert "∂L/∂w1 = Σ dout · x (no padding here)" in rules["conv.grad_weight"][0]
    assert "x_pad" not in " ".join(rule for rule, _ in rules.values())
    assert "came from softmax-CE above" in rules["linear.grad_input"][1]
    assert "came from the linear layer above" in rules["flatten.backward"][1]
    assert "came from max-pool above" in rules["relu.backward"][1]
    assert "came from ReLU above" in rules["conv.grad_bias"][1]
    assert rules["sgd.w1"][0].startswith("w1′ = w1 − α·dw1 with α = 0.1")
    assert "L = 0.795 → L′ = 0.0542" in rules["after"][1]  # as the L and L′ grids write them


def test_grids_show_the_stage_arrays_and_mark_the_step(model):
    model.first_of("conv.forward")
    model.step(4)
    specs = {spec.name: spec for spec in model.grid_specs(model.view_indices())}
    assert list(specs) == ["x", "w1", "b1", "z1"]
    assert specs["z1"].marks == {(0, 0): WRITE}
    assert specs["x"].marks[(1, 0)] == READ and specs["x"].marks[(0, 0)] == WINDOW
    assert specs["w1"].title == "w1[f=0] conv filters" and specs["w1"].values.shape == (3, 3)
    model.first_of("conv.forward")
    model.seek(model.position + 170)  # filter 1: the view follows
    assert model.view_indices() == {"f": 1}
    specs = {spec.name: spec for spec in model.grid_specs(model.view_indices())}
    assert specs["w1"].title.startswith("w1[f=1]")
    model.first_of("pool.backward")
    specs = {spec.name: spec for spec in model.grid_specs(model.view_indices())}
    assert [role for role in specs["a1"].marks.values()].count(READ) == 1  # where the max was
    assert list(specs["da1"].marks.values()).count(WRITE) == 1
    assert set(specs["da1"].marks) == set(specs["a1"].marks)  # the max's window, in da1 too
    model.first_of("softmax.forward")
    model.stage_end()
    specs = {spec.name: spec for spec in model.grid_specs()}
    assert specs["L"].values.shape == (1,) and specs["L"].marks == {(0, 0): WRITE}


def test_the_after_stage_summarises_the_second_forward(model):
    model.seek(model.total)
    lines = model.step_lines()
    assert lines[0].startswith("second forward pass with the updated weights")
    assert lines[1] == "L = 0.795 → L′ = 0.0542  (-0.741, lower: the step went downhill)"
    assert lines[2] == "p[0] (the true class, vertical edge) = 0.4514 → 0.9473"
    names = [spec.name for spec in model.grid_specs()]
    assert names == ["z2", "p", "L", "z2_after", "p_after", "L_after"]


def test_the_pipeline_marks_the_layer_at_work(model):
    model.first_of("pool.forward")
    assert model.pipeline_text() == (
        "forward: x → conv → ReLU → [max-pool] → flatten → linear → softmax-CE → L"
    )
    model.first_of("linear.grad_weight")
    assert model.pipeline_text() == (
        "backward: L → softmax-CE → [linear] → flatten → max-pool → ReLU → conv → dx"
    )
    model.first_of("sgd.b2")
    assert model.pipeline_text() == "update: w1 → b1 → w2 → [b2]"
    parts = model.status_parts(5)
    assert parts[0] == "network · update · SGD · b2" and parts[1] == "step 1 / 2"


def test_cell_references_name_only_the_axes_that_vary():
    shapes = {"z1": (1, 2, 4, 4), "x": (1, 1, 6, 6), "b1": (2,), "w2": (2, 8), "p": (1, 2)}
    assert cell_ref(shapes, "z1", (0, 1, 2, 3)) == "z1[f=1, 2,3]"
    assert cell_ref(shapes, "x", (0, 0, 2, 3)) == "x[2,3]"
    assert cell_ref(shapes, "b1", (1,)) == "b1[1]"
    assert cell_ref(shapes, "w2", (1, 4)) == "w2[1,4]"
    assert cell_ref(shapes, "p", (0, 1)) == "p[1]"
    assert cell_ref(shapes, "L", ()) == "L" and cell_ref(shapes, "lr", ()) == "α"
    assert cell_ref({"s": (1,)}, "s", (0,)) == "s"
    assert cell_ref({}, "w1_new", ()) == "w1′"


def test_the_model_imports_neither_textual_nor_torch():
    code = (
        "import sys, cnn_tui.lessons.net_replay, cnn_tui.lessons.net_trace\n"
        "print(sorted(m for m in ('textual', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
