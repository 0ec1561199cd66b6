"""The flags of `cnn-tui batchnorm` and `cnn-tui dropout`, and the typed settings they make:
one per setting, `--example` / `--list-examples` (lesson files, as conv's) and the slides flags
(`--export-frames`, `lesson_flags.add_export_frames_arguments`).

Built from the lessons' table of settings (`cnn_tui.lessons.settings.LAYER_SETTINGS`, its limits
and defaults), so the flags accept and reject what `build_layer_example` does; the parsed flags
become a `LayerSettings`, which is all the core and the screens see.
"""

from __future__ import annotations

import argparse

from cnn_tui.commands.lesson_flags import (
    _add_list_flag,
    _flag_type,
    add_export_frames_arguments,
)
from cnn_tui.lessons.settings import (
    LAYER_DEFAULTS,
    LAYER_FREE_WITH_EXAMPLE,
    LAYER_LIMITS,
    LAYER_SETTINGS,
    LayerSettings,
    example_names,
)


def add_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """One flag per setting of the lesson `op` ("batchnorm" or "dropout"), and the trace's."""
    if op not in LAYER_DEFAULTS:
        raise ValueError(f"op must be one of {', '.join(LAYER_DEFAULTS)}, got {op!r}")
    lim = LAYER_LIMITS
    parser.epilog = (
        f"Limits: batch N at most {lim.max_batch}, channels C at most {lim.max_channels}, height "
        f"and width at most {lim.max_size}: every value of a channel stays on one screen. Random "
        "values are drawn from --seed as one-decimal numbers. The lesson runs in training mode; "
        + (
            "in eval mode batch normalisation uses the running statistics instead."
            if op == "batchnorm"
            else "in eval mode dropout is the identity (y = x)."
        )
    )
    group = parser.add_argument_group("example")
    names = ", ".join(example_names(op)) or "none installed"
    group.add_argument(
        "--example",
        metavar="NAME|FILE.toml",
        help=f"a hand-made example ({names}, or one of yours), or a lesson file's path; its "
        f"arrays fix the sizes, so only {' and '.join(LAYER_FREE_WITH_EXAMPLE[op])} can be changed",
    )
    _add_list_flag(group)
    for name, default in LAYER_DEFAULTS[op].items():
        setting = LAYER_SETTINGS[name]
        group.add_argument(
            f"--{name}",
            dest=name,
            metavar=setting.metavar,
            type=_flag_type(setting),
            help=setting.help.format(default=setting.format(default)),
        )
    grads = "dβ, dγ, dx̂, dσ², dμ, dx" if op == "batchnorm" else "dx"
    show = parser.add_argument_group("trace (with --no-ui)")
    show.add_argument(
        "--backward",
        action="store_true",
        help=f"also run the backward pass: {grads} and a gradient check",
    )
    show.add_argument(
        "--summary",
        action="store_true",
        help="count the steps of each stage instead of printing each step",
    )
    add_export_frames_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> LayerSettings:
    """The settings the flags of `cnn-tui batchnorm|dropout` give (`args.command` is the op)."""
    op = args.command
    values = {name: getattr(args, name) for name in LAYER_DEFAULTS[op]}
    return LayerSettings(op, {k: v for k, v in values.items() if v is not None}, args.backward,
                         args.summary, args.example)  # fmt: skip
