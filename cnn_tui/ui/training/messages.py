"""Messages that thread workers post back to the UI (posting style: small dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # (the home screen's banner imports this module: the store comes later)
    from cnn_tui.training.runs.state import RunState
    from cnn_tui.training.runs.store import RunInfo
    from cnn_tui.training.runs.sweeps import SweepState


@dataclass
class RunEvents(Message):
    """New lines of a followed run's `metrics.jsonl`, and its current status.json (or None)."""

    run_dir: Path
    events: list[dict[str, Any]]
    status: dict[str, Any] | None


@dataclass
class RunEnded(Message):
    """A followed run is over: `status` is one of `state.OVER`."""

    run_dir: Path
    status: RunState
    message: str = ""


@dataclass
class RunDamaged(Message):
    """Files of a run that could not be read, all or in part: one line for each."""

    run_dir: Path
    notes: list[str]


@dataclass
class RunResultsLoaded(Message):
    """The results of a finished run: summary.json and samples.npz (either may be missing)."""

    run_dir: Path
    summary: dict[str, Any] | None
    samples: dict[str, Any] | None = None


@dataclass
class CurvesLoaded(Message):
    """The metrics.jsonl events of several runs, to overlay their curves: run dir -> events."""

    events: dict[Path, list[dict[str, Any]]]


@dataclass
class DevicesDetected(Message):
    """Devices for the form's device field: (value, label) pairs, e.g. ("cuda:0", "cuda:0 H100 …")."""

    devices: list[tuple[str, str]]


@dataclass
class RunsListed(Message):
    """A fresh listing of the run folders (`store.list_runs_in`): the runs, and the folders
    that could not be read (folder -> why)."""

    runs: list[RunInfo]
    unreadable: dict[Path, str] = field(default_factory=dict)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsListed)


@dataclass
class SweepRead(Message):
    """A fresh reading of a sweep folder: its runs' table rows and the queue runner's state."""

    rows: list[dict[str, Any]]
    state: SweepState
    status: dict[str, Any] | None
    manifest: dict[str, Any] | None = None  # a search's, re-read: its runs grow as it asks
    study: dict[str, Any] | None = None  # a search's search.json (`search.read_study_report`)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepRead)


@dataclass
class LRFindStep(Message):
    """The LR finder trained batch `step` of `steps` at `lr`; `status` says what it does
    before the first batch (loading the data set, building the model)."""

    step: int = 0
    steps: int = 0
    lr: float = 0.0
    smoothed: float = 0.0
    status: str = ""


@dataclass
class LRFindDone(Message):
    """The LR finder's curve (`lr_find.Curve`), or why it could not run (`error`)."""

    curve: Any = None
    error: str = ""


@dataclass
class ModelMeasured(Message):
    """A torchvision model was measured at an image size, or the user's own class was built
    and measured for the form's settings (`key`: `sizes.measure_key`; `problem`: why it does
    not take that size, is no model of the registry, or the one-line error in the user's
    file; "" when it was measured)."""

    key: tuple
    problem: str
