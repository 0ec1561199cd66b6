"""Naive batch normalisation and dropout, forward and backward, as plain nested Python loops.

The lecture's other layers, written the way `cnn_tui.lessons.naive` writes convolution and
pooling: every value is built from scalar arithmetic in loops you can read, and each scalar
operation can be reported as a `naive.StepEvent` through `on_step` (None: nothing is built).

Batch normalisation (training mode, x of shape (N, C, H, W); M = N·H·W values per channel):

    μ[c]  = (1/M) Σ_n,i,j x[n,c,i,j]                  the channel's mean
    σ²[c] = (1/M) Σ_n,i,j (x[n,c,i,j] − μ[c])²        its variance (biased: what normalises)
    x̂     = (x − μ[c]) / √(σ²[c] + ε)                 normalised
    y     = γ[c]·x̂ + β[c]                             scaled and shifted

and, as PyTorch's BatchNorm2d does in training, the running statistics
    running_mean ← (1 − m)·running_mean + m·μ,  running_var ← (1 − m)·running_var + m·σ²·M/(M − 1)
(the unbiased variance). Backward, the chain rule through y, x̂, σ² and μ:

    dβ[c]  = Σ dy                dγ[c] = Σ dy·x̂            dx̂ = dy·γ[c]
    dσ²[c] = Σ dx̂·(x − μ)·(−½)(σ² + ε)^(−3/2)
    dμ[c]  = Σ dx̂·(−1/√(σ² + ε)) + dσ²·(−2/M)·Σ (x − μ)      (the second sum is 0)
    dx     = dx̂/√(σ² + ε) + dσ²·2(x − μ)/M + dμ/M

Dropout (training): a mask kept with probability 1 − p (mask = 1 where u ≥ p, u uniform in
[0, 1) drawn from the seed), y = x·mask/(1 − p) and dx = dy·mask/(1 − p). In eval mode
dropout is the identity (and batch normalisation uses the running statistics): the lessons
step through training mode, where the layers do something.

`layer_step_text` writes the steps of these kinds as text, the way `step_text.step_text` writes
the conv / pool / network kinds (which it still writes: "mac" and "add"). Nothing here imports
torch or Textual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui.lessons.naive import Operand, StepCallback, StepEvent
from cnn_tui.lessons.step_text import StepStyle, step_text

__all__ = [
    "BatchNormCache",
    "DropoutCache",
    "LAYER_KINDS",
    "batchnorm2d_backward",
    "batchnorm2d_forward",
    "batchnorm2d_running_update",
    "dropout_backward",
    "dropout_forward",
    "dropout_mask",
    "layer_step_text",
]

BN_OP = "batchnorm2d"
DROPOUT_OP = "dropout"


@dataclass(frozen=True, slots=True)
class BatchNormCache:
    """What `batchnorm2d_backward` needs from the forward pass."""

    x: np.ndarray  # (N, C, H, W)
    mu: np.ndarray  # (C,)
    var: np.ndarray  # (C,) biased
    xhat: np.ndarray  # (N, C, H, W)
    gamma: np.ndarray  # (C,)
    eps: float


@dataclass(frozen=True, slots=True)
class DropoutCache:
    """What `dropout_backward` needs: the mask and the keep probability's inverse."""

    mask: np.ndarray  # 0.0 / 1.0, the shape of x
    p: float


def _check_bn(x: Any, gamma: Any, beta: Any, eps: float) -> tuple[np.ndarray, ...]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    channels = x.shape[1]
    gamma = np.asarray(gamma, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    for name, array in (("gamma", gamma), ("beta", beta)):
        if array.shape != (channels,):
            raise ValueError(
                f"{name} must have one value per channel, ({channels},), got {array.shape}"
            )
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be above 0, got {eps}")
    if x.shape[0] * x.shape[2] * x.shape[3] < 2:
        raise ValueError("batch normalisation needs at least 2 values per channel (N·H·W ≥ 2)")
    return x, gamma, beta


def _event(op: str, phase: str, kind: str, step: int, loops: tuple[tuple[str, int], ...],
           target: str, index: tuple[int, ...], operands: tuple[Operand, ...],
           before: float, after: float) -> StepEvent:  # fmt: skip
    return StepEvent(op, phase, kind, step, loops, target, index, operands, before, after)


def _nchw(n: int, c: int, i: int, j: int) -> tuple[tuple[str, int], ...]:
    return (("n", n), ("c", c), ("i", i), ("j", j))


def _cnij(c: int, n: int, i: int, j: int) -> tuple[tuple[str, int], ...]:
    return (("c", c), ("n", n), ("i", i), ("j", j))


def batchnorm2d_forward(
    x: Any, gamma: Any, beta: Any, eps: float = 1e-5, on_step: StepCallback | None = None
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalisation in training mode: (y, cache). Steps in four phases: "mean" (μ),
    "variance" (σ²), "normalise" (x̂) and "scale_shift" (y)."""
    x, gamma, beta = _check_bn(x, gamma, beta, eps)
    batch, channels, height, width = x.shape
    count = batch * height * width
    scale = 1.0 / count
    mu = np.zeros(channels)
    var = np.zeros(channels)
    xhat = np.zeros_like(x)
    y = np.zeros_like(x)
    step = 0
    for c in range(channels):
        for n in range(batch):
            for i in range(height):
                for j in range(width):
                    before = mu[c]
                    mu[c] = before + x[n, c, i, j] * scale
                    if on_step is not None:
                        operands = (Operand("x", (n, c, i, j), x[n, c, i, j]),
                                    Operand("scale", (), scale))  # fmt: skip
                        on_step(_event(BN_OP, "mean", "mac", step, _cnij(c, n, i, j), "mu",
                                       (c,), operands, before, mu[c]))  # fmt: skip
                        step += 1
    for c in range(channels):
        for n in range(batch):
            for i in range(height):
                for j in range(width):
                    before = var[c]
                    deviation = x[n, c, i, j] - mu[c]
                    var[c] = before + deviation * deviation * scale
                    if on_step is not None:
                        operands = (Operand("x", (n, c, i, j), x[n, c, i, j]),
                                    Operand("mu", (c,), mu[c]), Operand("scale", (), scale))  # fmt: skip
                        on_step(_event(BN_OP, "variance", "sqdev", step, _cnij(c, n, i, j),
                                       "var", (c,), operands, before, var[c]))  # fmt: skip
                        step += 1
    for n, c, i, j in np.ndindex(*x.shape):
        xhat[n, c, i, j] = (x[n, c, i, j] - mu[c]) / math.sqrt(var[c] + eps)
        if on_step is not None:
            operands = (Operand("x", (n, c, i, j), x[n, c, i, j]), Operand("mu", (c,), mu[c]),
                        Operand("var", (c,), var[c]), Operand("eps", (), eps))  # fmt: skip
            on_step(_event(BN_OP, "normalise", "norm", step, _nchw(n, c, i, j), "xhat",
                           (n, c, i, j), operands, 0.0, xhat[n, c, i, j]))  # fmt: skip
            step += 1
    for n, c, i, j in np.ndindex(*x.shape):
        y[n, c, i, j] = gamma[c] * xhat[n, c, i, j] + beta[c]
        if on_step is not None:
            operands = (Operand("gamma", (c,), gamma[c]),
                        Operand("xhat", (n, c, i, j), xhat[n, c, i, j]),
                        Operand("beta", (c,), beta[c]))  # fmt: skip
            on_step(_event(BN_OP, "scale_shift", "affine", step, _nchw(n, c, i, j), "y",
                           (n, c, i, j), operands, 0.0, y[n, c, i, j]))  # fmt: skip
            step += 1
    return y, BatchNormCache(x, mu, var, xhat, gamma, eps)


def batchnorm2d_running_update(
    running_mean: Any,
    running_var: Any,
    cache: BatchNormCache,
    momentum: float = 0.1,
    on_step: StepCallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics after one training batch, as BatchNorm2d keeps them:
    (1 − m)·old + m·new, with the unbiased variance σ²·M/(M − 1). Phase "running"."""
    old_mean = np.asarray(running_mean, dtype=np.float64)
    old_var = np.asarray(running_var, dtype=np.float64)
    batch, channels, height, width = cache.x.shape
    count = batch * height * width
    unbiased = count / (count - 1)
    new_mean, new_var = old_mean.copy(), old_var.copy()
    step = 0
    for c in range(channels):
        new_mean[c] = (1 - momentum) * old_mean[c] + momentum * cache.mu[c]
        new_var[c] = (1 - momentum) * old_var[c] + momentum * cache.var[c] * unbiased
        if on_step is not None:
            m = Operand("momentum", (), momentum)
            on_step(_event(BN_OP, "running", "ema", step, (("c", c),), "running_mean", (c,),
                           (Operand("running_mean_old", (c,), old_mean[c]),
                            Operand("mu", (c,), cache.mu[c]), m),
                           old_mean[c], new_mean[c]))  # fmt: skip
            on_step(_event(BN_OP, "running", "ema", step + 1, (("c", c),), "running_var", (c,),
                           (Operand("running_var_old", (c,), old_var[c]),
                            Operand("var", (c,), cache.var[c]), m,
                            Operand("unbiased", (), unbiased)),
                           old_var[c], new_var[c]))  # fmt: skip
            step += 2
    return new_mean, new_var


def batchnorm2d_backward(
    dy: Any, cache: BatchNormCache, on_step: StepCallback | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dγ, dβ) of batch normalisation in training mode. Steps in six phases:
    "grad_beta", "grad_gamma", "grad_xhat", "grad_var", "grad_mean", "grad_input"."""
    dy = np.asarray(dy, dtype=np.float64)
    x, mu, var, xhat, gamma, eps = cache.x, cache.mu, cache.var, cache.xhat, cache.gamma, cache.eps
    if dy.shape != x.shape:
        raise ValueError(f"dy must have the shape of x {x.shape}, got {dy.shape}")
    batch, channels, height, width = x.shape
    scale = 1.0 / (batch * height * width)
    dbeta, dgamma = np.zeros(channels), np.zeros(channels)
    dvar, dmu = np.zeros(channels), np.zeros(channels)
    dxhat, dx = np.zeros_like(x), np.zeros_like(x)
    step = 0

    def emit(phase: str, kind: str, loops: Any, target: str, index: tuple[int, ...],
             operands: tuple[Operand, ...], before: float, after: float) -> None:  # fmt: skip
        nonlocal step
        if on_step is not None:
            on_step(_event(BN_OP, phase, kind, step, loops, target, index, operands, before,
                           after))  # fmt: skip
            step += 1

    def per_channel(phase: str, kind: str, target: np.ndarray, name: str,
                    term: Callable[[int, int, int, int], tuple[float, tuple[Operand, ...]]]) -> None:  # fmt: skip
        for c in range(channels):
            for n in range(batch):
                for i in range(height):
                    for j in range(width):
                        value, operands = term(n, c, i, j)
                        before = target[c]
                        target[c] = before + value
                        emit(phase, kind, _cnij(c, n, i, j), name, (c,), operands, before,
                             target[c])  # fmt: skip

    def o_dy(n: int, c: int, i: int, j: int) -> Operand:
        return Operand("dy", (n, c, i, j), dy[n, c, i, j])

    per_channel("grad_beta", "add", dbeta, "dbeta",
                lambda n, c, i, j: (dy[n, c, i, j], (o_dy(n, c, i, j),)))  # fmt: skip
    per_channel("grad_gamma", "mac", dgamma, "dgamma",
                lambda n, c, i, j: (dy[n, c, i, j] * xhat[n, c, i, j],
                                    (o_dy(n, c, i, j),
                                     Operand("xhat", (n, c, i, j), xhat[n, c, i, j]))))  # fmt: skip
    for n, c, i, j in np.ndindex(*x.shape):
        dxhat[n, c, i, j] = dy[n, c, i, j] * gamma[c]
        emit("grad_xhat", "mul", _nchw(n, c, i, j), "dxhat", (n, c, i, j),
             (o_dy(n, c, i, j), Operand("gamma", (c,), gamma[c])), 0.0, dxhat[n, c, i, j])  # fmt: skip

    def var_term(n: int, c: int, i: int, j: int) -> tuple[float, tuple[Operand, ...]]:
        value = dxhat[n, c, i, j] * (x[n, c, i, j] - mu[c]) * -0.5 * (var[c] + eps) ** -1.5
        return value, (Operand("dxhat", (n, c, i, j), dxhat[n, c, i, j]),
                       Operand("x", (n, c, i, j), x[n, c, i, j]), Operand("mu", (c,), mu[c]),
                       Operand("var", (c,), var[c]), Operand("eps", (), eps))  # fmt: skip

    per_channel("grad_var", "dvar", dvar, "dvar", var_term)

    def mean_term(n: int, c: int, i: int, j: int) -> tuple[float, tuple[Operand, ...]]:
        value = (-dxhat[n, c, i, j] / math.sqrt(var[c] + eps)
                 + dvar[c] * -2.0 * (x[n, c, i, j] - mu[c]) * scale)  # fmt: skip
        return value, (Operand("dxhat", (n, c, i, j), dxhat[n, c, i, j]),
                       Operand("var", (c,), var[c]), Operand("eps", (), eps),
                       Operand("dvar", (c,), dvar[c]), Operand("x", (n, c, i, j), x[n, c, i, j]),
                       Operand("mu", (c,), mu[c]), Operand("scale", (), scale))  # fmt: skip

    per_channel("grad_mean", "dmu", dmu, "dmu", mean_term)
    for n, c, i, j in np.ndindex(*x.shape):
        dx[n, c, i, j] = (dxhat[n, c, i, j] / math.sqrt(var[c] + eps)
                          + dvar[c] * 2.0 * (x[n, c, i, j] - mu[c]) * scale
                          + dmu[c] * scale)  # fmt: skip
        emit("grad_input", "dx", _nchw(n, c, i, j), "dx", (n, c, i, j),
             (Operand("dxhat", (n, c, i, j), dxhat[n, c, i, j]), Operand("var", (c,), var[c]),
              Operand("eps", (), eps), Operand("dvar", (c,), dvar[c]),
              Operand("x", (n, c, i, j), x[n, c, i, j]), Operand("mu", (c,), mu[c]),
              Operand("dmu", (c,), dmu[c]), Operand("scale", (), scale)),
             0.0, dx[n, c, i, j])  # fmt: skip
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- dropout


def dropout_mask(u: Any, p: float, on_step: StepCallback | None = None) -> np.ndarray:
    """mask = 1 where u ≥ p (kept, probability 1 − p), else 0. Phase "mask"."""
    u = np.asarray(u, dtype=np.float64)
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    mask = np.zeros_like(u)
    for step, index in enumerate(np.ndindex(*u.shape)):
        mask[index] = 1.0 if u[index] >= p else 0.0
        if on_step is not None:
            operands = (Operand("u", index, u[index]), Operand("p", (), p))
            loops = tuple(zip("ncij", index, strict=False))
            on_step(_event(DROPOUT_OP, "mask", "keep", step, loops, "mask", index, operands,
                           0.0, mask[index]))  # fmt: skip
    return mask


def _scaled(phase: str, source: str, target: str, values: np.ndarray, mask: np.ndarray, p: float,
            on_step: StepCallback | None) -> np.ndarray:  # fmt: skip
    keep = 1.0 / (1.0 - p)
    out = np.zeros_like(values)
    for step, index in enumerate(np.ndindex(*values.shape)):
        out[index] = values[index] * mask[index] * keep
        if on_step is not None:
            operands = (Operand(source, index, values[index]), Operand("mask", index, mask[index]),
                        Operand("keep", (), keep))  # fmt: skip
            loops = tuple(zip("ncij", index, strict=False))
            on_step(_event(DROPOUT_OP, phase, "drop", step, loops, target, index, operands, 0.0,
                           out[index]))  # fmt: skip
    return out


def dropout_forward(
    x: Any, mask: Any, p: float, on_step: StepCallback | None = None
) -> tuple[np.ndarray, DropoutCache]:
    """Dropout in training mode with a given mask: y = x·mask/(1 − p). Phase "forward"."""
    x = np.asarray(x, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape != x.shape:
        raise ValueError(f"the mask must have the shape of x {x.shape}, got {mask.shape}")
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    return _scaled("forward", "x", "y", x, mask, p, on_step), DropoutCache(mask, p)


def dropout_backward(
    dy: Any, cache: DropoutCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """dx = dy·mask/(1 − p): the gradient flows through the kept cells only. Phase
    "grad_input"."""
    dy = np.asarray(dy, dtype=np.float64)
    if dy.shape != cache.mask.shape:
        raise ValueError(f"dy must have the shape of the mask {cache.mask.shape}, got {dy.shape}")
    return _scaled("grad_input", "dy", "dx", dy, cache.mask, cache.p, on_step)


# --------------------------------------------------------------------------- step text

LAYER_KINDS = ("sqdev", "norm", "affine", "ema", "mul", "dvar", "dmu", "dx", "keep", "drop")


def layer_step_text(e: StepEvent, style: StepStyle) -> tuple[str, str]:
    """One step of these layers as (formula, numbers), like `step_text.step_text` (which writes
    the "mac" and "add" steps of the means and sums)."""
    if e.kind not in LAYER_KINDS:
        if e.kind == "mac" and any(o.name == "scale" for o in e.operands):
            return _mean_text(e, style)
        return step_text(e, style)
    ref, num, factor = style.ref, style.num, style.factor
    cell = style.cell or (lambda name, value: num(value))
    o = {op.name: op for op in e.operands}

    def r(name: str) -> str:
        return ref(name, o[name].index)

    def v(name: str) -> str:
        return cell(name, o[name].value)

    target = ref(e.target, e.target_index)
    before, after = cell(e.target, e.before), cell(e.target, e.after)
    root = "√(σ²+ε)"
    if e.kind == "sqdev":
        return (
            f"{target} += ({r('x')} − {r('mu')})²/M",
            f"= {before} + ({v('x')} − {factor(o['mu'].value, False, v('mu'))})²/{_count(o)} "
            f"→ {after}",
        )
    if e.kind == "norm":
        std = math.sqrt(o["var"].value + o["eps"].value)
        return (
            f"{target} = ({r('x')} − {r('mu')}) / √({r('var')} + ε)",
            f"= ({v('x')} − {factor(o['mu'].value, False, v('mu'))}) / √({v('var')} + "
            f"{_eps(o['eps'].value)}) = {num(o['x'].value - o['mu'].value)} / {num(std)} → {after}",
        )
    if e.kind == "affine":
        return (
            f"{target} = {r('gamma')}·{r('xhat')} + {r('beta')}",
            f"= {v('gamma')}·{factor(o['xhat'].value, False, v('xhat'))} + "
            f"{factor(o['beta'].value, False, v('beta'))} → {after}",
        )
    if e.kind == "ema":
        m = o["momentum"].value
        if "unbiased" in o:
            old, new = "running_var_old", "var"
            formula = f"{target} = (1−m)·{r(old)} + m·{r('var')}·M/(M−1)"
            tail = f"·{num(o['unbiased'].value)}"
        else:
            old, new, tail = "running_mean_old", "mu", ""
            formula = f"{target} = (1−m)·{r(old)} + m·{r('mu')}"
        return (
            formula,
            f"= {num(1 - m)}·{factor(o[old].value, False, v(old))} + {num(m)}·"
            f"{factor(o[new].value, False, v(new))}{tail} → {after}",
        )
    if e.kind == "mul":
        first, second = e.operands
        return (
            f"{target} = {ref(first.name, first.index)}·{ref(second.name, second.index)}",
            f"= {cell(first.name, first.value)}·{factor(second.value, False, cell(second.name, second.value))} → {after}",
        )
    if e.kind == "dvar":
        term = e.after - e.before
        return (
            f"{target} += {r('dxhat')}·({r('x')} − {r('mu')})·(−½)({r('var')} + ε)^(−3/2)",
            f"= {before} + {factor(o['dxhat'].value, False, v('dxhat'))}·({v('x')} − {factor(o['mu'].value, False, v('mu'))})"
            f"·(−½)·{num((o['var'].value + o['eps'].value) ** -1.5)} = {before} + "
            f"{factor(term, False)} → {after}",
        )
    if e.kind == "dmu":
        inv = 1 / math.sqrt(o["var"].value + o["eps"].value)
        deviation = o["x"].value - o["mu"].value
        return (
            f"{target} += −{r('dxhat')}/{root} + {r('dvar')}·(−2)({r('x')} − {r('mu')})/M",
            f"= {before} − {factor(o['dxhat'].value, False, v('dxhat'))}·{num(inv)} + "
            f"{factor(o['dvar'].value, False, v('dvar'))}·(−2)·{factor(deviation, False)}/"
            f"{_count(o)} → {after}",
        )
    if e.kind == "dx":
        inv = 1 / math.sqrt(o["var"].value + o["eps"].value)
        deviation = o["x"].value - o["mu"].value
        return (
            f"{target} = {r('dxhat')}/{root} + {r('dvar')}·2({r('x')} − {r('mu')})/M + "
            f"{r('dmu')}/M",
            f"= {v('dxhat')}·{num(inv)} + {factor(o['dvar'].value, False, v('dvar'))}·2·"
            f"{factor(deviation, False)}/{_count(o)} + {factor(o['dmu'].value, False, v('dmu'))}"
            f"/{_count(o)} → {after}",
        )
    if e.kind == "keep":
        kept = e.after == 1.0
        sign = "≥" if kept else "<"
        return (
            f"{target} = 1 if {r('u')} ≥ p else 0",
            f"with {v('u')} {sign} {num(o['p'].value)} → {after} ({'kept' if kept else 'dropped'})",
        )
    # drop: y = x·mask/(1 − p), or dx = dy·mask/(1 − p)
    source = next(op for op in e.operands if op.name not in ("mask", "keep"))
    keep = o["keep"].value
    return (
        f"{target} = {ref(source.name, source.index)}·{r('mask')}/(1−p)",
        f"= {cell(source.name, source.value)}·{v('mask')}·{num(keep)} → {after}",
    )


def _mean_text(e: StepEvent, style: StepStyle) -> tuple[str, str]:
    """A mean's step: μ[c] += x/M, written with M rather than 1/M as a factor."""
    cell = style.cell or (lambda name, value: style.num(value))
    source = next(o for o in e.operands if o.name != "scale")
    target = style.ref(e.target, e.target_index)
    count = _count({o.name: o for o in e.operands})
    return (
        f"{target} += {style.ref(source.name, source.index)}/M",
        f"= {cell(e.target, e.before)} + {style.factor(source.value, False, cell(source.name, source.value))}"
        f"/{count} → {cell(e.target, e.after)}",
    )


def _count(operands: dict[str, Operand]) -> str:
    """M, the values per channel, from the 1/M a step read."""
    return str(round(1 / operands["scale"].value))


def _eps(value: float) -> str:
    return f"{value:g}"
