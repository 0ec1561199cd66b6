"""Sweeps in the TUI: the training form in sweep mode, and the sweep screen.

The form's first row switches between a grid and a search (`mode`: Optuna's TPE sampler and
median pruner, `cnn_tui.training.runs.search`): in search mode the row below it takes the space
(`lr=log:1e-4:1e-1 batch_size=32,64,128`, the `--space` syntax), a field's comma list is a choice
of the space, and a third row the number of trials.

`SweepFormScreen` is the training form where a text field may hold several values separated by
commas (`epochs` 20,50,100) and a grid row takes `KEY=V1,V2` for the drop-downs and check boxes
(`model=simple-cnn,the3-cnn amp=on,off`); every value is checked with the same parser as the
flags, and the whole grid with `sweeps.make_plan` (the rules between settings for every run, the
64-run limit). Start writes the sweep folder and starts its queue runner in the background
(`sweeps.launch_sweep`), then opens the sweep screen. `ctrl+g` switches between the two forms.

`SweepScreen` is the runs screen's `CompareScreen` with the sweep's table on top: one row per
run (its grid values, best val acc, test acc, macro F1, time, status), sorted by a metric with
the best run starred, under the overlaid validation curves of its runs, refreshed every 2 s.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.text import markup, one_line
from cnn_tui.training.config import FIELDS, ConfigError, TrainConfig, parse_field
from cnn_tui.training.models import sizes as model_sizes
from cnn_tui.training.runs import search, sweeps
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.runs.sweeps import SweepState
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training import trust
from cnn_tui.ui.training.charts import MetricChart
from cnn_tui.ui.training.dialogs import confirm
from cnn_tui.ui.training.form import (
    APPLIES_WHEN,
    FieldInput,
    TrainFormScreen,
    TrainFormSettings,
    runs_dir,
    show_text,
)
from cnn_tui.ui.training.messages import CurvesLoaded, SweepRead
from cnn_tui.ui.training.runs import CompareScreen, status_text

REFRESH_S = 2.0
SORT_LABELS = {key: title for key, (_, _, title) in sweeps.SORT_FIELDS.items()}
MODES = ("grid", "search")
MODE_LABELS = {"grid": "grid", "search": "search (Optuna)"}
MODE_HELP = {
    "grid": "every combination of the values (search: Optuna picks)",
    "search": "Optuna picks each trial; the median pruner stops poor ones",
}
PLACEHOLDERS = {
    "grid": "model=simple-cnn,the3-cnn amp=on,off",
    "search": "lr=log:1e-4:1e-1 batch_size=32,64,128",
}


@dataclass(frozen=True)
class SweepSettings(TrainFormSettings):
    """What `cnn-tui sweep` opens (made by `cnn_tui.commands.sweep`, checked): the sweep screen
    of `show`, or of `resume` resumed on the --device text (`texts["device"]`: default the
    sweep's own devices); else the sweep form, the form's settings plus the `grid` (parsed) and
    the table's `sort`."""

    grid: Mapping[str, list[Any]] = dataclasses.field(default_factory=dict)
    sort: str | None = None
    show: str | None = None
    search: bool = False  # the form in search mode
    space: tuple[str, ...] = ()  # the --space specs (checked)
    trials: int | None = None
    search_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # pruner, storage


def sweep_screen_for(settings: SweepSettings | None) -> TrainFormScreen | SweepScreen:
    """The screen of `cnn-tui sweep`: --show / --resume open the sweep screen, else the form."""
    storage = settings.search_options.get("storage") if settings is not None else None
    if settings is not None and settings.show:
        return SweepScreen(settings.show, sort=settings.sort)
    if settings is not None and settings.resume:
        device = settings.texts.get("device")
        return SweepScreen(
            settings.resume,
            sort=settings.sort,
            resume=True,
            device=device,
            storage=storage,
            trusted=settings.trust_model_code,
        )
    return SweepFormScreen.from_settings(settings)


def _is_text_field(name: str) -> bool:
    field = FIELDS[name]
    return not (field.kind is bool or field.choices or name == "device")


def form_texts(form: TrainFormScreen) -> dict[str, str]:
    """The form's fields as text, to carry them over to the other kind of form."""
    texts = {}
    for name in FIELDS:
        raw = form._raw_value(name)  # noqa: SLF001 - the sibling form's own reader
        if raw is None:
            continue
        texts[name] = raw if isinstance(raw, str) else sweeps.format_value(raw)
    return texts


def switch_form(form: TrainFormScreen, *, sweep: bool) -> None:
    """Replace `form` with the sweep form (sweep=True) or the single-run form, values kept."""
    texts = form_texts(form)
    kwargs: dict[str, Any] = {"texts": texts, "run_dir": form.requested_run_dir}
    if sweep:
        screen: TrainFormScreen = SweepFormScreen(form.base, **kwargs)
    else:
        screen = TrainFormScreen(form.base, **kwargs)
    form.app.switch_screen(screen)


# --- the form in sweep mode -------------------------------------------------------------------


class SweepFormScreen(TrainFormScreen):
    """The training form where comma-separated values make a grid; Start runs the sweep."""

    HELP_TITLE = "keys of the sweep form"

    BINDINGS = [
        Binding("ctrl+s", "start", "Start sweep", priority=True),
        Binding("ctrl+g", "sweep_mode", "Single run", priority=True),
    ]

    def __init__(
        self,
        *args: Any,
        grid_text: str = "",
        sort: str | None = None,
        mode: str = "grid",
        trials_text: str = "",
        search_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.grid_text = grid_text
        self.sort = sort
        self.mode = mode  # "grid" or "search"
        self.trials_text = trials_text or str(search.DEFAULT_TRIALS)
        self.search_options = dict(search_options or {})
        self.space: dict[str, search.Dimension] = {}  # search mode: the checked space
        self.device_text = (self.initial_texts.pop("device", None) or "").strip()
        self.device_spec = self.device_text or self.base.device
        self.grid: dict[str, list[Any]] = {}
        self._lists: dict[str, list[Any]] = {}  # the fields holding several values
        self.plan: sweeps.SweepPlan | search.SearchPlan | None = None
        self.plan_error = ""  # why there is no plan (shown in the summary)
        self.grid_error = ""  # what is wrong in the grid row (shown beside it)
        self.row_keys: set[str] = set()  # the settings the grid row (space row) lists
        self.model_checks: list[sweeps.ModelCheck] = []  # the models the plan checks

    @classmethod
    def from_settings(cls, settings: TrainFormSettings | None) -> SweepFormScreen:
        """The form filled from `cnn-tui sweep`'s settings; each grid key goes into its field as
        V1,V2 (text fields) or into the grid row (drop-downs and check boxes)."""
        screen = super().from_settings(settings)
        assert isinstance(screen, SweepFormScreen)
        if not isinstance(settings, SweepSettings):
            return screen
        if settings.search:
            screen.mode = "search"
            screen.grid_text = " ".join(settings.space)
            screen.trials_text = str(settings.trials or search.DEFAULT_TRIALS)
            screen.search_options = dict(settings.search_options)
            screen.sort = settings.sort
            return screen
        extra = []
        for name, values in settings.grid.items():
            text = ",".join(sweeps.format_value(value) for value in values)
            if _is_text_field(name):
                screen.initial_texts[name] = text
            else:
                extra.append(f"{name.replace('_', '-')}={text}")
        screen.grid_text = " ".join(extra)
        screen.sort = settings.sort
        return screen

    def compose(self) -> ComposeResult:
        placed = False
        for widget in super().compose():
            if not placed and isinstance(widget, Static) and widget.has_class("form-section"):
                placed = True  # a first section, "Sweep", with the grid row, above "Data"
                yield Static("[b]Sweep[/b]", classes="form-section")
                with Horizontal(classes="form-row", id="row-sweep-mode"):
                    yield Label("mode", classes="form-label")
                    yield Select(
                        [(MODE_LABELS[mode], mode) for mode in MODES],
                        value=self.mode,
                        allow_blank=False,
                        id="sweep-mode",
                        compact=True,
                    )
                    yield Static(classes="field-reason", id="reason-sweep-mode")
                with Horizontal(classes="form-row", id="row-sweep-grid"):
                    yield Label(self.mode == "search" and "space" or "grid", classes="form-label")
                    yield FieldInput(
                        self.grid_text,
                        placeholder=PLACEHOLDERS[self.mode],
                        id="sweep-grid",
                        compact=True,
                    )
                    yield Static(classes="field-reason", id="reason-sweep-grid")
                with Horizontal(classes="form-row", id="row-sweep-trials"):
                    yield Label("trials", classes="form-label")
                    yield FieldInput(self.trials_text, id="sweep-trials", compact=True)
                    yield Static(classes="field-reason", id="reason-sweep-trials")
            yield widget

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # Textual would call the form's on_mount after this one
        super().on_mount()
        self._show_mode()
        if self.device_text:
            self._set_widget("device", self.device_text)
            self.validate_form()

    def _device_options(self, current: str) -> list[tuple[str, str]]:
        options = super()._device_options(current)
        return [("auto (every GPU, else the CPU)", "auto")] + options[1:]

    # --- validation -----------------------------------------------------------------------------

    def _field_values(self, name: str, raw: str) -> list[Any]:
        """A field's comma-separated values, each parsed like its flag."""
        values: list[Any] = []
        for text in raw.split(","):
            if not text.strip():
                raise ConfigError(name, f"{FIELDS[name].flag} has an empty value in its list")
            value = parse_field(name, text)
            if value in values:
                raise ConfigError(name, f"{FIELDS[name].flag}: {text.strip()} is in the list twice")
            values.append(value)
        return values

    def _check_devices(self, text: str) -> None:
        items = [item.strip() for item in text.split(",")]
        if len(items) > 1 and ("auto" in items or "" in items or len(set(items)) < len(items)):
            raise ConfigError(
                "device", "--device: a list of distinct devices such as cuda:0,cuda:1"
            )
        for item in items:
            parse_field("device", item)

    def _applies_in_grid(self, name: str, values: dict[str, Any], grid: dict[str, list]) -> bool:
        """A field applies in a sweep when it does for any value the grid gives its setting
        (momentum, when the grid tries sgd and adam)."""
        setting = APPLIES_WHEN[name][0] if name in APPLIES_WHEN else None
        if setting not in grid:
            return self._applies(name, values)
        return any(self._applies(name, {**values, setting: option}) for option in grid[setting])

    def validate_form(self) -> TrainConfig | None:
        """The form's checks (`TrainFormScreen.validate_form`) with lists of values and the grid
        row; the base settings or None.

        `self.plan` is the checked sweep (None, with `self.plan_error`, when there is no grid
        yet or a run of it breaks a rule or the limit); Start needs it.
        """
        self._lists = {}
        return super().validate_form()

    def _parse_value(self, name: str, raw: Any) -> Any:
        """A list of devices, or a field's list of values (its first stands for it), or one."""
        if name == "device":
            self.device_spec = str(raw or "auto")
            self._check_devices(self.device_spec)
            return "auto" if "," in self.device_spec else self.device_spec
        if isinstance(raw, str) and "," in raw and not FIELDS[name].items:  # (--log a,b: one value)
            self._lists[name] = self._field_values(name, raw)
            return self._lists[name][0]
        return super()._parse_value(name, raw)

    def _inactive_fields(self, values: dict[str, Any]) -> set[str]:
        """Read the grid row too; the grid is the fields' lists and the row's keys, without the
        fields that do not apply to any value of it."""
        if self.mode == "search":
            return self._inactive_in_search(values)
        self.space = {}
        try:
            extra = sweeps.parse_grid(self._grid_row_text().split())
            self.grid_error = ""
        except UsageError as exc:
            extra, self.grid_error = {}, str(exc)
        self.row_keys = set(extra)
        grid = {**self._lists, **extra}
        inactive = {name for name in FIELDS if not self._applies_in_grid(name, values, grid)}
        self.grid = {name: v for name, v in self._lists.items() if name not in inactive}
        for key in extra:
            if key in self.grid:
                self.grid_error = f"{key.replace('_', '-')} already has a list in its field"
        self.grid.update(extra)
        return inactive

    def _inactive_in_search(self, values: dict[str, Any]) -> set[str]:
        """Search mode: the space is the row's dimensions and the fields' lists (a choice each);
        a field applies when it does at either end of a range or for any choice."""
        try:
            row = search.parse_space(self._grid_row_text().split())
            self.grid_error = ""
        except UsageError as exc:
            row, self.grid_error = {}, str(exc)
        self.row_keys = set(row)
        space: dict[str, search.Dimension] = {}
        for name, values_list in self._lists.items():
            try:
                space[name] = search.choice(name, values_list)
            except UsageError as exc:
                self.grid_error = self.grid_error or str(exc)
        for key in row:
            if key in space:
                self.grid_error = f"{key.replace('_', '-')} already has a list in its field"
        space.update(row)
        ends = {name: list(dim.choices or (dim.low, dim.high)) for name, dim in space.items()}
        inactive = {name for name in FIELDS if not self._applies_in_grid(name, values, ends)}
        self.space = {name: dim for name, dim in space.items() if name not in inactive}
        self.grid = {name: ends[name] for name in self.space}
        return inactive

    def _trials(self) -> int:
        text = self.trials_text
        if self.is_mounted:
            try:
                text = self.query_one("#sweep-trials", Input).value
            except Exception:  # noqa: BLE001 - not composed yet
                pass
        try:
            trials = int(text.strip())
        except ValueError:
            raise UsageError(f"trials: expected a whole number, got {text.strip()!r}") from None
        if not 1 <= trials <= search.MAX_TRIALS:
            raise UsageError(f"trials: 1 to {search.MAX_TRIALS}, got {trials}")
        return trials

    def _checks_rules(self) -> bool:
        return not self.grid  # a grid's runs are checked one by one by the plan

    def _validated(self, config: TrainConfig | None) -> None:
        self.plan, self.plan_error = None, self.grid_error
        self.model_checks = []
        if config is None or self.grid_error:
            return
        self._make_plan(config)
        if self.plan is not None:
            self._check_models(self.plan)

    def _make_plan(self, config: TrainConfig) -> None:
        """`self.plan` of the base settings `config`, or `self.plan_error`."""
        if self.mode == "search":
            if not self.space:
                self.plan_error = (
                    "give the space in its row (lr=log:1e-4:1e-1 batch_size=32,64) or several "
                    "values in a field"
                )
                return
            try:
                self.plan = search.make_search_plan(
                    config,
                    self.space,
                    self._trials(),
                    self.device_spec,
                    self.sort,
                    devices=[],
                    **self.search_options,
                )
            except UsageError as exc:
                self.plan_error = str(exc)
            return
        if not self.grid:
            self.plan_error = (
                "type several values separated by commas in a field (epochs 20,50,100) or "
                "KEY=V1,V2 in the grid row"
            )
            return
        try:
            self.plan = sweeps.make_plan(config, self.grid, self.device_spec, self.sort, devices=[])
        except UsageError as exc:
            self.plan_error = str(exc)

    def _check_models(self, plan: sweeps.SweepPlan | search.SearchPlan) -> None:
        """The models the plan builds that may not take its settings (`model_checks`: your own
        classes with each data set, image size and hidden units they are built for; each
        torchvision model with each image size) are checked as the model field's
        (`_models_to_measure`); one found wrong unmakes the plan, its line beside the row that
        varies them (the grid row, else the model field) and in the summary."""
        self.model_checks = plan.model_checks()
        for check in self.model_checks:
            problem = self._model_problem(check.config)
            if problem is None:
                continue
            # the problem first: what a summary cut at 80 columns keeps
            self.plan, self.plan_error = (
                None,
                f"{problem} ({check.runs})" if check.runs else problem,
            )
            if self.row_keys & set(sweeps.BUILD_SETTINGS):  # (the row varies a build)
                self.grid_error = problem
            else:
                self.errors["model"] = problem
            return

    def _models_to_measure(self) -> list[TrainConfig]:
        return super()._models_to_measure() + [check.config for check in self.model_checks]

    def _pending(self) -> list[str]:
        """The models of the plan whose check has not answered yet (their labels)."""
        labels: list[str] = []
        for check in self.model_checks:
            config = check.config
            if model_sizes.needs_measuring(config) and self._model_problem(config) is None:
                label = catalog.model_label(config.model)
                labels += [label] if label not in labels else []
        return labels

    def _still_checking(self, config: TrainConfig) -> bool:
        if super()._still_checking(config):
            return True
        pending = self._pending()
        if pending:
            own = any(catalog.is_own(check.config.model) for check in self.model_checks)
            self.notify(
                f"still checking {', '.join(pending)}{' (your code runs)' * own}: Start once "
                "checked",
                severity="warning",
                markup=False,
            )
        return bool(pending)

    def _warnings(self) -> dict[str, str]:
        """The form's, and the first warning of the plan's own classes (probabilities out)."""
        warnings = super()._warnings()
        for check in self.model_checks:
            found = model_sizes.checked_own(check.config)
            if found is not None and found.warning and "model" not in warnings:
                warnings["model"] = found.warning
        return warnings

    def _startable(self) -> bool:
        return self.plan is not None

    def _show_reasons(self, inactive: set[str]) -> None:
        super()._show_reasons(inactive)
        self._show_sweep()

    def _grid_row_text(self) -> str:
        if not self.is_mounted:
            return self.grid_text
        try:
            return self.query_one("#sweep-grid", Input).value
        except Exception:  # noqa: BLE001 - not composed yet
            return self.grid_text

    def _reason(self, name: str, warnings: dict[str, str], inactive: set[str]) -> Text:
        """A field holding a list says what the grid (or the search) tries (unless it is wrong
        or warned about: a class of the grid that returns probabilities)."""
        values = self.grid.get(name)
        if values is None or name in self.errors or name in warnings:
            return super()._reason(name, warnings, inactive)
        if name in self.space:
            return Text(f"⊞ search: {self.space[name].text()}")
        return Text("⊞ grid: " + ", ".join(sweeps.format_value(value) for value in values))

    def _show_sweep(self) -> None:
        try:
            row = self._node("row-sweep-grid")
        except Exception:  # noqa: BLE001 - validated before the grid row is composed
            return
        grid_error = self.grid_error
        row.set_class(bool(grid_error), "-invalid")
        searching = self.mode == "search"
        hint = (
            "KEY=log:LO:HI, float:LO:HI, int:LO:HI or V1,V2 (space between keys)"
            if searching
            else "drop-downs and check boxes: KEY=V1,V2 (space between keys)"
        )
        reason = grid_error or hint
        if searching:
            trials_error = self._trials_error()
            self._node("row-sweep-trials").set_class(bool(trials_error), "-invalid")
            show_text(
                self._node("reason-sweep-trials"),
                Text(
                    f"✗ {one_line(trials_error)}"
                    if trials_error
                    else "trials in all (TPE sampler seeded from seed)"
                ),
            )
        show_text(
            self._node("reason-sweep-grid"), Text(("✗ " if grid_error else "") + one_line(reason))
        )

    def _trials_error(self) -> str:
        """Why the trials field is refused ('' if it is not)."""
        try:
            self._trials()
        except UsageError as exc:
            return str(exc).removeprefix("trials: ")
        return ""

    def _summary(self, warnings: dict[str, str]) -> str | Text:
        """The plan: the sweep's runs or the search's trials (the fields to fix, first)."""
        if self.config is None:
            return super()._summary(warnings)
        if self.plan is None:
            return Text(f"✗ {one_line(self.plan_error)}", style="bold")
        where = (
            f"{markup(self.config.model)} on {markup(self.config.dataset)}, "
            f"device {markup(self.device_spec)}"
        )
        mark = "[b $text-warning]⚠[/]" if warnings else "✓"
        pending = self._pending()
        if self._checking(self.config) or pending:
            what = markup(", ".join(pending)) if pending else "the model"
            mark = f"[$text-muted]… checking {what},[/]"
        if isinstance(self.plan, search.SearchPlan):
            trials = self._trials()
            names = ", ".join(key.replace("_", " ") for key in self.space)
            pruner = "median pruner" if self.plan.pruner == "median" else "no pruner"
            return (
                f"{mark} search of {trials} trial{'s' * (trials != 1)} over {markup(names)} "
                f"(TPE, {pruner}); {where}"
            )
        count = len(self.plan.runs)
        keys = " × ".join(f"{key.replace('_', ' ')} ({len(v)})" for key, v in self.grid.items())
        return f"{mark} sweep of {count} run{'s' * (count != 1)}: {markup(keys)}; {where}"

    def _show_mode(self) -> None:
        """The rows and the subtitle of the mode: the grid row, or the space and trials rows."""
        searching = self.mode == "search"
        self.sub_title = (
            "search: Optuna's TPE sampler and median pruner over the space"
            if searching
            else "sweep: several values separated by commas make a grid"
        )
        self.query_one("#row-sweep-grid Label", Label).update("space" if searching else "grid")
        self.query_one("#sweep-grid", Input).placeholder = PLACEHOLDERS[self.mode]
        self.query_one("#row-sweep-trials").display = searching
        self.query_one("#reason-sweep-mode", Static).update(Text(MODE_HELP[self.mode]))

    @on(Select.Changed, "#sweep-mode")
    def _mode_changed(self, event: Select.Changed) -> None:
        if event.value not in MODES or event.value == self.mode:
            return
        self.mode = str(event.value)
        self._show_mode()
        self.validate_form()

    @on(Input.Changed, "#sweep-trials")
    def _trials_changed(self) -> None:
        self.validate_form()

    @on(Input.Changed, "#sweep-grid")
    def _grid_changed(self) -> None:
        self.validate_form()

    # --- starting -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.plan is not None or None
        return super().check_action(action, parameters)

    def action_sweep_mode(self) -> None:
        switch_form(self, sweep=False)

    def action_save_preset(self) -> None:
        if self.grid:
            self.notify(
                "a preset holds one value per setting: remove the lists first",
                severity="warning",
                markup=False,
            )
            return
        super().action_save_preset()

    def action_start(self) -> None:
        self.validate_form()
        plan = self.plan
        if plan is None:
            reason = self.plan_error or f"fix: {', '.join(self.errors)}"
            reason = one_line(reason)
            self.notify(f"cannot start the sweep: {reason}", severity="error", markup=False)
            return
        if self.config is not None and self._still_checking(self.config):
            return
        storage = self.search_options.get("storage")
        try:
            devices = sweeps.resolve_devices(self.device_spec)
            plan = dataclasses.replace(plan, devices=devices)
            if isinstance(plan, search.SearchPlan):
                search.load_optuna()  # missing: the line naming the extra, nothing written
                sweep_dir = search.create_search(plan, runs_dir(self.app), self.requested_run_dir)
            else:
                sweep_dir = sweeps.create_sweep(plan, runs_dir(self.app), self.requested_run_dir)
            self.requested_run_dir = None  # a second Start makes a fresh sweep
            # your own class: the file the user named in this form
            pid = sweeps.launch_sweep(sweep_dir, devices, self.sort, storage, True)
        except (OSError, UsageError) as exc:
            exc_text = one_line(exc)
            self.notify(f"cannot start the sweep: {exc_text}", severity="error", markup=False)
            return
        trust.trust(self.app, sweep_dir)
        self.app.push_screen(SweepScreen(sweep_dir, pid=pid, sort=self.sort, storage=storage))


# --- the sweep screen -------------------------------------------------------------------------


class SweepScreen(CompareScreen):
    """A sweep's table (sorted, best starred) over the overlaid curves of its runs."""

    HELP_TITLE = "keys of the sweep"

    BINDINGS = [
        Binding("enter", "open", "Open run", priority=True),
        Binding("o", "sort", "Sort"),
        Binding("c", "compare", "Compare"),
        Binding("s", "stop", "Stop sweep"),
        Binding("r", "resume", "Resume sweep"),
    ]

    def __init__(
        self,
        sweep_dir: str | Path,
        *,
        pid: int | None = None,
        sort: str | None = None,
        resume: bool = False,
        device: str | None = None,
        storage: str | None = None,
        trusted: bool = False,
    ) -> None:
        super().__init__([])
        self.storage = storage  # a search's --storage URL (None: its own study.db)
        self.trusted_at_mount = trusted  # --trust-model-code (`trust`: your own class's code)
        self.study: dict[str, Any] | None = None
        self.sweep_dir = Path(sweep_dir)
        self.pid = pid
        self.sort = sort
        self.resume_at_mount = resume
        self.resume_device = device
        self.manifest: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.state = SweepState.CREATED
        self.runner_status: dict[str, Any] | None = None
        self._shown: list[Any] = []
        self._offsets: dict[Path, int] = {}
        self._kept: dict[Path, list[dict[str, Any]]] = {}
        self._reading = threading.Lock()  # a cancelled reader thread may still be finishing

    @property
    def followed_run_dir(self) -> Path | None:
        """For the quit dialog: the sweep folder's status.json is its runner's."""
        return self.sweep_dir

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="sweep-summary")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="compare-legend")  # the table numbers the runs; hidden by the styles
        with Horizontal(id="compare-charts"):
            yield MetricChart("val loss", id="compare-loss")
            yield MetricChart("val accuracy (%)", percent=True, id="compare-acc")
        yield WrappingFooter()

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # not CompareScreen's on_mount: this one loads and refreshes
        self.sub_title = f"sweep {one_line(self.sweep_dir)}"
        try:
            self.manifest = sweeps.read_manifest(self.sweep_dir)
        except UsageError as exc:
            self.query_one("#sweep-summary", Static).update(Text(one_line(exc), style="bold"))
            return
        self.sort = self.sort or self.manifest.get("sort") or sweeps.DEFAULT_SORT
        # (read_manifest checked that every run folder lies inside the sweep)
        self.run_dirs = [sweeps.run_path(self.sweep_dir, entry) for entry in self.manifest["runs"]]
        table = self.query_one(DataTable)
        header = sweeps.table_header(sweeps.table_keys(self.manifest))
        table.add_column(Text(" "), key="mark")
        for index, title in enumerate(header):
            right = index == 0 or (2 <= index < len(header) - 1)
            table.add_column(Text(title, justify="right" if right else "left"), key=f"c{index}")
        self.query_one("#sweep-summary", Static).update(
            Text(f"reading {one_line(self.sweep_dir)}…")
        )
        if self.trusted_at_mount:
            trust.trust(self.app, self.sweep_dir)
        if self.resume_at_mount:
            self.resume_at_mount = False
            self.resume_trusted(self.resume_device)
        self.load()
        self.set_interval(REFRESH_S, self.load)

    # --- reading --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        """Read the table rows and the runner's state, and the runs' new epoch events."""
        from cnn_tui.training.runs.store import read_events

        if not self.manifest:
            return
        manifest, study = None, None
        with self._reading:
            if search.is_search(self.manifest):  # its runs grow as it asks the study
                try:
                    manifest = sweeps.read_manifest(self.sweep_dir)
                except UsageError:
                    manifest = self.manifest
                self.run_dirs = [sweeps.run_path(self.sweep_dir, e) for e in manifest["runs"]]
                study = search.read_study_report(self.sweep_dir)
            rows = sweeps.sweep_rows(self.sweep_dir, manifest or self.manifest)
            state, status = sweeps.sweep_state(self.sweep_dir)
            grew = not self._kept
            for run_dir in self.run_dirs:
                offset = self._offsets.get(run_dir, 0)
                events, self._offsets[run_dir] = read_events(run_dir, offset)
                kept = [event for event in events if event.get("event") != "batch"]
                self._kept.setdefault(run_dir, []).extend(kept)
                grew = grew or bool(kept)
            curves = {path: list(self._kept[path]) for path in self.run_dirs}
        if get_current_worker().is_cancelled:
            return
        self.post_message(SweepRead(rows, state, status, manifest, study))
        if grew:
            self.post_message(CurvesLoaded(curves))

    @on(SweepRead)
    def _sweep_read(self, message: SweepRead) -> None:
        self.rows, self.state, self.runner_status = message.rows, message.state, message.status
        if message.manifest is not None:
            self.manifest, self.study = message.manifest, message.study
        self._show_rows()
        self.refresh_bindings()

    def _show_rows(self) -> None:
        keys = sweeps.table_keys(self.manifest)
        ranked = sweeps.sort_rows(self.rows, self.sort)
        best = sweeps.best_run(self.rows, self.sort)
        shown = [(row["index"], tuple(sweeps.table_cells(row, keys))) for row in ranked]
        shown.append(best["index"] if best else None)
        if shown != self._shown:
            self._fill_table(ranked, keys, best)
            self._shown = shown
        parts = [
            markup(str(self.sweep_dir)),
            self._state_markup(),
            markup(sweeps.summary_line(self.rows)),
        ]
        title = SORT_LABELS[self.sort]
        if best is not None:
            value = sweeps.format_metric(best, self.sort)
            parts.append(f"★ [b]{markup(best['run'])}[/b] ({title} {value})")
        parts.append(f"sorted by {title} (o: change)")
        if search.is_search(self.manifest):
            parts.append(self._search_markup())
        self.query_one("#sweep-summary", Static).update(" · ".join(parts))

    def _search_markup(self) -> str:
        """A search's trials in the study and its parameter importances (search.json)."""
        trials = sweeps.planned_runs(self.manifest)
        report = self.study
        if report is None:
            return f"search of {trials} trials"
        done = sum(report["trials"].values())
        text = f"study: {done} of {trials} trials"
        pruned = report["trials"].get("pruned")
        text += f" ({pruned} pruned)" if pruned else ""
        found = report["importances"]
        if found:
            ranked = sorted(found.items(), key=lambda item: -item[1])
            shown = ", ".join(f"{key.replace('_', '-')} {value:.2f}" for key, value in ranked)
            text += f" · importance: {shown}"
        return markup(text)

    def _state_markup(self) -> str:
        if self.state in (SweepState.RUNNING, SweepState.ELSEWHERE):
            from cnn_tui.training.runs.state import label
            from cnn_tui.training.runs.store import trainer_host

            state = RunState(self.state)
            shown = label(state, host=trainer_host(self.runner_status))
            return f"[b $text-{state.look.colour}]{state.look.mark} {markup(shown)}[/]"
        if self.state == SweepState.INTERRUPTED:
            look = RunState.INTERRUPTED.look
            return f"[b $text-{look.colour}]{look.mark} the queue runner is gone[/] (r: resume)"
        resumable = (SweepState.STOPPED, SweepState.FAILED, SweepState.CREATED)
        if self.state in resumable and self._to_run():
            look = RunState.STOPPED.look  # runs left to do: shown as a stopped run is
            return f"[b $text-{look.colour}]{look.mark} {self.state}[/] (r: resume)"
        return f"[b]{markup(self.state)}[/]"

    def _to_run(self) -> bool:
        if search.is_search(self.manifest):  # trials left unless its runner finished it
            return self.state != SweepState.FINISHED
        return any(row["status"] in sweeps.TO_RUN for row in self.rows)

    def _fill_table(self, ranked: list[dict[str, Any]], keys: list[str], best: Any) -> None:
        table = self.query_one(DataTable)
        current = self.current_row()
        table.clear()
        theme = self.app.theme_variables
        for row in ranked:
            cells: list[Any] = sweeps.table_cells(row, keys)
            is_best = best is not None and row["index"] == best["index"]
            status = row["status"]
            if status == RunState.PENDING:  # (not bold: nothing has happened to it yet)
                look = RunState.PENDING.look
                last = Text(f"{look.mark} {look.label}", style=theme.get(look.colour, ""))
            else:
                last = status_text(status, theme)
            styled = [
                Text(cell, justify="right" if 0 == i or 2 <= i else "left")
                for i, cell in enumerate(cells[:-1])
            ]
            mark = Text("★" if is_best else " ", style="bold")
            if is_best:
                styled[1].stylize("bold")
            table.add_row(mark, *styled, last, key=str(row["index"]))
        if current is not None:
            table.move_cursor(row=table.get_row_index(str(current["index"])))
        # the column widths follow the new cells on the next idle; repaint the header with them
        self.set_timer(0.1, table.refresh)

    def current_row(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an empty or just-cleared table has no cursor row
            return None
        return next((row for row in self.rows if str(row["index"]) == key), None)

    # --- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        busy = (SweepState.RUNNING, SweepState.ELSEWHERE)
        if action == "stop":  # (elsewhere: Stop says why not)
            return self.state in busy or None
        if action == "resume":
            return (self.state not in busy and self._to_run()) or None
        if action in ("open", "compare"):
            return bool(self.rows) or None
        return True

    def action_sort(self) -> None:
        keys = list(sweeps.SORT_KEYS)
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self._show_rows()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row["status"] == RunState.PENDING:
            self.notify(f"{one_line(row['run'])} has not started yet", markup=False)
            return
        if row["status"] in (RunState.RUNNING, RunState.ELSEWHERE):
            from cnn_tui.ui.training.dashboard import DashboardScreen

            self.app.push_screen(DashboardScreen(row["path"]))
        else:
            from cnn_tui.ui.training.results import ResultsScreen

            self.app.push_screen(ResultsScreen(row["path"]))

    def action_compare(self) -> None:
        started = [Path(row["path"]) for row in self.rows if row["status"] != RunState.PENDING]
        if started:
            self.app.push_screen(CompareScreen(started))
        else:
            self.notify("no run of the sweep has started yet", markup=False)

    def action_stop(self) -> None:
        if self.state == SweepState.ELSEWHERE:
            from cnn_tui.training.runs.launcher import elsewhere
            from cnn_tui.training.runs.store import trainer_host

            host = trainer_host(self.runner_status)
            self.notify(f"the sweep {elsewhere(host)}", severity="warning", markup=False)
            return

        def stop(answer: str | None) -> None:
            if answer != "yes":
                return
            sent = sweeps.stop_sweep(self.sweep_dir, self.pid)  # (identity checked first)
            if sent:
                self.notify("stopping: the runs in progress save a checkpoint", markup=False)
            else:
                self.notify(f"the sweep {sent.reason}", markup=False)

        self.app.push_screen(
            confirm(
                "Stop this sweep?",
                "The runs in progress finish their batch, save a checkpoint and stop; the "
                "others stay pending. r resumes the sweep later.",
                "Stop",
            ),
            stop,
        )

    def action_resume(self) -> None:
        self.resume_trusted(None)

    def resume_trusted(self, device: str | None) -> None:
        """Resume the sweep once its code (your own class) is trusted (`trust.ask_trust`)."""

        question = trust.sweep_question(self.sweep_dir, self.manifest)
        trust.run_when_trusted(self, self.sweep_dir, question, lambda: self.launch(device), "r")

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep-launch")
    def launch(self, device: str | None) -> None:
        """Start the queue runner again (finds the GPUs for `auto`: imports torch, so a thread)."""
        try:
            manifest = sweeps.check_resumable(self.sweep_dir)
            devices = sweeps.resume_devices(manifest, device)
            trusted = trust.is_trusted(self.app, self.sweep_dir)
            self.pid = sweeps.launch_sweep(
                self.sweep_dir, devices, self.sort, self.storage, trusted
            )
        except (OSError, UsageError) as exc:
            self.app.call_from_thread(
                self.notify,
                f"cannot resume the sweep: {one_line(exc)}",
                severity="error",
                markup=False,
            )
            return
        self.app.call_from_thread(self.notify, "sweep resumed", markup=False)
