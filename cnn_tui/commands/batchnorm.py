"""`cnn-tui batchnorm`: step through naive batch normalisation, forward and backward."""

from __future__ import annotations

import argparse

from cnn_tui.commands import layer_flags
from cnn_tui.commands._lesson import run_layer_lesson


def add_arguments(parser: argparse.ArgumentParser) -> None:
    layer_flags.add_arguments(parser, "batchnorm")


run = run_layer_lesson
