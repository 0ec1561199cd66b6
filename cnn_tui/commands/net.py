"""`cnn-tui net`: step through a whole tiny network, forward, loss, backward and an SGD or Adam
step, for a few training steps."""

from __future__ import annotations

import argparse

from cnn_tui.commands import lesson_flags, tui
from cnn_tui.commands._lesson import print_examples, print_trace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lesson_flags.add_net_arguments(parser)
    lesson_flags.add_export_frames_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.lessons.network import net_example_from_settings

    if args.list_examples:
        return print_examples("net")
    settings = lesson_flags.net_settings_from_args(args)
    frames = lesson_flags.frame_export_from_args(args)
    example = net_example_from_settings(settings)  # a bad example or label: a one-line error
    if frames is not None:
        return tui.export_frames("net", settings, frames)
    if args.no_ui:
        from cnn_tui.lessons.net_trace import write_net_trace

        return print_trace(lambda write: write_net_trace(example, write, summary=settings.summary))
    return tui.open_app("net", settings, runs_dir=args.run_folders)
