"""The Inside view (ui/training/inside.py): keys, the run screen's Inside tab, and a real filter
opened in the conv lesson."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import wait_until
from inspect_fixtures import silence_conv, write_model_run
from rich.console import Console
from train_ui_fixtures import run_async, write_run

from cnn_tui.training.tools.inspect import InspectRequest
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.inside import (
    FilterCellDialog,
    InsideView,
    RealFilterLesson,
    probability_bars,
    tile,
)
from cnn_tui.ui.training.results import ResultsScreen


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_model_run(tmp_path_factory.mktemp("inside-ui") / "run")


def drawn(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def test_long_class_names_are_cut_with_an_ellipsis_not_mid_word() -> None:
    """The class bars and the Grad-CAM captions cut a long class name with "…" (they showed
    'horizonta' and 'CAM true triangl', a word that looks whole but is not)."""
    classes = ["horizontal bar", "triangle"]
    bars = drawn(probability_bars(np.array([0.6, 0.4]), classes, {}, width=6))
    assert bars[0].startswith("horizont… ")
    caption = drawn(tile(np.zeros((4, 4, 3), np.uint8), 16, "CAM true triangle", False))[-1]
    assert caption.strip() == "CAM true triang…"


def app_for(run_dir, **settings) -> CnnTuiApp:
    return CnnTuiApp("inspect", InspectRequest(run_dir, device="cpu", **settings))


def ready(view: InsideView) -> bool:
    return view.inspection is not None and view.wrong is not None and not view.app.workers


@run_async
async def test_keys_step_through_images_layers_channels_and_classes(run_dir):
    app = app_for(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(InsideView)
        await wait_until(pilot, lambda: ready(view))
        first = view.index
        assert first == int(view.order[0])  # the worst mistake comes first
        await pilot.press("right")
        await wait_until(pilot, lambda: view.index != first and ready(view))
        assert view.index == int(view.order[1])
        note = view.query_one("#inside-cam-note")
        assert note.display == bool(view.inspection.cam_problems)  # said only when empty
        await pilot.press("down", "down", "c")
        assert view.stage_at == 2 and view.channel == 1
        await pilot.press("up")
        assert view.stage_at == 1 and view.channel == 0
        before = view._second_class()
        await pilot.press("k")
        await wait_until(pilot, lambda: ready(view) and view.cam_class in view.inspection.cams)
        assert view.cam_class == (before + 1) % 10


@run_async
async def test_a_real_filter_opens_in_the_conv_lesson_with_the_networks_value(run_dir):
    app = app_for(run_dir, test_index=2)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(InsideView)
        await wait_until(pilot, lambda: view.inspection is not None)
        assert view.index == 2
        await pilot.press("f", "o")
        await wait_until(pilot, lambda: isinstance(app.screen, FilterCellDialog))
        dialog = app.screen
        dialog.query_one("#cell-row").value = "0"
        dialog.query_one("#cell-col").value = "99"
        await pilot.press("enter")
        assert "outside" in str(dialog.query_one("#cell-error").render())
        dialog.query_one("#cell-col").value = "5"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RealFilterLesson))
        lesson = app.screen
        conv = view.inspection.first_conv
        assert lesson.patch.filter == 1 and lesson.patch.cell == (0, 5)
        np.testing.assert_array_equal(lesson.example.w[0], conv.weight[1])
        out, _ = lesson.example.forward()
        i, j = lesson.patch.lesson_cell
        assert out[0, 0, i, j] == pytest.approx(float(conv.output[1, 0, 5]), abs=1e-5)


@run_async
async def test_the_run_screen_shows_inside_only_once_the_run_is_over(run_dir, tmp_path):
    app = CnnTuiApp(runs_dir="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        running = write_run(tmp_path / "running", state="running")
        await app.push_screen(ResultsScreen(running))
        await pilot.pause(0.3)
        tabs = app.screen.query_one("#dash-tabs")
        assert tabs.get_tab("inside").disabled
        await pilot.press("9")
        assert tabs.active != "inside"
        app.pop_screen()
        screen = ResultsScreen(run_dir)
        await app.push_screen(screen)
        tabs = screen.query_one("#dash-tabs")
        await wait_until(pilot, lambda: not tabs.get_tab("inside").disabled)
        await pilot.press("9")
        view = screen.query_one(InsideView)
        await wait_until(pilot, lambda: tabs.active == "inside" and ready(view))
        assert view.has_focus and "predicted" in str(view.query_one("#inside-status").render())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@run_async
async def test_the_run_finished_toast_leaves_the_confusion_matrix_in_view(tmp_path, size):
    from textual.widgets._toast import Toast

    from cnn_tui.training.runs.state import RunState
    from cnn_tui.ui.training.dashboard import RunScreen
    from cnn_tui.ui.training.messages import RunEnded
    from cnn_tui.ui.training.result_views import ConfusionTable

    run = write_run(tmp_path / "runs" / "20251122-101500-simple-cnn-shapes", state="finished")
    app = CnnTuiApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = RunScreen(run, live=False)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.summary is not None)  # on the Results tab
        # then as when a followed run ends: the follower's message, the toast
        screen.live, screen.FINISHED_TOAST_S = True, 600  # (600: stays on a slow machine)
        screen.post_message(RunEnded(run, RunState.FINISHED))
        await wait_until(pilot, lambda: bool(screen.query(Toast)))
        await pilot.pause()
        toast = screen.query_one(Toast)
        assert "finished" in str(toast.render())
        matrix = screen.query_one(ConfusionTable)
        assert matrix.region.height > 0
        assert not toast.region.overlaps(matrix.region)


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
@run_async
async def test_the_open_filter_dialog_shows_both_fields_and_tab_reaches_them(run_dir, size):
    app = app_for(run_dir, test_index=2)
    async with app.run_test(size=size) as pilot:
        view = app.screen.query_one(InsideView)
        await wait_until(pilot, lambda: view.inspection is not None)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, FilterCellDialog))
        dialog = app.screen
        row, col = dialog.query_one("#cell-row"), dialog.query_one("#cell-col")
        await pilot.pause()
        screen_region = dialog.region
        for field in (row, col):  # whole on screen, wide enough to read what is typed
            assert field.region.width >= 8 and screen_region.contains_region(field.region)
        assert not row.region.overlaps(col.region)
        assert row.has_focus
        await pilot.press("tab")
        assert col.has_focus
        col.value, row.value = "3", "1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RealFilterLesson))
        assert app.screen.patch.cell == (1, 3)


@run_async
async def test_the_first_layer_filters_are_in_view_at_120x40(run_dir, tmp_path):
    app = app_for(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.query_one(InsideView)
        await wait_until(pilot, lambda: ready(view))
        filters = view.query_one("#inside-filters")
        assert filters.region.height >= 4  # the heading and a row of filter pictures
        assert view.region.contains_region(filters.region)
    app = CnnTuiApp(runs_dir="runs")  # and in the run screen's Inside tab, below its status
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(run_dir)
        await app.push_screen(screen)
        tabs = screen.query_one("#dash-tabs")
        await wait_until(pilot, lambda: not tabs.get_tab("inside").disabled)
        await pilot.press("9")
        view = screen.query_one(InsideView)
        await wait_until(pilot, lambda: tabs.active == "inside" and ready(view))
        await pilot.pause()
        assert view.region.contains_region(view.query_one("#inside-filters").region)


@run_async
async def test_the_lesson_opened_from_a_filter_says_esc_goes_back_and_does(run_dir):
    app = app_for(run_dir, test_index=2)
    async with app.run_test(size=(120, 40)) as pilot:
        inside = app.screen
        view = inside.query_one(InsideView)
        await wait_until(pilot, lambda: view.inspection is not None)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, FilterCellDialog))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RealFilterLesson))
        escape = [b for b in app.screen.active_bindings.values() if b.binding.key == "escape"]
        assert [b.binding.description for b in escape] == ["back to Inside"]
        await pilot.press("escape")
        assert app.screen is inside


@run_async
async def test_g_moves_grad_cam_to_another_layer_and_an_empty_map_is_said_so(tmp_path):
    run_dir = silence_conv(write_model_run(tmp_path / "dead"), "conv_block_1.2")
    app = app_for(run_dir, test_index=0)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.screen.query_one(InsideView)
        await wait_until(pilot, lambda: ready(view))
        note = view.query_one("#inside-cam-note")
        assert view.inspection.cam_layer == "conv_block_1.2" and note.display
        said = str(note.render())
        assert "is empty: the class score does not change with conv_block_1.2" in said
        assert "g: another layer, e.g. conv_block_1.0" in said
        await pilot.press("g")  # on to the pool: every unit 0 there
        await wait_until(
            pilot, lambda: ready(view) and view.inspection.cam_layer != "conv_block_1.2"
        )
        assert view.inspection.cam_layer == "conv_block_1.4"
        assert "every unit of conv_block_1.4 is 0" in str(note.render())
        await pilot.press("g")  # round to the first conv: alive, but its gradients die behind
        await wait_until(
            pilot, lambda: ready(view) and view.inspection.cam_layer == "conv_block_1.0"
        )
        assert "the class score does not change with conv_block_1.0" in str(note.render())
        assert view.inspection.stages[0].activation.any()  # (its own units are on)
