"""UI-free model of the network lesson screen: one cursor over every stage of `run_network`.

The lesson is a sequence of stages (`network.Stage`: conv forward, ReLU forward, ..., the
softmax-CE loss, its gradient, the linear layer's db2, dw2, dh, ..., the SGD updates, the loss
after the step). Each stage with steps is a `replay.Replay` of its recorded events, so the
highlights and the cell jumps are the conv lesson's. `NetReplay` puts them end to end: position
P (0..total) means the first P steps of the whole lesson have run; the stage on screen is the
one holding step P (its own position counts from its start). Stepping past a stage's last step
enters the next stage. From the position it derives what the screen shows: the stage's arrays
as grids, the step's arithmetic (`step_text.step_text`), the rule of the stage and where its
input came from, and the network with the current layer marked. `op_replay.OpReplay` is the
conv / pool lesson's counterpart; the screens move either the same way. Nothing here imports
Textual.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn_tui.lessons.network import ARRAYS, LEAD_AXES, NetRun, Stage
from cnn_tui.lessons.number_format import NumberFormat, array_formats
from cnn_tui.lessons.replay import WINDOW, GridSpec, Replay
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


def net_formats(run: NetRun) -> dict[str, NumberFormat]:
    """How every array of the network lesson writes its values, on the screen and in the trace
    alike (`number_format.array_formats`): chosen from the run's arrays and every step. The
    scores, probabilities and loss after the step share the ones' before it (`AFTER_PAIRS`)."""
    events = (e for stage in run.stages for e in stage.events)
    return array_formats(run.values, events, AFTER_PAIRS)


# the second forward pass writes the same quantities as the first: one format each
AFTER_PAIRS = (("z2", "z2_after"), ("p", "p_after"), ("L", "L_after"))


class NetReplay:
    """The cursor of the network lesson over all its stages."""

    def __init__(self, run: NetRun) -> None:
        self.run = run
        self.example = run.example
        self.stages: list[Stage] = run.stages
        self.shapes = {name: np.shape(array) for name, array in run.values.items()}
        self.replays: list[Replay | None] = []
        for stage in self.stages:
            if not stage.events:
                self.replays.append(None)
                continue
            arrays = {name: run.values[name] for name in stage.reads}
            targets = {name: self.shapes[name] for name in stage.writes}
            replay = Replay(stage.events, arrays, targets)
            replay.route_source = "a1"
            replay.context_windows = stage.windows
            self.replays.append(replay)
        self.starts: list[int] = []
        total = 0
        for stage in self.stages:
            self.starts.append(total)
            total += stage.steps
        self.total = total
        self.position = 0
        # one format per array, for its grid, the steps and the trace alike (`net_formats`)
        self.formats = net_formats(run)
        self.write = format_cell(self.formats)
        self.style = StepStyle(
            ref=lambda name, index: cell_ref(self.shapes, name, index),
            num=fmt_num,
            factor=fmt_factor,
            explain=True,
            route_source="a1",
            cell=self.write,
        )

    # ----------------------------------------------------------------- where we are

    @property
    def stage_index(self) -> int:
        """The stage holding step `position` (the first stage at position 0)."""
        if self.position == 0:
            return 0
        return bisect.bisect_left(self.starts, self.position) - 1

    @property
    def stage(self) -> Stage:
        return self.stages[self.stage_index]

    @property
    def replay(self) -> Replay | None:
        return self.replays[self.stage_index]

    @property
    def local(self) -> int:
        """Steps of the current stage that have run (1..steps; 0 only before the first)."""
        return self.position - self.starts[self.stage_index]

    @property
    def current(self) -> Any | None:
        """The event of the step on screen (None at position 0 and on the "after" stage)."""
        replay = self.replay
        return None if replay is None else replay.current

    # ----------------------------------------------------------------- moving

    def seek(self, position: int) -> int:
        self.position = min(max(int(position), 0), self.total)
        replay = self.replay
        if replay is not None:
            replay.seek(self.local)
        return self.position

    def step(self, delta: int = 1) -> int:
        return self.seek(self.position + delta)

    def next_cell(self) -> int:
        """Finish the current output cell; at the end of a stage, the next stage's first."""
        index, replay = self.stage_index, self.replay
        if replay is None or self.local >= replay.total:
            if index + 1 >= len(self.stages):
                return self.position
            index += 1
            self.seek(self.starts[index])  # the previous stage, finished
            replay = self.replays[index]
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

    def next_phase(self) -> int:
        """The first step of the next stage (after the last one: back to the start)."""
        if self.position == 0:
            return self.seek(1)
        index = self.stage_index + 1
        if index >= len(self.stages):
            return self.seek(0)
        return self.seek(self.starts[index] + 1)

    def prev_phase(self) -> int:
        """The first step of the previous stage (from the first stage: the start)."""
        index = self.stage_index - 1
        return self.seek(0 if index < 0 else self.starts[index] + 1)

    def next_pass(self) -> int:
        """The first step of the next pass: forward → backward → update → after → start."""
        here = DIRECTIONS.index(self.stage.direction)
        for index, stage in enumerate(self.stages):
            if DIRECTIONS.index(stage.direction) > here:
                return self.seek(self.starts[index] + 1)
        return self.seek(0)

    def first_of(self, key: str) -> int:
        """The first step of the stage with this key ("relu.backward", "sgd.w1", ...)."""
        index = next(k for k, stage in enumerate(self.stages) if stage.key == key)
        return self.seek(self.starts[index] + 1)

    # ----------------------------------------------------------------- what is shown

    def view_indices(self) -> dict[str, int]:
        """The filter f the current step works on (the board shows that slice)."""
        e = self.current
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
        if e is None:
            counts = {d: 0 for d in DIRECTIONS}
            for s in self.stages:
                counts[s.direction] += len(s.events)
            return [
                f"{self.total} steps recorded: forward {counts['forward']}, backward "
                f"{counts['backward']}, update {counts['update']}. Press → to run the first.",
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
            f"({_sig(change)}, {verdict})",
            f"p[{label}] (the true class, {self.example.class_name(label)}) = "
            f"{write('p', p_before)} → {write('p_after', p_after)}",
        ]

    def rule_lines(self) -> tuple[str, str]:
        """What the stage computes in general, and where its input came from."""
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
            current = stage.key.split(".", 1)[1]
        else:
            return "after", [("L", False), ("L′", True)]
        return stage.direction, [(layer, layer == current) for layer in layers]

    def pipeline_text(self) -> str:
        """The pipeline as plain text, the current layer in brackets."""
        direction, layers = self.pipeline()
        arrow = " → "
        parts = [f"[{name}]" if current else name for name, current in layers]
        return f"{direction}: {arrow.join(parts)}"

    def status_parts(self, speed: int) -> list[str]:
        example = self.example
        return [
            f"network · {self.stage.title}",
            f"step {self.local} / {self.stage.steps}",
            f"all {self.position} / {self.total}",
            f"{speed} steps/s",
            f"{example.name} · y = {example.label} · α = {self.write('lr', example.lr)}",
        ]


def _sig(value: float) -> str:
    """A summary number: 3 significant digits (a tiny loss stays readable), − as minus."""
    text = f"{value:.3g}"
    return "0" if text in ("0", "-0") else text.replace("-", "−")
