"""The step-through lesson screen driven with Textual's pilot: keys, form, checks, speed.

Each test reads what the screen shows (the step counter, the board's text with its bracketed
highlights, the arithmetic panel) rather than internal state where it can. The PyTorch and
gradient checks are off except in the one test about them, so no worker races the assertions.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import press_quickly, text_of, wait_until
from rich.console import Console
from textual.screen import Screen
from textual.widgets import Input, Select, TextArea
from train_ui_fixtures import run_async

from cnn_tui.cli import build_parser
from cnn_tui.commands.lesson_flags import settings_from_args
from cnn_tui.lessons.examples import build_example
from cnn_tui.lessons.naive import output_size_rule
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.home import HomeScreen
from cnn_tui.ui.key_footer import columns_that_fit
from cnn_tui.ui.lessons.array_grid import ArrayBoard, GridStyles, pack_rows, render_grid
from cnn_tui.ui.lessons.form import LessonFormScreen
from cnn_tui.ui.lessons.help import LessonHelp, legend_table
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus

# the largest lesson the limits allow in one view: a 24×24 padded input, 18,392 forward steps
LARGEST = {"height": 16, "width": 16, "channels": 2, "filters": 2, "kernel": 3, "padding": 4}


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def status(screen: Screen) -> str:
    return text_of(screen.query_one("#lesson-status", StepStatus))


def step_text(screen: Screen) -> list[str]:
    """The step panel's lines below the rule it states (`rule_text`)."""
    lines = text_of(screen.query_one("#lesson-step", StepPanel)).splitlines()
    return [line for line in lines if not line.startswith(("rule ", "     "))]


def rule_text(screen: Screen) -> list[str]:
    """The step panel's rule lines: the phase's rule and the local derivative."""
    lines = text_of(screen.query_one("#lesson-step", StepPanel)).splitlines()
    return [line for line in lines if line.startswith(("rule ", "     "))]


def board(screen: Screen) -> list[str]:
    return screen.query_one("#lesson-board", ArrayBoard).plain_lines()


async def open_lesson(pilot, op: str = "conv", params: dict | None = None) -> LessonScreen:
    screen = LessonScreen(op, params)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


@run_async
async def test_the_home_screen_opens_both_lessons_by_key_and_mouse() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press_quickly(pilot, "c")
        assert isinstance(app.screen, LessonScreen) and app.screen.op == "conv"
        assert "conv2d · forward" in status(app.screen)
        await press_quickly(pilot, "escape")
        assert isinstance(app.screen, HomeScreen)
        await press_quickly(pilot, "p")
        assert isinstance(app.screen, LessonScreen) and app.screen.op == "pool"
        await press_quickly(pilot, "escape")
        await pilot.click("#home-menu", offset=(4, 1))  # the first entry: the conv lesson
        await pilot.pause()
        assert isinstance(app.screen, LessonScreen) and app.screen.op == "conv"


@run_async
async def test_cnn_tui_conv_flags_set_the_example() -> None:
    args = build_parser().parse_args(["conv", "--padding", "1", "--channels", "2", "--seed", "7"])
    app = CnnTuiApp(args.command, settings_from_args(args), runs_dir=args.runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        assert screen.example.padding == (1, 1) and screen.example.x.shape == (1, 2, 5, 5)
        assert "seed 7" in status(screen)
        assert "⌊(5 + 2·1 − 3)/1⌋ + 1 = 5" in step_text(screen)[-1]


@run_async
async def test_stepping_fills_the_output_and_shows_the_arithmetic() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        assert "step 0 / 90" in status(screen)
        assert all("[" not in line for line in board(screen))
        await press_quickly(pilot, "right", "right", "l")
        assert "step 3 / 90" in status(screen)
        assert "cell 1 / 9" in status(screen)
        event = screen.replay.current
        assert step_text(screen)[0] == "out[0,0] += x_pad[0,1]·w[0,1]"
        # the result as the out grid writes it: the array's one format, the same minus sign
        out = screen.replay.number_format("out")
        assert step_text(screen)[1].endswith(f"→ {out(event.after)}")
        assert f"[{out(event.after)}]" in "\n".join(board(screen))
        lines = board(screen)
        # the cells read are bracketed in the input and the kernel, the cell written in out
        x, w = (o.value for o in event.operands)
        written = screen.replay.number_format
        assert any(f"[{written('x_pad')(x)}]" in line for line in lines)
        assert any(f"[{written('w')(w)}]" in line for line in lines)
        assert any(f"[{out(event.after)}]" in line for line in lines)
        await press_quickly(pilot, "left")
        assert "step 2 / 90" in status(screen)
        await press_quickly(pilot, "h")
        assert step_text(screen)[0] == "out[0,0] = b[0]   (start from the bias)"


@run_async
async def test_cell_jumps_and_the_ends() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "right_square_bracket")
        assert "step 10 / 90" in status(screen) and "cell 1 / 9" in status(screen)
        assert "done" in step_text(screen)[2]
        await press_quickly(pilot, "shift+right")
        assert "step 20 / 90" in status(screen) and "cell 2 / 9" in status(screen)
        await press_quickly(pilot, "left_square_bracket")
        assert "step 10 / 90" in status(screen)
        await press_quickly(pilot, "end")
        assert "step 90 / 90" in status(screen)
        assert not any("·" in line for line in board(screen))  # every output cell computed
        await press_quickly(pilot, "home")
        assert "step 0 / 90" in status(screen)


@run_async
async def test_backward_runs_db_then_dw_then_dx() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, params={"padding": 1})
        await press_quickly(pilot, "right", "right")
        await press_quickly(pilot, "b")
        assert "conv2d · backward · db" in status(screen)
        assert "step 0 / 475" in status(screen)  # db 25, dW 25·9, dX 25·9
        titles = " ".join(board(screen)[:1])
        # dout, named, and the kernel stay in sight going backward; the forward output, which
        # no backward step reads, is off the board
        assert "dout = ∂L/∂out, upstream" in titles and "w kernel" in titles
        assert "db grad bias" in "\n".join(board(screen))
        assert "forward output" not in "\n".join(board(screen))
        assert "dout = ∂L/∂out, the upstream gradient; here random (seed 0)" in "\n".join(
            step_text(screen)
        )
        await press_quickly(pilot, "right")
        assert step_text(screen)[0] == "db[0] += dout[0,0]"
        # p lands on the next phase's start, before its first step: → runs that step
        await press_quickly(pilot, "p")
        assert "backward · dW" in status(screen) and "step 25 / 475" in status(screen)
        assert step_text(screen)[0].startswith("backward · dW: 225 steps, none run yet.")
        await press_quickly(pilot, "right")
        assert step_text(screen)[0] == "dw[0,0] += x_pad[0,0]·dout[0,0]"
        await press_quickly(pilot, "p", "right")
        assert "backward · dX" in status(screen)
        assert step_text(screen)[0] == "dx_pad[0,0] += w[0,0]·dout[0,0]"
        assert rule_text(screen)[1].strip().startswith("∂out/∂x_pad = w[ki,kj]")
        await press_quickly(pilot, "p", "right")  # dX again, as a transposed convolution of dout
        assert "backward · dX as a transposed conv" in status(screen)
        assert step_text(screen)[0] == "dx_pad[0,0] += dout_up[0,0]·w[2,2]"
        await press_quickly(pilot, "p")
        assert "conv2d · forward" in status(screen)
        assert "step 2 / 250" in status(screen)  # each pass keeps its own position
        await press_quickly(pilot, "b")
        assert "backward · dX" in status(screen)


@run_async
async def test_pool_type_switches_between_max_and_average() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, "pool")
        await press_quickly(pilot, "b", "right")
        assert "maxpool2d · backward · dX" in status(screen)
        assert "was the max" in step_text(screen)[0]
        await press_quickly(pilot, "m")  # a new computation, in the same pass, at the same cell
        assert "avgpool2d · backward · dX" in status(screen)
        # max pooling routes a cell's gradient in one step, average pooling in four: the
        # backward pass keeps the cell (done), not the step number
        assert "step 4 / 16 │ cell 1 / 4" in status(screen)
        await press_quickly(pilot, "home", "right")
        assert step_text(screen)[0] == "dx[0,0] += dout[0,0]·1/4"
        await press_quickly(pilot, "b", "right")
        assert step_text(screen)[0] == "out[0,0] += x[0,0]·1/4"
        await press_quickly(pilot, "m")
        assert "maxpool2d · forward" in status(screen)


@run_async
async def test_keys_that_do_not_apply_are_hidden_and_do_nothing() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        keys = {
            binding.key for _, binding, enabled, _ in screen.active_bindings.values() if enabled
        }
        assert {"m", "c", "f", "n"}.isdisjoint(keys)  # conv, one channel, one filter, one image
        before = screen.example
        await press_quickly(pilot, "m", "c")
        assert screen.example is before


@run_async
async def test_channel_and_filter_keys_pick_the_slice_shown() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, params={"channels": 2, "filters": 2})
        first = board(screen)[0]
        assert "x_pad[c=0]" in first and "w[f=0, c=0]" in first
        await press_quickly(pilot, "c")
        assert "x_pad[c=1]" in board(screen)[0]
        await press_quickly(pilot, "f")
        assert "w[f=1, c=1]" in board(screen)[0]
        assert "out[f=1]" in "".join(board(screen))
        # stepping follows the step's own channel and filter again
        await press_quickly(pilot, "right", "right")
        assert "x_pad[c=0]" in board(screen)[0] and "w[f=0, c=0]" in board(screen)[0]
        assert step_text(screen)[0] == "out[f=0, 0,0] += x_pad[c=0, 0,0]·w[f=0, c=0, 0,0]"
        await press_quickly(pilot, "right_square_bracket")
        assert "c0: " in step_text(screen)[2] and "c1: " in step_text(screen)[2]


@run_async
async def test_play_pause_and_speed() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        assert "5 steps/s" in status(screen)
        await pilot.press("plus", "plus", "plus")
        assert "50 steps/s" in status(screen)
        await pilot.press("minus")
        assert "20 steps/s" in status(screen)
        await pilot.press("space")
        assert screen.playing and "▶ playing" in status(screen)
        await wait_until(pilot, lambda: screen.replay.position >= 3, 10, "the replay to advance")
        await pilot.press("space")
        assert not screen.playing and "paused" in status(screen)
        stopped = screen.replay.position
        await pilot.pause(0.3)
        assert screen.replay.position == stopped
        await pilot.press("space", "right")  # any step key pauses
        assert not screen.playing


@run_async
async def test_the_form_changes_the_example_and_restarts() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "right", "right")
        await press_quickly(pilot, "e")
        form = app.screen
        assert isinstance(form, LessonFormScreen)
        form.query_one("#form-height", Input).value = "6"
        form.query_one("#form-stride", Input).value = "2x1"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is screen
        assert screen.example.x.shape == (1, 1, 6, 5) and screen.example.stride == (2, 1)
        assert "step 0 / 60" in status(screen)  # 2×3 output cells, 10 steps each
        assert "⌊(6 + 2·0 − 3)/2⌋ + 1 = 2" in step_text(screen)[-1]


@run_async
async def test_a_bad_value_shows_why_and_changes_nothing() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "right")
        example = screen.example
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-height", Input).value = "99"
        form.query_one("#form-padding", Input).value = "-1"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is form  # still open
        assert text_of(form.query_one("#error-height")) == "height must be between 1 and 16, got 99"
        assert "padding must be between 0 and 4" in text_of(form.query_one("#error-padding"))
        form.query_one("#form-height", Input).value = "5"
        form.query_one("#form-padding", Input).value = "0"
        form.query_one("#form-kernel", Input).value = "7"
        await press_quickly(pilot, "ctrl+s")
        assert "kernel 7x7 is larger than the padded input 5x5" in text_of(
            form.query_one("#error-kernel")
        )
        assert text_of(form.query_one("#error-height")) == ""
        await press_quickly(pilot, "escape")
        assert app.screen is screen
        assert screen.example is example
        assert "step 1 / 90" in status(screen)


@run_async
async def test_array_values_are_edited_as_text() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-array", Select).value = "w"
        await pilot.pause()
        area = form.query_one("#form-values", TextArea)
        assert area.text.startswith("# w[0, 0]\n")
        area.load_text("1, 0, -1\n1, 0, -1\n1, 0, -1\n")
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is screen
        assert screen.example.w[0, 0].tolist() == [[1, 0, -1]] * 3
        assert screen.overrides.keys() == {"w"}
        # the edit survives a change that keeps the shapes, and a bad edit is refused
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-array", Select).value = "b"
        await pilot.pause()
        form.query_one("#form-values", TextArea).load_text("1, 2\n")
        await press_quickly(pilot, "ctrl+s")
        assert "b, line 1: expected 1 numbers, got 2" in text_of(form.query_one("#error-values"))
        form.query_one("#form-values", TextArea).load_text("0.5\n")
        await press_quickly(pilot, "ctrl+s")
        assert screen.example.b.tolist() == [0.5]
        assert screen.example.w[0, 0].tolist() == [[1, 0, -1]] * 3


@run_async
async def test_a_named_example_and_a_new_seed() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "r")
        assert "seed 1" in status(screen)
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-example", Select).value = "edge-detect"
        await pilot.pause()
        assert form.query_one("#form-height", Input).disabled  # the example fixes the input
        await press_quickly(pilot, "ctrl+s")
        assert screen.example.name == "edge-detect"
        assert "example edge-detect" in status(screen)
        assert np.array_equal(screen.example.x, screen.example.x.round())  # its integer input


@run_async
async def test_the_check_panel_compares_with_pytorch_and_numerical_gradients() -> None:
    pytest.importorskip("torch")
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv", {"padding": 1, "channels": 2}, run_checks=True)
        await app.push_screen(screen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = text_of(screen.query_one("#lesson-check", CheckPanel))
        assert "PyTorch: max |Δ|" in text and "finite differences: rel. error" in text
        assert text.count("✓") == 2, text


@run_async
async def test_80x24_keeps_the_arithmetic_and_every_key_on_screen() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_lesson(pilot, params={"channels": 3, "filters": 2, "padding": 2})
        await press_quickly(pilot, *["right_square_bracket"] * 2, "right", "right")
        step = screen.query_one("#lesson-step", StepPanel)
        footer_top = min(key.region.y for key in screen.query("FooterEntry"))
        assert step.region.bottom <= footer_top  # docked above the footer, not scrolled away
        assert step.region.height >= 5
        keys = screen.query("FooterEntry")
        assert all(key.region.right <= 80 and key.region.height == 1 for key in keys)
        shown = {key.description for key in keys}
        assert {
            "step",
            "cell",
            "play",
            "fwd/bwd",
            "phase",
            "channel",
            "filter",
            "edit",
            "quit",
        } <= shown


@run_async
async def test_a_key_press_redraws_fast_at_the_largest_size(monkeypatch) -> None:
    """Key press → screen updated, timed in the app (not the test harness)."""
    updated: list[float] = []
    original = Screen._compositor_refresh

    def timed(self) -> None:
        original(self)
        updated.append(time.perf_counter())

    monkeypatch.setattr(Screen, "_compositor_refresh", timed)
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, params=LARGEST)
        assert screen.replays["forward"].total > 18_000
        times = []
        for key in ["right"] * 8 + ["shift+right"] * 4 + ["end", "home", "left", "c"]:
            updated.clear()
            start = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            if updated:
                times.append(updated[0] - start)
        assert len(times) >= 12
        assert statistics.median(times) < 0.05, times


def test_opening_a_lesson_does_not_import_torch() -> None:
    """torch loads only in the check worker: start-up stays fast on a machine without a GPU."""
    code = """
import asyncio, sys
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.screen import LessonScreen

async def main():
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(LessonScreen("conv", {"channels": 2}, run_checks=False))
        await pilot.press("right", "b", "p")
        print("torch" in sys.modules)

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_footer_columns_and_board_rows_pack_to_the_width() -> None:
    assert columns_that_fit([7, 7, 6, 8], 80) == 4
    assert columns_that_fit([10, 10, 10, 10], 31, gutter=1) == 2  # 10 + 1 + 10 (+ 1 + 10 = 32)
    assert columns_that_fit([50], 20) == 1
    assert pack_rows([40, 30, 20, 60], 80, gap=3) == [[0, 1], [2], [3]]


@run_async
async def test_large_arrays_are_cropped_around_the_current_step() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, params=LARGEST)
        await press_quickly(pilot, "end", "left", "left")
        lines = board(screen)
        text = "\n".join(lines)
        assert "x_pad[c=1] input, padded · rows 13–23, cols 13–23 of 24×24" in text
        assert "of 22×22" in text  # the output is cropped too
        assert max(len(line) for line in lines) <= 118  # no sideways scrolling
        event = screen.replay.current
        x, w = (o.value for o in event.operands)
        # the cells read, in the input and the kernel, and the cell written are all on the board
        written = screen.replay.number_format
        assert f"[{written('x_pad')(x)}]" in text and f"[{written('w')(w)}]" in text
        assert f"[{written('out')(event.after)}]" in text
        viewport = screen.query_one("#lesson-board-scroll").scrollable_content_region.height
        assert len(lines) <= viewport
        await press_quickly(pilot, "home")
        assert "rows 0–" in "\n".join(board(screen))  # back to the top-left corner


@run_async
async def test_form_ctrl_a_selects_all_and_errors_clear_once_fixed() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(100, 36)) as pilot:
        await open_lesson(pilot)
        await press_quickly(pilot, "e")
        form = app.screen
        field = form.query_one("#form-height", Input)
        field.focus()
        await press_quickly(pilot, "ctrl+a", "9", "9")  # ctrl+a selects all: typing replaces it
        assert field.value == "99"
        await press_quickly(pilot, "ctrl+s")
        assert "height must be between 1 and 16" in text_of(form.query_one("#error-height"))
        await press_quickly(pilot, "backspace")  # "9": fixed, the reason goes at once
        await pilot.pause()
        assert text_of(form.query_one("#error-height")) == ""
        await press_quickly(
            pilot, "ctrl+a", "x", "ctrl+s"
        )  # wrong again: Apply says what is wrong now
        assert "height must be a whole number, got 'x'" in text_of(form.query_one("#error-height"))
        assert app.screen is form


@run_async
async def test_v_toggles_a_true_convolution_and_t_shows_dx_as_a_transposed_conv() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lesson(pilot, params={"stride": 2, "height": 6, "width": 6})
        await press_quickly(pilot, "v", "right", "right")
        assert screen.example.flip and "true convolution" in status(screen)
        assert step_text(screen)[0] == "out[0,0] += x_pad[0,0]·w[2,2]"  # the kernel, rotated
        assert rule_text(screen)[0].startswith("rule out[i,j] = b + Σ_ki,kj x_pad[2i+ki,2j+kj]")
        await press_quickly(pilot, "end")
        assert step_text(screen)[-1].startswith("forward pass done: press b for the backward")
        await press_quickly(pilot, "t", "right")
        assert "backward · dX as a transposed conv" in status(screen)
        assert "dout_up dout zero-stuffed, padded" in "\n".join(board(screen))
        await press_quickly(pilot, "end")
        assert "the same dx as the dX phase" in step_text(screen)[-1]


@run_async
async def test_question_mark_shows_the_notation_above_the_keys() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_lesson(pilot)
        await press_quickly(pilot, "question_mark")
        await pilot.pause()
        page = app.screen
        assert isinstance(page, LessonHelp) and page.lesson == "conv"
        legend = page.query_one("#lesson-help-legend").content
        heads = [column.header for column in legend.columns]
        assert heads == ["here", "what it is", "the lecture's"]
        here, lecture = (list(legend.columns[k].cells) for k in (0, 2))
        rows = {str(h): str(lec) for h, lec in zip(here, lecture, strict=True)}
        assert rows["K"].startswith("F") and rows["H×W"].startswith("N×N")
        assert rows["out[i,j]"].startswith("X[m,n]")  # plain text, not markup
        keys = {what for _, what in page.keys}
        assert {"step forward", "fwd/bwd", "conv/corr", "help"} <= keys
        await press_quickly(pilot, "question_mark")
        await pilot.pause()
        assert app.screen is screen
        await press_quickly(pilot, "f1", "escape")
        await pilot.pause()
        assert app.screen is screen


@pytest.mark.parametrize("lesson", ["conv", "pool"])
def test_the_help_legend_keeps_the_output_size_formula_on_one_line(lesson: str) -> None:
    """At 80 columns conv's formula goes whole to a line of its own, not broken inside (the
    shorter pool one fits beside its words); where the column has room, it stays beside them."""
    rule = output_size_rule(twice_padding=None if lesson == "pool" else "2P")
    for width, beside in ((78, lesson == "pool"), (140, True)):
        console = Console(width=width, record=True, color_system=None)
        console.print(legend_table(lesson))
        lines = console.export_text().splitlines()
        assert any(rule in line for line in lines), (width, lines)
        assert any(f"output size {rule}" in line for line in lines) == beside


def test_grid_columns_keep_their_width_while_stepping() -> None:
    """The format is the whole array's, chosen from every value it takes: no column grows or
    shrinks as the running sums change (an average pooling's means, a conv's sums)."""
    for example in (
        build_example("pool", pool_type="avg", kernel=(3, 3), stride=(2, 2), height=5, width=5),
        build_example("conv", padding=1, seed=4),
    ):
        model = OpReplay(example)
        for mode in model.replays:
            model.mode = mode
            widths: dict[str, set[int]] = {}
            for position in range(model.total + 1):
                model.seek(position)
                for spec in model.grid_specs(model.view_indices()):
                    widths.setdefault(spec.name, set()).add(render_grid(spec, GridStyles()).cell_w)
            assert all(len(found) == 1 for found in widths.values()), (mode, widths)
