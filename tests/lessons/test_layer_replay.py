"""The batch-norm / dropout lesson's replay model (`lessons.layer_replay.LayerReplay`): seeking
back and forth, cells, stages, passes, and what it says and marks at a step."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_tui.lessons.layer_lesson import build_layer_example, run_layer
from cnn_tui.lessons.layer_replay import LayerReplay
from cnn_tui.lessons.replay import READ, WRITE


def model(op: str = "batchnorm", **settings) -> LayerReplay:
    return LayerReplay(run_layer(build_layer_example(op, **settings)))


def snapshot(m: LayerReplay) -> dict[str, np.ndarray]:
    return {name: m.values(name).copy() for name in m.grid_names()}


@pytest.mark.parametrize("op", ["batchnorm", "dropout"])
def test_seeking_anywhere_equals_stepping_there(op):
    m = model(op)
    stepped = {}
    for position in range(m.total + 1):
        m.seek(position)
        stepped[position] = (m.stage_index, snapshot(m))
    rng = np.random.default_rng(0)
    for position in rng.integers(0, m.total + 1, size=60):  # far jumps, back and forth
        m.seek(int(position))
        index, values = stepped[int(position)]
        assert m.stage_index == index
        for name, array in values.items():
            np.testing.assert_array_equal(m.values(name), array)


def test_the_finished_stage_shows_the_run_values():
    m = model()
    for key, name in (("bn.mean", "mu"), ("bn.grad_var", "dvar"), ("bn.grad_input", "dx")):
        m.first_of(key)
        m.jump("end")
        np.testing.assert_allclose(m.values(name), m.run.values[name])
        assert m.stage.key == key


def test_cells_stages_and_passes():
    m = model(batch=2, channels=2, height=2, width=2)  # M = 8 values per channel
    assert m.position == 0 and m.stage.key == "bn.mean"
    m.next_cell()  # μ[0]: all 8 of its steps at once
    assert m.position == 8 and m.values("mu")[0] == pytest.approx(m.run.values["mu"][0])
    assert np.isnan(m.values("mu")[1])
    m.next_cell()
    assert m.position == 16 and m.stage.key == "bn.mean"
    m.next_cell()  # on to the next stage's first cell
    assert m.stage.key == "bn.variance" and m.local == 8
    m.prev_cell()  # back to where the variance's first cell starts: the means all done
    assert m.position == 16 and m.stage.key == "bn.mean" and m.local == 16
    assert np.isnan(m.replays[1].values("var")).all()
    m.seek(0)
    keys = [m.stage.key]
    for _ in range(len(m.stages) - 1):
        m.next_phase()  # each stage entered at its start, before its first step
        assert m.local == 0 and m.current is None and m.position == m.starts[m.stage_index]
        assert all(np.isnan(m.values(name)).all() for name in m.stage.writes)
        keys.append(m.stage.key)
    assert keys == [stage.key for stage in m.stages]
    assert m.step_lines()[0] == (
        f"{m.stage.title}: {len(m.stage.events)} steps, none run yet. Press → to run the first one."
    )
    m.step(1)  # → runs the stage's first step
    assert m.local == 1 and m.stage.key == keys[-1]
    m.prev_phase()
    assert m.stage.key == keys[-2] and m.local == 0
    m.step(-1)  # ← from a stage's start: the previous stage's last step
    assert m.stage.key == keys[-3] and m.local == len(m.stage.events)
    m.seek(m.total)
    m.next_phase()
    assert m.position == 0  # after the last stage: back to the start
    m.next_pass()
    assert m.stage.key == "bn.grad_beta" and m.local == 1
    m.next_pass()
    assert m.stage.key == "bn.mean" and m.position == 1
    m.first_of("bn.scale_shift")
    m.prev_phase()
    assert m.stage.key == "bn.normalise"


def test_the_step_panel_and_the_highlights_at_a_step():
    m = model(batch=1, channels=1, height=2, width=2)
    m.first_of("bn.variance")
    m.step(1)  # the second value of channel 0
    formula, numbers, cell = m.step_lines()
    assert formula == "σ² += (x[0,1] − μ)²/M"
    assert numbers.endswith(f"→ {m.style.cell('var', m.current.after)}")
    assert cell.startswith("σ² = Σ (x − μ)²/M = ") and "so far (2/4)" in cell
    specs = {spec.name: spec for spec in m.grid_specs({"n": 0, "c": 0})}
    assert specs["x"].marks[(0, 1)] == READ and specs["var"].marks[(0, 0)] == WRITE
    assert specs["mu"].marks[(0, 0)] == READ
    rule, source = m.rule_lines()
    assert rule.startswith("σ²[c] = (1/M)") and "μ" in source
    assert m.pipeline_text() == "forward: μ → [σ²] → x̂ → y → running stats"
    assert m.status_parts(5)[0] == "batch normalisation · forward · σ²"
    m.seek(0)
    assert m.step_lines()[0].startswith(f"{m.total} steps recorded")


def test_every_image_of_a_channel_side_by_side_and_the_view_follows_the_step():
    m = model(batch=3, channels=2, height=2, width=2)
    m.first_of("bn.normalise")
    m.seek(m.position + 12)  # (n, c) = (1, 1), the first value
    assert m.view_indices() == {"n": 1, "c": 1}
    # the array written first, then the ones read
    names = [spec.name for spec in m.grid_specs({"c": 1}, every_image=True)]
    assert names == ["xhat#0", "xhat#1", "xhat#2", "x#0", "x#1", "x#2", "mu", "var"]
    titles = [spec.title for spec in m.grid_specs({"n": 1, "c": 1})]
    assert titles == ["x̂[n=1, c=1] normalised", "x[n=1, c=1] input", "μ mean, per channel",
                      "σ² variance (biased)"]  # fmt: skip


def test_dropout_steps_say_kept_or_dropped():
    m = model("dropout")
    words = []
    for position in range(1, len(m.stages[0].events) + 1):
        m.seek(position)
        words.append("kept" if "(kept)" in m.step_lines()[1] else "dropped")
    mask = m.run.values["mask"].reshape(-1)
    assert words == ["kept" if value else "dropped" for value in mask]
    m.first_of("dropout.grad_input")
    formula, numbers, _ = m.step_lines()
    assert formula.startswith("dx[0,0] = dy[0,0]·mask[0,0]/(1−p)")
