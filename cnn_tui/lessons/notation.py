"""The lessons' symbols beside the lecture's: one legend for the `?` page and the traces.

The lecture notes (seed 004) write N for the input size and F for the filter (kernel) size —
`⌊(N + 2P − F)/S⌋ + 1` — and the layer as `X[m,n] = Σ_i,j o[m+i,n+j]·w[i,j] + b`, with X the
layer's output before its activation and o the previous layer's output. This app follows
PyTorch's names instead: K the kernel size, F the number of filters, N the images of a batch, x
the input, out the output. `legend(lesson)` lists, for one lesson (`LESSONS`), each
symbol, what it is and how the lecture writes it; `legend_lines` writes it as text (the trace's
header), the lesson screens' `?` page draws the same rows, and docs/lessons/notation.md is the
table a test compares with them.

The lecture's layer formula is a cross-correlation (the kernel as it is), the default and what
PyTorch's conv2d computes; the true convolution (the kernel rotated by 180°) is the
signal-processing definition the lecture starts from, (f*g)(s) = Σ_t f(t)·g(s−t): the legend's
last rows, worded once in `settings.CONV_MODE_TEXT`. Batch normalisation and dropout appear in
the lecture only as its CustomCNN's code (nn.BatchNorm2d, nn.Dropout(p=...)): their rows name
PyTorch's arguments where the lecture's code sets them, else "not in the lecture". Nothing here
imports numpy, Textual or torch.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cnn_tui.lessons.naive import output_size_rule
from cnn_tui.lessons.settings import CONV_MODE_TEXT, CONV_MODES

LESSONS = ("conv", "pool", "net", "batchnorm", "dropout")


@dataclass(frozen=True)
class Symbol:
    """One row of the legend: the symbol as this app writes it, what it is, the lecture's."""

    here: str
    meaning: str
    lecture: str
    lessons: tuple[str, ...] = ("conv",)


_CONV_POOL = ("conv", "pool")
# the lecture's input: the previous layer's output o in the layer formula, X in its backprop
_INPUT = "o in the layer formula, X in backprop"
_ALL = ("conv", "pool", "net")
_BN, _DROPOUT = ("batchnorm",), ("dropout",)
_LAYERS = (*_BN, *_DROPOUT)
_NOT_IN_LECTURE = "— (not in the lecture)"


def _torch(what: str) -> str:
    """A batch-norm symbol the lecture's code leaves to PyTorch: BatchNorm2d's name for it."""
    return f"— (not in the lecture; BatchNorm2d's {what})"


NOTATION: tuple[Symbol, ...] = (
    Symbol("H×W", "input height × width", "N×N (N: the input size)", _ALL),
    Symbol("K", "kernel size (KH×KW)", "F (f×f in the layer formula)"),
    Symbol("K", "pooling window (KH×KW)", "— (a small rectangular region)", ("pool",)),
    Symbol("F", "filters: output channels", "the number of kernels", ("conv", "net")),
    Symbol("N", "images in the batch", "— (one image at a time)", _CONV_POOL),
    Symbol("C", "input channels", "channels (r)", _CONV_POOL),
    Symbol("S", "stride", "S (s)", _CONV_POOL),
    Symbol("P", "zero padding on each side", "P (same: P = (F − 1)/2)", ("conv",)),
    Symbol("D", "dilation", "— (not in the lecture)", ("conv",)),
    Symbol(
        "OH×OW",
        f"output size {output_size_rule()}",
        output_size_rule("N", "F", "S", "2P"),
        ("conv",),
    ),
    Symbol("OH×OW", f"output size {output_size_rule(twice_padding=None)}", "—", ("pool",)),
    Symbol("x, x_pad", "the input, and with its zero padding", _INPUT),
    Symbol("x", "the input", _INPUT, ("pool",)),
    Symbol("out[i,j]", "an output cell", "X[m,n] in the layer formula, Y in backprop", _CONV_POOL),
    Symbol("w[ki,kj], b", "a kernel tap, the bias", "w[i,j], b"),
    Symbol("i, j; ki, kj", "output cell; kernel tap", "m, n; i, j", _CONV_POOL),
    Symbol("dout", "∂L/∂out, the upstream gradient", "∂L/∂Y", _CONV_POOL),
    Symbol("dw, db, dx", "∂L/∂w, ∂L/∂b, ∂L/∂x", "∂L/∂w, ∂L/∂b, ∂L/∂X (backprop)"),
    Symbol("dx", "∂L/∂x", "∂L/∂X (backprop)", ("pool",)),
    Symbol("x", "the image (1×1×H×W)", "o^0, the input image", ("net",)),
    Symbol("z1", "the conv's output, before ReLU", "X^1", ("net",)),
    Symbol("a1", "after ReLU", "o^1 = a(X^1)", ("net",)),
    Symbol("w1, b1", "conv filters, bias", "w^1, b^1", ("net",)),
    Symbol("K", "classes of the linear layer (z2[k])", "the number of classes", ("net",)),
    Symbol("p, y", "softmax probabilities, the one-hot label", "—", ("net",)),
    Symbol("L", "the loss", "L (also the layer index there)", ("net",)),
    Symbol("dz1, dw1, ...", "∂L/∂z1, ∂L/∂w1, ...", "∂L/∂X^1, ∂L/∂w^1, ...", ("net",)),
    Symbol("α", "the learning rate", "α", ("net",)),
    *(
        Symbol(mode, CONV_MODE_TEXT[mode][0], CONV_MODE_TEXT[mode][1], ("conv",))
        for mode in CONV_MODES
    ),
    # batch normalisation and dropout: the lecture has no formulas for them, only its
    # CustomCNN's code (nn.BatchNorm2d(C) after every convolution, nn.Dropout(p=0.25) after
    # each block, p=0.5 in the classifier), which takes PyTorch's names and defaults
    Symbol(
        "batch norm",
        "per-channel normalisation, training mode",
        "nn.BatchNorm2d(C) after each conv of the CustomCNN",
        _BN,
    ),
    Symbol(
        "dropout",
        "zero values at random, scale the rest",
        "nn.Dropout(p=0.25) after each block, p=0.5 in the classifier",
        _DROPOUT,
    ),
    Symbol("x, y", "the input, the output (N×C×H×W)", _NOT_IN_LECTURE, _LAYERS),
    Symbol("N, C, H×W", "images, channels, height × width", "— (N there: the input size)", _LAYERS),
    Symbol("M", "values per channel: N·H·W", _NOT_IN_LECTURE, _BN),
    Symbol("μ[c], σ²[c]", "the channel's mean, its variance (biased)", _NOT_IN_LECTURE, _BN),
    Symbol("ε", "added to σ² before the square root", _torch("eps, default 1e-5"), _BN),
    Symbol("x̂", "normalised: (x − μ)/√(σ² + ε)", _NOT_IN_LECTURE, _BN),
    Symbol("γ[c], β[c]", "scale and shift, learnt", _torch("weight, bias"), _BN),
    Symbol("m", "momentum of the running statistics", _torch("momentum, default 0.1"), _BN),
    Symbol(
        "running_mean, running_var",
        "running statistics, used in eval mode",
        _torch("buffers of the same names"),
        _BN,
    ),
    Symbol("dy", "∂L/∂y, the upstream gradient", _NOT_IN_LECTURE, _LAYERS),
    Symbol("dγ, dβ, dx̂, dσ², dμ, dx", "∂L/∂γ, ∂L/∂β, ...", _NOT_IN_LECTURE, _BN),
    Symbol("p", "drop probability: a value is zeroed", "p, as in nn.Dropout(p=0.25)", _DROPOUT),
    Symbol("1 − p", "keep probability", _NOT_IN_LECTURE, _DROPOUT),
    Symbol("u", "uniform in [0, 1), drawn from the seed", _NOT_IN_LECTURE, _DROPOUT),
    Symbol("mask", "1 kept (u ≥ p), 0 dropped", _NOT_IN_LECTURE, _DROPOUT),
    Symbol("dx", "∂L/∂x = dy·mask/(1 − p)", _NOT_IN_LECTURE, _DROPOUT),
)


def legend(lesson: str) -> list[Symbol]:
    """The rows of the legend of `lesson` (one of `LESSONS`), in order; none for a lesson the
    table does not cover."""
    return [symbol for symbol in NOTATION if lesson in symbol.lessons]


LEGEND_TITLE = "notation, here and in the lecture notes"
LEGEND_COLUMNS = ("here", "what it is", "the lecture's")


def legend_lines(lesson: str, indent: str = "  ") -> list[str]:
    """The legend as plain text: `LEGEND_TITLE`, then aligned rows under `LEGEND_COLUMNS`
    (the trace's header)."""
    symbols = legend(lesson)
    if not symbols:
        return []
    rows = [LEGEND_COLUMNS] + [(row.here, row.meaning, row.lecture) for row in symbols]
    here = max(_width(row[0]) for row in rows)
    meaning = max(_width(row[1]) for row in rows)
    return [f"{LEGEND_TITLE}:"] + [
        f"{indent}{_pad(row[0], here)}  {_pad(row[1], meaning)}  {row[2]}".rstrip() for row in rows
    ]


def _width(text: str) -> int:
    """Columns `text` takes: a combining mark (the hat of x̂) takes none."""
    return sum(not unicodedata.combining(ch) for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
