"""The lesson screens' `?` page: the notation beside the lecture's, then every key.

`LessonHelp` is the shared `?` page (`cnn_tui.ui.help.HelpPage`) with the legend of
`cnn_tui.lessons.notation` above the keys (this app's symbols, what they are, how the lecture
writes them; the trace's header prints the same rows) and the keys that work on the lesson
screen now (`lesson_keys`, so a key a screen adds is listed without more code). `?`, `f1` or
`esc` closes it; the arrows and page keys scroll it on a small terminal.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.screen import Screen

from cnn_tui.lessons.notation import LEGEND_COLUMNS, LEGEND_TITLE, legend
from cnn_tui.ui.help import HelpPage, keys_table, own_actions

__all__ = ["LessonHelp", "keys_table", "legend_table", "lesson_keys"]


def lesson_keys(screen: Screen) -> list[tuple[str, str]]:
    """(key, what it does) of every key of the lesson screen `screen` that works now, shown in
    its footer or not (the app's own keys, focus and copying, are left out)."""
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    ours = own_actions(screen)  # not Textual's own tab / shift+tab focus and ctrl+c copy
    for node, binding, enabled, _ in screen.active_bindings.values():
        if node is not screen or binding.action in seen or not binding.description:
            continue
        if binding.action not in ours:
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
        table.add_row(Text(row.here), _KeepFormula(row.meaning), _KeepFormula(row.lecture))
    return table


class _KeepFormula:
    """A legend cell whose formula ("output size ⌊(H + 2P − K)/S⌋ + 1") is never broken: on
    one line where the column has room, else the words before it, then the formula whole on
    the next line (the column is at least as wide as the formula)."""

    def __init__(self, text: str) -> None:
        start = text.find("⌊")
        self.text = text
        self.words, self.formula = (
            (text[:start].rstrip(), text[start:]) if start >= 0 else (text, "")
        )

    def __str__(self) -> str:
        return self.text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        words = Measurement.get(console, options, Text(self.words))
        return Measurement(max(words.minimum, len(self.formula)), len(self.text))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.formula and self.words and len(self.text) > options.max_width:
            yield Text(self.words)
            yield Text(self.formula, no_wrap=True, overflow="fold")
        else:
            yield Text(self.text)


class LessonHelp(HelpPage):
    """`?` on a lesson screen: the notation legend above every key of the screen."""

    def __init__(self, lesson: str, screen: Screen) -> None:
        sections = (
            [(LEGEND_TITLE, legend_table(lesson), "lesson-help-legend")] if legend(lesson) else []
        )
        super().__init__(
            lesson_keys(screen),
            sections=sections,
            back="? or esc: back to the lesson",
            id_prefix="lesson-help",
        )
        self.lesson = lesson
