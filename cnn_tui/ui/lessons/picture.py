"""The picture lesson (`cnn-tui conv --image`): a picture and its feature map as half-block
images above the conv lesson, which steps through a crop of the picture.

`PictureScreen` is the conv `LessonScreen` on the crop's example (`PictureLesson.example()`:
x the crop, w the kernel) with a `PicturePanel` above its board: the picture with the crop bright
and the rest dimmed, the current step's window and pixel tinted; the feature map of the whole
picture in a diverging palette with its scale, the crop's output region bright (its cells appear
as the forward pass computes them) and the current cell tinted. Keys move the crop (w a s d),
change the kernel (k / K) and show or hide the picture (i). On a short terminal (80×24) the
picture and the board take turns (i), the status and the step panel stay.
"""

from __future__ import annotations

import textwrap
from typing import ClassVar

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from cnn_tui.errors import UsageError
from cnn_tui.lessons.kernels import KERNEL_NAMES
from cnn_tui.lessons.picture import PictureLesson, PictureMarks, step_marks
from cnn_tui.lessons.settings import CONV_MODES
from cnn_tui.text import one_line
from cnn_tui.ui.lessons.half_blocks import (
    dim,
    diverging_rgb,
    frame_mask,
    grey_rgb,
    half_block_lines,
    legend_rgb,
    tint,
)
from cnn_tui.ui.lessons.screen import LessonScreen

WINDOW_TINT = (255, 215, 0)  # the current output cell's window (and the cell itself)
PIXEL_TINT = (255, 60, 200)  # the pixel the step reads
FRAME = (0, 200, 200)  # the frame around the crop and around its output region
NOT_DONE = (90, 90, 90)  # a region cell the forward pass has not computed yet
GAP = "  "
MIN_BOARD_ROWS = 12  # below this much room for the board, picture and board take turns

CROP_GROUP = Binding.Group("crop", compact=True)
KERNEL_GROUP = Binding.Group("kernel", compact=True)


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class PicturePanel(Static):
    """The picture and its feature map, with the crop, the step and the scale marked."""

    def show(
        self,
        lesson: PictureLesson,
        marks: PictureMarks,
        hints: list[tuple[str, int]],
        max_lines: int | None = None,
    ) -> None:
        width = (self.size.width or self.screen.size.width) - self.styles.gutter.width
        self.update(picture_panel(lesson, marks, width, hints, max_lines))


def picture_panel(
    lesson: PictureLesson,
    marks: PictureMarks,
    total_width: int,
    hints: list[tuple[str, int]] | None = None,
    max_lines: int | None = None,
) -> Group:
    """The panel's lines: the two images side by side, the scale, the facts beside them. At
    most `max_lines` text rows (None: the whole picture)."""
    hints = hints or []
    picture, fmap = lesson.picture, lesson.feature_map
    height, width = picture.size
    (top, left), (crop_h, crop_w) = lesson.crop, lesson.crop_size

    outside = np.ones((height, width), dtype=bool)
    outside[top : top + crop_h, left : left + crop_w] = False
    image = dim(grey_rgb(picture.pixels), outside)
    image = tint(image, frame_mask(outside.shape, top, left, crop_h, crop_w), FRAME, 0.8)
    if marks.window:
        window = np.zeros_like(outside)
        for r, c in marks.window:
            window[r, c] = True
        image = tint(image, window, WINDOW_TINT, 0.35)
    if marks.pixel is not None:
        pixel = np.zeros_like(outside)
        pixel[marks.pixel] = True
        image = tint(image, pixel, PIXEL_TINT, 0.7)

    limit = float(np.max(np.abs(fmap))) if fmap.size else 0.0
    row0, col0, rows, cols = lesson.region
    region = np.zeros(fmap.shape, dtype=bool)
    region[row0 : row0 + rows, col0 : col0 + cols] = True
    fimage = dim(diverging_rgb(fmap, limit), ~region)
    fimage = tint(fimage, frame_mask(region.shape, row0, col0, rows, cols), FRAME, 0.8)
    if marks.done is not None:
        pending = np.zeros_like(region)
        pending[row0 : row0 + rows, col0 : col0 + cols] = ~marks.done
        fimage = tint(fimage, pending, NOT_DONE, 1.0)
    if marks.cell is not None:
        cell = np.zeros_like(region)
        cell[marks.cell] = True
        fimage = tint(fimage, cell, WINDOW_TINT, 0.6)

    left_lines, right_lines = half_block_lines(image), half_block_lines(fimage)
    n_lines = max(len(left_lines), len(right_lines), 3)
    if max_lines is not None and n_lines > max(max_lines, 3):
        # too short for the whole picture: the text rows around the crop (as the board crops
        # an array around the step)
        n_lines = max(max_lines, 3)
        middle = (top + (top + crop_h - 1)) // 4
        start = min(max(middle - n_lines // 2, 0), max(len(left_lines) - n_lines, 0))
        left_lines = left_lines[start : start + n_lines]
        right_lines = right_lines[start : start + n_lines]
    legend = half_block_lines(legend_rgb(limit, 2 * n_lines))
    labels = {0: f"+{_num(limit)}", n_lines // 2: "0", n_lines - 1: f"-{_num(limit)}"}
    label_width = max(len(label) for label in labels.values()) + 1
    used = width + len(GAP) + fmap.shape[1] + len(GAP) + 2 + label_width + len(GAP)
    info = _info_lines(lesson, hints, max(total_width - used, 8), n_lines)
    lines = []
    for k in range(n_lines):
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append_text(left_lines[k] if k < len(left_lines) else Text(" " * width))
        line.append(GAP)
        right_width = fmap.shape[1]
        line.append_text(right_lines[k] if k < len(right_lines) else Text(" " * right_width))
        line.append(GAP)
        line.append_text(legend[k])
        line.append(f" {labels.get(k, '')}".ljust(label_width), style="dim")
        if k < len(info):
            line.append(GAP)
            line.append_text(info[k])
        lines.append(line)
    return Group(*lines)


def _info_lines(
    lesson: PictureLesson, hints: list[tuple[str, int]], width: int, room: int
) -> list[Text]:
    """The facts beside the images, wrapped to `width`, at most `room` lines: the picture, the
    crop (in the frame's colour), the kernel, the feature map's size and range, the crop's
    output region, the hints. When they do not fit, the least important go first."""
    picture, fmap = lesson.picture, lesson.feature_map
    (top, left), (crop_h, crop_w) = lesson.crop, lesson.crop_size
    row0, col0, rows, cols = lesson.region
    frame = "rgb({},{},{})".format(*FRAME)
    kernel = lesson.kernel_name + (" rotated 180°" if lesson.flip else "")
    notes = "".join(f", {note}" for note in picture.notes)
    # (text, style, importance: the lowest is left out first)
    items: list[tuple[str, str, int]] = [
        (one_line(picture.source), "bold", 4),
        (f"{picture.size[0]}×{picture.size[1]} grey{notes}", "", 2),
        (f"crop {crop_h}×{crop_w} at {top},{left}", f"bold {frame}", 9),
        (f"kernel {kernel}", "bold", 8),
        (f"feature map {fmap.shape[0]}×{fmap.shape[1]}", "", 3),
        (f"{_num(float(fmap.min()))} to {_num(float(fmap.max()))}", "", 5),
        (f"crop's out: rows {row0}–{row0 + rows - 1}, cols {col0}–{col0 + cols - 1}", frame, 3),
        *((hint, "dim", importance) for hint, importance in hints),
    ]
    wrapped = [
        (textwrap.wrap(text, width, break_on_hyphens=False) or [""], style, importance)
        for text, style, importance in items
    ]
    while sum(len(parts) for parts, _, _ in wrapped) > room and len(wrapped) > 1:
        least = min(range(len(wrapped)), key=lambda k: (wrapped[k][2], -k))
        del wrapped[least]
    return [
        Text(part, style=style, no_wrap=True, overflow="ellipsis")
        for parts, style, _ in wrapped
        for part in parts
    ][:room]


class PictureScreen(LessonScreen):
    """The conv lesson on a crop of a picture, with the picture and its feature map above."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "move_crop(-1, 0)", "crop up", group=CROP_GROUP),
        Binding("a", "move_crop(0, -1)", "crop left", group=CROP_GROUP),
        Binding("s", "move_crop(1, 0)", "crop down", group=CROP_GROUP),
        Binding("d", "move_crop(0, 1)", "crop right", group=CROP_GROUP),
        Binding("k", "kernel(1)", "next kernel", group=KERNEL_GROUP),
        Binding("K", "kernel(-1)", "previous kernel", group=KERNEL_GROUP),
        Binding("i", "toggle_picture", "picture/board"),
    ]

    panel_id = "picture-panel"

    def __init__(
        self,
        lesson: PictureLesson,
        *,
        run_checks: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__("conv", lesson.params(), run_checks=run_checks, name=name, id=id)
        self.lesson = lesson
        self.example = lesson.example()
        self._compute()
        self.picture_shown = True  # on a short terminal: the picture, else the board
        self._picture_room: int | None = None  # text rows the picture may take (short only)

    def on_mount(self) -> None:
        # beside the conv lesson's own widgets, above its board (runs before its on_mount)
        self.mount(PicturePanel(id=self.panel_id), before=f"#{self.scroll_id}")

    # ----------------------------------------------------------------- drawing

    def _redraw(self) -> None:
        super()._redraw()
        panels = self.query(f"#{self.panel_id}")
        if not panels:
            return
        panel = panels.first(PicturePanel)
        forward = self.model.mode == "forward"
        marks = step_marks(self.lesson, self.model.replay, forward)
        room = self._picture_room if self._short() else None
        panel.show(self.lesson, marks, self._hints(), room)
        self._arrange(panel)
        if self._short():
            self.call_after_refresh(self._fit_picture)

    def _fit_picture(self) -> None:
        """On a short terminal: give the picture the rows the status, the step panel (whose
        height changes with the step) and the footer leave, and redraw it if that changed."""
        panels = self.query(f"#{self.panel_id}")
        if not panels or not panels.first().display:
            return
        panel = panels.first(PicturePanel)
        others = sum(
            child.outer_size.height
            for child in self.children
            if isinstance(child, Widget)
            and child is not panel
            and child.display
            and str(child.styles.dock or "") in ("", "none", "top", "bottom")
        )
        room = max(self.size.height - others, 3)
        if room != self._picture_room:
            self._picture_room = room
            self._redraw()

    def _hints(self) -> list[tuple[str, int]]:
        """The keys of the picture, with their importance (see `_info_lines`)."""
        hints = [("w a s d: move the crop", 1), ("k: next kernel", 1)]
        return [("i: board", 7), *hints] if self._short() else hints

    def _panel_height(self) -> int:
        return max((self.lesson.picture.size[0] + 1) // 2, 3)

    def _short(self) -> bool:
        """Whether the picture and the board cannot both be shown with room for the board."""
        return self.size.height - self._panel_height() < MIN_BOARD_ROWS + 8

    def _arrange(self, panel: PicturePanel) -> None:
        scroll = self.query_one(f"#{self.scroll_id}", VerticalScroll)
        short = self._short()
        panel.display = self.picture_shown
        scroll.display = not (self.picture_shown and short)
        # on a short terminal the picture's room comes from the board and the check line
        self.query_one(f"#{self.check_id}").display = not (self.picture_shown and short)

    def on_resize(self) -> None:
        panels = self.query(f"#{self.panel_id}")
        if panels:
            self._redraw()

    # ----------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit":  # the crop comes from the picture: moved with w a s d instead
            return False
        return super().check_action(action, parameters)

    def _switch(self, lesson: PictureLesson, *, keep_place: bool = False) -> None:
        """Show `lesson` (moved crop, other kernel, ...) in the pass on screen (`keep_place`:
        at the same step of every pass, as `v` keeps it)."""
        self.lesson = lesson
        self.params = lesson.params()
        follow = self.model if keep_place else None
        self._restart(lesson.example(), mode=self.model.mode, follow=follow)

    def _rebuild(self, *, keep_place: bool = False) -> bool:
        """The conv lesson's own changes (conv/corr, a new seed) applied to the picture too."""
        flip = self.params.get("conv_mode") == CONV_MODES[1]
        try:
            lesson = self.lesson.with_options(flip=flip, seed=self.params.get("seed"))
            lesson.example()
        except UsageError as exc:
            self.notify(one_line(exc), title="Cannot change it", severity="error", markup=False)
            return False
        self._switch(lesson, keep_place=keep_place)
        return True

    def action_move_crop(self, rows: int, cols: int) -> None:
        moved = self.lesson.moved(rows, cols)
        if moved.crop != self.lesson.crop:
            self._switch(moved)

    def action_kernel(self, delta: int) -> None:
        names = KERNEL_NAMES
        current = names.index(self.lesson.kernel_name) if self.lesson.kernel_name in names else -1
        name = names[(current + delta) % len(names)]
        try:
            lesson = self.lesson.with_kernel(name)
        except UsageError as exc:
            self.notify(
                one_line(exc), title="Cannot use that kernel", severity="error", markup=False
            )
            return
        self._switch(lesson)

    def action_toggle_picture(self) -> None:
        self.picture_shown = not self.picture_shown
        self._redraw()
