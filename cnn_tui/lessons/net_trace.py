"""The trace of `cnn-tui net --no-ui`: the whole tiny network as plain text, stage by stage.

The trace runs `network.run_training` and writes, for every training step and every stage the
lesson screen steps through, its title with the rule it computes, where its input came from,
one line per step (`step_text.step_text`, as the screen writes it) and the arrays it filled
in; then the optimizer's update (SGD or Adam) and the loss after the step; at the end the loss
of every step, the loss and the true class's probability before and after the run, and a
numerical gradient check. With summary each stage's steps are counted instead of written. Plain text, no colour: `write_net_trace` hands each line
to a writer (`cnn_tui.commands` prints them, tests collect them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from cnn_tui.lessons.naive import StepEvent
from cnn_tui.lessons.net_replay import after_line, loss_format, net_formats
from cnn_tui.lessons.network import (
    ARRAYS,
    EDITABLE,
    NetExample,
    describe,
    gradient_check,
    run_training,
)
from cnn_tui.lessons.notation import legend_lines
from cnn_tui.lessons.number_format import NumberFormat, probability_format
from cnn_tui.lessons.settings import ADAM_BETAS, ADAM_EPS
from cnn_tui.lessons.step_text import StepStyle, fmt_factor, format_cell, plane_header, step_text
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
    "adam_m": "running means",
    "adam_v": "running means of squares",
    "adam_mhat": "bias corrections",
    "adam_vhat": "bias corrections",
    "adam": "updates",
}

HEADINGS = {
    "forward": "== forward ==",
    "backward": "== backward: the chain rule, layer by layer ==",
    "update": "== update: one {optimizer} step ==",
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
    training = run_training(example)
    first = training.runs[0]
    loss = loss_format(training)  # L's one format over the run: every step and the summary
    first_formats = net_formats(first, loss)
    for line in _header(example, first_formats):
        write(line)
    write("")
    for name in EDITABLE:
        for line in array_lines(name, first.values[name], first_formats):
            write(line)
    for run in training.runs:
        if training.steps > 1:
            write("")
            write(f"==== training step {run.step} of {training.steps} ====")
        _write_step(example, run, write, summary, loss)
        if training.steps > 1:
            write(f"step {run.step}: loss {loss(run.loss)} → {loss(run.loss_after)}")
    write("")
    for line in summary_lines(training, loss):
        write(line)
    write("")
    check = gradient_check(example, first)
    write(f"gradient check (central differences, eps {check.eps:g}): {check.summary()}")


def summary_lines(training, loss: NumberFormat) -> Iterator[str]:
    """The run in a few lines: each step's loss (in its one format), and before → after."""
    example, losses = training.example, training.losses
    probabilities = training.true_probabilities()
    label = example.label
    steps = training.steps
    chance = probability_format(probabilities)  # the true class's p, one format over the run
    yield f"loss per step (before step 1, then after each): {', '.join(loss(v) for v in losses)}"
    yield (
        f"summary: after {steps} {_optimizer(example)} step{'s' if steps != 1 else ''}, loss "
        f"{loss(losses[0])} → {loss(losses[-1])}, p[{label}] (the true class, "
        f"{example.class_name(label)}) {chance(probabilities[0])} → {chance(probabilities[-1])}"
    )


def _optimizer(example: NetExample) -> str:
    return "SGD" if example.optimizer == "sgd" else "Adam"


def _write_step(
    example: NetExample,
    run,
    write: Callable[[str], None],
    summary: bool,
    loss: NumberFormat,
) -> None:
    """One training step's stages, each array in its format (`net_formats`, as on screen)."""
    formats = net_formats(run, loss)
    style = net_trace_style(formats)
    direction = ""
    for stage in run.stages:
        if stage.direction != direction:
            direction = stage.direction
            write("")
            write(HEADINGS[direction].format(optimizer=_optimizer(example)))
        write("")
        steps = f"   ({len(stage.events):,} steps)" if stage.events else ""
        write(f"{stage.title}: {stage.rule}{steps}")
        write(f"  {after_line(run, loss) if stage.direction == 'after' else stage.source}")
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
    steps = f"{example.steps} training step{'s' if example.steps != 1 else ''}"
    if example.optimizer == "adam":
        (beta1, beta2), eps = ADAM_BETAS, ADAM_EPS
        yield f"{steps}, optimizer Adam (β1 = {beta1:g}, β2 = {beta2:g}, ε = {eps:g})"
    else:
        yield f"{steps}, optimizer SGD"
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
        axes = ARRAYS.get(name, ((), name, ""))[0]
        yield plane_header(shown, axes, lead, *plane.shape)
        for row in grid:
            yield "  " + " ".join(cell.rjust(width) for cell in row)


def _planes(array: np.ndarray) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    for lead in np.ndindex(*array.shape[:-2]):
        yield lead, array[lead]
