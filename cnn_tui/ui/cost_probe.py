"""What the TUI itself costs while it shows a run: the probe `cnn-tui bench --tui` starts.

    python -m cnn_tui.ui.cost_probe CONFIG.json RUNS_DIR FINISHED_SECONDS [TABS]

A fresh process opens the app headless (Textual's test driver: everything is composed, laid out
and rendered, only the bytes for a terminal are dropped) at 120×40, opens the training form on
the settings in CONFIG.json (`TrainConfig.to_dict()`), waits until the form has detected the devices (that imports torch, which a user's
form has long done before Start), then presses Start (`ctrl+s`, the form's own path: the trainer
is its own process, `launcher.launch_run`). It times:

- `first_point_s`: Start until the dashboard's loss chart has its first point (and
  `first_batch_event_s`: until the trainer wrote its first batch event, from the event's clock);
- `following_core_share`: the CPU time of this process (every thread: the worker tailing the
  run's files included) over the wall time while the Charts tab (the one a run opens on) shows
  the live run: the share of one core the TUI takes from it; `following_tabs`: the same for the
  Charts, Metrics, System and Console tabs (or the comma list TABS of them, in its order), each
  shown for TAB_WINDOW_S of the run in turn (the last one until the run ends: a run shorter than
  that measures fewer tabs; TABS `charts`: the whole run on the Charts tab, as `bench --tui
  --pairs` follows it);
- `finished_core_share`: the same over FINISHED_SECONDS while the finished run's dashboard (its
  results tab) stays on screen.

It prints one JSON line (with the run's folder, `run_dir`). The trainer's own CPU is not in these
figures: it is another process.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the tabs a live run is followed on, each for TAB_WINDOW_S (the last one until the run ends)
TABS = ("charts", "metrics", "system", "console")
TAB_WINDOW_S = 10.0
POLL_S = 0.05  # how often the probe looks (the checks read attributes: no measurable cost)
TIMEOUT_S = 1800.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the probe waited {TIMEOUT_S:.0f} s for {what}")
        await asyncio.sleep(POLL_S)


def _has_point(screen: Any) -> bool:
    from cnn_tui.ui.training.charts import MetricChart

    charts = screen.query("#loss-chart")
    return any(
        isinstance(chart, MetricChart) and any(len(s.xs) for s in chart.series) for chart in charts
    )


def tab_key(screen: Any, tab: str) -> str:
    """The key that shows `tab` on the run screen, as its bindings say (pressed, as a user does)."""
    action = f"tab('{tab}')"
    return next(binding.key for binding in screen.BINDINGS if binding.action == action)


def _first_batch_time(run_dir: Path) -> float | None:
    from cnn_tui.training.runs.store import read_all_events

    for event in read_all_events(run_dir)[0]:
        if event.get("event") == "batch":
            return float(event["time"])
    return None


async def measure(
    config_file: Path, runs_dir: Path, finished_seconds: float, tabs: tuple[str, ...] = TABS
) -> dict[str, Any]:
    from cnn_tui.training.config import TrainConfig
    from cnn_tui.training.runs.state import OVER
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.form import TrainFormScreen

    config = TrainConfig.from_mapping(json.loads(config_file.read_text()))
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(TrainFormScreen(config))
        await pilot.pause()
        await app.workers.wait_for_complete()  # the form's device detection (imports torch)
        form = app.screen
        started_wall, started = time.time(), time.monotonic()
        await pilot.press("ctrl+s")
        await _until(lambda: app.screen is not form, "the dashboard to open")
        dashboard = app.screen
        await _until(lambda: _has_point(dashboard), "the first point on the loss chart")
        first_point_s = time.monotonic() - started
        windows: dict[str, dict[str, float]] = {}
        for tab in tabs:  # each tab a window of the live run, while it lasts
            if dashboard.state in OVER:
                break
            await pilot.press(tab_key(dashboard, tab))
            cpu, wall = time.process_time(), time.monotonic()
            last = tab == tabs[-1]
            deadline = math.inf if last else wall + TAB_WINDOW_S
            await _until(
                lambda deadline=deadline: dashboard.state in OVER or time.monotonic() > deadline,
                f"the {tab} tab's window",
            )
            seconds = time.monotonic() - wall
            windows[tab] = {"core_share": (time.process_time() - cpu) / max(seconds, 1e-9),
                            "seconds": seconds}  # fmt: skip
        charts = windows.get("charts", {})  # (none: the run ended with its first point)
        following, following_s = charts.get("core_share"), charts.get("seconds", 0.0)
        await _until(lambda: dashboard.summary is not None, "the results")
        await pilot.pause(1.0)  # the results tab drawn, the finished toast gone
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(finished_seconds)
        finished = (time.process_time() - cpu) / max(time.monotonic() - wall, 1e-9)
        first_batch = _first_batch_time(dashboard.run_dir)
        return {
            "state": str(dashboard.state),
            "first_point_s": first_point_s,
            "first_batch_event_s": None if first_batch is None else first_batch - started_wall,
            "following_core_share": following,
            "following_seconds": following_s,
            "following_tabs": windows,
            "finished_core_share": finished,
            "finished_seconds": finished_seconds,
            "run_dir": str(dashboard.run_dir),
        }


def main(argv: list[str]) -> int:
    config_file, runs_dir, finished_seconds = Path(argv[0]), Path(argv[1]), float(argv[2])
    tabs = tuple(argv[3].split(",")) if len(argv) > 3 else TABS
    unknown = [tab for tab in tabs if tab not in TABS]
    if unknown or not tabs:
        raise SystemExit(
            f"cost_probe: unknown tab(s) {', '.join(unknown)}; tabs: {', '.join(TABS)}"
        )
    result = asyncio.run(measure(config_file, runs_dir, finished_seconds, tabs))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
