"""Naive 2-D convolution and pooling, forward and backward, as plain nested Python loops.

Beside them the other layers of a tiny network, the same way: ReLU, flatten, a linear (fully
connected) layer, softmax cross-entropy, and the SGD update (`cnn_tui.lessons.network` chains
them into a whole network).

This is the engine of the step-through lessons. Every output value is built from scalar
multiply-adds (convolution, average pooling) or scalar comparisons (max pooling), so the loops
you read here are exactly the loops the lesson screen and `cnn-tui conv --no-ui` show. It is
slow on purpose and only meant for small arrays; no `@`, no dot products, no window sums.

Arrays are numpy arrays in NCHW layout: x (N, C, H, W), conv weights w (F, C, KH, KW), bias b (F,).
`stride`, `padding` and `kernel_size` take an int or an (h, w) pair. Padding is zeros.

Every function takes `on_step`: when given, it is called once per scalar operation with a
`StepEvent` (what was read, what was written, the value before and after). When it is None no
event is built, so the plain computation pays nothing for the lessons.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Pair = tuple[int, int]
StepCallback = Callable[["StepEvent"], None]

__all__ = [
    "AdamStep",
    "AvgPoolCache",
    "ConvCache",
    "FlattenCache",
    "GradCheck",
    "LinearCache",
    "MaxPoolCache",
    "Operand",
    "ReluCache",
    "SoftmaxCECache",
    "StepEvent",
    "adam_update",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "collect_steps",
    "conv2d_backward",
    "conv2d_forward",
    "count_steps",
    "flatten_backward",
    "flatten_forward",
    "gradient_check",
    "linear_backward",
    "linear_forward",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "conv2d_input_grad_transposed",
    "dilated_size",
    "stuffed_dout",
    "output_size",
    "output_size_formula",
    "output_size_rule",
    "pool_stride",
    "relu_backward",
    "relu_forward",
    "sgd_update",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
]


# --------------------------------------------------------------------------- step events


@dataclass(frozen=True, slots=True)
class Operand:
    """One scalar read by a step: `name[index] == value`."""

    name: str  # "x_pad", "x", "w", "b", "dout", "scale" (1/(kh·kw), index ())
    index: tuple[int, ...]  # index into that array (padded coordinates for x_pad)
    value: float


@dataclass(frozen=True, slots=True)
class StepEvent:
    """One scalar operation of a naive loop nest, as the lesson screens replay it.

    kind is "bias" (out starts at b[f]), "mac" (target += product of the operands), "add"
    (target += the one operand), "compare" (target = max(before, operand)) or "route"
    (target += the one operand, sent to the argmax of a max-pool window); the network layers
    add "relu" (target = max(0, x)), "mask" (target = dout where x > 0, else 0), "copy"
    (target = the operand), "exp" (target = exp(z − zmax)), "div" (target = e / s), "nll"
    (loss += −log p), "sub" (target = p − y), "sgd" (target = param − lr·grad) and Adam's
    "adam_m", "adam_v", "adam_mhat", "adam_vhat" and "adam" (`adam_update`).
    """

    op: str  # "conv2d" | "maxpool2d" | "avgpool2d" | "relu" | "flatten" | "linear" | ...
    phase: str  # "forward" | "grad_input" | "grad_weight" | "grad_bias" | "update"
    kind: str  # "bias" | "mac" | "add" | "compare" | "route" | "relu" | "mask" | "copy" | ...
    step: int  # 0-based position of this event within its call
    loops: tuple[tuple[str, int], ...]  # loop indices in nesting order
    target: str  # the array written: "out", "dx_pad", "dx", "dw", "db"
    target_index: tuple[int, ...]
    operands: tuple[Operand, ...]  # the scalars read, in the order of the arithmetic
    before: float  # the target's value before the step
    after: float  # the running value written

    def loop(self, name: str) -> int:
        """The value of loop variable `name` (e.g. "ki") at this step."""
        for loop_name, value in self.loops:
            if loop_name == name:
                return value
        raise KeyError(f"no loop {name!r} in {[n for n, _ in self.loops]}")


def collect_steps(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[StepEvent]]:
    """Call `fn(*args, on_step=..., **kwargs)` and return (its result, the list of its events)."""
    events: list[StepEvent] = []
    result = fn(*args, on_step=events.append, **kwargs)
    return result, events


# --------------------------------------------------------------------------- caches


@dataclass(frozen=True, slots=True)
class ConvCache:
    """What `conv2d_backward` needs from the forward pass."""

    x: np.ndarray  # the input (N, C, H, W)
    x_pad: np.ndarray  # the zero-padded input (N, C, H + 2·ph, W + 2·pw)
    w: np.ndarray  # weights (F, C, KH, KW)
    b: np.ndarray  # bias (F,)
    stride: Pair
    padding: Pair
    dilation: Pair = (1, 1)
    flip: bool = False  # a true convolution: the kernel was read rotated by 180°


@dataclass(frozen=True, slots=True)
class MaxPoolCache:
    """What `maxpool2d_backward` needs: argmax[n, c, i, j] = (row, col) of the window's max in x."""

    x: np.ndarray
    kernel: Pair
    stride: Pair
    argmax: np.ndarray  # int (N, C, OH, OW, 2)


@dataclass(frozen=True, slots=True)
class AvgPoolCache:
    """What `avgpool2d_backward` needs (only shapes: the average does not depend on x)."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    kernel: Pair
    stride: Pair


# --------------------------------------------------------------------------- arguments


def _pair(value: Any, name: str, minimum: int) -> Pair:
    """An int or an (h, w) pair of ints, each at least `minimum`, as an (h, w) tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        shown = pair[0] if pair[0] == pair[1] else pair
        raise ValueError(f"{name} must be {what}, got {shown}")
    return pair


def _as_4d(array: Any, name: str, layout: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {array.shape}")
    return array


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The common dtype if it is a float type, else float64 (integers are promoted)."""
    dtype = np.result_type(*(a.dtype for a in arrays))
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a sliding window: ⌊(n + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1.

    With dilation 1 this is the familiar ⌊(n + 2·padding − kernel) / stride⌋ + 1: a dilated
    kernel of size K spans D·(K − 1) + 1 cells (`dilated_size`).
    """
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be at least 0, got {padding}")
    if kernel < 1:
        raise ValueError(f"kernel_size must be positive, got {kernel}")
    if dilation < 1:
        raise ValueError(f"dilation must be positive, got {dilation}")
    span = dilated_size(kernel, dilation)
    if span > n + 2 * padding:
        what = f"kernel_size {kernel}" if dilation == 1 else f"dilated kernel span {span}"
        raise ValueError(f"{what} is larger than the padded input {n + 2 * padding}")
    return (n + 2 * padding - span) // stride + 1


def dilated_size(kernel: int, dilation: int = 1) -> int:
    """The cells a kernel of `kernel` taps spans with `dilation` − 1 holes between taps."""
    return dilation * (kernel - 1) + 1


def output_size_rule(
    n: object = "H",
    kernel: object = "K",
    stride: object = "S",
    twice_padding: object = "2P",
    dilation: object = None,
) -> str:
    """The rule `output_size` computes, written with the given terms: "⌊(H + 2P − K)/S⌋ + 1".

    The one place the rule is written out: the lesson screen shows it with letters, the trace
    with words, `output_size_formula` with numbers. twice_padding None drops the padding term
    (pooling has none): "⌊(H − K)/S⌋ + 1". A dilation (not None) writes the dilated kernel's
    span: "⌊(H + 2P − D·(K − 1) − 1)/S⌋ + 1".
    """
    pad = "" if twice_padding is None else f" + {twice_padding}"
    span = f"{kernel}" if dilation is None else f"{dilation}·({kernel} − 1) − 1"
    return f"⌊({n}{pad} − {span})/{stride}⌋ + 1"


def output_size_formula(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    *,
    pooling: bool = False,
    dilation: int = 1,
) -> str:
    """The output-size rule with its numbers, e.g. "⌊(5 + 2·1 − 3)/2⌋ + 1 = 3".

    pooling=True leaves out the padding term, which pooling does not have: "⌊(4 − 2)/2⌋ + 1 = 2";
    a dilation above 1 shows the dilated span: "⌊(7 + 2·0 − 2·(3 − 1) − 1)/1⌋ + 1 = 3".
    """
    size = output_size(n, kernel, stride, padding, dilation)
    if pooling and padding:
        raise ValueError(f"pooling has no padding, got {padding}")
    twice_padding = None if pooling else f"2·{padding}"
    shown = None if dilation == 1 else dilation
    return f"{output_size_rule(n, kernel, stride, twice_padding, shown)} = {size}"


def pool_stride(kernel: Pair, stride: int | Pair | None) -> Pair:
    """A pooling stride as an (h, w) pair; None means the kernel size (windows side by side)."""
    return kernel if stride is None else _pair(stride, "stride", 1)


def _check_dout(dout: Any, expected: tuple[int, ...]) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != expected:
        raise ValueError(
            f"dout has shape {dout.shape} but the forward output had shape {expected}: pass the "
            "gradient of the output this cache came from"
        )
    return dout


def _check_cache(cache: Any, kind: type, forward: str) -> None:
    if not isinstance(cache, kind):
        raise ValueError(f"cache must be the {kind.__name__} returned by {forward}, got {cache!r}")


# --------------------------------------------------------------------------- convolution


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    on_step: StepCallback | None = None,
    *,
    dilation: int | Pair = 1,
    flip: bool = False,
) -> tuple[np.ndarray, ConvCache]:
    """Convolution (cross-correlation, as in PyTorch and the lecture's layer formula
    X[m,n] = Σ o[m+i,n+j]·w[i,j] + b) of x (N, C, H, W) with w (F, C, KH, KW).

    out[n, f, i, j] = b[f] + Σ_c Σ_ki Σ_kj x_pad[n, c, i·sh + ki·dh, j·sw + kj·dw] · w[f, c, ki, kj]

    dilation (dh, dw) leaves dh − 1 rows (dw − 1 columns) between the kernel's taps, as
    PyTorch's `dilation`. flip=True is the true (mathematical) convolution: the kernel is read
    rotated by 180°, w[f, c, KH−1−ki, KW−1−kj] (cross-correlation with the flipped kernel).
    Returns out (N, F, OH, OW), OH = output_size(H, KH, sh, ph, dh) (likewise OW), and the
    cache for `conv2d_backward`. Events: per output cell one "bias" then one "mac" per
    (c, ki, kj).
    """
    x = _as_4d(x, "x", "(N, C, H, W)")
    w = _as_4d(w, "w", "(F, C, KH, KW)")
    b = np.asarray(b)
    n_batch, channels, height, width = x.shape
    filters, w_channels, kh, kw = w.shape
    if w_channels != channels:
        raise ValueError(
            f"w has {w_channels} input channels but x has {channels}: w must be "
            f"(F, C, KH, KW) with C = {channels}"
        )
    if b.shape != (filters,):
        raise ValueError(f"b must have shape (F,) = ({filters},) for w {w.shape}, got {b.shape}")
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation", 1)
    padded = (height + 2 * ph, width + 2 * pw)
    span = (dilated_size(kh, dh), dilated_size(kw, dw))
    if span[0] > padded[0] or span[1] > padded[1]:
        what = f"kernel_size {(kh, kw)} (from w)" if span == (kh, kw) else f"dilated kernel {span}"
        raise ValueError(
            f"{what} is larger than the padded input {padded}: "
            "use a smaller kernel or dilation, or more padding"
        )
    oh, ow = output_size(padded[0], kh, sh, 0, dh), output_size(padded[1], kw, sw, 0, dw)
    dtype = _float_dtype(x, w, b)
    x_pad = np.pad(x.astype(dtype), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w = w.astype(dtype)
    b = b.astype(dtype)
    out = np.zeros((n_batch, filters, oh, ow), dtype=dtype)
    step = 0
    for n in range(n_batch):
        for f in range(filters):
            for i in range(oh):
                for j in range(ow):
                    acc = b[f]
                    if on_step is not None:
                        on_step(
                            StepEvent(
                                "conv2d", "forward", "bias", step,
                                (("n", n), ("f", f), ("i", i), ("j", j)),
                                "out", (n, f, i, j), (Operand("b", (f,), float(acc)),),
                                0.0, float(acc),
                            )
                        )  # fmt: skip
                        step += 1
                    for c in range(channels):
                        for ki in range(kh):
                            for kj in range(kw):
                                r, s = i * sh + ki * dh, j * sw + kj * dw
                                wi, wj = (kh - 1 - ki, kw - 1 - kj) if flip else (ki, kj)
                                xv = x_pad[n, c, r, s]
                                wv = w[f, c, wi, wj]
                                before = acc
                                acc = acc + xv * wv
                                if on_step is not None:
                                    on_step(
                                        StepEvent(
                                            "conv2d", "forward", "mac", step,
                                            (("n", n), ("f", f), ("i", i), ("j", j),
                                             ("c", c), ("ki", ki), ("kj", kj)),
                                            "out", (n, f, i, j),
                                            (Operand("x_pad", (n, c, r, s), float(xv)),
                                             Operand("w", (f, c, wi, wj), float(wv))),
                                            float(before), float(acc),
                                        )
                                    )  # fmt: skip
                                    step += 1
                    out[n, f, i, j] = acc
    return out, ConvCache(x, x_pad, w, b, (sh, sw), (ph, pw), (dh, dw), bool(flip))


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache, on_step: StepCallback | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of a loss L given dout = ∂L/∂out, as three separate loop nests.

    With r = i·sh + ki·dh, s = j·sw + kj·dw (the cell of x_pad that tap (ki, kj) reads) and
    (wi, wj) the kernel cell it multiplies ((ki, kj), or (KH−1−ki, KW−1−kj) for a true
    convolution), by the chain rule:

    1. grad bias:   db[f] += dout[n, f, i, j]                           (∂out/∂b = 1, "add")
    2. grad weight: dw[f, c, wi, wj] += x_pad[n, c, r, s] · dout[n, f, i, j]   (∂out/∂w = x_pad)
    3. grad input:  dx_pad[n, c, r, s] += w[f, c, wi, wj] · dout[n, f, i, j]   (∂out/∂x_pad = w)

    The grad-input nest accumulates into a zero-padded dx_pad (its events use padded
    coordinates, target "dx_pad"); dx is dx_pad with the padding cut off. Each dw cell and each
    db cell is finished before the next starts; dx_pad is scattered into window by window,
    mirroring the forward pass (`conv2d_input_grad_transposed` computes the same dx as one
    convolution instead).
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    x_pad, w = cache.x_pad, cache.w
    n_batch, channels, height, width = cache.x.shape
    filters, _, kh, kw = w.shape
    sh, sw = cache.stride
    ph, pw = cache.padding
    dh, dw_ = cache.dilation
    flip = cache.flip
    oh = output_size(x_pad.shape[2], kh, sh, 0, dh)
    ow = output_size(x_pad.shape[3], kw, sw, 0, dw_)
    dout = _check_dout(dout, (n_batch, filters, oh, ow))
    dtype = _float_dtype(x_pad, dout)
    dout = dout.astype(dtype)
    step = 0

    db = np.zeros(filters, dtype=dtype)
    for f in range(filters):
        acc = db[f]
        for n in range(n_batch):
            for i in range(oh):
                for j in range(ow):
                    gv = dout[n, f, i, j]
                    before = acc
                    acc = acc + gv
                    if on_step is not None:
                        on_step(
                            StepEvent(
                                "conv2d", "grad_bias", "add", step,
                                (("f", f), ("n", n), ("i", i), ("j", j)),
                                "db", (f,), (Operand("dout", (n, f, i, j), float(gv)),),
                                float(before), float(acc),
                            )
                        )  # fmt: skip
                        step += 1
        db[f] = acc

    dw = np.zeros(w.shape, dtype=dtype)
    for f in range(filters):
        for c in range(channels):
            for ki in range(kh):
                for kj in range(kw):
                    # the kernel cell (wi, wj) meets x_pad at tap (ki, kj) of every window
                    wi, wj = (kh - 1 - ki, kw - 1 - kj) if flip else (ki, kj)
                    acc = dw[f, c, wi, wj]
                    for n in range(n_batch):
                        for i in range(oh):
                            for j in range(ow):
                                r, s = i * sh + ki * dh, j * sw + kj * dw_
                                xv = x_pad[n, c, r, s]
                                gv = dout[n, f, i, j]
                                before = acc
                                acc = acc + xv * gv
                                if on_step is not None:
                                    on_step(
                                        StepEvent(
                                            "conv2d", "grad_weight", "mac", step,
                                            (("f", f), ("c", c), ("ki", ki), ("kj", kj),
                                             ("n", n), ("i", i), ("j", j)),
                                            "dw", (f, c, wi, wj),
                                            (Operand("x_pad", (n, c, r, s), float(xv)),
                                             Operand("dout", (n, f, i, j), float(gv))),
                                            float(before), float(acc),
                                        )
                                    )  # fmt: skip
                                    step += 1
                    dw[f, c, wi, wj] = acc

    dx_pad = np.zeros(x_pad.shape, dtype=dtype)
    for n in range(n_batch):
        for f in range(filters):
            for i in range(oh):
                for j in range(ow):
                    gv = dout[n, f, i, j]
                    for c in range(channels):
                        for ki in range(kh):
                            for kj in range(kw):
                                r, s = i * sh + ki * dh, j * sw + kj * dw_
                                wi, wj = (kh - 1 - ki, kw - 1 - kj) if flip else (ki, kj)
                                wv = w[f, c, wi, wj]
                                before = dx_pad[n, c, r, s]
                                after = before + wv * gv
                                dx_pad[n, c, r, s] = after
                                if on_step is not None:
                                    on_step(
                                        StepEvent(
                                            "conv2d", "grad_input", "mac", step,
                                            (("n", n), ("f", f), ("i", i), ("j", j),
                                             ("c", c), ("ki", ki), ("kj", kj)),
                                            "dx_pad", (n, c, r, s),
                                            (Operand("w", (f, c, wi, wj), float(wv)),
                                             Operand("dout", (n, f, i, j), float(gv))),
                                            float(before), float(after),
                                        )
                                    )  # fmt: skip
                                    step += 1
    dx = dx_pad[:, :, ph : ph + height, pw : pw + width].copy()
    return dx, dw, db


def stuffed_dout(dout: np.ndarray, cache: ConvCache) -> np.ndarray:
    """dout made ready for `conv2d_input_grad_transposed`: sh − 1 zero rows (sw − 1 zero
    columns) between its cells ("zero-stuffing", undoing the stride) and D·(K − 1) zeros
    around it, so that a stride-1 convolution of it with the rotated kernel gives dx_pad.

    The array is (N, F, (OH−1)·sh + 1 + 2·dh·(KH−1), likewise for the columns); cells are
    copied one by one (no arithmetic).
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    dout = np.asarray(dout)
    n_batch, filters, oh, ow = dout.shape
    _, _, kh, kw = cache.w.shape
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    up = np.zeros(
        (n_batch, filters, (oh - 1) * sh + 1 + 2 * eh, (ow - 1) * sw + 1 + 2 * ew),
        dtype=_float_dtype(dout),
    )
    for n in range(n_batch):
        for f in range(filters):
            for i in range(oh):
                for j in range(ow):
                    up[n, f, eh + i * sh, ew + j * sw] = dout[n, f, i, j]
    return up


def conv2d_input_grad_transposed(
    dout: np.ndarray, cache: ConvCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """The grad-input of `conv2d_backward` as one convolution: a transposed convolution.

    dx_pad[n, c, r, s] = Σ_f Σ_ki Σ_kj u[n, f, r + ki·dh, s + kj·dw] · w[f, c, KH−1−ki, KW−1−kj]

    where u = `stuffed_dout(dout, cache)`: the scatter of dout through the kernel equals a
    gather, a stride-1 (dilation D) cross-correlation of the zero-stuffed, zero-padded dout with
    the kernel rotated by 180° and its f and c axes swapped. This is what PyTorch's
    `conv_transpose2d(dout, w, stride, padding, dilation=...)` computes (a true convolution
    reads the kernel unrotated here). Rows and columns of x_pad that no window reached (a stride
    that does not divide evenly) get no gradient: 0. One "mac" event per (f, ki, kj) of each
    dx_pad cell, operands (dout_up, w). Returns dx (dx_pad without its padding).
    """
    _check_cache(cache, ConvCache, "conv2d_forward")
    x_pad, w = cache.x_pad, cache.w
    n_batch, channels, height, width = cache.x.shape
    filters, _, kh, kw = w.shape
    ph, pw = cache.padding
    dh, dw = cache.dilation
    up = stuffed_dout(dout, cache)
    dtype = _float_dtype(x_pad, up)
    rows = up.shape[2] - dh * (kh - 1)  # the rows of x_pad some window covered
    cols = up.shape[3] - dw * (kw - 1)
    dx_pad = np.zeros(x_pad.shape, dtype=dtype)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for r in range(rows):
                for s in range(cols):
                    acc = dx_pad[n, c, r, s]
                    for f in range(filters):
                        for ki in range(kh):
                            for kj in range(kw):
                                ur, us = r + ki * dh, s + kj * dw
                                wi, wj = (ki, kj) if cache.flip else (kh - 1 - ki, kw - 1 - kj)
                                uv = up[n, f, ur, us]
                                wv = w[f, c, wi, wj]
                                before = acc
                                acc = acc + uv * wv
                                if on_step is not None:
                                    on_step(
                                        StepEvent(
                                            "conv2d", "grad_input_transposed", "mac", step,
                                            (("n", n), ("c", c), ("r", r), ("s", s),
                                             ("f", f), ("ki", ki), ("kj", kj)),
                                            "dx_pad", (n, c, r, s),
                                            (Operand("dout_up", (n, f, ur, us), float(uv)),
                                             Operand("w", (f, c, wi, wj), float(wv))),
                                            float(before), float(acc),
                                        )
                                    )  # fmt: skip
                                    step += 1
                    dx_pad[n, c, r, s] = acc
    return dx_pad[:, :, ph : ph + height, pw : pw + width].copy()


# --------------------------------------------------------------------------- pooling


def _pool_setup(
    x: Any, kernel_size: int | Pair, stride: int | Pair | None
) -> tuple[np.ndarray, Pair, Pair, int, int]:
    x = _as_4d(x, "x", "(N, C, H, W)")
    kernel = _pair(kernel_size, "kernel_size", 1)
    strides = pool_stride(kernel, stride)
    height, width = x.shape[2:]
    if kernel[0] > height or kernel[1] > width:
        raise ValueError(
            f"kernel_size {kernel} is larger than the input {(height, width)}: "
            "use a smaller kernel (pooling has no padding)"
        )
    oh, ow = output_size(height, kernel[0], strides[0]), output_size(width, kernel[1], strides[1])
    return x.astype(_float_dtype(x)), kernel, strides, oh, ow


def maxpool2d_forward(
    x: np.ndarray,
    kernel_size: int | Pair = 2,
    stride: int | Pair | None = None,
    on_step: StepCallback | None = None,
) -> tuple[np.ndarray, MaxPoolCache]:
    """Max pooling: out[n, c, i, j] = max over the window x[n, c, i·sh : i·sh+kh, j·sw : j·sw+kw].

    stride defaults to kernel_size. One "compare" event per window element: before is the
    running max (-inf for the first element), after the new max. On ties the first maximum in
    row-major order wins (a later element must be strictly larger), and its position is kept in
    the cache for the backward pass.
    """
    x, (kh, kw), (sh, sw), oh, ow = _pool_setup(x, kernel_size, stride)
    n_batch, channels = x.shape[:2]
    out = np.zeros((n_batch, channels, oh, ow), dtype=x.dtype)
    argmax = np.zeros((n_batch, channels, oh, ow, 2), dtype=np.intp)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    best = -math.inf
                    best_rs = (i * sh, j * sw)
                    for ki in range(kh):
                        for kj in range(kw):
                            r, s = i * sh + ki, j * sw + kj
                            xv = x[n, c, r, s]
                            before = best
                            if xv > best:
                                best = xv
                                best_rs = (r, s)
                            if on_step is not None:
                                on_step(
                                    StepEvent(
                                        "maxpool2d", "forward", "compare", step,
                                        (("n", n), ("c", c), ("i", i), ("j", j),
                                         ("ki", ki), ("kj", kj)),
                                        "out", (n, c, i, j),
                                        (Operand("x", (n, c, r, s), float(xv)),),
                                        float(before), float(best),
                                    )
                                )  # fmt: skip
                                step += 1
                    out[n, c, i, j] = best
                    argmax[n, c, i, j] = best_rs
    return out, MaxPoolCache(x, (kh, kw), (sh, sw), argmax)


def maxpool2d_backward(
    dout: np.ndarray, cache: MaxPoolCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """Route each dout[n, c, i, j] to the argmax of its window: dx[n, c, r*, s*] += dout.

    One "route" event per output cell. Overlapping windows (stride < kernel) that share a max
    accumulate; every other dx entry stays 0.
    """
    _check_cache(cache, MaxPoolCache, "maxpool2d_forward")
    n_batch, channels, oh, ow = cache.argmax.shape[:4]
    dout = _check_dout(dout, (n_batch, channels, oh, ow))
    dx = np.zeros(cache.x.shape, dtype=_float_dtype(cache.x, dout))
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    r, s = int(cache.argmax[n, c, i, j, 0]), int(cache.argmax[n, c, i, j, 1])
                    gv = dout[n, c, i, j]
                    before = dx[n, c, r, s]
                    after = before + gv
                    dx[n, c, r, s] = after
                    if on_step is not None:
                        on_step(
                            StepEvent(
                                "maxpool2d", "grad_input", "route", step,
                                (("n", n), ("c", c), ("i", i), ("j", j)),
                                "dx", (n, c, r, s), (Operand("dout", (n, c, i, j), float(gv)),),
                                float(before), float(after),
                            )
                        )  # fmt: skip
                        step += 1
    return dx


def avgpool2d_forward(
    x: np.ndarray,
    kernel_size: int | Pair = 2,
    stride: int | Pair | None = None,
    on_step: StepCallback | None = None,
) -> tuple[np.ndarray, AvgPoolCache]:
    """Average pooling: out[n, c, i, j] = Σ over the window of x · 1/(kh·kw).

    stride defaults to kernel_size. One "mac" event per window element, operands (x, scale).
    """
    x, (kh, kw), (sh, sw), oh, ow = _pool_setup(x, kernel_size, stride)
    n_batch, channels = x.shape[:2]
    out = np.zeros((n_batch, channels, oh, ow), dtype=x.dtype)
    scale = x.dtype.type(1.0) / (kh * kw)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    acc = out[n, c, i, j]
                    for ki in range(kh):
                        for kj in range(kw):
                            r, s = i * sh + ki, j * sw + kj
                            xv = x[n, c, r, s]
                            before = acc
                            acc = acc + xv * scale
                            if on_step is not None:
                                on_step(
                                    StepEvent(
                                        "avgpool2d", "forward", "mac", step,
                                        (("n", n), ("c", c), ("i", i), ("j", j),
                                         ("ki", ki), ("kj", kj)),
                                        "out", (n, c, i, j),
                                        (Operand("x", (n, c, r, s), float(xv)),
                                         Operand("scale", (), float(scale))),
                                        float(before), float(acc),
                                    )
                                )  # fmt: skip
                                step += 1
                    out[n, c, i, j] = acc
    return out, AvgPoolCache(x.shape, x.dtype, (kh, kw), (sh, sw))


def avgpool2d_backward(
    dout: np.ndarray, cache: AvgPoolCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """Spread each dout[n, c, i, j] evenly over its window: dx += dout · 1/(kh·kw).

    One "mac" event per window element, operands (dout, scale); overlapping windows accumulate.
    """
    _check_cache(cache, AvgPoolCache, "avgpool2d_forward")
    (kh, kw), (sh, sw) = cache.kernel, cache.stride
    n_batch, channels, height, width = cache.x_shape
    oh, ow = output_size(height, kh, sh), output_size(width, kw, sw)
    dout = _check_dout(dout, (n_batch, channels, oh, ow))
    dtype = np.result_type(cache.dtype, _float_dtype(dout))
    dout = dout.astype(dtype)
    dx = np.zeros(cache.x_shape, dtype=dtype)
    scale = dtype.type(1.0) / (kh * kw)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    gv = dout[n, c, i, j]
                    for ki in range(kh):
                        for kj in range(kw):
                            r, s = i * sh + ki, j * sw + kj
                            before = dx[n, c, r, s]
                            after = before + gv * scale
                            dx[n, c, r, s] = after
                            if on_step is not None:
                                on_step(
                                    StepEvent(
                                        "avgpool2d", "grad_input", "mac", step,
                                        (("n", n), ("c", c), ("i", i), ("j", j),
                                         ("ki", ki), ("kj", kj)),
                                        "dx", (n, c, r, s),
                                        (Operand("dout", (n, c, i, j), float(gv)),
                                         Operand("scale", (), float(scale))),
                                        float(before), float(after),
                                    )
                                )  # fmt: skip
                                step += 1
    return dx


# --------------------------------------------------------------------------- network layers
#
# The ops a whole tiny network needs beside conv and pooling: ReLU, flatten, a fully connected
# (linear) layer, softmax cross-entropy and the SGD update. Same rules: one scalar operation
# per event, no vectorised products. Cells are visited with np.ndindex (a plain loop over index
# tuples) where an op works on arrays of any shape.


@dataclass(frozen=True, slots=True)
class ReluCache:
    """What `relu_backward` needs: the input (the gradient passes where it was positive)."""

    x: np.ndarray


@dataclass(frozen=True, slots=True)
class FlattenCache:
    """What `flatten_backward` needs: the shape to restore."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype


@dataclass(frozen=True, slots=True)
class LinearCache:
    """What `linear_backward` needs from the forward pass."""

    x: np.ndarray  # (N, D)
    w: np.ndarray  # (K, D)
    b: np.ndarray  # (K,)


@dataclass(frozen=True, slots=True)
class SoftmaxCECache:
    """What `softmax_cross_entropy_backward` needs: the probabilities and the labels."""

    p: np.ndarray  # (N, K) softmax probabilities
    y: np.ndarray  # (N,) class indices


def _axis_names(ndim: int) -> tuple[str, ...]:
    """Loop names for an activation's cells: n, c, i, j for feature maps, n, d for vectors."""
    return {4: ("n", "c", "i", "j"), 2: ("n", "d"), 1: ("d",)}.get(
        ndim, tuple(f"i{k}" for k in range(ndim))
    )


def relu_forward(
    x: np.ndarray, on_step: StepCallback | None = None
) -> tuple[np.ndarray, ReluCache]:
    """ReLU, cell by cell: out = x where x > 0, else 0 (any shape).

    One "relu" event per cell, operand x; the cell starts at 0.
    """
    x = np.asarray(x)
    x = x.astype(_float_dtype(x))
    out = np.zeros(x.shape, dtype=x.dtype)
    axes = _axis_names(x.ndim)
    zero = x.dtype.type(0)
    step = 0
    for index in np.ndindex(*x.shape):
        xv = x[index]
        value = xv if xv > 0 else zero
        out[index] = value
        if on_step is not None:
            on_step(
                StepEvent(
                    "relu", "forward", "relu", step, tuple(zip(axes, index, strict=True)),
                    "out", index, (Operand("x", index, float(xv)),), 0.0, float(value),
                )
            )  # fmt: skip
            step += 1
    return out, ReluCache(x)


def relu_backward(
    dout: np.ndarray, cache: ReluCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """dx = dout where the forward input was > 0, else 0 (ReLU's derivative is 1 or 0).

    One "mask" event per cell, operands (dout, x).
    """
    _check_cache(cache, ReluCache, "relu_forward")
    x = cache.x
    dout = _check_dout(dout, x.shape)
    dtype = _float_dtype(x, dout)
    dout = dout.astype(dtype)
    dx = np.zeros(x.shape, dtype=dtype)
    axes = _axis_names(x.ndim)
    zero = dtype.type(0)
    step = 0
    for index in np.ndindex(*x.shape):
        gv, xv = dout[index], x[index]
        value = gv if xv > 0 else zero
        dx[index] = value
        if on_step is not None:
            on_step(
                StepEvent(
                    "relu", "grad_input", "mask", step, tuple(zip(axes, index, strict=True)),
                    "dx", index,
                    (Operand("dout", index, float(gv)), Operand("x", index, float(xv))),
                    0.0, float(value),
                )
            )  # fmt: skip
            step += 1
    return dx


def flatten_forward(
    x: np.ndarray, on_step: StepCallback | None = None
) -> tuple[np.ndarray, FlattenCache]:
    """(N, C, H, W) -> (N, C·H·W) in row-major order, as PyTorch's flatten(x, 1) does:
    out[n, (c·H + i)·W + j] = x[n, c, i, j]. One "copy" event per cell."""
    x = _as_4d(x, "x", "(N, C, H, W)")
    x = x.astype(_float_dtype(x))
    n_batch, channels, height, width = x.shape
    out = np.zeros((n_batch, channels * height * width), dtype=x.dtype)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(height):
                for j in range(width):
                    d = (c * height + i) * width + j
                    xv = x[n, c, i, j]
                    out[n, d] = xv
                    if on_step is not None:
                        on_step(
                            StepEvent(
                                "flatten", "forward", "copy", step,
                                (("n", n), ("c", c), ("i", i), ("j", j)),
                                "out", (n, d), (Operand("x", (n, c, i, j), float(xv)),),
                                0.0, float(xv),
                            )
                        )  # fmt: skip
                        step += 1
    return out, FlattenCache(x.shape, x.dtype)


def flatten_backward(
    dout: np.ndarray, cache: FlattenCache, on_step: StepCallback | None = None
) -> np.ndarray:
    """dx[n, c, i, j] = dout[n, (c·H + i)·W + j]: the gradient reshaped back. "copy" events."""
    _check_cache(cache, FlattenCache, "flatten_forward")
    n_batch, channels, height, width = cache.x_shape
    dout = _check_dout(dout, (n_batch, channels * height * width))
    dtype = np.result_type(cache.dtype, _float_dtype(dout))
    dx = np.zeros(cache.x_shape, dtype=dtype)
    step = 0
    for n in range(n_batch):
        for c in range(channels):
            for i in range(height):
                for j in range(width):
                    d = (c * height + i) * width + j
                    gv = dout[n, d]
                    dx[n, c, i, j] = gv
                    if on_step is not None:
                        on_step(
                            StepEvent(
                                "flatten", "grad_input", "copy", step,
                                (("n", n), ("c", c), ("i", i), ("j", j)),
                                "dx", (n, c, i, j), (Operand("dout", (n, d), float(gv)),),
                                0.0, float(gv),
                            )
                        )  # fmt: skip
                        step += 1
    return dx


def _as_2d(array: Any, name: str, layout: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D {layout}, got shape {array.shape}")
    return array


def linear_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, on_step: StepCallback | None = None
) -> tuple[np.ndarray, LinearCache]:
    """A fully connected layer, as PyTorch's linear: x (N, D), w (K, D), b (K,) -> out (N, K).

    out[n, k] = b[k] + Σ_d x[n, d] · w[k, d]

    Events: per output cell one "bias" then one "mac" per d (operands x, w).
    """
    x = _as_2d(x, "x", "(N, D)")
    w = _as_2d(w, "w", "(K, D)")
    b = np.asarray(b)
    n_batch, features = x.shape
    classes, w_features = w.shape
    if w_features != features:
        raise ValueError(
            f"w has {w_features} input features but x has {features}: w must be (K, D) with "
            f"D = {features}"
        )
    if b.shape != (classes,):
        raise ValueError(f"b must have shape (K,) = ({classes},) for w {w.shape}, got {b.shape}")
    dtype = _float_dtype(x, w, b)
    x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
    out = np.zeros((n_batch, classes), dtype=dtype)
    step = 0
    for n in range(n_batch):
        for k in range(classes):
            acc = b[k]
            if on_step is not None:
                on_step(
                    StepEvent(
                        "linear", "forward", "bias", step, (("n", n), ("k", k)),
                        "out", (n, k), (Operand("b", (k,), float(acc)),), 0.0, float(acc),
                    )
                )  # fmt: skip
                step += 1
            for d in range(features):
                xv, wv = x[n, d], w[k, d]
                before = acc
                acc = acc + xv * wv
                if on_step is not None:
                    on_step(
                        StepEvent(
                            "linear", "forward", "mac", step, (("n", n), ("k", k), ("d", d)),
                            "out", (n, k),
                            (Operand("x", (n, d), float(xv)), Operand("w", (k, d), float(wv))),
                            float(before), float(acc),
                        )
                    )  # fmt: skip
                    step += 1
            out[n, k] = acc
    return out, LinearCache(x, w, b)


def linear_backward(
    dout: np.ndarray, cache: LinearCache, on_step: StepCallback | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of the linear layer given dout = ∂L/∂out (N, K), three loop nests:

    1. grad bias:   db[k] = Σ_n dout[n, k]                       ("add")
    2. grad weight: dw[k, d] = Σ_n x[n, d] · dout[n, k]          ("mac"; ∂L/∂W = doutᵀ · x)
    3. grad input:  dx[n, d] = Σ_k w[k, d] · dout[n, k]          ("mac"; ∂L/∂x = dout · W)

    Each cell is finished before the next starts.
    """
    _check_cache(cache, LinearCache, "linear_forward")
    x, w = cache.x, cache.w
    n_batch, features = x.shape
    classes = w.shape[0]
    dout = _check_dout(dout, (n_batch, classes))
    dtype = _float_dtype(x, dout)
    dout = dout.astype(dtype)
    step = 0

    db = np.zeros(classes, dtype=dtype)
    for k in range(classes):
        acc = db[k]
        for n in range(n_batch):
            gv = dout[n, k]
            before = acc
            acc = acc + gv
            if on_step is not None:
                on_step(
                    StepEvent(
                        "linear", "grad_bias", "add", step, (("k", k), ("n", n)),
                        "db", (k,), (Operand("dout", (n, k), float(gv)),),
                        float(before), float(acc),
                    )
                )  # fmt: skip
                step += 1
        db[k] = acc

    dw = np.zeros(w.shape, dtype=dtype)
    for k in range(classes):
        for d in range(features):
            acc = dw[k, d]
            for n in range(n_batch):
                xv, gv = x[n, d], dout[n, k]
                before = acc
                acc = acc + xv * gv
                if on_step is not None:
                    on_step(
                        StepEvent(
                            "linear", "grad_weight", "mac", step, (("k", k), ("d", d), ("n", n)),
                            "dw", (k, d),
                            (Operand("x", (n, d), float(xv)), Operand("dout", (n, k), float(gv))),
                            float(before), float(acc),
                        )
                    )  # fmt: skip
                    step += 1
            dw[k, d] = acc

    dx = np.zeros(x.shape, dtype=dtype)
    for n in range(n_batch):
        for d in range(features):
            acc = dx[n, d]
            for k in range(classes):
                wv, gv = w[k, d], dout[n, k]
                before = acc
                acc = acc + wv * gv
                if on_step is not None:
                    on_step(
                        StepEvent(
                            "linear", "grad_input", "mac", step, (("n", n), ("d", d), ("k", k)),
                            "dx", (n, d),
                            (Operand("w", (k, d), float(wv)), Operand("dout", (n, k), float(gv))),
                            float(before), float(acc),
                        )
                    )  # fmt: skip
                    step += 1
            dx[n, d] = acc
    return dx, dw, db


def _check_labels(y: Any, n_batch: int, classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n_batch,):
        raise ValueError(f"y must have shape (N,) = ({n_batch},), one class per row, got {y.shape}")
    labels = []
    for value in y.tolist():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < classes:
            raise ValueError(f"y must hold class indices from 0 to {classes - 1}, got {value!r}")
        labels.append(value)
    return np.array(labels, dtype=np.int64)


def softmax_cross_entropy_forward(
    z: np.ndarray, y: np.ndarray, on_step: StepCallback | None = None
) -> tuple[float, SoftmaxCECache]:
    """Softmax cross-entropy of scores z (N, K) against class indices y (N,), as PyTorch's
    F.cross_entropy (mean over the batch):

        p[n, k] = exp(z[n, k] − m[n]) / Σ_j exp(z[n, j] − m[n]),   m[n] = max_k z[n, k]
        L = (1/N) Σ_n −log p[n, y[n]]

    Subtracting the row's max changes no probability and keeps exp from overflowing. Events,
    per row: "compare" into zmax[n], "exp" into e[n, k] (operands z, zmax), "add" into s[n]
    (operand e), "div" into p[n, k] (operands e, s), then one "nll" into the 0-d loss
    (operand p[n, y]; a "scale" operand 1/N when N > 1). Returns (L, cache).
    """
    z = _as_2d(z, "z", "(N, K)")
    z = z.astype(_float_dtype(z))
    n_batch, classes = z.shape
    y = _check_labels(y, n_batch, classes)
    p = np.zeros(z.shape, dtype=z.dtype)
    e = np.zeros(z.shape, dtype=z.dtype)
    scale = 1.0 / n_batch
    loss = 0.0
    step = 0

    def emit(kind: str, loops, target, index, operands, before, after) -> None:
        nonlocal step
        on_step(StepEvent("softmax_ce", "forward", kind, step, loops, target, index, operands,
                          float(before), float(after)))  # fmt: skip
        step += 1

    for n in range(n_batch):
        m = -math.inf
        for k in range(classes):
            zv = z[n, k]
            before = m
            if zv > m:
                m = zv
            if on_step is not None:
                emit("compare", (("n", n), ("k", k)), "zmax", (n,),
                     (Operand("z", (n, k), float(zv)),), before, m)  # fmt: skip
        for k in range(classes):
            zv = z[n, k]
            e[n, k] = math.exp(zv - m)
            if on_step is not None:
                emit("exp", (("n", n), ("k", k)), "e", (n, k),
                     (Operand("z", (n, k), float(zv)), Operand("zmax", (n,), float(m))),
                     0.0, e[n, k])  # fmt: skip
        s = 0.0
        for k in range(classes):
            before = s
            s = s + e[n, k]
            if on_step is not None:
                emit("add", (("n", n), ("k", k)), "s", (n,),
                     (Operand("e", (n, k), float(e[n, k])),), before, s)  # fmt: skip
        for k in range(classes):
            p[n, k] = e[n, k] / s
            if on_step is not None:
                emit("div", (("n", n), ("k", k)), "p", (n, k),
                     (Operand("e", (n, k), float(e[n, k])), Operand("s", (n,), float(s))),
                     0.0, p[n, k])  # fmt: skip
        label = int(y[n])
        # −log p[y] = log s − (z[y] − m): the same number, finite even where p[y] underflows to 0
        nll = math.log(s) - (z[n, label] - m)
        before = loss
        loss = loss + nll * scale
        if on_step is not None:
            operands = (Operand("p", (n, label), float(p[n, label])),)
            if n_batch > 1:
                operands += (Operand("scale", (), scale),)
            emit("nll", (("n", n),), "loss", (), operands, before, loss)
    return float(loss), SoftmaxCECache(p, y)


def softmax_cross_entropy_backward(
    cache: SoftmaxCECache, on_step: StepCallback | None = None
) -> np.ndarray:
    """∂L/∂z = (p − y) / N, with y one-hot (1 at the label): the softmax's and the log's
    derivatives cancel into one subtraction per cell. "sub" events, operands (p, y) and a
    "scale" 1/N when N > 1."""
    _check_cache(cache, SoftmaxCECache, "softmax_cross_entropy_forward")
    p, y = cache.p, cache.y
    n_batch, classes = p.shape
    scale = 1.0 / n_batch
    dz = np.zeros(p.shape, dtype=p.dtype)
    step = 0
    for n in range(n_batch):
        for k in range(classes):
            pv = p[n, k]
            yv = 1.0 if k == y[n] else 0.0
            value = (pv - yv) * scale if n_batch > 1 else pv - yv
            dz[n, k] = value
            if on_step is not None:
                operands = (Operand("p", (n, k), float(pv)), Operand("y", (n, k), yv))
                if n_batch > 1:
                    operands += (Operand("scale", (), scale),)
                on_step(
                    StepEvent(
                        "softmax_ce", "grad_input", "sub", step, (("n", n), ("k", k)),
                        "dz", (n, k), operands, 0.0, float(value),
                    )
                )  # fmt: skip
                step += 1
    return dz


def sgd_update(
    param: np.ndarray, grad: np.ndarray, lr: float, on_step: StepCallback | None = None
) -> np.ndarray:
    """One plain SGD step, cell by cell: new = param − lr · grad (as PyTorch's SGD without
    momentum or weight decay). Returns the new array; one "sgd" event per cell, operands
    (param, grad, lr)."""
    param = np.asarray(param)
    grad = np.asarray(grad)
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape} but param has shape {param.shape}")
    if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    dtype = _float_dtype(param, grad)
    param, grad = param.astype(dtype), grad.astype(dtype)
    rate = dtype.type(lr)
    new = np.zeros(param.shape, dtype=dtype)
    loops_names = tuple(f"i{k}" for k in range(param.ndim))
    step = 0
    for index in np.ndindex(*param.shape):
        pv, gv = param[index], grad[index]
        value = pv - rate * gv
        new[index] = value
        if on_step is not None:
            on_step(
                StepEvent(
                    "sgd", "update", "sgd", step, tuple(zip(loops_names, index, strict=True)),
                    "new", index,
                    (Operand("param", index, float(pv)), Operand("grad", index, float(gv)),
                     Operand("lr", (), float(rate))),
                    float(pv), float(value),
                )
            )  # fmt: skip
            step += 1
    return new


@dataclass(frozen=True, slots=True)
class AdamStep:
    """The arrays of one Adam step of one parameter: the running means after it, their
    bias-corrected values and the new parameter."""

    m: np.ndarray
    v: np.ndarray
    m_hat: np.ndarray
    v_hat: np.ndarray
    new: np.ndarray


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    on_step: StepCallback | None = None,
) -> AdamStep:
    """Step t (1, 2, ...) of Adam, cell by cell, as PyTorch's Adam without weight decay or
    amsgrad computes it:

        m′ = β1·m + (1 − β1)·g          v′ = β2·v + (1 − β2)·g²
        m̂ = m′ / (1 − β1^t)              v̂ = v′ / (1 − β2^t)
        new = param − lr·m̂ / (√v̂ + ε)

    m and v are the running means before the step (zeros before step 1). Events, one quantity
    at a time over every cell: "adam_m" into m_new (operands m, grad, beta1), "adam_v" into
    v_new (v, grad, beta2), "adam_mhat" into m_hat (m_new, beta1, t), "adam_vhat" into v_hat
    (v_new, beta2, t), then "adam" into new (param, m_hat, v_hat, lr, eps)."""
    param, grad, m, v = (np.asarray(a) for a in (param, grad, m, v))
    for name, array in (("grad", grad), ("m", m), ("v", v)):
        if array.shape != param.shape:
            raise ValueError(f"{name} has shape {array.shape} but param has shape {param.shape}")
    if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if int(t) < 1:
        raise ValueError(f"t counts the steps from 1, got {t!r}")
    beta1, beta2 = (float(b) for b in betas)
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and eps > 0):
        raise ValueError(f"betas must be in [0, 1) and eps above 0, got {betas}, {eps}")
    dtype = _float_dtype(param, grad, m, v)
    param, grad, m, v = (a.astype(dtype) for a in (param, grad, m, v))
    correction1, correction2 = 1.0 - beta1**t, 1.0 - beta2**t
    out = {
        name: np.zeros(param.shape, dtype=dtype)
        for name in ("m_new", "v_new", "m_hat", "v_hat", "new")
    }
    loops_names = tuple(f"i{k}" for k in range(param.ndim))
    step = 0

    def emit(kind: str, target: str, index, operands, before: float) -> None:
        nonlocal step
        on_step(StepEvent("adam", "update", kind, step, tuple(zip(loops_names, index, strict=True)),
                          target, index, operands, float(before),
                          float(out[target][index])))  # fmt: skip
        step += 1

    cells = list(np.ndindex(*param.shape))
    for index in cells:
        out["m_new"][index] = beta1 * m[index] + (1.0 - beta1) * grad[index]
        if on_step is not None:
            emit("adam_m", "m_new", index, (Operand("m", index, float(m[index])),
                 Operand("grad", index, float(grad[index])), Operand("beta1", (), beta1)),
                 m[index])  # fmt: skip
    for index in cells:
        out["v_new"][index] = beta2 * v[index] + (1.0 - beta2) * grad[index] * grad[index]
        if on_step is not None:
            emit("adam_v", "v_new", index, (Operand("v", index, float(v[index])),
                 Operand("grad", index, float(grad[index])), Operand("beta2", (), beta2)),
                 v[index])  # fmt: skip
    for index in cells:
        out["m_hat"][index] = out["m_new"][index] / correction1
        if on_step is not None:
            emit("adam_mhat", "m_hat", index, (Operand("m_new", index, float(out["m_new"][index])),
                 Operand("beta1", (), beta1), Operand("t", (), float(t))), math.nan)  # fmt: skip
    for index in cells:
        out["v_hat"][index] = out["v_new"][index] / correction2
        if on_step is not None:
            emit("adam_vhat", "v_hat", index, (Operand("v_new", index, float(out["v_new"][index])),
                 Operand("beta2", (), beta2), Operand("t", (), float(t))), math.nan)  # fmt: skip
    for index in cells:
        m_hat, v_hat = out["m_hat"][index], out["v_hat"][index]
        out["new"][index] = param[index] - lr * m_hat / (math.sqrt(v_hat) + eps)
        if on_step is not None:
            emit("adam", "new", index, (Operand("param", index, float(param[index])),
                 Operand("m_hat", index, float(m_hat)), Operand("v_hat", index, float(v_hat)),
                 Operand("lr", (), float(lr)), Operand("eps", (), float(eps))),
                 param[index])  # fmt: skip
    return AdamStep(out["m_new"], out["v_new"], out["m_hat"], out["v_hat"], out["new"])


# --------------------------------------------------------------------------- step counts


def count_steps(
    op: str,
    x_shape: tuple[int, int, int, int],
    w_shape: tuple[int, int, int, int] | None = None,
    *,
    kernel_size: int | Pair = 2,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    transposed: bool = False,
) -> dict[str, int]:
    """Number of events per phase, from the shapes alone (the loop trip counts).

    op is "conv2d" (needs w_shape; stride defaults to 1), "maxpool2d" or "avgpool2d". Returns
    e.g. {"forward": 90, "grad_bias": 9, "grad_weight": 81, "grad_input": 81} for conv2d, with
    transposed=True also "grad_input_transposed" (`conv2d_input_grad_transposed`'s steps).
    """
    n_batch, channels, height, width = x_shape
    if op == "conv2d":
        if w_shape is None:
            raise ValueError("w_shape is needed to count conv2d steps")
        filters, _, kh, kw = w_shape
        sh, sw = _pair(1 if stride is None else stride, "stride", 1)
        ph, pw = _pair(padding, "padding", 0)
        dh, dw = _pair(dilation, "dilation", 1)
        oh, ow = output_size(height, kh, sh, ph, dh), output_size(width, kw, sw, pw, dw)
        cells = n_batch * filters * oh * ow
        macs = cells * channels * kh * kw
        counts = {
            "forward": cells + macs,
            "grad_bias": cells,
            "grad_weight": macs,
            "grad_input": macs,
        }
        if transposed:  # every covered cell of dx_pad gathers F·KH·KW products
            rows, cols = (oh - 1) * sh + dilated_size(kh, dh), (ow - 1) * sw + dilated_size(kw, dw)
            counts["grad_input_transposed"] = n_batch * channels * rows * cols * filters * kh * kw
        return counts
    if op in ("maxpool2d", "avgpool2d"):
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        sh, sw = pool_stride((kh, kw), stride)
        cells = n_batch * channels * output_size(height, kh, sh) * output_size(width, kw, sw)
        window_steps = cells * kh * kw
        backward = cells if op == "maxpool2d" else window_steps
        return {"forward": window_steps, "grad_input": backward}
    raise ValueError(f"op must be 'conv2d', 'maxpool2d' or 'avgpool2d', got {op!r}")


# --------------------------------------------------------------------------- gradient check


@dataclass(frozen=True)
class GradCheck:
    """Analytic gradients compared with central differences, one error per gradient array.

    Each error is max |analytic − numeric| / max(largest |analytic|, largest |numeric|) over the
    checked entries of that array: relative to the gradient's scale, because an entry-by-entry
    ratio blows up where the true gradient is 0. None where the operation has no such gradient.
    """

    op: str
    dx: float
    dw: float | None = None
    db: float | None = None
    eps: float = 1e-6
    checked: int = 0  # entries compared (all of them, or a seeded sample of big arrays)
    skipped: int = 0  # max-pool entries tied for a window's max, where max is not differentiable

    @property
    def max_error(self) -> float:
        return max(e for e in (self.dx, self.dw, self.db) if e is not None)

    def passed(self, tolerance: float = 1e-6) -> bool:
        return self.max_error < tolerance

    def summary(self) -> str:
        """One line, e.g. "max relative error 3.1e-11 (dx 3.1e-11, dw 2.0e-11, db 0)"."""
        parts = [
            f"{name} {_short_float(value)}"
            for name, value in (("dx", self.dx), ("dw", self.dw), ("db", self.db))
            if value is not None
        ]
        line = f"max relative error {_short_float(self.max_error)} ({', '.join(parts)})"
        if self.skipped:
            line += f"; {self.skipped} tied max entries skipped (max has no derivative there)"
        return line


def _short_float(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


def gradient_check(
    op: str,
    x: np.ndarray,
    w: np.ndarray | None = None,
    b: np.ndarray | None = None,
    *,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    kernel_size: int | Pair = 2,
    dout: np.ndarray | None = None,
    seed: int = 0,
    dilation: int | Pair = 1,
    flip: bool = False,
    eps: float = 1e-6,
    max_entries: int = 64,
) -> GradCheck:
    """Check the backward pass of `op` ("conv2d", "maxpool2d", "avgpool2d") numerically.

    With L = Σ out · dout for a random upstream gradient dout (seeded; or the given one), each
    checked entry v of x (and w, b for conv) gets ∂L/∂v ≈ (L(v + eps) − L(v − eps)) / (2·eps),
    compared with the backward pass's gradient. Arrays with more than `max_entries` entries are
    checked on a seeded random sample of that many (two forward passes per entry are slow).
    Max-pool entries tied for a window's max are skipped: the max is not differentiable there.
    dilation and flip (a true convolution) are conv2d's (`conv2d_forward`).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    params: dict[str, np.ndarray] = {"dx": x.copy()}
    if op == "conv2d":
        if w is None or b is None:
            raise ValueError("gradient_check('conv2d', ...) needs w and b")
        params["dw"] = np.asarray(w, dtype=np.float64).copy()
        params["db"] = np.asarray(b, dtype=np.float64).copy()
        conv_stride = 1 if stride is None else stride

        def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, Any]:
            return conv2d_forward(
                p["dx"], p["dw"], p["db"], conv_stride, padding, dilation=dilation, flip=flip
            )

        def backward(g: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
            dx, dw, db = conv2d_backward(g, cache)
            return {"dx": dx, "dw": dw, "db": db}

    elif op in ("maxpool2d", "avgpool2d"):
        pool_forward = maxpool2d_forward if op == "maxpool2d" else avgpool2d_forward
        pool_backward = maxpool2d_backward if op == "maxpool2d" else avgpool2d_backward

        def forward(p: dict[str, np.ndarray]) -> tuple[np.ndarray, Any]:
            return pool_forward(p["dx"], kernel_size, stride)

        def backward(g: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
            return {"dx": pool_backward(g, cache)}

    else:
        raise ValueError(f"op must be 'conv2d', 'maxpool2d' or 'avgpool2d', got {op!r}")

    out, cache = forward(params)
    if dout is None:
        dout = rng.standard_normal(out.shape)
    dout = np.asarray(dout, dtype=np.float64)
    analytic = backward(dout, cache)
    ties = _tied_max_entries(x, kernel_size, stride) if op == "maxpool2d" else set()

    def loss(p: dict[str, np.ndarray]) -> float:
        # elementwise product, exactly rounded sum: keeps the differences' rounding error small
        return math.fsum((forward(p)[0] * dout).ravel().tolist())

    errors: dict[str, float] = {}
    checked = 0
    for name, array in params.items():
        indices = [ix for ix in np.ndindex(array.shape) if name != "dx" or ix not in ties]
        if len(indices) > max_entries:
            picks = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[k] for k in sorted(picks)]
        worst_diff, scale = 0.0, 0.0
        for ix in indices:
            original = array[ix]
            array[ix] = original + eps
            plus = loss(params)
            array[ix] = original - eps
            minus = loss(params)
            array[ix] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic[name][ix])
            worst_diff = max(worst_diff, abs(exact - numeric))
            scale = max(scale, abs(exact), abs(numeric))
        errors[name] = worst_diff / scale if scale > 0 else worst_diff
        checked += len(indices)
    return GradCheck(
        op,
        errors["dx"],
        errors.get("dw"),
        errors.get("db"),
        eps=eps,
        checked=checked,
        skipped=len(ties),
    )


def _tied_max_entries(
    x: np.ndarray, kernel_size: int | Pair, stride: int | Pair | None
) -> set[tuple[int, ...]]:
    """Positions of x that share the maximum of some pooling window with another position."""
    _, (kh, kw), (sh, sw), oh, ow = _pool_setup(x, kernel_size, stride)
    tied: set[tuple[int, ...]] = set()
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(oh):
                for j in range(ow):
                    window = [
                        (x[n, c, i * sh + ki, j * sw + kj], (n, c, i * sh + ki, j * sw + kj))
                        for ki in range(kh)
                        for kj in range(kw)
                    ]
                    best = window[0][0]
                    for value, _ in window:
                        if value > best:
                            best = value
                    at_max = [ix for value, ix in window if value == best]
                    if len(at_max) > 1:
                        tied.update(at_max)
    return tied
