"""The training dashboard: follows a run's files live, then shows its results.

The run trains in its own process (`cnn_tui.training.runs.launcher`); this screen only reads what it writes. A
thread worker tails `metrics.jsonl` and `status.json` four times a second and posts one
`RunEvents` message per poll; the screen folds them into a bounded `RunHistory` and updates the
progress bar, the charts (redrawn at most twice a second), the epoch table and the log. When the
run is over the worker loads summary.json and samples.npz, and the Results and Samples tabs open.

`ResultsScreen` (results.py) is the same screen for a run that is already over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Header,
    ProgressBar,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui import catalog, text
from cnn_tui.training.runs import state as run_state
from cnn_tui.training.runs.state import RunState
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training.charts import MetricChart, Series
from cnn_tui.ui.training.console import ConsoleLog, ConsoleView
from cnn_tui.ui.training.dialogs import confirm
from cnn_tui.ui.training.epochs import EpochTable
from cnn_tui.ui.training.gpu_panel import GpuPanel
from cnn_tui.ui.training.history import RunHistory
from cnn_tui.ui.training.inside import InsideView, inside_available
from cnn_tui.ui.training.messages import RunDamaged, RunEnded, RunEvents, RunResultsLoaded
from cnn_tui.ui.training.metrics_grid import MetricsGrid
from cnn_tui.ui.training.result_views import ConfusionTable, MetricsView, pack_groups
from cnn_tui.ui.training.samples import SampleGrid
from cnn_tui.ui.training.system_pane import SystemPane
from cnn_tui.ui.training.throughput import ThroughputLine

COMPACT_WIDTH, COMPACT_HEIGHT = 110, 34
RESULTS_READY = "Results (7) ready"  # the run ended while the user read another tab
TABS = Binding.Group("Tabs", compact=True)  # the footer shows "1-8 Tabs", "1-9 Tabs" with Inside


class RunScreen(Screen):
    """Dashboard of one run: live (`live=True`, following the trainer) or replayed from files."""

    # toasts at the top right, over the status lines they repeat, never over the results below
    # (at 80×24 a bottom toast hid the confusion matrix's right half)
    DEFAULT_CSS = """
    RunScreen ToastRack { dock: top; align: right top; margin: 1 0 0 0; }
    """
    FINISHED_TOAST_S = 4  # "run … finished": the status line says it on after the toast goes

    HELP_TITLE = "keys of the run screen"
    HELP_NOTE = (
        "Results and Samples open when the run has test results, Inside (9) when it has a "
        "checkpoint to look into. Console (6) shows what the trainer printed (its output.log): "
        "scrolled up it stays put, End follows the output again."
    )

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("s", "stop", "Stop run"),
        Binding("n", "toggle_counts", "Counts/%"),
        Binding("z", "toggle_zoom", "Image size"),
        # 1 Charts · 2 Metrics · 3 System · 4 Epochs · 5 Log · 6 Console · 7 Results · 8 Samples ·
        # 9 Inside (the tabs' order on screen)
        Binding("1", "tab('charts')", "Charts", group=TABS),
        Binding("2", "tab('metrics')", "Metrics", group=TABS),
        Binding("3", "tab('system')", "System", group=TABS),
        Binding("4", "tab('epochs')", "Epochs", group=TABS),
        Binding("5", "tab('log')", "Log", group=TABS),
        Binding("6", "tab('console')", "Console", group=TABS),
        Binding("7", "tab('results')", "Results", group=TABS),
        Binding("8", "tab('samples')", "Samples", group=TABS),
        Binding("9", "tab('inside')", "Inside", group=TABS),  # once the run has Inside
    ]

    def __init__(self, run_dir: str | Path, *, pid: int | None = None, live: bool = True) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.pid = pid
        self.live = live
        self.history = RunHistory()
        self.state = RunState.STARTING if live else RunState.UNKNOWN
        self.state_message = ""
        self.host = ""  # ELSEWHERE: the machine the run trains on (status.json's word)
        self.summary: dict[str, Any] | None = None
        self._lines: dict[str, str] = {}  # what the one-line status texts show
        self.gpu_note = ""  # why the trainer has no GPU statistics (logged), if it has none
        self.results_waiting = False  # results came while the user read another tab than Charts

    @property
    def followed_run_dir(self) -> Path | None:
        """The run this screen follows while it trains (the quit dialog asks about it)."""
        return self.run_dir if self.live and self.state in run_state.ACTIVE else None

    # --- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="dash-top"):
            yield Static(id="dash-status")
            yield Static(id="dash-metrics")
            with Horizontal(id="dash-progress-row"):
                yield ProgressBar(id="dash-progress", show_eta=False)
                yield Static(id="dash-speed")
            yield ThroughputLine(id="dash-throughput")
            yield GpuPanel(id="dash-gpus")
        with TabbedContent(id="dash-tabs"):
            with TabPane("Charts", id="charts"):
                with Horizontal(id="dash-charts"):
                    yield MetricChart("loss", id="loss-chart")
                    yield MetricChart("accuracy (%)", percent=True, id="acc-chart")
                yield EpochTable(id="charts-epoch-table")
            with TabPane("Metrics", id="metrics"):  # every logged scalar (metrics_grid.py)
                yield MetricsGrid(id="metrics-grid")
            with TabPane("System", id="system"):  # the trainer's machine (system_pane.py)
                yield SystemPane(id="system-pane")
            with TabPane("Epochs", id="epochs"):
                yield EpochTable(id="epoch-table")
            with TabPane("Log", id="log"):
                yield RichLog(id="dash-log", max_lines=2000, wrap=True, markup=False)
            with TabPane("Console", id="console"):  # the trainer's output.log (console.py)
                yield ConsoleView(id="console-view")
            with TabPane("Results", id="results"):
                yield MetricsView(id="metrics-view")
            with TabPane("Samples", id="samples"):
                yield SampleGrid(id="sample-grid")
            with TabPane("Inside", id="inside"):  # the trained network (inside.py), once over
                yield InsideView(id="inside-view")
        yield WrappingFooter()  # (wraps at 80 columns: Inside's keys too)

    def on_mount(self) -> None:
        self.sub_title = text.one_line(self.run_dir.name)
        tabs = self.query_one(TabbedContent)
        tabs.disable_tab("results")
        tabs.disable_tab("samples")
        tabs.disable_tab("inside")
        tabs.hide_tab("inside")
        self._fit_layout()
        self._log(f"run directory: {self.run_dir}")
        if self.pid is not None:
            from cnn_tui.training.runs.store import OUTPUT_LOG

            self._log(f"trainer started, pid {self.pid}; output in {self.run_dir / OUTPUT_LOG}")
        self._show_status()
        if not self.run_dir.is_dir():
            self.state = RunState.FAILED
            self.state_message = f"no run directory at {self.run_dir}"
            self._log(self.state_message)
            self._show_status()
            return
        self.query_one(ConsoleView).start(self.run_dir, live=self.live)
        self.follow()

    def on_resize(self) -> None:
        self._fit_layout()
        self._show_status()  # (the metrics line breaks between its groups to fit the width)

    def _fit_layout(self) -> None:
        compact = self.size.width < COMPACT_WIDTH or self.size.height < COMPACT_HEIGHT
        self.set_class(compact, "-compact")
        self.query_one(ConfusionTable).numbered = self.size.width < COMPACT_WIDTH
        self.query_one(GpuPanel).set_compact(self.size.width < COMPACT_WIDTH)
        self.query_one(SystemPane).set_compact(self.size.width < COMPACT_WIDTH)

    def _show_system(self, events: list[dict[str, Any]]) -> None:
        """The trainer's "system" readings: the System tab, and the GPU lines above the tabs
        while the run trains (the trainer's GPUs, not the TUI's machine's)."""
        pane = self.query_one(SystemPane)
        if not pane.add(events) or pane.latest is None:
            return
        if self.live and self.state not in run_state.OVER:
            self.query_one(GpuPanel).show(list(pane.latest.gpus))
        if pane.latest.gpu_note and not self.gpu_note:  # (no NVIDIA GPU, or no NVML there)
            self.gpu_note = pane.latest.gpu_note
            self._log(f"trainer's machine: {pane.latest.gpu_note}")

    def action_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        if not tabs.get_tab(tab).disabled:
            tabs.active = tab

    # --- following the run ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow-run")
    def follow(self) -> None:
        """Tail the run's files until it is over, then load its results (a thread worker)."""
        from cnn_tui.training.runs.launcher import FOLLOWING, follow_run
        from cnn_tui.training.runs.store import (
            damage_notes,
            read_all_events,
            read_samples,
            read_state,
            read_summary,
        )

        worker = get_current_worker()

        def emit(events: list[dict[str, Any]], status: dict[str, Any] | None) -> None:
            self.post_message(RunEvents(self.run_dir, events, status))

        if self.live:
            state, message = follow_run(self.run_dir, emit, worker.cancelled_event, pid=self.pid)
            if state == FOLLOWING:  # cancelled: the screen was closed
                return
            unreadable = read_all_events(self.run_dir)[1]
        else:
            state, status = read_state(self.run_dir)
            events, unreadable = read_all_events(self.run_dir)
            emit(events, status)
            message = str((status or {}).get("message") or "")
        notes = damage_notes(self.run_dir, unreadable)  # damaged files: say so, show the rest
        if notes:
            self.post_message(RunDamaged(self.run_dir, notes))
        summary = read_summary(self.run_dir)
        samples = read_samples(self.run_dir) if summary else None
        self.post_message(RunResultsLoaded(self.run_dir, summary, samples))
        self.post_message(RunEnded(self.run_dir, RunState.of(state), message))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "follow-run" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._log(f"error while reading the run: {error!r}")
            self.notify(
                f"cannot follow the run: {text.one_line(error)}", severity="error", markup=False
            )

    @on(RunEvents)
    def _on_run_events(self, message: RunEvents) -> None:
        kinds = self.history.add(message.events)
        self._show_system(message.events)
        from cnn_tui.training.runs.launcher import written_by
        from cnn_tui.training.runs.store import trainer_host

        status = message.status or {}
        # (a resumed run's old status.json is not ours until our trainer rewrites it)
        ours = self.pid is None or written_by(status, self.pid)
        if self.live and ours and status.get("status") == RunState.RUNNING:
            self.host = trainer_host(status)  # another machine's: shown, never signalled
            self.state = RunState.ELSEWHERE if self.host else RunState.RUNNING
        for line in self.history.take_log():
            self._log(line)
        self._show_progress()
        self._show_status()
        if kinds & {"epoch", "run_started"}:
            for table in self.query(EpochTable):
                table.set_epochs(self.history.epochs, kept=self.history.kept_epoch())
            self._show_charts()
        elif "batch" in kinds:
            self._show_charts(loss_only=True)
        self._show_metrics()

    @on(RunDamaged)
    def _on_run_damaged(self, message: RunDamaged) -> None:
        for note in message.notes:
            self._log(f"warning: {note}")
        notes = "\n".join(map(text.one_line, message.notes))
        self.notify(notes, title="Damaged files", severity="warning", markup=False)

    @on(RunEnded)
    def _on_run_ended(self, message: RunEnded) -> None:
        self.state, self.state_message = message.status, message.message
        self.query_one(GpuPanel).stop()
        self.query_one(SystemPane).run_over()
        self.query_one(ConsoleView).run_over()
        self.refresh_bindings()  # "s Stop run" goes from the footer
        self._show_status()
        self._show_progress()
        self._show_charts()
        self._show_metrics()
        if inside_available(self.run_dir, message.status):
            tabs = self.query_one(TabbedContent)
            tabs.show_tab("inside")
            tabs.enable_tab("inside")
            self.refresh_bindings()  # "1-9 Tabs" in the footer
        if message.status in run_state.BROKEN:
            if self.history.end is None:  # (a failed event already wrote its message)
                self._log(f"{message.status.upper()}: {message.message}")
            if self.live:
                self.notify(
                    "\n".join(text.lines(message.message or message.status)),
                    title="Run failed",
                    severity="error",
                    markup=False,
                )
        elif self.live:
            self._log(f"run {message.status}")
            name = text.one_line(self.run_dir.name)
            ready = f" · {RESULTS_READY}" if self.results_waiting else ""
            self.notify(
                f"run {name} {message.status}{ready}",
                markup=False,
                timeout=self.FINISHED_TOAST_S,
            )

    @on(RunResultsLoaded)
    def _on_results_loaded(self, message: RunResultsLoaded) -> None:
        self.summary = message.summary
        if message.summary is None:
            return
        tabs = self.query_one(TabbedContent)
        tabs.enable_tab("results")
        tabs.enable_tab("samples")
        self.query_one(MetricsView).show(message.summary)
        self.query_one(SampleGrid).show(message.samples, list(message.summary.get("classes") or []))
        if tabs.active == "charts":  # (the default tab: the user reads nothing else)
            tabs.active = "results"
        else:  # the user reads another tab: it stays, the status line says Results is ready
            self.results_waiting = True
            self._show_status()

    # --- stopping -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":  # (elsewhere: Stop says why not)
            return self.live and self.state in (*run_state.ACTIVE, RunState.ELSEWHERE)
        if action in ("toggle_counts", "toggle_zoom"):
            tab = "results" if action == "toggle_counts" else "samples"
            return self.summary is not None and self.query_one(TabbedContent).active == tab
        if action == "tab" and parameters == ("inside",):  # no key 9 while there is no Inside tab
            return not self.query_one(TabbedContent).get_tab("inside").disabled
        return True

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        if self.results_waiting and self.query_one(TabbedContent).active == "results":
            self.results_waiting = False
            self._show_status()
        if self.query_one(TabbedContent).active == "inside":
            view = self.query_one(InsideView)
            view.start(self.run_dir)
            view.focus()
        elif self.query_one(TabbedContent).active == "metrics":
            grid = self.query_one(MetricsGrid)
            grid.refresh_view()
            grid.focus_list()
        elif self.query_one(TabbedContent).active == "system":
            self.query_one(SystemPane).focus()  # (↑ ↓ PgUp PgDn scroll it to the charts)
        elif self.query_one(TabbedContent).active == "console":
            self.query_one(ConsoleLog).focus()  # (its scrolling keys work at once)
        self.refresh_bindings()

    def action_toggle_counts(self) -> None:
        self.query_one(ConfusionTable).action_toggle_normalised()

    def action_toggle_zoom(self) -> None:
        self.query_one(SampleGrid).action_toggle_zoom()

    def action_stop(self) -> None:
        from cnn_tui.training.runs.launcher import elsewhere, stop_run

        if self.state == RunState.ELSEWHERE:
            name = text.one_line(self.run_dir.name)
            self.notify(f"{name} {elsewhere(self.host)}", severity="warning", markup=False)
            return

        def stop(answer: str | None) -> None:
            if answer != "yes":
                return
            sent = stop_run(self.run_dir, self.pid)  # (only to its trainer, identity checked)
            if sent:
                self._log("stop requested: finishing the batch, checkpointing")
                self.state_message = "stopping at the end of the batch…"
                self._show_status()
            else:
                name = text.one_line(self.run_dir.name)
                self.notify(f"{name} {sent.reason}", severity="warning", markup=False)

        self.app.push_screen(
            confirm(
                "Stop training?",
                f"Stop {text.one_line(self.run_dir.name)} at the end of the current batch. The "
                "checkpoint is kept; resume it later from the runs screen.",
                "Stop run",
            ),
            stop,
        )

    # --- drawing --------------------------------------------------------------------------------

    def _log(self, message: object) -> None:
        """Lines for the Log tab. They quote the run's files (messages, names): each line goes
        through `text.one_line`, so an escape sequence in them is shown, never sent."""
        log = self.query_one(RichLog)
        for line in text.lines(message):
            log.write(line)

    def _show_status(self) -> None:
        look = self.state.look
        early_stop = self.history.early_stop
        label = run_state.label(
            self.state, early_stop.get("epoch") if early_stop else None, self.host
        )
        parts = [f"[b ${look.colour}]{look.mark} {text.markup(label)}[/]"]  # (its name: the header)
        started = self.history.started or {}
        config = started.get("config") or {}
        if config:
            model = catalog.model_label(str(config.get("model", "?")))  # (your own: file.py:Class)
            parts.append(text.markup(f"{model} on {config.get('dataset', '?')}"))
        if started:
            device = str(started.get("device_name") or started.get("device") or "?")
            world = started.get("world_size")  # --devices N: data-parallel processes
            if isinstance(world, int) and world > 1:
                device += f" × {world} processes"
            parts.append(text.markup(device))
        if self.history.epochs:
            last = self.history.epochs[-1]
            if text.finite(last.get("gpu_mem_mb")):  # (MiB: torch.cuda.max_memory_allocated)
                parts.append(f"GPU mem {text.size(last['gpu_mem_mb'] * text.MIB)}")
        if self.results_waiting:  # (second: a narrow screen cuts the end of the line)
            parts.insert(1, f"[b]{RESULTS_READY}[/b]")
        self._set_line("#dash-status", " · ".join(parts))
        self._set_line("#dash-metrics", self._metrics_line())

    def _set_line(self, selector: str, markup: str) -> None:
        """Update a status text when it changed; the per-batch ones are one line (no layout pass)."""
        if self._lines.get(selector) != markup:
            self._lines[selector] = markup
            layout = selector == "#dash-metrics"  # an error message may take up to 3 lines
            self.query_one(selector, Static).update(markup, layout=layout)

    def _metrics_line(self) -> str:
        first = text.markup(self.state_message.splitlines()[0]) if self.state_message else ""
        look = self.state.look  # (on a line of text: the theme's text shade of its colour)
        if self.state in run_state.BROKEN and first:
            return f"[b $text-{look.colour}]{look.mark} {first}[/]  [dim](Log tab: details)[/dim]"
        if self.state in run_state.ACTIVE and first:
            return f"[b]{first}[/b]"  # e.g. "stopping at the end of the batch…"
        if self.state == RunState.STOPPED and not self.history.epochs:
            return f"[b $text-{look.colour}]{look.mark} {first or look.label}[/]"
        if not self.history.epochs:
            if self.history.started is None:
                return "[dim]waiting for the trainer to start (loading data, building the model)…[/dim]"
            return "[dim]training the first epoch…[/dim]"
        last = self.history.epochs[-1]
        groups = [
            f"epoch {text.markup(last.get('epoch'))}/{text.markup(last.get('epochs'))}",
            f"train loss {text.number(last.get('train_loss'), '.3f')} acc "
            f"{text.percent(last.get('train_acc'))}",
            f"val loss [b]{text.number(last.get('val_loss'), '.3f')}[/b] acc "
            f"[b]{text.percent(last.get('val_acc'))}[/b]",
            f"best {text.percent(self.history.best_val_acc())}",
        ]
        early_stop = self._early_stop_text()
        if early_stop:
            groups.append(early_stop)
        return pack_groups(groups, self.size.width - 2)  # (#dash-top's padding)

    def _early_stop_text(self) -> str:
        """Early stopping's state for the metrics line ('' when it is off)."""
        state = self.history.early_stop_state()
        if state is None:
            return ""
        event = self.history.early_stop
        if event is not None:
            return (
                f"[b $text-warning]early stop @{text.markup(event.get('epoch'))}[/]: tested with "
                f"epoch {text.markup(event.get('best_epoch'))}'s weights ◆"
            )
        metric = ((self.history.started or {}).get("config") or {}).get("early_stop_metric")
        return (
            f"early stop: {text.markup(metric)} best @{text.markup(state.best_epoch)}, "
            f"{state.since_best}/{self.history.patience} without improvement"
        )

    def _show_progress(self) -> None:
        done, total = self.history.progress()
        bar = self.query_one(ProgressBar)
        if total:
            bar.update(total=total, progress=done)
        elif self.state in run_state.OVER:
            bar.update(total=1, progress=0)  # ended before it knew its size: no busy animation
        batch = self.history.last_batch
        self.query_one(ThroughputLine).show(self.history.throughput_series())
        if self.state in run_state.OVER:
            hint = " · resume it from the runs screen (r)" if self.state == RunState.STOPPED else ""
            self._set_line("#dash-speed", self.state.look.label + hint)
        elif batch is None:
            self._set_line("#dash-speed", "")
        else:
            speed = batch.get("images_per_s")  # (none while the trainer still estimates)
            self._set_line(
                "#dash-speed",
                f"epoch {text.markup(batch.get('epoch'))}/{self.history.epochs_total} · batch "
                f"{text.markup(batch.get('batch'))}/{text.markup(batch.get('batches'))} · ETA "
                f"{text.eta(batch.get('eta_s'))}"
                + (f" · {text.throughput(speed)}" if text.finite(speed) else ""),
            )

    def _show_metrics(self) -> None:
        """The Metrics tab's data (drawn only while it is on view)."""
        over = f"no data: run {self.state}" if self.state in run_state.OVER else None
        x_max = float(self.history.epochs_total)
        self.query_one(MetricsGrid).show(self.history.metrics, x_max, over)

    def _show_charts(self, loss_only: bool = False) -> None:
        series = self.history.series()
        x_max = float(self.history.epochs_total)
        if (
            self.state in run_state.OVER
        ):  # an empty chart is no longer waiting: say why it stays empty
            for chart in self.query(MetricChart):
                chart.empty_note = f"no data: run {self.state}"  # (short: a title fits 80 cols)
        self.query_one("#loss-chart", MetricChart).set_series(
            [
                Series("batch (smoothed)", *series["batch_loss"], role="batch"),
                Series("train", *series["train_loss"], role="train"),
                Series("val", *series["val_loss"], role="val"),
            ],
            x_max,
        )
        if loss_only:
            return
        self.query_one("#acc-chart", MetricChart).set_series(
            [
                Series("train", *series["train_acc"], role="train"),
                Series("val", *series["val_acc"], role="val"),
            ],
            x_max,
        )


class DashboardScreen(RunScreen):
    """The live dashboard of a run the TUI just started (or re-attached to)."""
