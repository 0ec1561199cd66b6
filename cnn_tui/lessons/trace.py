"""`cnn-tui conv --no-ui` / `cnn-tui pool --no-ui`: print a lesson as plain text.

The trace runs the naive engine on the lesson example and prints one line per step event, so it
shows the very loops the lesson screen steps through: the header (shapes, stride, padding, the
output-size formula with its numbers), the arrays, each step, the result and, with --backward,
the upstream gradient, the gradient steps, dx, dw, db and a numerical gradient check. With
--summary it counts the steps per phase and per output cell instead. Plain text, no colour.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np

from cnn_tui.lessons.examples import LessonExample, example_from_args
from cnn_tui.lessons.naive import StepEvent, output_size_formula, output_size_rule
from cnn_tui.lessons.replay import StepStyle, scale_text, step_text

# Plain-ASCII stand-ins, for a terminal or pipe whose encoding lacks these symbols.
_ASCII = str.maketrans(
    {"·": "*", "→": "->", "⌊": "floor(", "⌋": ")", "Σ": "sum ", "−": "-", "×": "x", "∂": "d"}
)

KIND_NAMES = {
    "bias": "bias",
    "mac": "multiply-adds",
    "add": "adds",
    "compare": "comparisons",
    "route": "routes",
}


def run_trace(args: argparse.Namespace) -> int:
    """Print the trace of `cnn-tui conv|pool --no-ui`; raises UsageError for a bad example."""
    example = example_from_args(args)
    try:
        write_trace(example, _writer(sys.stdout), backward=args.backward, summary=args.summary)
        sys.stdout.flush()
    except BrokenPipeError:  # `cnn-tui conv --no-ui | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _writer(stream: TextIO) -> Callable[[str], None]:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "·→⌊⌋Σ−×∂".encode(encoding)
        plain = False
    except (UnicodeEncodeError, LookupError):
        plain = True

    def write(line: str) -> None:
        stream.write((line.translate(_ASCII) if plain else line) + "\n")

    return write


def trace_text(example: LessonExample, *, backward: bool = False, summary: bool = False) -> str:
    """The whole trace as one string (what `run_trace` prints)."""
    lines: list[str] = []
    write_trace(example, lines.append, backward=backward, summary=summary)
    return "\n".join(lines) + "\n"


def write_trace(
    example: LessonExample,
    write: Callable[[str], None],
    *,
    backward: bool = False,
    summary: bool = False,
) -> None:
    """Write the trace line by line; step lines are written while the loops run."""
    for line in (*_header(example), "", *_inputs(example)):
        write(line)
    write("")
    write(f"{_phase_title(example, 'forward')}   ({example.step_counts()['forward']:,} steps)")
    out, cache = _run(example.forward, example, write, summary)
    write("")
    for line in _array_lines("out", out):
        write(line)
    if not backward:
        return

    write("")
    write(f"backward: upstream gradient dout = ∂L/∂out (seed {example.seed})")
    for line in _array_lines("dout", example.dout):
        write(line)
    grads = _run(lambda on_step: example.backward(cache, on_step), example, write, summary)
    write("")
    if example.op == "conv" and any(example.padding):
        write(f"dx = dx_pad without its padding ({_hw_short(example.padding)}):")
    for name, grad in grads.items():
        for line in _array_lines(name, grad):
            write(line)
    write("")
    check = example.gradient_check()
    write(f"gradient check (central differences, eps {check.eps:g}): {check.summary()}")


def _run(
    run: Callable[[Callable[[StepEvent], None]], Any],
    example: LessonExample,
    write: Callable[[str], None],
    summary: bool,
) -> Any:
    """Call forward or backward with an on_step that prints each step (or counts them)."""
    counts = example.step_counts()
    current = {"phase": "forward"}  # the forward title is written before the call
    tally: Counter[tuple[str, str]] = Counter()
    per_cell: dict[str, Counter[tuple[int, ...]]] = {}
    targets: dict[str, str] = {}

    def title(phase: str) -> str:
        return f"{_phase_title(example, phase)}   ({counts[phase]:,} steps)"

    def on_step(event: StepEvent) -> None:
        if summary:
            tally[(event.phase, event.kind)] += 1
            per_cell.setdefault(event.phase, Counter())[event.target_index] += 1
            targets[event.phase] = event.target
            return
        if event.phase != current["phase"]:
            current["phase"] = event.phase
            write("")
            write(title(event.phase))
        write(step_line(event))

    result = run(on_step)
    for phase, cells in per_cell.items():
        if phase != "forward":
            write("")
            write(title(phase))
        kinds = ", ".join(f"{n:,} {KIND_NAMES[k]}" for (p, k), n in tally.items() if p == phase)
        low, high = min(cells.values()), max(cells.values())
        each = f"{low}" if low == high else f"{low} to {high}"
        write(
            f"  {sum(cells.values()):,} steps ({kinds}) into {len(cells):,} "
            f"{targets[phase]} cells: {each} per cell"
        )
    return result


def _header(example: LessonExample) -> Iterator[str]:
    op, x = example.naive_op, example.x
    out_shape = example.output_shape
    if example.op == "conv":
        yield (
            f"{op}: x {_shape(x.shape)} * w {_shape(example.w.shape)} + b {_shape(example.b.shape)}"
            f" → out {_shape(out_shape)}"
        )
    else:
        yield f"{op}: x {_shape(x.shape)} → out {_shape(out_shape)}"
    if example.name == "random":
        yield f"example: random, seed {example.seed} (one-decimal values in [-2, 2])"
    else:
        yield f"example: {example.name}: {example.title}"
        for line in example.description.strip().splitlines():
            yield f"  {line}"
    kernel, stride, padding = example.kernel, example.stride, example.padding
    settings = f"kernel {_hw(kernel)}, stride {_hw_short(stride)}"
    if example.op == "conv":
        settings += f", padding {_hw_short(padding)}" + (" (zeros)" if any(padding) else "")
    else:
        settings += f", {'max' if example.pool_type == 'max' else 'average'} pooling"
    yield settings
    pooling = example.op == "pool"
    twice_padding = None if pooling else "2·padding"
    yield f"output size = {output_size_rule('input', 'kernel', 'stride', twice_padding)}"
    for axis, size, k in (("height:", x.shape[2], 0), ("width: ", x.shape[3], 1)):
        formula = output_size_formula(size, kernel[k], stride[k], padding[k], pooling=pooling)
        yield f"  {axis} {formula}"


def _inputs(example: LessonExample) -> Iterator[str]:
    if example.op == "conv":
        if any(example.padding):
            yield f"x_pad = x with padding {_hw_short(example.padding)} (zeros around it):"
            yield from _array_lines("x_pad", example.x_pad)
        else:
            yield from _array_lines("x_pad", example.x_pad, note="(= x, no padding)")
        yield from _array_lines("w", example.w)
        yield f"b = {_row(example.b)}"
    else:
        yield from _array_lines("x", example.x)


def _phase_title(example: LessonExample, phase: str) -> str:
    """The phase's name and the formula its loops compute."""
    sh, sw = example.stride
    rows, cols = _times(sh, "i") + "+ki", _times(sw, "j") + "+kj"
    if example.op == "conv":
        return {
            "forward": (
                f"forward: out[n,f,i,j] = b[f] + Σ_c,ki,kj x_pad[n,c,{rows},{cols}]·w[f,c,ki,kj]"
            ),
            "grad_bias": "grad bias: db[f] = Σ_n,i,j dout[n,f,i,j]",
            "grad_weight": (
                f"grad weight: dw[f,c,ki,kj] = Σ_n,i,j x_pad[n,c,{rows},{cols}]·dout[n,f,i,j]"
            ),
            "grad_input": (
                f"grad input: dx_pad[n,c,{rows},{cols}] += w[f,c,ki,kj]·dout[n,f,i,j] "
                "for each n, f, i, j, c, ki, kj"
            ),
        }[phase]
    kh, kw = example.kernel
    window = f"ki < {kh}, kj < {kw}"
    if example.pool_type == "max":
        if phase == "forward":
            return f"forward: out[n,c,i,j] = max over {window} of x[n,c,{rows},{cols}]"
        return "grad input: dx[n,c,argmax] += dout[n,c,i,j], to the max of each window"
    if phase == "forward":
        return f"forward: out[n,c,i,j] = Σ over {window} of x[n,c,{rows},{cols}]·(1/{kh * kw})"
    return f"grad input: dx[n,c,{rows},{cols}] += dout[n,c,i,j]·(1/{kh * kw}) over {window}"


def step_line(event: StepEvent) -> str:
    """One step as text, e.g. `out[0,0,1,2] += x_pad[0,0,1,2]·w[0,0,0,1] = 0.4·(-1.3) → -0.83`.

    `replay.step_text` writes it, as it does the lesson screen's step panel; only the style
    differs (full indices, plain numbers, no notes).
    """
    return " ".join(step_text(event, TRACE_STYLE))


def _index(index: tuple[int, ...]) -> str:
    return "[" + ",".join(str(i) for i in index) + "]"


def _factor(value: float, first: bool) -> str:
    text = _num(value)
    return f"({text})" if value < 0 and not first else text


def _num(value: float) -> str:
    """Short, exact-looking numbers: 0.4, -0.83, 12, 0.0417 (at most 4 decimals)."""
    if value == np.inf or value == -np.inf:
        return "inf" if value > 0 else "-inf"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# how the trace writes a step's values: every index in full, ASCII numbers, terse
TRACE_STYLE = StepStyle(
    ref=lambda name, index: f"{name}{_index(index)}",
    num=_num,
    factor=_factor,
    scale=lambda value: f"({scale_text(value)})",
)


def _row(values: np.ndarray) -> str:
    return "[" + ", ".join(_num(v) for v in values) + "]"


def _array_lines(name: str, array: np.ndarray, note: str = "") -> Iterator[str]:
    """A 4-D array as one aligned grid per [n, c] slice; 1-D arrays as one row."""
    if array.ndim == 1:
        yield f"{name} = {_row(array)}"
        return
    for n in range(array.shape[0]):
        for c in range(array.shape[1]):
            grid = [[_num(v) for v in row] for row in array[n, c]]
            width = max(len(cell) for row in grid for cell in row)
            rows, cols = array.shape[2], array.shape[3]
            yield f"{name}[{n},{c}]  ({rows}×{cols}) {note}".rstrip()
            for row in grid:
                yield "  " + " ".join(cell.rjust(width) for cell in row)


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _hw(pair: tuple[int, int]) -> str:
    return f"{pair[0]}×{pair[1]}"


def _hw_short(pair: tuple[int, int]) -> str:
    """Stride or padding: one number when both directions agree, else height×width."""
    return str(pair[0]) if pair[0] == pair[1] else _hw(pair)


def _times(stride: int, loop: str) -> str:
    return loop if stride == 1 else f"{stride}{loop}"
