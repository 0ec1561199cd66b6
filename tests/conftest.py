"""Shared pytest fixtures and settings for the whole suite."""

from __future__ import annotations

import asyncio
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


async def press_quickly(pilot: Any, *keys: str) -> None:
    """Press `keys` in order as a user does, each once the app has drawn the last: without
    `pilot.press`'s waits for the process to look idle (at least 40 ms a key, 70 ms on a busy
    box), so a walk of 200 steps takes 2 s, not 14.

    Each key goes to the app as `pilot.press` sends it (textual's `App._press_keys`); then the
    screen settles before the next (`settle`): its messages handled, its layout and repaint
    done, and the callbacks waiting for that refresh run (a lesson screen fits its board after
    the refresh). Not for a screen that is playing (a timer redraws it: it never settles), nor
    to wait for a thread worker (`app.workers.wait_for_complete()` does)."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        try:
            char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        app.post_message(event)
        await settle(pilot)
        await app.animator.wait_until_complete()  # (a field scrolled into view)
        await settle(pilot)
    await pilot.pause()


async def settle(pilot: Any) -> None:
    """Until nothing is pending: the app's and the screen's messages handled (what a widget
    posts the screen when it goes idle included), the screen laid out and repainted, and what
    waited for that refresh run. A deterministic `pilot.pause()` without its sleeps; it relies
    on textual's internals (`Screen._on_timer_update`, the pending flags of each node)."""
    quiet = 0
    for _ in range(200):
        await pilot._wait_for_screen()
        screen = pilot.app.screen
        if (
            screen._layout_required
            or screen._scroll_required
            or screen._repaint_required
            or screen._dirty_widgets
            or screen._callbacks
        ):
            quiet = 0
            screen._on_timer_update()  # (what the screen's update timer does)
        elif any(_pending(node) for node in (pilot.app, *screen.walk_children(with_self=True))):
            quiet = 0
            await asyncio.sleep(0)
        else:
            quiet += 1
            if quiet == 2:  # (twice: a message posted while the first look ran is seen)
                return
    raise AssertionError("the screen kept changing")


def _pending(node: Any) -> bool:
    """Whether a node has messages queued or a refresh its idle handler has not passed on."""
    return (
        not node._message_queue.empty()
        or getattr(node, "_layout_required", False)
        or getattr(node, "_repaint_required", False)
        or getattr(node, "_scroll_required", False)
    )


def then_press(run_before: Callable[[Any], Any], keys: list[str]) -> Callable[[Any], Any]:
    """A snapshot's `run_before` that then presses `keys` with `press_quickly` (snap_compare's
    own `press=` waits for the process to look idle after every key)."""

    async def run(pilot: Any) -> None:
        await run_before(pilot)
        await press_quickly(pilot, *keys)

    return run


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
