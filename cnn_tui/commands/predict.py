"""`cnn-tui predict RUN IMAGE|FOLDER...`: a trained run's top-k classes, headless.

The flags become a `PredictRequest`; the core (`tools.predict.predict`) returns the predictions and
the problems met, printed here: one image on a terminal is drawn with half blocks beside its
classes, several give one table row each and a summary; `--json` prints them as JSON instead.
A path that names no usable image makes the exit code 2 (after the others are printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cnn_tui import text
from cnn_tui.commands import output, tool_flags
from cnn_tui.commands.count_flags import add_count

if TYPE_CHECKING:
    from cnn_tui.training.tools.predict import Prediction, PredictResult
    from cnn_tui.training.tools.run_model import RunModel

EXIT_USAGE = 2
PATH_WIDTH = 60  # a longer path is cut at the front in the table
PICTURE_WIDTH = 32  # the most characters the picture of one image takes
MAX_TOP = 1000  # --top: classes listed per image (at most the run's own classes are)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir",
        metavar="RUN",
        type=output.path_argument,
        help="the run directory whose model predicts",
    )
    parser.add_argument(
        "paths",
        metavar="IMAGE|FOLDER",
        nargs="+",
        type=output.path_argument,
        help="image files, or folders of them",
    )
    add_count(
        parser,
        "--top",
        low=1,
        high=MAX_TOP,
        default=3,
        metavar="K",
        help="classes shown (default: 3)",
    )
    tool_flags.add_device_argument(parser)
    tool_flags.add_trust_argument(parser)
    output.add_json_arguments(parser, "the predictions")


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.predict import PredictRequest, predict

    request = PredictRequest(
        Path(args.run_dir),
        tuple(args.paths),
        top=args.top,
        device=args.device,
        trust_model_code=args.trust_model_code,
    )
    target = output.json_target(args)
    with output.user_prints_to_stderr(args):  # (your own model's code may print)
        result = predict(request)
    note = result.run.note()  # a diverged run: which of its weights (its last finite ones)
    if note is not None:
        print(f"cnn-tui: note: {text.one_line(note)}", file=sys.stderr)
    for problem in [*result.inputs.problems, *result.inputs.skipped]:
        print(f"cnn-tui: {text.one_line(problem)}", file=sys.stderr)
    if target is not None:
        output.write_json(result.to_dict(), target)
    if target != output.STDOUT:
        print_text(result, sys.stdout)
    if not result.predictions and not result.inputs.problems and not result.inputs.bad_argument:
        print("cnn-tui: no image could be read", file=sys.stderr)
    return EXIT_USAGE if result.usage_error else 0


def print_text(result: PredictResult, out: TextIO) -> None:
    """One image: its picture and classes; several: the table and the summary."""
    predictions, files = result.predictions, result.inputs.files
    if len(predictions) == 1 and len(files) == 1:
        print_one(predictions[0], files[0][0], result.run, out)
    elif predictions:
        print_table(predictions, out)


def _bar(p: float, width: int = 20) -> str:
    full = round(p * width)
    return "█" * full + "·" * (width - full)


def print_one(prediction: Prediction, file: Path, run: RunModel, out: TextIO) -> None:
    """One image: the picture on a terminal (half blocks), then its top-k classes as bars."""
    from cnn_tui.training.data import image_files

    best, p_best = prediction.top[0]
    lines = [
        f"{text.one_line(prediction.path)}: {text.one_line(best)} ({text.confidence(p_best, 1)})"
    ]
    lines += [
        f"  {text.one_line(name):<14} {_bar(p)} {text.confidence(p):>7}"
        for name, p in prediction.top
    ]
    if prediction.notes:
        lines.append(f"  ({'; '.join(map(text.one_line, prediction.notes))})")
    if out.isatty():
        width = min(PICTURE_WIDTH, run.image_size[1])
        image, _ = image_files.read_image(file, run.channels, run.image_size)
        picture = image_files.terminal_lines(image, width=width)
        rows = max(len(picture), len(lines))
        picture += [" " * width] * (rows - len(picture))
        lines += [""] * (rows - len(lines))
        lines = [left + "  " + right for left, right in zip(picture, lines, strict=True)]
    output.say(*lines, out=out)


def print_table(predictions: list[Prediction], out: TextIO) -> None:
    """One row per image, then the summary."""
    from cnn_tui.training.tools.predict import summary

    rows = []
    for p in predictions:
        path = text.one_line(p.path)
        if len(path) > PATH_WIDTH:
            path = "…" + path[-(PATH_WIDTH - 1) :]
        best, p_best = p.top[0]
        others = ", ".join(f"{text.one_line(c)} {text.confidence(q, 0)}" for c, q in p.top[1:])
        if p.folder_class is not None:
            folder = text.one_line(p.folder_class)
            others += " ✓" if best == p.folder_class else f" ✗ (folder: {folder})"
        if p.notes:
            others += f"  [{'; '.join(map(text.one_line, p.notes))}]"
        rows.append([path, text.one_line(best), text.confidence(p_best, 1), others])
    output.say(*output.table(["image", "predicted", "prob", "others"], rows, right=(2,)), out=out)
    info = summary(predictions)
    counts = ", ".join(
        f"{text.one_line(c)} {text.count(n)}" for c, n in info["predicted_counts"].items()
    )
    output.say("", f"{text.count(info['images'])} images · predicted: {counts}", out=out)
    if "accuracy" in info:
        output.say(
            f"accuracy against the class folders: {text.count(info['correct'])}/"
            f"{text.count(info['labelled'])} = {text.percent(info['accuracy'])}",
            out=out,
        )
