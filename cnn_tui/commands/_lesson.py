"""`cnn-tui conv` and `cnn-tui pool`: one lesson command for either op, and the printing of a
lesson's trace (`--no-ui`) that `cnn-tui net` shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cnn_tui.commands import lesson_flags, output, tui
from cnn_tui.errors import UsageError
from cnn_tui.text import one_line

Write = Callable[[str], None]


def run_lesson(args: argparse.Namespace) -> int:
    """`cnn-tui conv|pool`: the lesson screen of the example the flags ask for, or its trace."""
    from cnn_tui.lessons.examples import example_from_settings

    if args.list_examples:
        return print_examples(args.command)
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
    return tui.open_app(settings.op, settings, runs_dir=args.run_folders)


def print_examples(op: str) -> int:
    """`--list-examples`: the examples of op by name (shipped, then the user's), a user file
    that cannot be opened by name with the reason, and where the user's folder is."""
    from cnn_tui.lessons.library import list_lessons, user_lessons_dir

    found = [info for info in list_lessons(op) if info.op == op or info.source != "shipped"]
    rows = [
        (info.name, info.source, info.problem or info.title)
        for info in found
        if info.op == op or info.problem.startswith("broken")
    ]
    output.say(*output.table(("name", "source", "title"), rows))
    try:
        folder = str(user_lessons_dir())
    except UsageError as exc:
        folder = f"none ({exc})"
    output.say(
        "",
        f"yours: {one_line(folder)} (save one from the lesson's edit form: e, then F2)",
        f"open one: cnn-tui {op} --example NAME, or --example PATH.toml for a file anywhere",
    )
    return 0


def print_trace(write_trace: Callable[[Write], None]) -> int:
    """Print a trace to stdout line by line as `write_trace` writes it. Where stdout's encoding
    lacks a symbol (∂, Σ, ·), it is written in ASCII (`streams.SPELLINGS`: "dL/dx", "sum ", "*");
    a closed pipe ends it quietly (`cli.main`)."""
    write_trace(lambda line: sys.stdout.write(line + "\n"))
    return 0


def run_layer_lesson(args: argparse.Namespace) -> int:
    """`cnn-tui batchnorm|dropout`: the lesson screen of the flags' example, or its trace."""
    from cnn_tui.commands import layer_flags
    from cnn_tui.lessons.layer_lesson import layer_example_from_settings

    if args.list_examples:
        return print_examples(args.command)
    settings = layer_flags.settings_from_args(args)
    frames = lesson_flags.frame_export_from_args(args)
    example = layer_example_from_settings(settings)  # a bad combination: a one-line usage error
    if frames is not None:
        return tui.export_frames(settings.op, settings, frames)
    if args.no_ui:
        from cnn_tui.lessons.layer_trace import write_layer_trace

        return print_trace(
            lambda write: write_layer_trace(
                example, write, backward=settings.backward, summary=settings.summary
            )
        )
    return tui.open_app(settings.op, settings, runs_dir=args.run_folders)
