"""Sweeps: one base configuration, a grid of settings, every combination trained as its own run.

`cnn-tui sweep [train flags] --grid KEY=V1,V2 [--grid KEY2=...]` expands the grid (the cartesian
product, in the order of the --grid flags, the last key varying fastest) into at most `MAX_RUNS`
runs inside one sweep folder:

    runs/sweep-YYYYmmdd-HHMMSS-KEYS/
      sweep.json      the manifest: base settings, grid, device list, and each run's overrides
                      and folder (written once, atomically)
      status.json     the queue runner's state: running / finished / stopped / failed, its pid
      output.log      the output of a runner started in the background
      01-epochs-20/   one ordinary run directory per combination (config.toml, metrics.jsonl, ...)

The queue runner (`run_queue`) trains the runs one at a time per device, one per GPU in parallel
when there are several, each as its own `cnn-tui train --no-ui` process started by
`cnn_tui.training.runs.launcher` (so every run is exactly what `cnn-tui train` would do). It runs in
the foreground (`--no-ui`) or detached (`launch_sweep`: `python -m cnn_tui.training.runs.sweeps DIR`,
its own session, so it survives an SSH drop). SIGTERM or Ctrl+C stops the runs in progress with a
checkpoint and leaves the rest pending; `--resume SWEEP_DIR` keeps the finished (and failed)
runs, resumes the stopped ones from their checkpoint and starts the pending ones.

Every bad grid, flag or folder is a UsageError raised before anything is written. UI-free and
torch-free at import (torch only to find the GPUs of `--device auto` or check `cuda:N`).
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text
from cnn_tui.training.config import FIELDS, ConfigError, TrainConfig, layer_settings, parse_field
from cnn_tui.training.runs import store as runs

SWEEP_FILE = runs.SWEEP_FILE  # "sweep.json"
LOCK_FILE = ".runner.lock"  # held by the one queue runner of a sweep
MAX_RUNS = 64
NOT_IN_GRID = ("device",)  # the sweep places runs on devices itself
SORT_KEYS = ("val_acc", "test_acc", "f1", "time")
DEFAULT_SORT = "val_acc"
# sort key -> (row field, higher is better, column title)
SORT_FIELDS = {
    "val_acc": ("best_val_acc", True, "best val"),
    "test_acc": ("test_acc", True, "test acc"),
    "f1": ("macro_f1", True, "macro F1"),
    "time": ("seconds", False, "time"),
}
TO_RUN = ("pending", "stopped", "interrupted")  # what a (resumed) queue trains
EXIT_OK, EXIT_FAILED, EXIT_STOPPED = 0, 1, 130


# --- flags ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`cnn-tui sweep`: the train flags (the base settings) plus the grid and sweep options."""
    from cnn_tui.commands import train_flags as train_args

    train_args.add_arguments(parser)
    helps = {
        "run_dir": "where to write the sweep (default: a new runs/sweep-... folder)",
        "resume": "continue a stopped sweep: finished runs are kept, stopped ones resume, "
        "pending ones start",
        "start": "start the sweep at once (TUI; skips the form)",
        "json": "print JSON lines only, the table last (--no-ui)",
        "device": "auto (every GPU, else the CPU), cpu, cuda:N or a list such as cuda:0,cuda:1: "
        "one run at a time per device",
    }
    for action in parser._actions:  # argparse has no public way to reword a help text
        if action.dest in helps:
            action.help = helps[action.dest]
    sweep = parser.add_argument_group("the sweep")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2[,...]",
        help=f"a setting and its values; several --grid flags make their product (at most "
        f"{MAX_RUNS} runs)",
    )
    sweep.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default=None,
        help=f"order of the comparison table (default: {DEFAULT_SORT}, the best first)",
    )
    sweep.add_argument("--show", metavar="SWEEP_DIR", help="show the table of an existing sweep")
    sweep.add_argument(
        "--stop", metavar="SWEEP_DIR", help="stop a sweep running in the background and exit"
    )
    sweep.add_argument(
        "--detach",
        action="store_true",
        help="--no-ui: run the queue in the background (survives logging out) and return",
    )


# --- the grid ---------------------------------------------------------------------------------


def grid_key(text: str) -> str:
    """A grid key as typed ("batch-size", "--batch-size", "batch_size") -> the setting's name."""
    return text.strip().lstrip("-").replace("-", "_")


def format_value(value: Any) -> str:
    """A setting's value as the grid shows it: 0.001, 20, on, simple-cnn."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return "default" if value is None else str(value)


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["epochs=20,50", "lr=0.01,0.001"]` -> {"epochs": [20, 50], "lr": [0.01, 0.001]}.

    Each value is parsed by `config.parse_field`, as the flag would be. UsageError for: no '=',
    an unknown setting, `device`, a key given twice, no values, an empty value, a repeated value.
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key_text, sep, values_text = spec.partition("=")
        if not sep or not key_text.strip():
            raise UsageError(f"--grid {spec!r}: expected KEY=V1,V2,... (e.g. epochs=20,50,100)")
        key = grid_key(key_text)
        if key not in FIELDS:
            names = ", ".join(name.replace("_", "-") for name in FIELDS)
            raise UsageError(f"--grid {spec}: unknown setting {key_text.strip()!r}; one of {names}")
        if key in NOT_IN_GRID:
            raise UsageError(
                f"--grid {spec}: the sweep places its runs on the devices itself; list them with "
                "--device cuda:0,cuda:1 (or auto: every GPU)"
            )
        if key in grid:
            raise UsageError(
                f"--grid {spec}: {key_text.strip()} is already in the grid; give all its values "
                "in one --grid KEY=V1,V2"
            )
        if not values_text.strip():
            raise UsageError(f"--grid {spec}: no values; expected KEY=V1,V2,...")
        values: list[Any] = []
        for text in values_text.split(","):
            if not text.strip():
                raise UsageError(f"--grid {spec}: an empty value in the list")
            try:
                value = parse_field(key, text)
            except ConfigError as exc:
                raise UsageError(f"--grid {spec}: {exc}") from None
            if value in values:
                raise UsageError(f"--grid {spec}: {text.strip()} is in the list twice")
            values.append(value)
        grid[key] = values
    return grid


def grid_size(grid: dict[str, list[Any]]) -> int:
    return math.prod(len(values) for values in grid.values())


def check_grid_size(grid: dict[str, list[Any]]) -> None:
    count = grid_size(grid)
    if count > MAX_RUNS:
        sizes = " × ".join(str(len(values)) for values in grid.values())
        raise UsageError(
            f"the grid makes {count} runs ({sizes}); a sweep holds at most {MAX_RUNS}: "
            "drop some values or split it into several sweeps"
        )


def expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The overrides of each run: the cartesian product, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def describe(overrides: dict[str, Any]) -> str:
    """ "epochs=20 lr=0.001" """
    return " ".join(f"{key}={format_value(value)}" for key, value in overrides.items())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "x"


def run_dir_name(index: int, overrides: dict[str, Any]) -> str:
    """ "01-epochs-20-lr-0.001": the run's number and its grid values."""
    parts = [
        f"{_slug(key.replace('_', '-'))}-{_slug(format_value(v))}" for key, v in overrides.items()
    ]
    return "-".join([f"{index:02d}", *parts])


# --- devices ----------------------------------------------------------------------------------


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_devices(spec: str) -> list[str]:
    """`auto` -> every GPU (cuda:0, cuda:1, ...) or ["cpu"]; a comma list -> its checked devices."""
    text = (spec or "auto").strip().lower()
    if text == "auto":
        count = _gpu_count()
        return [f"cuda:{index}" for index in range(count)] or ["cpu"]
    found: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise UsageError(f"--device {spec}: an empty device in the list")
        if item == "auto":
            raise UsageError(f"--device {spec}: auto means every GPU; give it alone")
        parse_field("device", item)  # auto, cpu, cuda or cuda:N
        if item == "cpu":
            name = "cpu"
        else:
            from cnn_tui.training.system.devices import resolve_device

            name = f"cuda:{resolve_device(item).index}"
        if name in found:
            raise UsageError(f"--device {spec}: {name} is in the list twice")
        found.append(name)
    return found


# --- the plan and the manifest ----------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep, not written yet: the base settings, the grid and what each run changes."""

    base: TrainConfig
    grid: dict[str, list[Any]]
    device_spec: str
    devices: list[str]
    sort: str
    runs: list[dict[str, Any]]  # {"index", "dir", "overrides"}


def make_plan(
    base: TrainConfig,
    grid: dict[str, list[Any]],
    device_spec: str = "auto",
    sort: str | None = None,
    *,
    devices: list[str] | None = None,
) -> SweepPlan:
    """Check every run of the grid (the rules between settings too) and the devices."""
    if not grid:
        raise UsageError("a sweep needs a grid: --grid KEY=V1,V2 (e.g. --grid epochs=20,50,100)")
    check_grid_size(grid)
    entries = []
    for index, overrides in enumerate(expand(grid), start=1):
        try:
            TrainConfig.from_mapping(overrides, base=base)
        except ConfigError as exc:
            raise UsageError(f"run {index} of the grid ({describe(overrides)}): {exc}") from None
        entries.append(
            {"index": index, "dir": run_dir_name(index, overrides), "overrides": overrides}
        )
    if devices is None:
        devices = resolve_devices(device_spec)
    return SweepPlan(base, grid, device_spec, devices, sort or DEFAULT_SORT, entries)


def plan_from_args(args: argparse.Namespace) -> SweepPlan:
    """The plan of `cnn-tui sweep [train flags] --grid ...`; UsageError before anything is written.

    A setting may come from the preset or config file and be varied by the grid (the grid wins
    there), but not be given both as a flag and in the grid: that is refused as ambiguous.
    """
    from cnn_tui.commands.train_flags import given_flags

    grid = parse_grid(getattr(args, "grid", None) or [])
    flags = given_flags(args)
    device_spec = str(flags.pop("device", "") or "")
    both = [name for name in grid if name in flags]
    if both:
        name = both[0]
        raise UsageError(
            f"{FIELDS[name].flag} is given both as a flag and in --grid {name.replace('_', '-')}="
            f"...; keep one (the flag for one value, the grid for several)"
        )
    base = layer_settings(
        preset=getattr(args, "preset", None),
        config_file=getattr(args, "config", None),
        flags=flags,
    )
    if not device_spec:
        device_spec = base.device
    if getattr(args, "run_dir", None):
        check_new_sweep_dir(Path(args.run_dir))
    return make_plan(base, grid, device_spec, getattr(args, "sort", None))


def check_new_sweep_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"--run-dir {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"--run-dir {path} is not empty; a sweep needs a new or empty folder")


def new_sweep_dir(runs_dir: str | os.PathLike[str], grid: dict[str, list[Any]]) -> Path:
    """Create runs/sweep-YYYYmmdd-HHMMSS-KEYS (with -2, -3 ... when taken)."""
    keys = "-".join(_slug(key.replace("_", "-")) for key in grid)
    return runs.create_unique_dir(
        runs_dir, f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{keys}", "sweep"
    )


def create_sweep(
    plan: SweepPlan, runs_dir: str | os.PathLike[str] = "runs", sweep_dir: str | None = None
) -> Path:
    """Make the sweep folder and write its manifest (atomically); returns the folder."""
    if sweep_dir:
        path = Path(sweep_dir)
        check_new_sweep_dir(path)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = new_sweep_dir(runs_dir, plan.grid)
    manifest = {
        "version": 1,
        "created": time.time(),
        "base": plan.base.to_dict(),
        "grid": plan.grid,
        "device": plan.device_spec,
        "sort": plan.sort,
        "runs": plan.runs,
    }
    atomic_write_text(path / SWEEP_FILE, json.dumps(manifest, indent=1) + "\n")
    return path


def read_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """sweep.json, checked; UsageError when the folder is not a sweep."""
    path = Path(sweep_dir)
    if not path.is_dir():
        raise UsageError(f"{path}: no such sweep folder")
    try:
        data = json.loads((path / SWEEP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} is not a sweep folder (it has no {SWEEP_FILE})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path / SWEEP_FILE}: {exc}") from None
    ok = isinstance(data, dict) and isinstance(data.get("runs"), list)
    ok = ok and isinstance(data.get("grid"), dict) and isinstance(data.get("base"), dict)
    if not ok:
        raise UsageError(f"{path / SWEEP_FILE} is not a sweep manifest")
    return data


def base_config(manifest: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_mapping(manifest["base"], source=SWEEP_FILE, check=False)


# --- reading a sweep back ---------------------------------------------------------------------


def run_state(run_dir: Path) -> str:
    """pending (not started), running, finished, failed, stopped or interrupted."""
    state, status = runs.read_state(run_dir)
    return "pending" if status is None else state


def sweep_state(sweep_dir: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """The runner's state (created: never started; interrupted: its process is gone) and status."""
    state, status = runs.read_state(sweep_dir)
    return ("created" if status is None else state), status


def sweep_rows(sweep_dir: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> list:
    """One dict per run, in grid order: index, run, path, overrides, status, best_val_acc,
    test_acc, macro_f1, seconds, epochs_done, epochs, message (small files only)."""
    sweep_dir = Path(sweep_dir)
    manifest = manifest or read_manifest(sweep_dir)
    epochs_base = manifest["base"].get("epochs")
    rows = []
    for entry in manifest["runs"]:
        path = sweep_dir / str(entry["dir"])
        state, status = runs.read_state(path)
        summary = runs.read_summary(path) or {}
        state = "pending" if status is None else state
        status = status or {}
        seconds = summary.get("seconds")
        started = _number(status.get("started"))
        if seconds is None and state == "running" and started is not None:
            seconds = time.time() - started
        overrides = entry.get("overrides") or {}
        rows.append(
            {
                "index": int(entry["index"]),
                "run": str(entry["dir"]),
                "path": str(path),
                "overrides": overrides,
                "status": state,
                "best_val_acc": summary.get("best_val_acc", status.get("best_val_acc")),
                "test_acc": summary.get("test_accuracy"),
                "macro_f1": summary.get("macro_f1"),
                "seconds": seconds if state in ("finished", "running") else None,
                "epochs_done": int(summary.get("epochs_done", status.get("epoch", 0)) or 0),
                "epochs": int(status.get("epochs") or overrides.get("epochs") or epochs_base or 0),
                "message": str(status.get("message") or ""),
            }
        )
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def sort_rows(rows: list[dict[str, Any]], key: str = DEFAULT_SORT) -> list[dict[str, Any]]:
    """Best first by `key` (val_acc, test_acc, f1: highest; time: shortest); no value last."""
    field, higher, _ = SORT_FIELDS[key]

    def order(row: dict[str, Any]) -> tuple:
        value = _number(row.get(field)) if _counts(row, key) else None
        if value is None:
            return (1, 0.0, row["index"])
        return (0, -value if higher else value, row["index"])

    return sorted(rows, key=order)


def _counts(row: dict[str, Any], key: str) -> bool:
    return key != "time" or row.get("status") == "finished"  # a running run's time is not final


def best_run(rows: list[dict[str, Any]], key: str = DEFAULT_SORT) -> dict[str, Any] | None:
    """The best run by `key` (time: the fastest finished run), or None when none has a value."""
    field = SORT_FIELDS[key][0]
    ranked = sort_rows(rows, key)
    if ranked and _counts(ranked[0], key) and _number(ranked[0].get(field)) is not None:
        return ranked[0]
    return None


def format_percent(value: Any) -> str:
    number = _number(value)
    return "-" if number is None else f"{number * 100:.2f}%"


def format_duration(seconds: Any) -> str:
    number = _number(seconds)
    if number is None:
        return "-"
    if number < 59.95:
        return f"{number:.1f}s"
    total = int(round(number))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_metric(row: dict[str, Any], key: str) -> str:
    """The value a table is sorted by, as its column shows it."""
    value = row.get(SORT_FIELDS[key][0])
    if key == "time":
        return format_duration(value)
    if key == "f1":
        number = _number(value)
        return "-" if number is None else f"{number:.4f}"
    return format_percent(value)


def table_cells(row: dict[str, Any], keys: list[str]) -> list[str]:
    """The cells of one row after the mark: #, run, the grid values, metrics, time, status."""
    return [
        str(row["index"]),
        row["run"],
        *(format_value(row["overrides"].get(key)) for key in keys),
        *(format_metric(row, key) for key in SORT_KEYS),
        row["status"],
    ]


def table_header(keys: list[str]) -> list[str]:
    return ["#", "run", *(key.replace("_", "-") for key in keys)] + [
        "best val",
        "test acc",
        "macro F1",
        "time",
        "status",
    ]


def format_table(rows: list[dict[str, Any]], keys: list[str], sort: str = DEFAULT_SORT) -> list:
    """The comparison table as text lines, sorted by `sort`, the best run marked '*'."""
    best = best_run(rows, sort)
    header = ["", *table_header(keys)]
    body = [
        ["*" if best is not None and row["index"] == best["index"] else "", *table_cells(row, keys)]
        for row in sort_rows(rows, sort)
    ]
    left = {0, 2, len(header) - 1}  # the mark, the run's name and its status: left-aligned
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    lines = []
    for line in (header, *body):
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    title = SORT_FIELDS[sort][2]
    if best is not None:
        lines.append(
            f"sorted by {title}; * best: {best['run']} ({title} {format_metric(best, sort)})"
        )
    else:
        lines.append(f"sorted by {title}; no run has a {title} yet")
    return lines


def summary_line(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    order = ("finished", "running", "stopped", "interrupted", "failed", "pending")
    parts = [f"{counts[state]} {state}" for state in order if counts.get(state)]
    return f"{len(rows)} runs: " + ", ".join(parts)


# --- the queue runner -------------------------------------------------------------------------


class SweepLock:
    """An exclusive lock on the sweep folder: one queue runner at a time."""

    def __init__(self, sweep_dir: Path) -> None:
        self.handle = open(sweep_dir / LOCK_FILE, "a+")  # held until release()
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise UsageError(
                f"sweep {sweep_dir} is already being run by another process; wait for it or stop "
                f"it (cnn-tui sweep --stop {sweep_dir})"
            ) from None

    def release(self) -> None:
        self.handle.close()


@dataclass
class _Active:
    entry: dict[str, Any]
    run_dir: Path
    device: str
    pid: int
    offset: int
    resumed: bool


class Reporter:
    """What the queue runner tells: plain lines (one per run start, epoch and end) by default."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def _tag(self, entry: dict[str, Any]) -> str:
        return f"[{entry['index']}/{self.total}] {entry['dir']}"

    def sweep_started(self, sweep_dir: Path, manifest: dict[str, Any], devices, queue) -> None:
        grid = "; ".join(
            f"{key} = {', '.join(format_value(v) for v in values)}"
            for key, values in manifest["grid"].items()
        )
        each = "one run at a time" if len(devices) == 1 else "one run per device in parallel"
        self.print(f"sweep dir: {sweep_dir}")
        self.print(
            f"{self.total} runs (grid: {grid}), {len(queue)} to train on {', '.join(devices)}, "
            f"{each}"
        )

    def run_started(self, active: _Active) -> None:
        how = "resumed" if active.resumed else "started"
        overrides = describe(active.entry["overrides"])
        self.print(f"{self._tag(active.entry)} ({overrides}) {how} on {active.device}")

    def epoch(self, active: _Active, event: dict[str, Any]) -> None:
        val_loss = _number(event.get("val_loss"))
        loss = "" if val_loss is None else f", val loss {val_loss:.4f}"
        self.print(
            f"{self._tag(active.entry)} epoch {event.get('epoch')}/{event.get('epochs')}: val acc "
            f"{format_percent(event.get('val_acc'))}{loss}"
        )

    def run_ended(self, active: _Active, row: dict[str, Any]) -> None:
        state = row["status"]
        if state == "finished":
            f1 = _number(row.get("macro_f1"))
            self.print(
                f"{self._tag(active.entry)} finished: best val {format_percent(row['best_val_acc'])}"
                f", test {format_percent(row['test_acc'])}, macro F1 "
                f"{'-' if f1 is None else f'{f1:.4f}'}, {format_duration(row['seconds'])}"
            )
        else:
            message = (row.get("message") or "").splitlines()
            self.print(
                f"{self._tag(active.entry)} {state}" + (f": {message[0]}" if message else "")
            )

    def sweep_ended(self, state: str, sweep_dir: Path, manifest, rows, sort: str) -> None:
        self.print()
        for line in format_table(rows, list(manifest["grid"]), sort):
            self.print(line)
        self.print(f"sweep {state}: {summary_line(rows)}")
        if state != "finished" and any(row["status"] in TO_RUN for row in rows):
            self.print(f"continue with: cnn-tui sweep --no-ui --resume {sweep_dir}")


class JsonReporter(Reporter):
    """JSON lines: sweep_started, run_started, epoch, run_ended, then the table as the last line."""

    def emit(self, kind: str, **fields: Any) -> None:
        print(json.dumps({"event": kind, "time": time.time(), **fields}), file=self.out, flush=True)

    def sweep_started(self, sweep_dir, manifest, devices, queue) -> None:
        self.emit(
            "sweep_started",
            sweep_dir=str(sweep_dir),
            runs=self.total,
            to_run=[entry["dir"] for entry in queue],
            devices=list(devices),
            grid=manifest["grid"],
        )

    def run_started(self, active: _Active) -> None:
        self.emit(
            "run_started",
            run=active.entry["dir"],
            index=active.entry["index"],
            overrides=active.entry["overrides"],
            device=active.device,
            resumed=active.resumed,
            pid=active.pid,
        )

    def epoch(self, active: _Active, event: dict[str, Any]) -> None:
        fields = {k: v for k, v in event.items() if k not in ("event", "time")}
        self.emit("epoch", run=active.entry["dir"], index=active.entry["index"], **fields)

    def run_ended(self, active: _Active, row: dict[str, Any]) -> None:
        self.emit("run_ended", **row)

    def sweep_ended(self, state, sweep_dir, manifest, rows, sort) -> None:
        self.emit(f"sweep_{state}", **table_json(sweep_dir, manifest, rows, sort, state))


def table_json(sweep_dir, manifest, rows, sort: str, state: str) -> dict[str, Any]:
    best = best_run(rows, sort)
    return {
        "sweep_dir": str(sweep_dir),
        "status": state,
        "sort": sort,
        "grid": manifest["grid"],
        "best": None if best is None else best["run"],
        "table": sort_rows(rows, sort),
    }


def _events_size(run_dir: Path) -> int:
    try:
        return (run_dir / runs.EVENTS_FILE).stat().st_size
    except OSError:
        return 0


def _start(sweep_dir: Path, base: TrainConfig, entry: dict[str, Any], device: str) -> _Active:
    """Start (or resume) one run of the sweep on `device` as its own trainer process."""
    from cnn_tui.training.runs import launcher

    run_dir = sweep_dir / str(entry["dir"])
    state = run_state(run_dir)
    offset = _events_size(run_dir)
    if state in ("stopped", "interrupted") and (run_dir / runs.CONFIG_FILE).is_file():
        runs.write_config(run_dir, runs.read_config(run_dir).replace(device=device))
        return _Active(entry, run_dir, device, launcher.resume_run(run_dir), offset, True)
    config = TrainConfig.from_mapping({**entry["overrides"], "device": device}, base=base)
    return _Active(entry, run_dir, device, launcher.launch_run(config, run_dir), offset, False)


def _start_failed(sweep_dir, entry, device, exc, reporter, manifest) -> None:
    run_dir = sweep_dir / str(entry["dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_status(run_dir, "failed", message=f"cannot start the run: {exc}")
    row = next(r for r in sweep_rows(sweep_dir, manifest) if r["index"] == entry["index"])
    reporter.run_ended(_Active(entry, run_dir, device, 0, 0, False), row)


def _ended(active: _Active, code: int, stopping: bool) -> None:
    """After a trainer exited: a run that died without saying why is marked failed."""
    from cnn_tui.training.runs import launcher

    status = runs.read_status(active.run_dir)
    own = status is not None and status.get("pid") == active.pid
    if own and status.get("status") in ("finished", "failed", "stopped"):
        return
    if stopping and code in (-15, 130, 143):
        return  # stopped before it could start: it stays pending (or interrupted) for --resume
    tail = launcher.output_tail(active.run_dir, lines=3).strip().replace("\n", " | ")
    message = f"the trainer exited with code {code}" + (f": {tail}" if tail else "")
    runs.write_status(active.run_dir, "failed", message=message, pid=active.pid)


def run_queue(
    sweep_dir: str | os.PathLike[str],
    devices: list[str],
    reporter: Reporter,
    stop: threading.Event,
    *,
    sort: str | None = None,
    poll_s: float = 0.2,
) -> str:
    """Train the sweep's pending and stopped runs, one per device at a time, until all are over
    or `stop` is set (the runs in progress then get SIGTERM and checkpoint). Returns the sweep's
    final state: finished (every run over, some may have failed) or stopped."""
    from cnn_tui.training.runs import launcher

    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    base = base_config(manifest)
    sort = sort or manifest.get("sort") or DEFAULT_SORT
    lock = SweepLock(sweep_dir)
    started = False
    try:
        rows = sweep_rows(sweep_dir, manifest)
        busy = [row for row in rows if row["status"] == "running"]
        if busy:
            raise UsageError(
                f"run {busy[0]['run']} of sweep {sweep_dir} is still training; wait for it or "
                "stop it first"
            )
        queue = [
            entry
            for entry, row in zip(manifest["runs"], rows, strict=True)
            if row["status"] in TO_RUN
        ]
        total = len(manifest["runs"])

        def status(state: str, message: str) -> None:
            runs.write_status(sweep_dir, state, message=message, devices=devices, runs_total=total)

        status("running", f"training {len(queue)} of {total} runs on {', '.join(devices)}")
        started = True
        reporter.sweep_started(sweep_dir, manifest, devices, queue)
        active: dict[str, _Active] = {}
        forwarded = False
        while True:
            if not stop.is_set():
                for device in devices:
                    while device not in active and queue:
                        entry = queue.pop(0)
                        try:
                            run = active[device] = _start(sweep_dir, base, entry, device)
                        except (OSError, UsageError) as exc:  # this run cannot start: the next
                            _start_failed(sweep_dir, entry, device, exc, reporter, manifest)
                            continue
                        reporter.run_started(run)
            elif not forwarded:
                for run in active.values():
                    launcher.stop_run(run.run_dir, run.pid)
                forwarded = True
            for device, run in list(active.items()):
                code = launcher.child_exit_code(run.pid)
                events, run.offset = runs.read_events(run.run_dir, run.offset)
                for event in events:
                    if event.get("event") == "epoch":
                        reporter.epoch(run, event)
                if code is None:
                    continue
                _ended(run, code, stop.is_set())
                del active[device]
                row = next(
                    r for r in sweep_rows(sweep_dir, manifest) if r["index"] == run.entry["index"]
                )
                reporter.run_ended(run, row)
                done = sum(
                    1
                    for r in sweep_rows(sweep_dir, manifest)
                    if r["status"] in ("finished", "failed")
                )
                status("running", f"{done} of {total} runs done")
            if not active and (stop.is_set() or not queue):
                break
            time.sleep(poll_s)
        rows = sweep_rows(sweep_dir, manifest)
        left = [row for row in rows if row["status"] in TO_RUN]
        state = "stopped" if left else "finished"
        status(state, summary_line(rows))
        reporter.sweep_ended(state, sweep_dir, manifest, rows, sort)
        return state
    except BaseException as exc:
        if started:  # a second Ctrl+C (the runs got SIGTERM and checkpoint) or a bug
            state = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
            runs.write_status(sweep_dir, state, message=f"the queue runner ended: {exc!r}")
        raise
    finally:
        lock.release()


# --- starting, stopping, resuming -------------------------------------------------------------


def runner_command(sweep_dir: Path, devices: list[str], sort: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "cnn_tui.training.runs.sweeps", str(sweep_dir)]
    command += ["--devices", ",".join(devices)]
    return command + (["--sort", sort] if sort else [])


def launch_sweep(
    sweep_dir: str | os.PathLike[str], devices: list[str], sort: str | None = None
) -> int:
    """Run the sweep's queue in the background, detached like a single run (its own session,
    output in SWEEP_DIR/output.log); returns the runner's pid."""
    from cnn_tui.training.runs import launcher

    sweep_dir = Path(sweep_dir)
    # the same detaching as a single run: own session, stdin closed, output to output.log
    return launcher.spawn_detached(runner_command(sweep_dir, devices, sort), sweep_dir)


def stop_sweep(sweep_dir: str | os.PathLike[str], pid: int | None = None) -> bool:
    """SIGTERM to the sweep's runner: it stops its runs with a checkpoint. False: not running."""
    from cnn_tui.training.runs import launcher

    return launcher.stop_run(sweep_dir, pid)


def check_resumable(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a sweep that may be resumed now (its runner is not alive)."""
    manifest = read_manifest(sweep_dir)
    state, status = sweep_state(sweep_dir)
    if state == "running":
        raise UsageError(
            f"sweep {sweep_dir} is still running (pid {(status or {}).get('pid')}); stop it first "
            f"(cnn-tui sweep --stop {sweep_dir})"
        )
    return manifest


def resume_devices(args: argparse.Namespace, manifest: dict[str, Any]) -> list[str]:
    """--resume takes --device and --sort only; the devices default to the manifest's."""
    from cnn_tui.commands.train_flags import given_flags

    other = [name for name in given_flags(args) if name != "device"]
    other += [flag for flag in ("preset", "config", "run_dir") if getattr(args, flag, None)]
    other += ["grid"] if getattr(args, "grid", None) else []
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise UsageError(
            f"--resume continues the sweep with its own settings and grid; only --device and "
            f"--sort may be given with it (got {flags})"
        )
    return resolve_devices(getattr(args, "device", None) or str(manifest.get("device") or "auto"))


def check_tui_args(args: argparse.Namespace) -> None:
    """What the TUI checks before it opens (bad flags: one line, exit 2, no screen)."""
    for flag in ("show", "resume"):
        if getattr(args, flag, None):
            _exclusive(args, flag)
    if getattr(args, "show", None):
        read_manifest(args.show)
    elif getattr(args, "resume", None):
        resume_devices(args, check_resumable(args.resume))
    else:
        check_grid_size(parse_grid(getattr(args, "grid", None) or []))


def _exclusive(args: argparse.Namespace, flag: str) -> None:
    others = [
        name for name in ("show", "resume", "stop") if name != flag and getattr(args, name, None)
    ]
    if others:
        raise UsageError(f"--{flag} cannot be combined with --{others[0]}")
    if flag in ("show", "stop"):
        from cnn_tui.commands.train_flags import given_flags

        extra = list(given_flags(args)) + (["grid"] if getattr(args, "grid", None) else [])
        extra += [name for name in ("preset", "config", "run_dir") if getattr(args, name, None)]
        if extra:
            raise UsageError(
                f"--{flag} reads an existing sweep; settings such as --{extra[0].replace('_', '-')} "
                "do not apply"
            )


# --- `cnn-tui sweep --no-ui` ------------------------------------------------------------------


def make_reporter(args: argparse.Namespace, total: int, out: TextIO | None = None) -> Reporter:
    out = out or sys.stdout
    return JsonReporter(out, total) if getattr(args, "json", False) else Reporter(out, total)


def show(args: argparse.Namespace) -> int:
    sweep_dir = Path(args.show)
    manifest = read_manifest(sweep_dir)
    sort = args.sort or manifest.get("sort") or DEFAULT_SORT
    rows = sweep_rows(sweep_dir, manifest)
    state, status = sweep_state(sweep_dir)
    if getattr(args, "json", False):
        print(json.dumps(table_json(sweep_dir, manifest, rows, sort, state)))
        return EXIT_OK
    grid = "; ".join(
        f"{key} = {', '.join(format_value(v) for v in values)}"
        for key, values in manifest["grid"].items()
    )
    print(f"sweep {sweep_dir} ({state}) — grid: {grid}")
    for line in format_table(rows, list(manifest["grid"]), sort):
        print(line)
    print(summary_line(rows))
    return EXIT_OK


def run_sweep(args: argparse.Namespace) -> int:
    """`cnn-tui sweep --no-ui`: 0 every run finished, 1 some failed, 130 stopped."""
    from cnn_tui.training.headless import stop_on_signals

    for flag in ("show", "stop", "resume"):
        if getattr(args, flag, None):
            _exclusive(args, flag)
    if args.show:
        return show(args)
    if args.stop:
        read_manifest(args.stop)
        if stop_sweep(args.stop):
            print(f"asked sweep {args.stop} to stop: its runs save a checkpoint and stop")
        else:
            print(f"sweep {args.stop} is not running")
        return EXIT_OK
    if args.resume:
        sweep_dir = Path(args.resume)
        devices = resume_devices(args, check_resumable(sweep_dir))
    else:
        plan = plan_from_args(args)
        sweep_dir = create_sweep(plan, getattr(args, "runs_dir", "runs"), args.run_dir)
        devices = plan.devices
    total = len(read_manifest(sweep_dir)["runs"])
    if args.detach:
        pid = launch_sweep(sweep_dir, devices, args.sort)
        print(f"sweep dir: {sweep_dir}")
        print(f"the queue runs in the background (pid {pid}, output in {sweep_dir}/output.log)")
        print(
            f"table: cnn-tui sweep --show {sweep_dir} --no-ui; stop: cnn-tui sweep --stop {sweep_dir}"
        )
        return EXIT_OK
    reporter = make_reporter(args, total)
    stop = threading.Event()
    with stop_on_signals(stop, lambda text: print(f"cnn-tui: {text}", file=sys.stderr)):
        state = run_queue(sweep_dir, devices, reporter, stop, sort=args.sort)
    if state == "stopped":
        return EXIT_STOPPED
    failed = any(row["status"] == "failed" for row in sweep_rows(sweep_dir))
    return EXIT_FAILED if failed else EXIT_OK


def _runner_main(argv: Sequence[str]) -> int:
    """`python -m cnn_tui.training.runs.sweeps SWEEP_DIR --devices D1,D2`: the detached queue runner."""
    from cnn_tui.training.headless import stop_on_signals

    parser = argparse.ArgumentParser(prog="python -m cnn_tui.training.runs.sweeps")
    parser.add_argument("sweep_dir")
    parser.add_argument("--devices", required=True)
    parser.add_argument("--sort", choices=SORT_KEYS)
    args = parser.parse_args(argv)
    try:
        manifest = read_manifest(args.sweep_dir)
        reporter = Reporter(sys.stdout, len(manifest["runs"]))
        stop = threading.Event()
        with stop_on_signals(stop, lambda text: print(f"sweep runner: {text}", flush=True)):
            state = run_queue(
                args.sweep_dir, args.devices.split(","), reporter, stop, sort=args.sort
            )
    except UsageError as exc:
        print(f"cnn-tui sweep: error: {exc}", flush=True)
        return 2
    return EXIT_STOPPED if state == "stopped" else EXIT_OK


if __name__ == "__main__":
    sys.exit(_runner_main(sys.argv[1:]))
