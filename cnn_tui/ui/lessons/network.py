"""The network lesson: one image through conv → ReLU → max-pool → flatten → linear → softmax-CE,
forward, backward and an SGD or Adam step, for a few training steps, replayed one scalar step
at a time.

The screen runs `cnn_tui.lessons.network.run_training` once per example (every step of every
training step recorded; `o` appends one more) and replays it with
`cnn_tui.lessons.net_replay.NetReplay`: the pipeline line marks the layer at work, the loss
curve the training step, the board shows that stage's arrays (`ArrayBoard`, the conv lesson's
grids), the rule
panel says what the stage computes in general, the step panel the current step with its
numbers and where the stage's input (the upstream gradient, going backward) came from. Moving,
playing and the checks against PyTorch and numerical gradients (in a worker thread: torch is
imported there) come from `SteppingScreen`, as for the conv / pool lesson; the screen's frame, shared with the batch-norm and dropout
lessons, is `cnn_tui.ui.lessons.staged.StagedScreen`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Static

from cnn_tui.errors import UsageError
from cnn_tui.lessons import network
from cnn_tui.lessons.net_replay import NetReplay, loss_curve
from cnn_tui.lessons.replay import GridSpec
from cnn_tui.lessons.settings import NetSettings
from cnn_tui.ui.lessons.net_form import NetFormScreen, NetRequest
from cnn_tui.ui.lessons.staged import WIDE_BOARD, StagedScreen
from cnn_tui.ui.lessons.stepping import (
    LEAVE_BINDINGS,
    MOVE_BINDINGS,
    PLAY_BINDINGS,
    Check,
    jump_bindings,
)

_phase = Binding.Group("phase", compact=True)
_train = Binding.Group("training step", compact=True)


class LossCurve(Static):
    """The loss of every training step reached so far as bars on a log scale (left: before the
    first step; steps not reached yet a dim `·`), the current one in reverse video (a loss of 0
    as `▲`), with a caption: one row on a short terminal, four on a tall one."""

    DEFAULT_CSS = """
    LossCurve {
        height: auto;
        padding: 0 1;
    }
    """

    def show(self, losses: list[float], current: int, caption: str, rows: int) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        width = max(1, min(3, 30 // len(losses)))  # columns per loss: a few steps drawn wide
        lines = loss_curve(losses, rows, width, shown=current + 1)
        start, end = current * width, (current + 1) * width
        for number, line in enumerate(lines):
            last = number == len(lines) - 1
            if number:
                text.append("\n")
            text.append("log L " if last else "      ", style="dim")
            text.append(line[:start], style="cyan")
            marked = line[start:end]
            if last and not marked.strip():
                marked = "▲" * width  # a loss of 0 is still marked
            text.append(marked, style="bold yellow reverse" if last else "bold yellow")
            text.append(line[end:], style="dim")
            if last:
                text.append(f"  {caption}")
        self.update(text)


class NetworkScreen(StagedScreen):
    """Step through a whole tiny network: forward, loss, backward, one SGD step."""

    op = "net"  # the notation legend of the `?` page

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("P", "prev_phase", "previous layer / phase", key_display="P", group=_phase),
        Binding("p", "next_phase", "next layer / phase", key_display="p", group=_phase),
        Binding("b", "next_pass", "pass"),
        Binding("T", "other_step(-1)", "previous training step", key_display="T", group=_train),
        Binding("t", "other_step(1)", "next training step", key_display="t", group=_train),
        # `o`, not `n`: `n` is the image of a batch in the conv / pool and batch-norm lessons
        Binding("o", "train_more", "one more step"),
        *PLAY_BINDINGS,
        *jump_bindings("layer start", "layer end"),
        Binding("f", "cycle('f')", "filter"),
        Binding("e", "edit", "edit"),
        *LEAVE_BINDINGS,
    ]

    # at 80 columns the footer keeps two lines: these keys (in `?`) go first
    footer_optional: ClassVar[tuple[str, ...]] = (
        "jump",
        "app.quit",
        "speed",
        "cycle",
        "other_step",
        "next_cell",
    )

    prefix = "net"
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

    def compose_extra(self) -> Iterable[Widget]:
        return (LossCurve(id="net-curve"),)

    # ----------------------------------------------------------------- state

    def _compute(self) -> None:
        """Run the example's training steps, recording every stage of each."""
        self.training = network.run_training(self.example)
        self.model = NetReplay(self.training)

    def grid_specs(self) -> list[GridSpec]:
        return self.model.grid_specs(self.view, every_filter=self.wide)

    def redraw_extra(self) -> None:
        model = self.model
        rows = 4 if self.app.size.height >= WIDE_BOARD[1] else 1
        self.query_one("#net-curve", LossCurve).show(
            model.training.losses, model.curve_index(), model.curve_label(), rows
        )

    @property
    def example_label(self) -> str:
        """The example as the status line names it: "net-vertical-edge", "mine (edited)"."""
        return self.example.status_label

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle" and self.wide:
            return False  # every filter is on the board already
        if action == "other_step":
            return self.model.training.steps > 1  # one training step: nothing to go to
        return super().check_action(action, parameters)

    def action_other_step(self, delta: int) -> None:
        self._move(self.model.other_step, delta)

    def action_train_more(self) -> None:
        """One more training step, appended live; the lesson moves to its first step and the
        checks run again over every step."""
        self._stop()
        try:
            self.model.extend()
        except UsageError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.refresh_bindings()  # t / T: there is another training step now
        self._moved()
        self._token += 1  # the running checks covered fewer steps
        self._start_checks()

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
        example, training = self.example, self.model.training
        run, steps = training.runs[0], training.steps
        optimizer = "SGD" if example.optimizer == "sgd" else "Adam"
        over = "" if steps == 1 else f", {steps} steps"

        def gradient() -> str:
            check = network.gradient_check(example, run)
            verdict = "✓" if check.passed() else "✗ too large"
            return f"finite differences: {check.max_error:.1e} {verdict}"

        def torch() -> str:
            difference = network.compare_with_torch(example, training)
            verdict = "✓" if difference < 1e-9 else "✗ differs"
            return f"PyTorch ({optimizer}{over}): |Δ| {difference:.1e} {verdict}"

        return [("grad", gradient), ("torch", torch)]
