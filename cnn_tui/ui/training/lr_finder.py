"""The LR finder modal of the training form: the range test's curve and its suggestion.

"Find LR" in the form opens it with the form's settings. A thread worker runs
`cnn_tui.training.tools.lr_find.range_test` (the same test as `cnn-tui lr-find`, on a model and optimizer
of its own: the run started later builds its own), posting a `LRFindStep` per batch; the chart (a
PlotextPlot, drawn by `lr_find.draw_curve`) is redrawn at most every half second, then once more
with the suggestions as vertical lines. "Use it" dismisses with the suggested learning rate (the
form puts it into its lr field), "Use …" with the other candidate; escape or Close cancels the test
at the next batch.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from cnn_tui import text
from cnn_tui.training.config import TrainConfig
from cnn_tui.ui.training.messages import LRFindDone, LRFindStep

REDRAW_S = 0.5


def rounded_lr(lr: float) -> float:
    """A learning rate as the form shows it: two significant digits (0.0054623 -> 0.0055)."""
    return float(f"{lr:.2g}")


class LRFinderScreen(ModalScreen[float | None]):
    """Run the range test for `config` and offer its suggestion; dismisses with the lr or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("u", "use('suggested')", "Use it"),
    ]

    def __init__(self, config: TrainConfig, *, steps: int | None = None) -> None:
        super().__init__(classes="train-modal")
        self.config = config
        self.steps = steps
        self.stop = threading.Event()
        self.curve: Any = None  # lr_find.Curve, once done
        self.points: tuple[list[float], list[float]] = ([], [])
        self._drawn_at = 0.0

    def compose(self) -> ComposeResult:
        with Vertical(classes="train-dialog", id="lr-dialog"):
            yield Label(
                f"Find a learning rate: {self.config.model} on {self.config.dataset}, "
                f"{self.config.optimizer}, batch {self.config.batch_size}",
                classes="train-dialog-title",
            )
            yield Static("starting…", id="lr-status")
            yield ProgressBar(id="lr-progress", show_eta=False)
            yield PlotextPlot(id="lr-chart")
            yield Static("", id="lr-result")
            with Horizontal(classes="train-dialog-buttons"):
                yield Button("Use it", id="lr-use", variant="primary", disabled=True)
                yield Button("Use the other", id="lr-use-other", disabled=True)
                yield Button("Close", id="lr-close")

    def on_mount(self) -> None:
        self.query_one("#lr-close", Button).focus()
        self._draw()
        self.run_test()

    def on_unmount(self) -> None:
        self.stop.set()  # closed or the app quits: the worker thread ends at the next batch

    # --- the test, in a thread -----------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="lr-find")
    def run_test(self) -> None:
        from cnn_tui.errors import RunError, UsageError
        from cnn_tui.training.tools import lr_find

        def on_step(step: int, steps: int, lr: float, loss: float, smoothed: float) -> None:
            self.post_message(LRFindStep(step, steps, lr, smoothed))

        def on_status(text: str) -> None:
            self.post_message(LRFindStep(status=text))

        try:
            curve = lr_find.range_test(
                self.config, steps=self.steps, on_step=on_step, stop=self.stop, on_status=on_status
            )
        except (RunError, UsageError, OSError) as exc:  # missing data, a bad device, no memory
            self.post_message(LRFindDone(error=str(exc)))
            return
        self.post_message(LRFindDone(curve))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "lr-find" and event.state == WorkerState.ERROR:
            self._show_error(f"{type(event.worker.error).__name__}: {event.worker.error}")

    @on(LRFindStep)
    def _on_step(self, message: LRFindStep) -> None:
        status = self.query_one("#lr-status", Static)
        if message.status:
            status.update(f"{text.markup(message.status)}…")
            return
        self.query_one(ProgressBar).update(total=message.steps, progress=message.step)
        status.update(
            f"step {message.step}/{message.steps} · lr {text.number(message.lr, '.2e')} · "
            f"smoothed loss {text.number(message.smoothed, '.4f')}"
        )
        xs, ys = self.points
        xs.append(message.lr)
        ys.append(message.smoothed)
        if time.monotonic() - self._drawn_at >= REDRAW_S:
            self._draw()

    @on(LRFindDone)
    def _on_done(self, message: LRFindDone) -> None:
        if message.error:
            self._show_error(message.error)
            return
        from cnn_tui.training.tools import lr_find

        curve = self.curve = message.curve
        self.query_one(ProgressBar).update(total=curve.steps, progress=len(curve.lrs))
        ended = "all steps done" if curve.stopped == "steps" else curve.message
        self.query_one("#lr-status", Static).update(
            f"{len(curve.lrs)} of {curve.steps} steps on {text.markup(curve.device)} in "
            f"{text.duration(curve.seconds)}: {text.markup(ended)}"
        )
        self._draw()
        suggestion = curve.suggestion
        result = self.query_one("#lr-result", Static)
        if suggestion is None:
            result.update("[b $text-error]no suggestion: too few steps with a finite loss[/]")
            return
        other, other_rule = suggestion.other_lr, suggestion.other_rule
        other_text = (
            text.number(other, ".2e") if other is not None else "none (the loss never falls)"
        )
        result.update(
            f"[b]suggested lr {text.number(suggestion.lr, '.2e')}[/b] "
            f"({lr_find.RULES[suggestion.rule]}) · {lr_find.RULES[other_rule]}: {other_text} · "
            f"lowest smoothed loss {text.number(suggestion.minimum_loss, '.4f')} at "
            f"{text.number(suggestion.minimum_lr, '.2e')} · the form's lr: {self.config.lr:g}"
        )
        use = self.query_one("#lr-use", Button)
        use.label = f"Use it ({rounded_lr(suggestion.lr):g})"
        use.disabled = False
        if other is not None:
            button = self.query_one("#lr-use-other", Button)
            button.label = f"Use {lr_find.RULES[other_rule]} ({rounded_lr(other):g})"
            button.disabled = False
        for button in self.query(Button):  # (a new label does not resize a button by itself)
            button.refresh(layout=True)
        use.focus()

    def _show_error(self, message: str) -> None:
        self.query_one("#lr-status", Static).update("the range test could not run")
        self.query_one("#lr-result", Static).update(f"[b $text-error]✗[/] {text.markup(message)}")

    # --- the chart -----------------------------------------------------------------------------

    def _colour(self, variable: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable) or self.app.theme_variables["foreground"]
        return Color.parse(value).rgb

    def _draw(self) -> None:
        from cnn_tui.training.tools import lr_find

        self._drawn_at = time.monotonic()
        chart = self.query_one(PlotextPlot)
        curve = self.curve
        if curve is None:  # still running: the points so far
            curve = lr_find.Curve(self.steps or 0, lr_find.START_LR, lr_find.END_LR)
            curve.lrs, curve.smoothed = list(self.points[0]), list(self.points[1])
            curve.steps = max(curve.steps, len(curve.lrs))
        colours = {
            "curve": self._colour("primary"),
            "suggested": self._colour("success"),
            "other": self._colour("warning"),
        }
        lr_find.draw_curve(chart.plt, curve, colors=colours, suggestions=self.curve is not None)
        chart.refresh()

    # --- answers -------------------------------------------------------------------------------

    @on(Button.Pressed, "#lr-use")
    def _use_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_use("suggested")

    @on(Button.Pressed, "#lr-use-other")
    def _use_other_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_use("other")

    @on(Button.Pressed, "#lr-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_use(self, which: str) -> None:
        suggestion = self.curve.suggestion if self.curve is not None else None
        if suggestion is None:
            return
        lr = suggestion.other_lr if which == "other" else suggestion.lr
        if lr is not None:
            self.dismiss(rounded_lr(lr))

    def action_close(self) -> None:
        self.stop.set()  # the worker ends at the next batch
        self.dismiss(None)
