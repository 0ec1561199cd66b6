"""UI-free replay of one naive computation, for the step-through lesson screen.

A `Replay` holds the `StepEvent`s recorded while `cnn_tui.lessons.naive` computed a result (one
source of truth: the screen shows exactly those loops) and a cursor over them. At position K (the number of
events applied, 0..total) it derives what the screen draws:

- the value of every array: the arrays read (x_pad, w, b, dout, ...) as given, the arrays written
  (out, db, dw, dx_pad, dx) as the `after` values of the events up to K, NaN where nothing was
  written yet (drawn as "·");
- the highlighted cells: the cell written and the cells read by the current step, and the window
  of the current output cell (every cell its steps read or write);
- the arithmetic of the current step as text (`cnn_tui.lessons.step_text` writes the step;
  here the conv / pool cell's running sum).

Moving one step applies or undoes one event; a far jump is a few vectorised numpy assignments
(only the last write of each cell in the jumped range), so any key press costs O(jump), never a
replay from the start. The network lesson (`net_replay`) puts one `Replay` per stage end to end;
the conv / pool lesson (`op_replay`) one per pass, built here by `build_replays`. Also here: how
each array of a conv / pool lesson writes its values (`lesson_formats`: one format per array,
for the grids, the step text and the trace alike), the conv / pool grids, an example with edited arrays and its check against PyTorch. Nothing here
imports Textual; torch only `compare_with_torch`, called in a worker thread.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.lessons.examples import ARRAYS, build_example
from cnn_tui.lessons.naive import output_size_formula, output_size_rule, stuffed_dout
from cnn_tui.lessons.number_format import NumberFormat, array_formats
from cnn_tui.lessons.rules import local_rule, phase_rule, step_derivative
from cnn_tui.lessons.settings import LIMITS
from cnn_tui.lessons.step_text import (
    StepStyle,
    array_ref,
    axes_of,
    fmt_factor,
    fmt_num,
    step_text,
)

# Phases of a backward pass in the order the naive code runs them (and the screen names them).
PHASE_LABELS = {
    "forward": "forward",
    "grad_bias": "backward · db",
    "grad_weight": "backward · dW",
    "grad_input": "backward · dX",
    "grad_input_transposed": "backward · dX as a transposed conv",
}

# What each array is, for the grid titles.
ARRAY_TITLES = {
    "x_pad": "input, padded",
    "x": "input",
    "w": "kernel",
    "b": "bias",
    "out": "",
    "dout": "= ∂L/∂out, upstream",
    "dout_up": "dout zero-stuffed, padded",
    "db": "grad bias",
    "dw": "grad kernel",
    "dx_pad": "grad input, padded",
    "dx": "grad input",
}

# Titles of the padded arrays when there is no padding (P = 0: x_pad is x itself).
UNPADDED_TITLES = {"x_pad": "= x, input", "dx_pad": "= dx, grad input"}

# The grid of the kernel rotated by 180°: the kernel a true convolution (and the transposed
# view of a cross-correlation) multiplies by.
ROTATED_NAME, ROTATED_TITLE = "w_rot", "w rotated 180°"

# The order grids are laid out in: what is read, then what is written.
GRID_ORDER = ("x_pad", "x", "w", "b", "dout", "dout_up", "out", "db", "dw", "dx_pad", "dx")

# How many leading loops identify "one output cell" of a phase: the cell whose steps a
# next-cell jump skips over. Conv grad_bias is looped as f, (n, i, j); every other conv and pool
# nest as four outer loops (n, f|c, i, j) or (f, c, ki, kj) around the inner reduction or
# scatter loops. The linear layer's cells are (n, k), (k,), (k, d) and (n, d); softmax
# cross-entropy groups a row's steps by the array they write (its max, exps, sum, ...).
_CELL_DEPTH = {
    ("conv2d", "grad_bias"): 1,
    ("linear", "forward"): 2,
    ("linear", "grad_bias"): 1,
    ("linear", "grad_weight"): 2,
    ("linear", "grad_input"): 2,
    ("softmax_ce", "forward"): 1,
    # batch normalisation: a channel's mean, variance and parameter gradients (c, then n, i, j)
    ("batchnorm2d", "mean"): 1,
    ("batchnorm2d", "variance"): 1,
    ("batchnorm2d", "grad_beta"): 1,
    ("batchnorm2d", "grad_gamma"): 1,
    ("batchnorm2d", "grad_var"): 1,
    ("batchnorm2d", "grad_mean"): 1,
}
_DEFAULT_CELL_DEPTH = 4

WINDOW, READ, WRITE = "window", "read", "write"


# --------------------------------------------------------------------------- the replay


@dataclass(frozen=True)
class PhaseSpan:
    """Events [start, end) of one phase of the replay."""

    phase: str
    start: int
    end: int

    @property
    def label(self) -> str:
        return PHASE_LABELS.get(self.phase, self.phase)


class Replay:
    """The events of one computation and a cursor over them.

    `arrays` maps every operand name the events read to its full array (x_pad, w, b, dout, ...);
    `targets` maps every array the events write to its shape. Position K means events[0:K] have
    been applied; K = 0 shows the arrays before the first step, K = total the finished result.
    """

    def __init__(
        self,
        events: Sequence[Any],
        arrays: Mapping[str, np.ndarray],
        targets: Mapping[str, tuple[int, ...]],
    ) -> None:
        if not events:
            raise ValueError("a replay needs at least one step")
        self.events = list(events)
        self.total = len(self.events)
        self.op: str = self.events[0].op
        self.arrays = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
        self.targets = {name: tuple(shape) for name, shape in targets.items()}

        # All written arrays live in one flat buffer, so a jump is one fancy assignment.
        offsets: dict[str, int] = {}
        size = 0
        for name, shape in self.targets.items():
            offsets[name] = size
            size += int(np.prod(shape, dtype=np.int64))
        self._state = np.full(size, np.nan)
        self._views = {
            name: self._state[
                offsets[name] : offsets[name] + int(np.prod(shape, dtype=np.int64))
            ].reshape(shape)
            for name, shape in self.targets.items()
        }

        target_names = [e.target for e in self.events]
        cell = np.empty(self.total, dtype=np.int64)
        for name, shape in self.targets.items():
            rows = [k for k, t in enumerate(target_names) if t == name]
            if not rows:
                continue
            index = np.array([self.events[k].target_index for k in rows], dtype=np.int64)
            if shape:
                flat = np.ravel_multi_index(tuple(index.T), shape)
            else:  # a 0-d array (a loss): one cell
                flat = np.zeros(len(rows), dtype=np.int64)
            cell[rows] = offsets[name] + flat
        unknown = {t for t in target_names if t not in self.targets}
        if unknown:
            raise ValueError(f"events write arrays with no shape given: {sorted(unknown)}")
        self._cell = cell
        self._after = np.fromiter((e.after for e in self.events), np.float64, self.total)
        # previous / next event writing the same cell (-1 / total when none)
        order = np.argsort(cell, kind="stable")
        same = cell[order[1:]] == cell[order[:-1]]
        self._prev = np.full(self.total, -1, dtype=np.int64)
        self._next = np.full(self.total, self.total, dtype=np.int64)
        self._prev[order[1:][same]] = order[:-1][same]
        self._next[order[:-1][same]] = order[1:][same]

        # phases and output cells
        self.phases: list[PhaseSpan] = []
        starts = [0]
        keys = []
        for k, e in enumerate(self.events):
            depth = _CELL_DEPTH.get((e.op, e.phase), _DEFAULT_CELL_DEPTH)
            keys.append((e.phase, e.target, e.loops[:depth]))
            if k and e.phase != self.events[k - 1].phase:
                self.phases.append(PhaseSpan(self.events[k - 1].phase, starts[-1], k))
                starts.append(k)
        self.phases.append(PhaseSpan(self.events[-1].phase, starts[-1], self.total))
        boundary = np.ones(self.total, dtype=bool)
        boundary[1:] = [keys[k] != keys[k - 1] for k in range(1, self.total)]
        self._group_starts = np.flatnonzero(boundary)
        self._group_of = np.cumsum(boundary) - 1
        self._group_ends = np.append(self._group_starts[1:], self.total)
        # after the last write of an array, the cells no step wrote hold 0 (their gradient)
        self._last_write = {
            name: max(k for k, t in enumerate(target_names) if t == name) + 1
            for name in set(target_names)
        }
        self.position = 0
        # the phase `next_phase` entered: the cursor sits at its start, none of its steps applied
        # (position == its start, which is also where the phase before it ends)
        self._entered: PhaseSpan | None = None
        # the finished arrays, so a grid can size its columns for the values still to come
        self.seek(self.total)
        self.final = {name: self.values(name).copy() for name in self._views}
        self.seek(0)
        # name -> how its values are written (`number_format`); a lesson sets the formats of
        # all its passes at once (`lesson_formats`), else they come from this pass alone
        self.formats: dict[str, NumberFormat] | None = None
        # arrays shown in every phase beside the ones it reads (the kernel, the forward output)
        self.pinned: tuple[str, ...] = ()
        # the lesson example the events came from (`build_replays`), for the rule texts
        self.example: Any = None
        # extra cells to show as the window of an output cell, keyed by its outer loop values
        # (max-pool routing: the forward window whose max receives the gradient)
        self.context_windows: dict[tuple[int, ...], list[tuple[str, tuple[int, ...]]]] = {}
        # the array whose maxima a route step sends the gradient to (the pooling input)
        self.route_source = "x"
        # whether the steps read the kernel rotated by 180° (a true convolution's forward and
        # backward; the transposed view of a cross-correlation): the board then draws it rotated
        self.kernel_rotated = False

    # ----------------------------------------------------------------- cursor

    def seek(self, position: int) -> int:
        """Move to `position` (clamped to 0..total), updating only the cells that change."""
        target = min(max(int(position), 0), self.total)
        here = self.position
        if target > here:
            cells = self._cell[here:target]
            last = self._next[here:target] >= target  # the final write of each cell in range
            self._state[cells[last]] = self._after[here:target][last]
        elif target < here:
            cells = self._cell[target:here]
            first = self._prev[target:here] < target  # the first write of each cell in range
            prev = self._prev[target:here][first]
            restored = np.where(prev >= 0, self._after[np.maximum(prev, 0)], np.nan)
            self._state[cells[first]] = restored
        self.position = target
        self._entered = None
        return target

    def step(self, delta: int = 1) -> int:
        """`delta` steps on (back, when negative). Back from an entered phase's start: the
        previous phase's last step first, as if the phase had not been entered."""
        if self._entered is not None and delta < 0:
            delta += 1
        return self.seek(self.position + delta)

    @property
    def current_index(self) -> int | None:
        """Index of the last applied event (the step on screen), None at position 0 and at the
        start of a phase `next_phase` entered (no step of it applied yet)."""
        if self.position == 0 or self._entered is not None:
            return None
        return self.position - 1

    @property
    def current(self) -> Any | None:
        k = self.current_index
        return None if k is None else self.events[k]

    def cell_span(self, index: int) -> tuple[int, int]:
        """Events [start, end) of the output cell that event `index` belongs to."""
        group = self._group_of[index]
        return int(self._group_starts[group]), int(self._group_ends[group])

    @property
    def cell_count(self) -> int:
        return len(self._group_starts)

    def cell_number(self) -> int:
        """1-based number of the current output cell (0 before the first step; at the start
        of an entered phase, the cells done before it)."""
        k = self.current_index
        if k is None:
            return int(self._group_of[self.position - 1]) + 1 if self.position else 0
        return int(self._group_of[k]) + 1

    def next_cell(self) -> int:
        """Finish the current output cell; when it is finished, finish the next one."""
        k = self.current_index
        if k is None:  # before the first step of the pass or of an entered phase
            return self.seek(self.cell_span(min(self.position, self.total - 1))[1])
        _, end = self.cell_span(k)
        if self.position < end:
            return self.seek(end)
        if end >= self.total:
            return self.position
        return self.seek(self.cell_span(end)[1])

    def prev_cell(self) -> int:
        """Go back to the end of the previous output cell (position 0 before the first)."""
        if self.position == 0:
            return 0
        k = self.current_index
        if k is None:  # at an entered phase's start, where the previous cell ends
            return self.seek(self.cell_span(self.position - 1)[0])
        # the previous cell ends where the current one starts
        return self.seek(self.cell_span(k)[0])

    def phase_at(self, position: int | None = None) -> PhaseSpan:
        """The phase of the step at `position` (the first phase at position 0); without a
        position, the phase on screen: the one `next_phase` entered, while at its start."""
        if position is None and self._entered is not None:
            return self._entered
        position = self.position if position is None else position
        k = max(position - 1, 0)
        for span in self.phases:
            if span.start <= k < span.end:
                return span
        return self.phases[-1]

    def next_phase(self) -> int:
        """To the start of the next phase, before its first step (wraps round to the first)."""
        index = self.phases.index(self.phase_at())
        return self.enter_phase(self.phases[(index + 1) % len(self.phases)].phase)

    def enter_phase(self, phase: str) -> int:
        """To the start of phase `phase`, before its first step: its arrays on the board, none
        of its steps applied (the next → runs its first step)."""
        span = next(span for span in self.phases if span.phase == phase)
        self.seek(span.start)
        self._entered = span if span.start > 0 else None
        return self.position

    def follow(self, other: Replay) -> int:
        """Stand where `other` stands: the pass of the same example in another variant (a true
        convolution for a cross-correlation, average for max pooling). Passes of as many steps
        map step for step (the forward passes always do); otherwise the same output cell, done.
        An entered phase is entered again."""
        if other._entered is not None and any(p.phase == other._entered.phase for p in self.phases):
            return self.enter_phase(other._entered.phase)
        if other.total == self.total:
            return self.seek(other.position)
        cell = other.cell_number()
        if cell == 0 or self.cell_count != other.cell_count:
            return self.seek(0)
        return self.seek(int(self._group_ends[cell - 1]))

    # ----------------------------------------------------------------- derived state

    def final_values(self, name: str) -> np.ndarray:
        """The array `name` once every step has run."""
        return self.final[name] if name in self.final else self.arrays[name]

    def values(self, name: str) -> np.ndarray:
        """The array `name` at the current position (a view: do not modify).

        Once every step writing an array has run, the cells none wrote read 0, not "·": a
        max-pool input that was no window's max gets no gradient, which is a gradient of 0.
        """
        if name in self._views:
            view = self._views[name]
            if self.position >= self._last_write.get(name, self.total + 1):
                return np.nan_to_num(view, nan=0.0)
            return view
        return self.arrays[name]

    def number_format(self, name: str) -> NumberFormat | None:
        """How array `name` writes its values, in its grid and in the arithmetic (None for a
        number that is no array, e.g. average pooling's 1/(kh·kw))."""
        if self.formats is None:
            self.formats = array_formats({**self.arrays, **self.final}, self.events)
        return self.formats.get(name)

    def write(self, name: str, value: float) -> str:
        """`value` as array `name` writes it (`fmt_num` for a number of no array)."""
        number_format = self.number_format(name)
        return fmt_num(value) if number_format is None else number_format(value)

    def phase_arrays(self) -> tuple[set[str], set[str]]:
        """The arrays the current phase reads and the ones it writes."""
        phase = self.phase_at()
        read: set[str] = set()
        written: set[str] = set()
        sample = self.events[phase.start : min(phase.end, phase.start + 64)]
        for e in sample:
            read.update(o.name for o in e.operands)
            written.add(e.target)
        if any(e.kind == "route" for e in sample):
            read.add("x")  # max-pool routing: show where each window's max was
        return read, written

    @property
    def grid_names(self) -> list[str]:
        """Arrays to draw: the ones the current phase reads, the pinned ones (the kernel), then
        the ones it writes; arrays the phase does not use (the forward output, the gradients
        of the other phases) stay off the board so the ones it uses get the room."""
        read, written = self.phase_arrays()
        names = [n for n in GRID_ORDER if n in read and n in self.arrays]
        names += [n for n in GRID_ORDER if n in self.pinned and n not in names]
        names += [n for n in GRID_ORDER if n in written and n not in names]
        return names

    @property
    def reads_rotated_kernel(self) -> bool:
        """Whether the current phase multiplies by the kernel rotated by 180° (w read rotated)."""
        if not self.kernel_rotated:
            return False
        return "w" in self.phase_arrays()[0]

    def highlights(self) -> dict[str, dict[tuple[int, ...], str]]:
        """name -> {index: role}: the current step's written cell ("write"), its operands
        ("read") and the other cells of its output cell's window ("window"); a route step (max
        pooling's backward) has that window in the gradient it writes as well."""
        marks: dict[str, dict[tuple[int, ...], str]] = {}
        k = self.current_index
        if k is None:
            return marks
        start, end = self.cell_span(k)
        for e in self.events[start:end]:
            marks.setdefault(e.target, {})[e.target_index] = WINDOW
            for o in e.operands:
                if o.index:
                    marks.setdefault(o.name, {})[o.index] = WINDOW
        e = self.events[k]
        for o in e.operands:
            if o.index:
                marks[o.name][o.index] = READ
        source = self.route_source
        if e.kind == "route" and source in self.arrays:  # the max the gradient goes to
            key = tuple(value for _, value in e.loops)
            for name, index in self.context_windows.get(key, ()):
                marks.setdefault(name, {})[index] = WINDOW
                if name == source:  # the same window in the gradient (a cropped dx follows it)
                    marks.setdefault(e.target, {})[index] = WINDOW
            marks.setdefault(source, {})[e.target_index] = READ
        marks[e.target][e.target_index] = WRITE
        return marks

    def view_indices(self) -> dict[str, int]:
        """The sample n, channel c and filter f the current step works on (for the view);
        before the first step of the pass or of an entered phase, the ones the next step does."""
        e = self.current
        if e is None:
            if self.position >= self.total:
                return {}
            e = self.events[self.position]
        found: dict[str, int] = {}
        refs = [(e.target, e.target_index)] + [(o.name, o.index) for o in e.operands]
        for name, index in refs:
            axes = axes_of(self.op, name, len(index))
            for axis, value in zip(axes, index, strict=False):
                if axis is not None:
                    found.setdefault(axis, int(value))
        return found

    @property
    def text_style(self) -> StepStyle:
        """How the step panel writes a step (see `step_text`): axis-named cells, − and ∞."""
        return StepStyle(
            ref=lambda name, index: ref(self, name, index),
            num=fmt_num,
            factor=fmt_factor,
            explain=True,
            cell=self.write,
        )

    def rule_lines(self) -> list[str]:
        """What the current phase computes: its rule (the chain rule, going backward) and the
        local derivative in general and, after "here", at the current step."""
        if self.example is None:
            return []
        phase = self.phase_at().phase
        lines = [phase_rule(self.example, phase)]
        local = local_rule(self.example, phase)
        e = self.current
        here = "" if e is None else step_derivative(e, self.text_style.ref, self.text_style.cell)
        if local or here:
            lines.append("; ".join(part for part in (local, here) if part))
        return lines

    def step_lines(self) -> list[str]:
        """The arithmetic of the current step: the formula, its numbers, the cell's progress."""
        e = self.current
        if e is None:
            if self._entered is not None:
                span = self._entered
                first = f"{span.label}: {span.end - span.start} steps, none run yet."
                return [f"{first} Press → to run the first one.", "", ""]
            return [
                f"{self.total} steps recorded. Press → to run the first one.",
                "",
                "",
            ]
        return describe_step(self, e)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {name: a.shape for name, a in self.arrays.items()}
        shapes.update(self.targets)
        return shapes


# --------------------------------------------------------------------------- step text


def ref(replay: Replay, name: str, index: tuple[int, ...]) -> str:
    """An array reference as the lesson writes it: `x_pad[c=1, 2,3]` (see `array_ref`)."""
    return array_ref(replay.op, replay.shapes(), name, index)


def _sum_symbol(loops: Sequence[str]) -> str:
    return "Σ_" + ",".join(loops) if loops else ""


def describe_step(replay: Replay, e: Any) -> list[str]:
    """Three lines: what the step computes, with its numbers, and where the cell stands."""
    return [*step_text(e, replay.text_style), _cell_line(replay, e)]


def _cell_line(replay: Replay, e: Any) -> str:
    """Where the current output cell stands: its formula, running total and term count."""
    k = replay.current_index
    assert k is not None
    start, end = replay.cell_span(k)
    done, count = k - start + 1, end - start
    cell_events = replay.events[start : k + 1]
    progress = f"({done}/{count})"
    if e.op == "conv2d" and e.phase == "forward":
        return _conv_sum_line(replay, cell_events, progress, finished=k + 1 == end)
    if e.op == "conv2d" and e.phase in ("grad_bias", "grad_weight", "grad_input_transposed"):
        inner = [n for n, _ in e.loops[_CELL_DEPTH.get((e.op, e.phase), _DEFAULT_CELL_DEPTH) :]]
        read = "·".join(o.name for o in e.operands)
        total = replay.write(e.target, e.after)
        target = ref(replay, e.target, e.target_index)
        return f"{target} = {_sum_symbol(inner)} {read} = {total} so far {progress}"
    if e.phase == "forward" and e.op == "maxpool2d":
        best = replay.write(e.target, e.after)
        return f"max of the {count}-cell window so far: {best} {progress}"
    if e.phase == "forward" and e.op == "avgpool2d":
        # each step adds x/count: a partial sum, the window's mean only once all are in
        total = replay.write(e.target, e.after)
        if done < count:
            return f"sum of x/{count} so far: {total} {progress}"
        return f"sum of x/{count} = the window's mean: {total} {progress}"
    if e.phase == "grad_input" and e.op == "maxpool2d":
        return "max pooling sends each upstream gradient to its window's max, nowhere else"
    source = next((o for o in e.operands if o.name == "dout"), None)
    if source is not None:
        return f"spreading {ref(replay, 'dout', source.index)} over its window {progress}"
    return progress


def _conv_sum_line(
    replay: Replay, cell_events: Sequence[Any], progress: str, finished: bool
) -> str:
    """out = b + Σ_c (Σ_ki,kj x·w) with each channel's partial sum, so the channel sum shows."""
    first = cell_events[0]
    target = ref(replay, first.target, first.target_index)
    bias = first.after if first.kind == "bias" else 0.0
    by_channel: dict[int, float] = {}
    for e in cell_events:
        if e.kind == "mac":
            c = e.loop("c")
            by_channel[c] = by_channel.get(c, 0.0) + math.prod(o.value for o in e.operands)
    channels = replay.arrays["x_pad"].shape[1] if "x_pad" in replay.arrays else 1
    terms = [replay.write(first.target, bias)]
    last = cell_events[-1]
    for c, partial in by_channel.items():
        running = "" if finished or c != last.loop("c") or last.kind != "mac" else "…"
        label = f"c{c}: " if channels > 1 else ""
        shown = replay.write(first.target, partial)
        terms.append(f"{label}{shown if label else fmt_factor(partial, text=shown)}{running}")
    sums = "Σ_c Σ_ki,kj" if channels > 1 else "Σ_ki,kj"
    total = replay.write(first.target, cell_events[-1].after)
    status = "done" if finished else "so far"
    return f"{target} = b + {sums} x·w = {' + '.join(terms)} = {total} {status} {progress}"


# --------------------------------------------------------------------------- grids


@dataclass
class GridSpec:
    """One 2-D grid to draw: values[r, c] (NaN = not computed yet), marked cells, padding."""

    name: str
    title: str
    values: np.ndarray
    marks: dict[tuple[int, int], str] = field(default_factory=dict)  # (r, c) -> role
    pad: tuple[int, int] = (0, 0)  # rows / columns of zero padding on each side (dimmed)
    final: np.ndarray | None = None  # the finished values: fixes the column width up front
    # how the array writes its values (None: chosen from `final` and `values`)
    number_format: NumberFormat | None = None
    short: str = ""  # the name with its slice, e.g. "x_pad[c=1]" (a cropped grid's title)
    operand: bool = False  # the current phase reads it (the board keeps operands side by side)


def grid_specs(
    replay: Replay, view: Mapping[str, int], padding: tuple[int, int] = (0, 0)
) -> list[GridSpec]:
    """The grids of the current position: the 2-D slice of each array that `view` selects
    (sample n, channel c, filter f), with the current step's cells marked. When the phase
    multiplies by the kernel rotated by 180°, a "w rotated 180°" grid follows the kernel, with
    the entry being multiplied marked where it sits in the rotated kernel."""
    marks = replay.highlights()
    read = replay.phase_arrays()[0]
    specs = []
    for name in replay.grid_names:
        values = replay.values(name)
        axes = axes_of(replay.op, name, values.ndim)
        index: list[int] = []
        labels = []
        if values.ndim >= 3:
            for axis, size in zip(axes, values.shape, strict=False):
                chosen = min(max(view.get(axis or "", 0), 0), size - 1)
                index.append(chosen)
                if size > 1:
                    labels.append(f"{axis}={chosen}")
        plane = values[tuple(index)] if index else values
        final = replay.final_values(name)
        final_plane = final[tuple(index)] if index else final
        lead = tuple(index)
        cells: dict[tuple[int, int], str] = {}
        for where, role in marks.get(name, {}).items():
            if values.ndim == 1:
                cells[(0, where[0])] = role
            elif where[: len(lead)] == lead:
                cells[(where[-2], where[-1])] = role
        shown = f"{name}[{', '.join(labels)}]" if labels else name
        described = ARRAY_TITLES.get(name, "")
        if name in UNPADDED_TITLES and padding == (0, 0):
            described = UNPADDED_TITLES[name]
        title = f"{shown} {described}".strip()
        if name == "out" and name in replay.arrays:
            title = f"{shown} forward output"
        pad = padding if name.endswith("_pad") else (0, 0)
        number_format = replay.number_format(name)  # the whole array's, as the steps write it
        specs.append(
            GridSpec(
                name, title, plane, cells, pad, final_plane, number_format,
                short=shown, operand=name in read,
            )
        )  # fmt: skip
        if name == "w" and replay.reads_rotated_kernel:
            specs.append(_rotated_spec(specs[-1], labels))
    return specs


def _rotated_spec(kernel: GridSpec, labels: Sequence[str]) -> GridSpec:
    """The kernel grid rotated by 180°: rot[ki,kj] = w[KH−1−ki, KW−1−kj], the marks moved along."""
    rows, cols = kernel.values.shape
    marks = {(rows - 1 - r, cols - 1 - c): role for (r, c), role in kernel.marks.items()}
    final = None if kernel.final is None else kernel.final[::-1, ::-1]
    title = f"{ROTATED_TITLE} [{', '.join(labels)}]" if labels else ROTATED_TITLE
    values = kernel.values[::-1, ::-1]
    return GridSpec(
        ROTATED_NAME, title, values, marks, (0, 0), final, kernel.number_format,
        short=title, operand=True,
    )  # fmt: skip


def build_replays(example: Any) -> tuple[Replay, Replay]:
    """Run the naive forward and backward pass of a `lessons.LessonExample`, recording every
    step, and wrap each run in a Replay (forward, backward)."""
    forward_events: list[Any] = []
    out, cache = example.forward(on_step=forward_events.append)
    backward_events: list[Any] = []
    example.backward(cache, on_step=backward_events.append)
    if example.op == "conv":
        x_pad = example.x_pad
        forward = Replay(
            forward_events, {"x_pad": x_pad, "w": example.w, "b": example.b}, {"out": out.shape}
        )
        backward = Replay(
            backward_events,
            {"x_pad": x_pad, "w": example.w, "dout": example.dout, "out": out},
            {"db": example.b.shape, "dw": example.w.shape, "dx_pad": x_pad.shape},
        )
        backward.pinned = ("w",)  # the kernel stays in sight
        forward.kernel_rotated = backward.kernel_rotated = bool(example.flip)
    else:
        forward = Replay(forward_events, {"x": example.x}, {"out": out.shape})
        backward = Replay(
            backward_events,
            {"x": example.x, "dout": example.dout, "out": out},
            {"dx": example.x.shape},
        )
        windows: dict[tuple[int, ...], list[tuple[str, tuple[int, ...]]]] = {}
        for e in forward_events:  # each output cell's window, as the forward pass read it
            key = tuple(value for _, value in e.loops[:4])
            windows.setdefault(key, []).extend((o.name, o.index) for o in e.operands if o.index)
        backward.context_windows = windows
    forward.example = backward.example = example
    return forward, backward


def lesson_formats(
    example: Any, events: Sequence[Any] | None = None, out: np.ndarray | None = None
) -> dict[str, NumberFormat]:
    """How every array of a conv / pool example writes its values, on the lesson screen and in
    the trace alike (`number_format.array_formats`): chosen from the inputs, every step of
    every pass (forward, backward and, when the lesson keeps it, dX as a transposed
    convolution) and the finished arrays. `events` (and the forward `out`) are those steps when
    the caller recorded them (`OpReplay`); else the passes run here (the trace). x and x_pad,
    dx and dx_pad, dout and dout_up hold the same numbers: one format each pair."""
    if events is None:
        recorded: list[Any] = []
        out, cache = example.forward(on_step=recorded.append)
        example.backward(cache, on_step=recorded.append)
        if example.op == "conv" and example.transposed_steps <= LIMITS.max_steps:
            example.transposed_backward(cache, on_step=recorded.append)
        events = recorded
    values: dict[str, Any] = {"x": example.x, "dout": example.dout}
    if out is not None:
        values["out"] = out
    same = [("dx", "dx_pad")]
    if example.op == "conv":
        values.update(x_pad=example.x_pad, w=example.w, b=example.b)
        same += [("x", "x_pad"), ("dout", "dout_up")]
    return array_formats(values, events, same)


def transposed_replay(example: Any) -> Replay | None:
    """The dX pass of a conv example as a transposed convolution, recorded step by step
    (`naive.conv2d_input_grad_transposed`); None for pooling or when it has more steps than
    a lesson keeps (`LIMITS.max_steps`; it also multiplies the stuffed zeros)."""
    if example.op != "conv" or example.transposed_steps > LIMITS.max_steps:
        return None
    _, cache = example.forward()
    events: list[Any] = []
    example.transposed_backward(cache, on_step=events.append)
    replay = Replay(
        events,
        {"dout_up": stuffed_dout(example.dout, cache), "w": example.w, "dout": example.dout},
        {"dx_pad": example.x_pad.shape},
    )
    replay.kernel_rotated = not example.flip  # a true convolution's kernel is rotated twice
    replay.example = example
    return replay


@dataclass(frozen=True)
class StrideLeftovers:
    """The rows and columns of x_pad that no output window reaches (a stride that does not
    divide H + 2P − D·(K − 1) − 1): no output read them, so their gradient is 0, and the
    transposed convolution's stride-1 windows stop before them. PyTorch's `conv_transpose2d`
    adds them back with `output_padding` (one per row / column left over)."""

    rows: tuple[int, ...]  # x_pad indices, last rows first reached by nothing
    cols: tuple[int, ...]
    padding: tuple[int, int]
    input_size: tuple[int, int]  # H, W of x (x_pad is H + 2P by W + 2P)

    @property
    def output_padding(self) -> tuple[int, int]:
        """`conv_transpose2d`'s output_padding that gives dx its full size."""
        return len(self.rows), len(self.cols)

    @property
    def cells(self) -> int:
        """Cells of one x_pad plane in a left-over row or column."""
        height = self.input_size[0] + 2 * self.padding[0]
        width = self.input_size[1] + 2 * self.padding[1]
        return len(self.rows) * width + len(self.cols) * height - len(self.rows) * len(self.cols)

    def input_lines(self, axis: int) -> tuple[int, ...]:
        """The left-over rows (axis 0) or columns (axis 1) that are x's own, in x's indices
        (the others are padding, cut off from dx anyway)."""
        lines = self.rows if axis == 0 else self.cols
        pad, size = self.padding[axis], self.input_size[axis]
        return tuple(r - pad for r in lines if pad <= r < pad + size)

    def __bool__(self) -> bool:
        return bool(self.rows or self.cols)


def stride_leftovers(example: Any) -> StrideLeftovers:
    """The rows and columns of a conv example's x_pad that no output window reaches."""
    height, width = example.x.shape[2:]
    ph, pw = example.padding
    lines = []
    for out, stride, dilation, kernel, full in zip(
        example.output_shape[2:], example.stride, example.dilation, example.kernel,
        (height + 2 * ph, width + 2 * pw), strict=True,
    ):  # fmt: skip
        reached = (out - 1) * stride + 1 + dilation * (kernel - 1)
        lines.append(tuple(range(reached, full)))
    return StrideLeftovers(lines[0], lines[1], (ph, pw), (height, width))


def leftovers_text(example: Any) -> str:
    """A conv example's stride leftovers (`stride_leftovers`) in one line, or "" when there
    are none: which x_pad rows and columns no window reaches, that their dx is 0 with no step
    writing it, and the output_padding PyTorch's conv_transpose2d needs for them."""
    left = stride_leftovers(example)
    if not left:
        return ""
    named = []
    for lines, word in ((left.rows, "row"), (left.cols, "col")):
        if lines:
            named.append(f"{word}{'s' if len(lines) > 1 else ''} {_index_list(lines)}")
    only_padding = not (left.input_lines(0) or left.input_lines(1))
    where = ", padding only" if only_padding else ""
    return (
        f"stride {_pair_text(example.stride)}: x_pad {', '.join(named)} ({left.cells} cells"
        f"{where}) in no window, read by no output: dx = 0 there, no step writes it "
        f"(conv_transpose2d's output_padding={left.output_padding})"
    )


def _index_list(indices: tuple[int, ...]) -> str:
    """Consecutive indices as a range: (9,) → "9", (8, 9) → "8–9"."""
    return str(indices[0]) if len(indices) == 1 else f"{indices[0]}–{indices[-1]}"


def size_formula(example: Any) -> str:
    """The output-size formula with the example's numbers, e.g.
    "OH = OW = ⌊(H + 2P − K)/S⌋ + 1 = ⌊(5 + 2·1 − 3)/1⌋ + 1 = 5"."""
    height, width = example.x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = example.kernel, example.stride, example.padding
    dh, dw = getattr(example, "dilation", (1, 1))
    pooling = example.op == "pool"  # no padding: no "+ 2P" term
    dilated = (dh, dw) != (1, 1)
    general = output_size_rule(
        twice_padding=None if pooling else "2P", dilation="D" if dilated else None
    )
    rows = output_size_formula(height, kh, sh, ph, pooling=pooling, dilation=dh)
    cols = output_size_formula(width, kw, sw, pw, pooling=pooling, dilation=dw)
    rule = getattr(example, "padding_rule", "")
    same = f"  (padding {rule}: P = {_pair_text((ph, pw))})" if rule else ""
    if rows == cols:
        return f"output size: OH = OW = {general} = {rows}{same}"
    return f"output size: OH = {rows}, OW = {cols}   ({general}){same}"


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


# --------------------------------------------------------------------------- examples


EDITABLE_ARRAYS = ARRAYS  # the arrays of an example file are the ones the form edits


def make_example(op: str, params: Mapping[str, Any], overrides: Mapping[str, np.ndarray]) -> Any:
    """`lessons.build_example(op, **params)` with some arrays replaced by edited values.

    Raises UsageError (from build_example, or for an edited array whose shape no longer fits).
    """
    example = build_example(op, **params)
    changes = {}
    for name, array in overrides.items():
        current = getattr(example, name)
        if current is None or current.shape != array.shape:
            shape = None if current is None else current.shape
            raise UsageError(
                f"{name}: the edited values have shape {array.shape}, expected {shape}"
            )
        changes[name] = np.asarray(array, dtype=np.float64)
        if not np.all(np.isfinite(changes[name])) or np.any(np.abs(changes[name]) > LIMITS.max_abs):
            raise UsageError(
                f"{name}: values must be finite and at most {LIMITS.max_abs:g} in size"
            )
    if "dout" in changes:
        changes["dout_from"] = "edited"
    return dataclasses.replace(example, **changes, edited=True) if changes else example


def format_array(name: str, array: np.ndarray) -> str:
    """An array as editable text: one line per row, numbers separated by commas, and for
    arrays of more than two axes a `# name[lead index]` line before each 2-D slice."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    blocks = []
    lead_shape = array.shape[:-2]
    for lead in np.ndindex(*lead_shape):
        plane = array[lead]
        rows = [", ".join(_plain_number(v) for v in row) for row in plane.tolist()]
        header = f"# {name}[{', '.join(str(i) for i in lead)}]" if len(lead_shape) else ""
        blocks.append("\n".join(([header] if header else []) + rows))
    return "\n\n".join(blocks) + "\n"


def _plain_number(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def parse_array(name: str, text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Parse `format_array`'s text back into an array of `shape`; UsageError saying which row
    is wrong. Blank lines separate the 2-D slices; `#` starts a comment; "−" counts as "-"."""
    rows_per_plane, cols = (1, shape[0]) if len(shape) == 1 else shape[-2:]
    planes = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    rows: list[list[float]] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().replace("−", "-")
        if not line:
            continue
        numbers = [part.strip() for part in line.replace(";", ",").split(",") if part.strip()]
        if len(numbers) == 1 and " " in numbers[0]:
            numbers = numbers[0].split()
        try:
            row = [float(part) for part in numbers]
        except ValueError:
            raise UsageError(f"{name}, line {line_no}: not a number in {raw.strip()!r}") from None
        if not all(math.isfinite(v) for v in row):
            raise UsageError(f"{name}, line {line_no}: numbers must be finite")
        if len(row) != cols:
            raise UsageError(f"{name}, line {line_no}: expected {cols} numbers, got {len(row)}")
        rows.append(row)
    expected = planes * rows_per_plane
    if len(rows) != expected:
        where = (
            f"{planes} slices of {rows_per_plane} rows" if planes > 1 else f"{rows_per_plane} rows"
        )
        raise UsageError(f"{name}: expected {where} of {cols} numbers, got {len(rows)} rows")
    return np.array(rows, dtype=np.float64).reshape(shape)


def compare_with_torch(example: Any) -> float:
    """Largest |naive − PyTorch| over the output and every gradient of `example`, and for
    conv the dX pass as a transposed convolution against `conv_transpose2d`.

    A true convolution (example.flip) is compared with conv2d of the rotated kernel.
    Imports torch: call it from a worker thread, never at start-up.
    """
    import torch
    import torch.nn.functional as F

    out, cache = example.forward()
    grads = example.backward(cache)
    x = torch.tensor(example.x, dtype=torch.float64, requires_grad=True)
    inputs = [x]
    pairs = []
    if example.op == "conv":
        w = torch.tensor(example.w, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(example.b, dtype=torch.float64, requires_grad=True)
        inputs += [w, b]
        kernel = torch.flip(w, (2, 3)) if example.flip else w
        geometry = {"stride": example.stride, "dilation": example.dilation}
        ref_out = F.conv2d(x, kernel, b, padding=example.padding, **geometry)
        dout = torch.tensor(example.dout, dtype=torch.float64)
        # conv_transpose2d gives the rows a window reached; output_padding adds the rest
        extra = stride_leftovers(example).output_padding
        transposed = F.conv_transpose2d(
            dout, kernel.detach(), padding=example.padding, output_padding=extra, **geometry
        )
        if extra[0] < max(example.stride[0], example.dilation[0]) and extra[1] < max(
            example.stride[1], example.dilation[1]
        ):  # PyTorch's own limit on output_padding; else only the naive dX pass is compared
            pairs.append((example.transposed_backward(cache), transposed))
    elif example.pool_type == "max":
        ref_out = F.max_pool2d(x, example.kernel, example.stride)
    else:
        ref_out = F.avg_pool2d(x, example.kernel, example.stride)
    ref_out.backward(torch.tensor(example.dout, dtype=torch.float64))
    pairs += [(out, ref_out.detach()), (grads["dx"], x.grad)]
    if example.op == "conv":
        pairs += [(grads["dw"], inputs[1].grad), (grads["db"], inputs[2].grad)]
    return max(float(np.max(np.abs(mine - theirs.numpy()))) for mine, theirs in pairs)
