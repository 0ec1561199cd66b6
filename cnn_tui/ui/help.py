"""The `?` page of every screen: what the screen is for, then every key that works on it now.

`HelpPage` is a modal page over the screen: optional sections first (a lesson's notation legend,
`cnn_tui.ui.lessons.help.LessonHelp`), then the keys of the screen (`screen_keys`, read from its
bindings, so a key a screen adds is listed without more code) in two columns that fit 80×24, and
a note. `?`, `f1` or `esc` closes it; the arrows and page keys scroll it on a small terminal.

The app binds `?` and `f1` to `help_page_for(screen)` (`CnnTuiApp.action_help`), so every screen
has the page; a screen says what it is with `HELP_TITLE` and `HELP_NOTE`. A lesson screen binds
`?` itself, for its page with the legend (`LessonHelp`). Modal dialogs do not get the app's keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def own_actions(node: object) -> set[str]:
    """The actions bound in this app's own code (the `BINDINGS` of `node`'s classes from
    `cnn_tui`), not Textual's keys every widget has (scrolling, focus, copying, the palette)."""
    actions: set[str] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith("cnn_tui."):
            for binding in cls.__dict__.get("BINDINGS", ()):
                actions.add(binding.action if isinstance(binding, Binding) else binding[1])
    return actions


def screen_keys(screen: Screen) -> list[tuple[str, str]]:
    """(key, what it does) of every key of this app that works on `screen` now, shown in its
    footer or not: the focused widget's (Inside's arrows), the screen's and the app's (`?`,
    ^q). A key that does nothing now says "(not now)"."""
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    owned: dict[int, set[str]] = {}
    for node, binding, enabled, _ in screen.active_bindings.values():
        actions = owned.setdefault(id(node), own_actions(node))
        if binding.action in seen or binding.action not in actions or not binding.description:
            continue
        seen.add(binding.action)
        what = binding.description if enabled else f"{binding.description} (not now)"
        keys.append((screen.app.get_key_display(binding), what))
    return keys


def keys_table(keys: Sequence[tuple[str, str]]) -> Table:
    """The keys in two columns of (key, what it does), so they fit an 80×24 terminal."""
    table = Table(box=None, padding=(0, 1), show_header=False, show_edge=False, expand=True)
    for _ in range(2):
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
    half = (len(keys) + 1) // 2
    left, right = keys[:half], keys[half:]
    for index, (key, what) in enumerate(left):
        other = right[index] if index < len(right) else ("", "")
        table.add_row(*(Text(cell) for cell in (key, what, *other)))  # plain text, no markup
    return table


class HelpPage(ModalScreen[None]):
    """`?`: optional sections (title, body, id), then the keys under `keys_title`, then `note`.

    `back` ends the page: "? or esc: back to the lesson"."""

    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark,f1", "dismiss", "close", show=False),
    ]

    DEFAULT_CSS = """
    HelpPage {
        align: center middle;
    }
    HelpPage > .help-page {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 0 1;
        border: thick $primary 60%;
        border-title-color: $foreground;
        border-title-style: bold;
        background: $surface;
    }
    HelpPage .help-title {
        text-style: bold;
        color: $accent;
    }
    HelpPage .help-keys-title {
        margin-top: 1;
    }
    HelpPage .help-keys-title.-first {
        margin-top: 0;
    }
    HelpPage .help-note {
        margin-top: 1;
    }
    """

    def __init__(
        self,
        keys: Sequence[tuple[str, str]],
        *,
        keys_title: str = "keys",
        sections: Sequence[tuple[str, RenderableType, str]] = (),
        note: str = "",
        back: str = "? or esc: back",
        id_prefix: str = "help",
    ) -> None:
        super().__init__()
        self.keys = list(keys)
        self.keys_title, self.sections, self.note, self.back = keys_title, sections, note, back
        self.id_prefix = id_prefix  # the ids of its parts: "help-keys", "lesson-help-keys", ...

    def compose(self) -> ComposeResult:
        prefix = self.id_prefix
        with VerticalScroll(id=prefix, classes="help-page") as page:
            # on the border: in sight at the top of an 80×24 terminal, however far it scrolls
            page.border_title = self.back
            for title, body, section_id in self.sections:
                yield Static(title, classes="help-title")
                yield Static(body, id=section_id)
            first = "" if self.sections else " -first"
            yield Static(
                Text(self.keys_title),
                id=f"{prefix}-keys-title",
                classes=f"help-title help-keys-title{first}",
            )
            yield Static(keys_table(self.keys), id=f"{prefix}-keys")
            if self.note:
                yield Static(Text(self.note), id=f"{prefix}-note", classes="help-note")
            yield Static(Text(self.back, style="dim"))


def help_page_for(screen: Screen) -> HelpPage:
    """The `?` page of `screen`: its keys under its `HELP_TITLE` ("keys of the training form"),
    then its `HELP_NOTE`."""
    title = getattr(screen, "HELP_TITLE", "") or "keys of this screen"
    note = getattr(screen, "HELP_NOTE", "")
    return HelpPage(screen_keys(screen), keys_title=title, note=note)
