"""Opening the TUI from a command: the one place a command hands over to `cnn_tui.ui`."""

from __future__ import annotations

import sys
from typing import Any

from cnn_tui.errors import UsageError


def check_terminal(command: str | None) -> None:
    """A usage error unless stdin and stdout are a terminal: without one the app can neither draw
    nor read keys, and would wait for ever (`cnn-tui eval RUN > out.txt` in a script)."""
    streams = {"stdin": sys.stdin, "stdout": sys.stdout}
    missing = [name for name, stream in streams.items() if stream is None or not stream.isatty()]
    if missing:
        what, fix = (f"cnn-tui {command}", "add --no-ui") if command else ("cnn-tui", "see --help")
        raise UsageError(
            f"{what} needs a terminal ({' and '.join(missing)} not one): run it in a terminal, "
            f"or {fix} for the headless command"
        )


def open_app(command: str | None, settings: Any, runs_dir: str = "runs") -> int:
    """Run the app on the screen of `command` (the home screen for None), built from `settings`
    (the command's typed settings, already checked)."""
    check_terminal(command)
    from cnn_tui.ui.app import CnnTuiApp

    result = CnnTuiApp(command, settings, runs_dir=runs_dir).run()
    return result if isinstance(result, int) else 0
