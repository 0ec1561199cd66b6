"""The conv / pool board on a projector (issue 24): at 80×24 and larger the cell being written,
its window, the kernel and the array being accumulated are on screen whatever the phase, each
grid with its title and indices; the status line keeps phase, position and play state.

Each test drives the screen with Textual's pilot and checks the board's own geometry: where each
highlighted cell is drawn (`ArrayBoard.cell_region`) lies inside its grid and inside the part
of the board its scrolling container shows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import press_quickly, settle, text_of
from rich.cells import cell_len
from textual.containers import VerticalScroll
from textual.geometry import Region
from train_ui_fixtures import run_async

from cnn_tui.lessons.replay import READ, WRITE, GridSpec
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.array_grid import ArrayBoard, GridStyles, render_grid
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.step_panel import StepPanel, StepStatus

BIG = {"height": 8, "width": 8, "padding": 1}


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


async def lesson_after(pilot, op: str, params: dict, keys: list[str]) -> LessonScreen:
    screen = LessonScreen(op, params)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    await press_quickly(pilot, *keys)  # (and the board is fitted to its room after the refresh)
    return screen


def status(screen: LessonScreen) -> str:
    return text_of(screen.query_one("#lesson-status", StepStatus))


def first_step_line(screen: LessonScreen) -> str:
    lines = text_of(screen.query_one("#lesson-step", StepPanel)).splitlines()
    return next(line for line in lines if not line.startswith(("rule ", "     ")))


def assert_step_in_view(screen: LessonScreen) -> dict[str, list[Region]]:
    """Every cell the step reads or writes is drawn inside its grid, and the whole board is
    inside the visible part of its container (so no title nor index is scrolled away).
    Returns the drawn regions of the marked cells by grid name."""
    board = screen.query_one("#lesson-board", ArrayBoard)
    scroll = screen.query_one("#lesson-board-scroll", VerticalScroll)
    view = scroll.scrollable_content_region
    visible = Region(int(scroll.scroll_x), int(scroll.scroll_y), view.width, view.height)
    width, height = board.board_size
    assert visible.contains_region(Region(0, 0, width, height)), (visible, board.board_size)
    drawn: dict[str, list[Region]] = {}
    for spec in board.grids:
        box = board.grid_box(spec.name)
        assert box is not None
        title = spec.short or spec.name
        assert title in board.plain_lines()[box.y], (title, board.plain_lines()[box.y])
        for cell, role in spec.marks.items():
            if role not in (READ, WRITE):
                continue
            region = board.cell_region(spec.name, cell)
            assert region is not None, f"{spec.name}{cell} ({role}) is cropped away"
            assert box.contains_region(region)
            drawn.setdefault(spec.name, []).append(region)
    return drawn


def shown(screen: LessonScreen) -> list[str]:
    return [spec.name for spec in screen.query_one("#lesson-board", ArrayBoard).grids]


@run_async
async def test_issue_forward_cell_50_of_64_at_80x24() -> None:
    """`cnn-tui conv --height 8 --width 8 --padding 1`, `]` fifty times: out[6,1] in view."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lesson_after(pilot, "conv", BIG, ["right_square_bracket"] * 50)
        assert "cell 50 / 64" in status(screen)
        assert first_step_line(screen) == "out[6,1] += x_pad[8,3]·w[2,2]"
        drawn = assert_step_in_view(screen)
        assert set(drawn) == {"x_pad", "w", "out"}
        assert shown(screen) == ["x_pad", "w", "b", "out"]
        board = screen.query_one("#lesson-board", ArrayBoard)
        for cell in [(r, c) for r in range(6, 9) for c in range(1, 4)]:  # the whole window
            assert board.cell_region("x_pad", cell) is not None


@run_async
async def test_issue_backward_dx_late_at_80x24() -> None:
    """`b`, `p` to dX's start, then → 201 times: dx_pad[2,8] += w[0,2]·dout[2,6] in view, and
    the forward output, which no dX step reads, off the board. Then → 4 times more (finding 2
    of the walk, 205): dout[2,6] spreads over dx_pad rows 2–4, the whole window shown after
    the step panel's "here" line."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        keys = ["b", "p", "p"] + ["right"] * 201
        screen = await lesson_after(pilot, "conv", BIG, keys)
        assert "backward · dX" in status(screen)
        assert first_step_line(screen) == "dx_pad[2,8] += w[0,2]·dout[2,6]"
        drawn = assert_step_in_view(screen)
        assert set(drawn) == {"w", "dout", "dx_pad"}
        assert set(shown(screen)) == {"w", "dout", "dx_pad"}  # no `out`, no db / dw

        await press_quickly(pilot, *["right"] * 4)
        assert first_step_line(screen) == "dx_pad[4,6] += w[2,0]·dout[2,6]"
        assert_every_mark_shown(screen)
        board = screen.query_one("#lesson-board", ArrayBoard)
        for cell in [(r, c) for r in range(2, 5) for c in range(6, 9)]:
            assert board.cell_region("dx_pad", cell) is not None


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize(
    ("op", "params", "keys", "position", "needed"),
    [
        ("conv", BIG, ["b", "p"], 300, {"x_pad", "dout", "w", "dw"}),
        ("conv", BIG, ["b"], 40, {"dout", "w", "db"}),
        ("conv", BIG, ["t"], 500, {"dout_up", "w", "w_rot", "dx_pad"}),
        ("conv", {**BIG, "stride": 2}, ["t"], 300, {"dout_up", "w", "w_rot", "dx_pad"}),
        ("conv", {**BIG, "conv_mode": "convolution"}, [], 373, {"x_pad", "w", "w_rot", "out"}),
        ("conv", {**BIG, "channels": 2, "filters": 2}, ["b"], 3000, {"w", "dout", "dx_pad"}),
        ("conv", {"height": 12, "width": 12, "channels": 2, "padding": 2}, [], 2900, {"x_pad"}),
        ("pool", {"height": 8, "width": 8}, ["b"], 11, {"x", "dout", "dx"}),
        ("pool", {"height": 12, "width": 12, "stride": 1, "kernel": 3}, [], 800, {"x", "out"}),
    ],
)
@run_async
async def test_the_step_stays_in_view_in_every_phase(op, params, keys, position, needed, size):
    """Pool and conv, every phase, several channels and filters, at 80×24 and 120×40: the
    step's cells are drawn and in view (the position is set on the model, then redrawn as
    after a key)."""
    app = CnnTuiApp()
    async with app.run_test(size=size) as pilot:
        screen = await lesson_after(pilot, op, params, keys)
        screen._move(screen.model.seek, position)
        await settle(pilot)
        assert screen.model.replay.current is not None
        assert_step_in_view(screen)
        assert needed <= set(shown(screen))


@run_async
async def test_the_rotated_kernel_marks_the_entry_multiplied() -> None:
    """In the transposed view the step multiplies w[2−ki, 2−kj]: the rotated kernel marks
    (ki, kj), which lines up with the window in dout_up."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lesson_after(pilot, "conv", BIG, ["t"] + ["right"] * 2)
        event = screen.model.replay.current
        (_, _, wi, wj) = event.operands[1].index
        specs = {spec.name: spec for spec in screen.query_one("#lesson-board", ArrayBoard).grids}
        assert specs["w"].marks[(wi, wj)] == READ
        assert specs["w_rot"].marks[(2 - wi, 2 - wj)] == READ
        assert specs["w_rot"].title == "w rotated 180°"
        assert specs["w_rot"].values[2 - wi, 2 - wj] == event.operands[1].value
        assert_step_in_view(screen)
        await pilot.press("t")  # the scatter dX phase reads the kernel unrotated
        assert "w_rot" not in shown(screen)


@run_async
async def test_the_status_line_keeps_phase_position_and_play_state_when_narrow() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lesson_after(pilot, "conv", BIG, ["t", "right"])
        line = status(screen)
        assert "dX as a transposed conv" in line and "step 1 / 900" in line
        assert "cell 1 / 100" in line and line.rstrip().endswith("paused")
        assert "…" not in line  # dropped parts, never a cut one
        await pilot.press("space")
        assert "▶ playing" in status(screen)
        await pilot.press("space")
    async with CnnTuiApp().run_test(size=(60, 24)) as pilot:
        screen = await lesson_after(pilot, "conv", BIG, ["t", "right"])
        line = status(screen)
        assert line.split(" │ ") == ["backward · dX as a transposed conv", "step 1 / 900", "paused"]
    async with CnnTuiApp().run_test(size=(120, 40)) as pilot:
        screen = await lesson_after(pilot, "conv", {"example": "edge-detect"}, [])
        assert status(screen).split(" │ ") == [
            "conv2d · forward",
            "step 0 / 160",
            "cell 0 / 16",
            "paused",
            "5 steps/s",
            "example edge-detect, seed 0",
        ]


@run_async
async def test_the_example_description_is_on_screen_before_the_first_step() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lesson_after(pilot, "conv", {"example": "edge-detect"}, [])
        panel = " ".join(text_of(screen.query_one("#lesson-step", StepPanel)).split())
        assert "Vertical edge detector: A 6x6 image" in panel
        await pilot.press("right")
        panel = text_of(screen.query_one("#lesson-step", StepPanel))
        assert "Vertical edge detector" not in panel


def assert_every_mark_shown(screen: LessonScreen) -> None:
    """Every highlighted cell of every grid (the window too, not only the cells read and
    written) lies inside the rows and columns its grid shows; a "window" as large as a whole
    8×8 array (db and dW sum over all of dout) only needs its cells read and written."""
    board = screen.query_one("#lesson-board", ArrayBoard)
    for spec in board.grids:
        rows = {r for r, _ in spec.marks}
        kernel_sized = not rows or max(rows) - min(rows) < 3
        for cell, role in spec.marks.items():
            if not kernel_sized and role not in (READ, WRITE):
                continue
            region = board.cell_region(spec.name, cell)
            where = f"step {screen.model.position}: {spec.name}{cell} ({role})"
            assert region is not None, f"{where} is cropped away"


@pytest.mark.parametrize(
    ("op", "params", "mode"),
    [
        ("conv", BIG, "forward"),
        ("conv", BIG, "backward"),
        ("conv", BIG, "transposed"),
        ("conv", {**BIG, "conv_mode": "convolution"}, "forward"),
        ("pool", {"height": 8, "width": 8}, "backward"),
    ],
)
@run_async
async def test_every_highlighted_cell_is_shown_across_a_pass_at_80x24(op, params, mode) -> None:
    """Finding 2 of the walk: `conv --height 8 --width 8 --padding 1`, dX at step 205 showed
    dx_pad rows 3–4 of a 3-row window once the step panel gained its "here" line. Many steps
    of every phase, each with its own step panel: the whole window is on screen."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lesson_after(pilot, op, params, [])
        screen.model.mode = mode
        total = screen.model.total
        for position in sorted({1, 2, total, *range(7, total, max(total // 40, 1))}):
            screen._move(screen.model.seek, position)
            await settle(pilot)
            assert_every_mark_shown(screen)
            assert_step_in_view(screen)


CROPPED_TITLE = re.compile(r"(rows? \d+(–\d+)?|cols? \d+(–\d+)?|\[\d+(–\d+)?, ?\d+(–\d+)?\])")


@pytest.mark.parametrize("width", [14, 18, 22, 26, 30, 40, 60, 90])
def test_a_cropped_grid_says_so_in_its_title_whatever_its_room(width) -> None:
    """Finding 4: a grid cropped to a corner of 12×12 was titled just `dout_up`. Every width
    names the part shown: in words, or `dout_up [0–2, 0–2]/12×12`, or at least the bracket."""
    values = np.arange(144, dtype=float).reshape(12, 12) / 7
    spec = GridSpec("dout_up", "dout upsampled and padded", values, marks={(1, 1): READ})
    grid = render_grid(spec, GridStyles(), max_width=width, max_rows=3)
    title = "".join(segment.text for segment in grid.lines[0])
    assert grid.cropped and len(title) == grid.width
    assert CROPPED_TITLE.search(title), title
    shown = (grid.origin[0], grid.origin[0] + grid.shown_rows - 1)
    if "[" in title:
        assert f"[{shown[0]}–{shown[1]}," in title, title


@pytest.mark.parametrize(("width", "rows"), [(None, None), (16, 2), (12, 2)])
def test_a_title_with_a_combining_accent_keeps_the_box_square(width, rows) -> None:
    """x̂ is two characters in one terminal cell: the title row of dx̂ ∂L/∂x̂ was measured in
    characters, so its corner came two cells left of the grid's right border (and the next
    grid's title row as much to the left; the batch-norm lesson's dx stage at 120x40)."""
    values = np.arange(9, dtype=float).reshape(3, 3)
    spec = GridSpec("dx̂", "dx̂[n=1, c=1] ∂L/∂x̂", values, marks={(1, 1): WRITE})
    grid = render_grid(spec, GridStyles(), max_width=width, max_rows=rows)
    lengths = {cell_len("".join(segment.text for segment in line)) for line in grid.lines}
    assert lengths == {grid.width}


@run_async
async def test_the_walks_cropped_panels_say_so_at_80x24() -> None:
    """`v` at 80×24 (x_pad cols 0–3 of 10×10 was titled `x_pad`) and `t` (dout_up's corner):
    every grid showing less than its array says which part."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        for keys in (["v", "right"], ["t", "right"], ["t"] + ["right"] * 40):
            screen = await lesson_after(pilot, "conv", BIG, keys)
            board = screen.query_one("#lesson-board", ArrayBoard)
            lines = board.plain_lines()
            for spec, block in zip(board.grids, board._blocks, strict=True):
                if (block.shown_rows, block.shown_cols) != np.atleast_2d(spec.values).shape:
                    box = board.grid_box(spec.name)
                    title = lines[box.y][box.x : box.x + box.width]
                    assert CROPPED_TITLE.search(title), (keys, title)
            await pilot.press("escape")


@pytest.mark.parametrize(
    ("size", "params", "keys", "expected"),
    [
        # the speed goes before the example (finding 12: `… │ 5 steps/s` with no example)
        (
            (80, 24),
            {"example": "edge-detect"},
            [],
            ["conv2d · forward", "step 0 / 160", "cell 0 / 16", "paused", "example edge-detect"],
        ),
        # the mode stays before the speed and the example
        (
            (80, 24),
            {"example": "edge-detect"},
            ["v"],
            ["conv2d · forward", "step 0 / 160", "cell 0 / 16", "paused", "true convolution"],
        ),
        (
            (100, 30),
            {"example": "edge-detect"},
            ["v"],
            [
                "conv2d · forward",
                "step 0 / 160",
                "cell 0 / 16",
                "paused",
                "true convolution",
                "example edge-detect",
            ],
        ),
        (
            (60, 24),
            {"example": "edge-detect"},
            ["v"],
            ["conv2d · forward", "step 0 / 160", "cell 0 / 16", "paused"],
        ),
        (
            (60, 24),
            {"example": "edge-detect"},
            [],
            ["conv2d · forward", "step 0 / 160", "cell 0 / 16", "paused"],
        ),
    ],
)
@run_async
async def test_the_status_line_drops_the_speed_before_the_example_and_the_mode(
    size, params, keys, expected
) -> None:
    async with CnnTuiApp().run_test(size=size) as pilot:
        screen = await lesson_after(pilot, "conv", params, keys)
        assert status(screen).split(" │ ") == expected


@pytest.mark.parametrize("width", [79, 80, 85])
@run_async
async def test_a_board_as_wide_as_its_view_gets_no_blank_row_under_it(width) -> None:
    """At these widths the board fills its container's width exactly (77, 77 or 83 columns of
    78, 78 or 83): the container is as tall as the board, with no row kept for a horizontal
    scrollbar that does not show (the container's padding was once taken off its width twice)."""
    app = CnnTuiApp()
    async with app.run_test(size=(width, 40)) as pilot:
        screen = LessonScreen("conv", {"height": 6, "width": 8, "padding": 1})
        await app.push_screen(screen)
        await settle(pilot)
        board = screen.query_one(f"#{screen.board_id}", ArrayBoard)
        scroll = screen.query_one(f"#{screen.scroll_id}", VerticalScroll)
        board_w, board_h = board.board_size
        assert board_w >= scroll.scrollable_content_region.width - 1  # the case this is about
        assert not scroll.show_horizontal_scrollbar
        assert scroll.size.height == board_h


def test_a_crop_keeps_the_written_cell_when_nothing_else_fits() -> None:
    """The cells read and written lie further apart than the rows shown: the written one
    stays in view (it once fell back to the first rows)."""
    from cnn_tui.ui.lessons.array_grid import visible_start

    start = visible_start({(0, 0): READ, (30, 0): WRITE}, 0, 40, 10)
    assert start <= 30 < start + 10
