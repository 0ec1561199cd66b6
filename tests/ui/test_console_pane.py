"""The run screen's Console tab (ui/training/console.py): the trainer's output.log followed live,
escaped, scrollable, at 80×24 and 120×40; a finished run's, and an older run's without one."""

from __future__ import annotations

from conftest import wait_until
from textual.widgets import Static
from train_ui_fixtures import run_async, write_run

from cnn_tui.training.runs.store import OUTPUT_LOG
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import screen_keys
from cnn_tui.ui.training.console import ConsoleLog, ConsoleView
from cnn_tui.ui.training.dashboard import RunScreen
from cnn_tui.ui.training.dialogs import confirm
from cnn_tui.ui.training.results import ResultsScreen

HOSTILE = (
    b"run dir: somewhere\n"
    b"\x1b]0;owned\x07title set? \x1b[2Jscreen wiped? \x1b[31mred\x1b[0m\n"
    b"bad \xff, lone esc \x1b\n"
    b"/model.py:3: UserWarning: odd\n"
)


def log_lines(screen) -> list[str]:
    return [strip.text for strip in screen.query_one(ConsoleLog).lines]


def where_line(screen) -> str:
    return str(screen.query_one("#console-where", Static).render())


@run_async
async def test_console_follows_a_live_run_escaped_and_stays_put_when_scrolled_up(tmp_path):
    run = write_run(tmp_path / "live", "running")
    log = run / OUTPUT_LOG
    log.write_bytes(HOSTILE)
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = RunScreen(run, live=True)
        await app.push_screen(screen)
        await pilot.press("6")
        view = screen.query_one(ConsoleView)
        await wait_until(pilot, lambda: view.shown_lines == 4, 10, "the file's lines")
        lines = log_lines(screen)
        assert lines[:3] == [
            "run dir: somewhere",
            "title set? screen wiped? red",
            "bad \ufffd, lone esc \\x1b",
        ]
        assert not any(ch in "".join(lines) for ch in "\x1b\x07\x9b")
        assert app.focused is screen.query_one(ConsoleLog)  # its keys work at once
        keys = dict(screen_keys(screen))
        assert keys["end"] == "Follow" and keys["pgup"].startswith("Page up")  # in the ? page
        assert where_line(screen).startswith("following the output · ")
        assert where_line(screen).endswith("output.log")  # (cut from the left to fit)
        assert len(where_line(screen)) <= 80
        assert screen.query_one(ConsoleLog).size.height >= 8  # room for the output at 80×24

        with log.open("a") as handle:  # the trainer prints on
            handle.write("".join(f"epoch line {n}\n" for n in range(40)))
        await wait_until(pilot, lambda: "epoch line 39" in log_lines(screen), 10, "new lines")
        console = screen.query_one(ConsoleLog)
        await wait_until(pilot, lambda: console.is_vertical_scroll_end, 10, "at the end")

        await pilot.press("pageup")
        await wait_until(pilot, lambda: "scrolled up" in where_line(screen), 10, "scrolled up")
        held = console.scroll_y
        with log.open("a") as handle:
            handle.write("while scrolled up\n")
        await wait_until(pilot, lambda: "while scrolled up" in log_lines(screen), 10, "a line")
        await pilot.pause(0.2)
        assert console.scroll_y == held  # the user's place is kept
        await pilot.press("end")
        await wait_until(pilot, lambda: "following" in where_line(screen), 10, "following")

        # covered by another screen, it reads nothing (polling.ShownPoller)
        assert view.poller is not None and view.poller.running
        app.push_screen(RunScreen(run, live=False))
        await wait_until(pilot, lambda: not view.poller.running, 10, "paused")
        app.pop_screen()
        await wait_until(pilot, lambda: view.poller.running, 10, "polling again")
        app.push_screen(confirm("?", "a dialog leaves it in view", "ok"))
        await pilot.pause(0.2)
        assert view.poller.running


@run_async
async def test_console_of_finished_and_older_runs_at_120x40(tmp_path):
    done = write_run(tmp_path / "done")
    (done / OUTPUT_LOG).write_bytes(HOSTILE + b"L" * 100 + b"\nlast line without its line feed")
    old = write_run(tmp_path / "old")  # trained before every run kept output.log
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(done)
        await app.push_screen(screen)
        await pilot.press("6")
        view = screen.query_one(ConsoleView)
        await wait_until(pilot, lambda: view.shown_lines == 6, 10, "the file's lines")
        assert log_lines(screen)[-1] == "last line without its line feed"  # (over: it counts)
        assert where_line(screen) == f"6 lines · {done / OUTPUT_LOG}"
        assert view.poller is None  # a finished run is read once
        assert screen.query_one(ConsoleLog).size.height >= 20
        assert len(log_lines(screen)) == 6  # the long line fits 120 columns ...
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: len(log_lines(screen)) == 7, 10, "wrapped again")
        assert log_lines(screen)[4].rstrip() == "L" * len(log_lines(screen)[4].rstrip())
        await pilot.press("w")  # kept whole (a table stays a table), scrolled with ← →
        await wait_until(pilot, lambda: len(log_lines(screen)) == 6, 10, "unwrapped")
        assert log_lines(screen)[4] == "L" * 100 and "not wrapped (w)" in where_line(screen)
        await pilot.resize_terminal(120, 40)

        app.pop_screen()
        older = RunScreen(old, live=False)
        await app.push_screen(older)
        await pilot.press("6")
        empty = older.query_one("#console-empty", Static)
        await wait_until(pilot, lambda: empty.display, 10, "the empty word")
        assert "this run kept no console output" in str(empty.render())
        assert not older.query_one(ConsoleLog).display
