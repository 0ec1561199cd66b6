"""UI-free model of the network lesson screen: one cursor over every stage of a training run.

The lesson is a sequence of stages (`network.Stage`: conv forward, ReLU forward, ..., the
softmax-CE loss, its gradient, the linear layer's db2, dw2, dh, ..., the SGD or Adam updates,
the loss after the step), once per training step of `network.run_training` (`extend` appends
one more step while the lesson runs). Each stage with steps is a `replay.Replay` of its
recorded events (built when first shown), so the
highlights and the cell jumps are the conv lesson's. `NetReplay` puts them end to end: position
P (0..total) means the first P steps of the whole lesson have run; the stage on screen is the
one holding step P (its own position counts from its start). Stepping past a stage's last step
enters the next stage. From the position it derives what the screen shows: the stage's arrays
as grids, the step's arithmetic (`step_text.step_text`), the rule of the stage and where its
input came from, the network with the current layer marked, and the loss of every training
step as a curve with the current one marked (`loss_curve`). `op_replay.OpReplay` is the
conv / pool lesson's counterpart; the screens move either the same way. Nothing here imports
Textual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn_tui.lessons.navigation import StagedNavigation
from cnn_tui.lessons.network import ARRAYS, LEAD_AXES, NetRun, Stage, TrainRun, after_source
from cnn_tui.lessons.number_format import (
    NumberFormat,
    array_formats,
    probability_format,
    significant_format,
)
from cnn_tui.lessons.replay import WINDOW, GridSpec, Replay
from cnn_tui.lessons.rules import softmax_ce_chain
from cnn_tui.lessons.step_text import StepStyle, fmt_factor, fmt_num, format_cell, step_text

DIRECTIONS = ("forward", "backward", "update", "after")

# the layers in the order of the forward pass (the pipeline line), and the names it shows
FORWARD_LAYERS = ("conv", "ReLU", "max-pool", "flatten", "linear", "softmax-CE")

_ACCUMULATING = ("bias", "mac", "add")


def cell_ref(shapes: Mapping[str, tuple[int, ...]], name: str, index: tuple[int, ...]) -> str:
    """A cell as the lesson writes it: `z1[f=1, 2,3]`, `w2[1,4]`, `p[0]`, `L`, `α`.

    The sample, channel and filter axes are named, and left out where they have size 1 (one
    image, one grey channel); a cell with no spatial index writes its values bare (`b1[1]`).
    """
    axes, shown, _ = ARRAYS.get(name, ((), name, ""))
    if not index:
        return shown
    shape = shapes.get(name, ())
    lead, rest = [], []
    for position, value in enumerate(index):
        axis = axes[position] if position < len(axes) else None
        size = shape[position] if position < len(shape) else 0
        if axis in LEAD_AXES:
            if size > 1:
                lead.append((axis, value))
        else:
            rest.append(str(value))
    if not rest:
        parts = [str(value) for _, value in lead]
        return f"{shown}[{','.join(parts)}]" if parts else shown
    named = [f"{axis}={value}" for axis, value in lead]
    return f"{shown}[{', '.join([*named, ','.join(rest)])}]"


def net_formats(run: NetRun, loss: NumberFormat | None = None) -> dict[str, NumberFormat]:
    """How every array of one training step of the network lesson writes its values, on the
    screen and in the trace alike (`number_format.array_formats`): chosen from the step's
    arrays and every scalar step. The scores, probabilities and loss after the step share the
    ones' before it (`AFTER_PAIRS`); `loss`, the whole run's (`loss_format`), writes L and L′."""
    events = (e for stage in run.stages for e in stage.events)
    formats = array_formats(run.values, events, AFTER_PAIRS)
    if loss is not None:
        formats["L"] = formats["L_after"] = loss
    # a probability below 1 is never written 1.000 (p after a few steps: 0.9995)
    # (and never fewer decimals than p − y needs: `array_formats` raised them for it)
    formats["p"] = formats["p_after"] = probability_format(
        run.values["p"], run.values["p_after"], min_decimals=formats["p"].decimals
    )
    return formats


def loss_format(training: TrainRun) -> NumberFormat:
    """The loss's one format over a training run: every step's L and L′, the curve, the trace's
    summary (the loss before step 1 and after each): three significant digits, scientific
    below 1e-3 (`number_format.significant_format`), so 0.795 and 1.70e-07 read alike."""
    return significant_format(training.losses)


def after_line(run: NetRun, loss: NumberFormat) -> str:
    """The "after" stage's line with the run's loss format (`network.after_source`)."""
    return after_source(run.loss, run.loss_after, loss)


# the second forward pass writes the same quantities as the first: one format each
AFTER_PAIRS = (("z2", "z2_after"), ("p", "p_after"), ("L", "L_after"))


class NetReplay(StagedNavigation):
    """The cursor of the network lesson over all its stages, every training step's in turn."""

    def __init__(self, run: NetRun | TrainRun) -> None:
        self.training = run if isinstance(run, TrainRun) else TrainRun(run.example, [run])
        self.example = self.training.example
        first = self.training.runs[0]
        self.shapes = {name: np.shape(array) for name, array in first.values.items()}
        self.stages: list[Stage] = []
        self.stage_runs: list[NetRun] = []  # the training step each stage belongs to
        self._replays: dict[int, Replay | None] = {}
        self.starts: list[int] = []
        self.total = 0
        for step in self.training.runs:
            self._append(step)
        self.position = 0
        # one format per array and training step, for its grid, the steps and the trace alike
        self._formats: dict[int, dict[str, NumberFormat]] = {}
        self._loss_format: NumberFormat | None = None
        self.style = StepStyle(
            ref=lambda name, index: cell_ref(self.shapes, name, index),
            num=fmt_num,
            factor=fmt_factor,
            explain=True,
            route_source="a1",
            cell=lambda name, value: self.write(name, value),
        )

    @property
    def formats(self) -> dict[str, NumberFormat]:
        """How the arrays of the training step on screen write their values (`net_formats`;
        the loss in the run's one format, `loss_format`)."""
        run = self.run
        if run.step not in self._formats:
            self._formats[run.step] = net_formats(run, self.loss_format)
        return self._formats[run.step]

    @property
    def loss_format(self) -> NumberFormat:
        """The loss's one format over the training run so far (`loss_format`)."""
        if self._loss_format is None:
            self._loss_format = loss_format(self.training)
        return self._loss_format

    def write(self, name: str, value: float) -> str:
        """`value` as array `name` of the training step on screen writes it."""
        return format_cell(self.formats)(name, value)

    def _append(self, run: NetRun) -> None:
        for stage in run.stages:
            self.stages.append(stage)
            self.stage_runs.append(run)
            self.starts.append(self.total)
            self.total += stage.steps

    def _replay_of(self, index: int) -> Replay | None:
        """Stage `index`'s replay, built when first needed (None for the "after" stage)."""
        if index not in self._replays:
            stage, run = self.stages[index], self.stage_runs[index]
            replay = None
            if stage.events:
                arrays = {name: run.values[name] for name in stage.reads}
                targets = {name: self.shapes[name] for name in stage.writes}
                replay = Replay(stage.events, arrays, targets)
                replay.route_source = "a1"
                replay.context_windows = stage.windows
            self._replays[index] = replay
        return self._replays[index]

    @property
    def replays(self) -> list[Replay | None]:
        return [self._replay_of(index) for index in range(len(self.stages))]

    def extend(self) -> int:
        """One more training step, appended after the last (UsageError at the limit); moves to
        its first step and returns the position."""
        start = self.total
        self._append(self.training.extend())
        self._formats, self._loss_format = {}, None  # a new loss: the run's format again
        return self.seek(start + 1)

    # ----------------------------------------------------------------- where we are

    @property
    def run(self) -> NetRun:
        """The training step on screen."""
        return self.stage_runs[self.stage_index]

    @property
    def train_step(self) -> int:
        """The training step on screen, from 1."""
        return self.run.step

    def step_start(self, step: int) -> int:
        """The position of training step `step`'s first scalar step (clamped to the run)."""
        step = min(max(step, 1), self.training.steps)
        index = next(k for k, run in enumerate(self.stage_runs) if run.step == step)
        return self.seek(self.starts[index] + 1)

    @property
    def replay(self) -> Replay | None:
        return self._replay_of(self.stage_index)

    # ----------------------------------------------------------------- moving

    def next_cell(self) -> int:
        """Finish the current output cell; at the end of a stage, the next stage's first."""
        index, replay = self.stage_index, self.replay
        if replay is None or self.local >= replay.total:
            if index + 1 >= len(self.stages):
                return self.position
            index += 1
            self.seek(self.starts[index])  # the previous stage, finished
            replay = self._replay_of(index)
            if replay is None:
                return self.seek(self.starts[index] + 1)
            replay.seek(0)
            return self.seek(self.starts[index] + replay.next_cell())
        return self.seek(self.starts[index] + replay.next_cell())

    def prev_cell(self) -> int:
        """Back to the end of the previous output cell (the previous stage's end at its start)."""
        replay = self.replay
        if replay is None or self.position == 0:
            return self.step(-1)
        return self.seek(self.starts[self.stage_index] + replay.prev_cell())

    def stage_start(self) -> int:
        """The first step of the current stage."""
        return self.seek(self.starts[self.stage_index] + 1)

    def stage_end(self) -> int:
        """The last step of the current stage."""
        index = self.stage_index
        return self.seek(self.starts[index] + self.stages[index].steps)

    def jump(self, where: str) -> int:
        """The first ("start") or the last ("end") step of the current stage."""
        return self.stage_start() if where == "start" else self.stage_end()

    def next_pass(self) -> int:
        """The first step of the next pass: forward → backward → update → after → the next
        training step's forward (after the last: the start)."""
        here, run = DIRECTIONS.index(self.stage.direction), self.run
        for index in range(self.stage_index + 1, len(self.stages)):
            stage = self.stages[index]
            if self.stage_runs[index] is not run or DIRECTIONS.index(stage.direction) > here:
                return self.seek(self.starts[index] + 1)
        return self.seek(0)

    def other_step(self, delta: int) -> int:
        """The same stage and step of training step `train_step + delta` (clamped to the run):
        how Adam's m of w2, or the loss, changes from one training step to the next. From the
        start (position 0): step 1's first step, moved on from there."""
        if self.position == 0:
            self.seek(1)
        key, local, entered = self.stage.key, self.local, self._entered is not None
        target = min(max(self.train_step + delta, 1), self.training.steps)
        for index, stage in enumerate(self.stages):
            if stage.key == key and self.stage_runs[index].step == target:
                if entered:
                    return self.enter_stage(index)
                return self.seek(self.starts[index] + min(local, stage.steps))
        return self.position

    # ----------------------------------------------------------------- go to, skip zeros
    # (`navigation.StagedNavigation`: goto_names, resolve_goto, go_to, skip_zeros)

    def cell_axes(self, name: str) -> tuple[str, ...]:
        return ARRAYS.get(name, ((), name, ""))[0]

    def cell_name(self, name: str, index: tuple[int, ...]) -> str:
        return cell_ref(self.shapes, name, index)

    # ----------------------------------------------------------------- what is shown

    def view_indices(self) -> dict[str, int]:
        """The filter f the current step (or the next) works on (the board shows that slice)."""
        e = self.shown_event()
        if e is None:
            return {}
        for name, index in [(e.target, e.target_index)] + [(o.name, o.index) for o in e.operands]:
            axes = ARRAYS.get(name, ((),))[0]
            if "f" in axes and len(index) == len(axes):
                return {"f": int(index[axes.index("f")])}
        return {}

    def axis_sizes(self) -> dict[str, int]:
        """The conv filters f (the slice a view of the feature maps picks)."""
        return {"f": int(self.example.w1.shape[0])}

    def grid_names(self) -> list[str]:
        names: list[str] = []
        for name in (*self.stage.reads, *self.stage.writes):
            if name not in names:
                names.append(name)
        return names

    def values(self, name: str) -> np.ndarray:
        """The array `name` as the current step leaves it (NaN: not computed yet)."""
        replay = self.replay
        if replay is not None and name in replay.targets:
            return replay.values(name)
        return np.asarray(self.run.values[name], dtype=np.float64)

    def grid_specs(
        self, view: Mapping[str, int] | None = None, every_filter: bool = False
    ) -> list[GridSpec]:
        """One 2-D grid per array of the stage: feature maps and filters show filter
        `view["f"]` (with `every_filter`, one grid per filter), vectors one row, the loss one
        cell; the current step's cells marked."""
        view = dict(view or {})
        if every_filter:
            specs = []
            for name in self.grid_names():
                axes = ARRAYS[name][0]
                filters = self.shapes[name][axes.index("f")] if "f" in axes[:2] else 1
                if len(axes) != 4 or filters == 1:
                    specs += self._specs([name], view)
                    continue
                for f in range(filters):
                    spec = self._specs([name], {**view, "f": f})[0]
                    spec.name = f"{name}#{f}"  # the board keeps each grid's own crop
                    specs.append(spec)
            return specs
        return self._specs(self.grid_names(), view)

    def _specs(self, names: list[str], view: Mapping[str, int]) -> list[GridSpec]:
        replay = self.replay
        marks = replay.highlights() if replay is not None else {}
        if self.stage.direction == "after":  # the true class's probability, before and after
            label = self.example.label
            marks = {"p": {(0, label): WINDOW}, "p_after": {(0, label): WINDOW}}
        specs = []
        for name in names:
            values = self.values(name)
            final = replay.final_values(name) if replay is not None else values
            axes, shown, meaning = ARRAYS[name]
            lead: tuple[int, ...] = ()
            label = ""
            if values.ndim == 4:
                chosen = []
                for axis, size in zip(axes[:2], values.shape[:2], strict=True):
                    value = min(max(view.get(axis, 0), 0), size - 1)
                    chosen.append(value)
                    if size > 1:
                        label = f"[{axis}={value}]"
                lead = tuple(chosen)
                plane, final_plane = values[lead], final[lead]
            else:
                plane, final_plane = values.reshape(values.shape or (1,)), final
            cells: dict[tuple[int, int], str] = {}
            for where, role in marks.get(name, {}).items():
                if len(where) == 4 and where[:2] == lead:
                    cells[(where[2], where[3])] = role
                elif len(where) == 2 and values.ndim == 2:
                    cells[(where[0], where[1])] = role
                elif len(where) <= 1 and values.ndim <= 1:
                    cells[(0, where[0] if where else 0)] = role
            title = f"{shown}{label} {meaning}".strip()
            final_plane = np.asarray(final_plane).reshape(np.shape(plane))
            number_format = self.formats.get(name)
            specs.append(GridSpec(name, title, plane, cells, (0, 0), final_plane, number_format))
        return specs

    def step_lines(self) -> list[str]:
        """The current step: its formula, its numbers, and where its output cell stands."""
        stage, e = self.stage, self.current
        if stage.direction == "after":
            return self._after_lines()
        entered = self.entered_lines()
        if entered is not None:
            return entered
        if e is None:
            counts = {d: 0 for d in DIRECTIONS}
            for s in self.stage_runs[0].stages:
                counts[s.direction] += len(s.events)
            steps = self.training.steps
            each = "" if steps == 1 else f" ({steps} training steps)"
            first = "" if steps == 1 else "each training step: "
            return [
                f"{self.total} steps recorded{each}: {first}forward {counts['forward']}, "
                f"backward {counts['backward']}, update {counts['update']}. Press → to run the "
                "first.",
                "",
                "",
            ]
        formula, numbers = step_text(e, self.style)
        return [formula, numbers, self._cell_line(e)]

    def _cell_line(self, e: Any) -> str:
        replay = self.replay
        assert replay is not None and replay.current_index is not None
        start, end = replay.cell_span(replay.current_index)
        done, count = replay.current_index - start + 1, end - start
        if self.stage.key == "softmax.backward":  # p − y, by the chain rule, in the grids' formats
            p = [float(v) for v in self.run.values["p"][0]]
            y = [float(v) for v in self.run.values["y"][0]]
            return softmax_ce_chain(p, y, e.target_index[-1], self.write)
        if self.stage.running and e.kind in _ACCUMULATING and count > 1:
            target = self.style.ref(e.target, e.target_index)
            status = "done" if done == count else "so far"
            total = self.write(e.target, e.after)
            return f"{target} = {self.stage.running} = {total} {status} ({done}/{count})"
        if self.stage.note:
            cells = f"cell {replay.cell_number()} of {replay.cell_count}"
            progress = f"{cells}, step {done}/{count}" if count > 1 else cells
            return f"{self.stage.note} ({progress})"
        return f"({done}/{count})"

    def _after_lines(self) -> list[str]:
        run, label = self.run, self.example.label
        p_before = float(run.values["p"][0, label])
        p_after = float(run.values["p_after"][0, label])
        change = run.loss_after - run.loss
        verdict = "lower: the step went downhill" if change < 0 else "not lower: α is too large"
        write = self.write
        return [
            "second forward pass with the updated weights w1′, b1′, w2′, b2′",
            f"L = {write('L', run.loss)} → L′ = {write('L_after', run.loss_after)}  "
            f"({write('L', change)}, {verdict})",
            f"p[{label}] (the true class, {self.example.class_name(label)}) = "
            f"{write('p', p_before)} → {write('p_after', p_after)}",
        ]

    # ----------------------------------------------------------------- the loss curve

    def curve_index(self) -> int:
        """Which loss of `training.losses` the screen is at: the loss the current training step
        starts from, or on its "after" stage the loss after it."""
        return self.run.step - (0 if self.stage.direction == "after" else 1)

    def curve_label(self) -> str:
        """The loss curve's caption: the loss the screen is at and the first, never a loss of a
        step not reached yet (at step 0 the caption does not give the ending away)."""
        losses, index = self.training.losses, self.curve_index()
        name = "SGD" if self.example.optimizer == "sgd" else "Adam"
        loss = self.loss_format
        start = f"  (from {loss(losses[0])})" if index else ""
        return f"after {index}/{self.training.steps} {name} steps: {loss(losses[index])}{start}"

    def rule_lines(self) -> tuple[str, str]:
        """What the stage computes in general, and where its input came from."""
        if self.stage.direction == "after":  # L and L′ in the run's loss format
            return self.stage.rule, after_line(self.run, self.loss_format)
        return self.stage.rule, self.stage.source

    def pipeline(self) -> tuple[str, list[tuple[str, bool]]]:
        """The network with the current layer marked: (direction label, [(layer, current)])."""
        stage = self.stage
        if stage.direction == "forward":
            layers = ["x", *FORWARD_LAYERS, "L"]
            current = stage.layer
        elif stage.direction == "backward":
            layers = ["L", *reversed(FORWARD_LAYERS), "dx"]
            current = stage.layer
        elif stage.direction == "update":
            layers = ["w1", "b1", "w2", "b2"]
            current = stage.key.split(".")[1]
        else:
            direction = "after" if self.training.steps == 1 else f"step {self.run.step} after"
            return direction, [("L", False), ("L′", True)]
        direction = stage.direction
        if self.training.steps > 1:
            direction = f"step {self.run.step} {direction}"
        return direction, [(layer, layer == current) for layer in layers]

    def pipeline_text(self) -> str:
        """The pipeline as plain text, the current layer in brackets."""
        direction, layers = self.pipeline()
        arrow = " → "
        parts = [f"[{name}]" if current else name for name, current in layers]
        return f"{direction}: {arrow.join(parts)}"

    def status_parts(self, speed: int) -> list[str]:
        example = self.example
        steps = self.training.steps
        training = f"step {self.run.step}/{steps} · " if steps > 1 else ""
        optimizer = "" if example.optimizer == "sgd" else " · Adam"
        return [
            f"network · {training}{self.stage.title}",
            f"step {self.local} / {self.stage.steps}",
            f"all {self.position} / {self.total}",
            f"{speed} steps/s",
            f"{example.status_label} · y = {example.label} · α = {self.write('lr', example.lr)}"
            f"{optimizer}",
        ]


# a bar per loss, eight heights per row of text
_BARS = " ▁▂▃▄▅▆▇█"


def loss_curve(
    losses: list[float], rows: int = 1, width: int = 1, shown: int | None = None
) -> list[str]:
    """The losses as a bar chart on a log scale (a loss falling from 0.8 to 1e-07 keeps every
    step visible), `width` columns per loss (left: before any step), `rows` rows of text high:
    the largest loss a full bar, the smallest above 0 a sliver, a loss of 0 an empty column.
    Only the first `shown` losses are drawn (the steps reached so far), the rest as `·`;
    rows top first."""
    shown = len(losses) if shown is None else shown
    positive = [loss for loss in losses if loss > 0]
    levels = rows * (len(_BARS) - 1)
    heights = [_height(loss, positive, levels) for loss in losses]
    lines = []
    for row in range(rows - 1, -1, -1):
        base = row * (len(_BARS) - 1)
        bars = [_BARS[min(max(h - base, 0), len(_BARS) - 1)] * width for h in heights[:shown]]
        hidden = ("·" if row == 0 else " ") * width
        lines.append("".join(bars) + hidden * (len(losses) - shown))
    return lines


def _height(loss: float, positive: list[float], levels: int) -> int:
    """A loss's bar height in eighths of a row: log(loss) between the smallest and the largest
    positive loss, 1 to `levels`; 0 for a loss of 0."""
    if loss <= 0 or not positive:
        return 0
    low, high = math.log(min(positive)), math.log(max(positive))
    if high - low < 1e-12:
        return levels
    return 1 + round((math.log(loss) - low) / (high - low) * (levels - 1))
