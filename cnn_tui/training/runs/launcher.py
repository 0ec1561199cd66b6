"""Start and stop training runs as their own processes, so they outlive the terminal.

The TUI never trains in its own process: `launch_run` writes the run's config and starts
`python -m cnn_tui train --no-ui --json ...` in a new session (its own process group, no
controlling terminal), with stdin closed and stdout/stderr going to `RUN_DIR/output.log`. Closing
the terminal or a dropped SSH connection (SIGHUP to the TUI's session) therefore leaves it running;
the TUI and any later `cnn-tui` follow it through the files it writes (`metrics.jsonl`,
`status.json`). `stop_run` sends SIGTERM, which the trainer honours at the next batch boundary
(checkpoint kept, status "stopped").

UI-free: no textual, no torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_tui.fileio import is_regular_file, open_own_file
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs.state import OVER, RunState
from cnn_tui.training.runs.store import (
    CONFIG_FILE,
    OUTPUT_LOG,
    is_alive,
    prepare_run_dir,
    read_events,
    read_state,
    read_status,
)

# pid -> (run dir, process) of the runs this process started; a waiter thread reaps each child
# so that a finished run does not linger as a zombie that still looks alive to `kill(pid, 0)`.
_children: dict[int, tuple[Path, subprocess.Popen[bytes]]] = {}
_lock = threading.Lock()


def train_command(run_dir: Path, resume: bool = False) -> list[str]:
    """The headless trainer's command line for a new run in `run_dir` (or resuming it)."""
    command = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--json"]
    if resume:
        return [*command, "--resume", str(run_dir)]
    return [*command, "--config", str(run_dir / CONFIG_FILE), "--run-dir", str(run_dir)]


def spawn_detached(command: list[str], run_dir: Path) -> int:
    """Start `command` in its own session (no SIGHUP from a closing terminal), stdin closed, output
    appended to `run_dir/output.log`; returns its pid. Runs and sweep runners both start here."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = open_own_file(run_dir / OUTPUT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: no SIGHUP when the terminal goes away
            close_fds=True,
        )
    with _lock:
        _children[process.pid] = (run_dir, process)
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return process.pid


def launch_run(config: TrainConfig, run_dir: str | os.PathLike[str]) -> int:
    """Write `run_dir/config.toml` and start training it in the background; returns the pid.

    A folder that is not new, empty or made ready for a new run is refused (UsageError) before
    anything is written (`store.prepare_run_dir`).
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, config)
    return spawn_detached(train_command(run_dir), run_dir)


def resume_run(run_dir: str | os.PathLike[str]) -> int:
    """Continue a stopped run from its last checkpoint in the background; returns the pid."""
    run_dir = Path(run_dir)
    return spawn_detached(train_command(run_dir, resume=True), run_dir)


def child_exit_code(pid: int) -> int | None:
    """The exit code of a run this process started, or None while it runs (or is not ours)."""
    with _lock:
        entry = _children.get(pid)
    return None if entry is None else entry[1].poll()


def live_children() -> dict[Path, int]:
    """Run dir -> pid of the runs this process started that are still running."""
    with _lock:
        entries = list(_children.items())
    return {run_dir: pid for pid, (run_dir, process) in entries if process.poll() is None}


def stop_run(run_dir: str | os.PathLike[str], pid: int | None = None) -> bool:
    """Ask a run to stop (SIGTERM: it finishes the batch and checkpoints). False: not running.

    The pid comes from `status.json` (the trainer's own); `pid` is the fallback for a run that
    was just launched and has not written its status yet.
    """
    status = read_status(run_dir) or {}
    target = status.get("pid") if status.get("status") == RunState.RUNNING else None
    target = target if isinstance(target, int) else pid
    if target is None or not is_alive(target):
        return False
    try:
        os.kill(target, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def output_tail(run_dir: str | os.PathLike[str], lines: int = 20) -> str:
    """The last lines of the run's `output.log` (tracebacks of a run that died early)."""
    path = Path(run_dir) / OUTPUT_LOG
    if not is_regular_file(path):
        return ""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16_384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


FOLLOWING = "following"  # what `follow_run` returns when asked to stop before the run is over


def follow_run(
    run_dir: str | os.PathLike[str],
    emit: Callable[[list[dict[str, Any]], dict[str, Any] | None], None],
    stop: threading.Event,
    *,
    pid: int | None = None,
    poll_s: float = 0.25,
) -> tuple[RunState | str, str]:
    """Tail a run until it is over: `emit(events, status)` whenever metrics.jsonl grew or
    status.json changed. Returns (final state: one of `OVER`, message), or (FOLLOWING, "") once
    `stop` is set.

    `pid` is the trainer just started for this run dir: until it writes its own status, an older
    status.json (a stopped run being resumed) does not count as the end, and if it dies without
    writing one, the tail of output.log says why.
    """
    run_dir = Path(run_dir)
    offset, last_status = 0, None
    while True:
        state, status = read_state(run_dir)  # before the events: a final status's are all in
        events, offset = read_events(run_dir, offset)
        if events or status != last_status:
            emit(events, status)
            last_status = status
        ours = pid is None or (status is not None and status.get("pid") == pid)
        if ours and status is not None:
            if state in OVER:
                message = str(status.get("message") or "")
                if state == RunState.INTERRUPTED:
                    message = _died_message(run_dir, status.get("pid"))
                return state, message
        elif pid is not None and not is_alive(pid):
            events, offset = read_events(run_dir, offset)
            status = read_status(run_dir)
            if events or status != last_status:
                emit(events, status)
            if status is not None and status.get("pid") == pid:
                continue  # it wrote its final status just before exiting
            return RunState.FAILED, _died_message(run_dir, pid)
        if stop.wait(poll_s):
            return FOLLOWING, ""


def _died_message(run_dir: Path, pid: Any) -> str:
    tail = output_tail(run_dir, lines=8).strip()
    reason = f"the trainer (pid {pid}) exited without reporting why"
    return f"{reason}; last lines of {OUTPUT_LOG}:\n{tail}" if tail else reason
