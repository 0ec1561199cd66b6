"""Sweeps: one base configuration, a grid of settings, every combination trained as its own run.

`cnn-tui sweep [train flags] --grid KEY=V1,V2 [--grid KEY2=...]` (`cnn_tui.commands.sweep`)
expands the grid (the cartesian product, in the order of the --grid flags, the last key varying
fastest) into at most `MAX_RUNS` runs inside one sweep folder:

    runs/sweep-YYYYmmdd-HHMMSS-KEYS/
      sweep.json      the manifest: base settings, grid, device list, and each run's overrides
                      and folder (written once, atomically)
      status.json     the queue runner's state: running / finished / stopped / failed, and its
                      process (pid, host, start time: what `--stop` checks before signalling)
      output.log      the output of a runner started in the background
      01-epochs-20/   one ordinary run directory per combination (config.toml, metrics.jsonl, ...)

The queue runner (`run_queue`) trains the runs one at a time per device, one per GPU in parallel
when there are several, each as its own `cnn-tui train --no-ui` process started by
`cnn_tui.training.runs.launcher` (so every run is exactly what `cnn-tui train` would do), and
tells a `SweepReporter` how it goes. It runs in the foreground (`--no-ui`) or detached
(`launch_sweep`: `python -m cnn_tui.commands.sweep_runner DIR`, its own session, so it survives
an SSH drop). SIGTERM or Ctrl+C stops the runs in progress with a checkpoint and leaves the rest
pending; `--resume SWEEP_DIR` keeps the finished (and failed) runs, resumes the stopped ones from
their checkpoint and starts the pending ones. The comparison table's cells (`table_cells`) are
the same in `cnn-tui sweep` and the sweep screen.

Every bad grid, device list or folder is a UsageError raised before anything is written, and so
is a manifest whose run folder leads outside the sweep folder (`run_path`: `../victim`, an
absolute path, `..` or a symbolic link out are refused when sweep.json is read). UI-free
and torch-free at import (torch only to find the GPUs of `--device auto` or check `cuda:N`).
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.fileio import (
    atomic_write_text,
    check_input_file,
    confined,
    json_text,
    json_value,
    open_own_file,
)
from cnn_tui.text import duration, number, one_line, percent
from cnn_tui.training import loggers
from cnn_tui.training.config import FIELDS, ConfigError, TrainConfig, parse_field
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import BUSY, OVER, RunState
from cnn_tui.training.system import devices
from cnn_tui.training.system.processes import ProcessId, this_host

if TYPE_CHECKING:
    from cnn_tui.training.runs.launcher import StopAnswer

SWEEP_FILE = runs.SWEEP_FILE  # "sweep.json"
LOCK_FILE = runs.RUNNER_LOCK_FILE  # ".runner.lock": held by the one queue runner of a sweep
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
# what a (resumed) queue trains
TO_RUN = (RunState.PENDING, RunState.STOPPED, RunState.INTERRUPTED)
DONE = (RunState.FINISHED, RunState.FAILED, RunState.PRUNED)  # a run the queue is through with
# the states of the runs in the summary line, in this order
SUMMARY_ORDER = (
    RunState.FINISHED,
    RunState.PRUNED,
    RunState.RUNNING,
    RunState.ELSEWHERE,
    RunState.STOPPED,
    RunState.INTERRUPTED,
    RunState.FAILED,
    RunState.PENDING,
)
RUNNER_MODULE = "cnn_tui.commands.sweep_runner"  # the queue runner started in the background


class SweepState(StrEnum):
    """The queue runner's state. Its status.json is written and read like a run's (so the same
    words, from `RunState`), and a sweep whose runner never started has none: CREATED."""

    CREATED = "created"
    RUNNING = RunState.RUNNING.value
    FINISHED = RunState.FINISHED.value  # every run is over (some may have failed)
    STOPPED = RunState.STOPPED.value  # stopped on request: some runs are left to do
    FAILED = RunState.FAILED.value  # the runner itself broke
    INTERRUPTED = RunState.INTERRUPTED.value  # "running" in status.json, its process is gone
    ELSEWHERE = RunState.ELSEWHERE.value  # "running" in status.json, on another machine
    UNKNOWN = RunState.UNKNOWN.value  # a damaged status.json


# --- the grid ---------------------------------------------------------------------------------


def grid_key(text: str) -> str:
    """A grid key as typed ("batch-size", "--batch-size", "batch_size") -> the setting's name."""
    return text.strip().lstrip("-").replace("-", "_")


def format_value(value: Any) -> str:
    """A setting's value as the grid shows it: 0.001, 20, on, simple-cnn (a text from sweep.json
    through `one_line`)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return "default" if value is None else one_line(value)


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
        if FIELDS[key].items:  # (its comma means "all of these", not "one run each")
            raise UsageError(
                f"--grid {spec}: {FIELDS[key].flag} is not a hyperparameter to vary: give "
                f"{FIELDS[key].flag} {values_text.strip()} to the sweep, and every run gets it"
            )
        if key in grid:
            raise UsageError(
                f"--grid {spec}: {key_text.strip()} is already in the grid; give all its values "
                "in one --grid KEY=V1,V2"
            )
        if not values_text.strip():
            raise UsageError(f"--grid {spec}: no values; expected KEY=V1,V2,...")
        texts = values_text.split(",")
        if not all(text.strip() for text in texts):
            raise UsageError(f"--grid {spec}: an empty value in the list")
        grid[key] = distinct_values(texts, functools.partial(parse_field, key), f"--grid {spec}")
    return grid


def distinct_values(raw: Iterable[Any], parse: Callable[[Any], Any], where: str) -> list[Any]:
    """Each of `raw` through `parse` (a setting's own parser), in order; a value that does not
    parse, or a second of the same value, is a one-line usage error that starts with `where`."""
    values: list[Any] = []
    for item in raw:
        try:
            value = parse(item)
        except ConfigError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if value in values:
            raise UsageError(f"{where}: {format_value(value)} is in the list twice")
        values.append(value)
    return values


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
    return " ".join(f"{one_line(key)}={format_value(value)}" for key, value in overrides.items())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "x"


def value_slugs(overrides: dict[str, Any]) -> list[str]:
    """["epochs-20", "lr-0.001"]: a run's settings as parts of its folder's name."""
    return [
        f"{_slug(key.replace('_', '-'))}-{_slug(format_value(v))}" for key, v in overrides.items()
    ]


def run_dir_name(index: int, overrides: dict[str, Any]) -> str:
    """ "01-epochs-20-lr-0.001": the run's number and its grid values."""
    return "-".join([f"{index:02d}", *value_slugs(overrides)])


# --- devices ----------------------------------------------------------------------------------


def resolve_devices(spec: str) -> list[str]:
    """`auto` -> every GPU (cuda:0, cuda:1, ...) or ["cpu"]; a comma list -> its checked devices."""
    text = (spec or "auto").strip().lower()
    if text == "auto":
        count = devices.gpu_count()
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

    def model_checks(self) -> list[ModelCheck]:
        """The models the runs build that are checked before the sweep starts (the user's own
        classes, torchvision's models), once per distinct build."""
        return model_checks(self.base, [entry["overrides"] for entry in self.runs], "runs")


# What a model is built from: a user's own class (`models.own.sizes_for`) from the data set's
# channels and classes, the image size and --hidden-units; a torchvision:NAME model from the
# image size alone. A sweep checks each model once per combination.
BUILD_SETTINGS = ("model", "dataset", "data_dir", "image_size", "hidden_units")


@dataclass(frozen=True)
class ModelCheck:
    """A model that runs of a sweep build (your own class, a torchvision:NAME model): their
    settings (`config`) and which runs they are, in words (`runs`: "the runs with
    dataset=cifar10", the build settings the grid varies; "" when it varies none)."""

    config: TrainConfig
    runs: str = ""

    def problem(self, text: str) -> str:
        """The check's one-line problem `text`, saying which runs it stops."""
        return f"{self.runs}: {text}" if self.runs else text


def _build_key(config: TrainConfig) -> tuple | None:
    """What `config`'s model is checked for (`BUILD_SETTINGS`; a torchvision model: its name
    and the size of its images); None: a model of cnn-tui's own, which the settings' rules
    check already."""
    if catalog.is_own(config.model):
        return tuple(getattr(config, name) for name in BUILD_SETTINGS)
    if config.model.startswith(catalog.ZOO_PREFIX):
        from cnn_tui.training.models.sizes import image_size_of

        return (config.model, image_size_of(config))
    return None


def model_checks(
    base: TrainConfig, variations: Iterable[dict[str, Any]], what: str
) -> list[ModelCheck]:
    """The models that `base` changed by each of `variations` builds and that are checked
    before a sweep starts (`_build_key`), once per distinct build, in order; `what` names the
    variations ("runs", "trials"). A variation the rules between settings refuse is left to
    the plan's checks."""
    checks: dict[tuple, ModelCheck] = {}
    for overrides in variations:
        try:
            config = TrainConfig.from_mapping(overrides, base=base)
        except ConfigError:
            continue
        key = _build_key(config)
        if key is None or key in checks:
            continue
        own = catalog.is_own(config.model)
        varied = [  # (your class's file and line lead its problem already)
            f"{name.replace('_', '-')}={format_value(value)}"
            for name, value in overrides.items()
            if name in BUILD_SETTINGS and not (own and name == "model")
        ]
        runs = f"the {what} with {one_line(' '.join(varied))}" if varied else ""
        checks[key] = ModelCheck(config, runs)
    return list(checks.values())


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
    loggers.check_installed(base.loggers)  # (not once per run: before the sweep starts)
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
    atomic_write_text(path / SWEEP_FILE, json_text(manifest, indent=1) + "\n")
    return path


def read_manifest(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """sweep.json, checked; UsageError when the folder is not a sweep."""
    path = Path(sweep_dir)
    if not path.is_dir():
        raise UsageError(f"{path}: no such sweep folder")
    if not (path / SWEEP_FILE).exists():
        raise UsageError(f"{path} is not a sweep folder (it has no {SWEEP_FILE})")
    try:
        manifest = check_input_file(path / SWEEP_FILE, "the sweep manifest")
        data = json_value(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"cannot read {path / SWEEP_FILE}: {exc}") from None
    problem = _manifest_problem(data)
    if problem:
        raise UsageError(f"{path / SWEEP_FILE} is not a sweep manifest ({problem})")
    for entry in data["runs"]:
        run_path(path, entry)  # every run's folder inside the sweep, before anything is written
    return data


def _manifest_problem(data: Any) -> str | None:
    """What makes `data` no sweep manifest of ours, in a few words (a file is untrusted: every
    field the readers use is checked here, once), or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("base"), dict):
        return "no base settings"
    grid = data.get("grid")
    if not isinstance(grid, dict) or not all(
        isinstance(key, str) and isinstance(values, list) for key, values in grid.items()
    ):
        return "its grid is not setting -> list of values"
    sort = data.get("sort")
    if sort is not None and not (isinstance(sort, str) and sort in SORT_FIELDS):
        return f"its sort is not one of {', '.join(SORT_FIELDS)}"
    if not isinstance(data.get("runs"), list):
        return "no list of runs"
    for entry in data["runs"]:
        if not isinstance(entry, dict):
            return "a run is not a JSON object"
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index < 2**31:
            return "a run's index is not a count"
        overrides = entry.get("overrides", {})
        if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
            return f"run {index}'s overrides are not setting -> value"
    return None


def run_path(sweep_dir: str | os.PathLike[str], entry: dict[str, Any]) -> Path:
    """The folder of a run of the sweep (its manifest entry's `dir`), confined to the sweep
    folder: a manifest naming `../victim`, an absolute path or `..` is refused (UsageError)."""
    what = f"{Path(sweep_dir) / SWEEP_FILE}: the run folder"
    return confined(sweep_dir, entry.get("dir"), what)


def base_config(manifest: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_mapping(manifest["base"], source=SWEEP_FILE, check=False)


# --- reading a sweep back ---------------------------------------------------------------------


def run_state(run_dir: Path) -> RunState:
    """PENDING (not started), RUNNING, FINISHED, FAILED, STOPPED or INTERRUPTED."""
    state, status = runs.read_state(run_dir)
    return RunState.PENDING if status is None else state


def sweep_state(sweep_dir: str | os.PathLike[str]) -> tuple[SweepState, dict[str, Any] | None]:
    """The runner's state (CREATED: never started; INTERRUPTED: its process is gone) and status."""
    state, status = runs.read_state(sweep_dir)
    return (SweepState.CREATED if status is None else SweepState(state)), status


def sweep_rows(sweep_dir: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> list:
    """One dict per run, in grid order: index, run, path, overrides, status, best_val_acc,
    test_acc, macro_f1, seconds (the wall time: `wall_seconds`), train_seconds (the epochs'
    time), epochs_done, epochs, message (small files only)."""
    sweep_dir = Path(sweep_dir)
    manifest = manifest or read_manifest(sweep_dir)
    epochs_base = manifest["base"].get("epochs")
    rows = []
    for entry in manifest["runs"]:
        path = run_path(sweep_dir, entry)
        state, status = runs.read_state(path)
        summary = runs.read_summary(path) or {}
        state = RunState.PENDING if status is None else state
        status = status or {}
        seconds = wall_seconds(state, status, summary)
        overrides = entry.get("overrides") or {}
        number, count = runs.number_or_none, runs.count_or_zero  # (the files hold anything)
        rows.append(
            {
                "index": entry["index"],
                "run": str(entry["dir"]),
                "path": str(path),
                "overrides": overrides,
                "status": state,
                "best_val_acc": number(summary.get("best_val_acc", status.get("best_val_acc"))),
                "test_acc": number(summary.get("test_accuracy")),
                "macro_f1": number(summary.get("macro_f1")),
                "seconds": seconds if state in (RunState.FINISHED, *BUSY) else None,
                "train_seconds": number(summary.get("seconds")),
                "epochs_done": count(summary.get("epochs_done", status.get("epoch", 0))),
                "epochs": count(status.get("epochs"))
                or count(overrides.get("epochs"))
                or count(epochs_base),
                "message": str(status.get("message") or ""),
            }
        )
    return rows


def wall_seconds(state: RunState, status: dict[str, Any], summary: dict[str, Any]) -> float | None:
    """A run's wall time, what the table's "time" shows: a finished run's trainers from their
    start to the end, over all sessions (summary.json's `wall_seconds`; for a run of an older
    cnn-tui, from its first status to its last); a run in progress, since its first status. Not
    the epochs' training time (summary.json's `seconds`), which leaves out the start (torch,
    the data, the model) and the test: 0.5 s of a 5 s run."""
    started = runs.number_or_none(status.get("started"))
    if state in BUSY:
        return time.time() - started if started is not None else None
    wall = runs.number_or_none(summary.get("wall_seconds"))
    updated = runs.number_or_none(status.get("updated"))
    if wall is None and summary and started is not None and updated is not None:
        wall = max(0.0, updated - started)
    return wall


def sort_rows(rows: list[dict[str, Any]], key: str = DEFAULT_SORT) -> list[dict[str, Any]]:
    """Best first by `key` (val_acc, test_acc, f1: highest; time: shortest); no value last."""
    field, higher, _ = SORT_FIELDS[key]

    def order(row: dict[str, Any]) -> tuple:
        value = runs.number_or_none(row.get(field)) if _counts(row, key) else None
        if value is None:
            return (1, 0.0, row["index"])
        return (0, -value if higher else value, row["index"])

    return sorted(rows, key=order)


def _counts(row: dict[str, Any], key: str) -> bool:
    # a running run's time is not final
    return key != "time" or row.get("status") == RunState.FINISHED


def best_run(rows: list[dict[str, Any]], key: str = DEFAULT_SORT) -> dict[str, Any] | None:
    """The best run by `key` (time: the fastest finished run), or None when none has a value."""
    field = SORT_FIELDS[key][0]
    ranked = sort_rows(rows, key)
    if ranked and _counts(ranked[0], key) and runs.number_or_none(ranked[0].get(field)) is not None:
        return ranked[0]
    return None


def format_metric(row: dict[str, Any], key: str) -> str:
    """The value a table is sorted by, as its column shows it."""
    value = row.get(SORT_FIELDS[key][0])
    if key == "time":
        return duration(value)
    if key == "f1":
        return number(value, ".4f")
    return percent(value)


def table_cells(row: dict[str, Any], keys: list[str]) -> list[str]:
    """The cells of one row of the comparison table (after the best run's mark), the same in
    `cnn-tui sweep` and the sweep screen: #, run, the grid values, metrics, time, status."""
    return [
        str(row["index"]),
        one_line(row["run"]),
        *(format_value(row["overrides"].get(key)) for key in keys),
        *(format_metric(row, key) for key in SORT_KEYS),
        row["status"],
    ]


def table_keys(manifest: dict[str, Any]) -> list[str]:
    """The settings the table has a column for: the grid's keys, or a search's space."""
    search = manifest.get("search")
    if isinstance(search, dict) and isinstance(search.get("space"), dict):
        return [str(key) for key in search["space"]]
    return list(manifest["grid"])


def planned_runs(manifest: dict[str, Any]) -> int:
    """How many runs the sweep makes: the grid's, or the search's trials."""
    search = manifest.get("search")
    if isinstance(search, dict):
        trials = search.get("trials")
        return trials if isinstance(trials, int) and not isinstance(trials, bool) else 0
    return len(manifest["runs"])


def table_header(keys: list[str]) -> list[str]:
    return ["#", "run", *(one_line(key).replace("_", "-") for key in keys)] + [
        "best val",
        "test acc",
        "macro F1",
        "time",
        "status",
    ]


def summary_line(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    parts = [f"{counts[state]} {state}" for state in SUMMARY_ORDER if counts.get(state)]
    return f"{len(rows)} runs: " + ", ".join(parts)


# --- the queue runner -------------------------------------------------------------------------


class SweepLock:
    """An exclusive lock on the sweep folder: one queue runner at a time."""

    def __init__(self, sweep_dir: Path) -> None:
        fd = open_own_file(sweep_dir / LOCK_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        self.handle = os.fdopen(fd, "a+")  # held until release()
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
class ActiveRun:
    """A run of the sweep that a trainer process is training now."""

    entry: dict[str, Any]  # the manifest's entry: index, dir, overrides
    run_dir: Path
    device: str
    pid: int
    offset: int  # how much of its metrics.jsonl was read
    resumed: bool


class SweepReporter(Protocol):
    """What the queue runner tells as it goes (the command prints it; the core never does)."""

    def sweep_started(
        self,
        sweep_dir: Path,
        manifest: dict[str, Any],
        devices: list[str],
        queue: list[dict[str, Any]],
    ) -> None: ...

    def note(self, text: str) -> None: ...

    def run_started(self, active: ActiveRun) -> None: ...

    def epoch(self, active: ActiveRun, event: dict[str, Any]) -> None: ...

    def run_ended(self, active: ActiveRun, row: dict[str, Any]) -> None: ...

    def sweep_ended(
        self,
        state: SweepState,
        sweep_dir: Path,
        manifest: dict[str, Any],
        rows: list[dict[str, Any]],
        sort: str,
    ) -> None: ...


def _events_size(run_dir: Path) -> int:
    try:
        return (run_dir / runs.EVENTS_FILE).stat().st_size
    except OSError:
        return 0


def start_run(
    sweep_dir: Path, base: TrainConfig, entry: dict[str, Any], device: str, trust: bool = False
) -> ActiveRun:
    """Start (or resume) one run of the sweep on `device` as its own trainer process (`trust`:
    a resumed run of the user's own class may run its copy of the code)."""
    from cnn_tui.training.runs import launcher

    run_dir = run_path(sweep_dir, entry)
    state = run_state(run_dir)
    offset = _events_size(run_dir)
    if state in (RunState.STOPPED, RunState.INTERRUPTED) and (run_dir / runs.CONFIG_FILE).is_file():
        runs.write_config(run_dir, runs.read_config(run_dir).replace(device=device))
        pid = launcher.resume_run(run_dir, trust)
        return ActiveRun(entry, run_dir, device, pid, offset, True)
    config = TrainConfig.from_mapping({**entry["overrides"], "device": device}, base=base)
    return ActiveRun(entry, run_dir, device, launcher.launch_run(config, run_dir), offset, False)


def start_failed(sweep_dir, entry, device, exc, reporter, manifest) -> None:
    """A run that could not start: failed, with the reason."""
    run_dir = run_path(sweep_dir, entry)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_status(run_dir, RunState.FAILED, message=f"cannot start the run: {exc}")
    row = next(r for r in sweep_rows(sweep_dir, manifest) if r["index"] == entry["index"])
    reporter.run_ended(ActiveRun(entry, run_dir, device, 0, 0, False), row)


def ended(active: ActiveRun, code: int, stopping: bool) -> None:
    """After a trainer exited: a run that died without saying why is marked failed."""
    from cnn_tui.training.runs import launcher

    status = runs.read_status(active.run_dir)
    own = launcher.written_by(status, active.pid)
    if own and status.get("status") in OVER:  # it wrote its own end
        return
    if stopping and code in (-15, 130, 143):
        return  # stopped before it could start: it stays pending (or interrupted) for --resume
    tail = launcher.output_tail(active.run_dir, lines=3).strip().replace("\n", " | ")
    message = f"the trainer exited with code {code}" + (f": {tail}" if tail else "")
    trainer = launcher.child_identity(active.pid) or ProcessId(active.pid, this_host())
    runs.write_status(active.run_dir, RunState.FAILED, message=message, process=trainer)


def run_queue(
    sweep_dir: str | os.PathLike[str],
    devices: list[str],
    reporter: SweepReporter,
    stop: threading.Event,
    *,
    sort: str | None = None,
    poll_s: float = 0.2,
    storage: str | None = None,
    trust_model_code: bool = False,
) -> SweepState:
    """Train the sweep's pending and stopped runs, one per device at a time, until all are over
    or `stop` is set (the runs in progress then get SIGTERM and checkpoint). Returns the sweep's
    final state: finished (every run over, some may have failed) or stopped. A search's sweep
    folder is run by `search.run_search` (`storage`: its --storage URL). `trust_model_code`: the
    stopped runs of the user's own class resume from their copies of the code (`check_trusted`
    refuses a resumed sweep of such code without it)."""
    from cnn_tui.training.runs import launcher

    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    check_trusted(sweep_dir, manifest, trust_model_code)  # (a runner never runs code untrusted)
    if isinstance(manifest.get("search"), dict):
        from cnn_tui.training.runs import search

        return search.run_search(
            sweep_dir, devices, reporter, stop, sort=sort, storage=storage, poll_s=max(poll_s, 0.2)
        )
    base = base_config(manifest)
    sort = sort or manifest.get("sort") or DEFAULT_SORT
    lock = SweepLock(sweep_dir)
    started = False
    try:
        rows = sweep_rows(sweep_dir, manifest)
        busy = [row for row in rows if row["status"] in BUSY]
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

        def status(state: SweepState, message: str) -> None:
            runs.write_status(sweep_dir, state, message=message, devices=devices, runs_total=total)

        status(SweepState.RUNNING, f"training {len(queue)} of {total} runs on {', '.join(devices)}")
        started = True
        reporter.sweep_started(sweep_dir, manifest, devices, queue)
        active: dict[str, ActiveRun] = {}
        forwarded = False
        while True:
            if not stop.is_set():
                for device in devices:
                    while device not in active and queue:
                        entry = queue.pop(0)
                        try:
                            run = active[device] = start_run(
                                sweep_dir, base, entry, device, trust_model_code
                            )
                        except (OSError, UsageError) as exc:  # this run cannot start: the next
                            start_failed(sweep_dir, entry, device, exc, reporter, manifest)
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
                ended(run, code, stop.is_set())
                del active[device]
                row = next(
                    r for r in sweep_rows(sweep_dir, manifest) if r["index"] == run.entry["index"]
                )
                reporter.run_ended(run, row)
                done = sum(1 for r in sweep_rows(sweep_dir, manifest) if r["status"] in DONE)
                status(SweepState.RUNNING, f"{done} of {total} runs done")
            if not active and (stop.is_set() or not queue):
                break
            time.sleep(poll_s)
        rows = sweep_rows(sweep_dir, manifest)
        left = [row for row in rows if row["status"] in TO_RUN]
        state = SweepState.STOPPED if left else SweepState.FINISHED
        status(state, summary_line(rows))
        reporter.sweep_ended(state, sweep_dir, manifest, rows, sort)
        return state
    except BaseException as exc:
        if started:  # a second Ctrl+C (the runs got SIGTERM and checkpoint) or a bug
            state = SweepState.STOPPED if isinstance(exc, KeyboardInterrupt) else SweepState.FAILED
            runs.write_status(sweep_dir, state, message=f"the queue runner ended: {exc!r}")
        raise
    finally:
        lock.release()


# --- starting, stopping, resuming -------------------------------------------------------------


def runner_command(
    sweep_dir: Path,
    devices: list[str],
    sort: str | None = None,
    storage: str | None = None,
    trust_model_code: bool = False,
) -> list[str]:
    """The detached queue runner's command line (`cnn_tui.commands.sweep_runner`)."""
    command = [sys.executable, "-m", RUNNER_MODULE, str(sweep_dir)]
    command += ["--devices", ",".join(devices)]
    command += ["--trust-model-code"] if trust_model_code else []
    command += ["--storage", storage] if storage else []
    return command + (["--sort", sort] if sort else [])


def launch_sweep(
    sweep_dir: str | os.PathLike[str],
    devices: list[str],
    sort: str | None = None,
    storage: str | None = None,
    trust_model_code: bool = False,
) -> int:
    """Run the sweep's queue in the background, detached like a single run (its own session,
    output in SWEEP_DIR/output.log); returns the runner's pid."""
    from cnn_tui.training.runs import launcher

    sweep_dir = Path(sweep_dir)
    command = runner_command(sweep_dir, devices, sort, storage, trust_model_code)
    # the same detaching as a single run: own session, stdin closed, output to output.log
    return launcher.spawn_detached(command, sweep_dir)


def stop_sweep(sweep_dir: str | os.PathLike[str], pid: int | None = None) -> StopAnswer:
    """SIGTERM to the sweep's runner, its identity checked first (`launcher.stop_run`): it stops
    its runs with a checkpoint. False, with the reason: not running, or running elsewhere."""
    from cnn_tui.training.runs import launcher

    return launcher.stop_run(sweep_dir, pid)


def check_resumable(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a sweep that may be resumed now (its runner is not alive)."""
    manifest = read_manifest(sweep_dir)
    state, status = sweep_state(sweep_dir)
    if state == SweepState.RUNNING:
        raise UsageError(
            f"sweep {sweep_dir} is still running ({runs.trainer_text(status)}); stop it first "
            f"(cnn-tui sweep --stop {sweep_dir})"
        )
    if state == SweepState.ELSEWHERE:
        raise UsageError(
            f"sweep {sweep_dir} is running on another machine ({runs.trainer_text(status)}); "
            "stop or resume it there"
        )
    return manifest


def own_models(manifest: dict[str, Any]) -> list[str]:
    """The user's own classes a sweep trains (its base model, a grid's or search's choices)."""
    found: list[str] = []

    def look(value: Any, model: bool) -> None:  # `model`: under a "model" key
        if isinstance(value, str) and model:
            for part in value.split(","):
                if catalog.is_own(part) and part.strip() not in found:
                    found.append(part.strip())
        elif isinstance(value, dict):
            for key, item in value.items():
                look(item, model or key == "model")
        elif isinstance(value, list):
            for item in value:
                look(item, model)

    for key in ("base", "runs", "grid", "search"):
        look(manifest.get(key), False)
    return found


def check_trusted(
    sweep_dir: str | os.PathLike[str], manifest: dict[str, Any], trusted: bool
) -> None:
    """A sweep folder never runs code by itself: resuming one that trains the user's own class
    needs --trust-model-code (its stopped runs resume from their copies; its pending runs and
    new trials read the file the sweep names, as it is now)."""
    models = own_models(manifest)
    if models and not trusted:
        named = ", ".join(one_line(catalog.model_label(model)) for model in models[:3])
        raise UsageError(
            f"sweep {one_line(sweep_dir)} trains your own model code ({named}): a sweep folder "
            "never runs code by itself; its stopped runs resume from their copies "
            f"(RUN/{runs.MODEL_SOURCE_FILE}), its pending ones run the file it names as it is "
            "now: read them, then pass --trust-model-code"
        )


def resume_devices(manifest: dict[str, Any], device_spec: str | None = None) -> list[str]:
    """The devices a resumed sweep trains on: `device_spec`, by default the manifest's."""
    return resolve_devices(device_spec or str(manifest.get("device") or "auto"))
