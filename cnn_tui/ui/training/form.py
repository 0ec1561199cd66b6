"""The training form: every field of `TrainConfig`, validated as it is typed.

The rows are generated from `cnn_tui.training.config.FIELDS` (one source of truth with the CLI flags and
config files): fields with choices become a Select, booleans a Checkbox, the rest an Input. Each
change is parsed with `parse_field` and the whole form is checked with `TrainConfig.from_mapping`
(cross-field rules); the reason shows beside the field and Start stays disabled until every field
is valid. Fields that do not apply to the chosen model or optimiser are disabled (and left out).

Settings are layered by `config.layer_settings`, as for `cnn-tui train --no-ui`: defaults <
preset < config file < flags. A preset that leaves a field to fill (cats-vs-dogs: the data folder)
is applied whole and the field is marked and focused; one that cannot be applied at all is
reported and leaves the form as it was.

Start launches the run as its own process (`cnn_tui.training.runs.launcher`) and opens the live dashboard.
Detecting GPUs imports torch, so it runs in a thread worker after the form is up.

The form opened from the home screen comes back as it was left within the app session (its texts
are kept on the app, `FORM_MEMORY`); a run's "clone settings" opens it filled from that run. Once a
field differs from the loaded preset, the preset box says "custom" instead of the preset's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.geometry import Size
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from cnn_tui import catalog
from cnn_tui.catalog import is_pretrained
from cnn_tui.errors import UsageError
from cnn_tui.text import markup, one_line
from cnn_tui.training import loggers
from cnn_tui.training.config import (
    FIELDS,
    ConfigError,
    TrainConfig,
    layer_settings,
    list_presets,
    parse_field,
    save_preset,
    user_presets_dir,
)
from cnn_tui.training.models import sizes as model_sizes
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training import trust
from cnn_tui.ui.training.messages import DevicesDetected, ModelMeasured
from cnn_tui.ui.training.model_picker import ModelPickerModal, ModelSuggester, read_zoo_rows

# Form sections; a field of FIELDS that is in none of them goes to "Other", so new fields show up.
SECTIONS = (
    ("Data", ("dataset", "data_dir", "limit", "image_size", "val_split")),
    ("Model", ("model", "hidden_units", "weights", "finetune", "cache_features")),
    (
        "Optimisation",
        (
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "momentum",
            "weight_decay",
            "schedule",
            "augment",
            "label_smoothing",
            "grad_clip",
            "early_stop",
            "early_stop_metric",
            "min_delta",
        ),
    ),
    ("Run", ("device", "devices", "sync_bn", "seed", "amp", "channels_last", "log")),
)


def _takes_hidden_units(model: Any) -> bool:
    """simple-cnn, and your own class (its __init__ may take hidden_units)."""
    return model == "simple-cnn" or catalog.is_own(str(model))


def _several(devices: Any) -> bool:
    return str(devices).strip() != "1"


# field -> (which setting it depends on, the values where it applies or a test of the value, the
# note when it does not)
APPLIES_WHEN: dict[str, tuple[str, tuple | Callable[[Any], bool], str]] = {
    "hidden_units": ("model", _takes_hidden_units, "simple-cnn and your own class only"),
    "weights": ("model", is_pretrained, "pretrained models only"),
    "finetune": ("model", is_pretrained, "pretrained models only"),
    "cache_features": ("model", is_pretrained, "pretrained models only"),
    "momentum": ("optimizer", ("sgd",), "sgd only"),
    "data_dir": ("dataset", ("cifar10", "fashion-mnist", "imagefolder"), "not used by shapes"),
    "early_stop_metric": ("early_stop", bool, "early stopping only (early stop above 0)"),
    "min_delta": ("early_stop", bool, "early stopping only (early stop above 0)"),
    "sync_bn": ("devices", _several, "several processes only (devices above 1)"),
}

DEVICE_CHOICES = [("auto (GPU if any)", "auto"), ("cpu", "cpu")]
PRESET_PROMPT = "load a preset…"
FORM_MEMORY = "train_form_texts"  # the app attribute that keeps the form's texts for the session
LABELS = {"early_stop_metric": "stop metric"}  # a row's label, when its name is too long


def format_value(value: Any) -> str:
    """A config value as form text ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class TrainFormSettings:
    """What `cnn-tui train` opens the form with (made by `cnn_tui.commands.train`): where the
    settings come from (`preset`, `config_file`), the settings given one by one as they were typed
    (`texts`: a bad value shows beside its field instead of ending the app), and the run: start it
    at once, into `run_dir`, or resume the run in `resume`."""

    preset: str | None = None
    config_file: str | None = None
    texts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    start: bool = False
    run_dir: str | None = None
    resume: str | None = None
    # --trust-model-code: a run (sweep) of your own class given to resume may run its code
    trust_model_code: bool = False


class FieldInput(Input):
    """A text field of the form: typing into it repaints the field and lays out nothing.

    Textual's Input sets its virtual size (the text's width, which its scrolling reads) at every
    change, and `Widget.virtual_size` asks for a layout of the whole screen when it changes: one
    pass over the form's ~160 widgets per key. The form's fields have a fixed size (app.tcss), so
    their text never moves anything; an Input whose size follows its text (width: auto) still asks
    for the layout itself (`Input._watch_value`)."""

    virtual_size = Reactive(Size(0, 0), layout=False)


def show_text(widget: Static, content: Text | str) -> None:
    """`widget.update(content)` unless it shows that already, laying out the screen only when
    the widget's size follows its text (a reason that wraps: height auto). Redrawing the same
    texts at every key cost a layout pass of the whole form each."""
    if widget.content == content:
        return
    widget.update(content, layout=widget.styles.auto_dimensions)


def _sections() -> list[tuple[str, list[str]]]:
    placed = {name for _, names in SECTIONS for name in names}
    sections = [(title, [n for n in names if n in FIELDS]) for title, names in SECTIONS]
    rest = [name for name in FIELDS if name not in placed]
    return sections + ([("Other", rest)] if rest else [])


class TrainFormScreen(Screen):
    """Pick hyperparameters, load or save presets, start a run."""

    HELP_TITLE = "keys of the training form"
    HELP_NOTE = (
        "Tab and shift+Tab move from field to field; beside each field is what it means, or why "
        "its value is refused (✗) or seldom meant (⚠). In a text field ? is typed: F1 opens "
        "this page."
    )

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("ctrl+t", "save_preset", "Save preset", priority=True),
        Binding("ctrl+l", "find_lr", "Find LR", priority=True),
        Binding("ctrl+g", "sweep_mode", "Sweep", priority=True),
        Binding("ctrl+o", "pick_model", "Models", priority=True),
    ]

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        texts: dict[str, str] | None = None,
        start: bool = False,
        run_dir: str | None = None,
        resume: str | None = None,
        resume_trusted: bool = False,
        error: str = "",
        error_title: str = "Settings not applied",
        source: str = "",
        remembered: bool = False,
    ) -> None:
        """`source` says where `config` was layered from (e.g. "preset cats-vs-dogs"); `error`
        why it could not be, shown at once under `error_title` (the form keeps the defaults).
        `remembered`: fill the form with the texts it had when it was last left in this app."""
        super().__init__()
        self.base = config or TrainConfig()
        self.initial_texts = texts or {}
        self.start_at_once = start
        self.requested_run_dir = run_dir
        self.resume_dir = resume
        self.resume_trusted = resume_trusted  # (the command refused it untrusted: own.check_run)
        self.startup_error = error
        self.startup_error_title = error_title
        self.settings_source = source
        self.remembered = remembered
        self._preset_texts: tuple[str, dict[str, str]] | None = None  # loaded preset, its texts
        self.cross_field_error: ConfigError | None = None  # the rule between fields that fails
        self.errors: dict[str, str] = {}
        self.config: TrainConfig | None = None
        # (model, image size) -> why the model does not take that size (found measuring it)
        # (`sizes.measure_key`: for your own class also its file as it is now) -> the problem
        self._model_problems: dict[tuple, str] = {}
        self._measuring: set[tuple] = set()  # what `measure_models` measures now
        self._devices: list[tuple[str, str]] = list(DEVICE_CHOICES)
        self._device_notes: dict[str, str] = {}  # device -> what was detected (GPU, free memory)
        self._nodes_by_id: dict[str, Widget] = {}  # `_node`

    @classmethod
    def from_settings(cls, settings: TrainFormSettings | None) -> TrainFormScreen:
        """The form filled from `cnn-tui train`'s settings: defaults < preset < --config < flags
        (None, from the home screen: the form as it was last left).

        The preset and config file are layered by `layer_settings`, as for `--no-ui`, and the
        rules between fields are left to the form, which marks and focuses the field to fill.
        Flag values go into the form as typed, so a bad one shows its reason beside the field
        instead of ending the app; a preset or config file that cannot be applied is reported.
        """
        if settings is None:
            return cls(remembered=True)
        sources = {"preset": settings.preset, "config file": settings.config_file}
        given = {kind: value for kind, value in sources.items() if value is not None}
        config, error = TrainConfig(), ""
        try:
            config = layer_settings(preset=settings.preset, config_file=settings.config_file)
        except UsageError as exc:
            error = str(exc)
        return cls(
            config,
            texts=dict(settings.texts),
            start=settings.start,
            run_dir=settings.run_dir,
            resume=settings.resume,
            resume_trusted=settings.trust_model_code,
            error=error,
            error_title=f"{' and '.join(given) or 'settings'} not applied".capitalize(),
            source=" and ".join(f"{kind} {value}" for kind, value in given.items()),
        )

    # --- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        memory = getattr(self.app, FORM_MEMORY, None)
        if self.remembered and isinstance(memory, dict):
            self.initial_texts = {name: text for name, text in memory.items() if name in FIELDS}
        yield Header()
        with Horizontal(id="form-presets"):
            yield Label("Preset", classes="form-label")
            yield Select(self._preset_options(), prompt=PRESET_PROMPT, id="preset", compact=True)
            yield Button("Save as preset…", id="save-preset", compact=True)
        # (no Tab stop of its own: focus moves field to field and scrolls the field into view)
        with VerticalScroll(id="form-fields", can_focus=False):
            for title, names in _sections():
                yield Static(f"[b]{title}[/b]", classes="form-section")
                for name in names:
                    with Horizontal(classes="form-row", id=f"row-{name}"):
                        label = LABELS.get(name, name.replace("_", " "))
                        yield Label(label, classes="form-label")
                        yield self._field_widget(name)
                        yield Static(classes="field-reason", id=f"reason-{name}")
        with Horizontal(id="form-actions"):
            yield Static(id="form-summary")
            yield Button("Find LR", id="find-lr", compact=True)
            yield Button("Start ▶", id="start", variant="success", compact=True)
        yield WrappingFooter()

    def _field_widget(self, name: str) -> Widget:
        field = FIELDS[name]
        value = getattr(self.base, name)
        widget_id = f"field-{name}"
        if name == "device":
            return Select(
                [(label, value) for label, value in self._device_options(value)],
                value=value,
                allow_blank=False,
                id=widget_id,
                compact=True,
            )
        if field.choices:
            return Select(
                [(choice, choice) for choice in field.choices],
                value=value,
                allow_blank=False,
                id=widget_id,
                compact=True,
            )
        if field.kind is bool:
            return Checkbox(value=bool(value), id=widget_id, compact=True)
        # (an item list, --log: typed as on the command line, "tensorboard,csv")
        placeholder = "none" if field.items else "default" if field.optional else ""
        text = self.initial_texts.get(name, format_value(value))
        if name == "model":  # completed inline; ctrl+o opens the picker
            suggester = ModelSuggester(self.app)
            return FieldInput(text, placeholder="ctrl+o: pick", id=widget_id, compact=True,
                              suggester=suggester)  # fmt: skip
        return FieldInput(text, placeholder=placeholder, id=widget_id, compact=True)

    def _device_options(self, current: str) -> list[tuple[str, str]]:
        options = list(self._devices)
        if current not in [value for _, value in options]:
            options.append((current, current))
        return options

    def _preset_options(self) -> list[tuple[str, str]]:
        options = []
        for preset in list_presets():
            where = "" if preset.builtin else " (yours)"
            about = f" — {preset.description}" if preset.description else ""
            # (a preset file's name and description: an option's label is markup)
            options.append((markup(f"{preset.name}{where}{about}"), str(preset.path)))
        return options

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-compact")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Mark the row of the focused field (`-focused`: its label reversed, app.tcss), so the
        field that typing goes to is plain in any colour system, or none. (A `:focus-within`
        rule on the row does not restyle the label when focus moves, so the row is marked here.)"""
        for row in self.query(".form-row.-focused, #form-presets.-focused"):
            row.remove_class("-focused")
        for node in event.widget.ancestors_with_self:
            if isinstance(node, Widget) and (
                node.has_class("form-row") or node.id == "form-presets"
            ):
                node.add_class("-focused")
                break
        if event.widget.id == "field-model":  # torchvision's names, for the inline completion
            self.load_zoo_names()

    def _focus_first_field(self) -> None:
        """Typing goes to the form's first field (the sweep's grid row, else the data set)."""
        for widget in self.query_one("#form-fields").query("Input, Select, Checkbox"):
            if widget.focusable:
                widget.focus()
                return

    def on_mount(self) -> None:
        self.sub_title = "train a model"
        folders = getattr(self.app, "run_folders", None)
        if folders is not None and folders.several:  # (--runs-dir given more than once)
            self.sub_title += f" · new runs go into {one_line(runs_dir(self.app))}"
        # flag texts for Select/Checkbox fields (choices were checked by argparse-free parsing)
        for name, text in self.initial_texts.items():
            field = FIELDS[name]
            if field.kind is bool or field.choices or name == "device":
                try:
                    self._set_widget(name, parse_field(name, text))
                except ConfigError as exc:
                    self.notify(one_line(exc), severity="error", markup=False)
        if self.startup_error:
            self.notify(
                one_line(self.startup_error),
                title=self.startup_error_title,
                severity="error",
                markup=False,
            )
            valid = self._point_at_errors()
        else:
            valid = self._point_at_errors(self.settings_source)
        if valid:
            self._focus_first_field()
        self.remember()
        self.detect_devices()
        if self.resume_dir:
            self.call_after_refresh(self._resume, Path(self.resume_dir))
        elif self.start_at_once:
            self.call_after_refresh(self.action_start)

    # --- values and validation ------------------------------------------------------------------

    def _node(self, node_id: str) -> Any:
        """The form's widget of that id, looked up once (validating the form at every key
        looked each row's widgets up again, each a walk of the whole form)."""
        widget = self._nodes_by_id.get(node_id)
        if widget is None or not widget.is_attached:
            widget = self._nodes_by_id[node_id] = self.query_one(f"#{node_id}")
        return widget

    def _widget(self, name: str) -> Widget:
        return self._node(f"field-{name}")

    def _set_widget(self, name: str, value: Any) -> None:
        widget = self._widget(name)
        if isinstance(widget, Select):
            if name == "device":
                widget.set_options(self._device_options(str(value)))
            widget.value = value
        elif isinstance(widget, Checkbox):
            widget.value = bool(value)
        elif isinstance(widget, Input):
            widget.value = format_value(value)

    def _raw_value(self, name: str) -> Any:
        widget = self._widget(name)
        if isinstance(widget, Input):
            return widget.value
        if isinstance(widget, Select):
            return None if widget.value is Select.NULL else widget.value
        return bool(widget.value)  # Checkbox

    def _applies(self, name: str, values: dict[str, Any]) -> bool:
        if name not in APPLIES_WHEN:
            return True
        setting, allowed, _ = APPLIES_WHEN[name]
        value = values.get(setting, getattr(self.base, setting))
        return allowed(value) if callable(allowed) else value in allowed

    def validate_form(self) -> TrainConfig | None:
        """Parse every field, check the cross-field rules, show the reasons; the config or None.

        The sweep form runs the same steps through its hooks: `_parse_value` (lists of values),
        `_inactive_fields` (a field applies for any value of the grid), `_checks_rules`,
        `_validated` (the plan) and `_startable`."""
        was_startable = self._startable()
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name in FIELDS:
            try:
                values[name] = self._parse_value(name, self._raw_value(name))
            except ConfigError as exc:
                errors[name] = str(exc)
        inactive = self._inactive_fields(values)
        for name in inactive:
            errors.pop(name, None)
            values.pop(name, None)
        config, self.cross_field_error = None, None
        if not errors:
            try:
                config = TrainConfig.from_mapping(values, check=self._checks_rules())
                loggers.check_installed(config.loggers)  # as the trainer would refuse it
            except ConfigError as exc:
                config = None
                errors[exc.field or "dataset"] = str(exc)
                self.cross_field_error = exc
        if config is not None and (problem := self._model_problem(config)):
            errors["model"], config = problem, None
        self.errors, self.config = errors, config
        self._validated(config)
        self._start_measuring()
        self._show_reasons(inactive)
        if was_startable != self._startable():
            self.refresh_bindings()  # the footer greys out Start while the form is invalid
        return config

    def _parse_value(self, name: str, raw: Any) -> Any:
        """A field's value from its widget's (text parsed like its flag)."""
        return parse_field(name, raw) if isinstance(raw, str) else raw

    def _inactive_fields(self, values: dict[str, Any]) -> set[str]:
        """The fields that do not apply to these values (disabled and left out)."""
        return {name for name in FIELDS if not self._applies(name, values)}

    def _checks_rules(self) -> bool:
        """Whether the rules between fields hold for the form's values as they are."""
        return True

    def _validated(self, config: TrainConfig | None) -> None:
        """After the fields were checked (`self.errors`, `self.config`): nothing more to do."""

    def _startable(self) -> bool:
        return self.config is not None

    def _models_to_measure(self) -> list[TrainConfig]:
        """The settings whose model is measured (or checked: your own class) before Start."""
        return [self.config] if self.config is not None else []

    def _warnings(self) -> dict[str, str]:
        """The settings' warnings (`TrainConfig.warnings`), and the check's of your own class
        (a forward that returns probabilities)."""
        if self.config is None:
            return {}
        warnings = dict(self.config.warnings())
        if catalog.is_own(self.config.model) and not self._checking(self.config):
            if found := model_sizes.measure_own(self.config).warning:
                warnings["model"] = found
        return warnings

    @staticmethod
    def _checking(config: TrainConfig) -> bool:
        """Whether the check of `config`'s own class has not answered yet."""
        return catalog.is_own(config.model) and model_sizes.needs_measuring(config)

    def _still_checking(self, config: TrainConfig) -> bool:
        """Whether Start must wait for the check of `config`'s own class (and says so)."""
        if not self._checking(config):
            return False
        label = catalog.model_label(config.model)
        self.notify(
            f"still checking the model {label} (its file runs): Start once it is checked",
            severity="warning",
            markup=False,
        )
        return True

    def on_unmount(self) -> None:
        model_sizes.abandon_checks(self)  # a file that loops at import never holds the app

    def _show_reasons(self, inactive: set[str]) -> None:
        """Each row's marks and reason, the buttons and the summary; only what changed is
        redrawn (`show_text`), so a key that changes no field's validity lays out nothing."""
        # valid settings seldom meant (a random frozen backbone): beside the field, Start stays
        warnings = self._warnings()
        for name in FIELDS:
            row = self._node(f"row-{name}")
            self._widget(name).disabled = name in inactive
            row.set_class(name in inactive, "-inactive")
            row.set_class(name in self.errors, "-invalid")
            row.set_class(name in warnings and name not in inactive, "-warning")
            show_text(self._node(f"reason-{name}"), self._reason(name, warnings, inactive))
        self._node("start").disabled = not self._startable()
        self._node("find-lr").disabled = self.config is None
        show_text(self._node("form-summary"), self._summary(warnings))

    def _reason(self, name: str, warnings: dict[str, str], inactive: set[str]) -> Text:
        """What shows beside a field: its warning, why it is refused, why it does not apply,
        what was found (the device, the model's size), or its help."""
        field = FIELDS[name]
        if name in warnings and name not in inactive:
            return Text(f"⚠ {one_line(warnings[name])}")
        if name in self.errors:
            # beside the field, "--epochs must be ..." reads better as "must be ..."
            text = self.errors[name].removeprefix(f"{field.flag} ").removeprefix(":")
            return Text(f"✗ {one_line(text.strip())}")
        if name in inactive:
            return Text(APPLIES_WHEN[name][2])
        if name == "device" and self._device_notes.get(self._raw_value(name)):
            return Text(one_line(self._device_notes[self._raw_value(name)]))
        if name == "model" and (note := self._model_note()):
            return Text(note)
        return Text(field.help)

    def _summary(self, warnings: dict[str, str]) -> str | Text:
        """The line beside Start: the fields to fix, or what Start runs."""
        if self.config is None:
            names = ", ".join(name.replace("_", " ") for name in self.errors)
            count = len(self.errors)
            return f"[b $text-error]✗ {count} field{'s' * (count != 1)} to fix:[/] {names}"
        c = self.config
        mark = "[b $text-warning]⚠[/]" if warnings else "✓"  # the reason is beside the field
        if self._checking(c):
            mark = "[$text-muted]… checking the model,[/]"
        return (
            f"{mark} {markup(catalog.model_label(c.model))} on {c.dataset}, {c.epochs} epoch{'s' * (c.epochs != 1)}, "
            f"batch {c.batch_size}, {c.optimizer} lr {c.lr:g}, device {c.device}"
        )

    def _model_note(self) -> str | None:
        """A pretrained model's size and training memory at the chosen settings (torch-free for
        the short names; a torchvision:NAME model is measured once per image size by a thread
        worker, `measure_models`, and says so meanwhile)."""
        if self.config is None:
            return None
        if model_sizes.needs_measuring(self.config):  # (`_start_measuring` started it)
            if catalog.is_own(self.config.model):
                return f"checking {catalog.model_label(self.config.model)} (its file runs)…"
            return f"measuring {self.config.model}…"
        device = self.config.device
        gpus = any(name.startswith("cuda") for name in self._device_notes)
        return model_sizes.describe(
            self.config, cuda=device.startswith("cuda") or (device == "auto" and gpus)
        )

    def _model_problem(self, config: TrainConfig) -> str | None:
        """Why `config`'s torchvision model does not take its image size (or is no model of
        the registry), once measuring it found that; None otherwise."""
        return self._model_problems.get(model_sizes.measure_key(config))

    def _start_measuring(self) -> None:
        """Measure (check) the models of `_models_to_measure` not known yet, in a worker; one
        that no longer needs what it measures is superseded, its checks let go."""
        wanted: dict[tuple, TrainConfig] = {}
        for config in self._models_to_measure():
            if not model_sizes.needs_measuring(config):
                continue
            key = model_sizes.measure_key(config)
            if key not in self._model_problems:
                wanted.setdefault(key, config)
        if wanted and set(wanted) <= self._measuring:
            return  # (the worker measures them already)
        if self._measuring:
            model_sizes.abandon_checks(self)  # superseded: a file that loops is let go
        self._measuring = set(wanted)
        if wanted:
            self.measure_models(list(wanted.items()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="measure-model")
    def measure_models(self, models: list[tuple[tuple, TrainConfig]]) -> None:
        """Measure each (key, settings) in turn: a torchvision model built on the meta device
        (imports torchvision); your own class run, built for the settings and checked with a dry
        forward in a child process (`sizes.check_own`), so a slow import never freezes the form."""
        worker = get_current_worker()
        for key, config in models:
            if worker.is_cancelled:
                return
            try:
                if catalog.is_own(config.model):
                    model_sizes.check_own(config, owner=self)  # (killed when superseded)
                else:
                    model_sizes.measure(config.model, model_sizes.image_size_of(config))
            except model_sizes.CheckAbandoned:  # superseded, or the form closed
                return
            except UsageError as exc:
                self.post_message(ModelMeasured(key, str(exc)))
                continue
            self.post_message(ModelMeasured(key, ""))

    @on(ModelMeasured)
    def _model_measured(self, message: ModelMeasured) -> None:
        if message.problem:
            self._model_problems[message.key] = message.problem
        self._measuring.discard(message.key)
        self.validate_form()

    @work(thread=True, exclusive=True, exit_on_error=False, group="zoo-names")
    def load_zoo_names(self) -> None:
        """Read torchvision's registry once (imports it) for the model field's completion."""
        read_zoo_rows(self.app)

    def action_pick_model(self) -> None:
        """The model picker: every model, filtered as typed; the pick goes into the field."""
        field = self._widget("model")

        def picked(model: str | None) -> None:
            if model:
                self._set_widget("model", model)
                self.validate_form()
            field.focus()

        self.app.push_screen(ModelPickerModal(str(self._raw_value("model") or "")), picked)

    def field_texts(self) -> dict[str, str]:
        """Every field as text (what `texts=` takes): to keep the form or carry it over."""
        from cnn_tui.ui.training.sweep import form_texts

        return form_texts(self)

    def remember(self) -> None:
        """Keep the texts on the app: the form reopened from home comes back as it was left."""
        setattr(self.app, FORM_MEMORY, self.field_texts())

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _field_changed(self, event: Input.Changed | Select.Changed | Checkbox.Changed) -> None:
        widget_id = event.control.id or ""
        if widget_id.startswith("field-"):
            self.validate_form()
            self._mark_custom()
            self.remember()

    def _mark_custom(self) -> None:
        """A field now differs from the loaded preset: the preset box says "custom"."""
        if self._preset_texts is None:
            return
        name, texts = self._preset_texts
        now = self.field_texts()
        if any(now.get(field) != text for field, text in texts.items()):
            self._preset_texts = None
            select = self.query_one("#preset", Select)
            select.prompt = f"custom (changed from {markup(name)})"
            select.clear()

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    # --- presets --------------------------------------------------------------------------------

    @on(Select.Changed, "#preset")
    def _load_preset(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        path = Path(str(event.value))
        try:
            config = layer_settings(preset=path)
        except UsageError as exc:  # the form stays as it was
            self.notify(one_line(exc), title="Preset not applied", severity="error", markup=False)
            event.select.clear()
            return
        self.fill(config)
        loaded = self._point_at_errors(f"preset {path.stem}")
        # the fields the preset leaves to fill are not "changes" from it
        texts = {k: v for k, v in self.field_texts().items() if k not in self.errors}
        self._preset_texts = (path.stem, texts)
        event.select.prompt = PRESET_PROMPT
        if loaded:
            self.notify(f"loaded preset {one_line(path.stem)}", title="Preset", markup=False)

    def _point_at_errors(self, source: str = "") -> bool:
        """Focus the first field to fix; True if there is none.

        A preset (or config file) may leave a field to fill, e.g. cats-vs-dogs the data folder:
        a rule between fields fails until then, and a notification from `source` says so.
        """
        if self.validate_form() is not None:
            return True
        name = next(iter(self.errors))
        self._widget(name).focus()
        if source and self.cross_field_error is not None:
            self.notify(
                f"{one_line(source)} is loaded; {name.replace('_', ' ')} still needs a value "
                f"({one_line(self.cross_field_error)})",
                title="One more setting needed",
                severity="warning",
                markup=False,
            )
        return False

    def fill(self, config: TrainConfig) -> None:
        """Put every value of `config` into the form."""
        self.base = config
        for name in FIELDS:
            self._set_widget(name, getattr(config, name))
        self.validate_form()

    def action_save_preset(self) -> None:
        from cnn_tui.ui.training.dialogs import PresetNameModal

        config = self.validate_form()
        if config is None:
            self.notify(
                "fix the fields marked ✗ before saving a preset", severity="warning", markup=False
            )
            return

        def save(name: str, description: str) -> str | None:
            try:
                path = save_preset(config, name, description)
            except UsageError as exc:
                return str(exc)
            saved = f"saved preset {one_line(name)} to {one_line(path)}"
            self.notify(saved, title="Preset", markup=False)
            self.query_one("#preset", Select).set_options(self._preset_options())
            return None

        self.app.push_screen(PresetNameModal(user_presets_dir(), save))

    @on(Button.Pressed, "#save-preset")
    def _save_pressed(self) -> None:
        self.action_save_preset()

    # --- devices --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="detect-devices")
    def detect_devices(self) -> None:
        """Ask torch for the GPUs (slow: imports torch) and post them to the form."""
        from cnn_tui.training.system.devices import detect_devices

        self.post_message(DevicesDetected([(d.name, d.label) for d in detect_devices()]))

    @on(DevicesDetected)
    def _devices_detected(self, message: DevicesDetected) -> None:
        self._devices = [DEVICE_CHOICES[0]] + [
            (markup(f"{name} — {label}"), name) for name, label in message.devices
        ]
        self._device_notes = dict(message.devices)
        gpus = [label for name, label in message.devices if name.startswith("cuda")]
        self._device_notes["auto"] = f"auto: {gpus[0]}" if gpus else "auto: no GPU found, the CPU"
        select = self.query_one("#field-device", Select)
        current = select.value if select.value is not Select.NULL else "auto"
        select.set_options(self._device_options(str(current)))
        select.value = current
        self.validate_form()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "detect-devices" and event.state == WorkerState.ERROR:
            self.notify(
                f"cannot list the GPUs ({one_line(event.worker.error)}); auto and cpu still work",
                severity="warning",
                markup=False,
            )

    # --- the LR finder --------------------------------------------------------------------------

    @on(Button.Pressed, "#find-lr")
    def _find_lr_pressed(self) -> None:
        self.action_find_lr()

    def action_find_lr(self) -> None:
        """The learning-rate range test on the form's settings; "Use it" fills the lr field."""
        config = self.validate_form()
        if config is None:
            fields = ", ".join(self.errors)
            self.notify(f"cannot find a learning rate yet, fix: {fields}", severity="error")
            return
        from cnn_tui.ui.training.lr_finder import LRFinderScreen

        def use(lr: float | None) -> None:
            if lr is None:
                return
            self._set_widget("lr", lr)
            self.validate_form()
            self.notify(f"lr set to {lr:g} (from the LR finder)", title="Find LR", markup=False)

        self.app.push_screen(LRFinderScreen(config), use)

    # --- starting -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("start", "find_lr"):
            return self.config is not None or None  # None: shown greyed out in the footer
        return True

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        config = self.validate_form()
        if config is None:
            fields = ", ".join(self.errors)
            self.notify(f"cannot start yet, fix: {fields}", severity="error", markup=False)
            return
        if self._still_checking(config):
            return
        from cnn_tui.training.runs.launcher import launch_run
        from cnn_tui.training.runs.store import new_run_dir

        try:
            if self.requested_run_dir:
                run_dir = Path(self.requested_run_dir)
                run_dir.mkdir(parents=True, exist_ok=True)
                self.requested_run_dir = None  # a second Start makes a fresh run
            else:
                run_dir = new_run_dir(runs_dir(self.app), config)
            pid = launch_run(config, run_dir)
        except (OSError, UsageError) as exc:
            self.notify(f"cannot start the run: {one_line(exc)}", severity="error", markup=False)
            return
        trust.trust(self.app, run_dir)  # your own class: the file the user named here
        self._open_dashboard(run_dir, pid)

    def _resume(self, run_dir: Path) -> None:
        from cnn_tui.training.runs.launcher import resume_run

        if self.resume_trusted:
            trust.trust(self.app, run_dir)
        try:
            pid = resume_run(run_dir, self.resume_trusted)
        except OSError as exc:
            self.notify(
                f"cannot resume {one_line(run_dir)}: {one_line(exc)}",
                severity="error",
                markup=False,
            )
            return
        self._open_dashboard(run_dir, pid)

    def action_sweep_mode(self) -> None:
        """Switch to the sweep form (comma-separated values make a grid), values kept."""
        from cnn_tui.ui.training.sweep import switch_form

        switch_form(self, sweep=True)

    def _open_dashboard(self, run_dir: Path, pid: int) -> None:
        from cnn_tui.ui.training.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(run_dir, pid=pid))


def runs_dir(app: Any) -> Path:
    """Where the app's new runs go: the first --runs-dir of its command line (default ./runs;
    `CnnTuiApp.run_folders`)."""
    return Path(getattr(app, "runs_dir", "runs"))
