"""The runs list as a user with many runs needs it: two runs started minutes apart told apart at
80×24 and 120×40 (names keep their time, start times their seconds), and no polling while
another screen covers the list (the timer's state, not the CPU)."""

from __future__ import annotations

import re
import time

import pytest
from conftest import wait_until
from rich.text import Text
from train_ui_fixtures import run_async, write_run

from cnn_tui import text
from cnn_tui.training.system import devices
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import HelpPage
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.runs import RunsScreen

FIRST, SECOND = (
    "20261206-112045-simple-cnn-fashion-mnist",
    "20261206-112231-simple-cnn-fashion-mnist",
)


@pytest.fixture(autouse=True)
def fixed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    monkeypatch.setattr(
        devices, "detect_devices", lambda: [devices.DeviceInfo("cpu", "CPU — 2 threads", "cpu")]
    )


def two_runs_two_minutes_apart(runs_dir, started: float) -> None:
    write_run(runs_dir / FIRST, state="finished", started=started)
    write_run(runs_dir / SECOND, state="finished", started=started + 106)


def cells(screen, column: str) -> list[str]:
    table = screen.query_one("#runs-table")
    if column not in table.columns:
        return []
    return [str(value) if not isinstance(value, Text) else value.plain
            for value in table.get_column(column)]  # fmt: skip


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@run_async
async def test_two_runs_started_minutes_apart_look_different(tmp_path, size) -> None:
    runs_dir = tmp_path / "runs"
    two_runs_two_minutes_apart(runs_dir, time.time() - 600)  # today: the times have seconds
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=size) as pilot:
        screen = RunsScreen(runs_dir)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.runs) == 2)
        names = cells(screen, "name")
        assert len(set(names)) == 2, names
        assert any("112045" in name for name in names) and any("112231" in n for n in names)
        started = cells(screen, "started")
        if started:  # (at 80 columns the start time goes under the table)
            assert len(set(started)) == 2 and all(
                re.fullmatch(r"\d\d:\d\d:\d\d", s) for s in started
            )
        else:
            detail = str(screen.query_one("#runs-detail").render())
            assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", detail), detail


def test_run_names_keep_the_time_that_tells_them_apart():
    for width in (14, 20, 30, 38):
        first, second = text.run_name(FIRST, width), text.run_name(SECOND, width)
        assert len(first) <= width and first != second
        assert "112045" in first and "112231" in second
    assert text.run_name(FIRST, 34) == "…112045-simple-cnn-fashion-mnist"
    assert text.run_name(FIRST, 20) == "…112045-…shion-mnist"
    assert text.run_name(FIRST, len(FIRST)) == FIRST
    # a name of the user's own is cut in the middle
    assert text.run_name("my-long-experiment-name", 12) == "my-lo…t-name"
    # a sweep's run: the run's own stamp
    assert "112045" in text.run_name(f"sweep-20261206-110000-lr/{FIRST}", 24)


def test_start_times_have_seconds_today_and_a_date_otherwise(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    now = 1_796_556_045.0  # 2026-12-06 11:20:45 UTC
    assert text.started(now - 106, now) == "11:18:59"
    assert text.started(now, now) == "11:20:45"
    assert text.started(now - 86_400, now) == "2026-12-05 11:20"
    assert text.started(None, now) == text.UNKNOWN
    assert text.timestamp(now) == "2026-12-06 11:20:45"


@run_async
async def test_the_runs_list_stops_polling_while_another_screen_covers_it(tmp_path) -> None:
    runs_dir = tmp_path / "runs"
    run = write_run(runs_dir / FIRST, state="running")
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.screen.query_one("#home-runs")
        await wait_until(pilot, lambda: banner.poller.timer is not None)
        assert banner.poller.running  # the home screen is shown
        screen = RunsScreen(runs_dir)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.runs) == 1)
        assert screen.poller.running and not banner.poller.running  # home is covered
        await app.push_screen(DashboardScreen(run))
        await wait_until(pilot, lambda: not screen.poller.running)
        assert not banner.poller.running
        listed = []
        screen.list_runs = lambda: listed.append(1)  # (no reading while hidden)
        await pilot.pause(2 * 2.0 + 0.5)  # two of its intervals
        assert listed == []
        app.pop_screen()  # back to the list: polling again, and read at once
        await wait_until(pilot, lambda: screen.poller.running and listed)
        # a modal dialog leaves the list in view: it goes on
        await app.push_screen(HelpPage([]))
        await pilot.pause()
        assert screen.poller.running
        app.pop_screen()
        app.pop_screen()  # home again
        await wait_until(pilot, lambda: banner.poller.running)
