"""`cnn-tui sweep`: a grid of training settings as runs, compared in a table."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.training.runs import sweeps

    sweeps.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.no_ui or args.stop:  # sweep --stop is headless only
        from cnn_tui.training.runs.sweeps import run_sweep

        return run_sweep(args)
    from cnn_tui.training.runs.sweeps import check_tui_args

    check_tui_args(args)  # a bad grid or sweep folder: one line, exit 2, before the app
    return tui.open_app("sweep", args, runs_dir=args.runs_dir)
