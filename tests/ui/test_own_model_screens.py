"""Your own model in the TUI: the form takes `file.py:Class` (checked in a worker, its error
beside the field; the picker takes it typed), and a run's code runs only once trusted (the
Inside tab asks, showing the class, the file and the copy's sha256; Cancel runs nothing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import wait_until
from textual.widgets import Input, Static
from train_ui_fixtures import run_async

from cnn_tui.cli import main
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.models import own
from cnn_tui.training.models import sizes as model_sizes
from cnn_tui.training.runs import store as runs
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.dialogs import ChoiceModal
from cnn_tui.ui.training.form import TrainFormScreen, TrainFormSettings
from cnn_tui.ui.training.inside import InsideView
from cnn_tui.ui.training.model_picker import ModelPickerModal
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.sweep import SweepFormScreen, SweepSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NET = """
import os
import torch
from torch import nn

if "OWN_MODEL_MARKER" in os.environ:  # what ran, and from which file
    with open(os.environ["OWN_MODEL_MARKER"], "a") as handle:
        handle.write(__file__ + "\\n")


class Net(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))
"""

SOFTMAX = NET.replace("return self.fc(", "return torch.softmax(self.fc(").replace(
    "mean((2, 3)))", "mean((2, 3))), 1)"
)


def reason(screen, name: str) -> str:
    return str(screen.query_one(f"#reason-{name}", Static).render())


@run_async
async def test_the_form_checks_your_own_class_in_a_worker(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.py").write_text(NET)
    (tmp_path / "bad.py").write_text(NET.replace("nn.Conv2d(in_channels,", "nn.Conv2d(1,"))
    (tmp_path / "soft.py").write_text(SOFTMAX)
    settings = TrainFormSettings(texts={"model": "good.py:Net", "dataset": "shapes"})
    app = CnnTuiApp("train", settings, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, TrainFormScreen)
        await wait_until(pilot, lambda: "params, all trained" in reason(screen, "model"))
        assert screen.config is not None and "model" not in screen.errors
        screen._set_widget("model", "bad.py:Net")  # the channels its first conv expects
        await wait_until(pilot, lambda: "model" in screen.errors)
        assert "bad.py:18: Net expects 1-channel images; shapes' images have 3" in reason(
            screen, "model"
        )
        assert screen.query_one("#start").disabled
        await pilot.press("ctrl+o")  # the picker takes your own class typed in full
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerModal))
        app.screen.query_one("#model-filter").value = "good.py:Net"
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen and "model" not in screen.errors)
        assert screen._raw_value("model") == "good.py:Net"
        screen._set_widget("model", "soft.py:Net")  # probabilities: a warning, Start stays
        await wait_until(pilot, lambda: "returns probabilities" in reason(screen, "model"))
        assert screen.config is not None and not screen.query_one("#start").disabled


@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, marker file) of a run of a file that leaves a marker whenever it runs."""
    root = tmp_path_factory.mktemp("own-ui")
    marker = root / "ran.txt"
    (root / "net.py").write_text(NET)
    argv = ["train", "--no-ui", "--model", f"{root / 'net.py'}:Net", "--dataset", "shapes"]
    argv += ["--limit", "60", "--epochs", "1", "--run-dir", str(root / "run")]
    assert main(argv) == 0
    return root / "run", marker


@run_async
async def test_the_inside_tab_asks_before_running_a_runs_code(own_run, monkeypatch) -> None:
    run, marker = own_run
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    marker.unlink(missing_ok=True)
    own._LOADED.clear()
    app = CnnTuiApp(runs_dir=run.parent / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(run)
        await app.push_screen(screen)
        tabs = screen.query_one("#dash-tabs")
        await wait_until(pilot, lambda: not tabs.get_tab("inside").disabled)
        await pilot.press("9")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        question = str(app.screen.query_one(".train-dialog-text", Static).render())
        record = runs.read_model_source_record(run)
        assert "class Net from" in question and record["sha256"][:16] in question
        await pilot.press("escape")  # not trusted: nothing of the file runs
        view = screen.query_one(InsideView)
        status = view.query_one("#inside-status", Static)
        await wait_until(pilot, lambda: "not run (not trusted)" in str(status.render()))
        assert not marker.exists() and view.run is None
        await pilot.press("1", "9")  # asked again; trusted, the run's copy runs
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: view.inspection is not None, what="the inspection")
        copy = os.fspath((run / runs.MODEL_SOURCE_FILE).absolute())
        assert marker.read_text().split() == [copy]


@run_async
async def test_a_file_that_loops_at_import_never_holds_the_form(tmp_path, monkeypatch) -> None:
    """The check runs in a child process: Start waits for it, a newer model lets it go, and
    the app quits while it loops."""
    monkeypatch.chdir(tmp_path)
    # the checks below end by being superseded or by the app quitting, never by the time-out
    monkeypatch.setattr(model_sizes, "CHECK_TIMEOUT_S", 600)
    (tmp_path / "good.py").write_text(NET)
    (tmp_path / "loop.py").write_text("while True:\n    pass\n")
    settings = TrainFormSettings(texts={"model": "loop.py:Net", "dataset": "shapes"})
    app = CnnTuiApp("train", settings, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: bool(model_sizes._CHECKS), what="the check's child")
        looping = next(iter(model_sizes._CHECKS))
        assert "checking the model" in str(screen.query_one("#form-summary", Static).render())
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: any("still checking the model" in n.message for n in app._notifications)
        )
        assert not (tmp_path / "runs").exists()  # Start waited
        screen._set_widget("model", "good.py:Net")
        screen.validate_form()
        await wait_until(pilot, lambda: "params, all trained" in reason(screen, "model"))
        await wait_until(pilot, lambda: looping.poll() is not None, what="superseded: killed")
        screen._set_widget("model", "loop.py:Net")
        screen.validate_form()
        await wait_until(pilot, lambda: bool(model_sizes._CHECKS), what="the check's child")
        looping = next(iter(model_sizes._CHECKS))
    assert looping.wait(timeout=30) is not None  # the app quit, and took the loop with it
    with pytest.raises(UsageError, match="still importing after 1 s"):
        model_sizes.check_own(
            TrainConfig.from_mapping({"model": "loop.py:Net", "dataset": "shapes"}), timeout=1
        )


@run_async
async def test_the_sweep_form_checks_every_own_class_of_its_grid(tmp_path, monkeypatch) -> None:
    """Not only the model field's: each own class the grid builds is checked in a child before
    Start (which waits meanwhile); a newer grid lets the older checks go; a wrong one is shown
    beside the row that lists it and in the summary, and Start writes nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(model_sizes, "CHECK_TIMEOUT_S", 600)  # (superseded, never timed out)
    (tmp_path / "good.py").write_text(NET)
    (tmp_path / "bad.py").write_text(NET.replace("nn.Linear(4, num_classes)", "nn.Linear(4, 7)"))
    (tmp_path / "loop.py").write_text("while True:\n    pass\n")
    settings = SweepSettings(texts={"dataset": "shapes", "epochs": "1"})
    app = CnnTuiApp("sweep", settings, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SweepFormScreen)
        screen.query_one("#sweep-grid", Input).value = "model=simple-cnn,loop.py:Net"
        await wait_until(pilot, lambda: bool(model_sizes._CHECKS), what="the check's child")
        looping = next(iter(model_sizes._CHECKS))
        summary = screen.query_one("#form-summary", Static)
        assert "checking loop.py:Net" in str(summary.render())
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: any("still checking loop.py:Net" in n.message for n in app._notifications),
        )
        assert not (tmp_path / "runs").exists()  # Start waited
        screen.query_one("#sweep-grid", Input).value = "model=simple-cnn,bad.py:Net"
        await wait_until(pilot, lambda: looping.poll() is not None, what="superseded: killed")
        await wait_until(pilot, lambda: "bad.py" in screen.plan_error, what="the problem")
        assert "bad.py:11: Net outputs 2×7 for 2 images, expected 2×10" in screen.plan_error
        assert "bad.py:11: Net outputs" in reason(screen, "sweep-grid")
        assert "bad.py:11: Net outputs" in str(summary.render())
        assert screen.plan is None and screen.query_one("#start").disabled
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (tmp_path / "runs").exists()
        # the list in the model field: the same check, its line beside the field
        screen.query_one("#sweep-grid", Input).value = ""
        screen._set_widget("model", "good.py:Net,bad.py:Net")
        screen.validate_form()
        await wait_until(pilot, lambda: screen.plan is not None or "model" in screen.errors)
        assert "bad.py:11: Net outputs" in reason(screen, "model")
        screen._set_widget("model", "simple-cnn,good.py:Net")
        screen.validate_form()
        await wait_until(
            pilot, lambda: str(summary.render()).startswith("✓ sweep of 2 runs"), what="checked"
        )
        assert screen.plan is not None and not screen.query_one("#start").disabled
        (tmp_path / "soft.py").write_text(SOFTMAX)  # probabilities: a warning, Start stays
        screen._set_widget("model", "simple-cnn,soft.py:Net")
        screen.validate_form()
        await wait_until(pilot, lambda: "returns probabilities" in reason(screen, "model"))
        assert screen.plan is not None and not screen.query_one("#start").disabled


@run_async
async def test_switching_to_the_sweep_form_mid_check_lets_only_the_old_forms_check_go(
    tmp_path, monkeypatch
) -> None:
    """ctrl+g while the form checks your class: the form left kills its own check, not the one
    the sweep form it opened started (which then answered never, "checking" for good)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(2)\n" + NET)
    settings = TrainFormSettings(texts={"model": "slow.py:Net", "dataset": "shapes"})
    app = CnnTuiApp("train", settings, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(model_sizes._CHECKS), what="the check's child")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepFormScreen))
        screen = app.screen
        await wait_until(pilot, lambda: "params, all trained" in reason(screen, "model"))


@run_async
async def test_the_runs_list_asks_before_cloning_a_run_of_your_own_class(
    own_run, monkeypatch
) -> None:
    run, marker = own_run
    monkeypatch.setenv("OWN_MODEL_MARKER", str(marker))
    marker.unlink(missing_ok=True)
    app = CnnTuiApp(runs_dir=run.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_screen("runs")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await wait_until(pilot, lambda: app.screen.current_run() is not None, what="the run")
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("escape")  # not trusted: said so, nothing of the file runs
        await wait_until(
            pilot,
            lambda: any("press k again to be asked again" in n.message for n in app._notifications),
        )
        assert not marker.exists() and not isinstance(app.screen, TrainFormScreen)
        await pilot.press("k")  # asked again; trusted, the form opens with the run's settings
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainFormScreen))
