"""The Textual application: a thin layer over the UI-free core.

`run_app(args)` opens the screen the command line asked for: the home screen for plain
`cnn-tui`, a lesson for `cnn-tui conv|pool|net`, the training form for `cnn-tui train`, the runs
screen for `cnn-tui runs`, the results of one run for `cnn-tui eval RUN_DIR`.
"""

from __future__ import annotations

import argparse
import sys

from textual.app import App
from textual.screen import Screen

from cnn_tui.errors import UsageError
from cnn_tui.ui.home import HomeScreen


class CnnTuiApp(App[int]):
    """cnn-tui's application object; screens are pushed on top of the home screen."""

    CSS_PATH = "app.tcss"
    TITLE = "cnn-tui"
    SUB_TITLE = "convolutional networks in the terminal"

    def __init__(self, args: argparse.Namespace | None = None) -> None:
        super().__init__()
        self.args = args if args is not None else argparse.Namespace(command=None)

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        command = getattr(self.args, "command", None)
        if command is not None:
            self.open_screen(command, self.args)

    def open_screen(self, command: str, args: argparse.Namespace | None = None) -> None:
        """Push the screen of one subcommand ("conv", "pool", "net", "train", "runs", "eval")."""
        self.push_screen(open_screen_for(command, args))

    # --- training: quitting while a run trains asks to stop it or leave it running
    async def action_quit(self) -> None:
        from cnn_tui.ui.training.dialogs import quit_or_ask

        await quit_or_ask(self)


def open_screen_for(command: str, args: argparse.Namespace | None) -> Screen:
    """Build the screen for a subcommand; modules are imported on demand to keep start-up fast."""
    if command in ("conv", "pool"):
        from cnn_tui.ui.lessons.screen import LessonScreen

        return LessonScreen.from_args(command, args)
    if command == "net":
        from cnn_tui.ui.lessons.network import NetworkScreen

        return NetworkScreen.from_args(args)
    if command == "train":
        from cnn_tui.ui.training.form import TrainFormScreen

        return TrainFormScreen.from_args(args)
    if command == "runs":
        from cnn_tui.ui.training.runs import RunsScreen

        return RunsScreen.from_args(args)
    if command == "eval":
        from cnn_tui.ui.training.results import ResultsScreen

        return ResultsScreen.from_args(args)
    if command == "sweep":
        from cnn_tui.ui.training.sweep import sweep_screen_for

        return sweep_screen_for(args)
    if command == "inspect":
        from cnn_tui.ui.training.inside import InspectScreen

        return InspectScreen.from_args(args)
    raise ValueError(f"no screen for {command!r}")


def run_app(args: argparse.Namespace) -> int:
    if getattr(args, "command", None) in ("conv", "pool"):
        from cnn_tui.lessons.examples import example_from_args

        example_from_args(args)  # a bad flag combination: a one-line usage error, not a crash
    if getattr(args, "command", None) == "net":
        from cnn_tui.lessons.network import net_example_from_args

        net_example_from_args(args)  # a bad example or label: a one-line usage error
    if getattr(args, "command", None) == "sweep":
        from cnn_tui.training.runs.sweeps import check_tui_args

        check_tui_args(args)  # a bad grid or sweep folder: one line, exit 2, before the app
    if getattr(args, "command", None) == "eval":
        from cnn_tui.training.runs.store import check_evaluable

        check_evaluable(args.run_dir)  # no such run / no checkpoint: one line, exit 2, no app
    if getattr(args, "command", None) == "inspect":
        from cnn_tui.training.tools.inspect import check_args

        check_args(args)  # a missing run folder or image file: one line, exit 2, before the app
    check_terminal(getattr(args, "command", None))
    result = CnnTuiApp(args).run()
    return result if isinstance(result, int) else 0


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
