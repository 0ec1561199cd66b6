"""The runs list as a user with many runs needs it: two runs started minutes apart told apart at
80×24 and 120×40 (names keep their time, start times their seconds), no polling while
another screen covers the list (the timer's state, not the CPU), and the runs of several run
folders (`--runs-dir` repeated or a glob) in one list, with their folder and host."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import wait_until
from rich.text import Text
from train_ui_fixtures import STARTED, run_async, write_run

from cnn_tui import text
from cnn_tui.training.runs.folders import RunFolders, resolve_run_folders
from cnn_tui.training.system import devices
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import HelpPage
from cnn_tui.ui.training import runs as runs_screen
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.dialogs import ChoiceModal
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.runs import CompareScreen, RunsScreen, legend_names

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


@run_async
async def test_the_detail_line_says_finished_once_and_a_stop_s_reason(tmp_path) -> None:
    """The trainer writes "finished" as a finished run's message: the detail said it on a
    line of its own under "finished · started …"; a stopped run's reason is still shown."""
    runs_dir = tmp_path / "runs"
    finished = write_run(runs_dir / "a-finished", message="finished")
    write_run(runs_dir / "b-stopped", state="stopped", message="stopped by the user")
    status = json.loads((finished / "status.json").read_text())
    assert status["message"] == "finished"
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = RunsScreen(runs_dir)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.runs) == 2)
        details = {}
        for _ in range(2):
            run = screen.current_run()
            await wait_until(
                pilot,
                lambda run=run: str(run.path) in str(screen.query_one("#runs-detail").render()),
            )
            details[run.path.name] = str(screen.query_one("#runs-detail").render()).splitlines()
            await pilot.press("down")
        assert len(details["a-finished"]) == 1, details
        assert details["a-finished"][0].startswith("finished · started")
        assert details["b-stopped"][1:] == ["stopped by the user"]


def on_fashion_mnist(run: Path) -> Path:
    """The run written by `write_run` (shapes) made a run on fashion-mnist."""
    config = run / "config.toml"
    config.write_text(config.read_text().replace('"shapes"', '"fashion-mnist"'))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    started = json.loads(lines[0])
    started["config"]["dataset"] = "fashion-mnist"
    (run / "metrics.jsonl").write_text("\n".join([json.dumps(started), *lines[1:]]) + "\n")
    return run


@run_async
async def test_at_80x24_a_cut_text_ends_in_an_ellipsis_and_the_table_fits(tmp_path) -> None:
    runs_dir = tmp_path / "runs"
    on_fashion_mnist(write_run(runs_dir / FIRST, state="finished"))
    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = RunsScreen(runs_dir)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.runs) == 1)
        assert screen.runs[0].dataset == "fashion-mnist"
        table = screen.query_one("#runs-table")
        assert table.virtual_size.width <= table.size.width  # nothing cut by the screen's edge
        for column in ("model", "dataset"):
            shown = cells(screen, column)[0]
            full = {"model": "simple-cnn", "dataset": "fashion-mnist"}[column]
            assert shown == full or ("…" in shown and len(shown) < len(full)), shown


def test_a_cut_own_model_keeps_its_class_and_other_cells_their_ends():
    from cnn_tui.ui.training.runs import cut_cell

    own = "the3_student_cnn.py:StudentCNN"
    assert cut_cell("model", own, 12) == "…:StudentCNN"
    assert cut_cell("model", own, 7) == "…entCNN"
    assert cut_cell("model", own, len(own)) == own
    assert cut_cell("model", "simple-cnn", 7) == cut_cell("dataset", "simple-cnn", 7) == "sim…cnn"


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
async def test_the_runs_list_stops_polling_while_another_screen_covers_it(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(runs_screen, "REFRESH_S", 0.25)  # (two intervals waited: 0.5 s, not 4)
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
        await pilot.pause(2 * runs_screen.REFRESH_S + 0.5)  # two of its intervals
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


# --- several run folders ------------------------------------------------------------------------

OTHER_HOST = "gpu-node-7"


def two_project_folders(root) -> RunFolders:
    """proj-a/runs and proj-b/runs (relative to `root`, the current folder) with runs that
    alternate in time between them, one training on OTHER_HOST; a third --runs-dir glob matches
    nothing (a warning)."""
    a, b = root / "proj-a" / "runs", root / "proj-b" / "runs"
    write_run(a / FIRST, started=STARTED)
    write_run(b / SECOND, started=STARTED + 106)
    remote = write_run(
        a / "20261206-113000-simple-cnn-fashion-mnist", state="running", started=STARTED + 900
    )
    status = json.loads((remote / "status.json").read_text())
    (remote / "status.json").write_text(json.dumps({**status, "host": OTHER_HOST}))
    return resolve_run_folders(["*/runs", "old-*/runs"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@run_async
async def test_runs_of_two_folders_in_one_list(tmp_path, monkeypatch, size) -> None:
    monkeypatch.chdir(tmp_path)
    folders = two_project_folders(tmp_path)
    app = CnnTuiApp(runs_dir=folders)
    async with app.run_test(size=size) as pilot:
        app.open_screen("runs")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.runs) == 3)
        # newest first across the folders, each with its folder's short name
        assert cells(screen, "folder") == ["proj-a", "proj-b", "proj-a"]
        names = cells(screen, "name")
        for stamp, name in zip(("113000", "112231", "112045"), names, strict=True):
            assert stamp in name
        table = screen.query_one("#runs-table")
        assert table.virtual_size.width <= table.size.width  # nothing cut at the right
        summary = str(screen.query_one("#runs-summary").render())
        assert "3 runs in 2 folders" in summary and "new runs go into proj-a" in summary
        assert "'old-*/runs' matches no folder" in summary
        assert screen.sub_title == "runs in 2 folders"
        # the run on the other machine says where: its host column, or the line under the table
        hosts = cells(screen, "host")
        detail = str(screen.query_one("#runs-detail").render())
        assert hosts[0] == OTHER_HOST if hosts else f"running on {OTHER_HOST}" in detail
        assert str(Path("proj-a/runs/20261206-113000")) in detail


@run_async
async def test_open_compare_and_delete_a_run_of_the_second_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = CnnTuiApp(runs_dir=two_project_folders(tmp_path))
    second = Path("proj-b/runs") / SECOND
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_screen("runs")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.runs) == 3)
        table = screen.query_one("#runs-table")
        table.move_cursor(row=table.get_row_index(str(second)))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen))
        assert app.screen.run_dir == second
        app.pop_screen()
        await pilot.press("space")  # marked; the cursor moves to the next run (of proj-a)
        await pilot.press("space", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert app.screen.run_dirs == [second, Path("proj-a/runs") / FIRST]
        app.pop_screen()
        table.move_cursor(row=table.get_row_index(str(second)))
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: len(screen.runs) == 2)
        assert not second.exists() and Path("proj-b/runs").is_dir()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_runs_of_two_folders_snapshot(snap_compare, tmp_path, monkeypatch, size) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")  # start times in local time
    time.tzset()
    app = CnnTuiApp(runs_dir=two_project_folders(tmp_path))

    async def listed(pilot) -> None:
        app.open_screen("runs")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await wait_until(pilot, lambda: len(app.screen.runs) == 3)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=listed)


@run_async
async def test_a_hostile_folder_name_from_a_glob_is_shown_escaped(tmp_path, monkeypatch) -> None:
    """--runs-dir refuses a control character, but a glob may match a folder that has one."""
    monkeypatch.chdir(tmp_path)
    hostile = "p\x1b[31m[b]x"
    write_run(tmp_path / hostile / "runs" / FIRST, started=STARTED)
    write_run(tmp_path / "plain" / "runs" / SECOND, started=STARTED + 60)
    folders = resolve_run_folders(["*/runs"])
    assert folders.paths[0] == Path(hostile, "runs")  # (sorted: "p\x1b" before "plain")
    app = CnnTuiApp(runs_dir=folders)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_screen("runs")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.runs) == 2)
        escaped = text.one_line(hostile)
        assert cells(screen, "folder") == ["plain", escaped]
        summary = str(screen.query_one("#runs-summary").render())
        assert f"new runs go into {escaped}" in summary and "\x1b" not in summary
        table = screen.query_one("#runs-table")
        table.move_cursor(row=1)
        await pilot.pause()
        detail = str(screen.query_one("#runs-detail").render())
        assert escaped in detail and "\x1b" not in detail


@run_async
async def test_the_home_screen_names_a_run_in_progress_in_the_second_folder(tmp_path) -> None:
    first, second = tmp_path / "a" / "runs", tmp_path / "b" / "runs"
    first.mkdir(parents=True)
    write_run(second / "still-training", state="running")
    app = CnnTuiApp(runs_dir=resolve_run_folders([str(first), str(second)]))
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.screen.query_one("#home-runs")
        await wait_until(pilot, lambda: banner.display)
        assert "still-training" in str(banner.render())
        assert app.runs_dir == first  # where the form's Start puts a new run


def test_the_comparison_tells_runs_of_one_name_in_two_folders_apart():
    same = [Path("/a/proj-a/runs/try1"), Path("/b/proj-b/runs/try1"), Path("/a/proj-a/runs/x")]
    assert legend_names(same) == ["proj-a: try1", "proj-b: try1", "proj-a: x"]
    assert legend_names([Path("/a/runs/try1"), Path("/a/runs/try2")]) == ["try1", "try2"]
    assert legend_names([Path("/a/r/\x1b[2J"), Path("/b/r/\x1b[2J")])[0] == "a: \\x1b[2J"
