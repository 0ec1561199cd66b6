"""A refresh timer that runs only while its screen can be seen.

The runs screen lists every run folder every two seconds and the home screen's banner every three;
with 100 runs that cost 5-7 % of a core while they were hidden behind a dashboard. `ShownPoller`
pauses the timer when another screen covers its screen (a modal dialog on top leaves it visible,
so polling goes on) and resumes it when the screen shows again, refreshing at once so what comes
back into view is not stale. (While the app is suspended with ctrl+z its process is stopped:
no timer runs.) The measurement is in
docs/performance/tools-and-startup.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget


def screen_shown(widget: Widget) -> bool:
    """Whether `widget`'s screen is on view: the top screen, or under modal dialogs only."""
    stack = widget.app.screen_stack
    try:
        index = stack.index(widget.screen)
    except ValueError:  # (not in the current mode's stack)
        return False
    return all(isinstance(screen, ModalScreen) for screen in stack[index + 1 :])


class ShownPoller:
    """Calls `refresh` every `interval` seconds while `owner`'s screen is shown (`start` it in
    `owner.on_mount`); `running` says whether the timer runs."""

    def __init__(self, owner: Widget, interval: float, refresh: Callable[[], Any]) -> None:
        self.owner, self.interval, self.refresh = owner, interval, refresh
        self.timer: Timer | None = None

    def start(self) -> None:
        self.timer = self.owner.set_interval(self.interval, self.refresh)
        self.owner.app.screen_change_signal.subscribe(self.owner, self._changed)
        self._changed()

    @property
    def running(self) -> bool:
        # (Textual's Timer keeps its pause as an unset event and has no public reading of it)
        return self.timer is not None and self.timer._active.is_set()

    def _changed(self, _screen: object = None) -> None:
        if self.timer is None or not self.owner.is_attached:
            return
        shown = screen_shown(self.owner)
        if shown and not self.running:
            self.timer.resume()
            self.refresh()  # (what comes back into view is read again at once)
        elif not shown and self.running:
            self.timer.pause()
