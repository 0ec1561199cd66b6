"""The net lesson as a short training run: N steps of SGD or Adam against torch.optim, Adam's
update cell by cell, the loss curve's data, p − y derived, and the steps / optimizer settings."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_tui.errors import UsageError
from cnn_tui.lessons import library, naive, network
from cnn_tui.lessons.net_replay import loss_curve
from cnn_tui.lessons.network import (
    EDITABLE,
    PARAMS,
    build_net_example,
    compare_with_torch,
    forward_loss,
    list_net_examples,
    run_training,
)
from cnn_tui.lessons.rules import softmax_ce_chain
from cnn_tui.lessons.settings import ADAM_BETAS, ADAM_EPS, NET_LIMITS
from cnn_tui.lessons.step_text import fmt_num

EXAMPLES = [info["name"] for info in list_net_examples()]


def torch_training(example, steps: int):
    """PyTorch's own loop: the loss before each step, the weights after each, the last loss."""
    t = {key: torch.tensor(getattr(example, key), requires_grad=key != "x") for key in EDITABLE}
    weights = [t[key] for key in PARAMS]
    if example.optimizer == "adam":
        optimizer = torch.optim.Adam(weights, lr=example.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    else:
        optimizer = torch.optim.SGD(weights, lr=example.lr)
    labels = torch.tensor(example.y)

    def loss_of():
        a1 = F.relu(F.conv2d(t["x"], t["w1"], t["b1"]))
        h = torch.flatten(F.max_pool2d(a1, 2, 2), 1)
        return F.cross_entropy(F.linear(h, t["w2"], t["b2"]), labels)

    losses, after = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
        after.append({key: t[key].detach().numpy().copy() for key in PARAMS})
    with torch.no_grad():
        losses.append(loss_of().item())
    return losses, after


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_n_training_steps_are_torch_optims(name, optimizer):
    example = build_net_example(name, steps=6, optimizer=optimizer)
    training = run_training(example)
    losses, after = torch_training(example, 6)
    assert training.steps == 6 and [run.step for run in training.runs] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(training.losses, losses, rtol=0, atol=1e-12)
    for run, weights in zip(training.runs, after, strict=True):
        for key in PARAMS:
            np.testing.assert_allclose(run.values[f"{key}_new"], weights[key], rtol=0, atol=1e-12)
    assert compare_with_torch(example, training) < 1e-12


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_each_step_starts_where_the_last_left_and_the_losses_are_the_curve(optimizer):
    example = build_net_example(steps=4, optimizer=optimizer)
    training = run_training(example)
    for before, run in zip(training.runs, training.runs[1:], strict=False):
        for key in PARAMS:
            np.testing.assert_array_equal(run.values[key], before.values[f"{key}_new"])
        assert run.loss == before.loss_after  # the same loops on the same weights
        np.testing.assert_array_equal(run.values["x"], example.x)
    for run, loss in zip(training.runs, training.losses, strict=False):
        weights = [run.values[key] for key in EDITABLE]
        assert forward_loss(*weights, example.y)[0] == pytest.approx(loss, abs=1e-15)
    assert training.losses[-1] < training.losses[0]
    probabilities = training.true_probabilities()
    assert len(probabilities) == 5 and probabilities[-1] > probabilities[0]


def test_adam_moves_every_weight_by_about_alpha_on_its_first_step_sgd_by_alpha_times_g():
    adam = run_training(build_net_example(optimizer="adam")).runs[0]
    sgd = run_training(build_net_example()).runs[0]
    for key in PARAMS:
        grad = adam.values[f"d{key}"]
        moved = adam.values[key] - adam.values[f"{key}_new"]
        nonzero = np.abs(grad) > 1e-6
        # α: Adam's own default, 0.01 (the example's 0.1 is SGD's: `settings.DEFAULT_LR`)
        np.testing.assert_allclose(moved[nonzero], 0.01 * np.sign(grad[nonzero]), rtol=1e-4)
        assert np.all(moved[~nonzero] * np.sign(grad[~nonzero]) >= 0)
        np.testing.assert_allclose(sgd.values[key] - sgd.values[f"{key}_new"], 0.1 * grad)


def test_adam_update_cell_by_cell_with_its_steps():
    rng = np.random.default_rng(0)
    param, grad, m, v = rng.normal(size=(4, 2, 3))
    v = np.abs(v)
    events = []
    result = naive.adam_update(param, grad, m, v, 3, 0.01, (0.8, 0.99), 1e-8, events.append)
    m_new = 0.8 * m + (1 - 0.8) * grad
    v_new = 0.99 * v + (1 - 0.99) * grad * grad
    m_hat, v_hat = m_new / (1 - 0.8**3), v_new / (1 - 0.99**3)
    np.testing.assert_allclose(result.m, m_new, rtol=1e-15)
    np.testing.assert_allclose(result.v, v_new, rtol=1e-15)
    np.testing.assert_allclose(result.m_hat, m_hat, rtol=1e-15)
    np.testing.assert_allclose(result.v_hat, v_hat, rtol=1e-15)
    np.testing.assert_allclose(result.new, param - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8))
    kinds = [e.kind for e in events]
    assert (
        kinds
        == ["adam_m"] * 6 + ["adam_v"] * 6 + ["adam_mhat"] * 6 + ["adam_vhat"] * 6 + ["adam"] * 6
    )
    last = events[-1]  # each step carries its operands, as every other lesson step
    assert [o.name for o in last.operands] == ["param", "m_hat", "v_hat", "lr", "eps"]
    assert last.target == "new" and last.target_index == (1, 2)
    assert last.after == pytest.approx(result.new[1, 2], abs=0)
    assert [o.name for o in events[0].operands] == ["m", "grad", "beta1"]
    with pytest.raises(ValueError, match="t counts the steps from 1"):
        naive.adam_update(param, grad, m, v, 0, 0.01)


def test_the_adam_stages_in_order_with_their_rules():
    run = run_training(build_net_example(optimizer="adam", steps=2)).runs[1]
    keys = [stage.key for stage in run.stages if stage.direction == "update"]
    assert keys[:5] == ["adam.w1.m", "adam.w1.v", "adam.w1.mhat", "adam.w1.vhat", "adam.w1"]
    assert len(keys) == 20
    rules = {stage.key: stage.rule for stage in run.stages}
    assert rules["adam.w2.m"].startswith("m_w2′ = β1·m_w2 + (1 − β1)·dw2")
    assert rules["adam.w2.vhat"].startswith("v̂_w2 = v_w2′ / (1 − β2^t)")
    assert rules["adam.b1"].startswith("b1′ = b1 − α·m̂_b1 / (√v̂_b1 + ε)")
    first = run_training(build_net_example(optimizer="adam")).runs[0]
    assert "±α, whatever the gradient's size" in first.stage("adam.w1").source
    assert "m_w1 from step 1" in run.stage("adam.w1.m").source
    assert float(run.values["t"]) == 2.0


def test_the_loss_curve_bars():
    # a log scale: the largest loss a full bar, the smallest above 0 a sliver, 0 nothing
    assert loss_curve([1.0, 0.5, 0.0]) == ["█▁ "]
    assert loss_curve([1.0, 0.001]) == ["█▁"]
    assert loss_curve([1.0, 0.1, 0.01]) == ["█▅▁"]  # each factor of 10 the same drop
    assert loss_curve([1.0, 0.5], rows=2, width=2) == ["██  ", "██▁▁"]
    # only the losses reached so far: the rest a `·` on the bottom row
    assert loss_curve([1.0, 0.1, 0.01], shown=1) == ["█··"]
    assert loss_curve([1.0, 0.1], rows=2, shown=1) == ["█ ", "█·"]
    assert loss_curve([2.0, 1.5, 1.0], rows=2) == ["█▂ ", "██▁"]


def test_p_minus_y_derived_through_the_softmax_jacobian():
    run = run_training(build_net_example()).runs[0]
    z2 = torch.tensor(run.values["z2"][0])
    p = torch.softmax(z2, 0)
    jacobian = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, 0), z2).numpy()
    pv, y = p.numpy(), run.values["y"][0]
    np.testing.assert_allclose(jacobian, np.diag(pv) - np.outer(pv, pv), atol=1e-15)
    np.testing.assert_allclose((-y / pv) @ jacobian, run.values["dz2"][0], atol=1e-15)
    line = softmax_ce_chain(list(pv), list(y), 1, lambda name, value: fmt_num(value))
    assert line == (
        "Σ_i ∂L/∂p[i]·∂p[i]/∂z2[1] = (−1/0.451)·0.451·(0 − 0.549) = 0.549  "
        "(only i = y: y = 0 elsewhere)"
    )
    # each number in its own array's way: p's, y's (and δij's), dz2's
    tagged = softmax_ce_chain([0.25, 0.75], [0.0, 1.0], 0, lambda name, v: f"{name}<{v:g}>")
    assert tagged == (
        "Σ_i ∂L/∂p[i]·∂p[i]/∂z2[0] = (−y<1>/p<0.75>)·p<0.75>·(y<0> − p<0.25>) = dz2<0.25>  "
        "(only i = y: y = 0 elsewhere)"
    )
    rules = {stage.key: stage.rule for stage in run.stages}
    assert "p[i](δij − p[j]) = −y[j] + p[j]·Σ_i y[i] = p[j] − y[j]" in rules["softmax.backward"]
    assert "softmax(z) = softmax(z − c) for any c" in rules["softmax.forward"]
    assert "c = max z keeps every exp ≤ 1, so none overflows" in rules["softmax.forward"]


def test_steps_and_optimizer_are_settings_checked_like_the_others():
    example = build_net_example(steps="3", optimizer="adam")
    assert (example.steps, example.optimizer) == (3, "adam")
    # Adam's own default α (the example's 0.1 is SGD's): `settings.DEFAULT_LR`
    assert example.settings() == {"label": 0, "lr": 0.01, "steps": 3, "optimizer": "adam"}
    assert build_net_example().settings()["steps"] == 1
    assert build_net_example().optimizer == "sgd"
    with pytest.raises(UsageError, match=r"^steps must be between 1 and 50, got 51$"):
        build_net_example(steps=51)
    with pytest.raises(UsageError, match=r"^steps must be a whole number, got 'two'$"):
        build_net_example(steps="two")
    with pytest.raises(UsageError, match=r"^optimizer must be one of sgd, adam, got 'rmsprop'$"):
        build_net_example(optimizer="rmsprop")


def _write_example(tmp_path, extra: str) -> str:
    """A copy of the default example with extra TOML keys, as a lesson file: its path."""
    source = library.shipped_lessons_dir() / "net-vertical-edge.toml"
    path = tmp_path / "net-test.toml"
    path.write_text(source.read_text() + extra)
    return str(path)


def test_an_example_file_sets_steps_and_optimizer(tmp_path, monkeypatch):
    path = _write_example(tmp_path, 'steps = 4\noptimizer = "adam"\n')
    example = build_net_example(path)
    assert (example.steps, example.optimizer) == (4, "adam")
    assert build_net_example(path, steps=2).steps == 2  # a flag beats the file
    assert run_training(example).steps == 4


@pytest.mark.parametrize(
    "extra, message",
    [
        ("steps = 0\n", "steps must be between 1 and 50, got 0"),
        ("steps = 2.5\n", "steps must be a whole number, got float"),
        ('optimizer = "lbfgs"\n', "optimizer must be one of sgd, adam, got 'lbfgs'"),
    ],
)
def test_a_bad_steps_or_optimizer_in_a_file_is_one_line(tmp_path, extra, message):
    path = _write_example(tmp_path, extra)
    with pytest.raises(UsageError) as caught:
        build_net_example(path)
    assert str(caught.value) == f"lesson file {path}: {message}"


def test_extend_appends_one_step_up_to_the_limit():
    example = build_net_example(steps=NET_LIMITS.max_train_steps - 1)
    training = run_training(example)
    run = training.extend()
    assert run.step == training.steps == NET_LIMITS.max_train_steps
    assert not training.can_extend()
    with pytest.raises(UsageError, match="at most 50 training steps"):
        training.extend()
    assert math.isfinite(training.losses[-1]) and training.losses[-1] < training.losses[0]


def test_random_networks_train_like_torch_with_adam():
    rng = np.random.default_rng(7)
    base = build_net_example(optimizer="adam", steps=5)
    example = network._checked(
        dataclasses.replace(
            base,
            x=rng.uniform(-1, 1, (1, 1, 7, 7)),
            w1=rng.uniform(-1, 1, (3, 1, 2, 2)),
            b1=rng.uniform(-0.5, 0.5, 3),
            w2=rng.uniform(-0.5, 0.5, (4, 27)),
            b2=rng.uniform(-0.5, 0.5, 4),
            label=2,
            lr=0.01,
        )
    )
    training = run_training(example)
    losses, after = torch_training(example, 5)
    np.testing.assert_allclose(training.losses, losses, rtol=0, atol=1e-12)
    for key in PARAMS:
        np.testing.assert_allclose(
            training.runs[-1].values[f"{key}_new"], after[-1][key], atol=1e-12
        )
