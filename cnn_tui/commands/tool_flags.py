"""The flag shared by the commands that run a saved run's model (`eval`, `inspect`, `predict`)."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device of the tools that run a saved model (training takes its own from TrainConfig)."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
