"""The CPU the TUI spends on a runs list hidden behind a dashboard (opt-in measurement).

    CNN_TUI_MEASURE=1 python -m pytest -s tests/ui/test_hidden_polling_cpu.py

writes 100 finished runs, opens the runs screen and on top of it a finished run's dashboard (a
pilot app at 120×40), then measures the share of one core the process uses over
CNN_TUI_MEASURE_SECONDS (default 20): once as the app is (the hidden list's timer paused,
`polling.ShownPoller`) and once with the pausing switched off (the list polls every two seconds,
as before), alternately, CNN_TUI_MEASURE_ROUNDS (default 2) rounds each. It prints both; the
figures are in docs/performance/tools-and-startup.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import pytest
from conftest import wait_until
from train_ui_fixtures import write_run

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training import polling
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.runs import RunsScreen

pytestmark = pytest.mark.skipif(
    os.environ.get("CNN_TUI_MEASURE") != "1", reason="a measurement: set CNN_TUI_MEASURE=1"
)
RUNS = 100


async def core_share(runs_dir, seconds: float) -> float:
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        runs = RunsScreen(runs_dir)
        app.push_screen(runs)
        await wait_until(pilot, lambda: len(runs.runs) == RUNS, 120)
        dashboard = DashboardScreen(runs.runs[0].path)
        app.push_screen(dashboard)
        await wait_until(pilot, lambda: dashboard.state == "finished", 120)
        await pilot.pause(3.0)  # (the dashboard's first drawing done)
        cpu, wall = time.process_time(), time.monotonic()
        await pilot.pause(seconds)
        return (time.process_time() - cpu) / (time.monotonic() - wall)


def test_cpu_of_a_hidden_runs_list(tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    for index in range(RUNS):
        write_run(
            runs_dir / f"20261206-{110000 + index:06d}-simple-cnn-shapes", started=1e9 + index
        )
    seconds = float(os.environ.get("CNN_TUI_MEASURE_SECONDS", "20"))
    rounds = int(os.environ.get("CNN_TUI_MEASURE_ROUNDS", "2"))
    paused, polling_on = [], []
    shown = polling.screen_shown
    for _ in range(rounds):
        monkeypatch.setattr(polling, "screen_shown", shown)
        paused.append(asyncio.run(core_share(runs_dir, seconds)))
        monkeypatch.setattr(polling, "screen_shown", lambda widget: True)  # the old behaviour
        polling_on.append(asyncio.run(core_share(runs_dir, seconds)))
    print(
        json.dumps(
            {
                "runs": RUNS,
                "seconds": seconds,
                "hidden_list_paused_core_share": round(statistics.median(paused), 4),
                "hidden_list_polling_core_share": round(statistics.median(polling_on), 4),
                "each": {"paused": paused, "polling": polling_on},
            }
        )
    )
