"""Pilot tests of the training screens: form, dashboard, results, runs, quitting.

Most tests read run directories written by `train_ui_fixtures` (no engine, no timing); the
`real engine` tests start short runs on `shapes` through the form and wait for them through the
worker API. Nothing sleeps for a fixed time as an assertion: waits poll a condition with a timeout.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from rich.text import Text
from textual.widgets import Button, Checkbox, Input, RichLog, Select, Static, TabbedContent
from train_ui_fixtures import CLASSES, run_async, write_run

from cnn_tui.training.config import TrainConfig, find_preset, save_preset
from cnn_tui.training.data import shapes as shapes_dataset
from cnn_tui.training.runs.store import read_status
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.charts import MetricChart
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.dialogs import ChoiceModal, PresetNameModal
from cnn_tui.ui.training.epochs import EpochTable
from cnn_tui.ui.training.form import TrainFormScreen
from cnn_tui.ui.training.result_views import ConfusionTable, PerClassTable, confusion_caption
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.runs import CompareScreen, RunsScreen
from cnn_tui.ui.training.samples import SampleCard

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def presets_dir(tmp_path, monkeypatch) -> Path:
    """User presets go to a temporary folder, never to ~/.config."""
    folder = tmp_path / "presets"
    monkeypatch.setenv("CNN_TUI_PRESETS", str(folder))
    return folder


def make_app(runs_dir: Path) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=runs_dir)


async def show(pilot, screen):
    """Push `screen` and let it mount; returns it."""
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


def reason(screen, name: str) -> str:
    return str(screen.query_one(f"#reason-{name}", Static).render())


# --- the form ---------------------------------------------------------------------------------


@run_async
async def test_form_defaults_are_valid_and_startable(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        assert isinstance(screen, TrainFormScreen)
        assert screen.query_one("#start", Button).disabled is False
        assert screen.config == TrainConfig()
        assert "simple-cnn on shapes" in str(screen.query_one("#form-summary", Static).render())
        # the pretrained models' fields are disabled while the model is simple-cnn
        assert screen.query_one("#field-weights", Input).disabled
        assert reason(screen, "finetune") == "pretrained models only"
        assert reason(screen, "model").startswith(
            "network to train:"
        )  # no size note for small models


@run_async
async def test_form_invalid_input_shows_reason_and_disables_start(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        epochs = screen.query_one("#field-epochs", Input)
        epochs.focus()
        epochs.value = ""
        await pilot.press("0")
        await pilot.pause()
        assert "must be at least 1" in reason(screen, "epochs")
        assert screen.query_one("#start", Button).disabled
        assert screen.query_one("#row-epochs").has_class("-invalid")
        # ctrl+s does not start while a field is invalid
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        lr = screen.query_one("#field-lr", Input)
        lr.value = "fast"
        await pilot.pause()
        assert "must be a number, got 'fast'" in reason(screen, "lr")
        assert "2 fields to fix" in str(screen.query_one("#form-summary", Static).render())
        epochs.value = "3"
        lr.value = "0.01"
        await pilot.pause()
        assert screen.query_one("#start", Button).disabled is False
        assert screen.config.epochs == 3 and screen.config.lr == 0.01
        assert reason(screen, "epochs") == "passes over the training set"


@run_async
async def test_form_cross_field_rule_and_model_dependent_fields(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        screen.query_one("#field-dataset", Select).value = "imagefolder"
        await pilot.pause()
        assert "needs --data-dir" in reason(screen, "data_dir")
        assert screen.query_one("#start", Button).disabled
        screen.query_one("#field-data_dir", Input).value = str(tmp_path)
        screen.query_one("#field-model", Input).value = "resnet18"
        await pilot.pause()
        assert screen.query_one("#field-weights", Input).disabled is False
        assert screen.query_one("#field-hidden_units", Input).disabled
        assert screen.config.model == "resnet18" and screen.config.data_dir == str(tmp_path)


@run_async
async def test_form_shows_a_pretrained_models_size_and_training_memory(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        screen.query_one("#field-dataset", Select).value = "cifar10"
        screen.query_one("#field-model", Input).value = "resnet50"
        screen.query_one("#field-image_size", Input).value = "224"
        screen.query_one("#field-batch_size", Input).value = "32"
        screen.query_one("#field-device", Select).value = "cpu"
        await pilot.pause()
        note = reason(screen, "model")
        assert note.startswith("23.5M params, 20.5k trained") and "MiB memory" in note
        assert "batch 32, 224 px" in note and "features cached" in note
        screen.query_one("#field-finetune", Select).value = "all"
        await pilot.pause()
        assert "23.5M trained" in reason(screen, "model")
        screen.query_one("#field-model", Input).value = "vgg16"
        await pilot.pause()
        assert reason(screen, "model").startswith("134.3M params, 134.3M trained")


@run_async
async def test_form_from_train_flags(tmp_path) -> None:
    from cnn_tui.cli import build_parser
    from cnn_tui.commands.train import form_settings

    args = build_parser().parse_args(
        ["--runs-dir", str(tmp_path), "train", "--model", "resnet18", "--epochs", "0", "--no-amp"]
    )
    app = CnnTuiApp(args.command, form_settings(args), runs_dir=args.runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainFormScreen)
        assert screen.query_one("#field-model", Input).value == "resnet18"
        assert screen.query_one("#field-epochs", Input).value == "0"
        assert screen.query_one("#field-amp", Checkbox).value is False
        assert "must be at least 1" in reason(screen, "epochs")
        assert screen.query_one("#start", Button).disabled


@run_async
async def test_early_stopping_and_sync_bn_fields_apply_only_when_they_are_used(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        metric, delta = (
            screen.query_one("#field-early_stop_metric", Select),
            screen.query_one("#field-min_delta", Input),
        )
        assert metric.disabled and delta.disabled  # early stop 0: off
        assert reason(screen, "min_delta") == "early stopping only (early stop above 0)"
        assert screen.query_one("#field-sync_bn", Checkbox).disabled
        delta.value = "x"  # a field that does not apply does not block Start
        await pilot.pause()
        assert screen.config is not None and screen.config.min_delta == 0.0

        screen.query_one("#field-early_stop", Input).value = "3"
        await pilot.pause()
        assert not metric.disabled and not delta.disabled
        assert "must be a number" in reason(screen, "min_delta") and screen.config is None
        delta.value = "0.01"
        metric.value = "val_acc"
        await pilot.pause()
        assert screen.config.early_stop == 3 and screen.config.min_delta == 0.01
        assert screen.config.early_stop_metric == "val_acc"
        assert reason(screen, "min_delta").startswith("early stopping: a change")

        screen.query_one("#field-devices", Input).value = "2"
        await pilot.pause()
        assert not screen.query_one("#field-sync_bn", Checkbox).disabled


@run_async
async def test_presets_load_into_the_form_and_save(tmp_path, presets_dir) -> None:
    save_preset(TrainConfig(epochs=7, lr=0.05, optimizer="sgd"), "mine", "seven epochs of sgd")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        select = screen.query_one("#preset", Select)
        mine = [value for prompt, value in select._options if str(prompt).startswith("mine")]
        assert mine, select._options
        select.value = mine[0]
        await pilot.pause()
        assert screen.query_one("#field-epochs", Input).value == "7"
        assert screen.query_one("#field-optimizer", Select).value == "sgd"
        assert screen.query_one("#field-momentum", Input).disabled is False  # sgd: applies
        assert screen.config.lr == 0.05
        # save the form as a new preset through the dialog
        screen.query_one("#field-epochs", Input).value = "2"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, PresetNameModal)
        await pilot.press(*"bad name!", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PresetNameModal)  # invalid name: the dialog stays
        assert "not valid" in str(app.screen.query_one("#preset-error", Static).render())
        app.screen.query_one("#preset-name", Input).value = "two-epochs"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        saved = (presets_dir / "two-epochs.toml").read_text()
        assert "epochs = 2" in saved and 'optimizer = "sgd"' in saved


def recording_notices(app: CnnTuiApp) -> CnnTuiApp:
    """`app`, keeping the (title, message) of every notification it shows in `app.notices`."""
    app.notices = []
    show = app.notify

    def notify(message: str, *, title: str = "", **options: Any) -> None:
        app.notices.append((title, message))
        show(message, title=title, **options)

    app.notify = notify
    return app


def notices(app) -> list[tuple[str, str]]:
    """(title, message) of the notifications the app has shown (see `recording_notices`)."""
    return app.notices


def assert_cats_vs_dogs_waits_for_its_data_dir(app, screen) -> None:
    """Every value of the cats-vs-dogs preset is in the form; data dir is marked and focused."""
    assert screen.query_one("#field-dataset", Select).value == "imagefolder"
    assert screen.query_one("#field-model", Input).value == "resnet18"
    assert screen.query_one("#field-augment", Select).value == "flip-crop"
    assert screen.query_one("#field-weights", Input).value == "imagenet"
    assert screen.query_one("#field-image_size", Input).value == "224"
    assert screen.query_one("#field-batch_size", Input).value == "32"
    assert screen.query_one("#field-grad_clip", Input).value == "1.0"
    data_dir = screen.query_one("#field-data_dir", Input)
    assert data_dir.value == "" and data_dir.disabled is False
    assert screen.query_one("#row-data_dir").has_class("-invalid")
    assert "needs --data-dir" in reason(screen, "data_dir")
    assert app.focused is data_dir
    assert screen.query_one("#start", Button).disabled
    assert any("data dir" in message for _, message in notices(app)), notices(app)


@run_async
async def test_form_from_a_preset_flag_that_leaves_the_data_dir_to_fill(tmp_path) -> None:
    from cnn_tui.cli import build_parser
    from cnn_tui.commands.train import form_settings

    args = build_parser().parse_args(
        ["--runs-dir", str(tmp_path), "train", "--preset", "cats-vs-dogs"]
    )
    app = recording_notices(CnnTuiApp(args.command, form_settings(args), runs_dir=args.runs_dir))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainFormScreen)
        assert_cats_vs_dogs_waits_for_its_data_dir(app, screen)
        await pilot.press(*str(tmp_path))
        await pilot.pause()
        assert screen.query_one("#start", Button).disabled is False
        assert screen.config.data_dir == str(tmp_path) and screen.config.grad_clip == 1.0


@run_async
async def test_form_picks_a_preset_that_leaves_the_data_dir_to_fill(tmp_path) -> None:
    app = recording_notices(make_app(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        select = screen.query_one("#preset", Select)
        select.value = str(find_preset("cats-vs-dogs").path)
        await pilot.pause()
        assert_cats_vs_dogs_waits_for_its_data_dir(app, screen)


@run_async
async def test_a_preset_that_cannot_be_applied_says_why_and_changes_nothing(
    tmp_path, presets_dir
) -> None:
    presets_dir.mkdir(parents=True)
    (presets_dir / "broken.toml").write_text("epochs = 3\nlearning_rate = 0.1\n")
    app = recording_notices(make_app(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen())
        screen.query_one("#field-epochs", Input).value = "9"
        await pilot.pause()
        select = screen.query_one("#preset", Select)
        select.value = str(presets_dir / "broken.toml")
        await pilot.pause()
        assert screen.query_one("#field-epochs", Input).value == "9"  # the form as it was
        assert screen.config == TrainConfig(epochs=9)
        titles = dict(notices(app))
        assert "unknown setting 'learning_rate'" in titles["Preset not applied"]


@run_async
async def test_form_from_an_unknown_preset_flag_says_why(tmp_path) -> None:
    from cnn_tui.cli import build_parser
    from cnn_tui.commands.train import form_settings

    args = build_parser().parse_args(
        ["--runs-dir", str(tmp_path), "train", "--preset", "nope", "--epochs", "3"]
    )
    app = recording_notices(CnnTuiApp(args.command, form_settings(args), runs_dir=args.runs_dir))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainFormScreen)
        assert screen.config == TrainConfig(epochs=3)  # the defaults and the flags
        assert "unknown preset 'nope'" in dict(notices(app))["Preset not applied"]


# --- the dashboard and results from fixture run dirs --------------------------------------------


def test_the_confusion_caption_keeps_its_marks_on_a_line_of_their_own() -> None:
    """Wrapped as one line at 80 columns, the caption split its key hint ("n:" / "counts/%")."""
    caption = confusion_caption("columns: predicted class number, as numbered in the rows", False)
    lines = Text.from_markup(caption).plain.splitlines()
    assert lines[-1] == "bold: correct · !n: worst confusions · n: counts/%"
    assert len(lines[-1]) <= 78 and lines[0].startswith("Confusion matrix (counts) rows:")


@run_async
async def test_the_epoch_table_of_a_cpu_run_fits_80_columns(tmp_path) -> None:
    """A run on the CPU has no GPU memory: its column of dashes was the one cut off at 80x24
    ("GPU me"); it comes with the first epoch that has a reading."""
    run = write_run(tmp_path / "run-a", epochs=3)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await show(pilot, DashboardScreen(run))
        await pilot.press("4")
        table = screen.query_one("#epoch-table", EpochTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        assert table.keys[-1] == "images_per_s"
        assert table.virtual_size.width <= table.scrollable_content_region.width
        gpu = [dict(e, gpu_mem_mb=512.0 * e["epoch"]) for e in screen.history.epochs]
        table.set_epochs(gpu)
        await pilot.pause()
        assert table.keys[-1] == "gpu_mem_mb"
        assert str(table.get_cell_at((2, len(table.keys) - 1))) == "1.5 GiB"


@run_async
async def test_dashboard_mid_run_from_files(tmp_path) -> None:
    run = write_run(tmp_path / "run-a", state="running", epochs=4, epochs_done=2)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(DashboardScreen(run))
        await pilot.pause()
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.history.epochs) == 2)
        assert screen.state == "running"
        assert screen.query_one("#epoch-table", EpochTable).row_count == 2
        done, total = screen.history.progress()
        assert (done, total) == (50.0, 80.0)
        speed = str(screen.query_one("#dash-speed", Static).render())
        assert "epoch 3/4" in speed and "img/s" in speed
        loss = screen.query_one("#loss-chart", MetricChart)
        assert [s.label for s in loss.series] == ["batch (smoothed)", "train", "val"]
        assert len(loss.series[1].xs) == 2
        # results are not there yet
        assert screen.query_one(TabbedContent).get_tab("results").disabled
        assert screen.followed_run_dir == run
        # leaving the screen cancels the follower
        await pilot.press("escape")
        await app.workers.wait_for_complete()


@run_async
async def test_a_run_that_ends_while_another_tab_is_read_leaves_it_and_says_results_ready(
    tmp_path,
) -> None:
    from cnn_tui.training.runs.store import RunState, read_samples, read_summary
    from cnn_tui.ui.training.messages import RunEnded, RunResultsLoaded

    run = write_run(tmp_path / "run-a", state="running", epochs=4, epochs_done=2)
    done = write_run(tmp_path / "run-done", state="finished")
    app = recording_notices(make_app(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(DashboardScreen(run))
        await pilot.pause()
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.history.epochs) == 2)
        await pilot.press("6")  # the user reads the Console when the run ends
        assert screen.query_one(TabbedContent).active == "console"
        screen.post_message(RunResultsLoaded(run, read_summary(done), read_samples(done)))
        screen.post_message(RunEnded(run, RunState.FINISHED, ""))
        await wait_until(pilot, lambda: screen.state == RunState.FINISHED)
        assert screen.query_one(TabbedContent).active == "console"
        assert "Results (7) ready" in str(screen.query_one("#dash-status", Static).render())
        assert any("Results (7) ready" in message for _, message in notices(app))
        await pilot.press("7")
        assert screen.query_one(TabbedContent).active == "results"
        assert "Results (7)" not in str(screen.query_one("#dash-status", Static).render())
        await pilot.press("escape")
        await app.workers.wait_for_complete()


@run_async
async def test_results_screen_confusion_matrix_and_samples(tmp_path) -> None:
    run = write_run(tmp_path / "run-b", state="finished")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ResultsScreen(run))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.state == "finished"
        assert screen.query_one(TabbedContent).active == "results"
        table = screen.query_one(ConfusionTable)
        assert table.class_names == CLASSES
        assert table.row_count == len(CLASSES)
        first_row = [str(cell) for cell in table.get_row_at(0)]
        # "horizontal bar" does not fit a column header: columns numbered, the rows name them
        assert first_row[0] == "0 circle " and first_row[1] == "34" and first_row[-2] == "!6"
        assert [str(column.label) for column in table.columns.values()][1:3] == ["0", "1"]
        table.focus()
        await pilot.press("n")
        await pilot.pause()
        first_row = [str(cell) for cell in table.get_row_at(0)]
        assert first_row[1] == "85" and first_row[-2] == "!15"  # narrow columns: whole percents
        assert screen.query_one(PerClassTable).row_count == len(CLASSES)
        headline = str(screen.query_one("#results-headline", Static).render())
        assert "test accuracy 94.75%" in headline
        await pilot.press("8")
        await pilot.pause()
        cards = list(screen.query(SampleCard))
        assert len(cards) == 12
        assert cards[0].true != cards[0].pred  # worst mistakes first
        assert not screen.check_action("stop", ())  # nothing to stop


@run_async
async def test_failed_run_shows_the_reason(tmp_path) -> None:
    message = "loss became NaN at epoch 2: lower --lr (e.g. 0.0001)"
    run = write_run(tmp_path / "run-c", state="failed", epochs_done=1, message=message)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ResultsScreen(run))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.state == "failed"
        assert message in str(screen.query_one("#dash-metrics", Static).render())
        await pilot.press("5")  # the Log tab (a hidden RichLog defers its lines)
        await pilot.pause()
        log = "\n".join(line.text for line in screen.query_one(RichLog).lines)
        assert message in log


@run_async
async def test_results_screen_mounts_once(tmp_path) -> None:
    """Textual calls RunScreen.on_mount itself after ResultsScreen's: the log starts once."""
    run = write_run(tmp_path / "run-once", state="finished")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ResultsScreen(run))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        await pilot.press("5")  # the Log tab (a hidden RichLog defers its lines)
        await pilot.pause()
        log = "\n".join(line.text for line in screen.query_one(RichLog).lines)
        assert log.count("run directory:") == 1


# --- the runs screen --------------------------------------------------------------------------


@run_async
async def test_runs_screen_list_open_compare_delete(tmp_path) -> None:
    write_run(tmp_path / "a-finished", state="finished")
    write_run(tmp_path / "b-stopped", state="stopped", epochs=6, epochs_done=3, scale=0.5)
    write_run(tmp_path / "c-running", state="running")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(RunsScreen(tmp_path))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.runs) == 3)
        summary = str(screen.query_one("#runs-summary", Static).render())
        assert "3 runs" in summary and "1 in progress" in summary
        statuses = {run.name: run.status for run in screen.runs}
        assert statuses == {
            "a-finished": "finished",
            "b-stopped": "stopped",
            "c-running": "running",
        }
        # open the finished run: its results
        table = screen.query_one("#runs-table")
        table.move_cursor(row=table.get_row_index(str(tmp_path / "a-finished")))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        await app.workers.wait_for_complete()
        await pilot.press("escape")
        await pilot.pause()
        # the running run opens as a live dashboard
        table.move_cursor(row=table.get_row_index(str(tmp_path / "c-running")))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen) and app.screen.live
        await pilot.press("escape")
        await pilot.pause()
        # mark two runs and overlay their curves
        for name in ("a-finished", "b-stopped"):
            table.move_cursor(row=table.get_row_index(str(tmp_path / name)))
            await pilot.press("space")
        await pilot.press("c")
        await pilot.pause()
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_until(pilot, lambda: len(compare.histories) == 2)
        loss = compare.query_one("#compare-loss", MetricChart)
        assert sorted(len(s.xs) for s in loss.series) == [3, 4]  # runs of different lengths
        assert loss.x_max == 6
        await pilot.press("escape")
        await pilot.pause()
        # delete asks first; cancel keeps the run, confirming deletes it
        table.move_cursor(row=table.get_row_index(str(tmp_path / "b-stopped")))
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceModal)
        await pilot.press("escape")
        await pilot.pause()
        assert (tmp_path / "b-stopped").exists()
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#yes")
        await pilot.pause()
        assert not (tmp_path / "b-stopped").exists()
        await wait_until(pilot, lambda: len(screen.runs) == 2)
        # a running run is not deleted
        table.move_cursor(row=table.get_row_index(str(tmp_path / "c-running")))
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen and (tmp_path / "c-running").exists()


@run_async
async def test_home_screen_shows_runs_in_progress(tmp_path) -> None:
    write_run(tmp_path / "still-training", state="running")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.screen.query_one("#home-runs", Static)
        await wait_until(pilot, lambda: banner.display)
        assert "1 run in progress: still-training" in str(banner.render())


@run_async
async def test_at_80x24_the_home_screen_shows_runs_in_progress_and_every_menu_entry(
    tmp_path,
) -> None:
    from textual.widgets import OptionList

    from cnn_tui.ui.key_footer import WrappingFooter

    write_run(tmp_path / "20251122-101500-simple-cnn-fashion-mnist", state="running")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.screen.query_one("#home-runs", Static)
        await wait_until(pilot, lambda: banner.display)
        footer = app.screen.query_one(WrappingFooter).region
        menu = app.screen.query_one("#home-menu", OptionList)
        assert banner.region.height >= 1 and banner.region.bottom <= footer.y  # on the screen
        assert "1 run in progress" in str(banner.render())
        assert menu.region.bottom <= banner.region.y and menu.max_scroll_y == 0  # nothing hidden
        assert menu.region.height == menu.option_count * 2 + 2


@run_async
async def test_quit_while_following_a_live_run_asks(tmp_path) -> None:
    run = write_run(tmp_path / "live", state="running")  # pid: this test process, alive
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(DashboardScreen(run))
        await pilot.pause()
        await wait_until(pilot, lambda: app.screen.state == "running")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceModal) and app.screen.id == "quit-dialog"
        await pilot.click("#cancel")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.click("#leave")
        await pilot.pause()
    assert app.return_code == 0
    assert read_status(run)["status"] == "running"  # left running


# --- the real engine --------------------------------------------------------------------------

QUICK = TrainConfig(
    dataset="shapes", model="simple-cnn", limit=300, epochs=1, batch_size=50, device="cpu"
)


@pytest.mark.slow
@run_async
async def test_real_run_from_the_form_to_the_results(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainFormScreen(QUICK))
        await pilot.pause()
        await pilot.click("#start")
        await pilot.pause()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen) and dashboard.pid is not None
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert dashboard.state == "finished", dashboard.state_message
        assert read_status(dashboard.run_dir)["status"] == "finished"
        assert (dashboard.run_dir / "config.toml").read_text() == QUICK.to_toml()
        assert dashboard.query_one(TabbedContent).active == "results"
        assert dashboard.query_one(ConfusionTable).class_names == list(shapes_dataset.CLASSES)
        assert dashboard.query_one(EpochTable).row_count == 1
        loss = dashboard.query_one("#loss-chart", MetricChart)
        assert loss.series[0].xs, "per-batch loss points"
        acc = dashboard.query_one("#acc-chart", MetricChart)
        assert acc.series[1].label == "val" and len(acc.series[1].ys) == 1
        assert dashboard.query(SampleCard)


@pytest.mark.slow
@run_async
async def test_real_run_stopped_from_the_dashboard(tmp_path) -> None:
    config = QUICK.replace(epochs=200, limit=2000)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TrainFormScreen(config))
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        try:
            await wait_until(pilot, lambda: dashboard.history.last_batch is not None)
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, ChoiceModal)
            await pilot.click("#yes")
            await app.workers.wait_for_complete()
            await pilot.pause()
        finally:
            if dashboard.pid and read_status(dashboard.run_dir)["status"] == "running":
                os.kill(dashboard.pid, signal.SIGKILL)
        assert dashboard.state == "stopped"
        assert read_status(dashboard.run_dir)["status"] == "stopped"
        assert (dashboard.run_dir / "checkpoint.pt").exists()
        assert "stopped" in str(dashboard.query_one("#dash-speed", Static).render())


@run_async
async def test_a_preset_edited_says_custom_and_the_form_comes_back_as_left(
    tmp_path, presets_dir
) -> None:
    save_preset(TrainConfig(epochs=7, lr=0.05, optimizer="sgd"), "mine", "seven epochs of sgd")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await show(pilot, TrainFormScreen.from_settings(None))
        select = screen.query_one("#preset", Select)
        select.value = next(v for p, v in select._options if str(p).startswith("mine"))
        await pilot.pause()
        assert select.value is not Select.NULL  # the preset's name is shown while it holds
        screen.query_one("#field-epochs", Input).value = "9"
        await pilot.pause()
        assert select.value is Select.NULL and select.prompt == "custom (changed from mine)"
        await pilot.press("escape")
        await pilot.pause()
        again = await show(pilot, TrainFormScreen.from_settings(None))
        assert again is not screen
        assert again.query_one("#field-epochs", Input).value == "9"
        assert again.query_one("#field-optimizer", Select).value == "sgd"


@run_async
async def test_the_model_picker_filters_as_typed_and_fills_the_field(tmp_path) -> None:
    from cnn_tui.ui.training.model_picker import ModelPickerModal

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await show(pilot, TrainFormScreen())
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerModal), 10, "picker")
        picker = app.screen
        await app.workers.wait_for_complete()  # torchvision's registry, read in a thread
        await pilot.pause()
        assert "torchvision:convnext_tiny" in picker.matches("")
        await pilot.press(*"v3_s")
        await pilot.pause()
        options = picker.query_one("#model-options")
        assert options.option_count == 1  # torchvision:mobilenet_v3_small alone
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, 10, "the form back")
        assert screen.query_one("#field-model", Input).value == "torchvision:mobilenet_v3_small"
        await app.workers.wait_for_complete()  # the size estimate, measured in a thread
        await pilot.pause()
        assert reason(screen, "model").startswith("1.5M params, 10.2k trained")
        assert not screen.query_one("#field-weights", Input).disabled
        screen.query_one("#field-model", Input).value = "torchvision:vit_b_16"
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "does not take 32-px images" in reason(screen, "model")
        assert screen.query_one("#start", Button).disabled
