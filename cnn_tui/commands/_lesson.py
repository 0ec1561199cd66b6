"""`cnn-tui conv` and `cnn-tui pool`: one lesson command for either op, and the printing of a
lesson's trace (`--no-ui`) that `cnn-tui net` shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO

from cnn_tui.commands import lesson_flags, tui

Write = Callable[[str], None]

# Plain-ASCII stand-ins for the symbols a trace writes, for a terminal or pipe whose encoding
# lacks them.
ASCII = str.maketrans(
    {
        "·": "*",
        "→": "->",
        "⌊": "floor(",
        "⌋": ")",
        "Σ": "sum ",
        "−": "-",
        "×": "x",
        "∂": "d",
        "∞": "inf",
        "°": " deg",
        "Δ": "diff",
    }
)
# the network's symbols beside the conv trace's
NET_ASCII = {**ASCII, ord("′"): "'", ord("α"): "alpha", ord("ᵀ"): "^T"}


def run_lesson(args: argparse.Namespace) -> int:
    """`cnn-tui conv|pool`: the lesson screen of the example the flags ask for, or its trace."""
    from cnn_tui.lessons.examples import example_from_settings

    settings = lesson_flags.settings_from_args(args)
    example = example_from_settings(settings)  # a bad flag combination: a one-line usage error
    if args.no_ui:
        from cnn_tui.lessons.trace import write_trace

        return print_trace(
            lambda write: write_trace(
                example, write, backward=settings.backward, summary=settings.summary
            ),
            ASCII,
        )
    return tui.open_app(settings.op, settings, runs_dir=args.runs_dir)


def print_trace(write_trace: Callable[[Write], None], symbols: dict[int, str]) -> int:
    """Print a trace to stdout line by line as `write_trace` writes it; with ASCII stand-ins
    (`symbols`) where stdout's encoding lacks a symbol. A closed pipe ends it quietly."""
    try:
        write_trace(_writer(sys.stdout, symbols))
        sys.stdout.flush()
    except BrokenPipeError:  # `cnn-tui conv --no-ui | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _writer(stream: TextIO, symbols: dict[int, str]) -> Write:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "".join(chr(code) for code in symbols).encode(encoding)
        plain = False
    except (UnicodeEncodeError, LookupError):
        plain = True

    def write(line: str) -> None:
        stream.write((line.translate(symbols) if plain else line) + "\n")

    return write
