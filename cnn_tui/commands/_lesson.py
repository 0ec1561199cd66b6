"""`cnn-tui conv` and `cnn-tui pool`: one lesson command for either op, and the printing of a
lesson's trace (`--no-ui`) that `cnn-tui net` shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cnn_tui.commands import lesson_flags, tui

Write = Callable[[str], None]


def run_lesson(args: argparse.Namespace) -> int:
    """`cnn-tui conv|pool`: the lesson screen of the example the flags ask for, or its trace."""
    from cnn_tui.lessons.examples import example_from_settings

    settings = lesson_flags.settings_from_args(args)
    frames = lesson_flags.frame_export_from_args(args)
    example = example_from_settings(settings)  # a bad flag combination: a one-line usage error
    if frames is not None:
        return tui.export_frames(settings.op, settings, frames)
    if args.no_ui:
        from cnn_tui.lessons.trace import write_trace

        return print_trace(
            lambda write: write_trace(
                example, write, backward=settings.backward, summary=settings.summary
            )
        )
    return tui.open_app(settings.op, settings, runs_dir=args.runs_dir)


def print_trace(write_trace: Callable[[Write], None]) -> int:
    """Print a trace to stdout line by line as `write_trace` writes it. Where stdout's encoding
    lacks a symbol (∂, Σ, ·), it is written in ASCII (`streams.SPELLINGS`: "dL/dx", "sum ", "*");
    a closed pipe ends it quietly (`cli.main`)."""
    write_trace(lambda line: sys.stdout.write(line + "\n"))
    return 0
