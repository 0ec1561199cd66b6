"""`cnn-tui predict RUN IMAGE|FOLDER…`: a trained run's top-k classes for your own image files.

Every file goes through the run's own preprocessing (`image_files.read_image` to the data set's
image size and channels, then the run's normalisation and resize, `run_model.RunModel`). One image
on a terminal is drawn with half blocks beside its classes; several give one table row each and a
summary: how often each class was predicted and, when the files sit in sub-folders named after the
run's classes (the layout of `--dataset imagefolder`), the accuracy against those folder names.

A file that cannot be read is one line on stderr and is skipped; a named file or folder that does
not exist or holds no image makes the exit code 2 (after the others are predicted).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.training.data import image_files

EXIT_USAGE = 2


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), most likely first
    notes: list[str]
    folder_class: str | None = None  # the class its sub-folder names, when it is one

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "predicted": self.top[0][0],
            "probability": self.top[0][1],
            "top": [{"class": c, "probability": p} for c, p in self.top],
            "notes": self.notes,
            "folder_class": self.folder_class,
        }


@dataclass
class Inputs:
    """The files to predict, the problems met finding them, and whether one was a usage error."""

    files: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, folder class)
    problems: list[str] = field(default_factory=list)
    named: set[Path] = field(default_factory=set)  # the files given as arguments themselves
    bad_argument: bool = False


def gather(paths: list[str], classes: list[str]) -> Inputs:
    """The image files the arguments name: files as given, folders walked (class sub-folders
    noted); a missing path or an empty folder is a problem line."""
    inputs = Inputs()
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = image_files.images_in(path)
            if not found:
                inputs.problems.append(f"{text}: no image files in this folder")
                inputs.bad_argument = True
            for file in found:
                parts = file.relative_to(path).parts
                label = parts[0] if len(parts) > 1 and parts[0] in classes else None
                inputs.files.append((file, label))
        elif path.exists():
            inputs.files.append((path, None))
            inputs.named.add(path)
        else:
            inputs.problems.append(f"{text}: no such file or folder")
            inputs.bad_argument = True
    return inputs


def predict_files(run: Any, inputs: Inputs, top: int, errors: TextIO) -> list[Prediction]:
    """Read every file (one line on `errors` for each that cannot be), predict them in batches."""
    pixels, kept = [], []
    for file, label in inputs.files:
        try:
            image, notes = image_files.read_image(file, run.channels, run.image_size)
        except image_files.ImageFileError as exc:
            print(f"cnn-tui: skipped {file}: {exc}", file=errors)
            if file in inputs.named:  # a file named on the command line: a usage error
                inputs.bad_argument = True
            continue
        pixels.append(image)
        kept.append((file, label, notes))
    if not pixels:
        return []
    probabilities = run.probabilities(np.stack(pixels))
    k = min(top, len(run.classes))
    out = []
    for (file, label, notes), row in zip(kept, probabilities, strict=True):
        best = np.argsort(-row, kind="stable")[:k]
        out.append(
            Prediction(str(file), [(run.classes[i], float(row[i])) for i in best], notes, label)
        )
    return out


def summary(predictions: list[Prediction]) -> dict[str, Any]:
    """Counts per predicted class and, for files in class-named folders, the accuracy."""
    counts: dict[str, int] = {}
    for p in predictions:
        counts[p.top[0][0]] = counts.get(p.top[0][0], 0) + 1
    labelled = [p for p in predictions if p.folder_class is not None]
    result: dict[str, Any] = {
        "images": len(predictions),
        "predicted_counts": dict(sorted(counts.items(), key=lambda item: -item[1])),
    }
    if labelled:
        right = sum(p.top[0][0] == p.folder_class for p in labelled)
        result.update(labelled=len(labelled), correct=right, accuracy=right / len(labelled))
    return result


def run_predict(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.run_model import load_run_model

    if args.top < 1:
        raise UsageError(f"--top must be 1 or more, got {args.top}")
    run = load_run_model(args.run_dir, args.device)
    inputs = gather(list(args.paths), run.classes)
    for problem in inputs.problems:
        print(f"cnn-tui: {problem}", file=sys.stderr)
    predictions = predict_files(run, inputs, args.top, sys.stderr)
    if args.json:
        print(
            json.dumps({"predictions": [p.to_dict() for p in predictions], **summary(predictions)})
        )
    elif len(predictions) == 1 and len(inputs.files) == 1:
        print_one(predictions[0], inputs.files[0][0], run, sys.stdout)
    elif predictions:
        print_table(predictions, sys.stdout)
    if not predictions:
        if not inputs.problems and not inputs.bad_argument:
            print("cnn-tui: no image could be read", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE if inputs.bad_argument else 0


def _bar(p: float, width: int = 20) -> str:
    full = round(p * width)
    return "█" * full + "·" * (width - full)


def print_one(prediction: Prediction, file: Path, run: Any, out: TextIO) -> None:
    """One image: the picture on a terminal (half blocks), then its top-k classes as bars."""
    lines = [f"{prediction.path}: {prediction.top[0][0]} ({prediction.top[0][1] * 100:.1f} %)"]
    lines += [f"  {name:<14} {_bar(p)} {p * 100:6.2f} %" for name, p in prediction.top]
    if prediction.notes:
        lines.append(f"  ({'; '.join(prediction.notes)})")
    if out.isatty():
        image, _ = image_files.read_image(file, run.channels, run.image_size)
        picture = image_files.terminal_lines(image, width=min(32, run.image_size[1]))
        gap = " " * 2
        width = len(picture)
        for row in range(max(width, len(lines))):
            left = picture[row] if row < width else " " * min(32, run.image_size[1])
            print(left + gap + (lines[row] if row < len(lines) else ""), file=out)
        return
    for line in lines:
        print(line, file=out)


def print_table(predictions: list[Prediction], out: TextIO) -> None:
    """One row per image, then the summary."""
    width = min(60, max(len(p.path) for p in predictions))
    k = len(predictions[0].top)
    print(f"{'image':<{width}}  {'predicted':<14} {'prob':>6}  others", file=out)
    for p in predictions:
        path = p.path if len(p.path) <= width else "…" + p.path[-(width - 1) :]
        others = ", ".join(f"{c} {q * 100:.0f}%" for c, q in p.top[1:k])
        mark = ""
        if p.folder_class is not None:
            mark = " ✓" if p.top[0][0] == p.folder_class else f" ✗ (folder: {p.folder_class})"
        note = f"  [{'; '.join(p.notes)}]" if p.notes else ""
        print(
            f"{path:<{width}}  {p.top[0][0]:<14} {p.top[0][1] * 100:5.1f}%  {others}{mark}{note}",
            file=out,
        )
    info = summary(predictions)
    counts = ", ".join(f"{c} {n}" for c, n in info["predicted_counts"].items())
    print(f"\n{info['images']} images · predicted: {counts}", file=out)
    if "accuracy" in info:
        print(
            f"accuracy against the class folders: {info['correct']}/{info['labelled']} = "
            f"{info['accuracy'] * 100:.2f} %",
            file=out,
        )
