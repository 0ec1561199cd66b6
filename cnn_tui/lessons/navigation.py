"""Moving through a lesson's recorded steps by what they are, for every lesson model alike.

Two moves the arrow keys cannot make quickly, written once over the step events so that the
conv / pool model (`op_replay.OpReplay`), the network's (`net_replay.NetReplay`) and any lesson
built on `replay.Replay` share them:

- **Go to** what the lecturer types (`parse_goto`): a step number (`120`), a cell (`6,1`,
  `(6,1)`, `out[6,1]`, `dx_pad[c=1, 2,8]`, the way the step panel writes cells) or a phase
  name, optionally with a step number in it (`dw`, `dw 12`; a phase named alone is entered
  as `p` enters it, before its first step: `GotoTarget.enter`). A model resolves the query to a
  position without moving (so bad input changes nothing) with the helpers here: `cell_index`
  (a cell typed with its two spatial indices takes the sample / channel / filter on screen)
  and `first_write` (the first step that writes a cell). A query that cannot be resolved
  raises `GotoError`, one line saying what is wrong.
- **Skip zero products**: `is_zero_product` tells a multiply-accumulate step whose product is
  0 (`0.0·0.6 = 0.00`: a padded border, a ReLU that cut, a zero-stuffed dout); steps with no
  product (a comparison, a bias, an add) are never zero products. `skip_zero_products` moves
  to the next (or previous) step that is not one, never past the end of its phase.

`StagedNavigation` gives both to a model of stages end to end (the network lesson's, the batch
norm / dropout lesson's), with the cursor they share: one position over every stage, and `p` /
`P` entering a stage at its start, before its first step, as the conv / pool lesson enters its
phases (`replay.Replay.enter_phase`); `OpReplay` has its own over its passes.

Positions are a replay's: position K means steps 1..K have run and step K is on screen.
Nothing here imports Textual.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# the axes a cell typed with its spatial indices only takes from the view on screen
LEAD_AXES = ("n", "c", "f")

GOTO_SYNTAX = "a step number (120), a cell (6,1 or out[6,1]) or a phase"


class GotoError(ValueError):
    """A go-to query that does not name a step of the lesson: the message says why, in one line."""


@dataclass(frozen=True)
class GotoQuery:
    """What was typed in the go-to prompt, parsed (not yet checked against a lesson)."""

    kind: str  # "step" | "cell" | "phase"
    number: int | None = None  # the step ("step"), the step within the phase ("phase"), or None
    name: str = ""  # the phase ("phase"); the array ("cell"; "" = the one the phase writes)
    index: tuple[int, ...] = ()  # a cell's indices as typed, in order
    named: tuple[tuple[str, int], ...] = ()  # a cell's axes given by name: (("f", 1),)

    def cell_text(self) -> str:
        """The cell as typed, tidied: `out[f=1, 6,1]` or `(6,1)`."""
        parts = [f"{axis}={value}" for axis, value in self.named]
        parts.append(",".join(str(value) for value in self.index))
        inner = ", ".join(part for part in parts if part)
        return f"{self.name}[{inner}]" if self.name else f"({inner})"


@dataclass(frozen=True)
class GotoTarget:
    """Where a go-to query leads: a position of a pass (`mode`, None for a model of one pass)
    and what it is, in words for the step panel ("out[6,1]", "backward · dW")."""

    position: int
    mode: str | None = None
    label: str = ""
    steps: int = 0  # a phase: its steps from `position` on (position, position + 1, …)
    # a phase named alone: `go_to` enters it as `p` does, before its first step (`position`)
    enter: bool = False


_INTEGER = re.compile(r"[+-]?\d+")
_NAMED = re.compile(r"([A-Za-z]\w*)\s*=\s*([+-]?\d+)")
_CELL = re.compile(r"(?:(?P<name>[A-Za-z_][\w′']*)\s*)?[\[(](?P<inner>[^\[\]()]*)[\])]")
_PHASE = re.compile(r"(?P<name>[A-Za-z_][\w.′'-]*)(?:\s+(?P<number>[+-]?\d+))?")


def parse_goto(text: str) -> GotoQuery:
    """The go-to prompt's text as a query; GotoError when it is none of the three forms."""
    text = text.strip()
    if not text:
        raise GotoError(f"type {GOTO_SYNTAX}")
    # the prompt's help names the three forms "step N", "cell i,j", "phase NAME": typed with
    # their word, they mean the same (no phase of any lesson is called step, cell or phase)
    word, rest = (text.split(None, 1) + [""])[:2]
    if word.lower() == "step" and rest:
        if not _INTEGER.fullmatch(rest):
            raise GotoError(f"not a step: {rest!r}; type its number, e.g. step 120")
        return GotoQuery("step", number=int(rest))
    if word.lower() == "cell" and rest:
        if _INTEGER.fullmatch(rest):
            raise GotoError(f"not a cell: {rest!r}; give its row and column, e.g. cell 2,3")
        text = rest if _CELL.fullmatch(rest) or "," in rest else f"({rest})"
    elif word.lower() == "phase" and rest:
        phase = _PHASE.fullmatch(rest)  # (a name after "phase": "phase 3" is no step 3)
        if phase is None:
            raise GotoError(f"not a phase: {rest!r}; type its name, e.g. phase dw 12")
        return _phase_query(phase)
    if _INTEGER.fullmatch(text):
        return GotoQuery("step", number=int(text))
    cell = _CELL.fullmatch(text)
    if cell is not None:
        return _cell_query(cell.group("name") or "", cell.group("inner"), text)
    if "," in text:
        return _cell_query("", text, text)
    phase = _PHASE.fullmatch(text)
    if phase is not None:
        return _phase_query(phase)
    raise GotoError(f"not a step, a cell or a phase: {text!r}; type {GOTO_SYNTAX}")


def _phase_query(phase: re.Match[str]) -> GotoQuery:
    number = phase.group("number")
    return GotoQuery(
        "phase", number=None if number is None else int(number), name=phase.group("name")
    )


def _cell_query(name: str, inner: str, text: str) -> GotoQuery:
    index: list[int] = []
    named: list[tuple[str, int]] = []
    for part in inner.split(","):
        part = part.strip()
        if _INTEGER.fullmatch(part):
            index.append(int(part))
            continue
        axis = _NAMED.fullmatch(part)
        if axis is None:
            raise GotoError(f"not a cell: {text!r}; write a cell as i,j or (i,j) or out[i,j]")
        named.append((axis.group(1), int(axis.group(2))))
    if not index:
        raise GotoError(f"not a cell: {text!r}; give its row and column, e.g. (2,3)")
    return GotoQuery("cell", name=name, index=tuple(index), named=tuple(named))


def check_step(number: int, low: int, high: int, where: str = "") -> int:
    """`number` if low <= number <= high, else a GotoError saying the range (`where`: "in dW")."""
    if not low <= number <= high:
        place = f" {where}" if where else ""
        raise GotoError(f"step {number} is out of range{place}: {low} to {high}")
    return number


# --------------------------------------------------------------------------- cells


def cell_index(
    query: GotoQuery,
    name: str,
    shape: Sequence[int],
    axes: Sequence[str | None],
    view: Mapping[str, int],
) -> tuple[int, ...]:
    """The full index into array `name` (of `shape`, axis names `axes`, None for a row or column
    axis) that a cell query names: all its indices, or its spatial ones with the sample /
    channel / filter from the query's `f=1` parts, else from the `view` on screen."""
    lead = [k for k, axis in enumerate(axes) if axis in LEAD_AXES]
    spatial = [k for k in range(len(shape)) if k not in lead]
    named = dict(query.named)
    unknown = sorted(set(named) - {axes[k] for k in lead})
    if unknown:
        raise GotoError(f"{name} has no axis {unknown[0]}")
    if len(query.index) == len(shape) and not named:
        index = list(query.index)
    elif len(query.index) == len(spatial):
        index = [0] * len(shape)
        for k, value in zip(spatial, query.index, strict=True):
            index[k] = value
        for k in lead:
            axis = str(axes[k])
            index[k] = named.get(axis, view.get(axis, 0))
    else:
        count = len(spatial) or len(shape)
        raise GotoError(
            f"{name} needs {count} number{'s' if count != 1 else ''} for a cell, "
            f"got {len(query.index)}"
        )
    for k, (value, size) in enumerate(zip(index, shape, strict=True)):
        if not 0 <= value < size:
            what = axes[k] if axes[k] in LEAD_AXES else ("row", "column")[k == len(shape) - 1]
            if len(spatial) == 1 and axes[k] not in LEAD_AXES:
                what = "index"
            raise GotoError(f"{name}: {what} {value} is out of range: 0 to {size - 1}")
    return tuple(index)


def first_write(
    events: Sequence[Any], name: str, index: tuple[int, ...], start: int = 0, end: int | None = None
) -> int | None:
    """The index of the first event in events[start:end] that writes `name[index]`, or None."""
    stop = len(events) if end is None else end
    for k in range(start, stop):
        e = events[k]
        if e.target == name and tuple(e.target_index) == index:
            return k
    return None


def written_arrays(events: Iterable[Any]) -> list[str]:
    """The arrays the events write, in the order they are first written."""
    names: dict[str, None] = {}
    for e in events:
        names.setdefault(e.target, None)
    return list(names)


# --------------------------------------------------------------------------- zero products


# the kinds of step whose result is the product of their operands: a multiply-accumulate, and
# the layer lessons' products (batch norm's dx̂ = dy·γ, dropout's x·mask·1/(1 − p))
PRODUCT_KINDS = ("mac", "mul", "drop")


def is_zero_product(event: Any) -> bool:
    """Whether the step adds a product that is 0 (`0.0·0.6`; dropout's `x·0·2`, a dropped
    value): a step of `PRODUCT_KINDS` with an operand equal to 0. A step with no product (a
    bias, an add, a comparison, a route, an activation) is never one."""
    return event.kind in PRODUCT_KINDS and any(o.value == 0 for o in event.operands)


def zero_products(events: Sequence[Any]) -> np.ndarray:
    """One bool per event: `is_zero_product`."""
    return np.fromiter((is_zero_product(e) for e in events), dtype=bool, count=len(events))


@dataclass(frozen=True)
class Skip:
    """Where a skip over zero products landed and how many steps it passed over."""

    position: int
    skipped: int
    direction: int = 1
    phase: str = ""  # the phase it moved in, for the message (the model fills it in)
    # the rest of the phase was zero products: it stopped on the phase's last (first) step
    phase_end: bool = False
    moved: bool = True  # False at either end of the pass: nothing to move to

    def message(self) -> str:
        """What the step panel says of it, always where it went: "skipped 14 zero products";
        "no zero product to skip: one step on" (it moved as → does); "…: at the end"."""
        count = f"{self.skipped} zero product{'s' if self.skipped != 1 else ''}"
        forward = self.direction > 0
        which = "last" if forward else "first"
        phase = self.phase or "the phase"
        if self.skipped:
            text = f"skipped {count}"
            if self.phase_end:
                text += f", stopped at the {which} step of {phase}"
            return text
        if not self.moved:
            return f"no zero product to skip: at the {'end' if forward else 'start'}"
        text = f"no zero product to skip: one step {'on' if forward else 'back'}"
        if self.phase_end:
            text += f", the {which} step of {phase}"
        return text


def skip_zero_products(
    zero: np.ndarray, spans: Sequence[tuple[int, int]], position: int, direction: int
) -> Skip:
    """From `position`, the next step (direction > 0) or previous step (< 0) that is no zero
    product (`zero[k]`: step k+1 is one), staying in the phase of the step it starts from
    (`spans`: the phases' events [start, end) end to end): where all the rest of the phase is
    zero products, its last (first) step."""
    total = len(zero)
    if direction > 0:
        if position >= total:
            return Skip(total, 0, moved=False)
        start, end = _span_of(spans, position)  # the phase of the next step (event `position`)
        rest = np.flatnonzero(~zero[position:end])
        if rest.size:
            landing = position + int(rest[0]) + 1
            return Skip(landing, landing - position - 1)
        return Skip(end, end - position - 1, phase_end=True)
    if position <= 1:
        return Skip(0, 0, -1, moved=position > 0)
    start, end = _span_of(spans, position - 2)  # the phase of the previous step
    before = np.flatnonzero(~zero[start : position - 1])
    if before.size:
        landing = start + int(before[-1]) + 1
        return Skip(landing, position - landing - 1, -1)
    return Skip(start + 1, position - start - 2, -1, phase_end=True)


def _span_of(spans: Sequence[tuple[int, int]], event: int) -> tuple[int, int]:
    for start, end in spans:
        if start <= event < end:
            return start, end
    return spans[-1]


# --------------------------------------------------------------------------- a model of stages


class StagedNavigation:
    """The cursor, go to and skip zeros of a lesson model whose stages run end to end, as the
    network lesson's `NetReplay`: one position over all of them, each stage (`network.Stage`:
    its `key`, `direction`, `title`, `writes`, `events`, `steps`) from `starts[k]` on. Position
    `starts[k]` is where stage k − 1 ends and, once `enter_stage(k)` went there, stage k's start
    with none of its steps run (`stage_index` says which is on screen).

    A subclass has `stages`, `starts`, `shapes` (array name -> shape), `total`, `position` and
    `replay` (the stage on screen's `Replay`, or None), and says its arrays' axes (`cell_axes`: "n", "c", "f"
    for the sample / channel / filter axes) and how it writes a cell (`cell_name`). A step
    number counts in the stage on screen (`all 120`: in the whole lesson); a phase is a pass
    (forward, backward, update, after), the array a stage writes (`dw1`), an update by its
    parameter (`w1`) or a stage's key (`conv.forward`); a name the lesson has more than once
    (one per training step) means the one on screen, else the next one after it.
    """

    stages: list[Any]
    starts: list[int]
    shapes: Mapping[str, tuple[int, ...]]
    total: int
    position: int
    # the stage `enter_stage` entered: the cursor sits at its start, none of its steps run
    # (position == its start, which is also where the stage before it ends)
    _entered: int | None = None

    @property
    def replay(self) -> Any:
        """The stage on screen's `replay.Replay` (None for a stage with no steps)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the cursor

    @property
    def stage_index(self) -> int:
        """The stage on screen: the one holding step `position` (the first stage at position
        0), or the one `enter_stage` entered, while at its start."""
        if self._entered is not None:
            return self._entered
        if self.position == 0:
            return 0
        return bisect.bisect_left(self.starts, self.position) - 1

    @property
    def stage(self) -> Any:
        return self.stages[self.stage_index]

    @property
    def local(self) -> int:
        """Steps of the stage on screen that have run (0 before its first)."""
        return self.position - self.starts[self.stage_index]

    @property
    def current(self) -> Any | None:
        """The event of the step on screen (None before a stage's first step, and on a stage
        with no steps)."""
        replay = self.replay
        return None if replay is None else replay.current

    def seek(self, position: int) -> int:
        self._entered = None
        self.position = min(max(int(position), 0), self.total)
        replay = self.replay
        if replay is not None:
            replay.seek(self.local)
        return self.position

    def first_of(self, key: str) -> int:
        """To the first step of the stage with this key ("relu.backward", "bn.grad_var", ...)."""
        index = next(k for k, stage in enumerate(self.stages) if stage.key == key)
        return self.seek(self.starts[index] + 1)

    def step(self, delta: int = 1) -> int:
        """`delta` steps on (back, when negative). Back from an entered stage's start: the
        previous stage's last step first, as if the stage had not been entered."""
        if self._entered is not None and delta < 0:
            delta += 1
        return self.seek(self.position + delta)

    def enter_stage(self, index: int) -> int:
        """To the start of stage `index`, before its first step: its arrays on the board, none
        of its steps run (the next → runs its first step). A stage with no steps (the network's
        "after") is shown whole."""
        if not self.stages[index].events:
            return self.seek(self.starts[index] + self.stages[index].steps)
        self.seek(self.starts[index])
        self._entered = index if self.starts[index] > 0 else None
        replay = self.replay
        if replay is not None:
            replay.seek(0)
        return self.position

    def next_phase(self) -> int:
        """To the start of the next stage, before its first step (after the last stage: back
        to the start), as the conv / pool lesson enters its phases."""
        index = self.stage_index + 1
        return self.seek(0) if index >= len(self.stages) else self.enter_stage(index)

    def prev_phase(self) -> int:
        """To the start of the previous stage, before its first step (from the first stage:
        the start)."""
        index = self.stage_index - 1
        return self.seek(0) if index < 0 else self.enter_stage(index)

    def shown_event(self) -> Any | None:
        """The step on screen or, before a stage's first step, the one the next → runs (what
        the board's view follows)."""
        e = self.current
        if e is None and self.local == 0 and self.stage.events:
            return self.stage.events[0]
        return e

    def entered_lines(self) -> list[str] | None:
        """The step panel at an entered stage's start (None elsewhere)."""
        if self._entered is None:
            return None
        stage = self.stage
        first = f"{stage.title}: {len(stage.events)} steps, none run yet."
        return [f"{first} Press → to run the first one.", "", ""]

    def cell_axes(self, name: str) -> tuple[str, ...]:
        """The names of array `name`'s axes ("n", "c", "f"; others for rows and columns)."""
        return ()

    def cell_name(self, name: str, index: tuple[int, ...]) -> str:
        """Cell `index` of array `name` as the lesson writes it."""
        return f"{name}[{','.join(str(i) for i in index)}]"

    def _stage_at(self, event: int) -> int:
        """The index of the stage holding event `event` (0-based, over the whole lesson)."""
        return max(bisect.bisect_right(self.starts, event) - 1, 0)

    @property
    def _here(self) -> int:
        return self.stage_index

    def goto_names(self) -> list[str]:
        """The go-to prompt's phase names: the passes, then each stage by the array it writes
        (z1 … L, dz2 … dx; an update by its parameter, w1 …)."""
        names = [stage.direction for stage in self.stages]
        names += [_stage_names(stage)[1] for stage in self.stages if stage.events]
        return list(dict.fromkeys(names))

    def resolve_goto(self, text: str, view: Mapping[str, int]) -> GotoTarget:
        """Where the go-to prompt's `text` leads, without moving (GotoError if nowhere)."""
        query = parse_goto(text)
        here = self._here
        stage = self.stages[here]
        if query.kind == "step":
            assert query.number is not None
            number = check_step(query.number, 1, stage.steps, f"in {stage.title}")
            return GotoTarget(self.starts[here] + number, None, f"step {number}")
        if query.kind == "phase":
            return self._goto_stage(query, here)
        name = query.name
        if name:
            runs = _runs(self.stages, lambda s: name in s.writes and bool(s.events))
            if not runs:
                raise GotoError(f"no step writes {name}: name an array a stage computes")
            here = _here_or_next(runs, here)[0]
            stage = self.stages[here]
        else:
            fits = [n for n in stage.writes if self._fits(query, n)]
            name = (fits or list(stage.writes) or [""])[0]
            if not name or not stage.events:
                raise GotoError(f"{stage.title} has no steps that write cells")
        shape = tuple(self.shapes[name])
        axes = tuple(self.cell_axes(name))
        axes += ("",) * (len(shape) - len(axes))
        index = cell_index(query, name, shape, axes, view)
        cell = self.cell_name(name, index)
        k = first_write(stage.events, name, index)
        if k is None:
            raise GotoError(f"{cell} is written by no step of {stage.title}")
        return GotoTarget(self.starts[here] + k + 1, None, cell)

    def _goto_stage(self, query: GotoQuery, here: int) -> GotoTarget:
        wanted = query.name.casefold()
        if wanted == "all":
            number = check_step(query.number or 0, 0, self.total, "in the lesson")
            return GotoTarget(number, None, f"step {number} of the lesson")
        runs = _runs(
            self.stages, lambda s: wanted in {n.casefold() for n in _stage_names(s)}
        ) or _runs(self.stages, lambda s: s.direction == wanted, joined=True)
        if not runs:
            names = ", ".join(self.goto_names())
            raise GotoError(f"no stage {query.name!r} here: try {names}")
        first, last = _here_or_next(runs, here)
        steps = self.starts[last] + self.stages[last].steps - self.starts[first]
        number = 1 if query.number is None else query.number
        title = self.stages[first].title
        check_step(number, 1, steps, f"in {title}")
        label = title if query.number is None else f"{title}, step {number}"
        return GotoTarget(
            self.starts[first] + number, None, label, steps - number + 1, query.number is None
        )

    def _fits(self, query: GotoQuery, name: str) -> bool:
        axes = self.cell_axes(name)
        spatial = sum(axis not in LEAD_AXES for axis in axes)
        return len(query.index) in (len(self.shapes[name]), spatial)

    def go_to(self, target: GotoTarget) -> int:
        """Move to a target `resolve_goto` gave (a stage named alone: entered, as `p` does)."""
        if target.enter:
            return self.enter_stage(self._stage_at(target.position - 1))
        return self.seek(target.position)

    def skip_zeros(self, direction: int = 1) -> Skip:
        """To the next (direction > 0) or previous step whose product is not 0, staying in the
        stage of the step it starts from (`skip_zero_products`)."""
        position = self.position
        if (direction > 0 and position >= self.total) or (direction <= 0 and position <= 1):
            landing = self.seek(position if direction > 0 else 0)
            return Skip(landing, 0, direction, moved=landing != position)
        index = self._stage_at(position if direction > 0 else position - 2)
        stage, start = self.stages[index], self.starts[index]
        zero = zero_products(stage.events) if stage.events else np.zeros(stage.steps, bool)
        skip = skip_zero_products(zero, [(0, stage.steps)], position - start, direction)
        self.seek(start + skip.position)
        return dataclasses.replace(skip, position=start + skip.position, phase=stage.title)


def _stage_names(stage: Any) -> tuple[str, ...]:
    """What the go-to prompt calls a stage: its key, then the array it writes (an update: its
    parameter, "w1"), then its other arrays."""
    parameter = stage.key.rsplit(".", 1)[-1] if stage.direction == "update" else None
    main = parameter or (stage.writes[-1] if stage.writes else stage.key)
    return (stage.key, main, *stage.writes)


def _runs(
    stages: Sequence[Any], match: Callable[[Any], bool], joined: bool = False
) -> list[tuple[int, int]]:
    """The stages that `match`, as (first, last) index pairs: one per stage, or with `joined`
    one per run of neighbouring stages (a pass)."""
    runs: list[tuple[int, int]] = []
    for index, stage in enumerate(stages):
        if not match(stage):
            continue
        if joined and runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _here_or_next(runs: list[tuple[int, int]], index: int) -> tuple[int, int]:
    """The run holding stage `index`, else the next one after it, else the first."""
    return next((run for run in runs if run[1] >= index), runs[0])
