"""`cnn-tui pool`: step through naive pooling, forward and backward."""

from __future__ import annotations

import argparse

from cnn_tui.commands import lesson_flags
from cnn_tui.commands._lesson import run_lesson


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lesson_flags.add_arguments(parser, "pool")
    lesson_flags.add_export_frames_arguments(parser)


run = run_lesson
