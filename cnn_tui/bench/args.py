"""Flags of `cnn-tui bench` (argparse only: building the parser must not import torch).

The flags that mean a `cnn-tui train` setting (--dataset, --finetune, --epochs, --limit,
--batch-size, --lr, --device, --amp, --channels-last) take their choices, parsing and limits from
`cnn_tui.training.config.FIELDS`: `settings_from_args` parses them after argparse, as `cnn-tui
train` does, so a bad value is the same one-line usage error (exit 2). Bench keeps its own
defaults where a benchmark wants other ones (`SETTING_DEFAULTS`).
"""

from __future__ import annotations

import argparse
from typing import Any

from cnn_tui.errors import UsageError
from cnn_tui.training.config import DATASETS, FIELDS, FINETUNES, MODELS, coerce_field, parse_field

# imagefolder needs the user's own folder: bench sticks to data sets it can generate or download
BENCH_DATASETS = tuple(name for name in DATASETS if name != "imagefolder")
BENCH_MODELS = MODELS
# the training settings bench flags stand for -> bench's default (None: decided by the mode)
SETTING_DEFAULTS: dict[str, Any] = {
    "epochs": 1,
    "limit": None,
    "batch_size": None,
    "lr": FIELDS["lr"].default,
    "device": FIELDS["device"].default,
}
MIN_BATCH_SIZE = 2
# what `--models` measures by default: the seeds' models, the fast preset's fast-cnn, resnet18 at
# its two sizes, resnet50 and vgg16 at 32 px (at 224 px a CPU takes minutes per repeat for them:
# ask for resnet50@224,vgg16@224)
DEFAULT_MODELS = (
    "simple-cnn,the3-cnn,custom-cnn,fast-cnn,resnet18@32,resnet18@224,resnet50@32,vgg16@32"
)
QUICK_MODELS = "simple-cnn,the3-cnn"
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


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flags in `SETTING_DEFAULTS`, parsed and checked by their training setting's Field."""
    settings = {}
    for name, default in SETTING_DEFAULTS.items():
        value = getattr(args, name, None)
        if value is None:
            settings[name] = default
        elif isinstance(value, str):
            settings[name] = parse_field(name, value)
        else:
            settings[name] = coerce_field(name, value)
    batch = settings["batch_size"]
    if batch is not None and batch < MIN_BATCH_SIZE:
        raise UsageError(f"--batch-size must be at least {MIN_BATCH_SIZE} for bench, got {batch}")
    return settings


def _setting_flag(group: argparse._ArgumentGroup, name: str, help: str) -> None:
    """A flag for training setting `name`, given as text (parsed by `settings_from_args`)."""
    field = FIELDS[name]
    metavar = {int: "N", float: "X"}.get(field.kind, name.upper())
    group.add_argument(field.flag, dest=name, metavar=metavar, default=None, help=help)


def _switch(group: argparse._ArgumentGroup, name: str, help: str) -> None:
    """An on/off flag for the boolean training setting `name`, with its default."""
    default = FIELDS[name].default
    group.add_argument(
        FIELDS[name].flag,
        dest=name,
        action=argparse.BooleanOptionalAction,
        default=default,
        help=f"{help} (default: {'on' if default else 'off'})",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to measure")
    what.add_argument(
        "--dataset",
        choices=BENCH_DATASETS,
        default=FIELDS["dataset"].default,
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
        help="what trains in a pretrained model (default: all for speed runs; head for "
        "--whole-run, where the frozen-backbone feature cache applies)",
    )
    what.add_argument(
        "--whole-run",
        action="store_true",
        help="time whole runs instead: `cnn-tui train --no-ui` against the seed-style script, "
        "each a fresh process, start-up, validation and test pass included",
    )
    _setting_flag(
        what, "epochs", f"epochs of each --whole-run (default: {SETTING_DEFAULTS['epochs']})"
    )
    _setting_flag(
        what, "limit", "use at most this many training images (val and test shrink alike)"
    )
    what.add_argument(
        "--features",
        action="store_true",
        help="time the tools around training instead: a run on 1 and on 2 processes "
        "(--devices 2), a sweep of 2 runs against the same runs one by one, inspect, each a "
        "fresh process (the first of --models; default simple-cnn)",
    )
    what.add_argument(
        "--startup",
        action="store_true",
        help="time start-up instead: `cnn-tui --help`, the home screen painted, import torch",
    )
    how = parser.add_argument_group("settings")
    _setting_flag(
        how, "batch_size", "training batch (default: 128; 32 with --whole-run or --quick)"
    )
    _setting_flag(how, "lr", f"Adam learning rate (default: {SETTING_DEFAULTS['lr']:g})")
    _setting_flag(how, "device", FIELDS["device"].help)
    _switch(how, "amp", f"engine: {FIELDS['amp'].help}")
    _switch(how, "channels_last", f"engine: {FIELDS['channels_last'].help}")
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
