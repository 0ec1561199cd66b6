"""The lessons' symbols beside the lecture's: one legend for the `?` page and the traces.

The lecture notes (seed 004) write N for the input size and F for the filter (kernel) size —
`⌊(N + 2P − F)/S⌋ + 1` — and the layer as `X[m,n] = Σ_i,j o[m+i,n+j]·w[i,j] + b`, with X the
layer's output before its activation and o the previous layer's output. This app follows
PyTorch's names instead: K the kernel size, F the number of filters, N the images of a batch, x
the input, out the output. `legend(lesson)` lists, for one lesson ("conv", "pool", "net"), each
symbol, what it is and how the lecture writes it; `legend_lines` writes it as text (the trace's
header), the lesson screens' `?` page draws the same rows, and docs/lessons/notation.md is the
table a test compares with them.

The lecture's layer formula is a cross-correlation (the kernel as it is), the default and what
PyTorch's conv2d computes; the true convolution (the kernel rotated by 180°) is the
signal-processing definition the lecture starts from, (f*g)(s) = Σ_t f(t)·g(s−t): the legend's
last rows, worded once in `settings.CONV_MODE_TEXT`. Nothing here imports numpy, Textual or
torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnn_tui.lessons.naive import output_size_rule
from cnn_tui.lessons.settings import CONV_MODE_TEXT, CONV_MODES

LESSONS = ("conv", "pool", "net")


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
_ALL = LESSONS

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
)


def legend(lesson: str) -> list[Symbol]:
    """The rows of the legend of `lesson` ("conv", "pool" or "net"), in order; none for a
    lesson the table does not cover yet."""
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
    here = max(len(row[0]) for row in rows)
    meaning = max(len(row[1]) for row in rows)
    return [f"{LEGEND_TITLE}:"] + [
        f"{indent}{row[0].ljust(here)}  {row[1].ljust(meaning)}  {row[2]}".rstrip() for row in rows
    ]
