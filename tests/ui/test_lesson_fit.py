"""The network and batch-norm lessons on a projector (issue 24, the lecturer's walk): at 80×24 the
cell being computed, the operands it reads and the grids' titles and indices are on screen, as on
the conv / pool board (`ArrayBoard(fit_height=True)`, `tests/ui/test_lesson_board.py`); the
pipeline line ends with its last layer; the footer takes two lines; the check line one; the
edit forms take fast typing.

Each test drives the screen with Textual's pilot and checks the board's own geometry: every
highlighted cell is drawn inside its grid (`ArrayBoard.cell_region`), and the whole board lies in
the part of its scrolling container on screen (nothing scrolled away, no scrollbar).
"""

from __future__ import annotations

import pytest
from conftest import press_quickly, text_of
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import Input
from train_ui_fixtures import run_async

from cnn_tui.lessons.replay import READ, WRITE
from cnn_tui.lessons.settings import LayerSettings
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.form import LessonFormScreen
from cnn_tui.ui.lessons.layer_form import LayerFormScreen
from cnn_tui.ui.lessons.layers import LayerScreen
from cnn_tui.ui.lessons.network import NetworkScreen
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.staged import NetPipeline
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


async def open_at(pilot, screen, goto: str, keys: list[str]):
    """Push `screen`, go to `goto` with the `:` prompt, press `keys`; the board fitted."""
    await pilot.app.push_screen(screen)
    await pilot.pause()
    await press_quickly(pilot, "colon", *goto, "enter")
    await press_quickly(pilot, *keys)  # (the board is fitted to its room after the refresh)
    return screen


def assert_step_in_view(screen) -> set[str]:
    """Every cell the step reads or writes is drawn inside its grid, each grid's title on its
    top line, and the whole board inside the visible part of its container. Returns the names
    of the grids with a cell of the step."""
    board = screen.query_one(f"#{screen.board_id}", ArrayBoard)
    scroll = screen.query_one(f"#{screen.scroll_id}", VerticalScroll)
    view = scroll.scrollable_content_region
    visible = Region(int(scroll.scroll_x), int(scroll.scroll_y), view.width, view.height)
    width, height = board.board_size
    assert visible.contains_region(Region(0, 0, width, height)), (visible, board.board_size)
    assert scroll.max_scroll_y == 0 and not scroll.show_vertical_scrollbar
    drawn = set()
    for spec in board.grids:
        box = board.grid_box(spec.name)
        assert box is not None
        assert "─" in board.plain_lines()[box.y]
        for cell, role in spec.marks.items():
            if role not in (READ, WRITE):
                continue
            region = board.cell_region(spec.name, cell)
            assert region is not None, f"{spec.name}{cell} ({role}) is cropped away"
            assert box.contains_region(region)
            drawn.add(spec.name)
    return drawn


def step_line(screen) -> str:
    return text_of(screen.query_one(StepPanel)).splitlines()[0]


def footer_lines(screen) -> int:
    footer = screen.query_one(WrappingFooter)
    return footer.outer_size.height


@pytest.mark.parametrize(
    ("goto", "keys", "first", "operands"),
    [
        # the walk: `:` 3,3 then → twice: the window of z1[3,3] reads x[3,4] and w1[0,1]
        ("3,3", ["right", "right"], "z1[f=0, 3,3] += x[3,4]·w1[f=0, 0,1]", {"x", "w1", "z1"}),
        ("dw1", ["right"] * 21, "dw1[f=0, 0,1] += x[1,1]·dz1[f=0, 1,0]", {"x", "dz1", "dw1"}),
        ("update", ["right"] * 6, "m_w1′[f=0, 1,2] = β1·m_w1[f=0, 1,2]", {"m_w1", "dw1"}),
    ],
)
@run_async
async def test_the_net_step_is_in_view_at_80x24(goto, keys, first, operands) -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = NetworkScreen({"steps": 5, "optimizer": "adam"})
        await open_at(pilot, screen, goto, keys)
        assert step_line(screen).startswith(first)
        assert operands <= assert_step_in_view(screen)
        pipeline = text_of(screen.query_one(NetPipeline))
        assert pipeline.endswith(("L", "dx", "b2")), pipeline  # never cut
        assert footer_lines(screen) == 2
        assert app.screen is screen


@run_async
async def test_the_net_window_of_the_conv_step_is_whole_at_80x24() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = NetworkScreen({})
        await open_at(pilot, screen, "2,1", ["right"])
        board = screen.query_one("#net-board", ArrayBoard)
        assert_step_in_view(screen)
        for cell in [(r, c) for r in range(2, 5) for c in range(1, 4)]:  # the 3×3 window
            assert board.cell_region("x", cell) is not None, cell


@run_async
async def test_one_more_step_keeps_the_check_line_and_the_board_at_80x24(monkeypatch) -> None:
    monkeypatch.setattr(NetworkScreen, "run_checks_default", True)
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = NetworkScreen({"steps": 5, "optimizer": "adam"})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await pilot.press("o")  # one more training step (n is the image in other lessons)
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert screen.model.training.steps == 6
        check = screen.query_one(CheckPanel)
        assert check.outer_size.height == 1, text_of(check)
        assert text_of(check).rstrip().endswith("✓"), text_of(check)
        assert screen.max_scroll_y == 0
        assert_step_in_view(screen)


@run_async
async def test_the_batchnorm_step_is_in_view_without_a_stray_border_at_80x24() -> None:
    """The walk's 13f: `--example bn-constant-channel`, `: xhat`, → three times, `c`."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LayerScreen(LayerSettings("batchnorm", example="bn-constant-channel"))
        await open_at(pilot, screen, "xhat", ["right"] * 3)
        assert {"x", "x̂", "μ", "σ²"} & assert_step_in_view(screen)
        await pilot.press("c")
        await pilot.pause()
        await pilot.pause()
        assert_step_in_view(screen)
        board = screen.query_one("#layer-board", ArrayBoard)
        for line in board.plain_lines():  # a grid's row ends at its border, nothing after
            assert not line.rstrip().endswith("╮│"), line


@pytest.mark.parametrize("form", ["conv", "batchnorm"])
@run_async
async def test_fast_typing_into_a_form_field_keeps_every_key(form) -> None:
    """Keys pressed without a pause land in the field in order (the walk saw `661`)."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        if form == "conv":
            screen = LessonScreen("conv", {"height": 6, "width": 6})
        else:
            screen = LayerScreen(LayerSettings("batchnorm"))
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await pilot.press("e")
        modal = app.screen
        assert isinstance(modal, (LessonFormScreen, LayerFormScreen))
        height = modal.query_one("#form-height", Input)
        height.focus()  # focusing a field selects its text: typing replaces it
        await pilot.press("1", "6")
        await pilot.press("tab", "5")
        assert height.value == "16"
        assert modal.query_one("#form-width", Input).value == "5"
        # Tab scrolls the form at 80×24: the focused field is on screen
        for _ in range(8):
            await pilot.press("tab")
        await pilot.pause()
        focused = app.focused
        assert focused is not None
        assert modal.region.contains_region(focused.region), (focused, focused.region)


@run_async
async def test_saving_a_changed_net_board_describes_the_change_not_the_old_board() -> None:
    """The walk's 11: `e`, α 0.5, 3 steps, Adam, F2: the dialog's description (and so the
    file's) says what changed; an emptied description is saved empty."""
    from textual.widgets import Select

    from cnn_tui.lessons import library, network
    from cnn_tui.ui.lessons.save_dialog import SaveLessonScreen

    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = NetworkScreen({})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await pilot.press("e")
        form = app.screen
        form.query_one("#form-lr", Input).value = "0.5"
        form.query_one("#form-steps", Input).value = "3"
        form.query_one("#form-optimizer", Select).value = "adam"
        await pilot.pause()
        await pilot.press("f2")
        dialog = app.screen
        assert isinstance(dialog, SaveLessonScreen)
        description = dialog.query_one("#save-description", Input)
        assert description.value == "Edited from net-vertical-edge: α 0.5, 3 Adam steps"
        dialog.query_one("#save-name", Input).value = "netlec"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        saved = library.read_lesson("netlec", "net", network.FILE_KEYS)
        assert saved.description == "Edited from net-vertical-edge: α 0.5, 3 Adam steps"
        # the same board saved again with the description emptied: empty, not the old one
        await pilot.press("e")
        await pilot.press("f2")
        dialog = app.screen
        assert isinstance(dialog, SaveLessonScreen)
        dialog.query_one("#save-name", Input).value = "netlec2"
        dialog.query_one("#save-description", Input).value = ""
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        again = library.read_lesson("netlec2", "net", network.FILE_KEYS)
        assert "one SGD step" not in again.description


@run_async
async def test_adam_takes_its_own_default_alpha_in_the_form() -> None:
    """The example's α = 0.1 is SGD's: switching the form to Adam shows Adam's default, 0.01
    (`settings.DEFAULT_LR`), unless an α was typed."""
    from textual.widgets import Select

    from cnn_tui.lessons.network import build_net_example

    assert build_net_example(optimizer="adam").lr == 0.01
    assert build_net_example(optimizer="adam", lr=0.1).lr == 0.1
    assert build_net_example().lr == 0.1
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = NetworkScreen({})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await pilot.press("e")
        form = app.screen
        lr = form.query_one("#form-lr", Input)
        assert lr.value == "0.1"
        form.query_one("#form-optimizer", Select).value = "adam"
        await pilot.pause()
        assert lr.value == "0.01"
        form.query_one("#form-optimizer", Select).value = "sgd"
        await pilot.pause()
        assert lr.value == "0.1"
        lr.value = "0.3"
        form.query_one("#form-optimizer", Select).value = "adam"
        await pilot.pause()
        assert lr.value == "0.3"  # typed: kept
