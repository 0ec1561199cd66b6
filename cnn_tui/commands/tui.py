"""Opening the TUI from a command: the one place a command hands over to `cnn_tui.ui` (and
runs a lesson screen headless for its slides, `export_frames`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from cnn_tui.errors import UsageError

if TYPE_CHECKING:
    from cnn_tui.lessons.slides import FrameExport
    from cnn_tui.training.runs.folders import RunFolders


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


def open_app(command: str | None, settings: Any, runs_dir: RunFolders | str = "runs") -> int:
    """Run the app on the screen of `command` (the home screen for None), built from `settings`
    (the command's typed settings, already checked); `runs_dir`: the run folders of the command
    line (`args.run_folders`), or one folder."""
    check_terminal(command)
    from cnn_tui.ui.app import CnnTuiApp

    result = CnnTuiApp(command, settings, runs_dir=runs_dir).run()
    return result if isinstance(result, int) else 0


def export_frames(command: str, settings: Any, export: FrameExport) -> int:
    """Write the slides of the lesson `command` (`--export-frames DIR`): its screen, built from
    `settings`, runs headless (no terminal needed); one line says what was written."""
    from cnn_tui.commands import output
    from cnn_tui.ui.app import open_screen_for
    from cnn_tui.ui.lessons.frames import export_frames as write_frames

    screen = open_screen_for(command, settings)
    frames = write_frames(screen, export, command)
    output.say(f"wrote {len(frames)} frames to {export.folder} (index.txt, frames.json)")
    return 0
