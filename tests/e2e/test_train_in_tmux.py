"""End to end in a real terminal (tmux): a run started from the TUI outlives the terminal.

Start `cnn-tui train ... --start` in a tmux session, wait until the run trains, kill the session
(the terminal goes away: SIGHUP to everything in it), check the run still finishes, then open
`cnn-tui runs` in a new session and find it listed as finished. Skipped without tmux.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    """A private tmux server (its own socket), so the test never touches the user's sessions."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
        )
        return result.stdout

    def start(self, name: str, command: str) -> None:
        self("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name, check=False)


def unwrapped(screen: str) -> str:
    """A captured screen as one line: a long path wrapped over two lines reads whole again."""
    return "".join(line.strip() for line in screen.splitlines())


def status_of(runs_dir: Path) -> tuple[Path | None, str]:
    from cnn_tui.training.runs.store import read_status

    for run in sorted(runs_dir.glob("*/")):
        status = read_status(run)
        if status:
            return run, str(status.get("status"))
    return None, ""


def test_run_survives_closing_the_terminal(tmp_path) -> None:
    runs_dir = tmp_path / "runs"
    tmux = Tmux(f"cnn-tui-e2e-{os.getpid()}")
    app = f"{shlex.quote(sys.executable)} -m cnn_tui --runs-dir {shlex.quote(str(runs_dir))}"
    # one torch thread, as cli_process.ENV gives every child: on a busy 2-core box a second
    # thread spins (the run trained 18 times slower: 183 img/s, not 3,353)
    env = f"cd {shlex.quote(str(tmp_path))} && TERM=xterm-256color OMP_NUM_THREADS=1 "
    train = (
        "train --dataset shapes --model simple-cnn --limit 1500 --batch-size 50 --epochs 2 "
        "--device cpu --start"
    )
    try:
        tmux.start("train", env + f"{app} {train}")
        wait_for(lambda: status_of(runs_dir)[1] == "running", 90, "the run to start")
        run, _ = status_of(runs_dir)
        wait_for(lambda: "running" in tmux.screen("train"), 30, "the dashboard")
        tmux("kill-session", "-t", "train")  # the terminal goes away

        wait_for(lambda: status_of(runs_dir)[1] != "running", 180, "the run to finish")
        assert status_of(runs_dir)[1] == "finished", (run / "output.log").read_text()[-2000:]

        tmux.start("runs", env + f"{app} runs")
        wait_for(
            # (the name is in the cursor row's line under the table, which may wrap)
            lambda: (
                run.name in unwrapped(tmux.screen("runs")) and "finished" in tmux.screen("runs")
            ),
            30,
            "the runs screen to list the run",
            shown=lambda: tmux.screen("runs"),
        )
    finally:
        tmux("kill-server", check=False)
