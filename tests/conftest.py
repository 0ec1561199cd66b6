"""Shared pytest fixtures and settings for the whole suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root directory (holds pyproject.toml, assets/ and cnn_tui/)."""
    return REPO_ROOT


@pytest.fixture(autouse=True)
def own_config_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test has its own empty XDG_CONFIG_HOME: none reads or writes the real
    ~/.config/cnn-tui (the user's lessons folder), in-process or in a child it starts."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread; on a busy 2-core box extra threads just spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- waiting: the one way a test waits for something to happen ---------------------------------
# A condition is polled until it holds; a time-out is a failure bound, never a measurement, and
# fails naming what was awaited (and, with `shown`, what there was instead).


def wait_for(
    condition: Callable[[], object],
    timeout: float = 120.0,
    what: str = "",
    *,
    shown: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> None:
    """Block until `condition()` is true (a process, a file, a tmux pane)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f":\n{shown()}" if shown is not None else ""
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what or condition}{detail}"
            )
        time.sleep(interval)


async def wait_until(
    pilot: Any, condition: Callable[[], object], timeout: float = 60.0, what: str = ""
) -> None:
    """Let a Textual app run under `pilot` until `condition()` is true, then one more pause so
    what the condition saw is drawn."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await pilot.pause(0.05)
    await pilot.pause()


@pytest.fixture
def no_checks(monkeypatch):
    """Lesson screens open without their background check against PyTorch (a test of the board
    needs no torch); `pytestmark = pytest.mark.usefixtures("no_checks")` in a lesson test file."""
    from cnn_tui.ui.lessons.stepping import SteppingScreen

    monkeypatch.setattr(SteppingScreen, "run_checks_default", False)


def text_of(widget: Any) -> str:
    """The plain text a Static-like widget shows."""
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)
