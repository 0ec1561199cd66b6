"""Flags that describe a conv or pool lesson example, shared by the lesson screen and `--no-ui` trace."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """Add the example flags of `cnn-tui conv` (op="conv") or `cnn-tui pool` (op="pool")."""
    raise NotImplementedError  # filled in by the naive-engine work (issue 2)
