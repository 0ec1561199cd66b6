"""`cnn-tui export RUN`: the run's model as TorchScript, torch.export or ONNX, headless."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.training.tools import export

    export.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.export import run_export

    return run_export(args)
