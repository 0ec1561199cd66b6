"""The flags of the lessons, `cnn-tui conv|pool|net`, and the typed settings they make.

The flags are built from the lessons' one table of settings (`cnn_tui.lessons.settings`: its
limits, defaults, checks and help texts), so they accept and reject what the edit forms and
`build_example` do. `settings_from_args` / `net_settings_from_args` turn the parsed flags into
`LessonSettings` / `NetSettings`, which is all the core and the screens see.

`add_export_frames_arguments` adds the slides flags every lesson command shares
(`--export-frames DIR` and its options; `frame_export_from_args` makes them a
`lessons.slides.FrameExport`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_tui.commands import output
from cnn_tui.commands.count_flags import add_count
from cnn_tui.lessons import slides
from cnn_tui.lessons.kernels import KERNELS
from cnn_tui.lessons.settings import (
    DEFAULTS,
    FIELDS,
    LIMITS,
    NET_DEFAULT_EXAMPLE,
    NET_LIMITS,
    NET_SETTINGS,
    SETTINGS,
    LessonSettings,
    NetSettings,
    Setting,
    default_text,
    example_names,
    free_with_example,
)


def _flag_type(setting: Setting) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = setting.name  # argparse names the type in some messages
    return convert


def _kernel_type(setting: Setting) -> Callable[[str], Any]:
    """conv's --kernel: a size (3, 3x2), or a named kernel of the picture lesson (sobel-x), kept
    as its name for `cnn-tui conv --image` to pick (and to refuse without --image)."""
    size = _flag_type(setting)

    def convert(text: str) -> Any:
        if text.strip().lower() in KERNELS:
            return text.strip().lower()
        if not any(char.isdigit() for char in text):
            raise argparse.ArgumentTypeError(
                f"kernel must be a size (3 or 3x2) or, with --image, a kernel's name "
                f"({', '.join(KERNELS)}), got {text!r}"
            )
        return size(text)

    convert.__name__ = setting.name
    return convert


def _words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# Settings the epilog leaves out: the input size has its own phrase, the kernel is bounded by the
# input, the seed states its range in its own help, the pool type and the mode are choices.
_NOT_IN_EPILOG = ("height", "width", "kernel", "seed", "pool_type", "conv_mode")


def add_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """Add the example flags of `cnn-tui conv` (op="conv") or `cnn-tui pool` (op="pool").

    One flag per setting in FIELDS[op]. Flags left out stay None, so `settings_from_args`
    leaves them out of `LessonSettings.values` and `build_example` can tell "not given" from
    the defaults (an --example fixes the settings in FIXED_BY_EXAMPLE; the others override the
    file's).
    """
    if op not in DEFAULTS:
        raise ValueError(f"op must be 'conv' or 'pool', got {op!r}")
    lim = LIMITS
    limited: list[tuple[list[str], int]] = []  # consecutive settings with the same limit
    for name in FIELDS[op]:
        if name in _NOT_IN_EPILOG:
            continue
        high = SETTINGS[name].high
        if limited and limited[-1][1] == high:
            limited[-1][0].append(name)
        else:
            limited.append(([name], high))
    sizes = ", ".join(f"{_words(names)} at most {high}" for names, high in limited)
    parser.epilog = (
        f"Limits: input at most {lim.max_size}x{lim.max_size}, {sizes}, and at most "
        f"{lim.max_steps:,} steps per phase: the lesson keeps every step so you can step back "
        "and forth, and the trace stays readable. Random values are drawn from --seed as "
        "one-decimal numbers in [-2, 2]."
    )
    names = ", ".join(example_names(op)) or "none installed"
    free = _words([SETTINGS[name].flag_name for name in free_with_example(op)])
    group = parser.add_argument_group("example")
    group.add_argument(
        "--example",
        metavar="NAME|FILE.toml",
        help=f"a hand-made example ({names}, or one of yours), or a lesson file's path; it "
        f"fixes the input, so only {free} can be changed",
    )
    _add_list_flag(group)
    for name in FIELDS[op]:
        setting = SETTINGS[name]
        help_text = setting.help.format(default=default_text(op, name))
        flag = setting.flag or f"--{name}"
        if setting.kind == "choice":
            group.add_argument(flag, dest=name, choices=setting.choices, help=help_text)
        elif name == "kernel" and op == "conv":
            help_text += f"; with --image the kernel's name: {', '.join(KERNELS)}"
            group.add_argument(
                flag, dest=name, metavar="K|HxW|NAME", type=_kernel_type(setting), help=help_text
            )
        else:
            group.add_argument(
                flag, dest=name, metavar=setting.metavar, type=_flag_type(setting), help=help_text
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


def _add_list_flag(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--list-examples",
        action="store_true",
        help="list the examples --example takes, shipped and yours (saved from the edit form "
        "into ~/.config/cnn-tui/lessons/, or $XDG_CONFIG_HOME/cnn-tui/lessons/), and exit",
    )


def add_net_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `cnn-tui net`: --example, --label, --lr, --steps, --optimizer and the
    trace's --summary."""
    lim = NET_LIMITS
    kernels = " or ".join(f"{k}x{k}" for k in lim.kernel_sizes)
    parser.epilog = (
        f"Limits: image {lim.min_size}x{lim.min_size} to {lim.max_size}x{lim.max_size}, at most "
        f"{lim.max_filters} filters of {kernels}, {lim.min_classes} to {lim.max_classes} "
        f"classes, values at most {lim.max_abs:g} in size, learning rate at most "
        f"{lim.max_lr:g}, at most {lim.max_train_steps} training steps: every layer's arrays "
        "stay readable on one screen."
    )
    names = ", ".join(example_names("net")) or "none installed"
    group = parser.add_argument_group("example")
    group.add_argument(
        "--example",
        metavar="NAME|FILE.toml",
        help=f"the image and weights ({names}, or one of yours; default {NET_DEFAULT_EXAMPLE}), "
        "or a lesson file's path",
    )
    _add_list_flag(group)
    for name, setting in NET_SETTINGS.items():
        if setting.kind == "choice":
            group.add_argument(f"--{name}", dest=name, choices=setting.choices, help=setting.help)
            continue
        group.add_argument(
            f"--{name}",
            dest=name,
            metavar=setting.metavar,
            type=_flag_type(setting),
            help=setting.help,
        )
    show = parser.add_argument_group("trace (with --no-ui)")
    show.add_argument(
        "--summary",
        action="store_true",
        help="count the steps of each layer instead of printing each step",
    )


def settings_from_args(args: argparse.Namespace) -> LessonSettings:
    """The settings the flags of `cnn-tui conv|pool` give (`args.command` is the op)."""
    op = args.command
    values = {name: getattr(args, name) for name in FIELDS[op] if getattr(args, name) is not None}
    return LessonSettings(op, args.example, values, args.backward, args.summary)


def net_settings_from_args(args: argparse.Namespace) -> NetSettings:
    """The settings the flags of `cnn-tui net` give."""
    return NetSettings(args.example, args.label, args.lr, args.summary, args.steps, args.optimizer)


def _frame_size(text: str) -> tuple[int, int]:
    try:
        return slides.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_export_frames_arguments(parser: argparse.ArgumentParser) -> None:
    """The slides flags of a lesson command (`cnn-tui conv|pool|net|…`): `--export-frames DIR`
    writes the steps of one phase as SVG screenshots instead of opening the screen."""
    group = parser.add_argument_group(
        "slides (--export-frames)",
        "Write the steps of one phase as SVG (or PNG) screenshots of the lesson screen, each "
        "numbered by the step its status line shows (0060-dw.svg: 'step 60 / 171'), with "
        "index.txt and frames.json, without opening it: no terminal needed.",
    )
    folder = group.add_argument(
        "--export-frames",
        metavar="DIR",
        type=output.path_argument,
        help="the folder for the frames; made if missing, refused if it holds other files",
    )
    output.chooses_output(folder)
    group.add_argument(
        "--phase",
        metavar="NAME",
        help="the phase to export, as the go-to prompt (:) names it: forward, backward, dw, dx, "
        "… (net: forward, backward, update, dw1, …; batchnorm: mu, var, xhat, dvar, dx, …; "
        "dropout: mask, y, dx; default: the first)",
    )
    add_count(
        group, "--every", low=1, high=LIMITS.max_steps, metavar="K",
        help="take every K-th step (and the phase's last) (default: 1)",
    )  # fmt: skip
    add_count(
        group, "--max-frames", low=1, high=9999,
        help=f"refuse to write more frames than this (default: {slides.DEFAULT_MAX_FRAMES})",
    )  # fmt: skip
    columns, rows = slides.DEFAULT_SIZE
    group.add_argument(
        "--frame-size",
        metavar="COLSxROWS",
        type=_frame_size,
        help=f"the terminal size of the frames, e.g. 80x24 (default: {columns}x{rows})",
    )
    group.add_argument(
        "--frame-format",
        choices=slides.FORMATS,
        help="svg (default) or png (each frame rendered by rsvg-convert, librsvg)",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="replace the frames of an earlier export in DIR (nothing else is written over)",
    )


_FRAME_OPTIONS = ("phase", "every", "max_frames", "frame_size", "frame_format", "force")


def frame_export_from_args(args: argparse.Namespace) -> slides.FrameExport | None:
    """The frames `--export-frames` asks for (None without it). A usage error for one of its
    options without it, and for it with --no-ui (the trace is another output)."""
    from cnn_tui.errors import UsageError

    folder = getattr(args, "export_frames", None)
    if folder is None:
        given = [name for name in _FRAME_OPTIONS if getattr(args, name, None) not in (None, False)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} goes with --export-frames DIR: add it, or leave {flag} out")
        return None
    if getattr(args, "no_ui", False):
        raise UsageError("--export-frames writes frames, --no-ui prints a trace: give one of them")
    return slides.FrameExport(
        Path(folder),
        args.phase,
        args.every or 1,
        args.max_frames or slides.DEFAULT_MAX_FRAMES,
        args.frame_size or slides.DEFAULT_SIZE,
        args.force,
        args.frame_format or "svg",
    )
