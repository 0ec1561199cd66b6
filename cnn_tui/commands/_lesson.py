"""`cnn-tui conv` and `cnn-tui pool`: one lesson command for either op."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_lesson_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    from cnn_tui.lessons import args as lesson_args

    lesson_args.add_arguments(parser, op)


def run_lesson(args: argparse.Namespace) -> int:
    from cnn_tui.lessons.examples import example_from_args

    if args.no_ui:
        from cnn_tui.lessons.trace import run_trace

        return run_trace(args)
    example_from_args(args)  # a bad flag combination: a one-line usage error, not a crash
    return tui.open_app(args.command, args, runs_dir=args.runs_dir)
