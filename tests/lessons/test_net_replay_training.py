"""The network lesson's replay over a training run: every step's stages end to end, seeking
back and forth, passes across training steps, one more step appended, the curve's position,
and Adam's steps as the screen writes them."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_tui.lessons.net_replay import NetReplay
from cnn_tui.lessons.network import build_net_example, run_training


@pytest.fixture
def adam() -> NetReplay:
    return NetReplay(run_training(build_net_example(steps=3, optimizer="adam", lr=0.1)))


def snapshot(model: NetReplay) -> dict[str, np.ndarray]:
    return {name: model.values(name).copy() for name in model.grid_names()}


def test_every_training_step_s_stages_run_end_to_end(adam):
    per_step = sum(stage.steps for stage in adam.training.runs[0].stages)
    assert adam.total == 3 * per_step == sum(stage.steps for stage in adam.stages)
    assert [run.step for run in adam.stage_runs[:: len(adam.training.runs[0].stages)]] == [1, 2, 3]
    adam.seek(per_step + 1)
    assert adam.train_step == 2 and adam.stage.key == "conv.forward"
    assert adam.status_parts(5)[0] == "network · step 2/3 · forward · conv"
    assert adam.pipeline()[0] == "step 2 forward"
    # step 2's arrays are step 2's: its conv output comes from the weights step 1 left
    adam.stage_end()
    np.testing.assert_array_equal(adam.values("z1"), adam.training.runs[1].values["z1"])
    assert not np.array_equal(adam.values("z1"), adam.training.runs[0].values["z1"])


def test_seeking_back_and_forth_gives_the_same_arrays_in_every_phase(adam):
    rng = np.random.default_rng(3)
    positions = sorted(rng.choice(adam.total, 25, replace=False) + 1)
    first = {}
    for position in positions:  # forwards, one far jump at a time
        adam.seek(position)
        first[position] = (adam.stage.key, snapshot(adam))
    for position in reversed(positions):  # and back
        adam.seek(position)
        key, arrays = first[position]
        assert adam.stage.key == key
        for name, values in arrays.items():
            np.testing.assert_array_equal(adam.values(name), values)
    # stepping one by one through an Adam stage lands where a jump does
    start = adam.first_of("adam.w2.v")
    for _ in range(7):
        adam.step(1)
    stepped = snapshot(adam)
    adam.seek(0)
    adam.seek(start + 7)
    for name, values in stepped.items():
        np.testing.assert_array_equal(adam.values(name), values)


def test_the_pass_key_walks_every_training_step_then_back_to_the_start(adam):
    adam.seek(0)
    seen = []
    for _ in range(11):
        adam.next_pass()
        seen.append((adam.train_step, adam.stage.direction))
    assert seen[:4] == [(1, "backward"), (1, "update"), (1, "after"), (2, "forward")]
    assert seen[-1] == (3, "after") and adam.position == adam.total
    adam.next_pass()
    assert adam.position == 0


def test_adam_steps_on_the_board_and_in_the_step_panel(adam):
    adam.first_of("adam.w2.m")
    assert adam.status_parts(5)[0] == "network · step 1/3 · update · Adam · m_w2"
    assert adam.pipeline() == (
        "step 1 update",
        [("w1", False), ("b1", False), ("w2", True), ("b2", False)],
    )
    assert [spec.title for spec in adam.grid_specs()] == [
        "m_w2 mean of dw2, before",
        "dw2 ∂L/∂w2",
        "m_w2′ mean of dw2: β1·m + (1−β1)·g",
    ]
    formula, numbers, cell = adam.step_lines()
    assert formula == (
        "m_w2′[0,0] = β1·m_w2[0,0] + (1 − β1)·dw2[0,0]   (the running mean of the gradient)"
    )
    assert numbers == "= 0.9·0 + 0.1·(-1.563) → -0.156"
    assert cell == "Adam works on each weight alone (cell 1 of 16)"
    adam.first_of("adam.w2")
    formula, numbers, _ = adam.step_lines()
    assert formula == "w2′[0,0] = w2[0,0] − α·m̂_w2[0,0] / (√v̂_w2[0,0] + ε)"
    # each value in its array's format: w2′ has three decimals, as its grid
    assert numbers.startswith("= 0.3 − 0.1·(-1.563) / (√2.445 + 1e-08) = 0.3 − (-0.100) → 0.400")
    assert "(step size 0.100 = α·|m̂|/(√v̂ + ε))" in numbers
    adam.first_of("adam.w2.vhat")
    _, numbers, _ = adam.step_lines()
    assert numbers.startswith("= 0.00244 / (1 − 0.999^1) = 0.00244 / 0.001 → 2.44")


def test_one_more_step_is_appended_and_the_curve_follows(adam):
    total = adam.total
    assert adam.curve_index() == 0
    adam.seek(total)  # the last step's "after": the loss after it
    assert adam.curve_index() == 3
    assert adam.curve_label().startswith("after 3/3 Adam steps: 4.62e-04  (from 0.795)")
    position = adam.extend()
    assert adam.training.steps == 4 and position == total + 1
    assert adam.train_step == 4 and adam.stage.key == "conv.forward"
    assert adam.curve_index() == 3  # step 4 starts from the loss after step 3
    assert len(adam.training.losses) == 5
    adam.seek(adam.total)
    assert adam.curve_index() == 4
    assert adam.step_lines()[1].startswith(f"L = {adam.step_lines()[1].split()[2]}")


def test_a_single_step_reads_as_before():
    model = NetReplay(run_training(build_net_example()))
    assert model.total == 1150
    assert model.status_parts(5)[0] == "network · forward · conv"
    assert model.pipeline()[0] == "forward"
    assert model.step_lines()[0].startswith("1150 steps recorded: forward 419")
    # the loss in its one format, as its grid and the "after" stage write it
    assert model.curve_label() == "after 0/1 SGD steps: 0.795"  # not the loss to come


def test_the_same_stage_in_the_next_and_previous_training_step(adam):
    adam.first_of("adam.w2.m")
    adam.step(4)
    here, local = adam.position, adam.local
    assert adam.other_step(1) > here
    assert (adam.train_step, adam.stage.key, adam.local) == (2, "adam.w2.m", local)
    # m carries over: step 2's m_w2 is what step 1 left
    np.testing.assert_array_equal(adam.values("m_w2"), adam.training.runs[0].values["m_w2_new"])
    adam.other_step(5)  # clamped to the last training step
    assert (adam.train_step, adam.stage.key) == (3, "adam.w2.m")
    adam.other_step(-2)
    assert (adam.train_step, adam.position) == (1, here)
    adam.seek(0)
    adam.other_step(1)
    assert (adam.train_step, adam.stage.key, adam.local) == (2, "conv.forward", 1)


def test_the_p_minus_y_line_writes_p_and_dz2_with_their_grids_digits() -> None:
    # Adam's step 4: p ≈ (0.999538, 0.000462), which a plain 3-decimal number writes 1 and 0;
    # p − y → dz2 = -0.000462 needs p's six decimals (`number_format.operand_decimals`), and dz2,
    # all below 1e-3, is written in scientific notation as precisely (`-4.62e-04`)
    model = NetReplay(run_training(build_net_example(steps=4, optimizer="adam", lr=0.1)))
    index = next(
        k
        for k, stage in enumerate(model.stages)
        if stage.key == "softmax.backward" and model.stage_runs[k].step == 4
    )
    p, dz2 = model.stage_runs[index].values["p"][0], model.stage_runs[index].values["dz2"][0]
    for j in range(len(p)):
        model.seek(model.starts[index] + j + 1)  # the step that writes dz2[j]
        grids = {spec.name: spec for spec in model.grid_specs()}
        grid_p = [grids["p"].number_format(value) for value in p]
        grid_dz2 = grids["dz2"].number_format(dz2[j])
        assert grid_p == ["0.999538", "0.000462"] and grid_dz2 == ["-4.62e-04", "4.62e-04"][j]
        line = model.step_lines()[2]
        assert line == (
            f"Σ_i ∂L/∂p[i]·∂p[i]/∂z2[{j}] = (−1/{grid_p[0]})·{grid_p[0]}·"
            f"({1 - j} − {grid_p[j]}) = {grid_dz2}  (only i = y: y = 0 elsewhere)"
        )


def test_an_entered_stage_stays_entered_in_the_next_training_step(adam) -> None:
    adam.first_of("relu.forward")
    adam.prev_phase()
    adam.next_phase()  # ReLU, entered at its start
    assert (adam.stage.key, adam.train_step, adam.local) == ("relu.forward", 1, 0)
    adam.other_step(1)
    assert (adam.stage.key, adam.train_step, adam.local) == ("relu.forward", 2, 0)
    assert adam.current is None and adam.view_indices() == {"f": 0}  # the next step's filter
    adam.step(1)
    assert (adam.stage.key, adam.train_step, adam.local) == ("relu.forward", 2, 1)
