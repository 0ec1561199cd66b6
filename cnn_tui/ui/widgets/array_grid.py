"""Arrays drawn as grids of numbers, for the step-through lessons.

`ArrayBoard` shows several small 2-D arrays (an input channel, a kernel, an output map, ...)
side by side, wrapping into rows to fit its width. Each grid is built directly as segments from
the values at the current step and the board hands Textual ready-made lines (the Line API), so
a redraw of the largest lesson costs a few milliseconds. Highlights use the theme through
component classes and are also visible without colour: the cells being read or written are
bracketed `[0.42]`, the window is underlined, padding and not-yet-computed cells are dimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from cnn_tui.ui.lesson_model import READ, WINDOW, WRITE, GridSpec, fmt_cell, grid_decimals

_GAP = 3  # columns between two grids side by side


@dataclass
class GridStyles:
    """Rich styles for the parts of a grid, resolved from the theme."""

    title: Style = field(default_factory=Style)
    border: Style = field(default_factory=Style)
    label: Style = field(default_factory=Style)
    pad: Style = field(default_factory=Style)
    blank: Style = field(default_factory=Style)
    window: Style = field(default_factory=lambda: Style(underline=True))
    read: Style = field(default_factory=lambda: Style(bold=True, reverse=True))
    write: Style = field(default_factory=lambda: Style(bold=True, reverse=True))


@dataclass
class RenderedGrid:
    """A grid's lines as segments, and where its cells are: cell (r, c) starts at column
    `1 + label_w + c·cell_w` of line `2 + r`."""

    lines: list[list[Segment]]
    width: int
    label_w: int
    cell_w: int


@lru_cache(maxsize=4096)
def _cell_text(value: float, decimals: int) -> str:
    # values repeat a lot (one-decimal inputs, padding zeros, blanks): format each once
    return fmt_cell(value, decimals)


class _LineBuilder:
    """Segments of one line, merging neighbours of the same style (fewer segments, faster)."""

    __slots__ = ("segments", "_texts", "_style")

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._texts: list[str] = []
        self._style: Style | None = None

    def add(self, text: str, style: Style) -> None:
        if style is not self._style:
            self._flush()
            self._style = style
        self._texts.append(text)

    def _flush(self) -> None:
        if self._texts:
            self.segments.append(Segment("".join(self._texts), self._style))
            self._texts = []

    def done(self) -> list[Segment]:
        self._flush()
        return self.segments


def render_grid(spec: GridSpec, styles: GridStyles) -> RenderedGrid:
    """One boxed grid: title, column indices, rows with their index and fixed-width cells."""
    values = np.asarray(spec.values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    rows, cols = values.shape
    final = values if spec.final is None else np.asarray(spec.final, dtype=np.float64)
    final = final.reshape(values.shape)
    decimals = grid_decimals(final)
    cells = [[_cell_text(v, decimals) for v in row] for row in values.tolist()]
    width = max(
        max((len(t) for row in cells for t in row), default=1),
        max((len(_cell_text(v, decimals)) for v in final.flat), default=1),
        len(str(cols - 1)),
    )
    cell_w = width + 2  # room for the brackets of a highlighted cell
    label_w = len(str(rows - 1)) + 1 if rows > 1 else 0
    pr, pc = spec.pad
    title = f" {spec.title} "
    inner = max(label_w + cols * cell_w, len(title) + 2)
    fill = " " * (inner - label_w - cols * cell_w)
    border, plain = styles.border, Style()
    window_styles: dict[int, Style] = {}
    lines: list[list[Segment]] = [
        [
            Segment("╭─", border),
            Segment(title, styles.title),
            Segment("─" * (inner - len(title) - 1) + "╮", border),
        ]
    ]
    header = "".join(str(c).center(cell_w) for c in range(cols))
    lines.append(
        [
            Segment("│", border),
            Segment(" " * label_w + header, styles.label),
            Segment(fill + "│", border),
        ]
    )
    marks_by_row: dict[int, dict[int, str]] = {}
    for (r, c), role in spec.marks.items():
        marks_by_row.setdefault(r, {})[c] = role
    for r in range(rows):
        line = _LineBuilder()
        line.add("│", border)
        if label_w:
            line.add(str(r).rjust(label_w - 1) + " ", styles.label)
        pad_row = r < pr or r >= rows - pr
        row_marks = marks_by_row.get(r, {})
        for c, text in enumerate(cells[r]):
            lead = " " * (width - len(text))
            role = row_marks.get(c)
            if role == READ or role == WRITE:
                line.add(lead, plain)  # brackets hug the number
                line.add(f"[{text}]", styles.write if role == WRITE else styles.read)
                continue
            if text == "·":
                style = styles.blank
            elif pad_row or c < pc or c >= cols - pc:
                style = styles.pad
            else:
                style = plain
            if role == WINDOW:
                window = window_styles.get(id(style))
                if window is None:
                    window = window_styles[id(style)] = style + styles.window
                line.add(lead + " ", plain)
                line.add(text, window)
                line.add(" ", plain)
            else:
                line.add(f"{lead} {text} ", style)
        line.add(fill, plain)
        line.add("│", border)
        lines.append(line.done())
    lines.append([Segment("╰" + "─" * inner + "╯", border)])
    return RenderedGrid(lines, inner + 2, label_w, cell_w)


def pack_rows(widths: Sequence[int], available: int, gap: int = _GAP) -> list[list[int]]:
    """Greedy left-to-right packing of items of the given widths into rows of `available`."""
    rows: list[list[int]] = []
    used = 0
    for index, width in enumerate(widths):
        if rows and used + gap + width <= available:
            rows[-1].append(index)
            used += gap + width
        else:
            rows.append([index])
            used = width
    return rows


def layout_grids(
    blocks: Sequence[RenderedGrid], available: int
) -> tuple[list[tuple[list[Segment], int]], list[tuple[int, int]]]:
    """Grids side by side, wrapped into rows that fit `available` columns: the board's lines
    as (segments, cell length), and the (x, y) of each grid's top-left corner."""
    lines: list[tuple[list[Segment], int]] = []
    origins = [(0, 0)] * len(blocks)
    gap = Segment(" " * _GAP)
    for row in pack_rows([block.width for block in blocks], available):
        height = max(len(blocks[i].lines) for i in row)
        x = 0
        for i in row:
            origins[i] = (x, len(lines))
            x += blocks[i].width + _GAP
        for line_no in range(height):
            segments: list[Segment] = []
            for position, i in enumerate(row):
                block = blocks[i]
                if position:
                    segments.append(gap)
                if line_no < len(block.lines):
                    segments.extend(block.lines[line_no])
                else:
                    segments.append(Segment(" " * block.width))
            lines.append((segments, x - _GAP))
    return lines, origins


class ArrayBoard(Widget):
    """Several grids side by side, wrapping to the width of the scrolling container around it.

    The board sizes itself to its lines (the container scrolls it); `show` only re-lays out the
    screen when that size changes, so a step redraws just the board.
    """

    COMPONENT_CLASSES = {
        "array-board--title",
        "array-board--border",
        "array-board--label",
        "array-board--pad",
        "array-board--blank",
        "array-board--window",
        "array-board--read",
        "array-board--write",
    }

    DEFAULT_CSS = """
    ArrayBoard {
        width: 1;
        height: 1;
    }
    ArrayBoard > .array-board--title { color: $accent; text-style: bold; }
    ArrayBoard > .array-board--border { color: $foreground 40%; }
    ArrayBoard > .array-board--label { color: $text-muted; }
    ArrayBoard > .array-board--pad { color: $text-disabled; }
    ArrayBoard > .array-board--blank { color: $text-disabled; }
    ArrayBoard > .array-board--window { background: $accent 25%; text-style: underline; }
    ArrayBoard > .array-board--read { background: $accent; color: $text; text-style: bold; }
    ArrayBoard > .array-board--write { background: $warning; color: $text; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._grids: list[GridSpec] = []
        self._lines: list[tuple[list[Segment], int]] = []
        self._strips: dict[int, Strip] = {}  # built lazily, only for the lines on screen
        self._origins: list[tuple[int, int]] = []
        self._blocks: list[RenderedGrid] = []
        self._laid_out_for = -1  # the available width of the current layout
        self._board_size = (0, 0)

    @property
    def grids(self) -> list[GridSpec]:
        return self._grids

    def show(self, grids: list[GridSpec]) -> None:
        """Draw these grids (the lines are built now; only a change of size re-lays out)."""
        self._grids = grids
        self._build()

    def _build(self) -> None:
        styles = self._styles()
        self._blocks = [render_grid(spec, styles) for spec in self._grids]
        available = self._available_width()
        old_lines, old_strips = self._lines, self._strips
        self._lines, self._origins = layout_grids(self._blocks, available)
        self._laid_out_for = available
        width = max((length for _, length in self._lines), default=1)
        height = max(len(self._lines), 1)
        if self._board_size != (width, height):
            self._board_size = (width, height)
            self._strips = {}
            self.styles.width = width  # a new size: the container re-lays out and scrolls
            self.styles.height = height
            self.refresh()
            return
        # same size: repaint only the lines that changed (a step touches a few rows)
        self._strips = {}
        changed = []
        for y, line in enumerate(self._lines):
            if y < len(old_lines) and old_lines[y] == line and y in old_strips:
                self._strips[y] = old_strips[y]
            else:
                changed.append(Region(0, y, width, 1))
        if changed:
            self.refresh(*changed)

    def on_resize(self) -> None:
        if self._available_width() != self._laid_out_for:
            self._build()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self._grids and self.is_mounted:
            self.call_later(self._build)  # the theme changed: rebuild with its colours

    def _styles(self) -> GridStyles:
        get = self.get_component_rich_style
        return GridStyles(
            title=get("array-board--title"),
            border=get("array-board--border"),
            label=get("array-board--label"),
            pad=get("array-board--pad"),
            blank=get("array-board--blank"),
            window=get("array-board--window"),
            read=get("array-board--read"),
            write=get("array-board--write"),
        )

    def _available_width(self) -> int:
        parent = self.parent
        if isinstance(parent, Widget) and parent.size.width:
            return max(parent.scrollable_content_region.width, 20)
        return max(self.app.size.width - 4, 20)

    def plain_lines(self) -> list[str]:
        """The board as plain text, one string per line (for tests and debugging)."""
        return ["".join(segment.text for segment in segments) for segments, _ in self._lines]

    def highlight_region(self) -> Region | None:
        """Where the cell written by the current step is drawn (to scroll it into view)."""
        for spec, block, (x, y) in zip(self._grids, self._blocks, self._origins, strict=True):
            for (r, c), role in spec.marks.items():
                if role == WRITE:
                    left = x + 1 + block.label_w + c * block.cell_w
                    return Region(left, y + 2 + r, block.cell_w, 1)
        return None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not 0 <= y < len(self._lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(y)
        if strip is None:
            segments, length = self._lines[y]
            strip = Strip(segments, length).extend_cell_length(width)
            strip = self._strips[y] = strip.apply_style(self.rich_style)
        return strip
