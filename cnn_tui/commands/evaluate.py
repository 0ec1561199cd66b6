"""`cnn-tui eval RUN`: recompute a run's test metrics from its checkpoint."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import tool_flags as tool_args

    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to evaluate")
    tool_args.add_device_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from cnn_tui.training.headless import run_eval

        return run_eval(args)
    from cnn_tui.training.runs.store import check_evaluable

    check_evaluable(args.run_dir)  # no such run / no checkpoint: one line, exit 2, no app
    return tui.open_app("eval", args, runs_dir=args.runs_dir)
