"""The edit forms' "Save as…" dialog: a name, a title and a description for the lesson file.

A modal over the form. It asks; the form writes (its `save` callable turns the board into the
file's keys and calls `cnn_tui.lessons.library.save_lesson`). A name that is not usable, the
name of a shipped example or a write that fails shows its reason and keeps the dialog open; a
name that exists asks first: pressing Save again with the same name replaces the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from cnn_tui.errors import UsageError
from cnn_tui.text import markup

# (name, title, description, overwrite) -> the file written; UsageError / FileExistsError / OSError
SaveLesson = Callable[[str, str, str, bool], Path]


class SaveLessonScreen(ModalScreen[str | None]):
    """Ask for a name, a title and a description, then save; dismisses with the name saved
    (None: cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path, save: SaveLesson, name: str, title: str, description: str):
        super().__init__()
        self.folder = folder
        self.save = save
        self._defaults = (name, title, description)
        self._confirm = ""  # the name the user was told exists: Save again replaces it

    def compose(self) -> ComposeResult:
        name, title, description = self._defaults
        with Vertical(id="save-lesson"):
            yield Label("Save the board as a lesson example", id="save-lesson-title")
            yield Static(
                f"[dim]into {markup(self.folder)}/NAME.toml: open it again with --example "
                "NAME or the example list[/dim]",
                id="save-lesson-folder",
            )
            with Grid(id="save-lesson-grid"):
                yield Label("name", classes="lesson-form-label")
                yield Input(
                    name, placeholder="letters, digits, - _ .", compact=True, id="save-name"
                )
                yield Label("title", classes="lesson-form-label")
                yield Input(title, placeholder="one line", compact=True, id="save-title")
                yield Label("description", classes="lesson-form-label")
                yield Input(
                    description, placeholder="optional", compact=True, id="save-description"
                )
            yield Static("", id="save-error")
            with Horizontal(id="save-lesson-buttons"):
                yield Button("Save (enter)", variant="primary", compact=True, id="save-save")
                yield Button("Cancel (esc)", compact=True, id="save-cancel")

    def on_mount(self) -> None:
        self.query_one("#save-name", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Input.Changed, "#save-name")
    def _name_changed(self) -> None:
        self._confirm = ""
        self._show("")

    @on(Button.Pressed, "#save-save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        name = self.query_one("#save-name", Input).value.strip().removesuffix(".toml")
        title = self.query_one("#save-title", Input).value.strip()
        description = self.query_one("#save-description", Input).value.strip()
        if not name:
            self._show("the example needs a name")
            self.query_one("#save-name", Input).focus()
            return
        try:
            self.save(name, title or name, description, self._confirm == name)
        except FileExistsError:
            self._confirm = name
            self._show(f"{name}.toml exists: press Save again to replace it, or change the name")
            return
        except UsageError as exc:
            self._show(str(exc))
            return
        except OSError as exc:
            self._show(f"cannot save {name}.toml: {exc.strerror or exc}")
            return
        self.dismiss(name)

    def _show(self, message: str) -> None:
        self.query_one("#save-error", Static).update(markup(message))
