"""The training form's `log` field (--log): typed as on the command line, checked as it is typed,
and a logger whose extra is missing refused beside the field before Start (as the trainer would)."""

from __future__ import annotations

from textual.widgets import Button, Input, Static
from train_ui_fixtures import run_async

from cnn_tui.training import loggers
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.form import TrainFormScreen


def reason(screen, name: str) -> str:
    return str(screen.query_one(f"#reason-{name}", Static).render())


@run_async
async def test_the_log_field_takes_a_list_and_refuses_a_missing_extra(tmp_path, monkeypatch):
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = TrainFormScreen()
        await app.push_screen(screen)
        await pilot.pause()
        field = screen.query_one("#field-log", Input)
        assert field.value == "" and field.placeholder == "none"
        field.value = "csv, csv,tensorboard"
        await pilot.pause()
        assert screen.config is not None and screen.config.log == "csv,tensorboard"
        field.value = "tensorbord"
        await pilot.pause()
        assert "'tensorbord' is not one of tensorboard, csv, wandb" in reason(screen, "log")
        assert screen.query_one("#start", Button).disabled

        missing = loggers.LoggerKind("wandb", "wandb_logger", "no_such_package_here")
        monkeypatch.setitem(loggers.KINDS, "wandb", missing)
        field.value = "wandb"
        await pilot.pause()
        assert "package: pip install 'cnn-tui[wandb]'" in reason(screen, "log")
        assert screen.query_one("#start", Button).disabled
        field.value = "csv"
        await pilot.pause()
        assert screen.config.loggers == ("csv",)
        assert not screen.query_one("#start", Button).disabled


@run_async
async def test_the_sweep_forms_log_field_is_one_list_not_a_grid(tmp_path):
    """In the sweep form a comma makes a grid, except in the log field: every run logs to all."""
    from cnn_tui.ui.training.sweep import SweepFormScreen

    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = SweepFormScreen()
        await app.push_screen(screen)
        await pilot.pause()
        screen.query_one("#field-lr", Input).value = "0.1,0.01"
        screen.query_one("#field-log", Input).value = "csv,tensorboard"
        await pilot.pause()
        assert screen.grid == {"lr": [0.1, 0.01]}
        assert screen.config is not None and screen.config.log == "csv,tensorboard"
