"""The step-through lesson: a naive convolution or pooling replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.naive` once per example with `on_step` recording every step, then
replays those very events (`cnn_tui.lessons.replay.Replay`): the arrays fill in as the steps are applied,
the current step's cells are highlighted, and its arithmetic is spelled out in a docked panel
under the rule it applies (`cnn_tui.lessons.rules`: the chain rule, going backward).
Forward, backward and (conv) the dX pass as a transposed convolution are replays with their
own cursor; `b` and `t` switch between them. Playing and the checks against PyTorch and a
numerical gradient come from `SteppingScreen`.
"""

from __future__ import annotations

import argparse
import gc
from typing import Any, ClassVar

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Header

from cnn_tui.errors import UsageError
from cnn_tui.lessons.args import CONV_MODES, DEFAULTS, LIMITS, POOL_TYPES
from cnn_tui.lessons.replay import (
    Replay,
    build_replays,
    compare_with_torch,
    grid_specs,
    make_example,
    size_formula,
    transposed_replay,
)
from cnn_tui.lessons.rules import dout_source
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.form import LessonFormScreen, LessonRequest
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus
from cnn_tui.ui.lessons.stepping import (
    DEFAULT_SPEED,
    LEAVE_BINDINGS,
    MOVE_BINDINGS,
    PLAY_BINDINGS,
    SPEEDS,
    Check,
    SteppingScreen,
)

__all__ = ["DEFAULT_SPEED", "SPEEDS", "LessonScreen"]


class LessonScreen(SteppingScreen):
    """Step through a naive conv or pool computation, forward and backward."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        *PLAY_BINDINGS,
        Binding("home,g", "jump('start')", "first", key_display="home"),
        Binding("end,G", "jump('end')", "last", key_display="end"),
        Binding("b", "toggle_backward", "fwd/bwd"),
        Binding("t", "toggle_transposed", "transposed"),
        Binding("p", "next_phase", "phase"),
        Binding("m", "toggle_pool", "max/avg"),
        Binding("v", "toggle_conv_mode", "conv/corr"),
        Binding("c", "cycle('c')", "channel"),
        Binding("f", "cycle('f')", "filter"),
        Binding("n", "cycle('n')", "image"),
        Binding("e", "edit", "edit"),
        Binding("r", "reseed", "new seed"),
        *LEAVE_BINDINGS,
    ]

    board_id = "lesson-board"
    scroll_id = "lesson-board-scroll"
    check_id = "lesson-check"

    def __init__(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(run_checks=run_checks, name=name, id=id)
        if op not in DEFAULTS:
            raise ValueError(f"op must be 'conv' or 'pool', got {op!r}")
        self.op = op
        self.params: dict[str, Any] = dict(params or {})
        self.overrides: dict[str, np.ndarray] = {}
        self.example = make_example(op, self.params, self.overrides)
        self.mode = "forward"  # "forward" | "backward" | "transposed"
        self.view: dict[str, int] = {"n": 0, "c": 0, "f": 0}
        self.replays: dict[str, Replay] = {}
        self._compute()

    @classmethod
    def from_args(cls, command: str, args: argparse.Namespace | None) -> LessonScreen:
        """The lesson of `cnn-tui conv|pool` with its flags (None: the default example)."""
        from cnn_tui.lessons.examples import params_from_args

        return cls(command, params_from_args(args) if args is not None else {})

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepStatus(id="lesson-status")
        with VerticalScroll(id="lesson-board-scroll", can_focus=False):
            yield ArrayBoard(id="lesson-board")
        yield StepPanel(id="lesson-step")
        yield CheckPanel(id="lesson-check")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self._redraw()
        self._start_checks()

    # ----------------------------------------------------------------- state

    @property
    def replay(self) -> Replay:
        return self.replays[self.mode]

    @property
    def cursor(self) -> Replay:
        return self.replay

    def _compute(self) -> None:
        """Run the naive loops once for the example, recording both passes."""
        forward, backward = build_replays(self.example)
        self.replays = {"forward": forward, "backward": backward}
        transposed = transposed_replay(self.example)
        if transposed is not None:
            self.replays["transposed"] = transposed
        self._token += 1
        # Tens of thousands of recorded events would make every full garbage collection scan
        # them (100+ ms pauses mid-replay); they hold no reference cycles, so move them out of
        # the collector's sight. Reference counting still frees them with the next example.
        gc.freeze()

    def _restart(self, example: Any) -> None:
        """A new example: recompute, restart both replays, re-run the checks."""
        self._stop()
        self.example = example
        self._compute()
        if self.mode not in self.replays:  # a pool example has no transposed view
            self.mode = "backward"
        self.view = {"n": 0, "c": 0, "f": 0}
        self.refresh_bindings()
        self._redraw()
        self._start_checks()

    def _rebuild(self) -> bool:
        try:
            example = make_example(self.op, self.params, self.overrides)
        except UsageError as exc:
            self.notify(str(exc), title="Cannot change the example", severity="error")
            return False
        self._restart(example)
        return True

    def status_parts(self) -> list[str]:
        replay = self.replay
        phase = replay.phase_at()
        parts = [
            f"{replay.op} · {phase.label}",
            f"step {replay.position} / {replay.total}",
            f"cell {replay.cell_number()} / {replay.cell_count}",
            f"{SPEEDS[self.speed_index]} steps/s",
        ]
        if self.example.flip:
            parts.append("true convolution (kernel rotated 180°)")
        if self.example.name != "random":
            parts.append(f"example {self.example.name}, seed {self.example.seed}")
        else:
            parts.append(f"seed {self.example.seed}")
        return parts

    def info_line(self) -> str:
        """The panel's last line: what to press at the end of a pass, else the output-size
        formula (forward) or where dout comes from (backward)."""
        replay = self.replay
        if replay.position >= replay.total:
            return self._end_hint()
        return size_formula(self.example) if self.mode == "forward" else dout_source(self.example)

    def _end_hint(self) -> str:
        if self.mode == "forward":
            return "forward pass done: press b for the backward pass (p: its phases one by one)"
        if self.mode == "backward":
            if "transposed" in self.replays:
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

    def _redraw(self) -> None:
        replay = self.replay
        specs = grid_specs(replay, self.view, self.example.padding)
        board = self.query_one("#lesson-board", ArrayBoard)
        board.show(specs)
        self.query_one("#lesson-status", StepStatus).show(self.status_parts(), self.playing)
        self.query_one("#lesson-step", StepPanel).show(
            replay.step_lines(), self.info_line(), replay.rule_lines()
        )
        self._follow_step()

    def _moved(self) -> None:
        """After the cursor moved: follow the step's sample/channel/filter, redraw."""
        self.view.update(self.replay.view_indices())
        self._redraw()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the keys that do nothing for this example (they stay out of the footer)."""
        if action == "toggle_pool":
            return self.op == "pool"
        if action == "toggle_conv_mode":
            return self.op == "conv"
        if action == "toggle_transposed":
            return "transposed" in self.replays
        if action == "cycle":
            axis = parameters[0] if parameters else ""
            return self._axis_sizes().get(str(axis), 1) > 1
        return True

    def action_step(self, delta: int) -> None:
        self._stop()
        self.replay.step(delta)
        self._moved()

    def action_next_cell(self) -> None:
        self._stop()
        self.replay.next_cell()
        self._moved()

    def action_prev_cell(self) -> None:
        self._stop()
        self.replay.prev_cell()
        self._moved()

    def action_jump(self, where: str) -> None:
        self._stop()
        self.replay.seek(0 if where == "start" else self.replay.total)
        self._moved()

    def action_toggle_backward(self) -> None:
        self.mode = "forward" if self.mode != "forward" else "backward"
        self._moved()

    def action_toggle_transposed(self) -> None:
        """The dX pass again, as a transposed convolution (conv only), and back."""
        if "transposed" not in self.replays:
            return
        self._stop()
        self.mode = "backward" if self.mode == "transposed" else "transposed"
        self._moved()

    def action_next_phase(self) -> None:
        """forward → db → dW → dX → dX as a transposed conv → forward (pooling: forward ↔ dX)."""
        self._stop()
        if self.mode == "forward":
            self.mode = "backward"
            self.replay.seek(self.replay.phases[0].start + 1)
        elif self.mode == "transposed":
            self.mode = "forward"
        else:
            phases = self.replay.phases
            here = self.replay.phase_at()
            if self.replay.position > 0 and here == phases[-1]:
                self.mode = "transposed" if "transposed" in self.replays else "forward"
                if self.mode == "transposed":
                    self.replay.seek(max(self.replay.position, 1))
            else:
                self.replay.next_phase()
        self._moved()

    def action_toggle_pool(self) -> None:
        if self.op != "pool":
            return
        current = self.example.pool_type or POOL_TYPES[0]
        following = (POOL_TYPES.index(current) + 1) % len(POOL_TYPES)
        self.params["pool_type"] = POOL_TYPES[following]
        if not self._rebuild():
            self.params["pool_type"] = current

    def action_toggle_conv_mode(self) -> None:
        """Cross-correlation (PyTorch's conv2d) ↔ true convolution (the kernel rotated)."""
        if self.op != "conv":
            return
        current = self.example.conv_mode
        self.params["conv_mode"] = CONV_MODES[1 - CONV_MODES.index(current)]
        if not self._rebuild():
            self.params["conv_mode"] = current

    def _axis_sizes(self) -> dict[str, int]:
        """Images n, channels c and filters f of the example (the views `c`, `f`, `n` cycle)."""
        n, c = self.example.x.shape[:2]
        return {"n": n, "c": c, "f": self.example.w.shape[0] if self.example.w is not None else 1}

    def action_cycle(self, axis: str) -> None:
        sizes = self._axis_sizes()
        self.view[axis] = (self.view.get(axis, 0) + 1) % max(sizes.get(axis, 1), 1)
        self._redraw()

    def action_reseed(self) -> None:
        """New random values: the next seed, and no edited arrays."""
        previous = dict(self.params), dict(self.overrides)
        self.params["seed"] = (self.example.seed + 1) % (LIMITS.max_seed + 1)
        self.overrides = {}
        if not self._rebuild():
            self.params, self.overrides = previous

    def action_edit(self) -> None:
        self._stop()
        self.app.push_screen(
            LessonFormScreen(self.op, self.example, self.params, self.overrides), self._edited
        )

    def _edited(self, request: LessonRequest | None) -> None:
        if request is None:
            return
        self.params = dict(request.params)
        self.overrides = dict(request.overrides)
        self.mode = "forward"
        self._restart(request.example)

    # ----------------------------------------------------------------- checks

    def checks(self) -> list[Check]:
        example = self.example

        def gradient() -> str:
            check = example.gradient_check()
            verdict = "✓" if check.passed() else "✗ too large"
            return f"finite differences: rel. error {check.max_error:.1e} {verdict}"

        def torch() -> str:
            difference = compare_with_torch(example)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            return f"PyTorch: max |Δ| {difference:.1e} {verdict}"

        return [("grad", gradient), ("torch", torch)]
