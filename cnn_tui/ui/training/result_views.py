"""Test results of a run: confusion matrix, per-class metrics, most-confused pairs (from summary.json).

Highlights work without colour too: the diagonal is bold, the worst off-diagonal cells are bold,
reversed and marked with '!'.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from cnn_tui import text

WORST_CELLS = 3  # off-diagonal cells highlighted as the worst confusions
HEADER_WIDTH = 7  # a class name longer than this does not fit a column header: columns numbered


def names_fit(names: list[str], width: int = HEADER_WIDTH) -> bool:
    """Whether every class name fits a column header whole (else the columns are numbered)."""
    return all(len(name) <= width for name in names)


def worst_cells(matrix: list[list[int]], n: int = WORST_CELLS) -> set[tuple[int, int]]:
    """The `n` largest non-zero off-diagonal cells (row, column) of a confusion matrix."""
    cells = [
        (count, i, j)
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return {(i, j) for _, i, j in cells[:n]}


class ConfusionTable(DataTable):
    """Rows: true class; columns: predicted class. `n` toggles counts / row-normalised percent."""

    normalised: reactive[bool] = reactive(False)
    numbered: reactive[bool] = reactive(False)  # narrow screens: columns by class number
    caption: reactive[str] = reactive("")  # how to read the columns, for the caption above

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes, cursor_type="cell", zebra_stripes=False)
        self.matrix: list[list[int]] = []
        self.class_names: list[str] = []

    def show(self, matrix: list[list[int]], class_names: list[str]) -> None:
        self.matrix = [[int(count) for count in row] for row in matrix]
        # (a stranger's folder names: shown through one_line, in Text cells, never as markup)
        self.class_names = [text.one_line(name) for name in class_names] or [
            str(i) for i in range(len(matrix))
        ]
        self._rebuild()

    def watch_normalised(self) -> None:
        self._rebuild()

    def watch_numbered(self) -> None:
        self._rebuild()

    @property
    def by_number(self) -> bool:
        """Columns headed by class numbers (the rows name them): narrow, or names too long."""
        return self.numbered or not names_fit(self.class_names)

    def action_toggle_normalised(self) -> None:
        self.normalised = not self.normalised

    def _cell_text(self, count: int, row_total: int) -> str:
        if count == 0:
            return "·"
        if self.normalised:  # numbered columns are narrow: whole percents (the caption says %)
            decimals = 0 if self.by_number else 1
            return (
                text.number(100 * count / row_total, f".{decimals}f") if row_total else text.UNKNOWN
            )
        return str(count)

    def _rebuild(self) -> None:
        self.clear(columns=True)
        if not self.matrix:
            return
        theme = self.app.theme_variables
        worst = worst_cells(self.matrix)
        digits = max(len(str(c)) for row in self.matrix for c in row) + 1
        if self.normalised:
            digits = max(digits, 4 if self.by_number else 6)  # "!100", "!100.0"
        self.cell_padding = 0 if self.by_number else 1
        if self.by_number:
            width = digits + 1
            headers = [str(j) for j in range(len(self.class_names))]
            labels = [f"{i} {name} " for i, name in enumerate(self.class_names)]
            self.caption = "columns: predicted class number, as numbered in the rows"
        else:
            width = max(HEADER_WIDTH, digits)
            headers = list(self.class_names)
            labels = list(self.class_names)
            self.caption = "columns: predicted class"
        self.add_column(Text("true \\ predicted", style="bold"), key="true")
        for j, header in enumerate(headers):
            self.add_column(Text(header, justify="right"), key=f"p{j}", width=width)
        self.add_column(Text(" total", justify="right"), key="total")
        for i, row in enumerate(self.matrix):
            total = sum(row)
            cells: list[Text] = [Text(labels[i], style="bold")]
            for j, count in enumerate(row):
                text = self._cell_text(count, total)
                if i == j:
                    cells.append(Text(text, style=f"bold {theme['success']}", justify="right"))
                elif (i, j) in worst:
                    cells.append(
                        Text(f"!{text}", style=f"bold reverse {theme['error']}", justify="right")
                    )
                elif count == 0:
                    cells.append(Text(text, style="dim", justify="right"))
                else:
                    cells.append(Text(text, justify="right"))
            cells.append(Text(str(total), style="dim", justify="right"))
            self.add_row(*cells, key=str(i))


class PerClassTable(DataTable):
    """Precision, recall, F1 and support per class; the lowest F1 marked."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)

    def show(self, per_class: list[dict[str, Any]]) -> None:
        self.clear(columns=True)
        self.add_column("class", key="class")
        for key in ("precision", "recall", "f1", "support"):
            self.add_column(Text(key, justify="right"), key=key)
        f1s = [row.get("f1") for row in per_class if isinstance(row.get("f1"), (int, float))]
        lowest = min(f1s) if f1s else None
        for row in per_class:
            weak = lowest is not None and row.get("f1") == lowest and len(f1s) > 1
            style = f"bold {self.app.theme_variables['warning']}" if weak else ""
            self.add_row(
                Text(("▼ " if weak else "") + text.one_line(row.get("class", "?")), style=style),
                *(
                    Text(text.number(row.get(key), ".3f"), justify="right", style=style)
                    for key in ("precision", "recall", "f1")
                ),
                Text(text.count(row.get("support")), justify="right"),
            )


class ConfusedPairsTable(DataTable):
    """The most confused (true → predicted) pairs with their share of the true class."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)

    def show(self, pairs: list[dict[str, Any]], support: dict[str, int]) -> None:
        self.clear(columns=True)
        self.add_column("true → predicted", key="pair")
        self.add_column(Text("count", justify="right"), key="count")
        self.add_column(Text("% of true", justify="right"), key="share")
        for pair in pairs:
            true, count = str(pair.get("true", "?")), int(pair.get("count", 0))
            # (the header says %: a narrow column, one decimal)
            share = (
                text.number(100 * count / support[true], ".1f")
                if support.get(true)
                else text.UNKNOWN
            )
            self.add_row(
                Text(f"{text.one_line(true)} → {text.one_line(pair.get('predicted', '?'))}"),
                Text(str(count), justify="right"),
                Text(share, justify="right"),
            )


def summary_groups(summary: dict[str, Any]) -> list[str]:
    """The headline numbers of summary.json, in groups for `pack_groups`."""
    groups = [
        f"test accuracy [b]{text.percent(summary.get('test_accuracy'))}[/b]",
        "macro P {} R {} F1 {}".format(
            *(text.number(summary.get(f"macro_{k}"), ".3f") for k in ("precision", "recall", "f1"))
        ),
    ]
    if summary.get("best_val_acc") is not None:
        groups.append(f"best val {text.percent(summary.get('best_val_acc'))}")
    if summary.get("epochs_done") is not None:
        done = text.markup(summary["epochs_done"])
        groups.append(f"{done} epochs in {text.duration(summary.get('seconds'))}")
    return groups


def pack_groups(groups: list[str], width: int, separator: str = " · ") -> str:
    """Markup `groups` joined by `separator`, on as many lines as `width` needs: a line breaks
    between two groups, never inside one ("val loss 0.514 acc 83.45%" stays whole)."""
    if width <= 0:  # (not laid out yet)
        return separator.join(groups)
    lines: list[list[str]] = [[]]
    used = 0
    for group in groups:
        size = Content.from_markup(group).cell_length
        if lines[-1] and used + len(separator) + size > width:
            lines.append([])
        used = size if not lines[-1] else used + len(separator) + size
        lines[-1].append(group)
    return "\n".join(separator.join(line) for line in lines)


class MetricsView(Vertical):
    """The metrics of a finished run: headline, confusion matrix, per-class table, confused pairs."""

    summary: dict[str, Any] | None = None  # (what `show` was given last)

    def compose(self) -> ComposeResult:
        yield Static(id="results-note")
        yield Static("no test results yet", id="results-headline", markup=True)
        with VerticalScroll(id="results-scroll"):
            yield Static(classes="results-caption", id="confusion-caption")
            yield ConfusionTable(id="confusion")
            with Horizontal(id="results-lower"):
                with Vertical(classes="results-half"):
                    yield Static("[b]Per class[/b]", classes="results-caption")
                    yield PerClassTable(id="per-class")
                with Vertical(classes="results-half"):
                    yield Static("[b]Most confused[/b]", classes="results-caption")
                    yield ConfusedPairsTable(id="confused-pairs")

    def on_mount(self) -> None:
        self.query_one("#results-note", Static).display = False
        table = self.query_one(ConfusionTable)
        self.watch(table, "caption", self._caption_changed)
        self.watch(table, "normalised", self._caption_changed)

    def _caption_changed(self) -> None:
        table = self.query_one(ConfusionTable)
        caption = confusion_caption(table.caption or "columns: predicted", table.normalised)
        self.query_one("#confusion-caption", Static).update(caption)

    def set_note(self, markup: str) -> None:
        """A line over the results, e.g. whether they are stored or recomputed ('' hides it)."""
        note = self.query_one("#results-note", Static)
        note.update(markup)
        note.display = bool(markup)

    def on_resize(self) -> None:
        if self.summary is not None:
            self._show_headline()

    def _show_headline(self) -> None:
        width = self.size.width - 2  # (#results-headline's padding)
        headline = pack_groups(summary_groups(self.summary or {}), width)
        self.query_one("#results-headline", Static).update(headline)

    def show(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        self._show_headline()
        classes = list(summary.get("classes") or [])
        matrix = summary.get("confusion_matrix") or []
        self.query_one(ConfusionTable).show(matrix, classes)
        per_class = list(summary.get("per_class") or [])
        self.query_one(PerClassTable).show(per_class)
        support = {str(row.get("class")): int(row.get("support") or 0) for row in per_class}
        if not support and matrix:
            support = {name: sum(row) for name, row in zip(classes, matrix, strict=False)}
        self.query_one(ConfusedPairsTable).show(list(summary.get("most_confused") or []), support)


def confusion_caption(columns: str, normalised: bool) -> str:
    """The caption over the confusion matrix: how to read it (the columns, the mode), then its
    marks and key on a line of their own (wrapped with the rest at 80 columns, "n:" and
    "counts/%" came on two lines)."""
    mode = "row %" if normalised else "counts"
    return (
        f"[b]Confusion matrix[/b] [dim]({mode}) rows: true class · {columns}\n[b]bold[/b]: "
        "correct · [reverse]!n[/reverse]: worst confusions · n: counts/%[/dim]"
    )
