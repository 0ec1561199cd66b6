"""The lesson screens' `?` page: the notation beside the lecture's, then every key.

`LessonHelp` is a modal page over the lesson: the legend of `cnn_tui.lessons.notation` (this
app's symbols, what they are, how the lecture writes them; the trace's header prints the same
rows) and the keys that work on the lesson screen now (`lesson_keys`, so a key a screen adds
is listed without more code; Textual's own focus and copy keys are not). `?`, `f1` or `esc`
closes it, as its top border says; the arrows and page keys scroll it on a small terminal.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from cnn_tui.lessons.notation import LEGEND_COLUMNS, LEGEND_TITLE, legend

# Textual's own keys of every screen (tab to focus, ctrl+c to copy): nothing of the lesson's
_TEXTUAL_SCREEN_ACTIONS = frozenset(
    binding.action for binding in Screen.BINDINGS if isinstance(binding, Binding)
)

CLOSE_HINT = "? or esc: back to the lesson · ↑↓ scroll"


def lesson_keys(screen: Screen) -> list[tuple[str, str]]:
    """(key, what it does) of every key of the lesson screen `screen` that works now, shown in
    its footer or not, in the screen's order (Textual's own keys, focus and copying, and the
    app's are left out)."""
    keys: list[tuple[str, str]] = []
    seen: set[str] = set(_TEXTUAL_SCREEN_ACTIONS)
    for node, binding, enabled, _ in screen.active_bindings.values():
        if node is not screen or binding.action in seen or not binding.description:
            continue
        seen.add(binding.action)
        what = binding.description if enabled else f"{binding.description} (not now)"
        keys.append((screen.app.get_key_display(binding), what))
    return keys


def legend_table(lesson: str) -> Table:
    """The legend of `lesson` as a table: here, what it is, the lecture's."""
    table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
    here, meaning, lecture = LEGEND_COLUMNS
    table.add_column(here, style="bold", no_wrap=True)
    table.add_column(meaning, ratio=1)
    table.add_column(lecture, ratio=1)
    for row in legend(lesson):  # plain text: `out[i,j]` is no markup
        table.add_row(Text(row.here), Text(row.meaning), Text(row.lecture))
    return table


def keys_table(keys: list[tuple[str, str]]) -> Table:
    """The keys in two columns of (key, what it does), so they fit an 80×24 terminal."""
    table = Table(box=None, padding=(0, 1), show_header=False, show_edge=False, expand=True)
    for _ in range(2):
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
    half = (len(keys) + 1) // 2
    left, right = keys[:half], keys[half:]
    for index, (key, what) in enumerate(left):
        other = right[index] if index < len(right) else ("", "")
        table.add_row(*(Text(cell) for cell in (key, what, *other)))
    return table


class LessonHelp(ModalScreen[None]):
    """`?` on a lesson screen: the notation legend above every key of the screen."""

    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark,f1", "dismiss", "close", show=False),
    ]

    DEFAULT_CSS = """
    LessonHelp {
        align: center middle;
    }
    LessonHelp > #lesson-help {
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
    LessonHelp .lesson-help-title {
        text-style: bold;
        color: $accent;
    }
    LessonHelp #lesson-help-keys-title {
        margin-top: 1;
    }
    """

    def __init__(self, lesson: str, screen: Screen) -> None:
        super().__init__()
        self.lesson = lesson
        self.keys = lesson_keys(screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="lesson-help") as page:
            # on the border: in sight at the top of an 80×24 terminal, however far it scrolls
            page.border_title = CLOSE_HINT
            if legend(self.lesson):
                yield Static(LEGEND_TITLE, classes="lesson-help-title")
                yield Static(legend_table(self.lesson), id="lesson-help-legend")
            yield Static("keys", id="lesson-help-keys-title", classes="lesson-help-title")
            yield Static(keys_table(self.keys), id="lesson-help-keys")
