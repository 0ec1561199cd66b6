"""The network layers of the naive engine (ReLU, flatten, linear, softmax cross-entropy, SGD)
against PyTorch autograd and against central differences, and their step events."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_tui.lessons import naive
from cnn_tui.lessons.naive import collect_steps

EPS = 1e-6


def numeric_gradient(loss, array: np.ndarray) -> np.ndarray:
    """∂loss/∂array by central differences, entry by entry (loss reads `array` in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(*array.shape):
        original = array[index]
        array[index] = original + EPS
        plus = loss()
        array[index] = original - EPS
        minus = loss()
        array[index] = original
        grad[index] = (plus - minus) / (2 * EPS)
    return grad


def weighted(out: np.ndarray, weights: np.ndarray) -> float:
    """L = Σ out·weights, summed exactly (small rounding error for the differences)."""
    return math.fsum((np.asarray(out) * weights).ravel().tolist())


def rand(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- ReLU


@pytest.mark.parametrize("shape", [(1, 2, 4, 4), (2, 3, 3, 5), (3, 7), (5,)])
def test_relu_matches_torch_and_finite_differences(shape):
    x = rand(0, *shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink at 0
    dout = rand(1, *shape)
    out, cache = naive.relu_forward(x)
    dx = naive.relu_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    ref = F.relu(xt)
    ref.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, ref.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    numeric = numeric_gradient(lambda: weighted(naive.relu_forward(x)[0], dout), x)
    np.testing.assert_allclose(dx, numeric, atol=1e-8)


def test_relu_events_write_each_cell_once_and_mask_reads_dout_and_x():
    x = np.array([[[[-1.0, 2.0], [0.0, 3.5]]]])
    (out, cache), events = collect_steps(naive.relu_forward, x)
    assert [e.kind for e in events] == ["relu"] * 4
    assert [e.after for e in events] == [0.0, 2.0, 0.0, 3.5]
    assert events[1].loops == (("n", 0), ("c", 0), ("i", 0), ("j", 1))
    assert events[1].operands[0].name == "x" and events[1].target == "out"
    dx, back = collect_steps(naive.relu_backward, np.full(x.shape, 7.0), cache)
    assert [e.kind for e in back] == ["mask"] * 4 and [e.after for e in back] == [0, 7, 0, 7]
    assert [o.name for o in back[0].operands] == ["dout", "x"]


# --------------------------------------------------------------------------- flatten


def test_flatten_is_torch_flatten_and_its_backward_the_reshape():
    x = rand(2, 2, 3, 2, 4)
    out, cache = naive.flatten_forward(x)
    np.testing.assert_array_equal(out, torch.flatten(torch.tensor(x), 1).numpy())
    dout = rand(3, *out.shape)
    np.testing.assert_array_equal(naive.flatten_backward(dout, cache), dout.reshape(x.shape))
    _, events = collect_steps(naive.flatten_forward, x)
    assert len(events) == x.size and {e.kind for e in events} == {"copy"}
    e = events[13]  # d = 13 = (c·2 + i)·4 + j with c = 1, i = 1, j = 1
    assert e.target_index == (0, 13) and e.operands[0].index == (0, 1, 1, 1)


# --------------------------------------------------------------------------- linear


@pytest.mark.parametrize("n, d, k", [(1, 8, 2), (3, 5, 4), (2, 1, 3)])
def test_linear_matches_torch_and_finite_differences(n, d, k):
    x, w, b, dout = rand(4, n, d), rand(5, k, d), rand(6, k), rand(7, n, k)
    out, cache = naive.linear_forward(x, w, b)
    dx, dw, db = naive.linear_backward(dout, cache)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ref = F.linear(xt, wt, bt)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    for mine, theirs in ((dx, xt), (dw, wt), (db, bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)

    def loss():
        return weighted(naive.linear_forward(x, w, b)[0], dout)

    for analytic, array in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, numeric_gradient(loss, array), atol=1e-7)


def test_linear_events_bias_then_one_mac_per_feature():
    x, w, b = rand(0, 2, 3), rand(1, 4, 3), rand(2, 4)
    (out, cache), events = collect_steps(naive.linear_forward, x, w, b)
    assert len(events) == 2 * 4 * (1 + 3)
    first = events[:4]
    assert [e.kind for e in first] == ["bias", "mac", "mac", "mac"]
    assert first[-1].after == pytest.approx(out[0, 0])
    assert [o.name for o in first[1].operands] == ["x", "w"]
    _, back = collect_steps(naive.linear_backward, rand(3, 2, 4), cache)
    phases = [e.phase for e in back]
    assert phases == ["grad_bias"] * 8 + ["grad_weight"] * 24 + ["grad_input"] * 24
    assert back[8].target == "dw" and back[8].loops == (("k", 0), ("d", 0), ("n", 0))
    assert back[-1].target == "dx" and back[-1].loops == (("n", 1), ("d", 2), ("k", 3))


# --------------------------------------------------------------------------- softmax CE


@pytest.mark.parametrize("n, k", [(1, 2), (3, 4), (2, 5)])
def test_softmax_cross_entropy_matches_torch_and_finite_differences(n, k):
    z = rand(8, n, k) * 3
    y = np.arange(n) % k
    loss, cache = naive.softmax_cross_entropy_forward(z, y)
    dz = naive.softmax_cross_entropy_backward(cache)
    zt = torch.tensor(z, requires_grad=True)
    ref = F.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    np.testing.assert_allclose(cache.p, F.softmax(torch.tensor(z), 1).numpy(), rtol=1e-13)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-12, atol=1e-14)
    numeric = numeric_gradient(lambda: naive.softmax_cross_entropy_forward(z, y)[0], z)
    np.testing.assert_allclose(dz, numeric, atol=1e-8)


def test_softmax_is_stable_for_large_scores_and_its_events_name_each_array():
    z = np.array([[1000.0, 1001.0, 999.0]])
    (loss, cache), events = collect_steps(naive.softmax_cross_entropy_forward, z, [1])
    ref = F.cross_entropy(torch.tensor(z), torch.tensor([1])).item()
    assert math.isfinite(loss) and loss == pytest.approx(ref)
    assert [e.kind for e in events] == ["compare"] * 3 + ["exp"] * 3 + ["add"] * 3 + ["div"] * 3 + [
        "nll"
    ]
    assert [e.target for e in events[::3]] == ["zmax", "e", "s", "p", "loss"]
    assert events[-1].target_index == () and events[-1].after == pytest.approx(loss)
    assert events[-1].operands[0].index == (0, 1)  # the true class's probability
    _, back = collect_steps(naive.softmax_cross_entropy_backward, cache)
    assert [e.kind for e in back] == ["sub"] * 3
    assert [o.value for o in back[1].operands] == [pytest.approx(cache.p[0, 1]), 1.0]


def test_a_batch_averages_the_loss_with_a_scale_operand():
    z, y = rand(9, 2, 3), np.array([2, 0])
    (_, cache), events = collect_steps(naive.softmax_cross_entropy_forward, z, y)
    nll = [e for e in events if e.kind == "nll"]
    assert len(nll) == 2 and nll[0].operands[1].name == "scale" and nll[0].operands[1].value == 0.5
    _, back = collect_steps(naive.softmax_cross_entropy_backward, cache)
    assert all(e.operands[-1].name == "scale" for e in back)


# --------------------------------------------------------------------------- SGD


def test_sgd_update_is_one_torch_optim_sgd_step():
    param, grad = rand(10, 2, 1, 3, 3), rand(11, 2, 1, 3, 3)
    new, events = collect_steps(naive.sgd_update, param, grad, 0.1)
    tensor = torch.tensor(param, requires_grad=True)
    tensor.grad = torch.tensor(grad)
    torch.optim.SGD([tensor], lr=0.1).step()
    np.testing.assert_allclose(new, tensor.detach().numpy(), rtol=0, atol=1e-15)
    assert len(events) == param.size and {e.kind for e in events} == {"sgd"}
    e = events[5]
    assert [o.name for o in e.operands] == ["param", "grad", "lr"]
    assert e.before == param.flat[5] and e.after == new.flat[5]
    np.testing.assert_array_equal(param, rand(10, 2, 1, 3, 3))  # the input is left as it was


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: naive.linear_forward(np.zeros(3), np.zeros((2, 3)), np.zeros(2)),
            r"x must be 2-D",
        ),
        (
            lambda: naive.linear_forward(np.zeros((1, 3)), np.zeros((2, 4)), np.zeros(2)),
            r"w has 4 input features but x has 3",
        ),
        (
            lambda: naive.linear_forward(np.zeros((1, 3)), np.zeros((2, 3)), np.zeros(3)),
            r"b must have shape \(K,\) = \(2,\)",
        ),
        (
            lambda: naive.softmax_cross_entropy_forward(np.zeros((2, 3)), [0]),
            r"y must have shape \(N,\) = \(2,\)",
        ),
        (
            lambda: naive.softmax_cross_entropy_forward(np.zeros((1, 3)), [3]),
            r"y must hold class indices from 0 to 2",
        ),
        (lambda: naive.flatten_forward(np.zeros((2, 3))), r"x must be 4-D"),
        (lambda: naive.sgd_update(np.zeros(3), np.zeros(2), 0.1), r"grad has shape \(2,\)"),
        (lambda: naive.sgd_update(np.zeros(3), np.zeros(3), 0), r"lr must be a positive number"),
        (
            lambda: naive.relu_backward(np.zeros(3), naive.relu_forward(np.zeros(2))[1]),
            r"dout has shape \(3,\)",
        ),
        (
            lambda: naive.linear_backward(np.zeros((1, 2)), naive.relu_forward(np.zeros(2))[1]),
            r"cache must be the LinearCache returned by linear_forward",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
