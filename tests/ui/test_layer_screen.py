"""The batch-norm and dropout lesson screens driven with Textual's pilot: the home entries, the
keys through the stages and passes, the image / channel view, a new seed, the checks, 80×24.

The tests read what the screen shows (the status line, the stage line, the board's text with
its bracketed highlights, the rule and step panels). The checks are off except in the one test
about them, so no worker races the assertions.
"""

from __future__ import annotations

import pytest
from conftest import press_quickly, text_of
from textual.screen import Screen
from textual.widgets import Input, Select, Static
from train_ui_fixtures import run_async

from cnn_tui.cli import build_parser
from cnn_tui.commands.layer_flags import settings_from_args
from cnn_tui.lessons import notation
from cnn_tui.lessons.settings import LAYER_DEFAULTS, LayerSettings
from cnn_tui.ui.app import CnnTuiApp, open_screen_for
from cnn_tui.ui.home import ENTRIES, HomeScreen
from cnn_tui.ui.lessons.array_grid import ArrayBoard
from cnn_tui.ui.lessons.help import LessonHelp
from cnn_tui.ui.lessons.layer_form import LayerFormScreen
from cnn_tui.ui.lessons.layers import LayerScreen
from cnn_tui.ui.lessons.staged import NetPipeline, RulePanel
from cnn_tui.ui.lessons.step_panel import CheckPanel, StepPanel, StepStatus

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def status(screen: Screen) -> str:
    return text_of(screen.query_one("#layer-status", StepStatus))


def full_status(screen: Screen) -> str:
    """The status line with every part (a narrow terminal drops the last ones)."""
    return screen.query_one("#layer-status", StepStatus).full_text


def stages(screen: Screen) -> str:
    return text_of(screen.query_one("#layer-pipeline", NetPipeline))


def rule(screen: Screen) -> str:
    return text_of(screen.query_one("#layer-rule", RulePanel))


def step(screen: Screen) -> list[str]:
    return text_of(screen.query_one("#layer-step", StepPanel)).splitlines()


def board(screen: Screen) -> str:
    return "\n".join(screen.query_one("#layer-board", ArrayBoard).plain_lines())


async def open_layer(pilot, op: str = "batchnorm", **values) -> LayerScreen:
    screen = LayerScreen(LayerSettings(op, values))
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


@run_async
async def test_the_home_screen_opens_both_lessons_by_key_and_menu() -> None:
    commands = [command for command, _, _ in ENTRIES]
    assert {"batchnorm", "dropout"} <= set(commands)
    keys = [binding.key for binding in HomeScreen.BINDINGS]
    assert len(keys) == len(set(keys))  # no key opens two things
    app = CnnTuiApp()
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.pause()
        await press_quickly(pilot, "b")
        assert isinstance(app.screen, LayerScreen) and app.screen.example.op == "batchnorm"
        assert status(app.screen).startswith("batch normalisation · forward · μ")
        await press_quickly(pilot, "escape")
        await press_quickly(pilot, "d")
        assert isinstance(app.screen, LayerScreen) and app.screen.example.op == "dropout"
        await press_quickly(pilot, "escape")
        assert isinstance(app.screen, HomeScreen)
        menu = app.screen.query_one("#home-menu")
        menu.highlighted = commands.index("dropout")
        await press_quickly(pilot, "enter")
        await pilot.pause()
        assert isinstance(app.screen, LayerScreen) and app.screen.example.op == "dropout"


def test_the_flags_become_the_screen_settings() -> None:
    args = build_parser().parse_args(["batchnorm", "--batch", "3", "--eps", "0.01", "--seed", "2"])
    settings = settings_from_args(args)
    assert settings == LayerSettings("batchnorm", {"batch": 3, "eps": 0.01, "seed": 2})
    args = build_parser().parse_args(["dropout", "--example", "dropout-half", "--p", "0.25"])
    assert settings_from_args(args) == LayerSettings("dropout", {"p": 0.25}, example="dropout-half")
    screen = open_screen_for("batchnorm", settings)
    assert isinstance(screen, LayerScreen)
    assert screen.example.x.shape[0] == 3 and screen.example.eps == 0.01
    assert isinstance(open_screen_for("dropout", None), LayerScreen)


@run_async
async def test_keys_walk_the_stages_and_passes_of_batch_norm() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_layer(pilot, batch=1, channels=2, height=2, width=2)
        assert "steps recorded" in step(screen)[0]
        await press_quickly(pilot, "right")
        assert "step 1 / 8" in status(screen)
        assert step(screen)[0] == "μ[0] += x[c=0, 0,0]/M" and "[" in board(screen)
        await press_quickly(pilot, "right_square_bracket")  # μ[0] done
        assert "done (4/4)" in step(screen)[2]
        await press_quickly(pilot, "p")
        assert stages(screen) == "forward: μ → [σ²] → x̂ → y → running stats"
        assert rule(screen).startswith("rule σ²[c] = (1/M) Σ_n,i,j (x[n,c,i,j] − μ[c])²")
        await press_quickly(pilot, "b")
        assert stages(screen).startswith("backward: [dβ]") and "∂y/∂β = 1" in rule(screen)
        await press_quickly(pilot, "p", "p", "p", "p", "p", "end")
        assert "backward · dx" in status(screen) and "step 8 / 8" in status(screen)
        assert "three ways" in rule(screen)
        await press_quickly(pilot, "P")
        assert "backward · dμ" in status(screen) and "step 0 / 8" in status(screen)
        assert (
            step(screen)[0]
            == "backward · batch norm · dμ: 8 steps, none run yet. Press → to run the first one."
        )
        await press_quickly(pilot, "b")
        assert "forward · μ" in status(screen)


@run_async
async def test_the_view_follows_the_step_and_the_keys_cycle_it() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_layer(pilot, batch=2, channels=2, height=2, width=2)
        await press_quickly(
            pilot, "p", "p"
        )  # σ², then x̂ (entered at its start): value by value, n, c, i, j
        await press_quickly(pilot, *["right"] * 5)  # (n, c) = (0, 1)
        assert screen.view == {"n": 0, "c": 1}
        assert "x[n=0, c=1] input" in board(screen)
        await press_quickly(pilot, "n")
        assert "x[n=1, c=1] input" in board(screen)
        await press_quickly(pilot, "c")
        assert "x[n=1, c=0] input" in board(screen)


@run_async
async def test_a_new_seed_keeps_the_settings_and_changes_the_numbers() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_layer(pilot, "dropout", p=0.3, seed=5)
        before = screen.example.x.copy()
        await press_quickly(pilot, "right", "r")
        assert screen.example.seed == 6 and screen.example.p == 0.3
        assert screen.model.position == 0 and (screen.example.x != before).any()
        assert "p = 0.3 · seed 6" in status(screen)


@run_async
async def test_the_check_panel_compares_with_pytorch_and_finite_differences() -> None:
    pytest.importorskip("torch")
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        for op in ("batchnorm", "dropout"):
            screen = LayerScreen(LayerSettings(op), run_checks=True)
            await app.push_screen(screen)
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            text = text_of(screen.query_one("#layer-check", CheckPanel))
            assert "PyTorch (autograd): |Δ|" in text and "finite differences: " in text
            assert text.count("✓") == 2, text
            await pilot.press("escape")


@run_async
async def test_80x24_keeps_the_rule_the_step_and_every_key_on_screen() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_layer(pilot)
        await press_quickly(pilot, "b", "p", "p", "p", "p", "p", "right")  # dx: seven arrays
        step_panel = screen.query_one("#layer-step", StepPanel)
        rule_panel = screen.query_one("#layer-rule", RulePanel)
        footer_top = min(key.region.y for key in screen.query("FooterEntry"))
        assert rule_panel.region.bottom <= step_panel.region.y
        assert step_panel.region.bottom <= footer_top
        # the written cell is scrolled into view
        scroll = screen.query_one("#layer-board-scroll")
        region = screen.query_one("#layer-board", ArrayBoard).highlight_region(("write",))
        assert region is not None
        visible = scroll.scrollable_content_region
        top = region.y - int(scroll.scroll_y)
        assert 0 <= top and top + region.height <= visible.height


@run_async
async def test_a_long_title_gives_way_before_rows_are_cropped_at_80x24() -> None:
    """dropout's dx stage: dx, dy and the mask fit one row of 78 columns, but the mask's title
    ("mask 1 kept, 0 dropped") made it too wide for it; the rows of all three were cropped
    to 3 of 4 (the mask titled by its cropped part alone) and 5 rows stayed blank."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_layer(pilot, "dropout")
        await press_quickly(pilot, "b", "right")
        lines = screen.query_one("#layer-board", ArrayBoard).plain_lines()
        assert len(lines) == 7 and "rows" not in lines[0]  # one row of grids, every row shown
        assert "╭─ mask ─" in lines[0]
        await press_quickly(pilot, "b")  # forward: room for the whole title
        assert "mask 1 kept, 0 dropped" in board(screen)


@run_async
async def test_the_edit_form_changes_the_settings_and_explains_bad_values() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_layer(pilot, "batchnorm")
        await press_quickly(pilot, "right", "e")
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        assert [field.id for field in form.query(Input)] == [
            f"form-{name}" for name in LAYER_DEFAULTS["batchnorm"]
        ]  # one field per setting of the table, as the flags
        assert form.query_one("#form-example", Select).value == "random"
        assert form.query_one("#form-eps", Input).value == "1e-05"
        form.query_one("#form-eps", Input).value = "0"
        form.query_one("#form-batch", Input).value = "1"
        form.query_one("#form-height", Input).value = "1"
        form.query_one("#form-width", Input).value = "1"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is form  # the lesson is left as it was
        assert "eps must be above 0" in str(form.query_one("#error-eps", Static).content)
        form.query_one("#form-eps", Input).value = "0.5"
        await press_quickly(pilot, "ctrl+s")
        assert app.screen is form and "at least 2 values per channel" in str(
            form.query_one("#error-form", Static).content
        )
        form.query_one("#form-width", Input).value = "4"
        form.query_one("#form-momentum", Input).value = "0.3"
        await press_quickly(pilot, "ctrl+s")
        await pilot.pause()
        assert app.screen is screen and screen.model.position == 0
        assert screen.example.x.shape == (1, 2, 1, 4) and screen.example.eps == 0.5
        assert "ε = 0.5 · m = 0.3 · seed 0" in full_status(screen)
        await press_quickly(pilot, "e", "escape")
        assert app.screen is screen and screen.example.eps == 0.5


@run_async
@pytest.mark.parametrize("op", ["batchnorm", "dropout"])
async def test_question_mark_shows_the_layers_notation(op: str) -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_layer(pilot, op)
        await press_quickly(pilot, "question_mark")
        await pilot.pause()
        page = app.screen
        assert isinstance(page, LessonHelp) and page.lesson == op
        legend = page.query_one("#lesson-help-legend").content
        here = [str(cell) for cell in legend.columns[0].cells]
        assert here == [row.here for row in notation.legend(op)]
        symbols = {
            "batchnorm": ("μ[c], σ²[c]", "ε", "x̂", "γ[c], β[c]", "m"),
            "dropout": ("p", "mask"),
        }
        assert set(symbols[op]) <= set(here)
        await press_quickly(pilot, "escape")
        await pilot.pause()
        assert app.screen is screen
