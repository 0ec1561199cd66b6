"""The batch-norm and dropout lessons' edit form: their settings (sizes, ε, the momentum, p, the
seed), one field each.

A modal over the lesson. Each field is checked as its flag is (`settings.LAYER_SETTINGS`), the
whole example by `layer_lesson.build_layer_example`, so a bad value shows its reason beside its
field and the lesson is left as it was. Apply returns the new `LayerSettings`; the screen
recomputes and restarts from them.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from cnn_tui.errors import UsageError
from cnn_tui.lessons.layer_lesson import TITLES, build_layer_example
from cnn_tui.lessons.settings import (
    LAYER_DEFAULTS,
    LAYER_LIMITS,
    LAYER_SETTINGS,
    LayerSettings,
)
from cnn_tui.text import markup
from cnn_tui.ui.lessons.form import FormInput


class LayerFormScreen(ModalScreen[LayerSettings | None]):
    """Edit the lesson's settings; Apply (enter, ctrl+s) checks them, Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply", priority=True),
    ]

    def __init__(self, op: str, values: dict[str, Any]) -> None:
        super().__init__()
        self.op = op
        self.values = dict(values)  # every setting of the lesson, as it is now

    def compose(self) -> ComposeResult:
        with Vertical(id="lesson-form"):
            yield Static(f"{TITLES[self.op].capitalize()} lesson: settings", id="lesson-form-title")
            with VerticalScroll(id="lesson-form-body"), Grid(classes="lesson-form-grid"):
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
                "seed)",
                classes="lesson-form-hint",
            )
            yield Static("", id="error-form", classes="lesson-form-error")
            with Horizontal(id="lesson-form-buttons"):
                yield Button("Apply (ctrl+s)", variant="primary", compact=True, id="form-apply")
                yield Button("Cancel (esc)", compact=True, id="form-cancel")

    def on_mount(self) -> None:
        self.query_one(f"#form-{next(iter(LAYER_DEFAULTS[self.op]))}", Input).focus()

    def check(self) -> LayerSettings | None:
        """Check every field; show the reasons and return None, or the new settings."""
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
        try:
            build_layer_example(self.op, **values)
        except UsageError as exc:
            self.query_one("#error-form", Static).update(markup(exc))
            return None
        return LayerSettings(self.op, values)

    @on(Input.Changed)
    def _value_changed(self) -> None:
        """Once a reason is shown, every change checks again: the reasons describe what is typed."""
        errors = self.query(".lesson-form-error")
        if any(str(w.content) for w in errors if isinstance(w, Static)):
            self.check()

    @on(Input.Submitted)
    @on(Button.Pressed, "#form-apply")
    def action_apply(self) -> None:
        settings = self.check()
        if settings is not None:
            self.dismiss(settings)

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
