"""The trace of `cnn-tui net --no-ui`: the whole tiny network as plain text, stage by stage.

The trace runs `network.run_network` and writes, for every stage the lesson screen steps
through, its title with the rule it computes, where its input came from, one line per step
(`step_text.step_text`, as the screen writes it) and the arrays it filled in; then the SGD
update and the loss after the step, and a numerical gradient check. With summary each stage's
steps are counted instead of written. Plain text, no colour: `write_net_trace` hands each line
to a writer (`cnn_tui.commands` prints them, tests collect them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from cnn_tui.lessons.naive import StepEvent
from cnn_tui.lessons.net_replay import net_formats
from cnn_tui.lessons.network import (
    ARRAYS,
    EDITABLE,
    NetExample,
    describe,
    gradient_check,
    run_network,
)
from cnn_tui.lessons.notation import legend_lines
from cnn_tui.lessons.number_format import NumberFormat
from cnn_tui.lessons.step_text import StepStyle, fmt_factor, format_cell, step_text
from cnn_tui.lessons.step_text import fmt_num as _num
from cnn_tui.lessons.trace import KIND_NAMES

_NET_KINDS = {
    **KIND_NAMES,
    "relu": "ReLUs",
    "mask": "masks",
    "copy": "copies",
    "exp": "exps",
    "div": "divisions",
    "nll": "logs",
    "sub": "subtractions",
    "sgd": "updates",
}

HEADINGS = {
    "forward": "== forward ==",
    "backward": "== backward: the chain rule, layer by layer ==",
    "update": "== update: one SGD step ==",
    "after": "== after the step ==",
}


def _ref(name: str, index: tuple[int, ...]) -> str:
    shown = ARRAYS.get(name, ((), name, ""))[1]
    return f"{shown}[{','.join(str(i) for i in index)}]" if index else shown


def net_trace_style(formats: Mapping[str, NumberFormat]) -> StepStyle:
    """How the trace writes a step: every index in full, terse (like the conv trace), each
    value in its array's format (`net_formats`, as on the lesson screen)."""
    return StepStyle(
        ref=_ref, num=_num, factor=fmt_factor, route_source="a1", cell=format_cell(formats)
    )


def step_line(event: StepEvent, style: StepStyle) -> str:
    """One step as the trace writes it: the formula and its numbers on one line."""
    return " ".join(step_text(event, style))


def net_trace_text(example: NetExample, *, summary: bool = False) -> str:
    """The whole trace as one string (what `cnn-tui net --no-ui` prints)."""
    lines: list[str] = []
    write_net_trace(example, lines.append, summary=summary)
    return "\n".join(lines) + "\n"


def write_net_trace(
    example: NetExample, write: Callable[[str], None], *, summary: bool = False
) -> None:
    """Write the trace line by line to `write`."""
    run = run_network(example)
    formats = net_formats(run)
    style = net_trace_style(formats)
    for line in _header(example, formats):
        write(line)
    write("")
    for name in EDITABLE:
        for line in array_lines(name, run.values[name], formats):
            write(line)
    direction = ""
    for stage in run.stages:
        if stage.direction != direction:
            direction = stage.direction
            write("")
            write(HEADINGS[direction])
        write("")
        steps = f"   ({len(stage.events):,} steps)" if stage.events else ""
        write(f"{stage.title}: {stage.rule}{steps}")
        write(f"  {stage.source}")
        if summary and stage.events:
            write(_counts(stage.events))
        else:
            for event in stage.events:
                write(step_line(event, style))
        for name in stage.writes:
            for line in array_lines(name, run.values[name], formats):
                write(line)
        if stage.key == "softmax.forward":
            label = example.label
            write(f"loss L = −log p[{label}] = {formats['L'](run.loss)}")
    write("")
    check = gradient_check(example, run)
    write(f"gradient check (central differences, eps {check.eps:g}): {check.summary()}")


def _header(example: NetExample, formats: Mapping[str, NumberFormat]) -> Iterator[str]:
    yield f"network: {describe(example)}"
    yield f"example: {example.name}: {example.title}"
    for line in example.description.strip().splitlines():
        yield f"  {line}"
    names = ", ".join(f"{k} = {example.class_name(k)}" for k in range(example.classes))
    yield f"classes: {names}"
    label = example.label
    lr = formats["lr"](example.lr)
    yield f"label y = {label} ({example.class_name(label)}), learning rate α = {lr}"
    yield from legend_lines("net")


def _counts(events) -> str:
    """One line: the steps of a stage by kind, and the cells they write."""
    kinds = Counter(e.kind for e in events)
    cells = {(e.target, e.target_index) for e in events}
    per = ", ".join(f"{n:,} {_kind_name(k, n)}" for k, n in kinds.items())
    targets = list(dict.fromkeys(_ref(e.target, ()) for e in events))
    into = f"{targets[0]} cells" if len(targets) == 1 else f"cells of {', '.join(targets)}"
    return f"  {len(events):,} steps ({per}) into {len(cells):,} {into}"


def _kind_name(kind: str, count: int) -> str:
    name = _NET_KINDS.get(kind, kind)
    if count != 1 or name == "bias" or not name.endswith("s"):
        return name
    return name[:-3] + "y" if name.endswith("ies") else name[:-1]


def array_lines(name: str, array: np.ndarray, formats: Mapping[str, NumberFormat]) -> Iterator[str]:
    """An array as aligned rows: feature maps one grid per [n, c] slice, vectors one row; every
    value in the array's format, as its grid on the lesson screen writes it."""
    shown = ARRAYS.get(name, ((), name, ""))[1]
    write = formats.get(name, _num)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        yield f"{shown} = {write(float(array))}"
        return
    if array.ndim == 1 or (array.ndim == 2 and array.shape[0] == 1):
        yield f"{shown} = [{', '.join(write(v) for v in array.reshape(-1))}]"
        return
    planes = [((), array)] if array.ndim == 2 else list(_planes(array))
    for lead, plane in planes:
        grid = [[write(v) for v in row] for row in plane]
        width = max(len(cell) for row in grid for cell in row)
        index = f"[{','.join(str(i) for i in lead)}]" if lead else ""
        yield f"{shown}{index}  ({plane.shape[0]}×{plane.shape[1]})"
        for row in grid:
            yield "  " + " ".join(cell.rjust(width) for cell in row)


def _planes(array: np.ndarray) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    for lead in np.ndindex(*array.shape[:-2]):
        yield lead, array[lead]
