"""What every logger gets, and the base class each one fills in (Lightning's `Logger` is the model).

A logger is told, in this order: `start` (the run started or was resumed: its settings as
hyperparameters, its classes, the global step it continues from), `log_scalars` for each event
that carries numbers (a `Scalars`: the event's kind as the group, its global step, its numbers
flattened by `scalars`), `log_test` once the test set is evaluated (`Evaluated`: the final
metrics, the confusion matrix, the per-class table), `finalize` with how the session ended
(finished, stopped, failed), and `close` last, whatever happened. `events.RunLoggers` makes
these calls from the run's events; a logger only writes.

Global steps are optimizer steps from the start of the run, the same across sessions of a resumed
run: batch b (1-based) of epoch e is step (e - 1) * batches_per_epoch + b, an epoch's numbers go
at the step of its last batch, and anything else (system readings, the test) at the latest step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.text import finite

# fields of an event that place it rather than measure something (`Scalars.index` keeps them)
INDEX_KEYS = ("epoch", "batch")
NOT_SCALARS = ("event", "time", "epochs", "batches", *INDEX_KEYS)
MAX_KEY_PARTS = 3  # "gpus/0/util_percent": nested deeper than this is detail, not a metric
GROUPS = {"evaluated": "test"}  # an event kind -> the group its numbers are logged under
# the test metrics lose their "test_" prefix in the "test" group: test/accuracy, test/loss
GROUP_PREFIX = {"test": "test_"}


@dataclass(frozen=True)
class RunStart:
    """A session of the run starting (its "run_started" event)."""

    run_dir: Path
    config: dict[str, Any]  # TrainConfig.to_dict(): the hyperparameters
    classes: tuple[str, ...]
    resumed: bool
    step: int  # the global step done before this session (0 for a new run)
    batches_per_epoch: int

    @property
    def name(self) -> str:
        return self.run_dir.name

    def hyperparameters(self) -> dict[str, str | int | float | bool]:
        """The settings as flat hyperparameters (None, a setting left at "default", as "")."""
        return {key: "" if value is None else value for key, value in self.config.items()}


@dataclass(frozen=True)
class Scalars:
    """The numbers of one event: `group` (batch, epoch, system, test, ...), `step`, `time`
    (unix seconds), `values` ("loss" -> 0.3, "gpus/0/util_percent" -> 80.0) and `index` (the
    event's epoch and batch numbers, where it has them)."""

    group: str
    step: int
    time: float
    values: dict[str, float]
    index: dict[str, int] = field(default_factory=dict)

    def tagged(self) -> dict[str, float]:
        """The values as "group/name" tags (TensorBoard's and W&B's convention)."""
        return {f"{self.group}/{key}": value for key, value in self.values.items()}


@dataclass(frozen=True)
class Evaluated:
    """The test set's results (its "evaluated" event): the metrics and the confusion matrix
    (rows: true class, columns: predicted, counts), its classes and the per-class rows
    ({"class", "precision", "recall", "f1", "support"})."""

    metrics: dict[str, float]  # accuracy, loss, macro_f1, ... (the "test" group's values)
    confusion: list[list[int]]
    classes: tuple[str, ...]
    per_class: list[dict[str, Any]]
    step: int


class RunLogger:
    """A logger of a run: the calls `events.RunLoggers` makes, in order. The base does nothing,
    so a logger fills in what its library has a place for."""

    name = "logger"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def start(self, run: RunStart) -> None:
        """A session of the run starts: the hyperparameters; where a resumed run continues."""

    def log_scalars(self, scalars: Scalars) -> None:
        """The numbers of one event, at its global step."""

    def log_test(self, result: Evaluated) -> None:
        """The test set's results: the final metrics, the confusion matrix, the per-class table."""

    def finalize(self, status: str) -> None:
        """The session ended: "finished", "stopped" or "failed"."""

    def close(self) -> None:
        """Release files and processes; called last, also when the session ended otherwise."""

    def where(self) -> str:
        """Where this logger writes, for the line the trainer prints when it starts ("" none)."""
        return ""


def own_folder(path: Path) -> Path:
    """A logger's folder in the run folder, made if need be; never a symbolic link (a run folder
    from someone else leads nowhere else, as `runs.store` has it for the run's own files)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OSError(f"{path} is not a folder of the run (a link or a file): not written into")
    path.mkdir(exist_ok=True)
    return path


def scalars(event: dict[str, Any]) -> dict[str, float]:
    """Every finite number an event carries, flattened ("gpus/0/util_percent"): nested dicts by
    key, lists of dicts by position, at most MAX_KEY_PARTS deep; its place (`NOT_SCALARS`),
    text, booleans and missing values (None) are left out."""
    found: dict[str, float] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if finite(value):
            found[prefix] = float(value)
        elif depth < MAX_KEY_PARTS and isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}/{key}", inner, depth + 1)
        elif depth < MAX_KEY_PARTS - 1 and isinstance(value, list):
            for position, inner in enumerate(value):
                if isinstance(inner, dict):
                    walk(f"{prefix}/{position}", inner, depth + 1)

    for key, value in event.items():
        if key not in NOT_SCALARS and isinstance(key, str):
            walk(key, value, 1)
    return found


def group_of(kind: str) -> str:
    """The group an event kind's numbers are logged under: "evaluated" -> "test", else the kind
    itself made safe for a file or tag name."""
    return GROUPS.get(kind) or re.sub(r"[^A-Za-z0-9_.-]+", "_", kind).strip("_") or "event"


def group_values(group: str, values: dict[str, float]) -> dict[str, float]:
    """The values as a group shows them: the test metrics without their "test_" prefix."""
    prefix = GROUP_PREFIX.get(group)
    if prefix is None:
        return values
    return {key.removeprefix(prefix): value for key, value in values.items()}


def whole(value: Any) -> int | None:
    """A count from an event (epoch, batch, batches): a whole number >= 0, else None."""
    if finite(value) and float(value).is_integer() and value >= 0:
        return int(value)
    return None
