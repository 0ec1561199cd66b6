"""The network lesson: one image through conv → ReLU → max-pool → flatten → linear → softmax-CE,
forward, backward and one SGD step, replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.network.run_network` once per example (every step recorded)
and replays it with `cnn_tui.lessons.net_replay.NetReplay`: the pipeline line marks the layer
at work, the board shows that stage's arrays (`ArrayBoard`, the conv lesson's grids), the rule
panel says what the stage computes in general, the step panel the current step with its
numbers and where the stage's input (the upstream gradient, going backward) came from. Checks
against PyTorch and numerical gradients run in a worker thread (torch is imported there).
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui.lessons import network
from cnn_tui.lessons.net_replay import NetReplay
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.net_form import NetFormScreen, NetRequest
from cnn_tui.ui.lessons.screen import _MAX_TICKS_PER_SECOND, DEFAULT_SPEED, SPEEDS
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus

_step = Binding.Group("step", compact=True)
_cell = Binding.Group("cell", compact=True)
_phase = Binding.Group("phase", compact=True)
_speed = Binding.Group("speed", compact=True)


@dataclass
class NetCheckDone(Message):
    """A check worker finished one check of computation `token`."""

    token: int
    which: str  # "torch" | "grad"
    text: str


class NetPipeline(Static):
    """One line: the network's layers in the order of the pass, the current one marked."""

    DEFAULT_CSS = """
    NetPipeline {
        height: 1;
        padding: 0 1;
    }
    """

    def show(self, direction: str, layers: list[tuple[str, bool]]) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{direction}: ", style="bold")
        for index, (name, current) in enumerate(layers):
            if index:
                text.append(" → ", style="dim")
            if current:
                text.append(f"[{name}]", style="bold reverse")
            else:
                text.append(name)
        self.update(text, layout=False)


class RulePanel(Static):
    """What the current stage computes in general (the chain rule, going backward)."""

    DEFAULT_CSS = """
    RulePanel {
        height: auto;
        padding: 0 1;
        border-top: solid $accent 50%;
    }
    """

    def show(self, rule: str) -> None:
        self.update(Text.assemble(("rule ", "dim"), (rule, "bold")))


class NetworkScreen(Screen):
    """Step through a whole tiny network: forward, loss, backward, one SGD step."""

    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (30, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
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
        Binding("P", "prev_phase", "previous layer / phase", key_display="P", group=_phase),
        Binding("p", "next_phase", "next layer / phase", key_display="p", group=_phase),
        Binding("b", "next_pass", "pass"),
        Binding("space", "toggle_play", "play", key_display="␣"),
        Binding("minus", "speed(-1)", "slower", key_display="-", group=_speed),
        Binding("plus,equals_sign", "speed(1)", "faster", key_display="+", group=_speed),
        Binding("home,g", "jump('start')", "layer start", key_display="home"),
        Binding("end,G", "jump('end')", "layer end", key_display="end"),
        Binding("f", "cycle_filter", "filter"),
        Binding("e", "edit", "edit"),
        Binding("question_mark,f1", "toggle_keys", "keys", key_display="?"),
        Binding("escape", "app.pop_screen", "home"),
        Binding("ctrl+q", "app.quit", "quit", priority=True),
    ]

    # whether the PyTorch and gradient checks run (tests switch it off for determinism)
    run_checks_default: ClassVar[bool] = True

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.params: dict[str, Any] = dict(params or {})
        self.overrides: dict[str, np.ndarray] = {}
        self.run_checks = self.run_checks_default if run_checks is None else run_checks
        self.example = network.make_net_example(self.params, self.overrides)
        self.view: dict[str, int] = {"f": 0}
        self.playing = False
        self.speed_index = DEFAULT_SPEED
        self._timer: Timer | None = None
        self._token = 0
        self._checks = {"torch": "", "grad": ""}
        self.model = self._compute()

    @classmethod
    def from_args(cls, args: argparse.Namespace | None) -> NetworkScreen:
        """The lesson of `cnn-tui net` with its flags (None: the default example)."""
        return cls(network.net_params_from_args(args) if args is not None else {})

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepStatus(id="net-status")
        yield NetPipeline(id="net-pipeline")
        with VerticalScroll(id="net-board-scroll", can_focus=False):
            yield ArrayBoard(id="net-board")
        yield RulePanel(id="net-rule")
        yield StepPanel(id="net-step")
        yield CheckPanel(id="net-check")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self._redraw()
        self._start_checks()

    # ----------------------------------------------------------------- state

    def _compute(self) -> NetReplay:
        self._token += 1
        self.run = network.run_network(self.example)
        return NetReplay(self.run)

    def _restart(self, example: network.NetExample) -> None:
        self._stop()
        self.example = example
        self.model = self._compute()
        self.view = {"f": 0}
        self.refresh_bindings()
        self._redraw()
        self._start_checks()

    def _redraw(self) -> None:
        model = self.model
        board = self.query_one("#net-board", ArrayBoard)
        board.show(model.grid_specs(self.view, every_filter=self.every_filter))
        self.query_one("#net-status", StepStatus).show(
            model.status_parts(SPEEDS[self.speed_index]), self.playing
        )
        self.query_one("#net-pipeline", NetPipeline).show(*model.pipeline())
        rule, source = model.rule_lines()
        self.query_one("#net-rule", RulePanel).show(rule)
        self.query_one("#net-step", StepPanel).show(model.step_lines(), source)
        self.call_after_refresh(self._scroll_to_step)

    def _scroll_to_step(self) -> None:
        region = self.query_one("#net-board", ArrayBoard).highlight_region()
        if region is not None:
            self.query_one("#net-board-scroll", VerticalScroll).scroll_to_region(
                region, animate=False, immediate=True
            )

    @property
    def every_filter(self) -> bool:
        """Whether the board shows every filter's maps side by side (a large terminal)."""
        width, height = self.app.size
        return width >= 110 and height >= 34

    def on_resize(self) -> None:
        self.refresh_bindings()  # the filter key only matters when one filter is shown
        self._redraw()

    def _moved(self) -> None:
        self.view.update(self.model.view_indices())
        self._redraw()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_filter":
            return self.example.w1.shape[0] > 1 and not self.every_filter
        return True

    def action_toggle_keys(self) -> None:
        if self.query("HelpPanel"):
            self.app.action_hide_help_panel()
        else:
            self.app.action_show_help_panel()

    def _move(self, how: str, *args: Any) -> None:
        self._stop()
        getattr(self.model, how)(*args)
        self._moved()

    def action_step(self, delta: int) -> None:
        self._move("step", delta)

    def action_next_cell(self) -> None:
        self._move("next_cell")

    def action_prev_cell(self) -> None:
        self._move("prev_cell")

    def action_next_phase(self) -> None:
        self._move("next_phase")

    def action_prev_phase(self) -> None:
        self._move("prev_phase")

    def action_next_pass(self) -> None:
        self._move("next_pass")

    def action_jump(self, where: str) -> None:
        self._move("stage_start" if where == "start" else "stage_end")

    def action_cycle_filter(self) -> None:
        filters = self.example.w1.shape[0]
        self.view["f"] = (self.view.get("f", 0) + 1) % max(filters, 1)
        self._redraw()

    def action_toggle_play(self) -> None:
        if self.playing:
            self._stop()
        else:
            if self.model.position >= self.model.total:
                self.model.seek(0)
            self.playing = True
            self._start_timer()
        self._redraw()

    def action_speed(self, delta: int) -> None:
        self.speed_index = min(max(self.speed_index + delta, 0), len(SPEEDS) - 1)
        if self.playing:
            self._start_timer()
        self._redraw()

    def action_edit(self) -> None:
        self._stop()
        self.app.push_screen(NetFormScreen(self.example, self.params, self.overrides), self._edited)

    def _edited(self, request: NetRequest | None) -> None:
        if request is None:
            return
        self.params = dict(request.params)
        self.overrides = dict(request.overrides)
        self._restart(request.example)

    # ----------------------------------------------------------------- play

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        interval = max(1 / SPEEDS[self.speed_index], 1 / _MAX_TICKS_PER_SECOND)
        self._timer = self.set_interval(interval, self._tick)

    def _tick(self) -> None:
        speed = SPEEDS[self.speed_index]
        per_tick = (
            max(1, round(speed / _MAX_TICKS_PER_SECOND)) if speed > _MAX_TICKS_PER_SECOND else 1
        )
        self.model.step(per_tick)
        if self.model.position >= self.model.total:
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
            "grad": "finite differences: checking…",
        }
        self._show_checks()
        self._run_checks(self.example, self.run, self._token, has_torch)

    @work(thread=True, exclusive=True, exit_on_error=False, group="net-check")
    def _run_checks(self, example: Any, run: Any, token: int, has_torch: bool) -> None:
        worker = get_current_worker()
        check = network.gradient_check(example, run)
        verdict = "✓" if check.passed() else "✗ too large"
        if not worker.is_cancelled:
            text = f"finite differences: {check.max_error:.1e} {verdict}"
            self.post_message(NetCheckDone(token, "grad", text))
        if has_torch and not worker.is_cancelled:
            difference = network.compare_with_torch(example, run)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            text = f"PyTorch (autograd, SGD): |Δ| {difference:.1e} {verdict}"
            self.post_message(NetCheckDone(token, "torch", text))

    @on(NetCheckDone)
    def _check_done(self, message: NetCheckDone) -> None:
        if message.token == self._token:
            self._checks[message.which] = message.text
            self._show_checks()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "net-check" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._checks = {"torch": "check failed", "grad": f"{type(error).__name__}: {error}"}
            self._show_checks()

    def _show_checks(self) -> None:
        self.query_one("#net-check", CheckPanel).show(self._checks["torch"], self._checks["grad"])
