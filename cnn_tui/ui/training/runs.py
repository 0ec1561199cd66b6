"""The runs screen: every run under --runs-dir with its status, refreshed every two seconds
while it is shown (`polling.ShownPoller`: not while a dashboard or results screen covers it).
Several run folders (`--runs-dir` repeated, or a glob: `runs.folders.RunFolders`) are listed
as one table, newest first across them, with a "folder" column (each folder's short label); a
"host" column names the other machine a run trains or trained on (a shared file system).

Open a run (its live dashboard while it trains, its results when it is over), mark several and
overlay their curves, resume a stopped run or extend a finished one (train it for more epochs from
its last checkpoint), clone a run's settings into the training form, delete a run. Listing reads
only small files (`runs.list_runs`), in a thread worker.

The table fits the terminal's width (`fit_columns`): a long run name is shortened first (an
automatic one loses its date, never the time that tells two runs apart: `text.run_name`), then the
start time goes to the line under the table; the numbers, model and data set stay (where even
then the table is too wide, the model and the data set are cut in their middle, with "…":
`cut_widths`, `cut_cell`; your own model keeps its class). A start time of
today has its seconds (`text.started`), as in `cnn-tui runs`. The host goes with the start time
(then the line under the table says it); the folder label stays (cut in its middle past
FOLDER_WIDTH).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui import catalog, text
from cnn_tui.training.runs import state as run_state
from cnn_tui.training.runs.folders import RunFolders, folder_labels
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.runs.store import RunInfo
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training.charts import MetricChart, Series
from cnn_tui.ui.training.dialogs import confirm
from cnn_tui.ui.training.history import RunHistory
from cnn_tui.ui.training.messages import CurvesLoaded, RunsListed
from cnn_tui.ui.training.polling import ShownPoller

REFRESH_S = 2.0
COLUMNS = (  # key, header; numbers right-aligned, the rest left
    ("mark", " "),
    ("status", "status"),
    ("folder", "folder"),  # only with several run folders
    ("name", "run"),
    ("epochs", "epochs"),
    ("best", "best val"),
    ("test", "test acc"),
    ("model", "model"),
    ("dataset", "data set"),
    ("host", "host"),  # only when a run trains or trained on another machine
    ("started", "started"),
)
OPTIONAL = ("folder", "host")
NUMBERS = ("epochs", "best", "test")
MIN_NAME = 14  # a run name is not shortened below this many characters
FOLDER_WIDTH = 14  # a folder's label and a host name are cut in the middle past this
CUT = ("dataset", "model")  # cut with "…" when nothing else makes the table fit (`cut_widths`)
MIN_CUT = 6
CELL_PADDING = 2  # DataTable's default: one space each side of a cell
SCROLLBAR = 2
# what goes when the table is too narrow, step by step: columns, and whether the status is its
# mark only; the last step only with a folder column (which then stays in the data set's place)
NARROWER = (
    ((), False),
    (("started",), False),
    (("started", "host"), False),
    (("started", "host"), True),
    (("started", "host", "dataset"), True),
)


def fit_columns(widths: dict[str, int], available: int) -> tuple[list[str], int, bool]:
    """The columns to show, the width of the name column and whether the status is its mark
    only, for content `widths` (key -> widest cell or header; an OPTIONAL column without a key
    is not shown) in `available` cells: the name shrinks first (down to MIN_NAME), then the
    start time goes, then the host, then the status word, then (runs of several folders: the
    folder stays) the data set; all are shown under the table for the cursor row. The numbers
    and the model always stay."""
    keys = [key for key, _ in COLUMNS if key in widths]
    steps = NARROWER if "folder" in widths else NARROWER[:-1]
    shown: list[str] = keys
    for gone, mark_only in steps:
        shown = [key for key in keys if key not in gone]
        sizes = {**widths, "status": len("status")} if mark_only else widths
        others = sum(sizes[key] + CELL_PADDING for key in shown if key != "name")
        name = available - others - CELL_PADDING
        if name >= min(MIN_NAME, widths["name"]):
            return shown, min(name, widths["name"]), mark_only
    return shown, MIN_NAME, True


def cut_widths(
    widths: dict[str, int], layout: tuple[list[str], int, bool], available: int
) -> dict[str, int]:
    """The widths the text columns CUT (model, data set) are cut to, when even `fit_columns`'s
    narrowest layout is wider than `available` (their cells then end in "…", cut in their
    middle; never narrower than their header or MIN_CUT): widest first, as far as needed."""
    shown, name_width, mark_only = layout
    sizes = {**widths, "name": name_width}
    if mark_only:
        sizes["status"] = len("status")
    over = sum(sizes[key] + CELL_PADDING for key in shown) - available
    cuts: dict[str, int] = {}
    for key in sorted((key for key in CUT if key in shown), key=lambda key: -sizes[key]):
        if over <= 0:
            break
        least = max(MIN_CUT, len(dict(COLUMNS)[key]))
        taken = min(over, max(0, sizes[key] - least))
        if taken:
            cuts[key], over = sizes[key] - taken, over - taken
    return cuts


def cut_cell(key: str, value: str, width: int) -> str:
    """A CUT column's cell in `width` characters: cut in its middle, except your own model
    (`file.py:Class`), whose class says most: its file goes first ("…:StudentCNN", "…entCNN")."""
    if key == "model" and ":" in value and len(value) > width:
        return "…" + value[len(value) - width + 1 :] if width > 1 else "…"[:width]
    return text.ellipsis_middle(value, width)


def status_text(
    status: str, theme: dict[str, str], *, label: str | None = None, mark_only: bool = False
) -> Text:
    """A state with its mark, in its colour: "✓ finished", or `label` after the mark
    ("✓ finished (early stop @5)")."""
    look = RunState.of(status).look
    shown = look.mark if mark_only else f"{look.mark} {label or look.label}"
    return Text(shown, style=f"bold {theme.get(look.colour, '')}".strip())


def runs_in_progress(runs: list[RunInfo]) -> list[RunInfo]:
    return [run for run in runs if run.status == RunState.RUNNING]


class RunsScreen(Screen):
    """A table of runs; the cursor row is the run that keys act on."""

    HELP_TITLE = "keys of the runs screen"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open", priority=True),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "resume", "Resume/extend"),
        Binding("k", "clone", "Clone"),
        Binding("d", "delete", "Delete"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, runs_dir: RunFolders | str | Path = "runs") -> None:
        super().__init__()
        self.folders = RunFolders.of(runs_dir)
        self.labels = self.folders.labels()  # folder -> its short name (several folders)
        self.runs: list[RunInfo] = []
        self.unreadable: dict[Path, str] = {}  # folders the last listing could not read
        self.marked: set[Path] = set()
        self._shown: list[tuple[object, ...]] = []
        self._layout: tuple[list[str], int, bool] = ([], 0, False)  # see fit_columns
        self._widths: dict[str, int] = {}  # each column's widest cell or header (`_fit`)
        self._now = time.time()
        self.poller = ShownPoller(self, REFRESH_S, self.action_refresh)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="runs-summary")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-detail")
        yield WrappingFooter()  # (its many keys wrap onto a second line at 80 columns)

    def on_mount(self) -> None:
        self.sub_title = f"runs in {self.folders.describe()}"
        self.query_one("#runs-summary", Static).update(Text(f"reading {self.folders.describe()}…"))
        self.action_refresh()
        self.poller.start()  # (paused while another screen covers this one)

    # --- listing --------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.list_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="list-runs")
    def list_runs(self) -> None:
        from cnn_tui.training.runs.store import list_runs_in

        listing = list_runs_in(self.folders.paths)
        if not get_current_worker().is_cancelled:
            self.post_message(RunsListed(listing.runs, listing.unreadable))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "list-runs" and event.state == WorkerState.ERROR:
            self.query_one("#runs-summary", Static).update(
                Text(
                    f"cannot list {self.folders.describe()}: {text.one_line(event.worker.error)}",
                    style="bold",
                )
            )

    @on(RunsListed)
    def _runs_listed(self, message: RunsListed) -> None:
        self.runs = list(message.runs)
        self.unreadable = dict(message.unreadable)
        paths = {run.path for run in self.runs}
        self.marked &= paths
        self._show_runs()

    def _row(self, run: RunInfo) -> tuple[object, ...]:
        """The cells' texts; the names and settings (from the run's files) through one_line."""
        epochs = f"{run.epochs_done}/{run.epochs}" if run.epochs else str(run.epochs_done)
        started = text.started(run.started, self._now) if run.started else ""
        # a run training on another machine: "▷ running", its host in the host column
        label = "running" if run.status == RunState.ELSEWHERE else run.status_label
        return (
            run.path in self.marked,
            text.one_line(label),
            text.ellipsis_middle(text.one_line(self._label(run)), FOLDER_WIDTH),
            text.one_line(run.name),
            epochs,
            text.percent(run.best_val_acc),
            text.percent(run.test_acc),
            text.one_line(catalog.model_label(run.model)),
            text.one_line(run.dataset),
            text.ellipsis_middle(text.one_line(run.host), FOLDER_WIDTH),
            started,
        )

    def _label(self, run: RunInfo) -> str:
        """The short name of the folder `run` was listed from."""
        return self.labels.get(run.folder, str(run.folder)) if run.folder is not None else "?"

    def on_resize(self) -> None:
        if self.runs:  # (after the layout pass: the table's new width)
            self.call_after_refresh(self._fill_table, self._shown)

    def _show_runs(self) -> None:
        self._now = time.time()  # (one "today" for every row)
        rows = [self._row(run) for run in self.runs]
        if rows != self._shown or not self._layout[0]:
            self._fill_table(rows)
        live = runs_in_progress(self.runs)
        count = len(self.runs)
        parts = [text.markup(f"{count} run{'s' * (count != 1)} in {self.folders.describe()}")]
        if self.folders.several:
            first = text.one_line(self.labels[self.folders.new_runs])
            parts.append(text.markup(f"new runs go into {first}"))
        parts += [f"[b]⚠[/b] {text.markup(warning)}" for warning in self.folders.warnings]
        parts += [
            f"[b]⚠[/b] cannot read {text.markup(text.one_line(folder))}: {text.markup(why)}"
            for folder, why in self.unreadable.items()
        ]
        if live:
            names = ", ".join(text.markup(run.name) for run in live[:3])
            look = RunState.RUNNING.look
            parts.append(f"[b $text-{look.colour}]{look.mark} {len(live)} in progress[/]: {names}")
        if self.marked:
            parts.append(f"{len(self.marked)} marked (c: compare)")
        if not self.runs:
            parts.append("none yet: start one from the training form (t on the home screen)")
        self.query_one("#runs-summary", Static).update(" · ".join(parts))
        self._show_detail()

    def _fit(self, rows: list[tuple[object, ...]]) -> tuple[list[str], int, bool]:
        """The columns that fit the table's width, and the name column's width."""
        present = {"folder": self.folders.several, "host": any(run.host for run in self.runs)}
        widths = {key: len(h) for key, h in COLUMNS if key not in OPTIONAL or present[key]}
        for row in rows:
            for (key, _), value in zip(COLUMNS, row, strict=True):
                if key in widths:
                    shown = 1 if key == "mark" else len(value) + 2 * (key == "status")  # "✓ "
                    widths[key] = max(widths[key], shown)
        self._widths = widths
        return fit_columns(widths, self.query_one(DataTable).size.width - SCROLLBAR)

    def _fill_table(self, rows: list[tuple[object, ...]]) -> None:
        table = self.query_one(DataTable)
        current = self.current_run()
        layout = self._fit(rows)
        if layout != self._layout:
            table.clear(columns=True)
            for key, label in COLUMNS:
                if key in layout[0]:
                    justify = "right" if key in NUMBERS else "left"
                    table.add_column(Text(label, justify=justify), key=key)
            self._layout = layout
        table.clear()
        theme = self.app.theme_variables
        shown, name_width, mark_only = layout
        available = table.size.width - SCROLLBAR
        cuts = cut_widths(self._widths, layout, available)  # (the narrowest layout too wide)
        for run, row in zip(self.runs, rows, strict=True):
            values = dict(zip((key for key, _ in COLUMNS), row, strict=True))
            for key, width in cuts.items():
                values[key] = cut_cell(key, values[key], width)
            cells = {
                "mark": Text("✓" if values["mark"] else " ", style="bold"),
                "status": status_text(
                    run.status, theme, label=values["status"], mark_only=mark_only
                ),
                "name": Text(
                    text.run_name(values["name"], name_width),
                    style="bold" if values["mark"] else "",
                ),
                **{key: Text(values[key], justify="right") for key in NUMBERS},
            }
            # (every cell a Text: a str cell would be read as Rich markup)
            table.add_row(
                *(cells[key] if key in cells else Text(values[key]) for key in shown),
                key=str(run.path),
            )
        self._shown = rows
        if current is not None and current.path in {run.path for run in self.runs}:
            table.move_cursor(row=table.get_row_index(str(current.path)))

    def current_run(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.runs or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an empty or just-cleared table has no cursor row
            return None
        return next((run for run in self.runs if str(run.path) == key), None)

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        run = self.current_run()
        detail = self.query_one("#runs-detail", Static)
        if run is None:
            detail.update("")
            return
        started = f" · started {text.timestamp(run.started)}" if run.started else ""
        more = ""
        if run.host and run.status != RunState.ELSEWHERE:  # ("running on HOST" says it there)
            more += f" · trained on {text.one_line(run.host)}"
        if "dataset" not in self._layout[0]:
            more += f" · {text.one_line(run.dataset)}"
        # (the path last: where the line wraps, it is the path that does)
        lines = [f"{text.one_line(run.status_label)}{started}{more} · {text.one_line(run.path)}"]
        message = text.lines(run.message)[0] if run.message else ""
        if message and message.strip().lower() not in (run.status, run.status_label.lower()):
            lines.append(message)  # (a finished run's "finished" is said once)
        lines += map(text.one_line, run.problems)  # damaged files: the rest is shown
        detail.update(Text("\n".join(lines)))

    # --- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        run = self.current_run() if self.is_mounted else None
        if action in ("open", "mark", "delete", "compare"):
            return run is not None or None
        if action == "resume":
            resumable = (*run_state.RESUMABLE, RunState.FINISHED)  # a finished one: extended
            return (run is not None and run.status in resumable) or None
        if action == "clone":
            return run is not None or None
        return True

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run = self.current_run()
        if run is None:
            return
        if run.status in run_state.BUSY:  # (elsewhere: followed through the shared folder)
            from cnn_tui.ui.training.dashboard import DashboardScreen

            self.app.push_screen(DashboardScreen(run.path))
        else:
            from cnn_tui.ui.training.results import ResultsScreen

            self.app.push_screen(ResultsScreen(run.path))

    def action_mark(self) -> None:
        run = self.current_run()
        if run is None:
            return
        self.marked ^= {run.path}
        self._show_runs()
        table = self.query_one(DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        chosen = [run for run in self.runs if run.path in self.marked]
        if not chosen and (run := self.current_run()) is not None:
            chosen = [run]
        if chosen:
            self.app.push_screen(CompareScreen([run.path for run in chosen]))

    def action_resume(self) -> None:
        """Resume a stopped (failed, interrupted) run; a finished one asks how far to extend it."""
        run = self.current_run()
        if run is None:
            return
        if run.status == RunState.FINISHED:
            self._ask_extend(run)
        elif run.status in run_state.RESUMABLE:
            self._continue(run)
        else:
            name = text.one_line(run.name)
            self.notify(f"{name} is {run.status_label}: nothing to resume", markup=False)

    def _continue(self, run: RunInfo, epochs: int | None = None) -> None:
        """Train `run` on from its last checkpoint (to `epochs` in all) and follow it live; a
        run of your own class once its code is trusted (`trust.ask_trust`)."""
        from cnn_tui.ui.training import trust

        question = trust.run_question(run.path, "Resuming it")
        trust.run_when_trusted(
            self, run.path, question, lambda: self._continue_trusted(run, epochs), "r"
        )

    def _continue_trusted(self, run: RunInfo, epochs: int | None) -> None:
        from cnn_tui.training.runs.launcher import spawn_detached, train_command
        from cnn_tui.ui.training import trust
        from cnn_tui.ui.training.dashboard import DashboardScreen

        command = train_command(run.path, True, trust.is_trusted(self.app, run.path))
        if epochs is not None:
            command += ["--epochs", str(epochs)]
        try:
            pid = spawn_detached(command, run.path)
        except OSError as exc:
            self.notify(
                f"cannot resume {text.one_line(run.name)}: {text.one_line(exc)}",
                severity="error",
                markup=False,
            )
            return
        self.app.push_screen(DashboardScreen(run.path, pid=pid))

    def _ask_extend(self, run: RunInfo) -> None:
        from cnn_tui.training.runs.store import read_summary
        from cnn_tui.ui.training.dialogs import EpochsModal

        if (read_summary(run.path) or {}).get("early_stopped"):
            self.notify(
                f"{text.one_line(run.name)} was ended by early stopping: training it longer would "
                "stop again; clone its settings (k) with a larger early stop instead",
                severity="warning",
                markup=False,
            )
            return
        done = int(run.epochs_done or 0)

        def extend(epochs: int | None) -> None:
            if epochs is not None:
                self._continue(run, epochs)

        self.app.push_screen(EpochsModal(run.name, done, default=done + max(done, 1)), extend)

    def action_clone(self) -> None:
        """Open the training form filled with the run's settings (Start makes a new run); a run
        of your own class once trusted (the form's check runs the file it names)."""
        from cnn_tui.ui.training import trust

        run = self.current_run()
        if run is None:
            return

        question = trust.clone_question(run.path)
        trust.run_when_trusted(self, run.path, question, lambda: self._clone(run), "k")

    def _clone(self, run: RunInfo) -> None:
        from cnn_tui.errors import UsageError
        from cnn_tui.training.runs.store import read_config
        from cnn_tui.ui.training.form import TrainFormScreen

        try:
            config = read_config(run.path)
        except UsageError as exc:
            self.notify(
                f"cannot clone {text.one_line(run.name)}: {text.one_line(exc)}",
                severity="error",
                markup=False,
            )
            return
        name = text.one_line(run.name)
        self.app.push_screen(TrainFormScreen(config, source=f"run {name}"))
        self.notify(f"the form holds the settings of {name}", title="Clone", markup=False)

    def action_delete(self) -> None:
        run = self.current_run()
        if run is None:
            return
        if run.status == RunState.ELSEWHERE:
            self.notify(
                f"{run.name} is {run.status_label}: stop it there before deleting it", markup=False
            )
            return
        if run.status == RunState.RUNNING:
            self.notify(
                "stop the run before deleting it (open it, then s)",
                severity="warning",
                markup=False,
            )
            return

        def delete(answer: str | None) -> None:
            if answer != "yes":
                return
            from cnn_tui.errors import UsageError
            from cnn_tui.training.runs.store import delete_run

            try:
                delete_run(run.path)
            except (UsageError, OSError) as exc:
                self.notify(text.one_line(exc), severity="error", markup=False)
                return
            self.notify(f"deleted {text.one_line(run.name)}", markup=False)
            self.action_refresh()

        self.app.push_screen(
            confirm(
                "Delete this run?",
                f"{text.one_line(run.path)}\nwill be deleted with its checkpoint and metrics. "
                "This cannot be undone.",
                "Delete",
            ),
            delete,
        )


class CompareScreen(Screen):
    """Loss and accuracy curves of several runs overlaid (runs of different lengths welcome)."""

    HELP_TITLE = "keys of the comparison"

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("t", "toggle_split", "Train/val"),
    ]

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = run_dirs
        self.histories: dict[Path, RunHistory] = {}
        self.split = "val"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="compare-legend")
        with Horizontal(id="compare-charts"):
            yield MetricChart("val loss", id="compare-loss")
            yield MetricChart("val accuracy (%)", percent=True, id="compare-acc")
        with Vertical(id="compare-bottom"):
            yield Static("[dim]t: train / validation curves[/dim]")
        yield WrappingFooter()

    def on_mount(self) -> None:
        self.sub_title = f"comparing {len(self.run_dirs)} run{'s' * (len(self.run_dirs) != 1)}"
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        from cnn_tui.training.runs.store import read_events

        self.post_message(CurvesLoaded({path: read_events(path)[0] for path in self.run_dirs}))

    @on(CurvesLoaded)
    def _loaded(self, message: CurvesLoaded) -> None:
        self.histories = {}
        for run_dir, events in message.events.items():
            self.histories[run_dir] = history = RunHistory()
            history.add(events)
        self._draw()

    def action_toggle_split(self) -> None:
        self.split = "train" if self.split == "val" else "val"
        self._draw()

    def _draw(self) -> None:
        loss, acc, legend = [], [], []
        x_max = 0.0
        names = legend_names(list(self.histories))
        runs = zip(names, self.histories.values(), strict=True)
        for index, (run_name, history) in enumerate(runs):
            series = history.series()
            role = f"run{index}"
            label = f"#{index + 1}"
            loss.append(Series(label, *series[f"{self.split}_loss"], role=role))
            acc.append(Series(label, *series[f"{self.split}_acc"], role=role))
            x_max = max(x_max, float(history.epochs_total))
            legend.append(
                f"#{index + 1} [b]{text.markup(run_name)}[/b]: {len(history.epochs)}/"
                f"{history.epochs_total} epochs, best val {text.percent(history.best_val_acc())}"
            )
        name = "val" if self.split == "val" else "train"
        chart = self.query_one("#compare-loss", MetricChart)
        chart.chart_title = f"{name} loss"
        chart.set_series(loss, x_max)
        chart = self.query_one("#compare-acc", MetricChart)
        chart.chart_title = f"{name} accuracy (%)"
        chart.set_series(acc, x_max)
        self.query_one("#compare-legend", Static).update("\n".join(legend))


def legend_names(run_dirs: list[Path]) -> list[str]:
    """The runs' names for the comparison's legend; runs of the same name (from several run
    folders) with their folder's short name before it ("proj-a: NAME"), escaped."""
    names = [text.one_line(run_dir.name) for run_dir in run_dirs]
    if len(set(names)) == len(names):
        return names
    parents = list(dict.fromkeys(run_dir.parent for run_dir in run_dirs))
    labels = dict(zip(parents, folder_labels(parents), strict=True))
    return [
        f"{text.one_line(labels[run_dir.parent])}: {name}"
        for run_dir, name in zip(run_dirs, names, strict=True)
    ]
