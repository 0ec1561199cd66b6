"""Flags of `cnn-tui bench`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    raise NotImplementedError  # filled in by the performance work (issue 6)
