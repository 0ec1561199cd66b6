"""The batch-norm and dropout lessons' edit form: an example (random from the seed, or a lesson
file), and the lesson's settings (sizes, ε, the momentum, p, the seed), one field each.

A modal over the lesson. Each field is checked as its flag is (`settings.LAYER_SETTINGS`), the
whole example by `layer_lesson.build_layer_example`, so a bad value shows its reason beside its
field and the lesson is left as it was. A lesson file fixes the sizes (their fields are greyed
out; `settings.LAYER_FREE_WITH_EXAMPLE` may still change). Apply returns a `LayerRequest`; the
screen restarts from it. Save as… (F2) writes the example the form describes into the user's
lessons folder, every array explicit (`layer_lesson.layer_file_values`), as the conv / pool and
network forms do (`form.ArrayEditModal.action_save_as`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from cnn_tui.errors import UsageError
from cnn_tui.lessons.layer_lesson import (
    SIZES,
    TITLES,
    LayerExample,
    build_layer_example,
    layer_file_values,
)
from cnn_tui.lessons.library import list_lessons
from cnn_tui.lessons.settings import (
    LAYER_DEFAULTS,
    LAYER_FREE_WITH_EXAMPLE,
    LAYER_LIMITS,
    LAYER_SETTINGS,
    LayerSettings,
)
from cnn_tui.text import markup
from cnn_tui.ui.lessons.form import (
    RANDOM,
    ArrayEditModal,
    FormInput,
    example_option,
    form_buttons,
    save_bindings,
)


@dataclass
class LayerRequest:
    """What the form asks for: the settings (with the example file, if any) and the example
    built from them (already checked)."""

    settings: LayerSettings
    example: LayerExample


class LayerFormScreen(ArrayEditModal[LayerRequest]):
    """Edit the lesson's example and settings; Apply (enter, ctrl+s) checks them, F2 saves them
    as a lesson file, Esc cancels."""

    BINDINGS = save_bindings()

    def __init__(self, example: LayerExample, settings: LayerSettings | None = None) -> None:
        super().__init__()
        self.op = example.op
        self.example = example
        self.values = example.settings()  # every setting of the lesson, as it is now
        chosen = settings.example if settings is not None else None
        self._loaded = chosen or RANDOM  # the example the fields show: a name, a path, "random"
        # a lesson file's seed draws dy (and u) only when given: `r` or the form gave it
        self._seed_given = settings is not None and "seed" in settings.values
        self._array_texts, self._shown_array = {}, ""  # (no arrays edited here)

    def compose(self) -> ComposeResult:
        with Vertical(id="lesson-form"):
            yield Static(f"{TITLES[self.op].capitalize()} lesson: settings", id="lesson-form-title")
            with VerticalScroll(id="lesson-form-body"), Grid(classes="lesson-form-grid"):
                yield Label("example", classes="lesson-form-label")
                yield Select(
                    self._options(), value=self._loaded, allow_blank=False, compact=True,
                    id="form-example",
                )  # fmt: skip
                yield Static("", id="error-example", classes="lesson-form-error")
                for name in LAYER_DEFAULTS[self.op]:
                    setting = LAYER_SETTINGS[name]
                    yield Label(setting.label, classes="lesson-form-label")
                    yield FormInput(
                        setting.format(self.values[name]),
                        compact=True,
                        id=f"form-{name}",
                        tooltip=setting.help.format(
                            default=setting.format(LAYER_DEFAULTS[self.op][name])
                        ),
                    )
                    yield Static("", id=f"error-{name}", classes="lesson-form-error")
            lim = LAYER_LIMITS
            yield Static(
                f"N at most {lim.max_batch}, C at most {lim.max_channels}, H and W at most "
                f"{lim.max_size}; the values are drawn from the seed (r on the lesson: the next "
                "seed); an example's arrays fix the sizes",
                classes="lesson-form-hint",
            )
            yield Static("", id="error-form", classes="lesson-form-error")
            yield from form_buttons()

    def _options(self) -> list[tuple[Any, str]]:
        options: list[tuple[Any, str]] = [("random, from the seed", RANDOM)]
        options += [
            (example_option(info.name, info.title, info.source), info.name)
            for info in list_lessons(self.op)
            if info.op == self.op and not info.problem
        ]
        if self._loaded not in [value for _, value in options]:  # a file by its path
            example = self.example
            options.append((example_option(example.name, example.title, "file"), self._loaded))
        return options

    def on_mount(self) -> None:
        self._grey_fixed_fields()
        first = next(name for name in LAYER_DEFAULTS[self.op] if self._loaded == RANDOM
                     or name not in SIZES)  # fmt: skip
        self.query_one(f"#form-{first}", Input).focus()

    def _grey_fixed_fields(self) -> None:
        for name in SIZES:
            self.query_one(f"#form-{name}", Input).disabled = self._loaded != RANDOM

    @on(Select.Changed, "#form-example")
    def _example_changed(self, event: Select.Changed) -> None:
        chosen = str(event.value)
        if chosen == self._loaded:
            return
        self.query_one("#error-example", Static).update("")
        if chosen != RANDOM:
            try:  # show the chosen example's own sizes and settings
                example = build_layer_example(self.op, example=chosen)
            except UsageError as exc:
                self.query_one("#error-example", Static).update(markup(exc))
                return
            self.example, self.values = example, example.settings()
            for name, value in self.values.items():
                self.query_one(f"#form-{name}", Input).value = LAYER_SETTINGS[name].format(value)
        self._loaded = chosen
        self._seed_given = False  # the chosen file's own dy (and u), unless the seed is changed
        self._grey_fixed_fields()

    # ----------------------------------------------------------------- checking

    def check(self) -> LayerRequest | None:
        """Check every field; show the reasons and return None, or the new request."""
        for widget in self.query(".lesson-form-error"):
            if isinstance(widget, Static):
                widget.update("")
        values: dict[str, Any] = {}
        bad = False
        for name in LAYER_DEFAULTS[self.op]:
            text = self.query_one(f"#form-{name}", Input).value.strip()
            try:
                values[name] = LAYER_SETTINGS[name].parse(text)
            except ValueError as exc:
                self.query_one(f"#error-{name}", Static).update(markup(exc))
                bad = True
        if bad:
            return None
        example = None if self._loaded == RANDOM else self._loaded
        if example is not None:
            # the file fixes the sizes; its seed draws nothing unless changed (a new dy, u)
            free = LAYER_FREE_WITH_EXAMPLE[self.op]
            values = {name: value for name, value in values.items() if name in free}
            if values["seed"] == self.values["seed"] and not self._seed_given:
                del values["seed"]
        settings = LayerSettings(self.op, values, example=example)
        try:
            built = build_layer_example(self.op, example=example, **values)
        except UsageError as exc:
            self.query_one("#error-form", Static).update(markup(exc))
            return None
        return LayerRequest(settings, built)

    # ----------------------------------------------------------------- save as

    def file_values(self, example: Any, title: str, description: str) -> dict[str, Any]:
        return layer_file_values(example, title, description)

    def reopen(self, name: str) -> LayerRequest:
        settings = LayerSettings(self.op, {}, example=name)
        return LayerRequest(settings, build_layer_example(self.op, example=name))
