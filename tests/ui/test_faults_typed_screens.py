"""Run files of the wrong types on the screens (the third fault campaign): a summary.json whose
tables are not what the trainer writes, a metrics.jsonl whose run_started settings are no table or
whose numbers are past float32's range. Each once crashed the dashboard or the results screen;
now the tables are left out (`store.read_summary`), the events are read as far as they go
(`RunHistory`) and the charts leave out points no trainer writes (`charts.MAX_VALUE`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_ui_fixtures import run_async, write_run

from cnn_tui.training.runs import store as runs
from cnn_tui.ui.training.history import RunHistory

HOSTILE_SUMMARY = {
    "classes": 5,
    "confusion_matrix": [[1, 2], [3]],
    "per_class": [{"class": 5, "precision": "x", "recall": None, "f1": [1], "support": "s"}],
    "most_confused": [["a"], {"x": 1}, "str"],
    "history": [5, None],
}


def test_summary_tables_of_the_wrong_types_are_left_out(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    sound = runs.read_summary(run)
    assert {"classes", "confusion_matrix", "per_class", "most_confused"} <= set(sound)
    for key, value in HOSTILE_SUMMARY.items():
        (run / runs.SUMMARY_FILE).write_text(json.dumps({**sound, key: value}))
        read = runs.read_summary(run)
        assert key not in read and read["test_accuracy"] == sound["test_accuracy"], key
    matrix = [[1] * 3] * 3  # square, but not one row per class
    (run / runs.SUMMARY_FILE).write_text(json.dumps({**sound, "confusion_matrix": matrix}))
    assert "confusion_matrix" not in runs.read_summary(run)


def test_run_history_reads_events_of_the_wrong_types() -> None:
    history = RunHistory()
    history.add([
        {"event": "run_started", "config": "notadict", "epochs": "x", "parameters": 5,
         "start_epoch": [1], "classes": "abc"},
        {"event": "batch", "epoch": "one", "batch": None, "batches": "x", "loss": 1.0},
        {"event": "epoch", "epoch": "two", "epochs": 2, "train_loss": 1.0, "val_acc": 0.5},
        {"event": "epoch", "epoch": 1e308, "train_loss": 1e308, "val_acc": 0.5},
    ])  # fmt: skip
    assert history.started["config"] == {} and history.patience == 0
    assert history.epochs_total == 0 and history.classes == []
    assert history.batch_x == [0.0]
    xs, ys = history.series()["train_loss"]
    assert xs == [1e308] and ys == [1e308]  # ("two" is no epoch; the chart leaves out 1e308)
    assert history.progress() == (0.0, 0.0)


@pytest.mark.parametrize("size", [(80, 24)])
@run_async
async def test_dashboard_and_results_of_a_hostile_run_open(tmp_path, monkeypatch, size) -> None:
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.charts import MetricChart
    from cnn_tui.ui.training.dashboard import DashboardScreen
    from cnn_tui.ui.training.results import ResultsScreen

    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    run = write_run(tmp_path / "runs" / "odd")
    summary = json.loads((run / runs.SUMMARY_FILE).read_text())
    (run / runs.SUMMARY_FILE).write_text(json.dumps({**summary, **HOSTILE_SUMMARY}))
    lines = (run / runs.EVENTS_FILE).read_text().splitlines()
    huge = {"event": "epoch", "epoch": 5, "epochs": 10**30, "train_loss": 1e308,
            "val_loss": -1e308, "train_acc": 0.5, "val_acc": 0.5, "lr": 1e308}  # fmt: skip
    started = {"event": "run_started", "config": "notadict", "epochs": 4}
    (run / runs.EVENTS_FILE).write_text("\n".join([json.dumps(started), *lines[1:],
                                                   json.dumps(huge)]) + "\n")  # fmt: skip
    app = CnnTuiApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=size) as pilot:
        for screen in (DashboardScreen(run), ResultsScreen(run)):
            await app.push_screen(screen)
            await pilot.pause(0.3)
            for key in "123456":
                await pilot.press(key)
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            assert app._exception is None
            assert screen.query(MetricChart)  # (drawn: the charts are on the screen)
            await pilot.press("escape")
            await pilot.pause(0.1)
    assert app._exception is None
