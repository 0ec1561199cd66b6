"""The network lesson: one image through conv → ReLU → max-pool → flatten → linear → softmax-CE,
forward, backward and one SGD step, replayed one scalar step at a time.

The screen runs `cnn_tui.lessons.network.run_network` once per example (every step recorded)
and replays it with `cnn_tui.lessons.net_replay.NetReplay`: the pipeline line marks the layer
at work, the board shows that stage's arrays (`ArrayBoard`, the conv lesson's grids), the rule
panel says what the stage computes in general, the step panel the current step with its
numbers and where the stage's input (the upstream gradient, going backward) came from. Moving,
playing and the checks against PyTorch and numerical gradients (in a worker thread: torch is
imported there) come from `SteppingScreen`, as for the conv / pool lesson.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Header, Static

from cnn_tui.lessons import network
from cnn_tui.lessons.net_replay import NetReplay
from cnn_tui.lessons.settings import NetSettings
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.net_form import NetFormScreen, NetRequest
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus
from cnn_tui.ui.lessons.stepping import (
    LEAVE_BINDINGS,
    MOVE_BINDINGS,
    PLAY_BINDINGS,
    Check,
    SteppingScreen,
    jump_bindings,
)

_phase = Binding.Group("phase", compact=True)


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


class NetworkScreen(SteppingScreen):
    """Step through a whole tiny network: forward, loss, backward, one SGD step."""

    op = "net"  # the notation legend of the `?` page

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("P", "prev_phase", "previous layer / phase", key_display="P", group=_phase),
        Binding("p", "next_phase", "next layer / phase", key_display="p", group=_phase),
        Binding("b", "next_pass", "pass"),
        *PLAY_BINDINGS,
        *jump_bindings("layer start", "layer end"),
        Binding("f", "cycle('f')", "filter"),
        Binding("e", "edit", "edit"),
        *LEAVE_BINDINGS,
    ]

    board_id = "net-board"
    scroll_id = "net-board-scroll"
    check_id = "net-check"

    model: NetReplay

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(run_checks=run_checks, name=name, id=id)
        self.params: dict[str, Any] = dict(params or {})
        self.overrides: dict[str, np.ndarray] = {}
        self.example = network.make_net_example(self.params, self.overrides)
        self.view = {"f": 0}
        self._compute()

    @classmethod
    def from_settings(cls, settings: NetSettings) -> NetworkScreen:
        """The lesson of `cnn-tui net` with the settings its flags gave."""
        return cls(settings.params())

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

    def _compute(self) -> None:
        """Run the network once for the example, recording every stage."""
        self.run = network.run_network(self.example)
        self.model = NetReplay(self.run)

    def _redraw(self) -> None:
        model = self.model
        board = self.query_one("#net-board", ArrayBoard)
        board.show(model.grid_specs(self.view, every_filter=self.every_filter))
        self.query_one("#net-status", StepStatus).show(model.status_parts(self.speed), self.playing)
        self.query_one("#net-pipeline", NetPipeline).show(*model.pipeline())
        rule, source = model.rule_lines()
        self.query_one("#net-rule", RulePanel).show(rule)
        self.query_one("#net-step", StepPanel).show(model.step_lines(), source)
        self._follow_step()

    @property
    def every_filter(self) -> bool:
        """Whether the board shows every filter's maps side by side (a large terminal)."""
        width, height = self.app.size
        return width >= 110 and height >= 34

    def on_resize(self) -> None:
        self.refresh_bindings()  # the filter key only matters when one filter is shown
        self._redraw()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle" and self.every_filter:
            return False  # every filter is on the board already
        return super().check_action(action, parameters)

    def action_prev_phase(self) -> None:
        self._move(self.model.prev_phase)

    def action_next_pass(self) -> None:
        self._move(self.model.next_pass)

    def action_edit(self) -> None:
        self._stop()
        self.app.push_screen(NetFormScreen(self.example, self.params, self.overrides), self._edited)

    def _edited(self, request: NetRequest | None) -> None:
        if request is None:
            return
        self.params = dict(request.params)
        self.overrides = dict(request.overrides)
        self._restart(request.example)

    # ----------------------------------------------------------------- checks

    def checks(self) -> list[Check]:
        example, run = self.example, self.run

        def gradient() -> str:
            check = network.gradient_check(example, run)
            verdict = "✓" if check.passed() else "✗ too large"
            return f"finite differences: {check.max_error:.1e} {verdict}"

        def torch() -> str:
            difference = network.compare_with_torch(example, run)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            return f"PyTorch (autograd, SGD): |Δ| {difference:.1e} {verdict}"

        return [("grad", gradient), ("torch", torch)]
