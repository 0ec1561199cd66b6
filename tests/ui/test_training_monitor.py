"""The training screens as an ML engineer expects them: the smoothed loss agrees with the epoch
table, GPU statistics (the trainer's "system" readings), honest axes, tables that fit, eval recomputing,
extending and cloning runs, the form kept and its preset box saying "custom"."""

from __future__ import annotations

import math

import pytest
from conftest import wait_until
from train_ui_fixtures import (
    FASHION_CLASSES,
    add_system_events,
    run_async,
    system_events,
    write_run,
)

from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import devices, gpu_stats
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import HelpPage
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.dialogs import EpochsModal
from cnn_tui.ui.training.epochs import _cell
from cnn_tui.ui.training.form import TrainFormScreen
from cnn_tui.ui.training.gpu_panel import GpuPanel
from cnn_tui.ui.training.history import RunHistory
from cnn_tui.ui.training.result_views import ConfusionTable
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.throughput import ThroughputLine


@pytest.fixture(autouse=True)
def fixed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    monkeypatch.setattr(
        devices, "detect_devices", lambda: [devices.DeviceInfo("cpu", "CPU — 2 threads", "cpu")]
    )


def make_app(tmp_path) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=str(tmp_path / "runs"))


# --- the smoothed loss -----------------------------------------------------------------------------


def test_thinned_batch_events_still_end_at_the_epochs_mean_loss(tmp_path):
    """Two events written for 200 batches: the curve ends near the epoch table's train loss."""
    log = runs.EventLog(tmp_path)
    log.throttle.interval = math.inf  # the first batch and the last of the epoch only
    losses = [1.0 + 0.4 * math.sin(3 * b) + (0.8 if b < 3 else 0.0) for b in range(200)]
    for b, loss in enumerate(losses):
        log.emit("batch", epoch=1, batch=b + 1, batches=200, loss=loss, images_per_s=900.0)
    log.close()
    events = runs.read_events(tmp_path)[0]
    assert [e["batch"] for e in events] == [1, 200]
    history = RunHistory()
    history.add(events)
    mean = sum(losses) / len(losses)
    assert history.batch_x[-1] == 1.0
    assert abs(history.batch_loss[-1] - mean) < 0.15
    assert history.batch_loss[0] == pytest.approx(losses[0])  # debiased: no pull towards 0
    # smoothing the two written events (what the dashboard did before) ends far from the mean
    assert abs(events[-1]["loss"] - events[0]["loss"]) > 0.5


def test_old_run_files_without_smoothed_loss_are_smoothed_here():
    history = RunHistory()
    history.add(
        [{"event": "batch", "epoch": 1, "batch": b, "batches": 3, "loss": 2.0} for b in (1, 2, 3)]
    )
    assert history.batch_loss == pytest.approx([2.0, 2.0, 2.0])  # debiased EMA of a flat loss
    assert history.throughput_series() == []


def test_throughput_series_falls_back_to_epochs():
    history = RunHistory()
    history.add([{"event": "epoch", "epoch": 1, "epochs": 2, "images_per_s": 1500.0}])
    assert history.throughput_series() == [1500.0]


# --- axes, tables ---------------------------------------------------------------------------------


def test_epoch_time_has_a_unit():
    assert _cell("seconds", {"seconds": 9.53}) == "9.5s"
    assert _cell("seconds", {"seconds": 75}) == "1m15s"
    assert _cell("seconds", {}) == "-"


# --- the screens ----------------------------------------------------------------------------------


@run_async
async def test_live_dashboard_shows_the_trainers_gpus_and_the_throughput(tmp_path, monkeypatch):
    def no_nvml_here():
        raise AssertionError("the TUI read NVML itself")  # (the trainer's readings are shown)

    monkeypatch.setattr(gpu_stats, "_load_pynvml", no_nvml_here)
    run = write_run(tmp_path / "runs" / "r1", state="running", epochs_done=1)
    add_system_events(run, system_events(3, gpus=2))
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DashboardScreen(run))
        screen = app.screen
        panel = screen.query_one(GpuPanel)
        await wait_until(pilot, lambda: panel.samples, what="the GPU lines")
        lines = str(panel.render()).splitlines()
        assert len(lines) == 2 and lines[0].startswith("GPU0 util▕")
        assert lines[0].endswith("NVIDIA H100 80GB HBM3") and lines[1].startswith("GPU1")
        assert screen.query_one(ThroughputLine).has_class("-shown")


@run_async
async def test_without_gpus_on_the_trainers_machine_the_log_says_why(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / "r1", state="running", epochs_done=1)
    add_system_events(run, system_events(2, gpus=0))
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(DashboardScreen(run))
        screen = app.screen
        await wait_until(pilot, lambda: screen.gpu_note, what="the trainer's GPU note")
        assert screen.gpu_note == "no NVIDIA GPU found"
        assert not screen.query_one(GpuPanel).has_class("-shown")


@run_async
async def test_an_ended_run_drops_its_live_leftovers_and_help_lists_the_keys(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / "r1", state="failed", epochs_done=0, message="no data")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(DashboardScreen(run))
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen.state == "failed" and not screen.check_action("stop", ())
        assert "stop" not in {b.action for _, b, _, _ in screen.active_bindings.values()}
        chart = screen.query_one("#loss-chart")
        assert chart.empty_note == "no data: run failed"
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpPage)
        keys = dict(app.screen.keys)
        assert keys["1"] == "Charts" and keys["8"].startswith("Samples")
        assert "s" not in keys


@run_async
async def test_eval_screen_says_why_it_cannot_recompute(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / "r", state="finished")
    (run / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(ResultsScreen(run, recompute=True, device="cpu"))
        screen = app.screen
        note = ""
        for _ in range(200):  # (a failed worker: wait_for_complete would raise its error)
            await pilot.pause(0.02)
            note = str(screen.query_one("#results-note").render())
            if note.startswith("✗"):
                break
        assert note.startswith("✗ cannot recompute the test metrics:") and "checkpoint.pt" in note
        assert screen.summary is not None  # the stored results stay on screen


@run_async
async def test_confusion_matrix_numbers_long_class_names(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / "r", state="finished", classes=FASHION_CLASSES)
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:  # wide: still numbered, names do not fit
        await app.push_screen(ResultsScreen(run))
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ConfusionTable)
        headers = [str(column.label) for column in table.columns.values()]
        assert headers[1:11] == [str(i) for i in range(10)]
        assert str(table.get_row_at(9)[0]) == "9 Ankle boot "


@run_async
async def test_runs_screen_extends_a_finished_run_and_clones_one(tmp_path, monkeypatch) -> None:
    from cnn_tui.training.runs import launcher

    started = []
    monkeypatch.setattr(
        launcher, "spawn_detached", lambda command, run_dir: started.append(command) or 4242
    )
    run = write_run(tmp_path / "runs" / "20251122-101500-simple-cnn-shapes", epochs=4)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_screen("runs")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        table = screen.query_one("#runs-table")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-3:] == ["test acc", "model", "data set"]  # the start time went below
        assert "started 2025-" in str(screen.query_one("#runs-detail").render())
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, EpochsModal)
        app.screen.query_one("#extend-epochs").value = "3"
        await pilot.press("enter")
        await pilot.pause()
        assert "more than the 4 epochs" in str(app.screen.query_one("#extend-error").render())
        app.screen.query_one("#extend-epochs").value = "10"
        await pilot.press("enter")
        await pilot.pause()
        assert started and started[0][-4:] == [
            "--resume",
            str(run),
            "--epochs",
            "10",
        ]
        assert isinstance(app.screen, DashboardScreen) and app.screen.pid == 4242
        app.screen.live = False  # (no trainer behind pid 4242: do not follow it)
        app.pop_screen()
        await pilot.pause()
        await pilot.press("k")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, TrainFormScreen)
        assert form.query_one("#field-epochs").value == "4" and form.requested_run_dir is None


@run_async
async def test_form_is_kept_within_the_session_and_says_custom_after_a_change(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_screen("train")
        await pilot.pause()
        form = app.screen
        select = form.query_one("#preset")
        preset = next(value for _, value in select._options if "lecture-simple-cnn" in str(value))  # noqa: SLF001
        select.value = preset
        await pilot.pause()
        assert select.value == preset
        form.query_one("#field-epochs").value = "7"
        await pilot.pause()
        assert select.value is select.NULL and select.prompt.startswith("custom (changed from")
        app.pop_screen()
        await pilot.pause()
        app.open_screen("train")
        await pilot.pause()
        assert app.screen is not form
        assert app.screen.query_one("#field-epochs").value == "7"
