"""`cnn-tui runs`: the runs under --runs-dir."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from cnn_tui.training.headless import run_list

        return run_list(args)
    return tui.open_app("runs", args, runs_dir=args.runs_dir)
