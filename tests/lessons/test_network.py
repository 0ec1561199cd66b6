"""The whole tiny network of `cnn-tui net`: its examples, its gradients against PyTorch autograd
and finite differences, the SGD step against torch.optim.SGD, and the loss going down."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_tui.errors import UsageError
from cnn_tui.lessons import naive, network
from cnn_tui.lessons.network import (
    EDITABLE,
    PARAMS,
    build_net_example,
    forward_loss,
    list_net_examples,
    make_net_example,
    run_network,
)
from cnn_tui.lessons.settings import NET_DEFAULT_EXAMPLE

EXAMPLES = [info["name"] for info in list_net_examples()]


def torch_step(example):
    """PyTorch's loss, gradients, one torch.optim.SGD step and the loss after it."""
    t = {key: torch.tensor(getattr(example, key), requires_grad=True) for key in EDITABLE}
    labels = torch.tensor(example.y)

    def loss_of():
        a1 = F.relu(F.conv2d(t["x"], t["w1"], t["b1"]))
        h = torch.flatten(F.max_pool2d(a1, 2, 2), 1)
        return F.cross_entropy(F.linear(h, t["w2"], t["b2"]), labels)

    loss = loss_of()
    loss.backward()
    grads = {key: t[key].grad.numpy().copy() for key in EDITABLE}
    optimizer = torch.optim.SGD([t[key] for key in PARAMS], lr=example.lr)
    optimizer.step()
    with torch.no_grad():
        after = loss_of().item()
    return loss.item(), grads, {key: t[key].detach().numpy() for key in PARAMS}, after


def random_example(seed: int, size: int = 6, filters: int = 2, kernel: int = 3, classes: int = 3):
    """A random network within the limits (continuous values: no ties, no ReLU kinks)."""
    rng = np.random.default_rng(seed)
    base = build_net_example()
    pooled = (size - kernel + 1) // 2
    features = filters * pooled * pooled
    return network._checked(
        dataclasses.replace(
            base,
            name="random",
            x=rng.uniform(-1, 1, (1, 1, size, size)),
            w1=rng.uniform(-1, 1, (filters, 1, kernel, kernel)),
            b1=rng.uniform(-0.5, 0.5, filters),
            w2=rng.uniform(-0.5, 0.5, (classes, features)),
            b2=rng.uniform(-0.5, 0.5, classes),
            label=int(rng.integers(classes)),
            lr=0.05,
        )
    )


CASES = [build_net_example(name) for name in EXAMPLES] + [
    random_example(1),
    random_example(2, size=8, filters=3, kernel=2, classes=4),
    random_example(3, size=5, filters=1, kernel=2, classes=2),
    random_example(4, size=7, filters=2, kernel=3, classes=2),
]


def test_the_examples_load_and_the_default_is_the_vertical_edge():
    assert NET_DEFAULT_EXAMPLE in EXAMPLES and len(EXAMPLES) >= 2
    example = build_net_example()
    assert example.name == NET_DEFAULT_EXAMPLE and example.x.shape == (1, 1, 6, 6)
    assert example.w1.shape == (2, 1, 3, 3) and example.w2.shape == (2, 8)
    assert example.class_name(0) == "vertical edge" and example.label == 0
    assert all(info["title"] and info["description"] for info in list_net_examples())


@pytest.mark.parametrize("example", CASES, ids=lambda e: f"{e.name}-{e.x.shape[2]}")
def test_every_gradient_matches_torch_autograd_and_finite_differences(example):
    run = run_network(example)
    loss, grads, _, _ = torch_step(example)
    assert run.loss == pytest.approx(loss, rel=1e-13)
    for key in EDITABLE:
        np.testing.assert_allclose(run.values[f"d{key}"], grads[key], rtol=1e-10, atol=1e-13)
    check = network.gradient_check(example, run)
    assert check.passed(1e-6), check.summary()
    assert set(check.errors) == {f"d{key}" for key in EDITABLE}
    assert check.checked == sum(getattr(example, key).size for key in EDITABLE)


def test_finite_differences_of_the_plain_forward_agree_with_the_backward_pass():
    """An independent check: central differences of `forward_loss`, entry by entry."""
    example = build_net_example()
    run = run_network(example)
    arrays = {key: getattr(example, key).copy() for key in EDITABLE}
    for key in EDITABLE:
        array = arrays[key]
        for index in np.ndindex(*array.shape):
            original = array[index]
            array[index] = original + 1e-6
            plus = forward_loss(*arrays.values(), example.y)[0]
            array[index] = original - 1e-6
            minus = forward_loss(*arrays.values(), example.y)[0]
            array[index] = original
            numeric = (plus - minus) / 2e-6
            assert run.values[f"d{key}"][index] == pytest.approx(numeric, abs=1e-7), (key, index)


@pytest.mark.parametrize("example", CASES, ids=lambda e: f"{e.name}-{e.x.shape[2]}")
def test_the_sgd_step_is_torch_optim_sgd_and_the_loss_after_is_torchs(example):
    run = run_network(example)
    _, _, updated, after = torch_step(example)
    for key in PARAMS:
        np.testing.assert_allclose(run.values[f"{key}_new"], updated[key], rtol=0, atol=1e-14)
        expected = getattr(example, key) - example.lr * run.values[f"d{key}"]
        np.testing.assert_allclose(run.values[f"{key}_new"], expected, rtol=0, atol=1e-15)
    assert run.loss_after == pytest.approx(after, rel=1e-12)
    assert network.compare_with_torch(example, run) < 1e-9


@pytest.mark.parametrize("name", EXAMPLES)
def test_one_step_lowers_the_loss_of_each_example(name):
    run = run_network(build_net_example(name))
    assert run.loss_after < run.loss
    label = run.example.label
    assert run.values["p_after"][0, label] > run.values["p"][0, label]


def test_the_default_example_is_unsure_before_and_sure_after():
    run = run_network(build_net_example())
    assert 0.6 < run.loss < 1.0 and run.loss_after < 0.1
    assert run.values["p"][0].round(2).tolist() == [0.45, 0.55]  # leans the wrong way
    assert run.values["p_after"][0, 0] > 0.9


def test_the_run_records_every_layer_in_order_with_the_networks_names():
    run = run_network(build_net_example())
    keys = [stage.key for stage in run.stages]
    assert keys == [
        "conv.forward", "relu.forward", "pool.forward", "flatten.forward", "linear.forward",
        "softmax.forward", "softmax.backward", "linear.grad_bias", "linear.grad_weight",
        "linear.grad_input", "flatten.backward", "pool.backward", "relu.backward",
        "conv.grad_bias", "conv.grad_weight", "conv.grad_input", "sgd.w1", "sgd.b1", "sgd.w2",
        "sgd.b2", "after",
    ]  # fmt: skip
    names = set(network.ARRAYS)
    for stage in run.stages:
        for e in stage.events:
            assert e.target in stage.writes, (stage.key, e.target)
            assert {o.name for o in e.operands} <= names, stage.key
    counts = {stage.key: len(stage.events) for stage in run.stages}
    assert counts["conv.forward"] == 2 * 16 * 10 and counts["conv.grad_input"] == 2 * 16 * 9
    assert counts["softmax.forward"] == 9 and counts["sgd.w2"] == 16 and counts["after"] == 0
    # the recorded steps end where the arrays are: the last write of each cell is its value
    for stage in run.stages:
        last = {}
        for e in stage.events:
            last[(e.target, e.target_index)] = e.after
        for (target, index), value in last.items():
            assert run.values[target][index] == pytest.approx(value, abs=1e-12)


def test_the_network_uses_the_naive_results_of_each_layer():
    example = build_net_example()
    run = run_network(example)
    z1, _ = naive.conv2d_forward(example.x, example.w1, example.b1)
    np.testing.assert_array_equal(run.values["z1"], z1)
    np.testing.assert_array_equal(run.values["a1"], np.maximum(z1, 0))
    assert run.values["h"].shape == (1, 8) and run.values["L"].shape == ()
    assert math.isclose(float(run.values["L"]), -math.log(run.values["p"][0, example.label]))


def test_label_learning_rate_and_edited_arrays():
    example = build_net_example(label=1, lr=0.5)
    assert (example.label, example.lr) == (1, 0.5)
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 3:, :] = 1.0
    edited = make_net_example({"label": 1}, {"x": x})
    assert np.array_equal(edited.x, x) and edited.label == 1
    with pytest.raises(UsageError, match=r"x: the edited values have shape \(1, 1, 5, 5\)"):
        make_net_example({}, {"x": np.zeros((1, 1, 5, 5))})


@pytest.mark.parametrize(
    "params, overrides, message",
    [
        ({"label": 2}, {}, r"label must be a class of the example, 0 to 1, got 2"),
        ({"label": 9}, {}, r"label must be between 0 and 3, got 9"),
        ({"lr": 0}, {}, r"lr must be above 0 and at most 10, got 0"),
        ({"lr": "fast"}, {}, r"lr must be a number, got 'fast'"),
        (
            {"example": "edge-detect"},
            {},
            r"edge-detect.toml is a conv example; open it with cnn-tui conv",
        ),
        (
            {"example": "nope"},
            {},
            r"no net example named 'nope'; the net examples are: net-horizontal-edge",
        ),
        ({}, {"w2": np.full((2, 8), np.inf)}, r"w2: values must be finite"),
        ({}, {"x": np.full((1, 1, 6, 6), 1e6)}, r"x: values must be finite and at most 100"),
    ],
)
def test_bad_settings_raise_one_line_usage_errors(params, overrides, message):
    with pytest.raises(UsageError, match=message):
        make_net_example(params, overrides)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x": np.zeros((1, 1, 9, 9))}, r"the image is 9x9; the lesson takes 4x4 to 8x8"),
        ({"w1": np.zeros((4, 1, 3, 3))}, r"4 filters; the lesson takes 1 to 3"),
        ({"w1": np.zeros((2, 1, 5, 5))}, r"filters of 5x5; the lesson takes 2 or 3 on a side"),
        ({"w2": np.zeros((2, 7))}, r"w2 must be \(K, 8\)"),
        ({"w2": np.zeros((5, 8)), "b2": np.zeros(5)}, r"5 classes; the lesson takes 2 to 4"),
        ({"b1": np.zeros(3)}, r"b1 must have one bias per filter"),
    ],
)
def test_example_shapes_are_checked_against_the_limits(change, message):
    with pytest.raises(UsageError, match=message):
        network._checked(dataclasses.replace(build_net_example(), **change))
