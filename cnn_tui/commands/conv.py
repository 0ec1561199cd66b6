"""`cnn-tui conv`: step through a naive 2-D convolution, forward and backward; with `--image`,
a real picture, its feature map for a kernel, and a crop of it stepped through."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cnn_tui.commands import lesson_flags, tui
from cnn_tui.commands._lesson import print_trace, run_lesson
from cnn_tui.errors import UsageError
from cnn_tui.lessons.kernels import DEFAULT_KERNEL, KERNELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lesson_flags.add_arguments(parser, "conv")
    group = parser.add_argument_group(
        "picture",
        "A real picture and its feature map (half-block images); the lesson steps through a "
        "crop of it. --height/--width are the crop's size (default 6x6); --stride, --dilation, "
        "--mode and --seed work as above.",
    )
    group.add_argument(
        "--image",
        metavar="FILE|fashion-mnist:INDEX",
        help="a picture file (PNG, JPEG, ...; made grey, large ones downscaled) or an image of "
        "Fashion-MNIST's test set (fashion-mnist:train:INDEX: the training set), read from "
        "Debian's dataset-fashion-mnist or ./data; builtin:edges: a built-in test picture",
    )
    group.add_argument(
        "--kernel-values",
        metavar="ROWS",
        help='your own kernel instead of a named one: rows separated by ";", e.g. '
        f'"-1,0,1; -2,0,2; -1,0,1" (default kernel: {DEFAULT_KERNEL})',
    )
    group.add_argument(
        "--crop",
        metavar="ROW,COL",
        help="the top-left pixel of the crop the lesson steps through (default: the centre)",
    )
    lesson_flags.add_export_frames_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.image is None:
        given = [
            flag
            for flag, value in (("--kernel-values", args.kernel_values), ("--crop", args.crop))
            if value is not None
        ]
        if isinstance(args.kernel, str):
            given.insert(0, f"--kernel {args.kernel}")
        if given:
            raise UsageError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --image (a picture file or fashion-mnist:INDEX); "
                "without it --kernel is the kernel's size"
            )
        return run_lesson(args)
    return run_picture(args)


def run_picture(args: argparse.Namespace) -> int:
    """`cnn-tui conv --image`: the picture screen, or the crop's trace with --no-ui."""
    from cnn_tui.lessons.picture import PictureSettings, build_picture_lesson

    settings = lesson_flags.settings_from_args(args)
    values = dict(settings.values)
    kernel = values.pop("kernel", None)
    if kernel is not None and not isinstance(kernel, str):
        raise UsageError(
            f"with --image, --kernel names a kernel ({', '.join(KERNELS)}); give your own "
            "with --kernel-values"
        )
    if settings.example is not None:
        raise UsageError("--example cannot be combined with --image: the picture is the input")
    frames = lesson_flags.frame_export_from_args(args)
    lesson = build_picture_lesson(
        PictureSettings(
            args.image, kernel, args.kernel_values, args.crop, values, args.backward, args.summary
        )
    )
    if frames is not None:
        return tui.export_frames("conv", lesson, frames)
    if args.no_ui:
        from cnn_tui.lessons.trace import write_trace

        def trace(write: Callable[[str], None]) -> None:
            for line in lesson.header_lines():
                write(line)
            write("")
            write_trace(lesson.example(), write, backward=args.backward, summary=args.summary)

        return print_trace(trace)
    return tui.open_app("conv", lesson, runs_dir=args.run_folders)
