"""`cnn-tui inspect RUN`: one image through a trained run's network (the Inside screen)."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import tool_flags as tool_args

    tool_args.add_inspect_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from cnn_tui.training.tools.inspect import run_inspect

        return run_inspect(args)
    from cnn_tui.training.tools.inspect import check_args

    check_args(args)  # a missing run folder or image file: one line, exit 2, before the app
    return tui.open_app("inspect", args, runs_dir=args.runs_dir)
