"""Run directories: the one module that knows their files, writes them and reads them back.

A run directory holds what one training run wrote (see README, "Run directory"):

    config.toml     the TrainConfig, as TOML
    metrics.jsonl   one JSON event per line, appended and flushed as training goes
    status.json     {"status", "pid", "host", "pid_started", "message", "epoch", "epochs",
                     "started", "updated", ...}: "pid", "host" and "pid_started" name the
                     trainer's process (training/system/processes.py)
    summary.json    test metrics when the run finished
    checkpoint.pt   model/optimizer state after every epoch and at a stop (loop/checkpoints.py)
    best.pt         with --early-stop: the best epoch's weights (loop/checkpoints.py)
    samples.npz     some test images with true/predicted labels (numpy only)
    eval.json       the test metrics `cnn-tui eval` recomputed from the checkpoint
    output.log      the trainer's stdout/stderr, kept for every run, capped (output_log.py)
    model_source.py your own model's code (--model FILE.py:Class / module:Class): a copy of
                    the very bytes that trained, never run without --trust-model-code
    model_source.json  {"model", "class", "origin", "module", "sha256", "bytes"} of that copy
    lock            locked (flock) by the one trainer writing the run, for its whole life
    .prepared       left by `prepare_run_dir` (the TUI, a sweep): the folder was made ready for
                    a new run that its trainer process may take

A new run goes only into a folder that does not exist, is empty, or was made ready for it by
`prepare_run_dir` (`check_new_run_dir`): never `/`, a home folder or a folder of the user's own
files, which it would overwrite. Files the program appends to or locks are opened without
following a symbolic link (`fileio.open_own_file`), and a reader skips what is not a regular
file (a FIFO would wait for ever): a run folder from someone else leads nowhere else.

Every file but the append-only event log is written atomically (temporary file, then rename); a
trainer killed mid-write leaves its temporary file, which the next trainer removes
(`remove_temp_files`). A run folder deleted while its trainer writes it is not made again: the
next write of the run (an event, the status, a checkpoint: `writing_into`) raises `RunFolderGone`
and the trainer stops. Readers never fail on a damaged file: they skip what they cannot read.
UI-free and torch-free (numpy only when samples.npz is read or written) so the TUI (which imports
it) starts fast, and the trainer's JSON events cost no torch import; a process that follows a run
written by another process only needs the functions here.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import time
import tomllib
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui import catalog
from cnn_tui.errors import RunError, UsageError, disk_full
from cnn_tui.fileio import (
    atomic_write,
    atomic_write_text,
    check_output_path,
    is_regular_file,
    json_text,
    json_value,
    open_own_file,
    temp_files,
)
from cnn_tui.text import finite, one_line
from cnn_tui.training.config import MAX_TOML_BYTES, TrainConfig, load_config_file
from cnn_tui.training.runs import state as run_state
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.system import processes
from cnn_tui.training.system.processes import ProcessId

if TYPE_CHECKING:
    import numpy as np

CONFIG_FILE = "config.toml"
EVENTS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"  # early stopping: the best epoch's weights (checkpoints.save_best writes it)
SAMPLES_FILE = "samples.npz"
EVAL_FILE = "eval.json"
OUTPUT_LOG = "output.log"
MODEL_SOURCE_FILE = "model_source.py"  # a copy of the user's model code (training/models/own.py)
MODEL_SOURCE_RECORD = "model_source.json"  # where it came from and its sha256
LOCK_FILE = "lock"
SWEEP_FILE = "sweep.json"  # a sweep folder's manifest (training/sweeps.py); its runs are inside
RUNNER_LOCK_FILE = ".runner.lock"  # held by a sweep's one queue runner (training/sweeps.py)
STUDY_FILE = "study.db"  # a search's Optuna study (training/search.py)
SEARCH_REPORT_FILE = "search.json"  # a search's trials, best trial and importances
PREPARED_FILE = ".prepared"  # prepare_run_dir: a folder made ready for a new run's trainer
# what a folder made ready for a new run holds: the marker, the launcher's and its trainer's files
PREPARED_FILES = (PREPARED_FILE, CONFIG_FILE, OUTPUT_LOG, LOCK_FILE)

# the files a run or a sweep keeps, which no output (--json-file, -o, --csv) ever replaces
KEPT_FILES = (
    CONFIG_FILE, EVENTS_FILE, STATUS_FILE, SUMMARY_FILE, CHECKPOINT_FILE, BEST_FILE, SAMPLES_FILE,
    OUTPUT_LOG, MODEL_SOURCE_FILE, MODEL_SOURCE_RECORD, LOCK_FILE, SWEEP_FILE, EVAL_FILE,
    PREPARED_FILE, RUNNER_LOCK_FILE, STUDY_FILE, SEARCH_REPORT_FILE,
)  # fmt: skip

# the events that end a session of a run (the test set's "evaluated" comes after the training)
END_EVENTS = ("evaluated", "finished", "failed", "stopped")
BATCH_EVENT_INTERVAL_S = 0.25  # metrics.jsonl gets at most ~4 batch events per second
LOSS_SMOOTHING = 0.9  # beta of the per-batch loss average (`smoothed_loss` of batch events)
SAMPLES_WRONG = 24  # samples.npz: the most confident mistakes first ...
SAMPLES_TOTAL = 32  # ... then correct predictions up to this many images
# status.json, summary.json, ...: a summary's confusion matrix of 1,000 classes takes ~8 MiB
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_SAMPLES_BYTES = 64 * 1024 * 1024  # samples.npz, inflated: 32 images of 3x512x512 are 24 MiB


EXIT_RUN_FOLDER_GONE = 3  # the exit code of a trainer whose run folder was deleted under it


class RunFolderGone(RunError):
    """The run folder was deleted while its trainer was writing it. The trainer stops and writes
    nothing more: making the folder again would leave a "run" of a checkpoint and a status."""

    exit_code = EXIT_RUN_FOLDER_GONE

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        super().__init__(f"run folder {run_dir} was deleted while training: stopped")
        self.run_dir = Path(run_dir)


def check_run_folder(run_dir: str | os.PathLike[str]) -> None:
    """RunFolderGone when `run_dir` is no longer there (deleted while the run was writing it)."""
    if not Path(run_dir).is_dir():
        raise RunFolderGone(run_dir)


@contextmanager
def writing_into(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Around a write of one of a run's files (the store's own, and loop/checkpoints.py's): the
    folder is checked before, and a write that fails because it went during the write (atomic
    writes make no folder) is RunFolderGone as well."""
    check_run_folder(run_dir)
    try:
        yield
    except FileNotFoundError:
        check_run_folder(run_dir)
        raise


def _slug(text: str) -> str:
    """Letters and digits of any script, dots and dashes; every other run of characters (spaces,
    underscores, colons, slashes, controls) one dash: `my_net.py:Сеть` -> my-net.py-Сеть."""
    text = unicodedata.normalize("NFC", text)
    return re.sub(r"(?:[^\w.-]|_)+", "-", text).strip("-.") or "run"


def new_run_dir(runs_dir: str | os.PathLike[str], config: Any) -> Path:
    """Create and return a fresh folder such as runs/20261122-153012-simple-cnn-shapes."""
    model = _slug(catalog.model_label(config.model))  # (your own: file.py:Class, no folders)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{_slug(config.dataset)}"
    return create_unique_dir(runs_dir, stem, "run")


def create_unique_dir(parent: str | os.PathLike[str], stem: str, what: str) -> Path:
    """Create and return parent/stem, or stem-2, stem-3 ... when taken (never an existing one)."""
    base = Path(parent)
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UsageError(f"cannot find a free {what} folder name under {base}")


def looks_like_run(run_dir: str | os.PathLike[str]) -> bool:
    path = Path(run_dir)
    return (path / CONFIG_FILE).is_file() and (
        (path / STATUS_FILE).is_file() or (path / EVENTS_FILE).is_file()
    )


def check_output_file(
    path: str | os.PathLike[str], flag: str, run_dir: str | os.PathLike[str] | None = None
) -> Path:
    """`fileio.check_output_path` (a regular file or a new path, in a folder that exists), and
    never a file a run or a sweep keeps (`KEPT_FILES`: `eval RUN --json-file RUN/checkpoint.pt`,
    `export -o RUN/config.toml --force`): a slip of the tab key must not destroy a run.
    `run_dir`: the folder of the run the command trains, whose files do not exist yet."""
    target = check_output_path(path, flag)
    folder = target.parent
    keeper = "run" if looks_like_run(folder) else "sweep" if (folder / SWEEP_FILE).is_file() else ""
    ours = run_dir is not None and os.path.realpath(folder) == os.path.realpath(run_dir)
    if ours and target.name in KEPT_FILES:
        raise UsageError(
            f"{flag} {one_line(target)} is a file the run or sweep in {one_line(folder)} will "
            "keep: give another file name"
        )
    if keeper and target.name in KEPT_FILES and target.is_file():
        raise UsageError(
            f"{flag} {one_line(target)} is a file the {keeper} in {one_line(folder)} keeps: an "
            "output never replaces it; give another file name"
        )
    return target


@contextmanager
def lock_run(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the run's lock while the block runs: one trainer per run directory.

    An exclusive `flock` on RUN/lock (which keeps the holder's pid and host, for the message:
    nothing signals it, the lock itself says the holder lives), released
    when the block ends or the process dies, even by kill -9. A second trainer gets a UsageError
    and writes nothing. On a file system without locks (some network mounts) the run goes on
    unlocked. Yields the run directory (created if need be).
    """
    import fcntl

    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = open_own_file(path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        if disk_full(exc) is not None:
            raise
        raise UsageError(
            f"cannot use {path} as a run directory ({exc.strerror or exc}): choose another "
            "--run-dir"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(os.pread(fd, 300, 0))
            raise UsageError(
                f"run dir {path} is in use by another trainer{holder}: wait for it to end or "
                "stop it, or choose another --run-dir"
            ) from None
        except OSError:  # ENOLCK, EOPNOTSUPP: this file system has no locks
            pass
        else:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {processes.this_host()}\n".encode(), 0)
            except OSError:  # (a full disk: the lock holds all the same)
                pass
        yield path
    finally:
        os.close(fd)


def _lock_holder(data: bytes) -> str:
    """ " (pid 123)", " (pid 123 on HOST)" (another machine), or "" from a lock file's text."""
    pid, _, host = data.decode("utf-8", "replace").strip().partition(" ")
    if not pid.isdigit():
        return ""
    elsewhere = host and host != processes.this_host()
    return f" (pid {pid}" + (f" on {one_line(host)})" if elsewhere else ")")


def remove_temp_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a trainer killed mid-write left (call it holding the lock)."""
    path = Path(run_dir)
    names = (CONFIG_FILE, STATUS_FILE, SUMMARY_FILE, CHECKPOINT_FILE, BEST_FILE, SAMPLES_FILE)
    removed = []
    for stale in (tmp for name in names for tmp in temp_files(path / name)):
        try:
            stale.unlink()
        except OSError:
            continue
        removed.append(stale)
    return removed


# files that show a folder already holds a run (the TUI's launcher pre-writes only config.toml)
RUN_FILES = (STATUS_FILE, EVENTS_FILE, CHECKPOINT_FILE, SUMMARY_FILE)


def check_new_run_dir(path: str | os.PathLike[str], *, locked: bool = False) -> None:
    """Refuse a folder for a new run unless it does not exist, is empty, or was made ready by
    `prepare_run_dir`: nothing saved is ever overwritten, neither a run nor the user's own files,
    and `/` never gets run files. `locked`: this process made the folder's `lock` (`lock_run`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--run-dir {path} is a file, not a folder")
    if not path.is_dir():
        return
    status = read_status(path)
    if effective_status(status) in run_state.BUSY:
        raise UsageError(
            f"run dir {path} is in use by a running trainer ({trainer_text(status)}): wait for "
            "it to end or stop it, or choose another --run-dir"
        )
    if any((path / name).exists() for name in RUN_FILES):
        raise UsageError(
            f"run dir {path} already holds a run: pass --resume {path} to continue it or choose "
            "another --run-dir"
        )
    try:
        names = set(os.listdir(path))
    except OSError as exc:
        raise UsageError(
            f"cannot use {path} as a run directory ({exc.strerror or exc}): choose another "
            "--run-dir"
        ) from None
    names -= {stale.name for name in PREPARED_FILES for stale in temp_files(path / name)}
    ours = set(PREPARED_FILES) if PREPARED_FILE in names else {LOCK_FILE} if locked else set()
    others = sorted(names - ours)
    if others:
        shown = ", ".join(one_line(name) for name in others[:3]) + (", ..." if others[3:] else "")
        raise UsageError(
            f"run dir {path} holds other files ({shown}): a new run goes only into a new or "
            "empty folder, so that nothing in it is overwritten; choose another --run-dir"
        )


def prepare_run_dir(run_dir: str | os.PathLike[str], config: TrainConfig) -> None:
    """Make a folder ready for a new run that a trainer process will take (`launcher.launch_run`):
    checked (`check_new_run_dir`), then config.toml and the marker that lets the trainer, and a
    sweep starting the run again, tell it from a folder of the user's own."""
    path = Path(run_dir)
    check_new_run_dir(path)
    path.mkdir(
        parents=True, exist_ok=True
    )  # (the one place, with write_config, a run folder is made)
    atomic_write_text(path / PREPARED_FILE, "")
    write_config(path, config)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether `path` holds a run of ours that may be resumed: one a trainer wrote
    (`looks_like_run`) or one `prepare_run_dir` made ready."""
    path = Path(path)
    return looks_like_run(path) or (path / PREPARED_FILE).is_file()


def _read_json(path: Path) -> Any:
    if not is_regular_file(path):  # missing, or a FIFO that would wait for ever
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:  # (read again at every listing: never a gigabyte)
            return None
        return json_value(data.decode("utf-8"))
    except (OSError, ValueError):  # (UnicodeDecodeError is a ValueError)
        return None


def write_status(
    run_dir: str | os.PathLike[str],
    status: str,
    *,
    message: str = "",
    epoch: int = 0,
    epochs: int = 0,
    process: ProcessId | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Atomically (re)write status.json; `started` is kept from the previous status if any.
    `status` is one of `state.WRITTEN`; `process` is the trainer's (its pid, host and start
    time), by default this process."""
    if status not in run_state.WRITTEN:
        raise ValueError(f"unknown status {status!r}")
    path = Path(run_dir) / STATUS_FILE
    now = time.time()
    previous = _read_json(path) or {}
    record = {
        "status": status,
        **(processes.this_process() if process is None else process).fields(),
        "message": message,
        "epoch": epoch,
        "epochs": epochs,
        "started": previous.get("started", now) if isinstance(previous, dict) else now,
        "updated": now,
        **extra,
    }
    with writing_into(run_dir):
        _write_json(path, record)
    return record


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """status.json as a dict, or None when missing or unreadable."""
    data = _read_json(Path(run_dir) / STATUS_FILE)
    return data if isinstance(data, dict) else None


def diverged_epoch(run_dir: str | os.PathLike[str]) -> int | None:
    """The epoch (1-based) at which the run's training diverged, from its status.json; None
    for a run that did not (or a status that says nothing sensible)."""
    value = (read_status(run_dir) or {}).get("diverged_epoch")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json_text(data, indent=1) + "\n")


def write_summary(run_dir: str | os.PathLike[str], summary: dict[str, Any]) -> None:
    """Atomically write summary.json, the test metrics of a finished run."""
    with writing_into(run_dir):
        _write_json(Path(run_dir) / SUMMARY_FILE, summary)


def write_eval(run_dir: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """Atomically write eval.json, the metrics `cnn-tui eval` recomputed from the checkpoint."""
    _write_json(Path(run_dir) / EVAL_FILE, report)


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """summary.json as a dict, or None when the run has not finished (or the file is unreadable).
    Its tables (classes, confusion_matrix, per_class, most_confused, history) are left out when
    they are not of the types the trainer writes (`_typed_tables`): a file is untrusted."""
    data = _read_json(Path(run_dir) / SUMMARY_FILE)
    return _typed_tables(data) if isinstance(data, dict) else None


def _typed_tables(summary: dict[str, Any]) -> dict[str, Any]:
    """`summary` without the tables whose types are not what `write_summary` writes; every
    reader treats a missing table as a run that has none (an older or unfinished one)."""

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def rows(value: Any, fields: dict[str, Callable[[Any], bool]]) -> bool:
        return isinstance(value, list) and all(
            isinstance(row, dict) and all(ok(row.get(key)) for key, ok in fields.items())
            for row in value
        )

    def score(value: Any) -> bool:
        return value is None or finite(value)

    def text_field(value: Any) -> bool:
        return isinstance(value, str)

    names = summary.get("classes")
    matrix = summary.get("confusion_matrix")
    checks = {
        "classes": isinstance(names, list) and all(isinstance(n, str) for n in names),
        "confusion_matrix": isinstance(matrix, list)
        and all(isinstance(r, list) and len(r) == len(matrix) for r in matrix)
        and all(count(v) for r in matrix for v in r)
        and (not isinstance(names, list) or len(names) == len(matrix)),
        "per_class": rows(
            summary.get("per_class"),
            {
                "class": text_field,
                "precision": score,
                "recall": score,
                "f1": score,
                "support": count,
            },
        ),
        "most_confused": rows(
            summary.get("most_confused"),
            {"true": text_field, "predicted": text_field, "count": count},
        ),
        "history": rows(summary.get("history"), {}),
    }
    return {key: value for key, value in summary.items() if checks.get(key, True)}


def read_config_values(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw settings of config.toml ({} when missing or unreadable); see config.py to validate."""
    return _read_toml(Path(run_dir) / CONFIG_FILE) or {}


def _read_toml(path: Path) -> dict[str, Any] | None:
    if not is_regular_file(path):
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TOML_BYTES + 1)
        if len(data) > MAX_TOML_BYTES:  # the wrong file, or a stranger's: not read whole
            return None
        return tomllib.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # TOMLDecodeError and UnicodeDecodeError too
        return None


# config.toml as `run_info` last read it, by path: (its size, mtime and inode, the values). A run's
# settings change only when a resume changes them (an atomic rewrite: a new inode), while the runs
# list reads every run's every two seconds: TOML parsing was two thirds of a listing's time.
_LISTED_CONFIGS: dict[Path, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}
LISTED_CONFIGS_KEPT = 4096


def _listed_config(path: Path) -> dict[str, Any] | None:
    """`_read_toml(path)`, parsed again only when the file changed (for `run_info`; the values
    are shared: read, never changed)."""
    try:
        info = path.stat()
    except OSError:
        return None
    stamp = (info.st_size, info.st_mtime_ns, info.st_ino)
    kept = _LISTED_CONFIGS.get(path)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    values = _read_toml(path)
    if len(_LISTED_CONFIGS) >= LISTED_CONFIGS_KEPT:
        _LISTED_CONFIGS.clear()
    _LISTED_CONFIGS[path] = (stamp, values)
    return values


def write_config(run_dir: str | os.PathLike[str], config: TrainConfig) -> None:
    """Atomically write config.toml: the settings the run trains (and resumes) with. The first
    file of a new run, so it makes the folder."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_toml())


def read_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The validated TrainConfig of a run (its config.toml); UsageError when it is not a run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a run directory (it has no {CONFIG_FILE})")
    return load_config_file(path)


def write_model_source(
    run_dir: str | os.PathLike[str], code: bytes, record: dict[str, Any]
) -> None:
    """Atomically write the copy of the user's model code (model_source.py), then its record
    (model_source.json: origin, sha256, ...): a copy without a record is no copy to trust."""
    with writing_into(run_dir):
        atomic_write(Path(run_dir) / MODEL_SOURCE_FILE, lambda handle: handle.write(code))
        _write_json(Path(run_dir) / MODEL_SOURCE_RECORD, record)


def read_model_source_record(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """model_source.json as a dict, None when missing or unreadable."""
    data = _read_json(Path(run_dir) / MODEL_SOURCE_RECORD)
    return data if isinstance(data, dict) else None


# a model's file is some kilobytes: `training.models.own` refuses a bigger one to train, and a
# run's copy is read at most this long
MAX_MODEL_SOURCE_BYTES = 4 << 20


def read_model_source(run_dir: str | os.PathLike[str]) -> bytes | None:
    """The bytes of model_source.py, None when it is missing, not a regular file or a symbolic
    link (a run folder from someone else leads nowhere else)."""
    path = Path(run_dir) / MODEL_SOURCE_FILE
    if path.is_symlink() or not is_regular_file(path):
        return None
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_MODEL_SOURCE_BYTES + 1)
    except OSError:
        return None


def check_evaluable(run_dir: str | os.PathLike[str]) -> Path:
    """`run_dir` if its test metrics can be recomputed (a run folder with a valid config.toml and
    a checkpoint.pt); else a UsageError saying what is missing and what to do."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory (cnn-tui runs lists the runs)")
    read_config(run_dir)
    if not os.path.lexists(run_dir / CHECKPOINT_FILE):  # (one that is no file: load_checkpoint)
        raise UsageError(
            f"{run_dir / CHECKPOINT_FILE} does not exist: the run saved no checkpoint yet; "
            f"continue it with: cnn-tui train --no-ui --resume {run_dir}"
        )
    return run_dir


# --- the event log (metrics.jsonl) -------------------------------------------------------------


class LossSmoother:
    """The debiased exponential moving average of every batch's loss, as TensorBoard draws it.

    The trainer smooths each batch (not the thinned events of the file), so the curve drawn from
    `smoothed_loss` agrees with the epoch's mean loss however few batch events were written. The
    bias correction (divide by 1 - beta^t) makes the first values the losses themselves instead of
    a pull towards 0; a resumed run starts the average afresh.
    """

    def __init__(self, beta: float = LOSS_SMOOTHING) -> None:
        self.beta = beta
        self.average = 0.0
        self.count = 0

    def add(self, loss: float) -> float:
        """Fold in one loss; returns the smoothed value so far (the loss itself when not finite)."""
        if not math.isfinite(loss):
            return loss
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * loss
        return self.average / (1 - self.beta**self.count)


class BatchThrottle:
    """Merges batch events: at most one per `interval` seconds, its loss the mean since the last;
    the last batch of an epoch is always written, so the curve reaches the epoch's end.

    The trainer may ask `due` before a batch runs: its answer then decides whether that batch's
    event is written, so measurements that cost time (the gradient norm) are taken only for the
    events the file keeps."""

    def __init__(self, interval: float = BATCH_EVENT_INTERVAL_S) -> None:
        self.interval = interval
        self.last = -math.inf
        self.loss_sum = 0.0
        self.count = 0
        self.promised: bool | None = None  # `due`'s answer for the next batch event

    def due(self, now: float, last_of_epoch: bool = False) -> bool:
        """Whether the next batch event (the last of its epoch, or not) will be written."""
        self.promised = last_of_epoch or now - self.last >= self.interval
        return self.promised

    def add(self, event: dict[str, Any]) -> dict[str, Any] | None:
        self.loss_sum += event["loss"]
        self.count += 1
        last_of_epoch = "batches" in event and event.get("batch") == event["batches"]
        write = last_of_epoch or event["time"] - self.last >= self.interval
        if self.promised is not None:
            write, self.promised = self.promised, None
        if not write:
            return None
        merged = {**event, "loss": self.loss_sum / self.count}
        self.last, self.loss_sum, self.count = event["time"], 0.0, 0
        return merged


class EventLog:
    """Appends events to metrics.jsonl (one JSON object per line, flushed) and calls `on_event`.

    The callback sees every event; the file gets batch events throttled by `BatchThrottle`. Each
    batch event gets `smoothed_loss` (`LossSmoother`, over every batch) before it is thinned.
    Append-only, so a reader (`read_events`) sees whole lines or waits for them. Safe from several
    threads (the trainer's loop and its system sampler): one event at a time is written and
    passed to `on_event`, under a lock. What a background thread writes goes through
    `emit_while_running`, so nothing follows the events that end a run (`END_EVENTS`);
    `before_end`, if set, is called once just before the first of them, outside the lock (the
    sampler's last reading: it writes through this log from its own thread).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.path = Path(run_dir) / EVENTS_FILE
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self.file = os.fdopen(open_own_file(self.path, flags), "a", encoding="utf-8")
        self.on_event = on_event
        self.throttle = BatchThrottle()
        self.smoother = LossSmoother()
        self.lock = threading.RLock()  # (an `on_event` that emits does not deadlock)
        self.ended = False  # an event of END_EVENTS was emitted
        self.before_end: Callable[[], None] | None = None
        if self.file.tell() > 0:  # a line cut short (a killed trainer, a full disk) ends here
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    self._write("\n")

    def _write(self, text: str) -> None:
        if not self._still_there():  # (an append to a deleted file would succeed unseen)
            raise RunFolderGone(self.path.parent)
        try:
            self.file.write(text)
            self.file.flush()
        except OSError as exc:  # name the file (a write error does not)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from exc

    def _still_there(self) -> bool:
        """Whether metrics.jsonl is still the file this log appends to: not when the run folder
        was deleted (or deleted and made again)."""
        try:
            named, held = self.path.stat(), os.fstat(self.file.fileno())
        except OSError:
            return False
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind in END_EVENTS and self.before_end is not None:
            before_end, self.before_end = self.before_end, None
            before_end()
        with self.lock:
            event = {"event": kind, "time": time.time(), **fields}
            if kind == "batch" and isinstance(fields.get("loss"), float | int):
                event["smoothed_loss"] = self.smoother.add(float(fields["loss"]))
            record = self.throttle.add(event) if kind == "batch" else event
            self.ended = self.ended or kind in END_EVENTS
            if record is not None:
                self._write(json_text(record) + "\n")
            if self.on_event is not None:
                self.on_event(event)
            return event

    def emit_while_running(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        """`emit`, unless the run's end was emitted already (then nothing, and None)."""
        with self.lock:
            return None if self.ended else self.emit(kind, **fields)

    def batch_due(self, last_of_epoch: bool = False) -> bool:
        """Whether the next batch event goes into the file (`BatchThrottle.due`): asked before
        the batch, so the trainer measures what only the written events carry."""
        return self.throttle.due(time.time(), last_of_epoch)

    def close(self) -> None:
        try:
            with self.lock:
                self.file.close()
        except OSError:  # (a full disk: what could be written is in the file; the rest is lost)
            pass


def read_events(run_dir: str | os.PathLike[str], offset: int = 0) -> tuple[list[dict], int]:
    """The events appended to metrics.jsonl since byte `offset`, and the offset to pass next time.

    Only complete lines are consumed: a last line still being written is left for the next call.
    Lines that are not valid JSON objects are skipped.
    """
    path = Path(run_dir) / EVENTS_FILE
    if not is_regular_file(path):
        return [], offset
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    return _parse_events(data[: end + 1])[0], offset + end + 1


def _parse_events(data: bytes) -> tuple[list[dict], int]:
    """The JSON objects of the lines of `data`, and how many non-blank lines were not one."""
    events, unreadable = [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            event = json_value(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            events.append(event)
        else:
            unreadable += 1
    return events, unreadable


def read_all_events(run_dir: str | os.PathLike[str]) -> tuple[list[dict], int]:
    """Every event of a run that is over, and how many lines could not be read (garbage, or a
    last line cut short by a killed trainer or a full disk)."""
    path = Path(run_dir) / EVENTS_FILE
    if not is_regular_file(path):
        return [], 0
    try:
        data = path.read_bytes()
    except OSError:
        return [], 0
    return _parse_events(data)


def damage_notes(run_dir: str | os.PathLike[str], unreadable_events: int = 0) -> list[str]:
    """One line for each file of the run that could not be read (all of it, or some lines)."""
    notes = list(run_info(run_dir).problems)
    if unreadable_events:
        notes.append(
            f"{EVENTS_FILE}: skipped {unreadable_events} line(s) that could not be read (damaged "
            "or cut short); the rest is shown"
        )
    return notes


# --- sample predictions (samples.npz) -----------------------------------------------------------


def pick_samples(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Indices of the samples to keep: the most confident mistakes, then spread-out correct ones."""
    import numpy as np

    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:SAMPLES_WRONG]
    right = np.flatnonzero(pred == true)
    want = min(len(right), SAMPLES_TOTAL - len(wrong))
    if want > 0:
        right = right[np.linspace(0, len(right) - 1, want).round().astype(np.int64)]
    return np.concatenate([wrong, right[:want] if want > 0 else right[:0]]).astype(np.int64)


def write_samples(
    run_dir: str | os.PathLike[str],
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    classes: list[str],
) -> None:
    """Atomically write samples.npz: some of the test images (n, C, H, W) uint8 with their true
    and predicted labels and confidences, picked by `pick_samples` (worst mistakes first)."""
    import numpy as np

    pick = pick_samples(true, pred, confidence)
    arrays = {
        "images": images[pick],
        "true": true[pick],
        "pred": pred[pick],
        "confidence": confidence[pick].astype(np.float32),
        "classes": np.array(classes),
    }
    with writing_into(run_dir):
        atomic_write(Path(run_dir) / SAMPLES_FILE, lambda handle: np.savez(handle, **arrays))


def read_samples(run_dir: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """samples.npz as arrays (images (n, C, H, W) uint8, true, pred, confidence, classes), or
    None when missing or unreadable. Only plain arrays: nothing pickled is ever loaded."""
    import numpy as np

    path = Path(run_dir) / SAMPLES_FILE
    if not is_regular_file(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:  # (np.load's npz is a zip of .npy members)
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > MAX_SAMPLES_BYTES:  # a zip bomb: a few MiB that inflate to gigabytes
            return None
        with np.load(path, allow_pickle=False) as data:
            samples = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile):
        return None  # (MemoryError: a member's header claims a shape its bytes do not hold)
    return samples if _samples_fit(samples) else None


def _samples_fit(samples: dict[str, np.ndarray]) -> bool:
    """Whether arrays read from a samples.npz are what `write_samples` writes: uint8 images
    (n, 1 or 3, H, W) with n labels, predictions and confidences (and class names as text), so
    the Samples tab can draw them whatever file it was given."""
    import numpy as np

    images = samples.get("images")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        return False
    n, channels, height, width = images.shape
    if channels not in (1, 3) or not (1 <= height <= 1024 and 1 <= width <= 1024):
        return False
    kinds = {"true": "iu", "pred": "iu", "confidence": "fiu"}
    for key, kind in kinds.items():
        value = samples.get(key)
        if value is not None and (value.shape != (n,) or value.dtype.kind not in kind):
            return False
    classes = samples.get("classes")
    return classes is None or (classes.ndim == 1 and classes.dtype.kind == "U")


# --- listing runs -------------------------------------------------------------------------------


def effective_status(status: dict[str, Any] | None) -> RunState:
    """The state to show: "running" whose process is gone (or whose pid is now another process)
    becomes INTERRUPTED, one written on another machine ELSEWHERE (this one cannot tell); a
    missing status, or one a trainer does not write, is UNKNOWN."""
    state = RunState.of((status or {}).get("status"))
    if state not in run_state.WRITTEN:
        return RunState.UNKNOWN
    if state == RunState.RUNNING:
        trainer = ProcessId.from_record(status)
        if trainer is not None and not trainer.here:
            return RunState.ELSEWHERE
        if not processes.alive(trainer):
            return RunState.INTERRUPTED
    return state


def trainer_host(status: dict[str, Any] | None) -> str:
    """The machine a status's trainer runs on when it is not this one, else "" (text from the
    file: show it with `one_line`)."""
    trainer = ProcessId.from_record(status)
    if trainer is None or trainer.here:
        return ""
    return trainer.host or ""


def trainer_text(status: dict[str, Any] | None) -> str:
    """ "pid 123", or "pid 123 on HOST" for a trainer on another machine, for messages."""
    trainer = ProcessId.from_record(status)
    if trainer is None:
        return "pid ?"
    host = trainer_host(status)
    return f"pid {trainer.pid}" + (f" on {one_line(host)}" if host else "")


def read_state(run_dir: str | os.PathLike[str]) -> tuple[RunState, dict[str, Any] | None]:
    """A run's state to show (`effective_status`) and its status.json. A trainer that writes its
    final status and exits between the read and the look at its pid is seen as it ended
    (stopped, finished, failed), not INTERRUPTED."""
    status = read_status(run_dir)
    state = effective_status(status)
    if state == RunState.INTERRUPTED:
        again = read_status(run_dir)
        if again != status:
            return effective_status(again), again
    return state, status


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    status: RunState  # what `read_state` sees: never STARTING or PENDING
    model: str
    dataset: str
    epochs_done: int
    epochs: int
    best_val_acc: float | None
    test_acc: float | None
    started: float | None  # unix seconds
    message: str = ""
    problems: tuple[str, ...] = ()  # files that could not be read, and why
    early_stop_epoch: int | None = None  # a finished run that early stopping ended: its epoch
    host: str = ""  # another machine its trainer runs or ran on (status.json's "host"), else ""
    folder: Path | None = None  # the runs folder it was listed from (`list_runs`)

    @property
    def status_label(self) -> str:
        """The status as listed: "finished (early stop @5)" for a run that stopped early,
        "running on HOST" for one that trains on another machine."""
        return run_state.label(self.status, self.early_stop_epoch, self.host)

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
            "problems": list(self.problems),
            "early_stop_epoch": self.early_stop_epoch,
            "host": self.host or None,
            "folder": None if self.folder is None else str(self.folder),
        }


def number_or_none(value: Any) -> float | None:
    """`value` if it is a finite number (not a bool), else None: damaged files hold anything."""
    return value if finite(value) else None


def count_or_zero(value: Any) -> int:
    """`value` as a count (a finite number, whole, at least 0), else 0: damaged files hold
    anything."""
    number = number_or_none(value)
    return max(0, int(number)) if number is not None else 0


def _best_val_from_events(run_dir: Path) -> tuple[float | None, int]:
    events, _ = read_events(run_dir)
    epochs = [e for e in events if e.get("event") == "epoch"]
    accs = [acc for e in epochs if (acc := number_or_none(e.get("val_acc"))) is not None]
    return (max(accs) if accs else None), max(
        (count_or_zero(e.get("epoch")) for e in epochs), default=0
    )


def _problems(path: Path, status: Any, summary: Any, config: Any) -> tuple[str, ...]:
    """The small files of a run that exist but could not be read (damaged, cut short)."""
    unreadable = [
        name
        for name, value in ((STATUS_FILE, status), (SUMMARY_FILE, summary), (CONFIG_FILE, config))
        if not isinstance(value, dict) and (path / name).is_file()
    ]
    problems = [f"{name} could not be read (damaged or cut short)" for name in unreadable]
    if isinstance(status, dict) and status.get("status") not in run_state.WRITTEN:
        problems.append(f"{STATUS_FILE} holds no known status ({status.get('status')!r})"[:120])
    return tuple(problems)


def run_info(run_dir: str | os.PathLike[str]) -> RunInfo:
    path = Path(run_dir)
    config = _listed_config(path / CONFIG_FILE)
    state, status = read_state(path)
    summary = read_summary(path)
    problems = _problems(path, status, summary, config)
    config, status, summary = config or {}, status or {}, summary or {}
    best = number_or_none(summary.get("best_val_acc", status.get("best_val_acc")))
    done = count_or_zero(summary.get("epochs_done", status.get("epoch", 0)))
    if best is None and not status:
        best, done = _best_val_from_events(path)
    started = number_or_none(status.get("started"))
    if started is None:
        try:
            started = path.stat().st_mtime
        except OSError:
            started = None
    return RunInfo(
        name=path.name,
        path=path,
        status=state,
        model=str(config.get("model", "?")),
        dataset=str(config.get("dataset", "?")),
        epochs_done=done,
        epochs=count_or_zero(status.get("epochs")) or count_or_zero(config.get("epochs")),
        best_val_acc=best,
        test_acc=number_or_none(summary.get("test_accuracy", status.get("test_accuracy"))),
        started=started,
        message=str(status.get("message") or ""),
        problems=problems,
        early_stop_epoch=_early_stop_epoch(summary),
        host=trainer_host(status),
    )


def _early_stop_epoch(summary: dict[str, Any]) -> int | None:
    """The epoch after which early stopping ended a finished run (summary.json), else None."""
    if summary.get("early_stopped") is not True:
        return None
    epoch = count_or_zero(summary.get("stopped_epoch"))
    return epoch or None


def list_runs(runs_dir: str | os.PathLike[str]) -> list[RunInfo]:
    """The runs under `runs_dir`, newest first ([] when the folder does not exist): the run
    folders directly in it and, one level down, the runs of each sweep folder (one with a
    `SWEEP_FILE`), named SWEEP/RUN. Runs of a sweep that have not started yet are not listed.
    Each RunInfo's `folder` is `runs_dir`."""
    from dataclasses import replace

    base = Path(runs_dir)
    if not base.is_dir():
        return []
    infos = []
    for path in base.iterdir():
        if not path.is_dir():
            continue
        if looks_like_run(path):
            infos.append(replace(run_info(path), folder=base))
        elif (path / SWEEP_FILE).is_file():
            for sub in path.iterdir():
                if sub.is_dir() and looks_like_run(sub):
                    infos.append(
                        replace(run_info(sub), name=f"{path.name}/{sub.name}", folder=base)
                    )
    return newest_first(infos)


def newest_first(infos: list[RunInfo]) -> list[RunInfo]:
    return sorted(infos, key=lambda info: (info.started or 0, info.name), reverse=True)


@dataclass(frozen=True)
class RunListing:
    """The runs of several folders, newest first across them, and the folders that could not be
    read (folder -> why): one unreadable folder hides none of the others' runs."""

    runs: list[RunInfo]
    unreadable: dict[Path, str]


def list_runs_in(folders: Sequence[str | os.PathLike[str]]) -> RunListing:
    """`list_runs` of each folder (`folders.RunFolders.paths`), merged newest first. An
    OSError of one folder (no permission, a folder gone while read) is kept in `unreadable`;
    raised when every folder gave one (as `list_runs` of that one folder would)."""
    infos: list[RunInfo] = []
    unreadable: dict[Path, str] = {}
    errors: list[OSError] = []
    for folder in folders:
        try:
            infos += list_runs(folder)
        except OSError as exc:
            errors.append(exc)
            unreadable[Path(folder)] = exc.strerror or type(exc).__name__
    if errors and len(errors) == len(folders):
        raise errors[0]
    return RunListing(newest_first(infos), unreadable)


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Delete a run folder; refuses anything that does not look like a run, or a live run."""
    path = Path(run_dir)
    if not path.is_dir() or not looks_like_run(path):
        raise UsageError(f"{path} does not look like a run directory; not deleting it")
    status = read_status(path)
    if effective_status(status) in run_state.BUSY:
        raise UsageError(
            f"run {one_line(path.name)} is still running ({trainer_text(status)}); stop it "
            "before deleting it"
        )
    shutil.rmtree(path)
