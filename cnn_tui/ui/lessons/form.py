"""The lesson's parameter form: sizes, kernel, stride, padding, seed, pool type, an example preset,
and the values of the arrays as editable text.

It is a modal over the lesson. Its rows are the settings of the op (`lessons.settings.FIELDS`),
each checked as its flag is (`SETTINGS[name].parse`), greyed out while a named example fixes it
(`FIXED_BY_EXAMPLE`); then the whole example is built with `examples.build_example`, so a bad
value shows its reason beside the field and the lesson is left as it was. Apply returns
a `LessonRequest`; the screen recomputes and restarts the replay from it.

Save as… (F2, or its button) checks the form the same way, asks for a name, a title and a
description (`save_dialog.SaveLessonScreen`) and writes the example the form describes (every
array explicit, a seed-drawn one too: `examples.example_file_values`) into the user's lessons
folder (`lessons.library.save_lesson`); the lesson then shows the saved example, by its name. The
example picker lists the shipped examples and the user's ("yours").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from cnn_tui.errors import UsageError
from cnn_tui.lessons import library
from cnn_tui.lessons.replay import EDITABLE_ARRAYS, format_array, make_example, parse_array
from cnn_tui.lessons.settings import FIELDS, FIXED_BY_EXAMPLE, SETTINGS
from cnn_tui.text import markup, one_line
from cnn_tui.ui.lessons.save_dialog import SaveLessonScreen

RANDOM = "random"


RequestT = TypeVar("RequestT")


class FormInput(Input):
    """A form field where ctrl+a selects all, as in other programs (Textual's Input binds it
    to "go to start" and select-all to ctrl+shift+a, which users do not know)."""

    BINDINGS = [Binding("ctrl+a", "select_all", "Select all", show=False)]


class FormTextArea(TextArea):
    """The array values, where ctrl+a selects all too (see `FormInput`)."""

    BINDINGS = [Binding("ctrl+a", "select_all", "Select all", show=False)]


def _shown_text(widget: Static) -> str:
    return str(widget.content)


def example_option(name: str, title: str, source: str) -> Text:
    """An example in a form's picker: "edge-detect: Vertical edge detector", "mine (yours): ..."
    for the user's own, "week3.toml (file): ..." for one opened by its path. The name first: a
    long title is cut on one line. Plain text: a title is not markup."""
    mark = {"yours": " (yours)", "file": " (file)"}.get(source, "")
    return Text(one_line(f"{name}{mark}: {title}"), no_wrap=True, overflow="ellipsis")


def save_bindings() -> list[Binding]:
    """The forms' keys: apply, save as, cancel."""
    return [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply", priority=True),
        Binding("f2", "save_as", "Save as…", priority=True),
    ]


def form_buttons() -> ComposeResult:
    """Apply, Save as… and Cancel, as both forms show them."""
    with Horizontal(id="lesson-form-buttons"):
        yield Button("Apply (ctrl+s)", variant="primary", compact=True, id="form-apply")
        yield Button("Save as… (F2)", compact=True, id="form-save")
        yield Button("Cancel (esc)", compact=True, id="form-cancel")


class ArrayEditModal(ModalScreen[RequestT | None]):
    """What the lesson edit forms share: one TextArea showing the array picked in #form-array
    (`_array_texts` keeps every array's text, `_shown_array` names the one shown), Apply (enter
    or #form-apply) dismisses with `check()`'s request when it is valid, Cancel with None.

    Errors go away as soon as the values are fixed: once Apply has shown one, every change
    of a field or of the values checks the whole form again (`check()`, cheap: no loops run),
    so the reasons always describe what is typed now."""

    _array_texts: dict[str, str]
    _shown_array: str
    _saved_command = ""  # the subcommand of the example last saved ("conv", "net", …)

    def check(self) -> RequestT | None:
        raise NotImplementedError

    def _complaining(self) -> bool:
        return any(
            _shown_text(widget)
            for widget in self.query(".lesson-form-error")
            if isinstance(widget, Static)
        )

    @on(Input.Changed)
    @on(TextArea.Changed, "#form-values")
    def _value_changed(self) -> None:
        if self._complaining():
            self.check()

    @on(Select.Changed, "#form-array")
    def _array_changed(self, event: Select.Changed) -> None:
        area = self.query_one("#form-values", TextArea)
        self._array_texts[self._shown_array] = area.text
        self._shown_array = str(event.value)
        area.load_text(self._array_texts[self._shown_array])

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#form-apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#form-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#form-save")
    def _save_pressed(self) -> None:
        self.action_save_as()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_apply(self) -> None:
        request = self.check()
        if request is not None:
            self.dismiss(request)

    # ----------------------------------------------------------------- save as

    def file_values(self, example: Any, title: str, description: str) -> dict[str, Any]:
        """The keys of the lesson file that reproduces `example` (a checked request's)."""
        raise NotImplementedError

    def board_changes(self, request: RequestT) -> list[str]:
        """What the checked `request` changes from the example it starts from ("α 0.5", "x, w1
        edited"), for the Save dialog's default description; [] when nothing changed."""
        return ["values edited"] if getattr(request.example, "edited", False) else []  # type: ignore[attr-defined]

    def reopen(self, name: str) -> RequestT:
        """The request that shows the example saved as `name`, read back from its file."""
        raise NotImplementedError

    def action_save_as(self) -> None:
        """Check the form; if it is valid, ask for a name and save it (`SaveLessonScreen`)."""
        request = self.check()
        if request is None:
            return  # the reasons are shown beside the fields
        example = request.example  # type: ignore[attr-defined]
        try:
            folder = library.user_lessons_dir()
        except UsageError as exc:
            self.query_one("#error-form", Static).update(markup(exc))
            return

        def save(name: str, title: str, description: str, overwrite: bool) -> Path:
            values = self.file_values(example, title, description)
            self._saved_command = str(values.get("op", ""))  # conv, pool, net, batchnorm, …
            return library.save_lesson(name, values, overwrite=overwrite)

        own = example.name if (folder / f"{example.name}.toml").is_file() else ""
        description = " ".join(example.description.split())
        changes = self.board_changes(request)
        if changes:  # the old description describes another board: say what changed instead
            description = f"Edited from {example.name}: {', '.join(changes)}"
        dialog = SaveLessonScreen(folder, save, own, example.title, description)
        self.app.push_screen(dialog, self._saved)

    def _saved(self, name: str | None) -> None:
        if name is None:
            return
        try:
            request = self.reopen(name)
        except UsageError as exc:  # (the writer and the reader disagree: a bug, said plainly)
            self.query_one("#error-form", Static).update(
                markup(f"saved as {name}, but it does not open again: {exc}")
            )
            return
        # short lines: a toast is 40 columns wide at 80×24, and the command is whole
        command = f"cnn-tui {self._saved_command} --example {name}"
        self.app.notify(f"open it again with\n{command}", title=f"Saved as {name}", markup=False)
        self.dismiss(request)


@dataclass
class LessonRequest:
    """What the form asks for: `build_example` parameters, edited arrays, and the result."""

    params: dict[str, Any]
    overrides: dict[str, np.ndarray] = field(default_factory=dict)
    example: Any = None  # the LessonExample built from them (already checked)


def current_values(example: Any) -> dict[str, str]:
    """The form's field texts for an example: each setting of its op as the flag takes it."""
    return {name: SETTINGS[name].format(value) for name, value in example.settings().items()}


def input_fields(op: str) -> tuple[str, ...]:
    """The settings of op typed into an Input (the choices, e.g. the pool type, are Selects)."""
    return tuple(name for name in FIELDS[op] if SETTINGS[name].kind != "choice")


def choice_fields(op: str) -> tuple[str, ...]:
    return tuple(name for name in FIELDS[op] if SETTINGS[name].kind == "choice")


class LessonFormScreen(ArrayEditModal[LessonRequest]):
    """Edit the lesson's example; Apply (ctrl+s) checks everything, Esc leaves it unchanged."""

    BINDINGS = save_bindings()

    def __init__(
        self, op: str, example: Any, params: dict[str, Any], overrides: dict[str, np.ndarray]
    ) -> None:
        super().__init__()
        self.op = op
        self.example = example
        self.params = dict(params)
        self.overrides = dict(overrides)
        self._initial = current_values(example)
        self._array_texts = {
            name: format_array(name, getattr(example, name)) for name in EDITABLE_ARRAYS[op]
        }
        self._original_texts = dict(self._array_texts)
        self._shown_array = EDITABLE_ARRAYS[op][0]

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        from cnn_tui.lessons.examples import list_examples

        title = "Convolution" if self.op == "conv" else "Pooling"
        with Vertical(id="lesson-form"):
            yield Static(f"{title} lesson: example", id="lesson-form-title")
            with VerticalScroll(id="lesson-form-body"):
                options: list[tuple[str | Text, str]] = [("random, from the seed", RANDOM)]
                options += [
                    (example_option(info.name, info.title, info.source), info.name)
                    for info in list_examples(self.op)
                ]
                chosen = self.params.get("example") or RANDOM
                if chosen not in [value for _, value in options]:  # a file opened by its path
                    options.append(
                        (example_option(self.example.name, self.example.title, "file"), chosen)
                    )
                with Grid(classes="lesson-form-grid"):
                    yield Label("example", classes="lesson-form-label")
                    yield Select(
                        options, value=chosen, allow_blank=False, compact=True, id="form-example"
                    )
                    yield Static("", id="error-example", classes="lesson-form-error")
                    for name in input_fields(self.op):
                        setting = SETTINGS[name]
                        yield Label(setting.label, classes="lesson-form-label")
                        yield FormInput(
                            self._initial.get(name, ""),
                            compact=True,
                            id=f"form-{name}",
                            tooltip=f"{setting.low}..{setting.high}"
                            + (", or HxW like 3x2" if setting.kind in ("pair", "padding") else "")
                            + (", same or valid" if setting.kind == "padding" else ""),
                        )
                        yield Static("", id=f"error-{name}", classes="lesson-form-error")
                    for name in choice_fields(self.op):
                        setting = SETTINGS[name]
                        yield Label(setting.label, classes="lesson-form-label")
                        yield Select(
                            [(choice, choice) for choice in setting.choices],
                            value=self._initial[name],
                            allow_blank=False,
                            compact=True,
                            id=f"form-{name}",
                        )
                        yield Static("", id=f"error-{name}", classes="lesson-form-error")
                with Horizontal(id="lesson-form-values-bar"):
                    yield Label("values of", classes="lesson-form-label")
                    yield Select(
                        [(name, name) for name in EDITABLE_ARRAYS[self.op]],
                        value=self._shown_array,
                        allow_blank=False,
                        compact=True,
                        id="form-array",
                    )
                yield Static(
                    "one row per line, numbers separated by commas; a blank line between slices",
                    classes="lesson-form-hint",
                )
                yield FormTextArea(self._array_texts[self._shown_array], id="form-values")
                yield Static("", id="error-values", classes="lesson-form-error")
            yield Static("", id="error-form", classes="lesson-form-error")
            yield from form_buttons()

    def on_mount(self) -> None:
        self._grey_fixed_fields()
        first = self.query(Input).first()
        first.focus()

    # ----------------------------------------------------------------- events

    @on(Select.Changed, "#form-example")
    def _example_changed(self, event: Select.Changed) -> None:
        if event.value != RANDOM and event.value != self.params.get("example"):
            from cnn_tui.lessons.examples import load_example

            try:  # show the example's own sizes in the greyed-out fields
                chosen = load_example(str(event.value))
            except UsageError as exc:
                self._set_error("example", str(exc))
                return
            for name, text in current_values(chosen).items():
                if name in input_fields(self.op):
                    self.query_one(f"#form-{name}", Input).value = text
        self._grey_fixed_fields()

    # ----------------------------------------------------------------- checking

    def _grey_fixed_fields(self) -> None:
        chosen = self.query_one("#form-example", Select).value
        for name in FIXED_BY_EXAMPLE[self.op]:
            self.query_one(f"#form-{name}", Input).disabled = chosen != RANDOM

    def _set_error(self, name: str, message: str) -> None:
        self.query_one(f"#error-{name}", Static).update(markup(message))  # (quotes what was typed)

    def _clear_errors(self) -> None:
        for widget in self.query(".lesson-form-error"):
            if isinstance(widget, Static):
                widget.update("")

    def check(self) -> LessonRequest | None:
        """Check every field; show the reasons and return None, or the new request."""
        self._clear_errors()
        chosen = str(self.query_one("#form-example", Select).value)
        params: dict[str, Any] = {}
        bad = False
        for name in input_fields(self.op):
            if chosen != RANDOM and name in FIXED_BY_EXAMPLE[self.op]:
                continue
            text = self.query_one(f"#form-{name}", Input).value.strip()
            try:
                value = SETTINGS[name].parse(text)
            except ValueError as exc:
                self._set_error(name, str(exc))
                bad = True
                continue
            if chosen != RANDOM and name == "seed" and text == self._initial["seed"]:
                continue  # an unchanged seed keeps the example file's own upstream gradient
            params[name] = value
        for name in choice_fields(self.op):
            params[name] = str(self.query_one(f"#form-{name}", Select).value)
        if chosen != RANDOM:
            params["example"] = chosen
        if bad:
            return None
        try:
            base = make_example(self.op, params, {})
            overrides = self._edited_arrays(base, params)
            if overrides is None:
                return None
            example = make_example(self.op, params, overrides)
        except UsageError as exc:
            message = str(exc)
            first = message.split()[0].rstrip(":,") if message else ""
            target = first if first in FIELDS[self.op] else None
            if first in EDITABLE_ARRAYS[self.op]:
                target = "values"
            self._set_error(target or "form", message)
            return None
        return LessonRequest(params, overrides, example)

    def _edited_arrays(self, base: Any, params: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """The arrays to replace: the ones whose text changed here, and earlier edits that
        still fit (a new seed or example draws everything afresh)."""
        self._array_texts[self._shown_array] = self.query_one("#form-values", TextArea).text
        redrawn = params.get("seed", self.example.seed) != self.example.seed or params.get(
            "example"
        ) != self.params.get("example")
        overrides = {
            name: array
            for name, array in self.overrides.items()
            if not redrawn and getattr(base, name).shape == array.shape
        }
        for name, text in self._array_texts.items():
            if text == self._original_texts[name]:
                continue
            shape = getattr(base, name).shape
            try:
                overrides[name] = parse_array(name, text, shape)
            except UsageError as exc:
                self._set_error("values", str(exc))
                return None
        return overrides

    # ----------------------------------------------------------------- save as

    def file_values(self, example: Any, title: str, description: str) -> dict[str, Any]:
        from cnn_tui.lessons.examples import example_file_values

        return example_file_values(example, title, description)

    def reopen(self, name: str) -> LessonRequest:
        params = {"example": name}
        return LessonRequest(params, {}, make_example(self.op, params, {}))
