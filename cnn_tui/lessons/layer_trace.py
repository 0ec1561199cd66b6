"""The trace of `cnn-tui batchnorm --no-ui` / `cnn-tui dropout --no-ui`: a lesson as plain text.

It runs `layer_lesson.run_layer` and writes a header (the example and the notation legend,
`notation.legend_lines`), then, stage by stage as the lesson screen steps through
them, the stage's title with its rule, where its input came from, one line per step
(`norm.layer_step_text`, as the screen writes it) and the arrays it filled in; with backward the
backward stages and a numerical gradient check, with summary the steps counted instead. Plain
text, no colour: `write_layer_trace` hands each line to a writer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from cnn_tui.lessons.layer_lesson import (
    LAYER_ARRAYS,
    LayerExample,
    describe,
    gradient_check,
    run_layer,
)
from cnn_tui.lessons.layer_replay import layer_formats
from cnn_tui.lessons.naive import StepEvent
from cnn_tui.lessons.norm import layer_step_text
from cnn_tui.lessons.notation import legend_lines
from cnn_tui.lessons.number_format import NumberFormat
from cnn_tui.lessons.step_text import StepStyle, fmt_factor, fmt_num, format_cell, plane_header

HEADINGS = {
    "forward": "== forward (training mode) ==",
    "backward": "== backward: the chain rule, step by step ==",
}

_KINDS = {
    "mac": "multiply-adds",
    "add": "adds",
    "sqdev": "squared deviations",
    "norm": "normalisations",
    "affine": "scale-and-shifts",
    "ema": "running averages",
    "mul": "products",
    "dvar": "dσ² terms",
    "dmu": "dμ terms",
    "dx": "dx sums",
    "keep": "mask draws",
    "drop": "scalings",
}


def _ref(name: str, index: tuple[int, ...]) -> str:
    axes, shown, _ = LAYER_ARRAYS.get(name, ((), name, ""))
    return f"{shown}[{','.join(str(i) for i in index)}]" if index else shown


def layer_trace_style(formats: Mapping[str, NumberFormat]) -> StepStyle:
    """Every index in full, terse (like the conv trace), each value in its array's format
    (`layer_formats`, as on the lesson screen)."""
    return StepStyle(ref=_ref, num=fmt_num, factor=fmt_factor, cell=format_cell(formats))


def step_line(event: StepEvent, style: StepStyle) -> str:
    """One step as the trace writes it: the formula and its numbers on one line."""
    return " ".join(layer_step_text(event, style))


def layer_trace_text(
    example: LayerExample, *, backward: bool = False, summary: bool = False
) -> str:
    """The whole trace as one string."""
    lines: list[str] = []
    write_layer_trace(example, lines.append, backward=backward, summary=summary)
    return "\n".join(lines) + "\n"


def example_lines(example: LayerExample) -> list[str]:
    """Which example: "random, seed N", or a lesson file's name, title and description."""
    if example.name == "random":
        return [f"example: random, seed {example.seed} (one-decimal values)"]
    drawn = "dy and u" if example.op == "dropout" else "dy"
    seeded = f" ({drawn} drawn from seed {example.seed})" if example.seeded else ""
    lines = [f"example: {example.name}: {example.title}{seeded}"]
    return lines + [f"  {line}" for line in example.description.splitlines()]


def write_layer_trace(
    example: LayerExample,
    write: Callable[[str], None],
    *,
    backward: bool = False,
    summary: bool = False,
) -> None:
    """Write the trace line by line to `write`."""
    run = run_layer(example)
    formats = layer_formats(run)
    style = layer_trace_style(formats)
    write(describe(example))
    for line in example_lines(example):
        write(line)
    for line in legend_lines(example.op):
        write(line)
    write("")
    inputs = ("x", "gamma", "beta") if example.op == "batchnorm" else ("x", "u")
    for name in inputs:
        for line in array_lines(name, run.values[name], formats):
            write(line)
    direction = ""
    for stage in run.stages:
        if stage.direction == "backward" and not backward:
            break
        if stage.direction != direction:
            direction = stage.direction
            write("")
            write(HEADINGS[direction])
            if direction == "backward":
                for line in array_lines("dy", run.values["dy"], formats):
                    write(line)
        write("")
        write(f"{stage.title}: {stage.rule}   ({len(stage.events):,} steps)")
        write(f"  {stage.source}")
        if summary:
            write(_counts(stage.events))
        else:
            for event in stage.events:
                write(step_line(event, style))
        for name in stage.writes:
            for line in array_lines(name, run.values[name], formats):
                write(line)
    write("")
    if not backward:
        grads = "dβ, dγ, dx̂, dσ², dμ, dx" if example.op == "batchnorm" else "dx"
        write(f"(add --backward for the backward pass: {grads} and a gradient check)")
        return
    check = gradient_check(example, run)
    write(f"gradient check (central differences, eps {check.eps:g}): {check.summary()}")


def _counts(events: list[StepEvent]) -> str:
    kinds = Counter(e.kind for e in events)
    cells = {(e.target, e.target_index) for e in events}
    per = ", ".join(f"{n:,} {_KINDS.get(k, k)}" for k, n in kinds.items())
    targets = list(dict.fromkeys(_ref(e.target, ()) for e in events))
    return f"  {len(events):,} steps ({per}) into {len(cells):,} cells of {', '.join(targets)}"


def array_lines(name: str, array: np.ndarray, formats: Mapping[str, NumberFormat]) -> Iterator[str]:
    """An array as aligned rows: one grid per [n, c] plane, a per-channel vector as one row."""
    write = formats.get(name, fmt_num)
    axes, shown, _ = LAYER_ARRAYS.get(name, ((), name, ""))
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        yield f"{shown} = [{', '.join(write(v) for v in array)}]"
        return
    for n, c in np.ndindex(*array.shape[:2]):
        grid = [[write(v) for v in row] for row in array[n, c]]
        width = max(len(cell) for row in grid for cell in row)
        yield plane_header(shown, axes, (n, c), *array.shape[2:])
        for row in grid:
            yield "  " + " ".join(cell.rjust(width) for cell in row)
