"""The step-through lesson: a naive convolution or pooling replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.naive` once per example with `on_step` recording every step, then
replays those very events through the UI-free `cnn_tui.lessons.op_replay.OpReplay`: the arrays
fill in as the steps are applied, the current step's cells are highlighted, and its arithmetic
is spelled out in a docked panel under the rule it applies (`cnn_tui.lessons.rules`: the chain
rule, going backward). Forward, backward and (conv) the dX pass as a transposed convolution are
passes with their own cursor; `b` and `t` switch between them. Moving, playing and the checks
against PyTorch and a numerical gradient come from `SteppingScreen`; this screen draws and
changes the example (the edit form, a new seed, max / average pooling, a true convolution).
"""

from __future__ import annotations

import gc
from typing import Any, ClassVar

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Header

from cnn_tui.errors import UsageError
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.replay import Replay, compare_with_torch, make_example
from cnn_tui.lessons.settings import CONV_MODES, DEFAULTS, LIMITS, POOL_TYPES, LessonSettings
from cnn_tui.text import one_line
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
    jump_bindings,
)

__all__ = ["DEFAULT_SPEED", "SPEEDS", "LessonScreen"]


class LessonScreen(SteppingScreen):
    """Step through a naive conv or pool computation, forward and backward."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        *PLAY_BINDINGS,
        *jump_bindings("first", "last"),
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

    model: OpReplay

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
        self.view = {"n": 0, "c": 0, "f": 0}
        self._compute()

    @classmethod
    def from_settings(cls, settings: LessonSettings) -> LessonScreen:
        """The lesson of `cnn-tui conv|pool` with the settings its flags gave."""
        return cls(settings.op, settings.params())

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepStatus(id="lesson-status")
        with VerticalScroll(id="lesson-board-scroll", can_focus=False):
            yield ArrayBoard(id="lesson-board", fit_height=True)
        yield StepPanel(id="lesson-step")
        yield CheckPanel(id="lesson-check")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self._redraw()
        self._start_checks()

    # ----------------------------------------------------------------- state

    @property
    def example_label(self) -> str:
        """The example as the status line names it: "example edge-detect", "seed 3", "edited"."""
        return self.model.example_label

    @property
    def replay(self) -> Replay:
        """The pass on screen."""
        return self.model.replay

    @property
    def replays(self) -> dict[str, Replay]:
        """Every pass of the example: forward, backward and (conv) transposed."""
        return self.model.replays

    def _compute(self, mode: str = "forward", follow: OpReplay | None = None) -> None:
        """Run the naive loops once for the example, recording every pass; show pass `mode`,
        or (`follow`: the model of the example's other variant) every pass where it stood."""
        self.model = OpReplay(self.example, mode)
        if follow is not None:
            self.model.follow(follow)
        # Tens of thousands of recorded events would make every full garbage collection scan
        # them (100+ ms pauses mid-replay); they hold no reference cycles, so move them out of
        # the collector's sight. Reference counting still frees them with the next example.
        gc.freeze()

    def _rebuild(self, *, keep_place: bool = False) -> bool:
        """The example again from the changed params and overrides, in the same pass (with
        `keep_place`, every pass at the same step: a variant of the same loops)."""
        try:
            example = make_example(self.op, self.params, self.overrides)
        except UsageError as exc:
            self.notify(
                one_line(exc), title="Cannot change the example", severity="error", markup=False
            )
            return False
        follow = self.model if keep_place else None
        self._restart(example, mode=self.model.mode, follow=follow)
        return True

    def _redraw(self) -> None:
        model = self.model
        board = self.query_one("#lesson-board", ArrayBoard)
        board.show(model.grid_specs(self.view))
        self.query_one("#lesson-status", StepStatus).show(
            model.status_parts(self.speed), self.playing
        )
        panel = self.query_one("#lesson-step", StepPanel)
        width = panel.content_region.width or self.app.size.width - 2
        rows = 4 if self.app.size.height >= 32 else 2  # what the example is about, at step 0
        panel.show(
            model.step_lines(width, rows), self.info_line(model.info_line()), model.rule_lines()
        )
        self._follow_step()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the keys that do nothing for this example (they stay out of the footer)."""
        if action == "toggle_pool":
            return self.op == "pool"
        if action == "toggle_conv_mode":
            return self.op == "conv"
        if action == "toggle_transposed":
            return self.model.has_transposed
        return super().check_action(action, parameters)

    def action_toggle_backward(self) -> None:
        self.model.toggle_backward()
        self._moved()

    def action_toggle_transposed(self) -> None:
        """The dX pass again, as a transposed convolution (conv only), and back."""
        if not self.model.has_transposed:
            return
        self._move(self.model.toggle_transposed)

    def action_toggle_pool(self) -> None:
        if self.op != "pool":
            return
        current = self.example.pool_type or POOL_TYPES[0]
        following = (POOL_TYPES.index(current) + 1) % len(POOL_TYPES)
        self.params["pool_type"] = POOL_TYPES[following]
        if not self._rebuild(keep_place=True):
            self.params["pool_type"] = current

    def action_toggle_conv_mode(self) -> None:
        """Cross-correlation (PyTorch's conv2d) ↔ true convolution (the kernel rotated)."""
        if self.op != "conv":
            return
        current = self.example.conv_mode
        self.params["conv_mode"] = CONV_MODES[1 - CONV_MODES.index(current)]
        if not self._rebuild(keep_place=True):
            self.params["conv_mode"] = current

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
        self._restart(request.example, mode="forward")

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
