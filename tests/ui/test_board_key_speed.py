"""The lesson board ends as it would have had the keys come one at a time, however fast they come.

When keys come faster than the screen lays out, a step's panels change height while the board
is drawn: the screen shows a scrollbar for a moment and every part is two columns narrower. A
board fitted in that moment kept its narrower layout after the bar went (nothing resized the
board) and the screen its scrollbar, the check line pushed off the bottom; and a board taller
than its room at one width and not at the next flipped between the two for ever. Each test
presses the same keys on two fresh screens, in a burst (every key queued before the first is
handled) and one at a time (`press_quickly`: each once the screen has settled), and compares
the screens as drawn.
"""

from __future__ import annotations

import pytest
from conftest import press_quickly, settle
from textual import events
from textual.containers import VerticalScroll
from textual.geometry import Region
from train_ui_fixtures import run_async

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.network import NetworkScreen
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.step_panel import StepPanel

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)

SMALL = {"height": 6, "width": 8}
POOL_8 = {"height": 8, "width": 8}  # cropped at 80x24


async def press_in_a_burst(pilot, *keys: str) -> None:
    """Queue every key at once (a paste, a held key over SSH), then let the screen settle."""
    for key in keys:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(pilot.app)
        pilot.app.post_message(event)
    await settle(pilot)
    await pilot.pause()
    await settle(pilot)


async def drawn_after(make_screen, size, keys, press) -> tuple[str, tuple, list[str]]:
    """The screen as drawn after `keys`, the board's size and lines; the board checked to be
    wholly in view, with no scrollbar on the screen or on the board's container."""
    app = CnnTuiApp()
    async with app.run_test(size=size) as pilot:
        screen = make_screen()
        await app.push_screen(screen)
        await pilot.pause()
        await settle(pilot)
        await press(pilot, *keys)
        board = screen.query_one(f"#{screen.board_id}", ArrayBoard)
        scroll = screen.query_one(f"#{screen.scroll_id}", VerticalScroll)
        assert not screen.show_vertical_scrollbar, "the screen kept a scrollbar"
        assert not scroll.show_vertical_scrollbar and not scroll.show_horizontal_scrollbar
        view = scroll.scrollable_content_region
        assert Region(0, 0, view.width, view.height).contains_region(
            Region(0, 0, *board.board_size)
        ), (view.size, board.board_size)
        return app.export_screenshot(), board.board_size, board.plain_lines()


@pytest.mark.parametrize(
    ("make_screen", "keys", "size"),
    [
        # the backward pass's taller step panel: the board laid out two columns narrower
        pytest.param(lambda: LessonScreen("pool", SMALL), ["b", "right"], (57, 24), id="pool"),
        # a board taller than its room at 59 columns and not at 58 flipped between the two
        pytest.param(lambda: LessonScreen("pool", SMALL), ["b", "right"], (61, 24), id="flip"),
        # the kernels moved beside dx_pad for the narrower board stayed there
        pytest.param(
            lambda: LessonScreen("conv", {**SMALL, "padding": 1}),
            ["b", "p", "right", "t", "right"],
            (75, 24),
            id="conv",
        ),
        pytest.param(
            lambda: LessonScreen("conv", {**SMALL, "padding": 1}),
            ["b", "p", *["right"] * 5],
            (80, 24),
            id="conv-80x24",
        ),
        pytest.param(
            NetworkScreen, [*["right"] * 4, "b", *["right"] * 4], (120, 40), id="net-120x40"
        ),
        # dx cropped to 3 rows: the view kept from the steps before (rows 3-5) was not the one
        # reached in a burst (rows 2-4)
        pytest.param(
            lambda: LessonScreen("pool", POOL_8), ["b", *["right"] * 11], (80, 24), id="dx"
        ),
    ],
)
@run_async
async def test_the_board_ends_the_same_whatever_the_key_speed(make_screen, keys, size) -> None:
    one_at_a_time = await drawn_after(make_screen, size, keys, press_quickly)
    burst = await drawn_after(make_screen, size, keys, press_in_a_burst)
    assert burst[1:] == one_at_a_time[1:]  # the board: its size and lines
    assert burst[0] == one_at_a_time[0]  # and the whole screen as drawn


@run_async
async def test_the_step_panel_shows_every_line_of_its_step() -> None:
    """The step panel grows with its text, counted as the screen lays it out: it once kept a
    line too few (its last, where dout comes from) after the transposed view's steps."""
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        params = {"height": 7, "width": 7, "dilation": 2, "padding": "same", "seed": 2}
        await app.push_screen(LessonScreen("conv", params))
        await pilot.pause()
        await press_quickly(pilot, "t", *["right_square_bracket"] * 8, *["right"] * 3)
        panel = app.screen.query_one(StepPanel)
        lines = panel.content.plain.splitlines()
        assert lines[-1].startswith("dout = ∂L/∂out")
        assert panel.size.height == len(lines)


@pytest.mark.parametrize(
    ("forward_keys", "back_keys"),
    [
        pytest.param(["right"] * 34, [*["right"] * 50, *["left"] * 16], id="forward"),
        pytest.param(["b", *["right"] * 11], ["b", "end", *["left"] * 5], id="dx"),
    ],
)
@run_async
async def test_a_cropped_grid_shows_a_step_the_same_way_from_either_side(
    forward_keys, back_keys
) -> None:
    """A cropped grid's rows and columns follow the step alone: reached with ← it shows the
    rows a walk with → shows (it kept the rows of the later steps while they held the window)."""
    on_screen = []
    for keys in (forward_keys, back_keys):
        app = CnnTuiApp()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = LessonScreen("pool", POOL_8)
            await app.push_screen(screen)
            await settle(pilot)
            await press_quickly(pilot, *keys)
            on_screen.append(screen.query_one(ArrayBoard).plain_lines())
    assert "rows" in on_screen[0][0]  # cropped indeed
    assert on_screen[1] == on_screen[0]
