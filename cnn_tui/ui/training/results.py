"""Results of a run that is over (`cnn-tui eval RUN_DIR`, or opened from the runs screen).

The dashboard screen replayed from the run's files: curves, epoch table and log, and the test
results (confusion matrix, per-class metrics, most-confused pairs, sample predictions).

`cnn-tui eval RUN_DIR` recomputes the test metrics from the checkpoint, as `--no-ui` does
(`trainer.evaluate_saved`, in a thread worker; eval.json is written): the stored results are shown,
marked as such, until the recomputed ones replace them, or an error says why they could not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.message import Message
from textual.worker import Worker, WorkerState

from cnn_tui import text
from cnn_tui.ui.training.dashboard import RunScreen
from cnn_tui.ui.training.result_views import MetricsView


@dataclass(frozen=True)
class EvalSettings:
    """What `cnn-tui eval RUN_DIR [--device D]` opens (made by `cnn_tui.commands.evaluate`)."""

    run_dir: Path
    device: str = "auto"
    # --trust-model-code: a run of your own class may run its copy of the code (the command
    # refused it untrusted before the app opened)
    trust_model_code: bool = False


@dataclass
class Recomputed(Message):
    """The test metrics `engine.evaluate_run` recomputed from the checkpoint."""

    report: dict[str, Any]


class ResultsScreen(RunScreen):
    """A finished, stopped or failed run, read once from its directory; with `recompute`, its
    test metrics are recomputed from the checkpoint on `device`."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        recompute: bool = False,
        device: str = "auto",
        trust_model_code: bool = False,
    ) -> None:
        super().__init__(run_dir, live=False)
        self.recompute = recompute
        self.device = device
        self.trust_model_code = trust_model_code
        self.recomputed: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: EvalSettings) -> ResultsScreen:
        """`cnn-tui eval RUN_DIR [--device D]`: the results, recomputed from the checkpoint."""
        return cls(
            settings.run_dir,
            recompute=True,
            device=settings.device,
            trust_model_code=settings.trust_model_code,
        )

    def on_mount(self) -> None:
        # Textual calls every class's on_mount, this one's first, then RunScreen's (so no super()
        # call: it would run twice). RunScreen's disables the results tab, which the note enables:
        # the recomputation starts once both ran.
        if self.trust_model_code:  # (cnn-tui eval RUN --trust-model-code: its Inside tab too)
            from cnn_tui.ui.training import trust

            trust.trust(self.app, self.run_dir)
        if self.recompute and self.run_dir.is_dir():
            self.call_later(self._start_recomputing)

    def _start_recomputing(self) -> None:
        self._note(
            "[b]recomputing[/b] the test metrics from the checkpoint… "
            "[dim](the stored results are shown until then)[/dim]"
        )
        self.recompute_metrics()

    def _note(self, markup: str) -> None:
        self.query_one(MetricsView).set_note(markup)
        tabs = self.query_one("#dash-tabs")
        tabs.enable_tab("results")

    @work(thread=True, exclusive=True, exit_on_error=False, group="recompute")
    def recompute_metrics(self) -> None:
        """Evaluate the checkpoint on the test set (imports torch, loads the data) and save eval.json."""
        from cnn_tui.training.loop.trainer import evaluate_saved

        report = evaluate_saved(self.run_dir, self.device, self.trust_model_code)
        self.post_message(Recomputed(report))

    @on(Recomputed)
    def _recomputed(self, message: Recomputed) -> None:
        report = message.report
        self.recomputed = report
        merged = {**(self.summary or {}), **report}
        self.query_one(MetricsView).show(merged)
        where = f"epoch {report.get('checkpoint_epoch')}"
        if report.get("checkpoint_batch"):
            where += f" + {report['checkpoint_batch']} batches"
        weights = report.get("weights")
        self._note(
            f"[b]recomputed[/b] from {text.markup(weights)} ({text.markup(where)}) on "
            f"{text.markup(report.get('device'))} in {text.duration(report.get('seconds', 0))} "
            "· saved to eval.json"
        )
        self._log(f"test metrics recomputed from {weights}")
        self.query_one("#dash-tabs").active = "results"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # (RunScreen's handler, for its own workers, runs after this one: Textual calls both)
        if event.worker.group == "recompute" and event.state == WorkerState.ERROR:
            error = event.worker.error
            reason = str(error) or repr(error)
            self._note(
                f"[b $text-error]✗ cannot recompute the test metrics:[/] {text.markup(reason)}"
            )
            self._log(f"cannot recompute the test metrics: {reason}")
