"""End to end: the installed `cnn-tui conv` in a real terminal (tmux), driven by keys.

Polls the pane until the expected text shows (with a timeout) instead of sleeping; skipped when
tmux is not installed. Uses its own tmux server socket so it never touches other sessions.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

CNN_TUI = Path(sys.executable).parent / "cnn-tui"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not CNN_TUI.exists(), reason="cnn-tui is not installed in this venv"),
]


class Tmux:
    """One detached tmux session on a private server socket."""

    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.socket = f"cnn-tui-lesson-{os.getpid()}"
        self.session = "lesson"
        self._tmux(
            "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command
        )

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        result = self._tmux("capture-pane", "-p", "-t", self.session, check=False)
        return result.stdout if result.returncode == 0 else ""

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", self.session, check=False).returncode == 0

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The pane's text once `text` shows in it."""
        wait_for(lambda: text in self.screen(), timeout, repr(text), shown=self.screen)
        return self.screen()

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def test_conv_lesson_steps_switches_to_backward_and_quits() -> None:
    command = f"{shlex.quote(str(CNN_TUI))} conv --padding 1 --channels 2 --seed 3"
    tmux = Tmux(command)
    try:
        screen = tmux.wait_for("step 0 / 475")
        assert "x_pad[c=0] input, padded" in screen
        tmux.send("Right", "Right", "Right")
        screen = tmux.wait_for("step 3 / 475")
        assert "out[0,0] += x_pad[c=0, 0,1]·w[c=0, 0,1]" in screen
        assert "[" in screen and "]" in screen  # the highlighted cells are bracketed
        tmux.send("]")
        tmux.wait_for("step 19 / 475")
        tmux.send("b")
        screen = tmux.wait_for("conv2d · backward · db")
        assert "dout = ∂L/∂out, upstream" in screen
        tmux.send("p")  # from db's start: dW's start, before its first step
        tmux.wait_for("backward · dW: 450 steps, none run yet")
        # the checks ran in a worker of the real app: PyTorch (when installed) and numerics
        tmux.wait_for("finite differences: rel. error", timeout=60)
        if importlib.util.find_spec("torch") is not None:
            tmux.wait_for("PyTorch: max |Δ|", timeout=90)
        tmux.send("C-q")
        wait_for(lambda: not tmux.alive(), 15, "cnn-tui to quit on ctrl+q")
    finally:
        tmux.close()


def test_network_lesson_steps_forward_backward_update_and_quits() -> None:
    tmux = Tmux(f"{shlex.quote(str(CNN_TUI))} net", width=80, height=24)
    try:
        screen = tmux.wait_for("all 0 / 1150")
        assert "forward: x → [conv] → ReLU" in screen
        tmux.send("Right", "Right")
        screen = tmux.wait_for("all 2 / 1150")
        assert "z1[f=0, 0,0] += x[0,0]·w1[f=0, 0,0]" in screen
        tmux.send("b")
        screen = tmux.wait_for("backward · softmax-CE · dz2")
        assert "∂L/∂z2 = p − y" in screen
        tmux.send("b")
        tmux.wait_for("update · SGD · w1")
        tmux.send("b")
        tmux.wait_for("L = 0.795 → L′ = 0.0542")
        tmux.wait_for("finite differences: ", timeout=60)
        tmux.send("C-q")
        wait_for(lambda: not tmux.alive(), 15, "cnn-tui to quit on ctrl+q")
    finally:
        tmux.close()
