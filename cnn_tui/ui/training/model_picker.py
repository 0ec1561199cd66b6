"""The training form's model picker: every network --model takes, filtered as you type.

`ModelPickerModal` lists the short names at once and torchvision's zoo once its registry is
read (a thread worker: torchvision's import takes a second or more), each with its parameters,
ImageNet top-1 accuracy and the image size its weights were trained at (`cnn-tui models` prints
the same rows). Typing filters by any part of the name ("effic", "v3_s"); Enter or a click picks
the highlighted model, escape leaves the form as it was; your own class typed in full
(`path/to/file.py:Class`, `package.module:Class`) is offered as the first row, and Enter picks it
(the form then checks it in a worker: its file runs). `ModelSuggester` completes the form's model
field inline from the same names (right arrow accepts).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from cnn_tui import catalog
from cnn_tui.text import one_line

ZOO_ROWS = "cnn_tui_zoo_rows"  # the app attribute that keeps the zoo's rows once read


def zoo_rows(app: Any) -> list[dict[str, Any]] | None:
    """The rows of `cnn-tui models` read once in this app (None: not yet)."""
    return getattr(app, ZOO_ROWS, None)


def read_zoo_rows(app: Any) -> list[dict[str, Any]]:
    """Read the rows (imports torchvision: call from a thread worker) and keep them on `app`."""
    from cnn_tui.training.models.zoo import model_rows

    found = zoo_rows(app)
    if found is None:
        found = model_rows()
        setattr(app, ZOO_ROWS, found)
    return found


class ModelSuggester(Suggester):
    """Inline completion of the model field: the short names, and torchvision:NAME once the
    zoo was read (`read_zoo_rows`)."""

    def __init__(self, app: Any) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._app = app

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        rows = zoo_rows(self._app) or []
        names = [*catalog.MODELS, *(row["model"] for row in rows)]
        if not rows and catalog.ZOO_PREFIX.startswith(value):
            return catalog.ZOO_PREFIX
        return next((name for name in names if name.startswith(value) and name != value), None)


def _label(row: dict[str, Any]) -> Text:
    params = f"{row['params'] / 1e6:6.1f}M" if row["params"] else " " * 7
    acc = f"{row['acc1']:5.1f}%" if row["acc1"] is not None else " " * 6
    size = f"{row['image_size']:>4} px" if row["image_size"] else " " * 7
    line = Text(f"{row['model']:<34.34}", style="bold")
    line.append(f" {params} {acc} {size}", style="dim")
    return line


class ModelPickerModal(ModalScreen[str | None]):
    """Pick a model by typing part of its name; dismisses with its --model text (None: escape)."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, current: str = "") -> None:
        super().__init__(classes="train-modal", id="model-picker")
        self.current = current
        self.rows: list[dict[str, Any]] = [
            {"model": name, "params": None, "acc1": None, "image_size": m.native_image_size}
            for name, m in catalog.MODELS.items()
        ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="train-dialog", id="model-picker-dialog"):
            yield Label("Pick a model", classes="train-dialog-title")
            yield Input(
                placeholder="part of a name (effic, v3_s …) or your own file.py:Class",
                id="model-filter",
                compact=True,
            )
            yield Static(
                Text(f"{'model':<34} {'params':>7} {'top-1':>6} trained at", style="dim"),
                id="model-picker-header",
            )
            yield OptionList(id="model-options")
            yield Static("reading torchvision's registry…", id="model-picker-note")

    def on_mount(self) -> None:
        self.query_one("#model-filter", Input).focus()
        loaded = zoo_rows(self.app)
        if loaded is None:
            self.load_zoo()
        else:
            self._zoo_loaded(loaded)
        self._refilter()

    @work(thread=True, exclusive=True, exit_on_error=False, group="model-zoo")
    def load_zoo(self) -> None:
        rows = read_zoo_rows(self.app)
        self.app.call_from_thread(self._zoo_loaded, rows)

    def _zoo_loaded(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)
        zoo = sum(1 for row in rows if row["model"].startswith(catalog.ZOO_PREFIX))
        self.query_one("#model-picker-note", Static).update(
            f"{len(catalog.MODELS)} short names and {zoo} torchvision models · "
            "Enter picks · escape cancels"
        )
        self._refilter()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "model-zoo" and event.state == WorkerState.ERROR:
            self.query_one("#model-picker-note", Static).update(
                Text(f"cannot read torchvision's registry ({one_line(event.worker.error)})")
            )

    def matches(self, search: str) -> list[str]:
        """The --model texts whose name holds `search` (any case), in the list's order."""
        wanted = search.strip().lower()
        return [row["model"] for row in self.rows if wanted in row["model"].lower()]

    @on(Input.Changed, "#model-filter")
    def _refilter(self) -> None:
        search = self.query_one("#model-filter", Input).value
        wanted = set(self.matches(search))
        options = self.query_one("#model-options", OptionList)
        options.clear_options()
        shown = [
            Option(_label(row), id=row["model"]) for row in self.rows if row["model"] in wanted
        ]
        own = search.strip()
        if catalog.is_own(own):  # your own class, as typed: the first row
            line = Text(f"{one_line(own):<34.34}", style="bold")
            line.append(" your own class (the form checks it: its file runs)", style="dim")
            shown.insert(0, Option(line, id=own))
        options.add_options(shown)
        if shown:
            names = [option.id for option in shown]
            options.highlighted = names.index(self.current) if self.current in names else 0

    def action_move(self, step: int) -> None:
        options = self.query_one("#model-options", OptionList)
        if options.option_count:
            at = (options.highlighted or 0) + step
            options.highlighted = max(0, min(options.option_count - 1, at))

    @on(Input.Submitted, "#model-filter")
    def _submitted(self) -> None:
        options = self.query_one("#model-options", OptionList)
        if options.highlighted is not None and options.option_count:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#model-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
