"""`cnn-tui train`: the training form, or (--no-ui) a run trained in this process."""

from __future__ import annotations

import argparse

from cnn_tui.commands import tui


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import train_flags as train_args

    train_args.add_arguments(parser, node_flags=True)


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from cnn_tui.training.headless import run_train

        return run_train(args)
    return tui.open_app("train", args, runs_dir=args.runs_dir)
