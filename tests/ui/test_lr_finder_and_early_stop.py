"""Pilot tests of the LR finder modal (the form's Find LR button) and of how the dashboard and
the runs screen show early stopping."""

from __future__ import annotations

import json

import pytest
from conftest import wait_until
from textual.widgets import Button, Input, Static
from textual_plotext import PlotextPlot
from train_ui_fixtures import open_finished_run, run_async, status_line, write_run

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.tools import lr_find
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.epochs import EpochTable
from cnn_tui.ui.training.history import RunHistory
from cnn_tui.ui.training.lr_finder import LRFinderScreen, rounded_lr
from cnn_tui.ui.training.runs import RunsScreen

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def presets_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))


def make_app(runs_dir) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=str(runs_dir))


# --- the LR finder -----------------------------------------------------------------------------


@run_async
async def test_find_lr_runs_the_test_and_use_it_puts_the_suggestion_in_the_form(tmp_path) -> None:
    from cnn_tui.ui.training.form import TrainFormScreen

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = TrainFormScreen(
            TrainConfig(dataset="shapes", limit=120, batch_size=32, hidden_units=4, device="cpu")
        )
        await app.push_screen(form)
        await pilot.pause()
        button = form.query_one("#find-lr", Button)
        assert not button.disabled and str(button.label) == "Find LR"
        await pilot.click("#find-lr")
        await wait_until(pilot, lambda: isinstance(app.screen, LRFinderScreen))
        finder = app.screen
        await wait_until(pilot, lambda: finder.curve is not None, timeout=120)
        await pilot.pause()
        suggestion = finder.curve.suggestion
        assert suggestion is not None
        result = str(finder.query_one("#lr-result", Static).render())
        assert f"suggested lr {suggestion.lr:.2e}" in result
        assert lr_find.RULES[suggestion.rule] in result and "minimum ÷ 10" in result
        assert finder.query_one(PlotextPlot).plt is not None
        use = finder.query_one("#lr-use", Button)
        assert not use.disabled and f"{rounded_lr(suggestion.lr):g}" in str(use.label)
        await pilot.click("#lr-use")
        await wait_until(pilot, lambda: app.screen is form)
        assert form.query_one("#field-lr", Input).value == repr(rounded_lr(suggestion.lr))
        assert form.config is not None and form.config.lr == rounded_lr(suggestion.lr)


@run_async
async def test_the_finder_shows_a_failure_and_close_leaves_the_form_as_it_was(tmp_path) -> None:
    from cnn_tui.ui.training.form import TrainFormScreen

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        config = TrainConfig(dataset="fashion-mnist", data_dir=str(tmp_path / "none"), device="cpu")
        form = TrainFormScreen(config)
        await app.push_screen(form)
        await pilot.pause()
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, LRFinderScreen))
        finder = app.screen
        status = finder.query_one("#lr-status", Static)
        await wait_until(pilot, lambda: "could not run" in str(status.render()), timeout=120)
        assert finder.query_one("#lr-use", Button).disabled
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is form)
        assert form.query_one("#field-lr", Input).value == repr(config.lr)


def test_rounded_lr_keeps_two_significant_digits() -> None:
    assert rounded_lr(0.0054622772) == 0.0055 and rounded_lr(3.16e-4) == 0.00032
    assert rounded_lr(1.0) == 1.0


# --- early stopping on screen --------------------------------------------------------------------


def early_stopped_run(run_dir):
    """A fixture run of 4 epochs that early stopping (patience 2, val_loss) ended after epoch 4,
    its best epoch 2; val losses 1.0, 0.8, 0.9, 0.85."""
    write_run(run_dir, "finished", epochs=8)
    config = TrainConfig(epochs=8, device="cpu", limit=800, batch_size=32, early_stop=2)
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events[0]["config"] = config.to_dict()
    kept = [e for e in events if e["event"] not in ("epoch", "evaluated", "finished")]
    kept = [e for e in kept if e["event"] != "batch" or e["epoch"] <= 4]
    epochs = [e for e in events if e["event"] == "epoch"][:4]
    for epoch, loss in zip(epochs, [1.0, 0.8, 0.9, 0.85], strict=True):
        epoch["val_loss"] = loss
    tail = [
        {"event": "early_stop", "time": 1.0, "epoch": 4, "epochs": 8, "best_epoch": 2,
         "metric": "val_loss", "best": 0.8, "patience": 2, "min_delta": 0.0,
         "message": "early stop after epoch 4: val_loss has not improved for 2 epochs"},
        {"event": "finished", "time": 2.0},
    ]  # fmt: skip
    lines = [*kept, *epochs, *tail]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    (run_dir / "config.toml").write_text(config.to_toml())
    summary = json.loads((run_dir / "summary.json").read_text())
    summary |= {"early_stopped": True, "stopped_epoch": 4, "best_epoch": 2, "epochs_done": 4}
    summary["evaluated_with"] = "best"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_history_replays_early_stopping() -> None:
    config = TrainConfig(early_stop=3).to_dict()
    history = RunHistory()
    history.add([{"event": "run_started", "config": config, "epochs": 8}])
    rows = [
        {"event": "epoch", "epoch": e, "val_loss": v} for e, v in [(1, 1.0), (2, 0.8), (3, 0.9)]
    ]
    history.add(rows)
    state = history.early_stop_state()
    assert (state.best_epoch, state.since_best, state.stop_epoch) == (2, 1, None)
    assert history.kept_epoch() == 2
    off = RunHistory()
    off.add([{"event": "run_started", "config": TrainConfig().to_dict()}, *rows])
    assert off.early_stop_state() is None and off.kept_epoch() is None


@run_async
async def test_dashboard_and_runs_screen_show_the_early_stop(tmp_path) -> None:
    run = early_stopped_run(tmp_path / "es-run")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_finished_run(pilot, run)
        assert "finished (early stop @4)" in status_line(screen)
        metrics = str(screen.query_one("#dash-metrics", Static).render())
        assert "early stop @4" in metrics and "epoch 2's weights" in metrics
        table = screen.query_one("#epoch-table", EpochTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            "1/8",
            "◆ 2/8",
            "3/8",
            "4/8",
        ]
        await app.pop_screen()
        runs_screen = RunsScreen(tmp_path)
        await app.push_screen(runs_screen)
        await wait_until(pilot, lambda: runs_screen.runs)
        await pilot.pause()
        cells = [str(cell) for cell in runs_screen.query_one("#runs-table").get_row_at(0)]
        assert "✓ finished (early stop @4)" in cells
