"""Flags that describe a conv or pool lesson example, shared by the lesson screen and `--no-ui` trace.

The limits and defaults live here, beside the flags, so `cnn-tui conv --help`, the trace and the
TUI lesson screen (through `cnn_tui.lessons.examples.build_example`) apply the same numbers. This module
only uses the standard library: the CLI imports it to build its parser.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from cnn_tui.assets import assets_dir

Pair = tuple[int, int]


@dataclass(frozen=True)
class LessonLimits:
    """Largest lesson examples. Every step is kept and redrawn, so the arrays stay small."""

    max_size: int = 16  # input height and width
    max_channels: int = 4
    max_filters: int = 4
    max_batch: int = 2
    max_kernel: int = 16
    max_stride: int = 8
    max_padding: int = 4
    max_seed: int = 2**32 - 1
    max_steps: int = 20_000  # scalar steps in one phase (forward, grad weight, ...)


LIMITS = LessonLimits()

# The example a bare `cnn-tui conv` / `cnn-tui pool` shows. Pool stride None = the kernel size.
DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {
        "height": 5,
        "width": 5,
        "channels": 1,
        "filters": 1,
        "batch": 1,
        "kernel": (3, 3),
        "stride": (1, 1),
        "padding": (0, 0),
        "seed": 0,
    },
    "pool": {
        "height": 4,
        "width": 4,
        "channels": 1,
        "batch": 1,
        "kernel": (2, 2),
        "stride": None,
        "pool_type": "max",
        "seed": 0,
    },
}

POOL_TYPES = ("max", "avg")

# Flag names (argparse dests) that `build_example` takes as keyword arguments.
EXAMPLE_PARAMS = (
    "example",
    "height",
    "width",
    "channels",
    "filters",
    "batch",
    "kernel",
    "stride",
    "padding",
    "pool_type",
    "seed",
)


def parse_int(text: str | int, name: str, low: int, high: int) -> int:
    """A whole number in [low, high]; ValueError with a one-line reason otherwise."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


_PAIR_RE = re.compile(r"^\s*(-?\d+)\s*(?:[x×,]\s*(-?\d+)\s*)?$")


def parse_pair(text: str | int | Pair, name: str, low: int, high: int) -> Pair:
    """`3` -> (3, 3), `3x2` -> (3, 2) (height × width), each in [low, high]."""
    if isinstance(text, tuple):
        return (parse_int(text[0], name, low, high), parse_int(text[1], name, low, high))
    match = _PAIR_RE.match(str(text))
    if match is None:
        raise ValueError(f"{name} must be a number or HxW like 3x2, got {text!r}")
    height = parse_int(match.group(1), name, low, high)
    width = parse_int(match.group(2), name, low, high) if match.group(2) else height
    return height, width


def example_names(op: str) -> list[str]:
    """Names of the lesson files under assets/lessons/ for op ("conv" or "pool"), sorted.

    Reads only each file's `op` key; `cnn_tui.lessons.examples.list_examples` gives titles as well.
    """
    try:
        folder = assets_dir() / "lessons"
    except FileNotFoundError:
        return []
    names = []
    for path in sorted(folder.glob("*.toml")):
        try:
            with path.open("rb") as handle:
                if tomllib.load(handle).get("op") == op:
                    names.append(path.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue  # a broken file is reported when it is used, not in --help
    return names


def _int_type(name: str, low: int, high: int):
    def convert(text: str) -> int:
        try:
            return parse_int(text, name, low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _pair_type(name: str, low: int, high: int):
    def convert(text: str) -> Pair:
        try:
            return parse_pair(text, name, low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def add_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """Add the example flags of `cnn-tui conv` (op="conv") or `cnn-tui pool` (op="pool").

    Flags left out stay None, so `cnn_tui.lessons.examples.example_from_args` can tell "not given" from
    the defaults (an --example fixes the input; only stride, padding and the like override it).
    """
    if op not in DEFAULTS:
        raise ValueError(f"op must be 'conv' or 'pool', got {op!r}")
    lim, default = LIMITS, DEFAULTS[op]
    if op == "conv":
        sizes = (
            f"channels and filters at most {lim.max_channels}, batch at most {lim.max_batch}, "
            f"stride at most {lim.max_stride}, padding at most {lim.max_padding}"
        )
    else:
        sizes = f"channels at most {lim.max_channels}, stride at most {lim.max_stride}"
    parser.epilog = (
        f"Limits: input at most {lim.max_size}x{lim.max_size}, {sizes}, and at most "
        f"{lim.max_steps:,} steps per phase: the lesson keeps every step so you can step back "
        "and forth, and the trace stays readable. Random values are drawn from --seed as "
        "one-decimal numbers in [-2, 2]."
    )
    names = ", ".join(example_names(op)) or "none installed"
    size = parser.add_argument_group("example")
    size.add_argument(
        "--example",
        metavar="NAME",
        help=(
            f"a hand-made example ({names}); it fixes the input, so only "
            + ("stride, padding" if op == "conv" else "kernel, stride, type")
            + " and seed can be changed"
        ),
    )
    size.add_argument(
        "--height",
        type=_int_type("height", 1, lim.max_size),
        help=f"input height (default {default['height']})",
    )
    size.add_argument(
        "--width",
        type=_int_type("width", 1, lim.max_size),
        help=f"input width (default {default['width']})",
    )
    size.add_argument(
        "--channels",
        type=_int_type("channels", 1, lim.max_channels),
        help="input channels C (default 1)",
    )
    if op == "conv":
        size.add_argument(
            "--filters",
            type=_int_type("filters", 1, lim.max_filters),
            help="filters F, the output channels (default 1)",
        )
        size.add_argument(
            "--batch",
            type=_int_type("batch", 1, lim.max_batch),
            help="images in the batch N (default 1)",
        )
    size.add_argument(
        "--kernel",
        metavar="K|HxW",
        type=_pair_type("kernel", 1, lim.max_kernel),
        help=f"kernel size, e.g. 3 or 3x2 (height x width; default {default['kernel'][0]})",
    )
    size.add_argument(
        "--stride",
        metavar="S|HxW",
        type=_pair_type("stride", 1, lim.max_stride),
        help="step between windows, e.g. 2 or 2x1 (default "
        + ("1)" if op == "conv" else "the kernel size: windows do not overlap)"),
    )
    if op == "conv":
        size.add_argument(
            "--padding",
            metavar="P|HxW",
            type=_pair_type("padding", 0, lim.max_padding),
            help="zeros added on each side, e.g. 1 or 1x0 (default 0)",
        )
    else:
        size.add_argument(
            "--type",
            dest="pool_type",
            choices=POOL_TYPES,
            help="max or average pooling (default max)",
        )
    size.add_argument(
        "--seed",
        type=_int_type("seed", 0, lim.max_seed),
        help=(
            "seed of the random values and of the upstream gradient (default 0; an example's "
            "own upstream gradient is used unless --seed is given)"
        ),
    )
    show = parser.add_argument_group("trace (with --no-ui)")
    show.add_argument(
        "--backward",
        action="store_true",
        help="also run the backward pass: upstream gradient, gradient steps, gradient check",
    )
    show.add_argument(
        "--summary",
        action="store_true",
        help="count the steps per phase and per output cell instead of printing each step",
    )
