"""`cnn-tui predict RUN IMAGE|FOLDER…`: a trained run's top-k classes for your own image files.

Every file goes through the run's own preprocessing (`image_files.read_image` to the data set's
image size and channels, then the run's normalisation and resize, `run_model.RunModel`). The
`summary` of several says how often each class was predicted and, when the files sit in
sub-folders named after the run's classes (the layout of `--dataset imagefolder`), the accuracy
against those folder names.

`predict(PredictRequest)` returns the predictions and the problems met; the command prints them.
A file that cannot be read is skipped with a line saying why; a named file or folder that does not
exist, holds no image or cannot be read makes the result a usage error (after the others are
predicted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_tui.errors import UsageError
from cnn_tui.training.data import image_files

if TYPE_CHECKING:
    from cnn_tui.training.tools.run_model import RunModel


@dataclass(frozen=True)
class PredictRequest:
    """The run whose model predicts, the image files and folders, how many classes to give."""

    run_dir: Path
    paths: tuple[str, ...]
    top: int = 3
    device: str = "auto"
    trust_model_code: bool = False  # a run of the user's own class: run its copy of the code


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
    """The files to predict, the problems met finding and reading them, and whether one was a
    usage error."""

    files: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, folder class)
    problems: list[str] = field(default_factory=list)  # a path that names no image file
    skipped: list[str] = field(default_factory=list)  # a file that could not be read, and why
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


def predict_files(run: RunModel, inputs: Inputs, top: int) -> list[Prediction]:
    """Read every file (a line in `inputs.skipped` for each that cannot be), predict them in
    batches."""
    pixels, kept = [], []
    for file, label in inputs.files:
        try:
            image, notes = image_files.read_image(file, run.channels, run.image_size)
        except image_files.ImageFileError as exc:
            inputs.skipped.append(f"skipped {file}: {exc}")
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


@dataclass
class PredictResult:
    """What `predict` found: the run's model, the inputs (with their problems), the predictions."""

    run: RunModel
    inputs: Inputs
    predictions: list[Prediction]

    @property
    def usage_error(self) -> bool:
        """A named path was no usable image, or nothing at all could be predicted."""
        return self.inputs.bad_argument or not self.predictions

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": [p.to_dict() for p in self.predictions], **summary(self.predictions)}


def predict(request: PredictRequest) -> PredictResult:
    """Load the run's model and predict every image file the request names."""
    from cnn_tui.training.tools.run_model import load_run_model

    if request.top < 1:
        raise UsageError(f"--top must be 1 or more, got {request.top}")
    run = load_run_model(request.run_dir, request.device, request.trust_model_code)
    inputs = gather(list(request.paths), run.classes)
    return PredictResult(run, inputs, predict_files(run, inputs, request.top))
