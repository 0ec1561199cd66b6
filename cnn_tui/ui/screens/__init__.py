"""Screens of the app, one module each; `open_screen_for` maps a subcommand to its screen."""

from __future__ import annotations

import argparse

from textual.screen import Screen


def open_screen_for(command: str, args: argparse.Namespace | None) -> Screen:
    """Build the screen for a subcommand; modules are imported on demand to keep start-up fast."""
    if command in ("conv", "pool"):
        from cnn_tui.ui.screens.lesson import LessonScreen

        return LessonScreen.from_args(command, args)
    if command == "train":
        from cnn_tui.ui.screens.train_form import TrainFormScreen

        return TrainFormScreen.from_args(args)
    if command == "runs":
        from cnn_tui.ui.screens.runs import RunsScreen

        return RunsScreen.from_args(args)
    if command == "eval":
        from cnn_tui.ui.screens.results import ResultsScreen

        return ResultsScreen.from_args(args)
    raise ValueError(f"no screen for {command!r}")
