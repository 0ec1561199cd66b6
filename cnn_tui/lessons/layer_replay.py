"""UI-free model of the batch-norm and dropout lesson screens: one cursor over every stage.

The stages of `layer_lesson.run_layer` (batch norm: μ, σ², x̂, y, the running statistics, dβ,
dγ, dx̂, dσ², dμ, dx; dropout: the mask, y, dx) are each a `replay.Replay` of their recorded
steps, put end to end as the network lesson's (`net_replay.NetReplay`): position P (0..total)
means the first P steps have run, and the stage on screen is the one holding step P. From the
position it derives what the screen shows: the stage's arrays as grids (a 4-D array as the
[n, c] plane the view picks, or every image of that channel side by side), the step's arithmetic
(`norm.layer_step_text`), the stage's rule and where its input came from. Nothing here imports
Textual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn_tui.lessons.layer_lesson import LAYER_ARRAYS, TITLES, LayerRun
from cnn_tui.lessons.navigation import StagedNavigation
from cnn_tui.lessons.network import Stage
from cnn_tui.lessons.norm import layer_step_text
from cnn_tui.lessons.number_format import NumberFormat, array_formats
from cnn_tui.lessons.replay import GridSpec, Replay
from cnn_tui.lessons.step_text import StepStyle, fmt_factor, fmt_num, format_cell

DIRECTIONS = ("forward", "backward")
_ACCUMULATING = ("mac", "add", "sqdev", "dvar", "dmu")
_MAP_AXES = ("n", "c")


def cell_ref(shapes: Mapping[str, tuple[int, ...]], name: str, index: tuple[int, ...]) -> str:
    """A cell as the lesson writes it: `x[n=1, c=0, 2,1]`, `μ[0]`; the image and channel axes
    named and left out where they have size 1."""
    axes, shown, _ = LAYER_ARRAYS.get(name, ((), name, ""))
    if not index:
        return shown
    if len(index) == 1:
        return f"{shown}[{index[0]}]" if shapes.get(name, (2,))[0] > 1 else shown
    shape = shapes.get(name, ())
    lead = [f"{axis}={value}" for axis, value, size in zip(axes[:2], index[:2], shape[:2],
                                                           strict=False) if size > 1]  # fmt: skip
    spatial = ",".join(str(v) for v in index[2:])
    return f"{shown}[{', '.join([*lead, spatial])}]"


def layer_formats(run: LayerRun) -> dict[str, NumberFormat]:
    """How every array of a batchnorm / dropout lesson writes its values, on the screen and in
    the trace alike (`number_format.array_formats`): chosen from its arrays and every step."""
    return array_formats(run.values, (e for stage in run.stages for e in stage.events))


class LayerReplay(StagedNavigation):
    """The cursor of the batch-norm or dropout lesson over all its stages; go to and skip zero
    products (`navigation.StagedNavigation`) as the network lesson's."""

    def __init__(self, run: LayerRun) -> None:
        self.run = run
        self.example = run.example
        self.stages: list[Stage] = run.stages
        self.shapes = {name: np.shape(array) for name, array in run.values.items()}
        self.replays: list[Replay] = []
        for stage in self.stages:
            arrays = {name: run.values[name] for name in stage.reads}
            targets = {name: self.shapes[name] for name in stage.writes}
            self.replays.append(Replay(stage.events, arrays, targets))
        self.starts: list[int] = []
        total = 0
        for stage in self.stages:
            self.starts.append(total)
            total += len(stage.events)
        self.total = total
        self.position = 0
        # one format per array, for its grid, the steps and the trace alike (`layer_formats`)
        self.formats = layer_formats(run)
        self.style = StepStyle(
            ref=lambda name, index: cell_ref(self.shapes, name, index),
            num=fmt_num,
            factor=fmt_factor,
            explain=True,
            cell=format_cell(self.formats),
        )

    # ----------------------------------------------------------------- where we are

    @property
    def replay(self) -> Replay:
        return self.replays[self.stage_index]

    # ----------------------------------------------------------------- moving

    def next_cell(self) -> int:
        """Finish the current output cell; at the end of a stage, the next stage's first."""
        index, replay = self.stage_index, self.replay
        if self.local >= replay.total:
            if index + 1 >= len(self.stages):
                return self.position
            index += 1
            self.seek(self.starts[index])
            self.replays[index].seek(0)
            return self.seek(self.starts[index] + self.replays[index].next_cell())
        return self.seek(self.starts[index] + replay.next_cell())

    def prev_cell(self) -> int:
        """Back to the end of the previous output cell (the previous stage's end at its start)."""
        if self.position == 0:
            return 0
        return self.seek(self.starts[self.stage_index] + self.replay.prev_cell())

    def jump(self, where: str) -> int:
        """The first ("start") or the last ("end") step of the current stage."""
        index = self.stage_index
        if where == "start":
            return self.seek(self.starts[index] + 1)
        return self.seek(self.starts[index] + len(self.stages[index].events))

    def next_pass(self) -> int:
        """The first step of the backward pass, or from there back to the forward pass."""
        if self.stage.direction == "forward":
            index = next(k for k, s in enumerate(self.stages) if s.direction == "backward")
            return self.seek(self.starts[index] + 1)
        return self.seek(1)

    # ----------------------------------------------------------------- go to, skip zeros
    # (`navigation.StagedNavigation`: goto_names, resolve_goto, go_to, skip_zeros)

    def cell_axes(self, name: str) -> tuple[str, ...]:
        return LAYER_ARRAYS.get(name, ((), name, ""))[0]

    def cell_name(self, name: str, index: tuple[int, ...]) -> str:
        return cell_ref(self.shapes, name, index)

    # ----------------------------------------------------------------- what is shown

    def view_indices(self) -> dict[str, int]:
        """The image n and channel c the current step (or the next) works on (the board shows that plane)."""
        e = self.shown_event()
        if e is None:
            return {}
        found: dict[str, int] = {}
        for name, index in [(e.target, e.target_index), *((o.name, o.index) for o in e.operands)]:
            axes = LAYER_ARRAYS.get(name, ((),))[0]
            if len(index) == len(axes):
                for axis, value in zip(axes, index, strict=True):
                    if axis in _MAP_AXES:
                        found.setdefault(axis, int(value))
        return found

    def axis_sizes(self) -> dict[str, int]:
        n, c = self.example.x.shape[:2]
        return {"n": int(n), "c": int(c)}

    def grid_names(self) -> list[str]:
        """The stage's arrays: the ones it writes first (the cell being computed stays in view
        on a small screen), then the ones it reads."""
        names: list[str] = []
        for name in (*self.stage.writes, *self.stage.reads):
            if name not in names:
                names.append(name)
        return names

    def values(self, name: str) -> np.ndarray:
        """The array `name` as the current step leaves it (NaN: not computed yet)."""
        replay = self.replay
        if name in replay.targets:
            return replay.values(name)
        return np.asarray(self.run.values[name], dtype=np.float64)

    def grid_specs(self, view: Mapping[str, int] | None = None,
                   every_image: bool = False) -> list[GridSpec]:  # fmt: skip
        """One grid per array of the stage: a 4-D array's [n, c] plane (`view`; with
        `every_image` one grid per image of channel c), a per-channel vector as one row; the
        current step's cells marked."""
        view = dict(view or {})
        marks = self.replay.highlights() if self.current is not None else {}
        batch, channels = self.example.x.shape[:2]
        c = min(max(view.get("c", 0), 0), channels - 1)
        specs = []
        for name in self.grid_names():
            values = self.values(name)
            final = np.asarray(self.run.values[name], dtype=np.float64)
            _, shown, meaning = LAYER_ARRAYS[name]
            if values.ndim != 4:
                cells = {(0, where[0]): role for where, role in marks.get(name, {}).items()}
                title = f"{shown} {meaning}".strip()
                specs.append(GridSpec(name, title, values.reshape(1, -1), cells, (0, 0),
                                      final.reshape(1, -1), self.formats.get(name)))  # fmt: skip
                continue
            images = range(batch) if every_image else [min(max(view.get("n", 0), 0), batch - 1)]
            for n in images:
                cells = {(where[2], where[3]): role for where, role in marks.get(name, {}).items()
                         if where[:2] == (n, c)}  # fmt: skip
                lead = [f"n={n}"] if batch > 1 else []
                lead += [f"c={c}"] if channels > 1 else []
                label = f"[{', '.join(lead)}]" if lead else ""
                spec = GridSpec(name, f"{shown}{label} {meaning}".strip(), values[n, c], cells,
                                (0, 0), final[n, c], self.formats.get(name))  # fmt: skip
                if every_image and batch > 1:
                    spec.name = f"{name}#{n}"  # the board keeps each grid's own crop
                specs.append(spec)
        return specs

    def step_lines(self) -> list[str]:
        """The current step: its formula, its numbers, and where its output cell stands."""
        e = self.current
        entered = self.entered_lines()
        if entered is not None:
            return entered
        if e is None:
            forward = sum(len(s.events) for s in self.stages if s.direction == "forward")
            example = self.example
            named = example.name != "random"  # a lesson file's title and description, once
            return [
                f"{self.total} steps recorded: forward {forward}, backward "
                f"{self.total - forward}. Press → to run the first.",
                f"{example.name}: {example.title}" if named else "",
                " ".join(example.description.split()) if named else "",
            ]
        formula, numbers = layer_step_text(e, self.style)
        return [formula, numbers, self._cell_line(e)]

    def _cell_line(self, e: Any) -> str:
        replay = self.replay
        assert replay.current_index is not None
        start, end = replay.cell_span(replay.current_index)
        done, count = replay.current_index - start + 1, end - start
        if self.stage.running and e.kind in _ACCUMULATING and count > 1:
            target = self.style.ref(e.target, e.target_index)
            status = "done" if done == count else "so far"
            value = self.style.cell(e.target, e.after)
            return f"{target} = {self.stage.running} = {value} {status} ({done}/{count})"
        cells = f"cell {replay.cell_number()} of {replay.cell_count}"
        return f"{self.stage.note} ({cells})" if self.stage.note else f"({cells})"

    def rule_lines(self) -> tuple[str, str]:
        """What the stage computes in general, and where its input came from."""
        return self.stage.rule, self.stage.source

    def pipeline(self) -> tuple[str, list[tuple[str, bool]]]:
        """The stages of the current pass with the current one marked."""
        stage = self.stage
        parts = [(s.part, s is stage) for s in self.stages if s.direction == stage.direction]
        return stage.direction, parts

    def pipeline_text(self) -> str:
        direction, parts = self.pipeline()
        return f"{direction}: " + " → ".join(f"[{p}]" if now else p for p, now in parts)

    def status_parts(self, speed: int) -> list[str]:
        example = self.example
        settings = (
            f"ε = {example.eps:g} · m = {example.momentum:g}"
            if example.op == "batchnorm"
            else f"p = {example.p:g}"
        )
        return [
            f"{TITLES[example.op]} · {self.stage.direction} · {self.stage.part}",
            f"step {self.local} / {len(self.stage.events)}",
            f"all {self.position} / {self.total}",
            f"{speed} steps/s",
            f"{settings} · {example.status_label}",
        ]
