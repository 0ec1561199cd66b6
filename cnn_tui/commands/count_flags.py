"""Whole-number flags with a bound: every count a command takes says its range in its --help.

`add_count` adds such a flag (`bench --batches`, `predict --top`, `train --nnodes`, ...): the
range goes into the help text and a number outside it is argparse's one-line usage error (exit
2), before any work. `with_bounds` puts a range into a help text; the training settings' flags
(`train_flags`, bench's, reference_loop's) state their `Field.bounds` with it, so a number flag
never goes without its documented bound.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def with_bounds(help: str, bounds: str) -> str:
    """`help` with `bounds` ("1 to 20") first in its closing parenthesis, or in one of its own:
    "passes (default: 5)" -> "passes (1 to 20; default: 5)"."""
    if not bounds:
        return help
    if help.endswith(")") and "(" in help:
        depth = 0
        for i in range(len(help) - 1, -1, -1):  # the "(" that the last ")" closes
            depth += {")": 1, "(": -1}.get(help[i], 0)
            if depth == 0:
                return f"{help[: i + 1]}{bounds}; {help[i + 1 :]}"
    return f"{help} ({bounds})"


def count_type(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type=`: a whole number from `low` to `high`; else a one-line reason."""

    def parse(text: str) -> int:
        try:
            number = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {number}")
        return number

    parse.__name__ = "count"
    return parse


def add_count(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *names: str,
    low: int,
    high: int,
    help: str,
    bounds: str = "",
    **kwargs: Any,
) -> argparse.Action:
    """A whole-number flag from `low` to `high` (`bounds`: the range in other words, when the
    true upper bound is only known later, such as the size of a test split)."""
    kwargs.setdefault("metavar", "N")
    return parser.add_argument(
        *names,
        type=count_type(low, high),
        help=with_bounds(help, bounds or f"{low} to {high}"),
        **kwargs,
    )
