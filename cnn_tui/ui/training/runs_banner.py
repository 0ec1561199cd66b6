"""A line for the home screen: runs still training (e.g. started before the terminal closed), in
any of the run folders (`--runs-dir`, repeated or a glob).

It looks every three seconds while the home screen is shown (`polling.ShownPoller`)."""

from __future__ import annotations

from textual import on, work
from textual.widgets import Static
from textual.worker import get_current_worker

from cnn_tui import text
from cnn_tui.training.runs.state import RunState
from cnn_tui.ui.training.messages import RunsListed
from cnn_tui.ui.training.polling import ShownPoller

REFRESH_S = 3.0


class RunsInProgress(Static):
    """Hidden while no run is training; otherwise names them and says how to follow them."""

    def on_mount(self) -> None:
        self.display = False
        self.check_runs()
        self.poller = ShownPoller(self, REFRESH_S, self.check_runs)
        self.poller.start()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-banner")
    def check_runs(self) -> None:
        from cnn_tui.training.runs.store import list_runs_in

        listing = list_runs_in(self.app.run_folders.paths)  # (every --runs-dir)
        runs = [run for run in listing.runs if run.status == RunState.RUNNING]
        if not get_current_worker().is_cancelled:
            self.post_message(RunsListed(runs))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        message.stop()
        runs = message.runs
        self.display = bool(runs)
        self.screen.set_class(bool(runs), "-runs-in-progress")  # (a short home screen makes room)
        if runs:
            names = ", ".join(text.markup(run.name) for run in runs[:2])
            names += " …" if len(runs) > 2 else ""
            count = len(runs)
            self.update(
                f"{RunState.RUNNING.look.mark} {count} run{'s' * (count != 1)} in progress: "
                f"[b]{names}[/b] — "
                "press [b]r[/b] and open it to follow it live"
            )
