"""The trace of `cnn-tui conv --no-ui` / `cnn-tui pool --no-ui`: a lesson as plain text.

The trace runs the naive engine on the lesson example and writes one line per step event, so it
shows the very loops the lesson screen steps through: the header (shapes, stride, padding, the
output-size formula with its numbers, the notation beside the lecture's), the arrays, each step, the result and, with backward,
the upstream gradient, the gradient steps, dx, dw, db and a numerical gradient check. With
summary it counts the steps per phase and per output cell instead. Plain text, no colour:
`write_trace` hands each line to a writer (`cnn_tui.commands` prints them, tests collect them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import numpy as np

from cnn_tui.lessons.examples import LessonExample
from cnn_tui.lessons.naive import (
    StepEvent,
    output_size_formula,
    output_size_rule,
    stuffed_dout,
)
from cnn_tui.lessons.notation import legend_lines
from cnn_tui.lessons.number_format import NumberFormat
from cnn_tui.lessons.replay import leftovers_text, lesson_formats
from cnn_tui.lessons.rules import dout_source, local_rule, phase_rule
from cnn_tui.lessons.settings import LIMITS, conv_mode_text
from cnn_tui.lessons.step_text import (
    StepStyle,
    array_ref,
    axes_of,
    fmt_factor,
    fmt_num,
    format_cell,
    plane_header,
    step_text,
)

KIND_NAMES = {
    "bias": "bias",
    "mac": "multiply-adds",
    "add": "adds",
    "compare": "comparisons",
    "route": "routes",
}


def trace_text(example: LessonExample, *, backward: bool = False, summary: bool = False) -> str:
    """The whole trace as one string (what `cnn-tui conv|pool --no-ui` prints)."""
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
    formats = lesson_formats(example)  # the lesson screen's: the same digits for each value
    style = trace_style(example, formats)
    arrays = partial(_array_lines, formats=formats, op=example.naive_op)
    for line in (*_header(example), "", *_inputs(example, formats)):
        write(line)
    write("")
    write(f"{_phase_title(example, 'forward')}   ({example.step_counts()['forward']:,} steps)")
    out, cache = _run(example.forward, example, write, summary, style)
    write("")
    for line in arrays("out", out):
        write(line)
    if not backward:
        write("")
        write("(add --backward for the backward pass: db, dW, dX and a gradient check)")
        return

    write("")
    write(f"backward: {dout_source(example)}")
    for line in arrays("dout", example.dout):
        write(line)
    grads = _run(lambda on_step: example.backward(cache, on_step), example, write, summary, style)
    write("")
    if example.op == "conv" and any(example.padding):
        write(f"dx = dx_pad without its padding ({_hw_short(example.padding)}):")
    for name, grad in grads.items():
        for line in arrays(name, grad):
            write(line)
    if example.op == "conv":
        _transposed(example, cache, grads["dx"], write, summary, style, formats)
    write("")
    check = example.gradient_check()
    write(f"gradient check (central differences, eps {check.eps:g}): {check.summary()}")


def _transposed(
    example: LessonExample,
    cache: Any,
    dx: np.ndarray,
    write: Callable[[str], None],
    summary: bool,
    style: StepStyle,
    formats: Mapping[str, NumberFormat],
) -> None:
    """dX again, as a transposed convolution of dout with the kernel (gathered, not scattered)."""
    write("")
    steps = example.transposed_steps
    title = f"{_phase_title(example, 'grad_input_transposed')}   ({steps:,} steps)"
    if steps > LIMITS.max_steps:
        write(f"{title}: more than the {LIMITS.max_steps:,} a lesson shows, left out")
        return
    write(local_rule(example, "grad_input_transposed") + ":")
    for line in _array_lines(
        "dout_up", stuffed_dout(example.dout, cache), formats=formats, op=example.naive_op
    ):
        write(line)
    write("")
    write(title)
    again = _run(
        lambda on_step: example.transposed_backward(cache, on_step),
        example,
        write,
        summary,
        style,
        phase="grad_input_transposed",
    )
    write("")
    difference = float(np.max(np.abs(again - dx)))
    write(f"dx as a transposed convolution equals the dX pass: max |Δ| {difference:.1e}")


def _run(
    run: Callable[[Callable[[StepEvent], None]], Any],
    example: LessonExample,
    write: Callable[[str], None],
    summary: bool,
    style: StepStyle,
    phase: str = "forward",
) -> Any:
    """Call forward or backward with an on_step that prints each step (or counts them)."""
    counts = example.step_counts()
    if phase == "grad_input_transposed":
        counts[phase] = example.transposed_steps
    current = {"phase": phase}  # the first phase's title is written before the call
    tally: Counter[tuple[str, str]] = Counter()
    per_cell: dict[str, Counter[tuple[int, ...]]] = {}
    targets: dict[str, str] = {}

    def header(phase: str) -> None:
        """A phase's title; dX's with the x_pad rows and columns no step reaches under it."""
        write("")
        write(f"{_phase_title(example, phase)}   ({counts[phase]:,} steps)")
        if phase == "grad_input" and example.op == "conv" and leftovers_text(example):
            write(f"  {leftovers_text(example)}")

    def on_step(event: StepEvent) -> None:
        if summary:
            tally[(event.phase, event.kind)] += 1
            per_cell.setdefault(event.phase, Counter())[event.target_index] += 1
            targets[event.phase] = event.target
            return
        if event.phase != current["phase"]:
            current["phase"] = event.phase
            header(event.phase)
        write(step_line(event, style))

    result = run(on_step)
    for done, cells in per_cell.items():
        if done != phase:
            header(done)
        kinds = ", ".join(f"{n:,} {KIND_NAMES[k]}" for (p, k), n in tally.items() if p == done)
        low, high = min(cells.values()), max(cells.values())
        each = f"{low}" if low == high else f"{low} to {high}"
        write(
            f"  {sum(cells.values()):,} steps ({kinds}) into {len(cells):,} "
            f"{targets[done]} cells: {each} per cell"
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
    dilation = example.dilation
    settings = f"kernel {_hw(kernel)}, stride {_hw_short(stride)}"
    if example.op == "conv":
        settings += f", padding {_hw_short(padding)}" + (" (zeros)" if any(padding) else "")
        if example.padding_rule:
            settings += f" from padding {example.padding_rule}"
        if dilation != (1, 1):
            settings += f", dilation {_hw_short(dilation)}"
    else:
        settings += f", {'max' if example.pool_type == 'max' else 'average'} pooling"
    yield settings
    if example.op == "conv":
        yield f"computes: {conv_mode_text(example.conv_mode)}"
    if example.padding_rule == "same":
        yield ("padding same: P = D·(K − 1)/2 on each side, so the output keeps the input's size")
    pooling = example.op == "pool"
    twice_padding = None if pooling else "2·padding"
    shown = "dilation" if dilation != (1, 1) else None
    rule = output_size_rule("input", "kernel", "stride", twice_padding, shown)
    yield f"output size = {rule}"
    for axis, size, k in (("height:", x.shape[2], 0), ("width: ", x.shape[3], 1)):
        formula = output_size_formula(
            size, kernel[k], stride[k], padding[k], pooling=pooling, dilation=dilation[k]
        )
        yield f"  {axis} {formula}"
    yield from legend_lines(example.op)


def _inputs(example: LessonExample, formats: Mapping[str, NumberFormat]) -> Iterator[str]:
    arrays = partial(_array_lines, formats=formats, op=example.naive_op)
    if example.op == "conv":
        if any(example.padding):
            yield f"x_pad = x with padding {_hw_short(example.padding)} (zeros around it):"
            yield from arrays("x_pad", example.x_pad)
        else:
            yield from arrays("x_pad", example.x_pad, note="(= x, no padding)")
        yield from arrays("w", example.w)
        yield f"b = {_row(example.b, formats['b'])}"
    else:
        yield from arrays("x", example.x)


_PHASE_NAMES = {
    "forward": "forward",
    "grad_bias": "grad bias",
    "grad_weight": "grad weight",
    "grad_input": "grad input",
    "grad_input_transposed": "grad input as a transposed convolution",
}


def _phase_title(example: LessonExample, phase: str) -> str:
    """The phase's name and its rule, as the lesson screen states it (`rules.phase_rule`),
    with the local derivative of a backward phase."""
    title = f"{_PHASE_NAMES[phase]}: {phase_rule(example, phase)}"
    local = local_rule(example, phase)
    if local and phase != "grad_input_transposed":
        title += f", with {local}"
    return title


def step_line(event: StepEvent, style: StepStyle) -> str:
    """One step as text, e.g. `out[1,2] += x_pad[1,2]·w[0,1] = 0.4·(-1.3) → -0.83`.

    `step_text.step_text` writes it, as it does the lesson screen's step panel, with the same cell
    names and numbers (`trace_style`); only the notes and the spelled-out sum are left out.
    """
    return " ".join(step_text(event, style))


def trace_style(
    example: LessonExample, formats: Mapping[str, NumberFormat] | None = None
) -> StepStyle:
    """How the trace writes the steps of `example`: the screen's cell names and numbers
    (`formats`: the example's `lesson_formats`, worked out here when not given)."""
    formats = lesson_formats(example) if formats is None else formats
    shapes: dict[str, tuple[int, ...]] = {
        "x": example.x.shape,
        "dx": example.x.shape,
        "out": example.output_shape,
        "dout": example.output_shape,
    }
    if example.op == "conv":
        shapes.update(
            x_pad=example.x_pad.shape,
            dx_pad=example.x_pad.shape,
            w=example.w.shape,
            dw=example.w.shape,
            b=example.b.shape,
            db=example.b.shape,
            dout_up=example.output_shape[:2] + (1, 1),
        )
    op = example.naive_op
    return StepStyle(
        ref=lambda name, index: array_ref(op, shapes, name, index),
        num=fmt_num,
        factor=fmt_factor,
        cell=format_cell(formats),
    )


def _row(values: np.ndarray, number_format: Callable[[float], str]) -> str:
    return "[" + ", ".join(number_format(v) for v in values) + "]"


def _array_lines(
    name: str,
    array: np.ndarray,
    note: str = "",
    *,
    formats: Mapping[str, NumberFormat],
    op: str,
) -> Iterator[str]:
    """A 4-D array as one aligned grid per [n, c] slice, headed `x_pad[n=0, c=0]  (10×10)`
    (`plane_header`); 1-D arrays as one row; every value in the array's format, as its grid on
    the lesson screen writes it."""
    number_format = formats.get(name, fmt_num)
    if array.ndim == 1:
        yield f"{name} = {_row(array, number_format)}"
        return
    for n in range(array.shape[0]):
        for c in range(array.shape[1]):
            grid = [[number_format(v) for v in row] for row in array[n, c]]
            width = max(len(cell) for row in grid for cell in row)
            header = plane_header(name, axes_of(op, name, 4), (n, c), *array.shape[2:])
            yield f"{header} {note}".rstrip()
            for row in grid:
                yield "  " + " ".join(cell.rjust(width) for cell in row)


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _hw(pair: tuple[int, int]) -> str:
    return f"{pair[0]}×{pair[1]}"


def _hw_short(pair: tuple[int, int]) -> str:
    """Stride or padding: one number when both directions agree, else height×width."""
    return str(pair[0]) if pair[0] == pair[1] else _hw(pair)
