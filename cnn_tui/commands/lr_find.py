"""`cnn-tui lr-find`: the learning-rate range test, headless."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.training.tools import lr_find

    lr_find.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.lr_find import run_lr_find

    return run_lr_find(args)
