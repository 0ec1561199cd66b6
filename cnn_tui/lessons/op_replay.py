"""UI-free model of the conv / pool lesson screen: its passes, the pass on screen, what it says.

A conv or pool example is replayed as passes, each a `replay.Replay` with its own cursor: the
forward pass, the backward pass (phases db, dW, dX for conv; dX for pooling) and, for conv, dX
again as a transposed convolution of dout (`replay.transposed_replay`, when a lesson can keep
its steps). `OpReplay` holds them and the pass on screen (`mode`), and is the cursor the screen
moves: a step, a cell jump or a jump to either end moves the pass on screen, each pass keeping
its own position; `next_phase` walks forward → db → dW → dX → dX as a transposed conv →
forward across the passes, entering each backward phase before its first step. From there it
derives what the screen shows: the status line, the grids, the step with its rule, and the
panel's last line (the output-size formula, where dout comes from, the stride leftovers of dX and the
transposed view, or what to press at the end of a pass). `NetReplay` is the network lesson's
counterpart. Nothing here imports Textual.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping

import numpy as np

from cnn_tui.lessons.examples import LessonExample
from cnn_tui.lessons.navigation import (
    GotoError,
    GotoQuery,
    GotoTarget,
    Skip,
    cell_index,
    check_step,
    first_write,
    parse_goto,
    skip_zero_products,
    written_arrays,
    zero_products,
)
from cnn_tui.lessons.replay import (
    GridSpec,
    Replay,
    StrideLeftovers,
    build_replays,
    grid_specs,
    leftovers_text,
    lesson_formats,
    ref,
    size_formula,
    stride_leftovers,
    transposed_replay,
)
from cnn_tui.lessons.rules import dout_source
from cnn_tui.lessons.step_text import axes_of
from cnn_tui.text import one_line

# The passes of a lesson, in the order `next_phase` walks them (pooling has no transposed view).
MODES = ("forward", "backward", "transposed")

# What the go-to prompt calls each phase (`replay.PhaseSpan.phase`), beside "backward".
PHASE_NAMES = {
    "forward": "forward",
    "grad_bias": "db",
    "grad_weight": "dw",
    "grad_input": "dx",
    "grad_input_transposed": "transposed",
}


class OpReplay:
    """The conv / pool lesson's passes and the one on screen: the cursor of its screen."""

    def __init__(self, example: LessonExample, mode: str = "forward") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.example = example
        forward, backward = build_replays(example)
        self.replays: dict[str, Replay] = {"forward": forward, "backward": backward}
        transposed = transposed_replay(example)
        if transposed is not None:
            self.replays["transposed"] = transposed
        # one format per array for every pass, as the trace writes them (`lesson_formats`)
        events = [e for replay in self.replays.values() for e in replay.events]
        formats = lesson_formats(example, events, forward.final["out"])
        for replay in self.replays.values():
            replay.formats = formats
        # an example without the transposed view (pooling, or too many steps) shows dX instead
        self.mode = mode if mode in self.replays else "backward"
        self._zeros: dict[str, np.ndarray] = {}  # per pass: which steps are zero products

    @property
    def op(self) -> str:
        """ "conv" or "pool"."""
        return self.example.op

    @property
    def replay(self) -> Replay:
        """The pass on screen."""
        return self.replays[self.mode]

    @property
    def has_transposed(self) -> bool:
        """Whether dX can be shown again as a transposed convolution (conv, small enough)."""
        return "transposed" in self.replays

    # ----------------------------------------------------------------- moving

    @property
    def position(self) -> int:
        return self.replay.position

    @property
    def total(self) -> int:
        return self.replay.total

    def seek(self, position: int) -> int:
        return self.replay.seek(position)

    def step(self, delta: int = 1) -> int:
        return self.replay.step(delta)

    def next_cell(self) -> int:
        return self.replay.next_cell()

    def prev_cell(self) -> int:
        return self.replay.prev_cell()

    def jump(self, where: str) -> int:
        """Before the first step of the pass ("start") or after its last ("end")."""
        return self.replay.seek(0 if where == "start" else self.replay.total)

    def next_phase(self) -> int:
        """forward → db → dW → dX → dX as a transposed conv → forward (pooling: forward ↔ dX).

        A phase of the backward pass is entered at its start, before its first step (its
        arrays on the board, the next → runs that step); the transposed view and the forward
        pass are entered where they were left."""
        if self.mode == "forward":
            self.mode = "backward"
            return self.replay.enter_phase(self.replay.phases[0].phase)
        if self.mode == "transposed":
            self.mode = "forward"
            return self.position
        replay = self.replay
        if replay.phase_at() == replay.phases[-1]:
            self.mode = "transposed" if self.has_transposed else "forward"
            return self.position
        return replay.next_phase()

    def follow(self, other: OpReplay) -> int:
        """Every pass where `other`'s stands (`Replay.follow`): `other` is this example's other
        variant (`v`, `m`); the pass on screen stays the one `other` shows."""
        for mode, replay in self.replays.items():
            if mode in other.replays:
                replay.follow(other.replays[mode])
        if other.mode in self.replays:
            self.mode = other.mode
        return self.position

    def toggle_backward(self) -> None:
        """The forward pass ↔ the backward pass (from the transposed view: the forward pass)."""
        self.mode = "forward" if self.mode != "forward" else "backward"

    def toggle_transposed(self) -> None:
        """dX as a transposed convolution ↔ the backward pass (nothing without that view)."""
        if self.has_transposed:
            self.mode = "backward" if self.mode == "transposed" else "transposed"

    # ----------------------------------------------------------------- go to, skip zeros

    def goto_names(self) -> list[str]:
        """The phase names the go-to prompt takes: forward, backward, db, dw, dx, transposed."""
        names = ["forward", "backward"]
        names += [PHASE_NAMES[span.phase] for span in self.replays["backward"].phases]
        return names + (["transposed"] if self.has_transposed else [])

    def resolve_goto(self, text: str, view: Mapping[str, int]) -> GotoTarget:
        """Where the go-to prompt's `text` leads, without moving (GotoError if nowhere): a step
        of the pass on screen (as the status line counts them), a phase (`dw`; `dw 12`: its
        12th step), or the first step writing a cell of the array the phase writes (`6,1`,
        for the image / channel / filter of `view`) or of a named array (`dx_pad[2,8]`)."""
        query = parse_goto(text)
        if query.kind == "step":
            assert query.number is not None
            number = check_step(query.number, 0, self.replay.total)
            return GotoTarget(number, self.mode, f"step {number}")
        if query.kind == "phase":
            return self._goto_phase(query)
        return self._goto_cell(query, view)

    def _goto_phase(self, query: GotoQuery) -> GotoTarget:
        wanted = query.name.casefold()
        if wanted == "backward":
            mode, span = "backward", self.replays["backward"].phases[0]
        else:
            found = [
                (mode, span)
                for mode, replay in self.replays.items()
                for span in replay.phases
                if wanted in (PHASE_NAMES.get(span.phase), span.phase)
            ]
            if not found:
                names = ", ".join(self.goto_names())
                raise GotoError(f"no phase {query.name!r} here: the phases are {names}")
            mode, span = found[0]
        steps = span.end - span.start
        number = 1 if query.number is None else query.number
        check_step(number, 1, steps, f"in {span.label}")
        label = span.label if query.number is None else f"{span.label}, step {number}"
        return GotoTarget(
            span.start + number, mode, label, steps - number + 1, query.number is None
        )

    def _goto_cell(self, query: GotoQuery, view: Mapping[str, int]) -> GotoTarget:
        mode, replay = self.mode, self.replay
        if query.name:
            passes = [self.mode] + [m for m in self.replays if m != self.mode]
            mode = next((m for m in passes if query.name in self.replays[m].targets), "")
            if not mode:
                written = sorted({name for r in self.replays.values() for name in r.targets})
                raise GotoError(
                    f"no step writes {query.name}: name one of {', '.join(written)}, "
                    "or give the cell alone"
                )
            replay, name, start, end = self.replays[mode], query.name, 0, None
        else:
            span = replay.phase_at()
            start, end = span.start, span.end
            arrays = written_arrays(replay.events[start:end])
            name = next(
                (n for n in arrays if _fits(query, replay.op, n, replay.targets[n])), arrays[0]
            )
        shape = replay.targets[name]
        axes = _axes(replay.op, name, len(shape))
        index = cell_index(query, name, shape, axes, view)
        cell = ref(replay, name, index)
        k = first_write(replay.events, name, index, start, end)
        if k is None:
            where = "" if query.name else f" of {replay.phase_at().label}"
            raise GotoError(f"{cell} is written by no step{where} (its value stays 0)")
        return GotoTarget(k + 1, mode, cell)

    def go_to(self, target: GotoTarget) -> int:
        """Move to a target `resolve_goto` gave (a phase named alone: entered, as `p` does)."""
        if target.mode is not None:
            self.mode = target.mode
        if target.enter:
            return self.replay.enter_phase(self.replay.phase_at(target.position).phase)
        return self.replay.seek(target.position)

    def skip_zeros(self, direction: int = 1) -> Skip:
        """To the next (direction > 0) or previous step of the pass on screen whose product is
        not 0, staying in the phase (`navigation.skip_zero_products`)."""
        replay = self.replay
        if self.mode not in self._zeros:
            self._zeros[self.mode] = zero_products(replay.events)
        spans = [(span.start, span.end) for span in replay.phases]
        skip = skip_zero_products(self._zeros[self.mode], spans, replay.position, direction)
        replay.seek(skip.position)
        return dataclasses.replace(skip, phase=replay.phase_at().label)

    # ----------------------------------------------------------------- what is shown

    def view_indices(self) -> dict[str, int]:
        """The sample n, channel c and filter f the current step works on."""
        return self.replay.view_indices()

    def axis_sizes(self) -> dict[str, int]:
        """Images n, channels c and filters f of the example (the slices a view can pick)."""
        n, c = self.example.x.shape[:2]
        filters = self.example.w.shape[0] if self.example.w is not None else 1
        return {"n": int(n), "c": int(c), "f": int(filters)}

    def grid_specs(self, view: Mapping[str, int]) -> list[GridSpec]:
        """The grids of the pass on screen, showing the sample, channel and filter `view` picks."""
        return grid_specs(self.replay, view, self.example.padding)

    def status_parts(self, speed: int) -> list[str]:
        """The status line: op and phase, step, output cell, speed, the mode, the example
        (`StepStatus` drops the speed first, then the example, then the mode)."""
        replay, example = self.replay, self.example
        parts = [
            f"{replay.op} · {replay.phase_at().label}",
            f"step {replay.position} / {replay.total}",
            f"cell {replay.cell_number()} / {replay.cell_count}",
            f"{speed} steps/s",
        ]
        if example.flip:
            parts.append("true convolution, kernel rotated 180°")
        parts.append(self.example_label)
        return parts

    @property
    def example_label(self) -> str:
        """The example in the status line (the one place it is named): "example edge-detect",
        "seed 3", "edited", ... `StepStatus` drops it first when the line is too narrow."""
        label = self.example.status_label
        return label if self.example.name == "random" else f"example {label}"

    @property
    def leftovers(self) -> StrideLeftovers | None:
        """The rows and columns of x_pad no output window reaches (conv only)."""
        return stride_leftovers(self.example) if self.op == "conv" else None

    def leftovers_line(self) -> str:
        """The note on the rows and columns no window reaches, or "" (`leftovers_text`): the
        last line of the transposed view and of the dX phase."""
        return leftovers_text(self.example) if self.op == "conv" else ""

    def step_lines(self, width: int = 0, rows: int = 3) -> list[str]:
        """The current step's formula, its numbers and where its output cell stands; before
        the first step of the forward pass, what the example is about (`description_line`):
        one line, or given a `width`, wrapped to it in at most `rows` rows (one string with
        new lines), cut with "…" only where it needs more."""
        lines = self.replay.step_lines()
        if self.mode != "forward" or self.replay.position != 0:
            return lines
        about = self.description_line(limit=480 if width else 240)
        if about and width:
            width = max(width, 20)
            wrapped = textwrap.wrap(about, width)
            if len(wrapped) > rows:
                rest = " ".join(wrapped[rows - 1 :])
                wrapped = [*wrapped[: rows - 1], textwrap.shorten(rest, width, placeholder=" …")]
            about = "\n".join(wrapped)
        return [lines[0], about, *lines[2:]] if about else lines

    def description_line(self, limit: int = 240) -> str:
        """The example's title and description as one safe line ("" when it has none): they
        come from a TOML file, so every control character is escaped (`text.one_line`) and
        the text is cut at `limit` characters."""
        example = self.example
        description = " ".join(str(example.description or "").split())
        if not description:
            return ""
        title = " ".join(str(example.title or "").split())
        text = one_line(f"{title}: {description}" if title else description)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def rule_lines(self) -> list[str]:
        """What the current phase computes, and the local derivative in general and here."""
        return self.replay.rule_lines()

    def info_line(self) -> str:
        """The step panel's last line: what to press at the end of a pass, else the
        output-size formula (forward), the stride leftovers (dX and its transposed view, where
        rows or columns of x_pad are in no window) or where dout comes from (backward)."""
        if self.replay.position >= self.replay.total:
            return self.end_hint()
        if self.mode == "forward":
            return size_formula(self.example)
        if self.mode == "transposed" or self.replay.phase_at().phase == "grad_input":
            return self.leftovers_line() or dout_source(self.example)
        return dout_source(self.example)

    def end_hint(self) -> str:
        """What to press once the pass on screen is done."""
        if self.mode == "forward":
            return "forward pass done: press b for the backward pass (p: its phases one by one)"
        if self.mode == "backward":
            if self.has_transposed:
                return (
                    "backward pass done: press t to see dX again as a transposed convolution, "
                    "b for the forward pass"
                )
            more = "m for the other pooling" if self.op == "pool" else "e to edit the example"
            return f"backward pass done: press b for the forward pass, {more}"
        done = (
            "dX as a transposed convolution done: the same dx as the dX phase (PyTorch: "
            "conv_transpose2d); press t to go back, b for the forward pass"
        )
        left = self.leftovers_line()
        return f"{done}. {left[0].upper()}{left[1:]}" if left else done


def _axes(op: str, name: str, ndim: int) -> tuple[str | None, ...]:
    """Every axis of array `name`: the sample / channel / filter ones named, rows and columns
    None (`step_text.axes_of` names the leading ones)."""
    lead = axes_of(op, name, ndim)
    return tuple(lead) + (None,) * (ndim - len(lead))


def _fits(query: GotoQuery, op: str, name: str, shape: tuple[int, ...]) -> bool:
    """Whether a cell typed with these many indices can be a cell of array `name`."""
    spatial = sum(axis is None for axis in _axes(op, name, len(shape)))
    return len(query.index) in (len(shape), spatial)
