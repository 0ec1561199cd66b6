"""Keys on the training screens and home (issue 25, items 4–6): `?` opens the help page on every
screen, the footers keep every key at 80×24 and number the tabs from the bindings, the form
focuses its first field and shows every Tab stop, and warns of a random frozen backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_until
from inspect_fixtures import write_model_run
from textual.widgets import Button, Checkbox, Input, Select, Static
from train_ui_fixtures import run_async, write_run

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import sweeps
from cnn_tui.training.tools.inspect import InspectRequest
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import HelpPage
from cnn_tui.ui.key_footer import FooterEntry, WrappingFooter, group_label
from cnn_tui.ui.training.form import TrainFormScreen
from cnn_tui.ui.training.inside import InsideView, InspectScreen
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.runs import CompareScreen, RunsScreen
from cnn_tui.ui.training.sweep import SweepFormScreen, SweepScreen

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@pytest.fixture(autouse=True)
def presets_dir(tmp_path, monkeypatch) -> Path:
    """User presets go to a temporary folder, never to ~/.config."""
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    return tmp_path / "presets"


@pytest.fixture(scope="module")
def model_run(tmp_path_factory) -> Path:
    """A finished run with a checkpoint: its run screen has the Inside tab (key 6)."""
    return write_model_run(tmp_path_factory.mktemp("keys") / "run")


def screen_factories(tmp_path: Path, model_run: Path) -> dict:
    """Each screen that `?` must serve, built on fixture runs (no engine)."""
    finished = write_run(tmp_path / "runs" / "r1", state="finished")
    plan = sweeps.make_plan(TrainConfig(), {"seed": [0, 1]}, "cpu")
    sweep_dir = sweeps.create_sweep(plan, tmp_path / "runs", str(tmp_path / "sw"))
    return {
        "home": None,  # the app's first screen
        "form": TrainFormScreen,
        "sweep form": SweepFormScreen,
        "results": lambda: ResultsScreen(finished),
        "runs": lambda: RunsScreen(tmp_path / "runs"),
        "compare": lambda: CompareScreen([finished]),
        "sweep": lambda: SweepScreen(sweep_dir),
        "inside": lambda: InspectScreen(InspectRequest(model_run, device="cpu")),
    }


SCREENS = ["home", "form", "sweep form", "results", "runs", "compare", "sweep", "inside"]


async def open_on(pilot, factory):
    if factory is not None:
        await pilot.app.push_screen(factory())
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.screen


# --- ? on every screen ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCREENS)
@run_async
async def test_question_mark_opens_the_keys_of_every_screen(name, tmp_path, model_run) -> None:
    factory = screen_factories(tmp_path, model_run)[name]
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_on(pilot, factory)
        if isinstance(screen, TrainFormScreen):
            screen.query_one("#field-dataset", Select).focus()  # (a text field takes ? as text)
            await pilot.pause()
        shown = {b.action for _, b, _, _ in screen.active_bindings.values() if b.show}
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpPage), 10, "the help page")
        page = app.screen
        keys = dict(page.keys)
        assert keys["?"] == "Help" and keys["^q"] == "Quit"
        assert page.keys_title.startswith("keys of the")
        # every key the footer shows is on the page, and Textual's own (scrolling) are not
        listed = set(keys.values())
        for _, binding, _, _ in screen.active_bindings.values():
            if binding.action in shown and binding.description:
                assert any(what.startswith(binding.description) for what in listed), binding
        assert "Scroll Left" not in listed and "Focus Next" not in listed
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is screen, 10, "the page to close")


@run_async
async def test_f1_opens_help_from_a_text_field_where_question_mark_is_typed(tmp_path) -> None:
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_on(pilot, TrainFormScreen)
        field = screen.query_one("#field-epochs")
        field.focus()
        await pilot.pause()
        footer = {entry.key_display for entry in screen.query(FooterEntry)}
        assert "f1" in footer and "?" not in footer  # the footer names the key that works here
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpPage), 10, "the help page")
        assert app.screen.keys_title == "keys of the training form"


# --- footers ----------------------------------------------------------------------------------


def footer_fits(screen) -> None:
    """Every key the screen shows is an entry of its footer, and each entry lies inside the
    footer, which lies inside the terminal: nothing cut off."""
    footer = screen.query_one(WrappingFooter)
    entries = list(footer.query(FooterEntry))
    assert len(entries) == len(footer._keys()) > 0
    bottom = screen.size.height
    assert footer.region.bottom <= bottom and footer.region.right <= screen.size.width
    for entry in entries:
        assert footer.region.contains_region(entry.region), entry.description


@SIZES
@pytest.mark.parametrize("name", SCREENS)
@run_async
async def test_footers_keep_every_key(name, size, tmp_path, model_run) -> None:
    factory = screen_factories(tmp_path, model_run)[name]
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        screen = await open_on(pilot, factory)
        await wait_until(pilot, lambda: screen.query(FooterEntry), 10, "the footer")
        footer_fits(screen)
        if name == "home":
            described = {(e.key_display, e.description) for e in screen.query(FooterEntry)}
            assert ("^q", "Quit") in described and ("?", "Help") in described


@SIZES
@run_async
async def test_the_run_screens_footer_numbers_the_tabs_there_are(size, tmp_path, model_run):
    failed = write_run(tmp_path / "runs" / "f", state="failed", epochs_done=0, message="no data")
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:

        def tabs_key(screen) -> str:
            return next(e.key_display for e in screen.query(FooterEntry) if e.description == "Tabs")

        screen = await open_on(pilot, lambda: ResultsScreen(failed))  # no checkpoint: no Inside
        await wait_until(pilot, lambda: screen.query(FooterEntry), 10, "the footer")
        assert tabs_key(screen) == "1-8"
        app.pop_screen()
        screen = await open_on(pilot, lambda: ResultsScreen(model_run))
        await wait_until(pilot, lambda: tabs_key(screen) == "1-9", 10, "tab 9 in the footer")
        await pilot.press("9")  # the Inside tab: its keys join the footer, none cut off
        view = screen.query_one(InsideView)
        await wait_until(pilot, lambda: view.inspection is not None, 30, "the inside view")
        await wait_until(
            pilot, lambda: "Filter" in {e.description for e in screen.query(FooterEntry)}
        )
        footer_fits(screen)


def test_group_labels_make_a_range_of_digits_only() -> None:
    assert group_label(list("123456")) == "1-6" and group_label(list("12345")) == "1-5"
    assert group_label(["←", "→"]) == "←→" and group_label(["1", "2"]) == "12"
    assert group_label(["1", "3", "5"]) == "135"


# --- the form: focus ----------------------------------------------------------------------------


@SIZES
@run_async
async def test_the_form_focuses_its_first_field_and_every_tab_stop_shows(size, tmp_path) -> None:
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        screen = await open_on(pilot, TrainFormScreen)
        assert app.focused is screen.query_one("#field-dataset")
        stops = []
        for _ in range(40):
            await pilot.press("tab")
            await pilot.pause()
            widget = app.focused
            assert isinstance(widget, (Input, Select, Checkbox, Button)), widget  # a field
            if widget in stops:
                break
            stops.append(widget)
            # on screen, and marked: its row's label reversed, or the button itself reversed
            assert screen.region.contains_region(widget.region), widget
            if isinstance(widget, Button):
                assert widget.rich_style.reverse, widget
            else:
                row = next(
                    n for n in widget.ancestors if n.has_class("form-row") or n.id == "form-presets"
                )
                assert row.has_class("-focused"), widget
                assert len(screen.query(".-focused")) == 1
        ids = [widget.id for widget in stops]
        assert {"preset", "save-preset", "find-lr", "start", "field-seed"} <= set(ids)


# --- the form: a random frozen backbone ---------------------------------------------------------


def reason(screen, name: str) -> str:
    return str(screen.query_one(f"#reason-{name}", Static).render())


@run_async
async def test_the_form_warns_beside_finetune_of_a_random_frozen_backbone(tmp_path) -> None:
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_on(pilot, TrainFormScreen)
        screen.query_one("#field-model", Input).value = "resnet18"
        screen.query_one("#field-weights").value = "none"
        await pilot.pause()
        # auto: a random backbone trains whole, nothing to warn of
        assert screen.config is not None and screen.config.resolved_finetune == "all"
        assert not reason(screen, "finetune").startswith("⚠")
        screen.query_one("#field-finetune", Select).value = "head"
        await pilot.pause()
        row = screen.query_one("#row-finetune")
        assert row.has_class("-warning") and not row.has_class("-invalid")
        assert reason(screen, "finetune").startswith("⚠ --finetune head with --weights none")
        assert "near-chance" in reason(screen, "finetune")
        assert screen.config is not None and not screen.query_one("#start", Button).disabled
        screen.query_one("#field-weights").value = "imagenet"  # pretrained: the head is right
        await pilot.pause()
        assert not row.has_class("-warning") and not reason(screen, "finetune").startswith("⚠")
