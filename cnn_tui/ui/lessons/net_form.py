"""The network lesson's edit form: a named example, the label, the learning rate, the training
steps, the optimizer, and the values of the image and the weights as editable text.

A modal over the lesson. The settings are checked as their flags are
(`settings.NET_SETTINGS`), the arrays by `replay.parse_array` (same shape as the example's), and
the whole example by `network.make_net_example`, so a bad value shows its reason beside its
field and the lesson is left as it was. Apply returns a `NetRequest`; the screen recomputes
and restarts from it. Save as… (F2) writes the example the form describes into the user's lessons
folder, as the conv / pool form does (`form.ArrayEditModal.action_save_as`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static, TextArea

from cnn_tui.errors import UsageError
from cnn_tui.lessons.network import (
    EDITABLE,
    list_net_examples,
    make_net_example,
    net_file_values,
)
from cnn_tui.lessons.replay import format_array, parse_array
from cnn_tui.lessons.settings import NET_SETTINGS
from cnn_tui.text import markup
from cnn_tui.ui.lessons.form import (
    ArrayEditModal,
    FormInput,
    FormTextArea,
    example_option,
    form_buttons,
    save_bindings,
)


@dataclass
class NetRequest:
    """What the form asks for: `build_net_example` parameters, edited arrays, the result."""

    params: dict[str, Any]
    overrides: dict[str, np.ndarray] = field(default_factory=dict)
    example: Any = None  # the NetExample built from them (already checked)


def _shown(name: str, array: np.ndarray) -> np.ndarray:
    """The array as the form edits it: the image 2-D (H, W), the filters (F, KH, KW)."""
    if name == "x":
        return array[0, 0]
    if name == "w1":
        return array[:, 0]
    return array


def _text(name: str, value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class NetFormScreen(ArrayEditModal[NetRequest]):
    """Edit the network lesson's example; Apply (ctrl+s) checks everything, Esc cancels."""

    BINDINGS = save_bindings()

    def __init__(
        self, example: Any, params: dict[str, Any], overrides: dict[str, np.ndarray]
    ) -> None:
        super().__init__()
        self.example = example
        self.params = dict(params)
        self.overrides = dict(overrides)
        self._array_texts = self._texts_of(example)
        self._original = dict(self._array_texts)
        self._shown_array = EDITABLE[0]
        self._loaded = self.params.get("example") or example.name  # whose values the fields show
        self._optimizer = example.optimizer  # the optimizer the α field is meant for

    @staticmethod
    def _texts_of(example: Any) -> dict[str, str]:
        return {name: format_array(name, _shown(name, getattr(example, name))) for name in EDITABLE}

    def compose(self) -> ComposeResult:
        with Vertical(id="lesson-form"):
            yield Static("Network lesson: example", id="lesson-form-title")
            with VerticalScroll(id="lesson-form-body"):
                with Grid(classes="lesson-form-grid"):
                    yield Label("example", classes="lesson-form-label")
                    options = [
                        (example_option(info["name"], info["title"], info["source"]), info["name"])
                        for info in list_net_examples()
                    ]
                    if self._loaded not in [value for _, value in options]:  # a file by its path
                        example = self.example
                        options.append(
                            (example_option(example.name, example.title, "file"), self._loaded)
                        )
                    yield Select(
                        options, value=self._loaded, allow_blank=False, compact=True,
                        id="form-example",
                    )  # fmt: skip
                    yield Static("", id="error-example", classes="lesson-form-error")
                    for name, setting in NET_SETTINGS.items():
                        yield Label(setting.label, classes="lesson-form-label")
                        if setting.kind == "choice":
                            yield Select(
                                [(choice, choice) for choice in setting.choices],
                                value=self.example.settings()[name],
                                allow_blank=False,
                                compact=True,
                                id=f"form-{name}",
                                tooltip=setting.help,
                            )
                            yield Static("", id=f"error-{name}", classes="lesson-form-error")
                            continue
                        yield FormInput(
                            _text(name, self.example.settings()[name]),
                            compact=True,
                            id=f"form-{name}",
                            tooltip=setting.help,
                        )
                        yield Static("", id=f"error-{name}", classes="lesson-form-error")
                with Horizontal(id="lesson-form-values-bar"):
                    yield Label("values of", classes="lesson-form-label")
                    yield Select(
                        [(name, name) for name in EDITABLE],
                        value=self._shown_array,
                        allow_blank=False,
                        compact=True,
                        id="form-array",
                    )
                yield Static(
                    "x: the image; w1: one 2-D filter per slice; w2: one row per class. One row "
                    "per line, numbers separated by commas; the sizes stay the example's",
                    classes="lesson-form-hint",
                )
                yield FormTextArea(self._array_texts[self._shown_array], id="form-values")
                yield Static("", id="error-values", classes="lesson-form-error")
            yield Static("", id="error-form", classes="lesson-form-error")
            yield from form_buttons()

    def on_mount(self) -> None:
        self.query_one("#form-label", Input).focus()

    # ----------------------------------------------------------------- events

    @on(Select.Changed, "#form-example")
    def _example_changed(self, event: Select.Changed) -> None:
        if event.value == self._loaded:
            return
        try:  # show the chosen example's own label, rate and values
            chosen = make_net_example({"example": str(event.value)}, {})
        except UsageError as exc:
            self.query_one("#error-example", Static).update(markup(exc))
            return
        self._optimizer = chosen.optimizer  # (its α comes with it: not the optimizer's default)
        for name, value in chosen.settings().items():
            widget = self.query_one(f"#form-{name}")
            if isinstance(widget, Select):
                widget.value = value
            elif isinstance(widget, Input):
                widget.value = _text(name, value)
        self._array_texts = self._texts_of(chosen)
        self._original = dict(self._array_texts)
        self._loaded = str(event.value)
        self.overrides = {}  # another example: its own values, none of the earlier edits
        self.query_one("#form-values", TextArea).load_text(self._array_texts[self._shown_array])

    @on(Select.Changed, "#form-optimizer")
    def _optimizer_changed(self, event: Select.Changed) -> None:
        """Another optimizer: an α the user left at the example's (for the old optimizer)
        becomes the one the example gives the new optimizer (`settings.DEFAULT_LR`: 0.01 for
        Adam when the example's 0.1 is SGD's); a typed α stays."""
        old, new = self._optimizer, str(event.value)
        if new == old:
            return
        self._optimizer = new
        field = self.query_one("#form-lr", Input)
        try:
            before = make_net_example({"example": self._loaded, "optimizer": old}, {}).lr
            after = make_net_example({"example": self._loaded, "optimizer": new}, {}).lr
        except UsageError:
            return  # the example's own problem is said when the form is checked
        if field.value.strip() == _text("lr", before):
            field.value = _text("lr", after)

    # ----------------------------------------------------------------- checking

    def check(self) -> NetRequest | None:
        """Check every field; show the reasons and return None, or the new request."""
        for widget in self.query(".lesson-form-error"):
            if isinstance(widget, Static):
                widget.update("")
        chosen = str(self.query_one("#form-example", Select).value)
        params: dict[str, Any] = {"example": chosen}
        bad = False
        for name, setting in NET_SETTINGS.items():
            widget = self.query_one(f"#form-{name}")
            text = str(widget.value).strip() if isinstance(widget, (Input, Select)) else ""
            try:
                params[name] = setting.parse(text)
            except ValueError as exc:
                self.query_one(f"#error-{name}", Static).update(markup(exc))
                bad = True
        self._array_texts[self._shown_array] = self.query_one("#form-values", TextArea).text
        try:
            base = make_net_example({"example": chosen}, {})
        except UsageError as exc:
            self.query_one("#error-example", Static).update(markup(exc))
            return None
        overrides = dict(self.overrides)
        for name, text in self._array_texts.items():
            if text == self._original[name]:
                continue
            shape = getattr(base, name).shape
            try:
                edited = parse_array(name, text, _shown(name, getattr(base, name)).shape)
                overrides[name] = edited.reshape(shape)
            except UsageError as exc:
                self.query_one("#error-values", Static).update(markup(exc))
                bad = True
        if bad:
            return None
        try:
            example = make_net_example(params, overrides)
        except UsageError as exc:
            message = str(exc)
            first = message.split()[0].rstrip(":,") if message else ""
            where = first if first in NET_SETTINGS else "values" if first in EDITABLE else "form"
            self.query_one(f"#error-{where}", Static).update(markup(message))
            return None
        return NetRequest(params, overrides, example)

    # ----------------------------------------------------------------- save as

    def file_values(self, example: Any, title: str, description: str) -> dict[str, Any]:
        return net_file_values(example, title, description)

    def board_changes(self, request: NetRequest) -> list[str]:
        """The settings that differ from the chosen example's file, and the arrays edited:
        "α 0.5, 3 Adam steps, w2 edited"."""
        example = request.example
        base = make_net_example({"example": request.params.get("example", example.name)}, {})
        changes = []
        if example.label != base.label:
            changes.append(f"y = {example.label}")
        if example.lr != base.lr:
            changes.append(f"α {example.lr:g}")
        if (example.steps, example.optimizer) != (base.steps, base.optimizer):
            optimizer = "SGD" if example.optimizer == "sgd" else "Adam"
            changes.append(f"{example.steps} {optimizer} step{'s' if example.steps != 1 else ''}")
        edited = [name for name in EDITABLE if name in request.overrides]
        if edited:
            changes.append(f"{', '.join(edited)} edited")
        return changes

    def reopen(self, name: str) -> NetRequest:
        params = {"example": name}
        return NetRequest(params, {}, make_net_example(params, {}))
