"""`cnn-tui net`: step through a whole tiny network, forward, loss, backward and one SGD step."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.lessons import args as lesson_args

    lesson_args.add_net_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from cnn_tui.lessons.net_trace import run_net_trace

        return run_net_trace(args)
    from cnn_tui.lessons.network import net_example_from_args

    net_example_from_args(args)  # a bad example or label: a one-line usage error
    return tui.open_app("net", args, runs_dir=args.runs_dir)
