"""The go-to prompt (`:`) and the zero-product skip (`z` / `Z`) on the lesson screens, driven
with Textual's pilot: what is typed moves the board there, a bad query is explained in the
prompt and moves nothing, Escape cancels, and a skip says in the step panel what it skipped."""

from __future__ import annotations

import pytest
from conftest import press_quickly
from conftest import text_of as plain
from rich.text import Text
from textual.screen import Screen
from textual.widgets import Input, Static
from train_ui_fixtures import run_async

from cnn_tui.lessons.navigation import is_zero_product
from cnn_tui.lessons.settings import LayerSettings
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.goto import GotoPrompt
from cnn_tui.ui.lessons.help import LessonHelp
from cnn_tui.ui.lessons.layers import LayerScreen
from cnn_tui.ui.lessons.network import NetworkScreen
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.step_panel import StepPanel, StepStatus

ISSUE_EXAMPLE = {"height": 8, "width": 8, "padding": 1}


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def status(screen: Screen) -> str:
    return plain(screen.query_one(StepStatus))


def step_lines(screen: Screen) -> list[str]:
    lines = plain(screen.query_one(StepPanel)).splitlines()
    return [line for line in lines if not line.startswith(("rule ", "     "))]


def note(screen: Screen) -> str:
    """The step panel's last line: what the last move did, else the screen's own hint."""
    return step_lines(screen)[-1]


async def type_goto(pilot, text: str) -> GotoPrompt:
    await press_quickly(pilot, "colon")
    await pilot.pause()
    prompt = pilot.app.screen
    assert isinstance(prompt, GotoPrompt)
    prompt.query_one(Input).value = text
    await press_quickly(pilot, "enter")
    await pilot.pause()
    return prompt


@run_async
async def test_typing_a_cell_goes_to_its_first_step_and_highlights_it() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("conv", ISSUE_EXAMPLE)
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, "6,1")
        assert app.screen is screen  # the prompt closed
        # out[6,1] is the 50th output cell; its first step is its bias
        assert "cell 50 / 64" in status(screen)
        assert note(screen) == "went to out[6,1]"
        assert step_lines(screen)[0].startswith("out[6,1] = b[0]")
        event = screen.replay.current
        assert (event.target, event.target_index) == ("out", (0, 0, 6, 1))
        # the out grid marks that cell as the one written
        board = screen.query_one(ArrayBoard)
        out = next(spec for spec in board.grids if spec.name == "out")
        assert out.marks[(6, 1)] == "write"
        # the next move clears the note
        await press_quickly(pilot, "right")
        assert "went to" not in note(screen) and note(screen).startswith("output size")


@run_async
async def test_a_bad_query_is_explained_in_the_prompt_and_escape_cancels() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("conv", ISSUE_EXAMPLE)
        await app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "right", "right")
        before = status(screen)
        prompt = await type_goto(pilot, "9,9")
        assert app.screen is prompt  # still open
        assert plain(prompt.query_one("#goto-error", Static)) == (
            "out: row 9 is out of range: 0 to 7"
        )
        prompt.query_one(Input).value = "sideways"
        await press_quickly(pilot, "enter")
        await pilot.pause()
        assert plain(prompt.query_one("#goto-error", Static)).startswith("no phase 'sideways'")
        await press_quickly(pilot, "escape")
        await pilot.pause()
        assert app.screen is screen and status(screen) == before
        assert screen.model.position == 2


@run_async
async def test_a_phase_and_a_step_number_from_the_prompt() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv", ISSUE_EXAMPLE)
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, "dw 3")
        assert "backward · dW" in status(screen)
        assert screen.replay.current.target == "dw"
        await type_goto(pilot, "120")
        assert "step 120 / " in status(screen)
        assert "backward" in status(screen)  # a step number counts in the pass on screen


@run_async
async def test_z_skips_zero_products_and_says_how_many() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv", ISSUE_EXAMPLE)
        await app.push_screen(screen)
        await pilot.pause()
        events = screen.replay.events
        # x_pad's zero border: out[0,0]'s first products read it
        zeros = next(k for k, e in enumerate(events) if not is_zero_product(e) and k > 1)
        await press_quickly(pilot, "right")  # the bias of out[0,0]
        await press_quickly(pilot, "z")
        assert screen.model.position == zeros + 1
        assert note(screen) == f"skipped {zeros - 1} zero products"
        assert not is_zero_product(screen.replay.current)
        await press_quickly(pilot, "Z")
        assert screen.model.position == 1
        assert note(screen) == f"skipped {zeros - 1} zero products"


@run_async
async def test_the_network_lesson_goes_to_a_stage_and_skips_its_zeros() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = NetworkScreen()
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, "dw1")  # entered as `p` enters it
        assert "dw1" in status(screen) and "step 0 / " in status(screen)
        await press_quickly(pilot, "z")
        assert "zero product" in note(screen)
        assert not is_zero_product(screen.model.current) or screen.model.local == (
            screen.model.stage.steps
        )


@run_async
async def test_the_batchnorm_lesson_goes_to_a_cell_of_the_image_and_channel_on_screen() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LayerScreen(LayerSettings("batchnorm", {"batch": 2, "channels": 2}))
        await app.push_screen(screen)
        await pilot.pause()
        keys = {binding.action for (_, binding, enabled, _) in screen.active_bindings.values()
                if enabled}  # fmt: skip
        assert {"goto", "skip_zeros(1)", "skip_zeros(-1)"} <= keys  # no longer hidden here
        await type_goto(pilot, "dx")
        assert "backward · dx" in status(screen) and "step 0 / " in status(screen)
        await press_quickly(pilot, "c")  # channel 1 on the board
        await type_goto(pilot, "1,2")
        assert note(screen) == "went to dx[n=0, c=1, 1,2]"
        event = screen.model.current
        assert (event.target, event.target_index) == ("dx", (0, 1, 1, 2))
        board = screen.query_one(ArrayBoard)
        dx = next(spec for spec in board.grids if spec.name == "dx")
        assert dx.marks[(1, 2)] == "write" and "c=1" in dx.title
        prompt = await type_goto(pilot, "mu[5]")
        assert plain(prompt.query_one("#goto-error", Static)) == "mu: c 5 is out of range: 0 to 1"
        await press_quickly(pilot, "escape")


@run_async
async def test_z_in_the_dropout_lesson_skips_the_dropped_values() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LayerScreen(LayerSettings("dropout", {"p": 0.5}))
        await app.push_screen(screen)
        await pilot.pause()
        events = screen.model.stages[1].events  # y = x·mask·2, value by value
        dropped = [e.operands[1].value == 0 for e in events]  # the mask operand
        start = next(k for k in range(len(dropped) - 1) if not dropped[k] and dropped[k + 1])
        kept = next(k for k in range(start + 1, len(dropped)) if not dropped[k])
        await type_goto(pilot, f"y {start + 1}")
        assert note(screen) == f"went to forward · dropout · y, step {start + 1}"
        await press_quickly(pilot, "z")
        assert screen.model.local == kept + 1
        skipped = kept - start - 1
        assert note(screen) == f"skipped {skipped} zero product{'s' if skipped > 1 else ''}"
        assert not is_zero_product(screen.model.current)
        await press_quickly(pilot, "Z")
        assert screen.model.local == start + 1


@run_async
async def test_after_the_prompt_the_board_fills_the_room_the_step_panel_left() -> None:
    """From the first screen (a tall step panel: the example's description) to a short step:
    the board is fitted again once the prompt is gone, with no blank band under it."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LayerScreen(LayerSettings("batchnorm", example="bn-constant-channel"))
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, "dx[n=1, c=1, 1,0]")
        await pilot.pause()
        scroll = screen.query_one("#layer-board-scroll")
        board = screen.query_one(ArrayBoard)
        rule = screen.query_one("#layer-rule")
        assert scroll.region.bottom == rule.region.y  # the board's container reaches the rule
        assert scroll.region.height == min(board.board_size[1], board.room) > 7


@pytest.mark.parametrize(
    ("make", "phase", "first_line"),
    [
        (lambda: LessonScreen("conv", ISSUE_EXAMPLE), "dx", "backward · dX: "),
        (lambda: LessonScreen("conv", ISSUE_EXAMPLE), "transposed", "900 steps recorded"),
        (lambda: LessonScreen("pool", {}), "dx", "4 steps recorded"),
        (NetworkScreen, "dw1", "backward · conv · dw1: "),
        (lambda: LayerScreen(LayerSettings("batchnorm", {})), "xhat", "forward · batch norm"),
    ],
)
@run_async
async def test_going_to_a_phase_enters_it_as_p_does(make, phase, first_line) -> None:
    """Finding 13c: `: dx` landed on dX's first step already run, `p` before it ("none run
    yet"); every lesson now enters a phase named alone the way `p` does."""
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = make()
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, phase)
        first = step_lines(screen)[0]
        # a pass's first phase starts the pass: "N steps recorded", else "none run yet"
        assert first.startswith(first_line) and "run the first one" in first, first
        assert note(screen).startswith("went to ")
        position = screen.model.position
        await press_quickly(pilot, "right")  # → runs the phase's first step
        assert screen.model.position == position + 1
        assert "none run yet" not in step_lines(screen)[0]


@run_async
async def test_a_long_goto_error_wraps_in_the_prompt_at_80x24() -> None:
    """Finding 13b: `no phase 'banana' here: the phases are forward, backward, db, dw, dx,`
    was cut at the box's edge; the whole message is on screen, on more lines."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(LessonScreen("conv", ISSUE_EXAMPLE))
        await pilot.pause()
        prompt = await type_goto(pilot, "banana")
        error = prompt.query_one("#goto-error", Static)
        message = plain(error)
        assert message.startswith("no phase 'banana' here") and message.endswith("transposed")
        width = error.content_region.width
        lines = Text(message).wrap(app.console, width)
        assert len(message) > width and len(lines) >= 2
        assert error.size.height >= len(lines)  # every wrapped line is drawn
        assert prompt.query_one("#goto-box").region.contains_region(error.region)
        await press_quickly(pilot, "escape")


@pytest.mark.parametrize(
    ("op", "params", "key", "typed", "expected"),
    [
        ("conv", ISSUE_EXAMPLE, "v", "6,1", "step 491 / 640"),
        ("pool", {"height": 8, "width": 8}, "m", "2,3", "step 45 / 64"),
    ],
)
@run_async
async def test_the_other_variant_keeps_the_step_on_screen(op, params, key, typed, expected):
    """Finding 3: at 120×40 `: 6,1` (step 491 / 640), then `v`, went to step 0 / 640. The
    forward steps map one to one: `v` (and `m` in pooling) keep the step, and back again."""
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen(op, params)
        await app.push_screen(screen)
        await pilot.pause()
        await type_goto(pilot, typed)
        assert expected in status(screen)
        cell = screen.replay.current.target_index
        await press_quickly(pilot, key)
        assert expected in status(screen) and screen.replay.current.target_index == cell
        variant = "true convolution" if op == "conv" else "avgpool2d"
        assert variant in status(screen)
        await press_quickly(pilot, key)
        assert expected in status(screen)


@run_async
async def test_z_with_no_zero_product_ahead_says_it_moved_one_step() -> None:
    """Finding 13d: max pooling compares, it never multiplies: `z` moved one step and said
    "no zero product to skip"; now it says it went one step on, and at the end, that it
    stayed."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("pool", {})
        await app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "z")
        assert screen.model.position == 1
        assert note(screen) == "no zero product to skip: one step on"
        await press_quickly(pilot, "end", "z")
        assert screen.model.position == screen.model.total
        assert note(screen) == "no zero product to skip: at the end"


@run_async
async def test_the_help_page_lists_the_screens_keys_and_says_how_to_close_at_80x24() -> None:
    """Finding 13a: the `?` page began with `tab Focus Next`, `shift+tab`, `^c Copy selected
    text` and said how to close only at its very bottom."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("conv", ISSUE_EXAMPLE)
        await app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "question_mark")
        await pilot.pause()
        page = app.screen
        assert isinstance(page, LessonHelp)
        whats = [what for _, what in page.keys]
        assert whats[:2] == ["step back", "step forward"]
        assert not {"Focus Next", "Focus Previous", "Copy selected text"} & set(whats)
        box = page.query_one("#lesson-help")
        assert "esc" in str(box.border_title) and box.region.y >= 0
        top = app.export_screenshot()  # the hint is drawn on the page's top border
        assert "back&#160;to&#160;the&#160;lesson" in top or "back to the lesson" in top
        await press_quickly(pilot, "escape")
        await pilot.pause()
        assert app.screen is screen
