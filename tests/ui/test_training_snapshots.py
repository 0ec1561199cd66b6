"""Snapshot tests (pytest-textual-snapshot) of the training screens.

Deterministic by construction: runs are fixture directories with fixed times and numbers, the
device list is fixed, and each snapshot waits until the worker has read the files and the charts
have drawn (no fixed sleeps). Update with `pytest --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import wait_until
from train_ui_fixtures import (
    FASHION_CLASSES,
    STARTED,
    FakeNvml,
    add_system_events,
    system_events,
    write_run,
)

from cnn_tui.training.system import devices, gpu_stats
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.charts import MetricChart
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.epochs import EpochTable
from cnn_tui.ui.training.form import TrainFormScreen
from cnn_tui.ui.training.gpu_panel import GpuPanel
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.runs import RunsScreen

RUN_NAME = "20251122-101500-simple-cnn-shapes"


@pytest.fixture(autouse=True)
def fixed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    # no GPU statistics, as on a machine without NVIDIA's driver (the GPU tests inject a fake)
    monkeypatch.setattr(gpu_stats, "_load_pynvml", lambda: FakeNvml(fail_init=True))
    monkeypatch.setenv("TZ", "UTC")  # the runs table prints start times in local time
    time.tzset()
    monkeypatch.setattr(
        devices,
        "detect_devices",
        lambda: [devices.DeviceInfo("cpu", "CPU — 2 threads", "cpu")],
    )


def make_app(tmp_path) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=str(tmp_path / "runs"))


async def settle(pilot, condition=lambda: True, timeout: float = 30.0) -> None:
    """Wait for the workers and for `condition()`, then for the charts' throttled redraw and
    epoch tables' column widths (a DataTable measures new cells when idle: before, its rows
    are drawn as wide as the column titles)."""
    await pilot.pause()
    charts_drawn = lambda: not any(chart._dirty for chart in pilot.app.screen.query(MetricChart))  # noqa: E731

    def tables_measured() -> bool:
        return not any(
            table._updated_cells or table._require_update_dimensions
            for table in pilot.app.screen.query(EpochTable)
        )

    await wait_until(
        pilot,
        lambda: condition() and charts_drawn() and tables_measured(),
        timeout,
        "the screen to settle",
    )


def open_screen(screen_factory, condition=None):
    async def run_before(pilot) -> None:
        screen = screen_factory()
        await pilot.app.push_screen(screen)
        await settle(pilot, (lambda: condition(screen)) if condition else (lambda: True))

    return run_before


def test_form(snap_compare, tmp_path) -> None:
    async def run_before(pilot) -> None:
        await pilot.app.push_screen(TrainFormScreen())
        await pilot.app.workers.wait_for_complete()
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=(120, 40), run_before=run_before)


def test_form_invalid_compact(snap_compare, tmp_path) -> None:
    async def run_before(pilot) -> None:
        screen = TrainFormScreen()
        await pilot.app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        screen.query_one("#field-val_split").value = "0.9"
        screen.query_one("#field-batch_size").value = "many"
        await settle(pilot, lambda: len(screen.errors) == 2)

    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_dashboard_mid_run(snap_compare, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="running", epochs=4, epochs_done=2)
    before = open_screen(lambda: DashboardScreen(run), lambda s: len(s.history.epochs) == 2)
    assert snap_compare(make_app(tmp_path), terminal_size=(120, 40), run_before=before)


def test_dashboard_mid_run_compact(snap_compare, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="running", epochs=4, epochs_done=2)
    before = open_screen(lambda: DashboardScreen(run), lambda s: len(s.history.epochs) == 2)
    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=before)


def test_results(snap_compare, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    before = open_screen(lambda: ResultsScreen(run), lambda s: s.summary is not None)
    assert snap_compare(make_app(tmp_path), terminal_size=(120, 40), run_before=before)


def test_results_samples_compact(snap_compare, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    before = open_screen(lambda: ResultsScreen(run), lambda s: s.summary is not None)
    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=before, press=["8"])


def _two_runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir / RUN_NAME, state="finished")
    write_run(
        runs_dir / "20251122-103000-simple-cnn-fashion-mnist",
        state="failed",
        epochs_done=1,
        message="out of GPU memory at batch size 512: lower --batch-size",
        classes=FASHION_CLASSES,
        started=STARTED + 900,
    )
    return runs_dir


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_table_fits_the_width(snap_compare, tmp_path, monkeypatch, size) -> None:
    _two_runs(tmp_path)
    monkeypatch.chdir(tmp_path)  # the screen names the folder: "runs", not the temporary path
    before = open_screen(lambda: RunsScreen("runs"), lambda s: len(s.runs) == 2)
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_started_two_minutes_apart_look_different(snap_compare, tmp_path, monkeypatch, size):
    runs_dir = tmp_path / "runs"
    for name, started in (("101500", STARTED), ("101746", STARTED + 166)):
        write_run(runs_dir / f"20251122-{name}-simple-cnn-fashion-mnist", started=started)
    monkeypatch.chdir(tmp_path)
    before = open_screen(lambda: RunsScreen("runs"), lambda s: len(s.runs) == 2)
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_confusion_matrix_with_long_class_names_is_numbered(snap_compare, tmp_path, size) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished", classes=FASHION_CLASSES)
    before = open_screen(lambda: ResultsScreen(run), lambda s: s.summary is not None)
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before, press=["7"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_a_failed_run_shows_no_live_leftovers(snap_compare, tmp_path, size) -> None:
    runs_dir = _two_runs(tmp_path)
    run = runs_dir / "20251122-103000-simple-cnn-fashion-mnist"
    before = open_screen(lambda: ResultsScreen(run), lambda s: len(s.history.epochs) == 1)
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before)


BOTH = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])


@BOTH
def test_dashboard_first_epoch_with_gpus(snap_compare, tmp_path, monkeypatch, size) -> None:
    """Early in a run: an honest loss axis, the throughput sparkline, two GPUs (the trainer's
    "system" readings)."""
    run = write_run(tmp_path / "runs" / RUN_NAME, state="running", epochs=4, epochs_done=0)
    add_system_events(run, system_events(3, gpus=2))

    def gpus_shown(screen) -> bool:
        return bool(screen.history.batch_x) and bool(screen.query_one(GpuPanel).samples)

    before = open_screen(lambda: DashboardScreen(run), gpus_shown)
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before)


def test_failed_before_first_batch(snap_compare, tmp_path) -> None:
    """A run over before it had data: no "waiting" charts, no Stop key, the reason shown."""
    message = "out of GPU memory at batch size 512: lower --batch-size"
    run = write_run(tmp_path / "runs" / RUN_NAME, state="failed", epochs_done=0, message=message)
    run.joinpath("metrics.jsonl").write_text(
        run.joinpath("metrics.jsonl").read_text().split("\n")[0] + "\n"
    )
    before = open_screen(lambda: DashboardScreen(run), lambda s: s.state == "failed")
    assert snap_compare(make_app(tmp_path), terminal_size=(120, 40), run_before=before)


def test_results_long_class_names_row_percent_compact(snap_compare, tmp_path) -> None:
    """Fashion-MNIST's names do not fit a column: numbered columns, whole row percents."""
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished", classes=FASHION_CLASSES)
    before = open_screen(lambda: ResultsScreen(run), lambda s: s.summary is not None)
    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=before, press=["n"])


def test_eval_cannot_recompute_compact(snap_compare, tmp_path, monkeypatch) -> None:
    write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    monkeypatch.chdir(tmp_path)  # the error names the file: a path that is the same every time
    run = Path("runs") / RUN_NAME
    (run / "checkpoint.pt").write_bytes(b"damaged")

    def failed(screen) -> bool:
        return str(screen.query_one("#results-note").render()).startswith("✗")

    before = open_screen(lambda: ResultsScreen(run, recompute=True, device="cpu"), failed)
    assert snap_compare(make_app(tmp_path), terminal_size=(80, 24), run_before=before)


def test_keys_help_compact(snap_compare, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    before = open_screen(lambda: ResultsScreen(run), lambda s: s.summary is not None)
    assert snap_compare(
        make_app(tmp_path), terminal_size=(80, 24), run_before=before, press=["question_mark"]
    )
