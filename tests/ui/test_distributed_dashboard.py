"""The dashboard of a data-parallel run: the status line says how many processes train it."""

from __future__ import annotations

import json

from train_ui_fixtures import open_finished_run, run_async, status_line, write_run

from cnn_tui.training.runs import store as runs
from cnn_tui.ui.app import CnnTuiApp

SIZE = (120, 40)


@run_async
async def test_the_status_line_shows_the_world_size(tmp_path) -> None:
    run = write_run(tmp_path / "ddp")
    lines = (run / runs.EVENTS_FILE).read_text().splitlines()
    started = json.loads(lines[0])
    assert started["event"] == "run_started"
    started.update(world_size=2, backend="gloo", ranks=[{"rank": 0}, {"rank": 1}])
    (run / runs.EVENTS_FILE).write_text("\n".join([json.dumps(started), *lines[1:]]) + "\n")
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_finished_run(pilot, run)
        assert "CPU (2 threads) × 2 processes" in status_line(screen)
