"""The step-through lesson: a naive convolution or pooling replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.naive` once per example with `on_step` recording every step, then
replays those very events (`cnn_tui.lessons.replay.Replay`): the arrays fill in as the steps are applied,
the current step's cells are highlighted, and its arithmetic is spelled out in a docked panel.
Forward and backward are two replays with their own cursor; `b` switches between them. Checks
against PyTorch and a numerical gradient run in a worker thread (torch is imported there, never
at start-up).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui.errors import UsageError
from cnn_tui.lessons.args import DEFAULTS, LIMITS, POOL_TYPES
from cnn_tui.lessons.replay import (
    Replay,
    build_replays,
    compare_with_torch,
    grid_specs,
    make_example,
    size_formula,
)
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.form import LessonFormScreen, LessonRequest
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus

# steps per second while playing
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
DEFAULT_SPEED = 2  # index into SPEEDS: 5 steps/s
_MAX_TICKS_PER_SECOND = 30

_step = Binding.Group("step", compact=True)
_cell = Binding.Group("cell", compact=True)
_speed = Binding.Group("speed", compact=True)


@dataclass
class CheckDone(Message):
    """A check worker finished one check of computation `token`."""

    token: int
    which: str  # "torch" | "grad"
    text: str


class LessonScreen(Screen):
    """Step through a naive conv or pool computation, forward and backward."""

    # short terminals (80×24) drop the header to leave room for the arrays
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (30, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
        # the footer shows a group's description ("←→ step"), the keys panel each description
        Binding("left,h", "step(-1)", "step back", key_display="←", group=_step),
        Binding("right,l", "step(1)", "step forward", key_display="→", group=_step),
        Binding(
            "left_square_bracket,shift+left",
            "prev_cell",
            "previous output cell",
            key_display="[",
            group=_cell,
        ),
        Binding(
            "right_square_bracket,shift+right",
            "next_cell",
            "finish the output cell",
            key_display="]",
            group=_cell,
        ),
        Binding("space", "toggle_play", "play", key_display="␣"),
        Binding("minus", "speed(-1)", "slower", key_display="-", group=_speed),
        Binding("plus,equals_sign", "speed(1)", "faster", key_display="+", group=_speed),
        Binding("home,g", "jump('start')", "first", key_display="home"),
        Binding("end,G", "jump('end')", "last", key_display="end"),
        Binding("b", "toggle_backward", "fwd/bwd"),
        Binding("p", "next_phase", "phase"),
        Binding("m", "toggle_pool", "max/avg"),
        Binding("c", "cycle('c')", "channel"),
        Binding("f", "cycle('f')", "filter"),
        Binding("n", "cycle('n')", "image"),
        Binding("e", "edit", "edit"),
        Binding("r", "reseed", "new seed"),
        Binding("question_mark,f1", "toggle_keys", "keys", key_display="?"),
        Binding("escape", "app.pop_screen", "home"),
        Binding("ctrl+q", "app.quit", "quit", priority=True),
    ]

    # whether the PyTorch and gradient checks run (tests switch it off for determinism)
    run_checks_default: ClassVar[bool] = True

    def __init__(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        if op not in DEFAULTS:
            raise ValueError(f"op must be 'conv' or 'pool', got {op!r}")
        self.op = op
        self.params: dict[str, Any] = dict(params or {})
        self.overrides: dict[str, np.ndarray] = {}
        self.run_checks = self.run_checks_default if run_checks is None else run_checks
        self.example = make_example(op, self.params, self.overrides)
        self.mode = "forward"
        self.view: dict[str, int] = {"n": 0, "c": 0, "f": 0}
        self.playing = False
        self.speed_index = DEFAULT_SPEED
        self._timer: Timer | None = None
        self._token = 0
        self._checks = {"torch": "", "grad": ""}
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

    def _compute(self) -> None:
        """Run the naive loops once for the example, recording both passes."""
        forward, backward = build_replays(self.example)
        self.replays = {"forward": forward, "backward": backward}
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
        if self.example.name != "random":
            parts.append(f"example {self.example.name}, seed {self.example.seed}")
        else:
            parts.append(f"seed {self.example.seed}")
        return parts

    def _redraw(self) -> None:
        replay = self.replay
        specs = grid_specs(replay, self.view, self.example.padding)
        board = self.query_one("#lesson-board", ArrayBoard)
        board.show(specs)
        self.query_one("#lesson-status", StepStatus).show(self.status_parts(), self.playing)
        self.query_one("#lesson-step", StepPanel).show(
            replay.step_lines(), size_formula(self.example)
        )
        self.call_after_refresh(self._scroll_to_step)

    def _scroll_to_step(self) -> None:
        board = self.query_one("#lesson-board", ArrayBoard)
        region = board.highlight_region()
        if region is not None:
            self.query_one("#lesson-board-scroll", VerticalScroll).scroll_to_region(
                region, animate=False, immediate=True
            )

    def _moved(self) -> None:
        """After the cursor moved: follow the step's sample/channel/filter, redraw."""
        self.view.update(self.replay.view_indices())
        self._redraw()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the keys that do nothing for this example (they stay out of the footer)."""
        if action == "toggle_pool":
            return self.op == "pool"
        if action == "cycle":
            axis = parameters[0] if parameters else ""
            return self._axis_sizes().get(str(axis), 1) > 1
        return True

    def action_toggle_keys(self) -> None:
        """Show or hide Textual's keys panel (every key with its description)."""
        if self.query("HelpPanel"):
            self.app.action_hide_help_panel()
        else:
            self.app.action_show_help_panel()

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
        self.mode = "backward" if self.mode == "forward" else "forward"
        self._moved()

    def action_next_phase(self) -> None:
        """forward → db → dW → dX → forward (pooling: forward ↔ dX)."""
        self._stop()
        if self.mode == "forward":
            self.mode = "backward"
            self.replay.seek(self.replay.phases[0].start + 1)
        else:
            phases = self.replay.phases
            here = self.replay.phase_at()
            if self.replay.position > 0 and here == phases[-1]:
                self.mode = "forward"
            else:
                self.replay.next_phase()
        self._moved()

    def action_toggle_play(self) -> None:
        if self.playing:
            self._stop()
        else:
            if self.replay.position >= self.replay.total:
                self.replay.seek(0)
            self.playing = True
            self._start_timer()
        self._redraw()

    def action_speed(self, delta: int) -> None:
        self.speed_index = min(max(self.speed_index + delta, 0), len(SPEEDS) - 1)
        if self.playing:
            self._start_timer()
        self._redraw()

    def action_toggle_pool(self) -> None:
        if self.op != "pool":
            return
        current = self.example.pool_type or POOL_TYPES[0]
        following = (POOL_TYPES.index(current) + 1) % len(POOL_TYPES)
        self.params["pool_type"] = POOL_TYPES[following]
        if not self._rebuild():
            self.params["pool_type"] = current

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

    # ----------------------------------------------------------------- play

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        speed = SPEEDS[self.speed_index]
        interval = max(1 / speed, 1 / _MAX_TICKS_PER_SECOND)
        self._timer = self.set_interval(interval, self._tick)

    def _tick(self) -> None:
        speed = SPEEDS[self.speed_index]
        per_tick = (
            max(1, round(speed / _MAX_TICKS_PER_SECOND)) if speed > _MAX_TICKS_PER_SECOND else 1
        )
        self.replay.step(per_tick)
        if self.replay.position >= self.replay.total:
            self._stop()
        self._moved()

    def _stop(self) -> None:
        self.playing = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    # ----------------------------------------------------------------- checks

    def _start_checks(self) -> None:
        if not self.run_checks:
            self._checks = {"torch": "PyTorch comparison off", "grad": "gradient check off"}
            self._show_checks()
            return
        has_torch = importlib.util.find_spec("torch") is not None
        self._checks = {
            "torch": "PyTorch: checking…" if has_torch else "PyTorch: not installed, skipped",
            "grad": "numerical gradient: checking…",
        }
        self._show_checks()
        self._run_checks(self.example, self._token, has_torch)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lesson-check")
    def _run_checks(self, example: Any, token: int, has_torch: bool) -> None:
        worker = get_current_worker()
        check = example.gradient_check()
        verdict = "✓" if check.passed() else "✗ too large"
        if not worker.is_cancelled:
            text = f"numerical gradient: max rel. error {check.max_error:.1e} {verdict}"
            self.post_message(CheckDone(token, "grad", text))
        if has_torch and not worker.is_cancelled:
            difference = compare_with_torch(example)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            self.post_message(
                CheckDone(token, "torch", f"PyTorch: max |Δ| {difference:.1e} {verdict}")
            )

    @on(CheckDone)
    def _check_done(self, message: CheckDone) -> None:
        if message.token == self._token:
            self._checks[message.which] = message.text
            self._show_checks()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "lesson-check" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._checks = {"torch": "check failed", "grad": f"{type(error).__name__}: {error}"}
            self._show_checks()

    def _show_checks(self) -> None:
        self.query_one("#lesson-check", CheckPanel).show(
            self._checks["torch"], self._checks["grad"]
        )
