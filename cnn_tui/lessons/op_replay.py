"""UI-free model of the conv / pool lesson screen: its passes, the pass on screen, what it says.

A conv or pool example is replayed as passes, each a `replay.Replay` with its own cursor: the
forward pass, the backward pass (phases db, dW, dX for conv; dX for pooling) and, for conv, dX
again as a transposed convolution of dout (`replay.transposed_replay`, when a lesson can keep
its steps). `OpReplay` holds them and the pass on screen (`mode`), and is the cursor the screen
moves: a step, a cell jump or a jump to either end moves the pass on screen, each pass keeping
its own position; `next_phase` walks forward → db → dW → dX → dX as a transposed conv →
forward across the passes. From there it derives what the screen shows: the status line, the
grids, the step with its rule, and the panel's last line (the output-size formula, where dout
comes from, or what to press at the end of a pass). `NetReplay` is the network lesson's
counterpart. Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Mapping

from cnn_tui.lessons.examples import LessonExample
from cnn_tui.lessons.replay import (
    GridSpec,
    Replay,
    build_replays,
    grid_specs,
    lesson_formats,
    size_formula,
    transposed_replay,
)
from cnn_tui.lessons.rules import dout_source

# The passes of a lesson, in the order `next_phase` walks them (pooling has no transposed view).
MODES = ("forward", "backward", "transposed")


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

        Entering the backward pass goes to its first phase's first step; the transposed view
        and the forward pass are entered where they were left (the transposed view at its
        first step at least)."""
        if self.mode == "forward":
            self.mode = "backward"
            return self.replay.seek(self.replay.phases[0].start + 1)
        if self.mode == "transposed":
            self.mode = "forward"
            return self.position
        replay = self.replay
        if replay.position > 0 and replay.phase_at() == replay.phases[-1]:
            self.mode = "transposed" if self.has_transposed else "forward"
            if self.mode == "transposed":
                return self.replay.seek(max(self.replay.position, 1))
            return self.position
        return replay.next_phase()

    def toggle_backward(self) -> None:
        """The forward pass ↔ the backward pass (from the transposed view: the forward pass)."""
        self.mode = "forward" if self.mode != "forward" else "backward"

    def toggle_transposed(self) -> None:
        """dX as a transposed convolution ↔ the backward pass (nothing without that view)."""
        if self.has_transposed:
            self.mode = "backward" if self.mode == "transposed" else "transposed"

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
        """The status line: op and phase, step, output cell, speed, the example."""
        replay, example = self.replay, self.example
        parts = [
            f"{replay.op} · {replay.phase_at().label}",
            f"step {replay.position} / {replay.total}",
            f"cell {replay.cell_number()} / {replay.cell_count}",
            f"{speed} steps/s",
        ]
        if example.flip:
            parts.append("true convolution (kernel rotated 180°)")
        if example.name != "random":
            parts.append(f"example {example.name}, seed {example.seed}")
        else:
            parts.append(f"seed {example.seed}")
        return parts

    def step_lines(self) -> list[str]:
        """The current step's formula, its numbers and where its output cell stands."""
        return self.replay.step_lines()

    def rule_lines(self) -> list[str]:
        """What the current phase computes, and the local derivative in general and here."""
        return self.replay.rule_lines()

    def info_line(self) -> str:
        """The step panel's last line: what to press at the end of a pass, else the
        output-size formula (forward) or where dout comes from (backward)."""
        if self.replay.position >= self.replay.total:
            return self.end_hint()
        return size_formula(self.example) if self.mode == "forward" else dout_source(self.example)

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
        return (
            "dX as a transposed convolution done: the same dx as the dX phase (PyTorch: "
            "conv_transpose2d); press t to go back, b for the forward pass"
        )
