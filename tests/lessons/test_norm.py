"""Naive batch normalisation and dropout (`lessons.norm`) against PyTorch autograd and central
differences, their step events, their argument errors, and the lesson built on them
(`lessons.layer_lesson`)."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_tui.errors import UsageError
from cnn_tui.lessons import layer_lesson, norm
from cnn_tui.lessons.layer_lesson import build_layer_example, run_layer
from cnn_tui.lessons.naive import collect_steps
from cnn_tui.lessons.settings import LAYER_DEFAULTS, LayerSettings

SHAPES = [(1, 1, 2, 2), (2, 2, 3, 3), (3, 1, 2, 4), (4, 3, 1, 2), (1, 2, 5, 3)]
EPSILONS = [1e-5, 1e-3, 0.5]


def random(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def torch_batchnorm(x, gamma, beta, dy, eps, momentum):
    """PyTorch's batch norm in training mode with autograd: y, dx, dγ, dβ, running stats."""
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    running_mean = torch.zeros(x.shape[1], dtype=torch.float64)
    running_var = torch.ones(x.shape[1], dtype=torch.float64)
    y = F.batch_norm(xt, running_mean, running_var, gt, bt, training=True,
                     momentum=momentum, eps=eps)  # fmt: skip
    (y * torch.tensor(dy)).sum().backward()
    return (y.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy(),
            running_mean.numpy(), running_var.numpy())  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("eps", EPSILONS)
def test_batchnorm_forward_backward_and_running_stats_match_pytorch(shape, eps):
    seed = sum(shape)
    x, dy = random(shape, seed), random(shape, seed + 1)
    gamma, beta = random(shape[1], seed + 2, 0.5, 1.5), random(shape[1], seed + 3)
    momentum = 0.1 if eps < 0.1 else 0.7
    y, cache = norm.batchnorm2d_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = norm.batchnorm2d_backward(dy, cache)
    rm, rv = norm.batchnorm2d_running_update(np.zeros(shape[1]), np.ones(shape[1]), cache,
                                             momentum)  # fmt: skip
    expected = torch_batchnorm(x, gamma, beta, dy, eps, momentum)
    for ours, theirs in zip((y, dx, dgamma, dbeta, rm, rv), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    # the variance that normalises is the biased one, the running one the unbiased
    np.testing.assert_allclose(cache.var, x.var(axis=(0, 2, 3)), atol=1e-14)
    count = shape[0] * shape[2] * shape[3]
    unbiased = cache.var * count / (count - 1)
    np.testing.assert_allclose(rv, (1 - momentum) + momentum * unbiased, atol=1e-14)


def numeric_gradient(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(*array.shape):
        original = array[index]
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("shape", SHAPES[:3], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_batchnorm_gradients_match_central_differences(shape, eps):
    x, dy = random(shape, 7), random(shape, 8)
    gamma, beta = random(shape[1], 9, 0.5, 1.5), random(shape[1], 10)

    def loss():
        return float(np.sum(norm.batchnorm2d_forward(x, gamma, beta, eps)[0] * dy))

    _, cache = norm.batchnorm2d_forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = norm.batchnorm2d_backward(dy, cache)
    for analytic, array in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        numeric = numeric_gradient(loss, array)
        assert np.max(np.abs(analytic - numeric)) < 1e-6 * max(1.0, np.max(np.abs(numeric)))


def test_batchnorm_steps_rebuild_every_array_and_follow_the_phases():
    x, dy = random((2, 2, 2, 3), 1), random((2, 2, 2, 3), 2)
    gamma, beta = np.array([1.2, 0.8]), np.array([0.1, -0.3])
    (y, cache), forward = collect_steps(norm.batchnorm2d_forward, x, gamma, beta, 1e-5)
    grads, backward = collect_steps(norm.batchnorm2d_backward, dy, cache)
    phases = list(dict.fromkeys(e.phase for e in forward + backward))
    assert phases == ["mean", "variance", "normalise", "scale_shift", "grad_beta", "grad_gamma",
                      "grad_xhat", "grad_var", "grad_mean", "grad_input"]  # fmt: skip
    built = {}
    for e in forward + backward:
        built.setdefault(e.target, {})[e.target_index] = e.after
    assert [e.step for e in forward] == list(range(len(forward)))
    for name, array in (("mu", cache.mu), ("var", cache.var), ("xhat", cache.xhat), ("y", y),
                        ("dx", grads[0]), ("dgamma", grads[1]), ("dbeta", grads[2])):  # fmt: skip
        rebuilt = np.zeros_like(array)
        for index, value in built[name].items():
            rebuilt[index] = value
        np.testing.assert_array_equal(rebuilt, array)
    # each step's before is the value the target held after the previous write to it
    for e in forward:
        if e.kind == "mac":
            assert e.after == pytest.approx(e.before + e.operands[0].value * e.operands[1].value)
    # every value of a channel adds into its mean: M = N·H·W steps per channel
    assert sum(1 for e in forward if e.phase == "mean" and e.target_index == (0,)) == 2 * 2 * 3


def test_dropout_with_the_same_mask_matches_autograd_and_its_shape_matches_pytorch():
    x, dy = random((2, 3, 4, 4), 3), random((2, 3, 4, 4), 4)
    for p in (0.1, 0.5, 0.8):
        u = np.random.default_rng(5).random(x.shape)
        mask = norm.dropout_mask(u, p)
        y, cache = norm.dropout_forward(x, mask, p)
        dx = norm.dropout_backward(dy, cache)
        xt = torch.tensor(x, requires_grad=True)
        yt = xt * torch.tensor(mask) / (1 - p)
        (yt * torch.tensor(dy)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-14)
        np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-14)
        # PyTorch's own dropout draws another mask but scales the same way: 0 or x/(1 − p)
        torch.manual_seed(0)
        drawn = F.dropout(torch.tensor(x), p, training=True).numpy()
        kept = drawn != 0
        np.testing.assert_allclose(drawn[kept], x[kept] / (1 - p), atol=1e-14)
        np.testing.assert_array_equal(F.dropout(torch.tensor(x), p, training=False).numpy(), x)

        # central differences with the mask held fixed
        def loss(mask=mask, p=p):
            return float(np.sum(norm.dropout_forward(x, mask, p)[0] * dy))

        numeric = numeric_gradient(loss, x)
        np.testing.assert_allclose(dx, numeric, atol=1e-6)


def test_the_mask_keeps_u_at_least_p():
    u = np.array([[[[0.0, 0.49, 0.5, 0.99]]]])
    mask, events = collect_steps(norm.dropout_mask, u, 0.5)
    np.testing.assert_array_equal(mask, [[[[0, 0, 1, 1]]]])
    assert [e.kind for e in events] == ["keep"] * 4 and events[2].after == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: norm.batchnorm2d_forward(np.zeros((2, 3, 3)), [1], [0]), "x must be 4-D"),
        (lambda: norm.batchnorm2d_forward(np.zeros((1, 2, 2, 2)), [1], [0, 0]), "gamma must"),
        (lambda: norm.batchnorm2d_forward(np.zeros((1, 1, 2, 2)), [1], [0], 0.0), "eps must"),
        (lambda: norm.batchnorm2d_forward(np.zeros((1, 1, 1, 1)), [1], [0]), "at least 2 values"),
        (lambda: norm.dropout_mask(np.zeros((1, 1, 2, 2)), 1.0), r"p must be in \[0, 1\)"),
        (
            lambda: norm.dropout_forward(np.zeros((1, 1, 2, 2)), np.ones((1, 1, 2, 1)), 0.5),
            "the mask must have the shape",
        ),  # fmt: skip
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_engine_computes_with_scalar_loops_only():
    """No reductions or products over arrays in `norm`: what the lesson shows is what runs."""
    tree = ast.parse(inspect.getsource(norm))
    reductions = {"sum", "mean", "var", "std", "dot", "matmul", "einsum", "prod", "max", "min"}
    for node in ast.walk(tree):
        assert not isinstance(node, ast.MatMult)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert not (node.value.id == "np" and node.attr in reductions), node.attr
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in reductions, node.func.attr
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all("torch" not in (name or "") for name in names)


# --------------------------------------------------------------------------- the lesson


@pytest.mark.parametrize("op", ["batchnorm", "dropout"])
@pytest.mark.parametrize("seed", [0, 3, 41])
def test_the_lesson_agrees_with_pytorch_and_finite_differences(op, seed):
    example = build_layer_example(op, seed=seed)
    run = run_layer(example)
    assert layer_lesson.compare_with_torch(example, run) < 1e-12
    check = layer_lesson.gradient_check(example, run)
    assert check.passed(1e-6), check.summary()
    assert set(check.errors) == ({"dx", "dgamma", "dbeta"} if op == "batchnorm" else {"dx"})


def test_the_lesson_stages_are_in_the_order_of_the_lecture():
    run = run_layer(build_layer_example("batchnorm"))
    assert [stage.part for stage in run.stages] == [
        "μ", "σ²", "x̂", "y", "running stats", "dβ", "dγ", "dx̂", "dσ²", "dμ", "dx",
    ]  # fmt: skip
    assert [s.direction for s in run.stages].count("forward") == 5
    # the running statistics are the last forward stage: m·μ and m·σ²·M/(M − 1)
    ex = run.example
    np.testing.assert_allclose(run.values["running_mean"], 0.1 * run.values["mu"])
    count = ex.count
    np.testing.assert_allclose(
        run.values["running_var"], 0.9 + 0.1 * run.values["var"] * count / (count - 1)
    )
    # the chain rule's intermediate gradients come from the steps
    np.testing.assert_allclose(run.values["dxhat"], ex.dy * ex.gamma[None, :, None, None])
    dropout = run_layer(build_layer_example("dropout"))
    assert [s.key for s in dropout.stages] == ["dropout.mask", "dropout.forward",
                                               "dropout.grad_input"]  # fmt: skip
    assert "eval mode" in dropout.stages[1].source and "identity" in dropout.stages[1].source


def test_the_example_follows_the_settings_and_the_seed():
    example = build_layer_example("batchnorm", batch=3, channels=1, height=2, width=4, eps=0.01,
                                  momentum=0.5, seed=9)  # fmt: skip
    assert example.x.shape == (3, 1, 2, 4) and example.count == 24
    assert (example.eps, example.momentum, example.seed) == (0.01, 0.5, 9)
    assert example.settings() == {"batch": 3, "channels": 1, "height": 2, "width": 4,
                                  "eps": 0.01, "momentum": 0.5, "seed": 9}  # fmt: skip
    again = build_layer_example("batchnorm", batch=3, channels=1, height=2, width=4, seed=9)
    np.testing.assert_array_equal(again.x, example.x)
    assert not np.array_equal(build_layer_example("batchnorm", seed=1).x,
                              build_layer_example("batchnorm", seed=2).x)  # fmt: skip
    dropout = layer_lesson.layer_example_from_settings(LayerSettings("dropout", {"p": 0.25}))
    assert dropout.p == 0.25 and dropout.u is not None
    np.testing.assert_array_equal(dropout.mask, dropout.u >= 0.25)
    assert set(dropout.settings()) == set(LAYER_DEFAULTS["dropout"])


@pytest.mark.parametrize(
    ("op", "settings", "message"),
    [
        ("batchnorm", {"batch": 5}, "batch must be between 1 and 4"),
        ("batchnorm", {"eps": -1}, "eps must be above 0"),
        ("batchnorm", {"batch": 1, "height": 1, "width": 1}, "at least 2 values per channel"),
        ("dropout", {"p": 0.95}, "p must be above 0 and at most 0.9"),
        ("dropout", {"eps": 0.1}, "dropout has no setting 'eps'"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(op, settings, message):
    with pytest.raises(UsageError, match=message):
        build_layer_example(op, **settings)
