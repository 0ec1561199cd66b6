"""Flags of `cnn-tui eval`, `inspect` and `predict` (argparse only: building the parser for
`cnn-tui --help` must import neither numpy nor torch; their modules import both)."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device of the tools that run a saved model (training takes its own from TrainConfig)."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run directory to look inside")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--test-index", type=int, metavar="N", help="test image N of the run's test split"
    )
    which.add_argument("--image", metavar="FILE", help="an image file of your own")
    add_device_argument(parser)
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="with --no-ui: write probabilities, Grad-CAM maps and layer statistics ('-': stdout)",
    )


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run directory whose model predicts")
    parser.add_argument(
        "paths", metavar="IMAGE|FOLDER", nargs="+", help="image files, or folders of them"
    )
    parser.add_argument("--top", type=int, default=3, metavar="K", help="classes shown (3)")
    add_device_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")
