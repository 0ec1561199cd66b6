"""`cnn-tui pool`: step through naive pooling, forward and backward."""

from __future__ import annotations

import argparse

from cnn_tui.commands._lesson import add_lesson_arguments, run_lesson


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lesson_arguments(parser, "pool")


run = run_lesson
