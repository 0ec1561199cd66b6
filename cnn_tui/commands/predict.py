"""`cnn-tui predict RUN IMAGE|FOLDER...`: a trained run's top-k classes, headless."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import tool_flags as tool_args

    tool_args.add_predict_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.predict import run_predict

    return run_predict(args)
