"""Flags of `cnn-tui bench` (argparse only: building the parser must not import torch)."""

from __future__ import annotations

import argparse

BENCH_DATASETS = ("shapes", "fashion-mnist", "cifar10")
BENCH_MODELS = ("simple-cnn", "the3-cnn", "custom-cnn", "resnet18", "fast-cnn", "airbench-cnn")
# what `--models` measures by default: the seeds' models, resnet18 at its two sizes
DEFAULT_MODELS = "simple-cnn,the3-cnn,custom-cnn,resnet18@32,resnet18@224"
QUICK_MODELS = "simple-cnn,the3-cnn"
FINETUNES = ("all", "layer4", "head")
SIZE_RANGE = (8, 512)


def parse_model_spec(text: str) -> tuple[str, int | None]:
    """'resnet18@224' -> ('resnet18', 224); 'simple-cnn' -> ('simple-cnn', None): native size."""
    name, _, size_text = text.strip().partition("@")
    if name not in BENCH_MODELS:
        raise argparse.ArgumentTypeError(
            f"unknown model {name!r}; valid models: {', '.join(BENCH_MODELS)} "
            "(append @SIZE for an image size, e.g. resnet18@224)"
        )
    if not size_text:
        return name, None
    try:
        size = int(size_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad image size in {text!r}: expected NAME@PIXELS, e.g. resnet18@224"
        ) from None
    low, high = SIZE_RANGE
    if not low <= size <= high:
        raise argparse.ArgumentTypeError(f"image size in {text!r} must be {low} to {high}")
    return name, size


def model_list(text: str) -> list[tuple[str, int | None]]:
    specs = [part for part in text.split(",") if part.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("expected a comma-separated list of models")
    return [parse_model_spec(part) for part in specs]


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to measure")
    what.add_argument(
        "--dataset",
        choices=BENCH_DATASETS,
        default="shapes",
        help="images to train on (default: shapes, generated, works offline)",
    )
    what.add_argument(
        "--data-dir", metavar="DIR", help="folder with the data set files (fashion-mnist, cifar10)"
    )
    what.add_argument(
        "--models",
        type=model_list,
        metavar="LIST",
        default=None,
        help=f"comma list of NAME[@SIZE] (default: {DEFAULT_MODELS}; --quick: {QUICK_MODELS})",
    )
    what.add_argument(
        "--finetune",
        choices=FINETUNES,
        default=None,
        help="what trains in resnet18 (default: all for speed runs; head for --whole-run, "
        "where the frozen-backbone feature cache applies)",
    )
    what.add_argument(
        "--whole-run",
        action="store_true",
        help="time whole runs instead: `cnn-tui train --no-ui` against the seed-style script, "
        "each a fresh process, start-up, validation and test pass included",
    )
    what.add_argument(
        "--epochs", type=_count(1), default=1, help="epochs of each --whole-run (default: 1)"
    )
    what.add_argument(
        "--limit",
        type=_count(10),
        default=None,
        help="use at most this many training images (val and test shrink alike)",
    )
    what.add_argument(
        "--startup",
        action="store_true",
        help="time start-up instead: `cnn-tui --help`, the home screen painted, import torch",
    )
    how = parser.add_argument_group("settings")
    how.add_argument(
        "--batch-size",
        type=_count(2),
        default=None,
        metavar="N",
        help="training batch (default: 128; 32 with --whole-run or --quick)",
    )
    how.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    how.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    how.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="engine: mixed precision on CUDA for inputs of 64 px and more (default: on)",
    )
    how.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="engine: channels_last on the CPU, and on CUDA from 64 px (default: on)",
    )
    how.add_argument(
        "--workers",
        type=_count(0),
        default=None,
        help="DataLoader worker processes of the seed-style loop (default: os.cpu_count())",
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--batches", type=_count(1), default=None, help="timed batches per repeat (default: 20)"
    )
    timing.add_argument(
        "--warmup", type=_count(0), default=None, help="untimed batches first (default: 3)"
    )
    timing.add_argument(
        "--repeats", type=_count(1), default=None, help="timed repeats, median quoted (default: 3)"
    )
    timing.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run for CI: small models, few batches, one repeat less",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the results as JSON to FILE (no FILE: print JSON instead of the table)",
    )
