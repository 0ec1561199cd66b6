"""Small modal dialogs of the training screens: a question with buttons, a preset name, quit.

(The `?` page of every screen is `cnn_tui.ui.help`.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from cnn_tui import text


class ChoiceModal(ModalScreen[str]):
    """A question and a row of buttons; dismisses with the id of the button pressed ("" on escape).

    `choices` are (id, label, variant) triples; the first one has the focus. `text` is plain
    text, not markup (it names runs and folders); the caller passes names through
    `text.one_line`.
    """

    BINDINGS = [
        Binding("escape", "dismiss('')", "Cancel"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    def __init__(
        self, title: str, text: str, choices: list[tuple[str, str, str]], id: str | None = None
    ) -> None:  # noqa: A002
        super().__init__(classes="train-modal", id=id)
        self.title_text, self.text, self.choices = title, text, choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="train-dialog"):
            yield Label(self.title_text, classes="train-dialog-title")
            yield Static(self.text, classes="train-dialog-text", markup=False)
            with Horizontal(classes="train-dialog-buttons"):
                for choice_id, label, variant in self.choices:
                    yield Button(label, id=choice_id, variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def _chosen(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or "")


def confirm(title: str, text: str, yes: str, *, danger: bool = True) -> ChoiceModal:
    """A yes/cancel question; dismisses with "yes" or ""."""
    return ChoiceModal(
        title,
        text,
        [("cancel", "Cancel", "default"), ("yes", yes, "error" if danger else "primary")],
    )


class PresetNameModal(ModalScreen[str | None]):
    """Ask for a preset name and a description and save; dismisses with the name (None: cancel).

    An invalid name keeps the dialog open with the reason shown.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, save_dir: Path, save: Callable[[str, str], str | None]) -> None:
        super().__init__(classes="train-modal")
        self.save_dir = save_dir
        self.save = save  # (name, description) -> an error message, or None when saved

    def compose(self) -> ComposeResult:
        with Vertical(classes="train-dialog"):
            yield Label("Save the form as a preset", classes="train-dialog-title")
            yield Static(
                f"[dim]saved to {text.markup(self.save_dir)}/NAME.toml[/dim]",
                classes="train-dialog-text",
            )
            yield Input(placeholder="name: letters, digits, . _ -", id="preset-name")
            yield Input(placeholder="description (optional)", id="preset-description")
            yield Static("", id="preset-error", classes="field-reason")
            with Horizontal(classes="train-dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def _save(self) -> None:
        name = self.query_one("#preset-name", Input).value.strip()
        if not name:
            self.query_one("#preset-error", Static).update("a preset needs a name")
            self.query_one("#preset-name", Input).focus()
            return
        error = self.save(name, self.query_one("#preset-description", Input).value.strip())
        if error:
            self.query_one("#preset-error", Static).update(text.markup(error))
            return
        self.dismiss(name)


def live_runs(app: App) -> list[tuple[Path, int | None]]:
    """Runs this app started, or follows on a screen, whose trainer is still alive."""
    from cnn_tui.training.runs.launcher import live_children
    from cnn_tui.training.runs.state import RunState
    from cnn_tui.training.runs.store import effective_status, read_status

    found = {path.resolve(): (path, pid) for path, pid in live_children().items()}
    for screen in app.screen_stack:
        run_dir = getattr(screen, "followed_run_dir", None)
        if run_dir is not None and effective_status(read_status(run_dir)) == RunState.RUNNING:
            found.setdefault(Path(run_dir).resolve(), (Path(run_dir), None))
    return list(found.values())


async def quit_or_ask(app: App) -> None:
    """App.action_quit for an app with training: leave or stop live runs, or stay."""
    if app.screen.id == "quit-dialog":
        return  # already asking
    runs = live_runs(app)
    if not runs:
        app.exit()
        return
    names = ", ".join(text.one_line(path.name) for path, _ in runs)
    several = len(runs) > 1

    def chosen(choice: str | None) -> None:
        if choice == "stop":
            from cnn_tui.training.runs.launcher import stop_run

            for path, pid in runs:
                stop_run(path, pid)
            app.exit()
        elif choice == "leave":
            app.exit()

    app.push_screen(
        ChoiceModal(
            "Training is still running",
            f"{'Runs' if several else 'Run'} {names} {'are' if several else 'is'} still training. "
            "Left running, training goes on without the terminal; `cnn-tui runs` shows it later. "
            "Stopping keeps the last checkpoint (resume from the runs screen).",
            [
                ("leave", "Leave running, quit", "primary"),
                ("stop", "Stop and quit", "error"),
                ("cancel", "Cancel", "default"),
            ],
            id="quit-dialog",
        ),
        chosen,
    )


class EpochsModal(ModalScreen[int | None]):
    """Extend a finished run: ask for its new total of epochs (more than it trained); dismisses
    with that number, or None on cancel. A bad number keeps the dialog open with the reason."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, run_name: str, done: int, default: int) -> None:
        super().__init__(classes="train-modal")
        self.run_name, self.done, self.default = run_name, done, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="train-dialog"):
            yield Label("Extend the run", classes="train-dialog-title")
            yield Static(
                f"Train {text.markup(self.run_name)} on from its last checkpoint (epoch {self.done})"
                " with its own settings, to this many epochs in all. The learning-rate schedule is "
                "stretched to the new length.",
                classes="train-dialog-text",
            )
            yield Input(str(self.default), id="extend-epochs", placeholder="epochs in all")
            yield Static("", id="extend-error", classes="field-reason")
            with Horizontal(classes="train-dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Extend ▶", id="extend", variant="primary")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#extend")
    @on(Input.Submitted)
    def _extend(self) -> None:
        from cnn_tui.training.config import ConfigError, parse_field

        typed = self.query_one("#extend-epochs", Input).value
        try:
            epochs = parse_field("epochs", typed)
            if epochs <= self.done:
                raise ConfigError("epochs", f"must be more than the {self.done} epochs it trained")
        except ConfigError as exc:
            self.query_one("#extend-error", Static).update(f"✗ {text.markup(exc)}")
            return
        self.dismiss(epochs)
