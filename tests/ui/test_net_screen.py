"""The network lesson screen driven with Textual's pilot: keys through forward → loss →
backward → update → after, the edit form, the checks, 80×24.

The tests read what the screen shows (the status line, the pipeline, the board's text with its
bracketed highlights, the rule and step panels). The checks are off except in the one test
about them, so no worker races the assertions.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import press_quickly, text_of
from textual.screen import Screen
from textual.widgets import Input, Select, TextArea
from train_ui_fixtures import run_async

from cnn_tui.cli import build_parser
from cnn_tui.commands.lesson_flags import net_settings_from_args
from cnn_tui.lessons import notation
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.home import HomeScreen
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.help import LessonHelp
from cnn_tui.ui.lessons.net_form import NetFormScreen
from cnn_tui.ui.lessons.network import LossCurve, NetworkScreen
from cnn_tui.ui.lessons.staged import NetPipeline, RulePanel
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def status(screen: Screen) -> str:
    return text_of(screen.query_one("#net-status", StepStatus))


def full_status(screen: Screen) -> str:
    """The status line with every part (a narrow terminal drops the last ones)."""
    return screen.query_one("#net-status", StepStatus).full_text


def pipeline(screen: Screen) -> str:
    return text_of(screen.query_one("#net-pipeline", NetPipeline))


def rule(screen: Screen) -> str:
    return text_of(screen.query_one("#net-rule", RulePanel))


def step_text(screen: Screen) -> list[str]:
    """The step panel's lines below the rule it states (`rule_text`)."""
    lines = text_of(screen.query_one("#net-step", StepPanel)).splitlines()
    return [line for line in lines if not line.startswith(("rule ", "     "))]


def rule_text(screen: Screen) -> list[str]:
    """The step panel's rule lines: the phase's rule and the local derivative."""
    lines = text_of(screen.query_one("#net-step", StepPanel)).splitlines()
    return [line for line in lines if line.startswith(("rule ", "     "))]


def board(screen: Screen) -> str:
    return "\n".join(screen.query_one("#net-board", ArrayBoard).plain_lines())


async def open_net(pilot, params: dict | None = None) -> NetworkScreen:
    screen = NetworkScreen(params)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


@run_async
async def test_the_home_screen_opens_the_network_lesson_by_key_and_mouse() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press_quickly(pilot, "n")
        assert isinstance(app.screen, NetworkScreen)
        assert "network · forward · conv" in status(app.screen)
        await press_quickly(pilot, "escape")
        assert isinstance(app.screen, HomeScreen)
        await pilot.click(
            "#home-menu", offset=(4, 5)
        )  # the third entry's title (border, 2 rows each)
        await pilot.pause()
        assert isinstance(app.screen, NetworkScreen)


@run_async
async def test_cnn_tui_net_flags_set_the_example() -> None:
    args = build_parser().parse_args(
        ["net", "--example", "net-horizontal-edge", "--label", "0", "--lr", "0.5"]
    )
    app = CnnTuiApp(args.command, net_settings_from_args(args), runs_dir=args.runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        assert screen.example.name == "net-horizontal-edge"
        assert "net-horizontal-edge · y = 0 · α = 0.5" in status(screen)


@run_async
async def test_keys_step_through_forward_loss_backward_update_and_after() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        assert "step 0 / 320" in status(screen) and "all 0 / 1150" in status(screen)
        assert step_text(screen)[0].startswith("1150 steps recorded")
        assert pipeline(screen).startswith("forward: x → [conv] → ReLU")
        # forward: the conv's first output cell, step by step
        await press_quickly(pilot, "right", "right")
        assert "step 2 / 320" in status(screen)
        assert step_text(screen)[0] == "z1[f=0, 0,0] += x[0,0]·w1[f=0, 0,0]"
        assert "[0.2]" in board(screen) and "[-1]" in board(screen) and "[-0.15]" in board(screen)
        assert rule(screen).startswith("rule z1[f,i,j] = b1[f] + Σ_ki,kj")
        await press_quickly(pilot, "right_square_bracket")
        assert "step 10 / 320" in status(screen)
        assert step_text(screen)[2].endswith("= -0.15 done (10/10)")
        await press_quickly(pilot, "left")
        assert "step 9 / 320" in status(screen)
        # p: layer by layer to the loss
        await press_quickly(pilot, "p")
        assert "forward · ReLU" in status(screen) and "[ReLU]" in pipeline(screen)
        await press_quickly(pilot, "p", "p", "p", "p")
        assert "forward · softmax-CE · loss" in status(screen)
        await press_quickly(pilot, "end")
        assert step_text(screen)[0] == "L = −log(p[0])   (the probability of the true class)"
        assert step_text(screen)[1] == "= −log(0.4514) → 0.795"
        assert "L loss" in board(screen)
        # → past the loss: the backward pass starts at the softmax-CE gradient
        await press_quickly(pilot, "right")
        assert "backward · softmax-CE · dz2" in status(screen)
        assert pipeline(screen).startswith("backward: L → [softmax-CE] → linear")
        assert rule(screen).startswith("rule ∂L/∂z2 = p − y, by the chain rule through p")
        # the derivation with the example's numbers: only the true class's term is not 0
        assert step_text(screen)[2] == (
            "Σ_i ∂L/∂p[i]·∂p[i]/∂z2[0] = (−1/0.4514)·0.4514·(1 − 0.4514) = -0.5486  "
            "(only i = y: y = 0 elsewhere)"
        )
        await press_quickly(pilot, "p", "p")
        assert "backward · linear · dw2" in status(screen)
        assert rule(screen).startswith("rule ∂L/∂w2 = ∂L/∂z2 · hᵀ")
        assert step_text(screen)[-1] == "dout = dz2 = ∂L/∂z2 came from softmax-CE above (p − y)"
        await press_quickly(pilot, "p", "p", "p")
        assert "backward · max-pool · da1" in status(screen) and "step 0 / 8" in status(screen)
        assert step_text(screen)[0].endswith(
            "da1: 8 steps, none run yet. Press → to run the first one."
        )
        await press_quickly(pilot, "right")  # its first step
        assert "(a1[f=0, 0,1] was the max)" in step_text(screen)[0]
        await press_quickly(pilot, "P")
        assert "backward · flatten · dm1" in status(screen)
        # b: the next pass, the update with its numbers
        await press_quickly(pilot, "b")
        assert "update · SGD · w1" in status(screen)
        assert step_text(screen)[0] == "w1′[f=0, 0,0] = w1[f=0, 0,0] − α·dw1[f=0, 0,0]"
        assert "w1′[f=0] conv filters after the step" in board(screen)
        await press_quickly(pilot, "b")
        assert "after · second forward" in status(screen)
        lines = step_text(screen)
        assert lines[1] == "L = 0.795 → L′ = 0.0542  (-0.741, lower: the step went downhill)"
        assert "L′ loss after the step" in board(screen)
        await press_quickly(pilot, "right")  # the end: stays
        assert "all 1150 / 1150" in status(screen)
        await press_quickly(pilot, "b")
        assert "all 0 / 1150" in status(screen)


@run_async
async def test_a_large_terminal_shows_every_filter_a_small_one_follows_the_step() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "right")
        assert "z1[f=0] conv output" in board(screen) and "z1[f=1] conv output" in board(screen)
        assert "w1[f=1] conv filters" in board(screen)
        assert "filter" not in {key.description for key in screen.query("FooterEntry")}
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert "z1[f=1]" not in board(screen)
        await press_quickly(pilot, "end")
        assert "z1[f=1] conv output" in board(screen)  # the view follows the step's filter
        await press_quickly(pilot, "f")
        assert "z1[f=0] conv output" in board(screen)


@run_async
async def test_home_end_and_play() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await pilot.press("end")
        assert "step 320 / 320" in status(screen)
        await pilot.press("home")
        assert "step 1 / 320" in status(screen)
        await pilot.press("plus", "plus", "plus", "plus")
        assert "100 steps/s" in status(screen)
        await pilot.press("space")
        assert screen.playing and "playing" in status(screen)
        await pilot.pause(0.3)
        await pilot.press("space")
        assert not screen.playing and screen.model.position > 1


@run_async
async def test_the_form_changes_label_learning_rate_and_values() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "right")
        await press_quickly(pilot, "e")
        form = app.screen
        assert isinstance(form, NetFormScreen)
        assert form.query_one("#form-label", Input).value == "0"
        assert form.query_one("#form-lr", Input).value == "0.1"
        form.query_one("#form-label", Input).value = "1"
        form.query_one("#form-lr", Input).value = "0.05"
        form.query_one("#form-array", Select).value = "b2"
        await pilot.pause()
        area = form.query_one("#form-values", TextArea)
        assert area.text == "0, 0\n"
        area.load_text("0.5, -0.5\n")
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is screen
        assert (screen.example.label, screen.example.lr) == (1, 0.05)
        assert screen.example.b2.tolist() == [0.5, -0.5] and screen.overrides.keys() == {"b2"}
        assert "y = 1 · α = 0.05" in full_status(screen) and "all 0 / 1150" in status(screen)
        assert screen.model.run.loss_after < screen.model.run.loss


@run_async
async def test_a_bad_value_shows_why_and_changes_nothing() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        example = screen.example
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-label", Input).value = "2"
        form.query_one("#form-lr", Input).value = "0"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is form
        assert "lr must be above 0 and at most 10, got 0" in text_of(form.query_one("#error-lr"))
        form.query_one("#form-lr", Input).value = "0.1"
        await press_quickly(pilot, "ctrl+s")
        assert text_of(form.query_one("#error-label")) == (
            "label must be a class of the example, 0 to 1, got 2"
        )
        form.query_one("#form-label", Input).value = "0"
        form.query_one("#form-values", TextArea).load_text("1, 2\n")
        await press_quickly(pilot, "ctrl+s")
        assert "x, line 1: expected 6 numbers, got 2" in text_of(form.query_one("#error-values"))
        await press_quickly(pilot, "escape")
        assert app.screen is screen and screen.example is example


@run_async
async def test_another_example_brings_its_own_values() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-example", Select).value = "net-horizontal-edge"
        await pilot.pause()
        assert form.query_one("#form-label", Input).value == "1"
        assert form.query_one("#form-values", TextArea).text.startswith("0.1, 0.1, 0.1")
        await press_quickly(pilot, "ctrl+s")
        assert screen.example.name == "net-horizontal-edge" and screen.example.label == 1
        assert np.array_equal(screen.example.x[0, 0, 3], [0.9, 1.0, 0.8, 0.8, 1.0, 0.9])


@run_async
async def test_the_check_panel_compares_with_pytorch_and_finite_differences() -> None:
    pytest.importorskip("torch")
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = NetworkScreen(run_checks=True)
        await app.push_screen(screen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = text_of(screen.query_one("#net-check", CheckPanel))
        assert "PyTorch (SGD): |Δ|" in text and "finite differences: " in text
        assert text.count("✓") == 2, text


@run_async
async def test_80x24_keeps_the_rule_the_step_and_every_key_on_screen() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "b", "p", "p", "right")
        step = screen.query_one("#net-step", StepPanel)
        rule_panel = screen.query_one("#net-rule", RulePanel)
        footer_top = min(key.region.y for key in screen.query("FooterEntry"))
        assert rule_panel.region.bottom <= step.region.y and step.region.bottom <= footer_top
        assert step.region.height >= 4
        board_view = screen.query_one("#net-board-scroll")
        assert board_view.region.height >= 6
        keys = screen.query("FooterEntry")
        assert all(key.region.right <= 80 and key.region.height == 1 for key in keys)
        shown = {key.description for key in keys}
        assert {"step", "cell", "phase", "pass", "play", "filter", "edit", "help", "quit"} <= shown


def curve(screen: Screen) -> str:
    return text_of(screen.query_one("#net-curve", LossCurve))


@run_async
async def test_steps_and_optimizer_flags_open_a_training_run() -> None:
    args = build_parser().parse_args(["net", "--steps", "3", "--optimizer", "adam"])
    app = CnnTuiApp(args.command, net_settings_from_args(args), runs_dir=args.runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NetworkScreen)
        assert (screen.example.steps, screen.example.optimizer) == (3, "adam")
        assert status(screen).startswith("network · step 1/3 · forward · conv")
        assert "after 0/3 Adam steps: 0.795" in curve(screen)
        # one row at 80×24, three columns a step, on a log scale (Adam: α 0.01); only the losses reached so
        # far are drawn (step 0: the first), the rest a `·` each column
        assert curve(screen) == "log L ███·········  after 0/3 Adam steps: 0.795"
        await press_quickly(pilot, "end", "b", "b", "b")  # step 1's "after": two losses drawn
        assert curve(screen) == "log L ███▆▆▆······  after 1/3 Adam steps: 0.658  (from 0.795)"


@run_async
async def test_one_more_step_appends_a_training_step_and_moves_to_it() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        assert "all 0 / 1150" in status(screen)
        assert not screen.check_action("other_step", (1,))  # one training step: t / T hidden
        assert curve(screen).splitlines()[-1].endswith("after 0/1 SGD steps: 0.795")
        assert len(curve(screen).splitlines()) == 4  # a tall terminal: four rows of bars
        await press_quickly(pilot, "o")
        assert status(screen).startswith("network · step 2/2 · forward · conv")
        assert "step 1 / 320" in status(screen) and "all 1151 / 2300" in status(screen)
        assert pipeline(screen).startswith("step 2 forward: x → [conv]")
        # the loss in one format over the run, in the curve and the "after" stage alike
        assert "after 1/2 SGD steps: 0.0542  (from 0.795)" in curve(screen)
        await press_quickly(pilot, "T")  # the same step of the previous training step
        assert status(screen).startswith("network · step 1/2 · forward · conv")
        assert "all 1 / 2300" in status(screen)
        await press_quickly(pilot, "t")
        assert "step 2/2" in status(screen) and "all 1151 / 2300" in status(screen)
        await press_quickly(pilot, "end", "b", "b", "b")  # to step 2's "after"
        assert "step 2/2 · after" in status(screen)
        assert "after 2/2 SGD steps: 0.0396" in curve(screen)
        assert step_text(screen)[1].startswith("L = 0.0542 → L′ = 0.0396")


@run_async
async def test_one_more_step_reruns_the_checks_over_every_step() -> None:
    pytest.importorskip("torch")
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = NetworkScreen({"optimizer": "adam"}, run_checks=True)
        await app.push_screen(screen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("o")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = text_of(screen.query_one("#net-check", CheckPanel))
        assert "PyTorch (Adam, 2 steps): |Δ|" in text and text.count("✓") == 2, text


@run_async
async def test_the_form_sets_steps_and_optimizer_and_rejects_bad_ones() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "e")
        form = app.screen
        assert form.query_one("#form-steps", Input).value == "1"
        assert form.query_one("#form-optimizer", Select).value == "sgd"
        form.query_one("#form-steps", Input).value = "0"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is form
        assert text_of(form.query_one("#error-steps")) == "steps must be between 1 and 50, got 0"
        form.query_one("#form-steps", Input).value = "4"
        form.query_one("#form-optimizer", Select).value = "adam"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is screen
        assert (screen.example.steps, screen.example.optimizer) == (4, "adam")
        assert screen.model.training.steps == 4
        assert status(screen).startswith("network · step 1/4 · forward · conv")
        assert "α = 0.1 · Adam" in full_status(screen)


@run_async
async def test_the_board_and_the_step_write_z2_and_l_with_the_same_digits() -> None:
    # the issue: z2 [0.86] in the grid beside 0.855 in the formula, L 0.80 beside 0.795
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "p", "p", "p", "p", "end")  # the last multiply-add of z2[1]
        assert screen.model.stage.key == "linear.forward"
        assert step_text(screen)[1].endswith("→ 0.855")
        assert "[0.855]" in board(screen) and "0.660" in board(screen)
        assert "0.86 " not in board(screen)
        await press_quickly(pilot, "p", "end")  # L = −log p[y]
        assert screen.model.stage.key == "softmax.forward"
        assert step_text(screen)[1].endswith("→ 0.795") and "[0.795]" in board(screen)


@run_async
async def test_question_mark_shows_the_networks_notation() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_net(pilot)
        await press_quickly(pilot, "question_mark")
        await pilot.pause()
        page = app.screen
        assert isinstance(page, LessonHelp) and page.lesson == "net"
        legend = page.query_one("#lesson-help-legend").content
        here = [str(cell) for cell in legend.columns[0].cells]
        assert here == [row.here for row in notation.legend("net")]
        assert "z1" in here and "α" in here
        await press_quickly(pilot, "escape")
        await pilot.pause()
        assert app.screen is screen
