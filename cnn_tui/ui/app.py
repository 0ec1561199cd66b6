"""The Textual application: a thin layer over the UI-free core.

`CnnTuiApp(command, settings)` opens the screen of a subcommand on top of the home screen: a
lesson for `cnn-tui conv|pool|net|batchnorm|dropout`, the training form for `cnn-tui train`, the runs screen for
`cnn-tui runs`, the results of one run for `cnn-tui eval RUN_DIR`, ... `settings` is what the
command's module in `cnn_tui.commands` made of its flags (checked before the app starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from cnn_tui.training.runs.folders import RunFolders
from cnn_tui.ui.home import HomeScreen


class CnnTuiApp(App[int]):
    """cnn-tui's application object; screens are pushed on top of the home screen."""

    CSS_PATH = "app.tcss"
    TITLE = "cnn-tui"
    SUB_TITLE = "convolutional networks in the terminal"
    # `?` on every screen (f1 where a text field takes `?`): its keys (cnn_tui/ui/help.py); a
    # lesson screen binds `?` itself, for its page with the notation
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),  # (listed on the ? pages)
    ]

    def __init__(
        self,
        command: str | None = None,
        settings: Any = None,
        *,
        runs_dir: RunFolders | str | Path = "runs",
    ) -> None:
        super().__init__()
        self.command = command
        self.settings = settings
        # the folders whose runs are listed (--runs-dir, repeated or a glob), and the first of
        # them, where new runs and sweeps go
        self.run_folders = RunFolders.of(runs_dir)
        self.runs_dir = self.run_folders.new_runs

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        if self.command is not None:
            self.open_screen(self.command, self.settings)

    def open_screen(self, command: str, settings: Any = None) -> None:
        """Push the screen of one subcommand ("conv", "pool", "net", "train", "runs", "eval")."""
        self.push_screen(open_screen_for(command, settings, runs_dir=self.run_folders))

    def action_help(self) -> None:
        """The `?` page of the screen on top (`cnn_tui.ui.help.help_page_for`)."""
        from cnn_tui.ui.help import help_page_for

        self.push_screen(help_page_for(self.screen))

    # --- training: quitting while a run trains asks to stop it or leave it running
    async def action_quit(self) -> None:
        from cnn_tui.ui.training.dialogs import quit_or_ask

        await quit_or_ask(self)


def open_screen_for(
    command: str, settings: Any, *, runs_dir: RunFolders | Path = Path("runs")
) -> Screen:
    """Build the screen for a subcommand from the settings its command made (None from the home
    screen: the defaults); modules are imported on demand to keep start-up fast. `runs_dir` is the
    app's run folders (--runs-dir)."""
    if command in ("conv", "pool"):
        from cnn_tui.lessons.settings import LessonSettings
        from cnn_tui.ui.lessons.screen import LessonScreen

        if settings is not None and not isinstance(settings, LessonSettings):
            from cnn_tui.ui.lessons.picture import PictureScreen

            return PictureScreen(settings)  # conv --image: the command's PictureLesson

        return LessonScreen.from_settings(
            settings if settings is not None else LessonSettings(command)
        )
    if command == "picture":  # the home screen's picture lesson: a picture that needs no file
        from cnn_tui.lessons.picture import (
            PictureSettings,
            build_picture_lesson,
            default_picture_spec,
        )
        from cnn_tui.ui.lessons.picture import PictureScreen

        return PictureScreen(build_picture_lesson(PictureSettings(default_picture_spec())))
    if command == "net":
        from cnn_tui.lessons.settings import NetSettings
        from cnn_tui.ui.lessons.network import NetworkScreen

        return NetworkScreen.from_settings(settings if settings is not None else NetSettings())
    if command in ("batchnorm", "dropout"):
        from cnn_tui.lessons.settings import LayerSettings
        from cnn_tui.ui.lessons.layers import LayerScreen

        return LayerScreen.from_settings(
            settings if settings is not None else LayerSettings(command)
        )
    if command == "train":
        from cnn_tui.ui.training.form import TrainFormScreen

        return TrainFormScreen.from_settings(settings)
    if command == "runs":
        from cnn_tui.ui.training.runs import RunsScreen

        return RunsScreen(runs_dir)
    if command == "eval":
        from cnn_tui.ui.training.results import ResultsScreen

        return ResultsScreen.from_settings(settings)
    if command == "sweep":
        from cnn_tui.ui.training.sweep import sweep_screen_for

        return sweep_screen_for(settings)
    if command == "inspect":
        from cnn_tui.ui.training.inside import InspectScreen

        return InspectScreen(settings)  # the command's InspectRequest
    raise ValueError(f"no screen for {command!r}")
