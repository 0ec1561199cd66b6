"""Arrays drawn as grids of numbers, for the step-through lessons.

`ArrayBoard` shows several small 2-D arrays (an input channel, a kernel, an output map, ...)
side by side, wrapping into rows to fit its width. Each grid is built directly as segments from
the values at the current step and the board hands Textual ready-made lines (the Line API), so
a redraw of the largest lesson costs a few milliseconds. A grid too large for its room shows the
part around the highlighted cells, its title and row / column indices drawn around that part.
Highlights use the theme through component classes and are also visible without colour: the
cells being read or written are bracketed `[0.42]`, the window is underlined, padding and
not-yet-computed cells are dimmed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from cnn_tui.lessons.number_format import NumberFormat, choose_format
from cnn_tui.lessons.replay import READ, WINDOW, WRITE, GridSpec

_GAP = 3  # columns between two grids side by side
_LARGE = 10  # arrays with more columns than this are cropped to about half the board's width


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
    """A grid's lines as segments, and where its cells are: cell (r, c) of the array starts at
    column `1 + label_w + (c − origin[1])·cell_w` of line `2 + r − origin[0]`."""

    lines: list[list[Segment]]
    width: int
    label_w: int
    cell_w: int
    origin: tuple[int, int] = (0, 0)  # the first row and column shown (large arrays are cropped)
    cropped: bool = False  # some columns did not fit
    shown_rows: int = 1  # rows of values drawn
    shown_cols: int = 1  # columns of values drawn
    title_wide: bool = False  # its title, not its values, sets its width


def visible_start(marks: dict[tuple[int, int], str], axis: int, size: int, shown: int) -> int:
    """First index to show along `axis` when only `shown` of `size` fit.

    A function of the step alone, so a step looks the same however it was reached (keys one
    at a time, a held key, ←, a go-to): the view a forward walk from the start would have,
    scrolled just enough to keep the step's window in sight, or the cells read and written
    when the window does not fit. With nothing highlighted (step 0) show the start.
    """
    if not marks:
        return 0
    start = 0
    focus = [where[axis] for where, role in marks.items() if role in (READ, WRITE)]
    window = [where[axis] for where in marks] or focus
    written = [where[axis] for where, role in marks.items() if role == WRITE]
    for cells in (window, focus, written):  # (at worst the written cell alone)
        if cells and max(cells) - min(cells) < shown:
            start = max(cells) - shown + 1
            break
    return min(max(start, 0), size - shown)


@lru_cache(maxsize=4096)
def _cell_text(value: float, number_format: NumberFormat) -> str:
    # values repeat a lot (one-decimal inputs, padding zeros, blanks): format each once
    return number_format(value)


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


def render_grid(
    spec: GridSpec,
    styles: GridStyles,
    *,
    max_width: int | None = None,
    max_rows: int | None = None,
    brief: bool = False,
) -> RenderedGrid:
    """One boxed grid: title, column indices, rows with their index and fixed-width cells.

    `brief`: a grid shown whole is titled by its name only (the title's first word: `σ²`,
    `dx[n=1, c=1]`), so that a long title does not widen it (the board asks when titles alone
    would cost rows).

    An array larger than `max_rows` rows or wider than `max_width` columns is cropped to the
    part around the highlighted cells (`visible_start`); the labels keep the array's own indices and the title says which part is shown.
    """
    values = np.asarray(spec.values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    full_rows, full_cols = values.shape
    final = values if spec.final is None else np.asarray(spec.final, dtype=np.float64)
    final = final.reshape(values.shape)
    # the array's one format (the step text's too); its width covers every value the array
    # takes, so the columns stay put while stepping
    number_format = spec.number_format or choose_format(final, values)
    width = max(
        number_format.width,
        max((len(_cell_text(v, number_format)) for v in values.flat), default=1),
        len(str(full_cols - 1)),
    )
    cell_w = width + 2  # room for the brackets of a highlighted cell
    label_w = len(str(full_rows - 1)) + 1 if full_rows > 1 else 0
    rows, cols = full_rows, full_cols
    if max_rows is not None:
        rows = min(full_rows, max(max_rows, 1))
    if max_width is not None:
        cols = min(full_cols, max((max_width - 2 - label_w) // cell_w, 3))
    r0 = visible_start(spec.marks, 0, full_rows, rows)
    c0 = visible_start(spec.marks, 1, full_cols, cols)
    values = values[r0 : r0 + rows, c0 : c0 + cols]
    cells = [[_cell_text(v, number_format) for v in row] for row in values.tolist()]
    pr, pc = spec.pad
    title = f" {title_head(spec.title)} " if brief else f" {spec.title} "
    inner = max(label_w + cols * cell_w, cell_len(title) + 2)
    if (rows, cols) != (full_rows, full_cols):
        # a cropped grid says which part it shows; its title never widens it (the point of
        # cropping is to fit), so a long one gives up its description, then the part shown,
        # but keeps the array's name with its slice (x_pad[c=1])
        parts = []
        if rows != full_rows:
            parts.append(f"rows {r0}–{r0 + rows - 1}" if rows > 1 else f"row {r0}")
        if cols != full_cols:
            parts.append(f"cols {c0}–{c0 + cols - 1}" if cols > 1 else f"col {c0}")
        part = ", ".join(parts)
        name = spec.short or spec.name
        inner = max(label_w + cols * cell_w, 12)
        # the short form: rows then columns shown, and the array's size
        bracket = f"[{_span(r0, rows)}, {_span(c0, cols)}]"
        size = f"{full_rows}×{full_cols}"
        candidates = (
            f" {spec.title} · {part} of {size} ",
            f" {spec.title} · {part} ",
            f" {name} · {part} of {size} ",
            f" {name} · {part} ",
            f" {name} {bracket}/{size} ",
            f" {name} {bracket} ",
            f" {name}{bracket} ".replace(", ", ","),
            f"{name}{bracket}".replace(", ", ","),  # flush against the border
        )
        title = next((t for t in candidates if cell_len(t) + 2 <= inner), "")
        if not title:
            # short on room: the name gives way, never the part shown
            compact = bracket.replace(", ", ",")
            room = inner - 2 - len(compact) - 2
            title = f" {set_cell_size(name, room - 1)}…{compact} " if room >= 2 else f" {compact} "
            if cell_len(title) + 2 > inner:
                title = set_cell_size(title, inner - 3) + "… "
    fill = " " * (inner - label_w - cols * cell_w)
    border, plain = styles.border, Style()
    window_styles: dict[int, Style] = {}
    lines: list[list[Segment]] = [
        [
            Segment("╭─", border),
            Segment(title, styles.title),
            Segment("─" * (inner - cell_len(title) - 1) + "╮", border),
        ]
    ]
    header = "".join(str(c0 + c).center(cell_w) for c in range(cols))
    lines.append(
        [
            Segment("│", border),
            Segment(" " * label_w + header, styles.label),
            Segment(fill + "│", border),
        ]
    )
    marks_by_row: dict[int, dict[int, str]] = {}
    for (r, c), role in spec.marks.items():
        marks_by_row.setdefault(r - r0, {})[c - c0] = role
    for r in range(rows):
        line = _LineBuilder()
        line.add("│", border)
        if label_w:
            line.add(str(r0 + r).rjust(label_w - 1) + " ", styles.label)
        pad_row = r0 + r < pr or r0 + r >= full_rows - pr
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
            elif pad_row or c0 + c < pc or c0 + c >= full_cols - pc:
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
    title_wide = inner > max(label_w + cols * cell_w, 12)
    return RenderedGrid(
        lines, inner + 2, label_w, cell_w, (r0, c0), cols < full_cols, rows, cols, title_wide
    )


def title_head(title: str) -> str:
    """A grid title's first word, the array's name with its slice: "σ²" of "σ² variance
    (biased)", "dx[n=1, c=1]" of "dx[n=1, c=1] ∂L/∂x" (a space inside brackets is the slice's)."""
    depth = 0
    for at, char in enumerate(title):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == " " and depth <= 0:
            return title[:at]
    return title


def _span(start: int, count: int) -> str:
    """Indices start … start + count − 1, as a title writes them: "3–5", or "3"."""
    return f"{start}–{start + count - 1}" if count > 1 else str(start)


def _is_target(spec: GridSpec) -> bool:
    """The array the step writes into, when it is larger than the step's window."""
    return np.ndim(spec.values) == 2 and WRITE in spec.marks.values() and not _is_kernel(spec)


def _is_kernel(spec: GridSpec) -> bool:
    """A small 2-D array wholly inside the step's window (the kernel): shown whole."""
    shape = np.shape(spec.values)
    return len(shape) == 2 and 1 < shape[0] <= 5 and len(spec.marks) == shape[0] * shape[1]


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
    screen when that size changes, so a step redraws just the board. With `fit_height` (the
    conv / pool lesson) the grids' rows are cropped so that the board fits the rows the screen
    gives it (`room`): every grid stays on screen with its title and indices, and only the
    values inside a grid follow the step, so nothing is scrolled out of sight at 80×24.
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

    def __init__(
        self, *, id: str | None = None, classes: str | None = None, fit_height: bool = False
    ) -> None:
        super().__init__(id=id, classes=classes)
        # crop the grids' rows so that the whole board fits its room (`room`): every grid,
        # its title and indices stay in sight and only the values scroll inside each grid
        self.fit_height = fit_height
        self._given: list[GridSpec] = []  # the grids in the order `show` had them
        self._grids: list[GridSpec] = []  # in the order drawn (`_kernels_beside_target`)
        self._lines: list[tuple[list[Segment], int]] = []
        self._strips: dict[int, Strip] = {}  # built lazily, only for the lines on screen
        self._origins: list[tuple[int, int]] = []
        self._blocks: list[RenderedGrid] = []
        self._laid_out_for = -1  # the available width of the current layout
        self._board_size = (0, 0)
        # the rows the screen can give the board (its container is fitted to the board, so
        # the container's own height would shrink the grids with every redraw); None: unknown
        self.room: int | None = None

    @property
    def board_size(self) -> tuple[int, int]:
        """(width, height) of the board's lines."""
        return self._board_size

    @property
    def grids(self) -> list[GridSpec]:
        """The grids in the order they are drawn."""
        return self._grids

    def show(self, grids: list[GridSpec]) -> None:
        """Draw these grids (the lines are built now; only a change of size re-lays out)."""
        self._given = grids
        self._build()

    def relayout(self) -> None:
        """Lay the grids shown out again (the board's `room` changed)."""
        self._build()

    def _build(self) -> None:
        """Lay the grids out for the container's width: all of it, or what its vertical
        scrollbar leaves when the board is taller than its room.

        Whether the bar takes a column is decided here from the board's own height, never read
        from the bar on screen: a board laid out while a bar showed for a moment kept the
        narrower layout after the bar went (nothing resized the board), and a board that
        needs the bar at one width and not at the next flipped between the two for ever."""
        available = self._available_width()
        # from the order given each time: an order made for a narrower board does not stay
        self._grids = list(self._given)
        width = available
        self._arrange_for(width)
        bar = self._scrollbar_width()
        if bar and self._height_at(width) > self._room():
            self._grids = list(self._given)
            width = available - bar
            self._arrange_for(width)
        self._place(width)
        self._laid_out_for = available

    def _arrange_for(self, available: int) -> None:
        self._arrange(available)
        if self.fit_height and self._windows_cut():
            # the rows of grids cannot all show their windows (dX at 80×24: the kernel beside
            # dout, dx_pad below): the kernels move into the row of the array being written,
            # which gives up columns, not the rows of its window
            self._grids = self._kernels_beside_target(available)
            self._arrange(available, beside_target=True)

    def _height_at(self, available: int) -> int:
        """The board's lines once the rendered grids are laid out in `available` columns."""
        return self._height_of(self._blocks, available)

    @staticmethod
    def _height_of(blocks: Sequence[RenderedGrid], available: int) -> int:
        rows = pack_rows([block.width for block in blocks], available)
        return sum(max(len(blocks[i].lines) for i in row) for row in rows)

    def _kernels_beside_target(self, available: int) -> list[GridSpec]:
        """The grids reordered so that the kernels (small arrays wholly in the step's window)
        come just after the array being written, in its row."""
        grids = self._grids
        target = next((i for i, spec in enumerate(grids) if _is_target(spec)), None)
        if target is None:
            return grids
        kernels = [i for i, spec in enumerate(grids) if i != target and _is_kernel(spec)]
        moved = [grids[i] for i in kernels]
        rest = [spec for i, spec in enumerate(grids) if i not in kernels]
        at = rest.index(grids[target]) + 1
        return rest[:at] + moved + rest[at:]

    def _windows_cut(self) -> bool:
        """Whether a grid shows fewer rows than its step's window spans (a window that fits a
        3×3 kernel: the whole-array "windows" of db and dW need only the cells read)."""
        for spec, block in zip(self._grids, self._blocks, strict=True):
            rows = [r for r, _ in spec.marks]
            if not rows:
                continue
            span = max(rows) - min(rows) + 1
            full = np.shape(spec.values)[0] if np.ndim(spec.values) == 2 else 1
            if span < full or _is_kernel(spec):
                if block.shown_rows < min(span, full):
                    return True
        return False

    def _arrange(self, available: int, *, beside_target: bool = False) -> None:
        """Render every grid for this width: the operands side by side, cropped grids widened
        into the room their row leaves, and (fit_height) the rows cropped to the board's room.
        With `beside_target` the array being written shares its row with the kernels after
        it, its columns cropped to what they leave."""
        styles = self._styles()
        max_rows = None if self.fit_height else self._max_rows()
        brief: set[int] = set()  # grids titled by their name only (`_brief_titles`)

        def render(
            index: int, width: int, rows: int | None = max_rows, short: bool | None = None
        ) -> RenderedGrid:
            spec, short = self._grids[index], index in brief if short is None else short
            return render_grid(spec, styles, max_width=width, max_rows=rows, brief=short)

        caps = []
        for spec in self._grids:
            # on a wide board a large array starts from half the width: input and output side
            # by side; the room left in its row is handed out below
            large = np.shape(spec.values)[-1] > _LARGE and available >= 100
            caps.append(available // 2 - _GAP if large else available)
        # the operands of the current step share one row, cropped if need be, so both are seen:
        # the narrow ones (a kernel) keep their width, the wide ones share what is left
        readers = [
            i
            for i, spec in enumerate(self._grids)
            if any(role == READ for role in spec.marks.values())
        ]
        if self.fit_height:
            # the phase's 2-D operands, from its start, so the layout holds still while
            # stepping; a one-row array (a bias) fits wherever there is room
            readers = [
                i
                for i, spec in enumerate(self._grids)
                if (spec.operand or i in readers) and np.ndim(spec.values) == 2
                and np.shape(spec.values)[0] > 1
            ]  # fmt: skip
        if len(readers) > 1:
            natural = {i: render(i, caps[i]).width for i in readers}
            left = available - _GAP * (len(readers) - 1)
            if sum(natural.values()) > left and not self.fit_height:
                for i in readers:  # an equal share each
                    caps[i] = min(caps[i], left // len(readers))
            elif sum(natural.values()) > left:
                ordered = sorted(readers, key=natural.__getitem__)
                for count, i in enumerate(ordered):
                    share = left // (len(ordered) - count)
                    caps[i] = min(caps[i], share)
                    left -= min(natural[i], caps[i])
        if beside_target:
            target = next(i for i, spec in enumerate(self._grids) if _is_target(spec))
            kernels = [i for i, spec in enumerate(self._grids) if _is_kernel(spec)]
            used = sum(render(i, caps[i]).width + _GAP for i in kernels)
            caps[target] = min(caps[target], available - used)
            for i in kernels:
                if i in readers:
                    caps[i] = available
        self._blocks = [render(i, caps[i]) for i in range(len(self._grids))]
        # cropped grids take the room their row leaves, instead of blank space beside them
        for row in pack_rows([block.width for block in self._blocks], available):
            used = sum(self._blocks[i].width for i in row) + _GAP * (len(row) - 1)
            cropped = [i for i in row if self._blocks[i].cropped]
            if cropped and used < available:
                extra = (available - used) // len(cropped)
                for i in cropped:
                    self._blocks[i] = render(i, self._blocks[i].width + extra)
        if self.fit_height:
            brief.update(self._brief_titles(available, render))
            for i, rows in self._rows_that_fit(available).items():
                self._blocks[i] = render(i, self._blocks[i].width, rows)

    def _brief_titles(self, available: int, render: Callable[..., RenderedGrid]) -> set[int]:
        """The grids (by index) whose long titles give way to their names, so that the grids
        wrap into fewer rows: only when the board is taller than its room, the widest titles
        first, no more than it takes (rows of values cropped for a title's sake left a band
        under the board: dropout's mask beside dx and dy at 80×24)."""
        blocks, room = self._blocks, self._room()
        if self._height_of(blocks, available) <= room:
            return set()
        shorter = {}
        for i, block in enumerate(blocks):
            if block.title_wide:
                short = render(i, block.width, short=True)
                if short.width < block.width:
                    shorter[i] = short
        least = self._height_of([shorter.get(i, b) for i, b in enumerate(blocks)], available)
        if least >= self._height_of(blocks, available):
            return set()
        chosen: set[int] = set()
        for i in sorted(shorter, key=lambda i: blocks[i].width - shorter[i].width, reverse=True):
            chosen.add(i)
            trial = [shorter[k] if k in chosen else b for k, b in enumerate(blocks)]
            height = self._height_of(trial, available)
            if height <= room or height == least:
                break
        for i in chosen:
            blocks[i] = shorter[i]
        return chosen

    def _place(self, available: int) -> None:
        """Lay the rendered grids out and hand Textual the lines that changed."""
        old_lines, old_strips = self._lines, self._strips
        self._lines, self._origins = layout_grids(self._blocks, available)
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
        if self.stale_width():
            self._build()

    def stale_width(self) -> bool:
        """Whether the board was laid out for another width than its container gives it now.

        The board's own size does not follow its container's, so a container that narrows or
        widens without resizing the board (a scrollbar of the screen that came and went while
        keys came faster than the layout) sends the board no Resize: its screen asks this after
        each layout (`SteppingScreen`)."""
        return bool(self._given) and self._available_width() != self._laid_out_for

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
        """The columns of the scrolling container, the column of its vertical scrollbar
        included (whether the bar is there is for `_build` to say)."""
        parent = self.parent
        if isinstance(parent, Widget) and parent.size.width:
            width = parent.scrollable_content_region.width
            if self._scrollbar_width():
                width += parent.scrollbar_size_vertical  # (0 while it does not show)
            return max(width, 20)
        return max(self.app.size.width - 4, 20)

    def _scrollbar_width(self) -> int:
        """The columns of the container's vertical scrollbar, if it comes and goes with the
        board's height (0 for a bar always there or never: its column is not the board's)."""
        parent = self.parent
        if not isinstance(parent, Widget):
            return 0
        styles = parent.styles
        if styles.overflow_y != "auto" or styles.scrollbar_gutter == "stable":
            return 0
        return styles.scrollbar_size_vertical

    def _rows_that_fit(self, available: int) -> dict[int, int]:
        """How many rows of values each grid (by index) may show so that the rows of grids fit
        the board's room; grids left out need no cropping. Each grid keeps its title, column
        indices and borders; only its rows are cropped, around the highlighted cells.

        A row of grids first gives up the rows beyond what its highlights span (the window
        of the step, or the whole kernel; three rows at least), the row with the most to
        spare first; if that is not enough, the row with the most rows left loses one at a
        time (on a tie, the row whose smallest cropped array is the larger), down to one row
        each (below that the container scrolls)."""
        room = self._room()
        blocks = self._blocks
        shelves = pack_rows([block.width for block in blocks], available)
        levels = [max(blocks[i].shown_rows for i in shelf) for shelf in shelves]

        def overhead(i: int) -> int:
            return len(blocks[i].lines) - blocks[i].shown_rows

        def height() -> int:
            return sum(
                max(overhead(i) + min(blocks[i].shown_rows, level) for i in shelf)
                for shelf, level in zip(shelves, levels, strict=True)
            )

        def need(i: int) -> int:
            # the rows the highlights span, and a small array (a 3×3 kernel) whole
            rows = [r for r, _ in self._grids[i].marks]
            span = max(rows) - min(rows) + 1 if rows else 1
            return min(max(span, 3), blocks[i].shown_rows)

        def window(i: int) -> int:
            # the rows of the step's window, nothing more (a whole-array window: the cells
            # read and written)
            rows = [r for r, _ in self._grids[i].marks]
            if not rows:
                return 1
            span = max(rows) - min(rows) + 1
            if span >= np.shape(self._grids[i].values)[0] and not _is_kernel(self._grids[i]):
                focus = [
                    at[0] for at, role in self._grids[i].marks.items() if role in (READ, WRITE)
                ]
                span = max(focus) - min(focus) + 1 if focus else 1
            return min(span, blocks[i].shown_rows)

        needs = [max(need(i) for i in shelf) for shelf in shelves]
        windows = [max(window(i) for i in shelf) for shelf in shelves]

        def smallest_cropped(k: int) -> int:
            # the smallest grid one row less would crop: a kernel's row costs more than a
            # large array's
            return min(
                (blocks[i].shown_rows for i in shelves[k] if blocks[i].shown_rows >= levels[k]),
                default=0,
            )

        while height() > room:
            spare = [level - need for level, need in zip(levels, needs, strict=True)]
            beyond = [level - rows for level, rows in zip(levels, windows, strict=True)]
            if max(spare) > 0:
                index = max(range(len(shelves)), key=lambda k: (spare[k], smallest_cropped(k)))
            elif max(beyond) > 0:
                # a small array gives up rows before a window is cut
                index = max(range(len(shelves)), key=lambda k: (beyond[k], smallest_cropped(k)))
            elif max(levels) > 1:
                index = max(range(len(shelves)), key=lambda k: (levels[k], smallest_cropped(k)))
            else:
                break
            levels[index] -= 1
        rows = {}
        for shelf, level in zip(shelves, levels, strict=True):
            for i in shelf:
                if blocks[i].shown_rows > level:
                    rows[i] = level
        return rows

    def _room(self) -> int:
        """Lines the screen gives the board (the screen's measure once it laid out)."""
        parent = self.parent
        height = parent.scrollable_content_region.height if isinstance(parent, Widget) else 0
        return self.room or height or max(self.app.size.height - 12, 8)

    def _max_rows(self) -> int:
        """Rows per grid: two rows of grids fit the visible height (small arrays never crop)."""
        parent = self.parent
        height = parent.scrollable_content_region.height if isinstance(parent, Widget) else 0
        height = self.room or height or self.app.size.height - 12
        return max(8, (height - 6) // 2)

    def plain_lines(self) -> list[str]:
        """The board as plain text, one string per line (for tests and debugging)."""
        return ["".join(segment.text for segment in segments) for segments, _ in self._lines]

    def highlight_region(self, roles: tuple[str, ...] = (WRITE,)) -> Region | None:
        """Where the cells of the current step with these roles are drawn (the written cell by
        default), as one region: to scroll them into view."""
        found: list[Region] = []
        for spec, block, (x, y) in zip(self._grids, self._blocks, self._origins, strict=True):
            for (r, c), role in spec.marks.items():
                if role in roles:
                    r0, c0 = block.origin
                    left = x + 1 + block.label_w + (c - c0) * block.cell_w
                    found.append(Region(left, y + 2 + r - r0, block.cell_w, 1))
        return Region.from_union(found) if found else None

    def grid_box(self, name: str) -> Region | None:
        """Where grid `name` is drawn on the board (its border included), None if not shown."""
        for spec, block, (x, y) in zip(self._grids, self._blocks, self._origins, strict=True):
            if spec.name == name:
                return Region(x, y, block.width, len(block.lines))
        return None

    def cell_region(self, name: str, cell: tuple[int, int]) -> Region | None:
        """Where cell (row, column) of grid `name` is drawn on the board; None when the grid
        is not shown or its cropped part leaves the cell out."""
        for spec, block, (x, y) in zip(self._grids, self._blocks, self._origins, strict=True):
            if spec.name != name:
                continue
            r0, c0 = block.origin
            r, c = cell
            if not (r0 <= r < r0 + block.shown_rows and c0 <= c < c0 + block.shown_cols):
                return None
            left = x + 1 + block.label_w + (c - c0) * block.cell_w
            return Region(left, y + 2 + r - r0, block.cell_w, 1)
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
