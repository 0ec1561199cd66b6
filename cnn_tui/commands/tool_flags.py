"""The flags shared by the commands that run a saved run's model (`eval`, `inspect`, `predict`,
`export`; `train --resume` takes --trust-model-code too)."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device of the tools that run a saved model (training takes its own from TrainConfig)."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


TRUST_HELP = (
    "run the model code a run keeps (a run of your own --model FILE.py:Class): a run folder "
    "never runs code by itself; read RUN/model_source.py first"
)


def add_trust_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--trust-model-code: Hugging Face's trust_remote_code convention for a run's own code."""
    parser.add_argument("--trust-model-code", action="store_true", help=TRUST_HELP)
