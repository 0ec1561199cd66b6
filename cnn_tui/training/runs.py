"""Run directories: creating, reading, listing and deleting them.

A run directory holds what one training run wrote (see README, "Run directory"):

    config.toml     the TrainConfig, as TOML
    metrics.jsonl   one JSON event per line, appended and flushed as training goes
    status.json     {"status", "pid", "message", "epoch", "epochs", "started", "updated", ...}
    summary.json    test metrics when the run finished
    checkpoint.pt   model/optimizer state after every epoch (and at a stop)
    samples.npz     some test images with true/predicted labels (numpy only)

UI-free and torch-free so the TUI (which imports it) starts fast; a process that follows a run
written by another process only needs the functions here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text
from cnn_tui.training.config import TrainConfig, load_config_file

CONFIG_FILE = "config.toml"
EVENTS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
SAMPLES_FILE = "samples.npz"
EVAL_FILE = "eval.json"

STATUSES = ("running", "finished", "failed", "stopped")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "run"


def new_run_dir(runs_dir: str | os.PathLike[str], config: Any) -> Path:
    """Create and return a fresh folder such as runs/20261122-153012-simple-cnn-shapes."""
    base = Path(runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(config.model)}-{_slug(config.dataset)}"
    for n in range(1, 10_000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UsageError(f"cannot find a free run folder name under {base}")


def looks_like_run(run_dir: str | os.PathLike[str]) -> bool:
    path = Path(run_dir)
    return (path / CONFIG_FILE).is_file() and (
        (path / STATUS_FILE).is_file() or (path / EVENTS_FILE).is_file()
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_status(
    run_dir: str | os.PathLike[str],
    status: str,
    *,
    message: str = "",
    epoch: int = 0,
    epochs: int = 0,
    pid: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Atomically (re)write status.json; `started` is kept from the previous status if any."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    path = Path(run_dir) / STATUS_FILE
    now = time.time()
    previous = _read_json(path) or {}
    record = {
        "status": status,
        "pid": os.getpid() if pid is None else pid,
        "message": message,
        "epoch": epoch,
        "epochs": epochs,
        "started": previous.get("started", now) if isinstance(previous, dict) else now,
        "updated": now,
        **extra,
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """status.json as a dict, or None when missing or unreadable."""
    data = _read_json(Path(run_dir) / STATUS_FILE)
    return data if isinstance(data, dict) else None


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """summary.json as a dict, or None when the run has not finished (or the file is unreadable)."""
    data = _read_json(Path(run_dir) / SUMMARY_FILE)
    return data if isinstance(data, dict) else None


def read_config_values(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw settings of config.toml ({} when missing or unreadable); see config.py to validate."""
    try:
        with (Path(run_dir) / CONFIG_FILE).open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def read_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The validated TrainConfig of a run (its config.toml); UsageError when it is not a run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it has no {CONFIG_FILE})")
    return load_config_file(path)


def read_events(run_dir: str | os.PathLike[str], offset: int = 0) -> tuple[list[dict], int]:
    """The events appended to metrics.jsonl since byte `offset`, and the offset to pass next time.

    Only complete lines are consumed: a last line still being written is left for the next call.
    Lines that are not valid JSON objects are skipped.
    """
    path = Path(run_dir) / EVENTS_FILE
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for line in data[: end + 1].splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end + 1


def is_alive(pid: int | None) -> bool:
    """Whether process `pid` exists on this machine and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a finished child that nobody reaped yet still answers signals
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2 :].split(" ", 1)[0] != "Z"
    except OSError:
        return True


def effective_status(status: dict[str, Any] | None) -> str:
    """The status to show: "running" whose process is gone becomes "interrupted"."""
    if not status:
        return "unknown"
    state = str(status.get("status", "unknown"))
    if state == "running" and not is_alive(status.get("pid")):
        return "interrupted"
    return state


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    status: str  # running | finished | failed | stopped | interrupted | unknown
    model: str
    dataset: str
    epochs_done: int
    epochs: int
    best_val_acc: float | None
    test_acc: float | None
    started: float | None  # unix seconds
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "status": self.status,
            "model": self.model,
            "dataset": self.dataset,
            "epochs_done": self.epochs_done,
            "epochs": self.epochs,
            "best_val_acc": self.best_val_acc,
            "test_acc": self.test_acc,
            "started": self.started,
            "message": self.message,
        }


def _best_val_from_events(run_dir: Path) -> tuple[float | None, int]:
    events, _ = read_events(run_dir)
    accs = [e["val_acc"] for e in events if e.get("event") == "epoch" and "val_acc" in e]
    epochs = [int(e.get("epoch", 0)) for e in events if e.get("event") == "epoch"]
    return (max(accs) if accs else None), (max(epochs) if epochs else 0)


def run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    path = Path(run_dir)
    config = read_config_values(path)
    status = read_status(path) or {}
    summary = read_summary(path) or {}
    best = summary.get("best_val_acc", status.get("best_val_acc"))
    done = summary.get("epochs_done", status.get("epoch", 0))
    if best is None and not status:
        best, done = _best_val_from_events(path)
    started = status.get("started")
    if started is None:
        try:
            started = path.stat().st_mtime
        except OSError:
            started = None
    return RunInfo(
        name=path.name,
        path=path,
        status=effective_status(status) if status else "unknown",
        model=str(config.get("model", "?")),
        dataset=str(config.get("dataset", "?")),
        epochs_done=int(done or 0),
        epochs=int(status.get("epochs") or config.get("epochs") or 0),
        best_val_acc=best,
        test_acc=summary.get("test_accuracy", status.get("test_accuracy")),
        started=started,
        message=str(status.get("message", "")),
    )


def list_runs(runs_dir: str | os.PathLike[str]) -> list[RunInfo]:
    """The runs directly under `runs_dir`, newest first ([] when the folder does not exist)."""
    base = Path(runs_dir)
    if not base.is_dir():
        return []
    infos = [run_info(path) for path in base.iterdir() if path.is_dir() and looks_like_run(path)]
    return sorted(infos, key=lambda info: (info.started or 0, info.name), reverse=True)


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Delete a run folder; refuses anything that does not look like a run, or a live run."""
    path = Path(run_dir)
    if not path.is_dir() or not looks_like_run(path):
        raise UsageError(f"{path} does not look like a run directory; not deleting it")
    if effective_status(read_status(path)) == "running":
        raise UsageError(f"run {path.name} is still running; stop it before deleting it")
    shutil.rmtree(path)
