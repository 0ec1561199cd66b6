"""Flags of `cnn-tui train`, generated from the training config's fields (one source of truth)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    raise NotImplementedError  # filled in by the training-engine work (issue 4)
