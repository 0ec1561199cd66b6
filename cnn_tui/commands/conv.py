"""`cnn-tui conv`: step through a naive 2-D convolution, forward and backward."""

from __future__ import annotations

import argparse

from cnn_tui.commands import lesson_flags
from cnn_tui.commands._lesson import run_lesson


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lesson_flags.add_arguments(parser, "conv")
    lesson_flags.add_export_frames_arguments(parser)


run = run_lesson
