"""Start and stop training runs as their own processes, so they outlive the terminal.

The TUI never trains in its own process: `launch_run` writes the run's config and starts
`python -m cnn_tui train --no-ui ...` in a new session (its own process group, no
controlling terminal), with stdin closed and stdout/stderr going to `RUN_DIR/output.log` (its
plain report lines, warnings, whatever the model prints: the dashboard's Console tab shows it;
the trainer sees that its streams are that file and does not copy them again, output_log.py). Closing
the terminal or a dropped SSH connection (SIGHUP to the TUI's session) therefore leaves it running;
the TUI and any later `cnn-tui` follow it through the files it writes (`metrics.jsonl`,
`status.json`). `stop_run` sends SIGTERM, which the trainer honours at the next batch boundary
(checkpoint kept, status "stopped"), and only to the process status.json names once its identity
(host, pid, start time) is checked (training/system/processes.py): never to another machine's
trainer, nor to whatever process has a dead trainer's pid now.

UI-free: no textual, no torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.fileio import is_regular_file, open_own_file
from cnn_tui.text import one_line
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs.state import OVER, RunState
from cnn_tui.training.runs.store import (
    CONFIG_FILE,
    OUTPUT_LOG,
    prepare_run_dir,
    read_events,
    read_state,
    read_status,
    trainer_host,
)
from cnn_tui.training.system import processes
from cnn_tui.training.system.processes import ProcessId


@dataclass(frozen=True)
class Child:
    """A process this one started: its run dir, its Popen and its identity (taken at once,
    while it cannot have been reaped, so its pid cannot name another process yet)."""

    run_dir: Path
    process: subprocess.Popen[bytes]
    identity: ProcessId | None


# pid -> the runs (and sweep runners) this process started; a waiter thread reaps each child
# so that a finished run does not linger as a zombie.
_children: dict[int, Child] = {}
_lock = threading.Lock()


def train_command(run_dir: Path, resume: bool = False, trust_model_code: bool = False) -> list[str]:
    """The headless trainer's command line for a new run in `run_dir` (or resuming it; a run of
    the user's own class runs its copy of the code only when the user trusts it:
    `trust_model_code`). Its plain report (not --json: the TUI reads metrics.jsonl) goes to
    output.log, for people."""
    command = [sys.executable, "-m", "cnn_tui", "train", "--no-ui"]
    if resume:
        trust = ["--trust-model-code"] if trust_model_code else []
        return [*command, "--resume", str(run_dir), *trust]
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
        _children[process.pid] = Child(run_dir, process, processes.identify(process.pid))
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


def resume_run(run_dir: str | os.PathLike[str], trust_model_code: bool = False) -> int:
    """Continue a stopped run from its last checkpoint in the background; returns the pid
    (`trust_model_code`: --trust-model-code, for a run of the user's own class)."""
    run_dir = Path(run_dir)
    return spawn_detached(train_command(run_dir, True, trust_model_code), run_dir)


def child_exit_code(pid: int) -> int | None:
    """The exit code of a run this process started, or None while it runs (or is not ours)."""
    with _lock:
        child = _children.get(pid)
    return None if child is None else child.process.poll()


def child_identity(pid: int | None) -> ProcessId | None:
    """The identity of the child `pid` this process started (None: not one of ours)."""
    with _lock:
        child = _children.get(pid) if pid is not None else None
    return None if child is None else child.identity


def written_by(status: dict[str, Any] | None, pid: int | None) -> bool:
    """Whether `status` was written for the child `pid` this process started (its trainer's
    identity, not an older status of the same folder whose dead trainer had the same pid)."""
    if status is None or pid is None:
        return False
    recorded = ProcessId.from_record(status)
    if recorded is None or recorded.pid != pid:
        return False
    child = child_identity(pid)
    return child is None or recorded.same_as(child)  # (not our child: the pid is all there is)


def live_children() -> dict[Path, int]:
    """Run dir -> pid of the runs this process started that are still running."""
    with _lock:
        entries = list(_children.items())
    return {child.run_dir: pid for pid, child in entries if child.process.poll() is None}


@dataclass(frozen=True)
class StopAnswer:
    """What `stop_run` did: `sent` (true: SIGTERM went to the trainer), else `reason`, why
    nothing was sent, to follow the run's name ("is not running"). True as a bool when sent."""

    sent: bool
    reason: str = ""
    host: str = ""  # the other machine the run trains on (as status.json says): nothing sent

    def __bool__(self) -> bool:
        return self.sent


def elsewhere(host: str) -> str:
    """Why a run on another machine is not stopped from here (after the run's name)."""
    return f"runs on {one_line(host)}, not on this machine: stop it there"


def stop_run(run_dir: str | os.PathLike[str], pid: int | None = None) -> StopAnswer:
    """Ask a run (or a sweep's queue runner) to stop: SIGTERM, so it finishes the batch and
    checkpoints. Sent only to the process whose identity status.json records, once checked
    (`processes.send_signal`): never to a trainer on another machine, nor to another process that
    has a dead trainer's pid now. `pid` is the fallback for a child this process just started
    that has not written its status yet: signalled through the identity taken at its start.
    """
    status = read_status(run_dir) or {}
    if status.get("status") == RunState.RUNNING:
        host = trainer_host(status)
        if host:
            return StopAnswer(False, elsewhere(host), host)
        if processes.send_signal(ProcessId.from_record(status), signal.SIGTERM):
            return StopAnswer(True)
    if processes.send_signal(child_identity(pid), signal.SIGTERM):
        return StopAnswer(True)
    if status.get("status") == RunState.RUNNING:
        recorded = ProcessId.from_record(status)
        if recorded is not None and processes.identify(recorded.pid) is not None:
            return StopAnswer(
                False,
                f"is not running: its trainer is gone, and pid {recorded.pid} is another "
                "process now (left alone)",
            )
    return StopAnswer(False, "is not running")


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


# how often a follower looks at a run's files: often until its first batch event, then twice a
# second (the trainer writes at most 4 batch events a second; the dashboard draws its charts at
# most twice a second: a faster poll only costs the TUI's CPU, measured by `cnn-tui bench --tui`)
FIRST_POLL_S, FOLLOW_POLL_S = 0.1, 0.5


def follow_run(
    run_dir: str | os.PathLike[str],
    emit: Callable[[list[dict[str, Any]], dict[str, Any] | None], None],
    stop: threading.Event,
    *,
    pid: int | None = None,
    poll_s: float = FOLLOW_POLL_S,
    first_poll_s: float = FIRST_POLL_S,
) -> tuple[RunState | str, str]:
    """Tail a run until it is over: `emit(events, status)` whenever metrics.jsonl grew or
    status.json changed. Returns (final state: one of `OVER`, message), or (FOLLOWING, "") once
    `stop` is set. It looks every `first_poll_s` until the first batch event (the first point on
    a chart comes soon after it is written), then every `poll_s`.

    `pid` is the trainer just started for this run dir: until it writes its own status, an older
    status.json (a stopped run being resumed) does not count as the end, and if it dies without
    writing one, the tail of output.log says why.
    """
    run_dir = Path(run_dir)
    offset, last_status, batches = 0, None, False
    while True:
        state, status = read_state(run_dir)  # before the events: a final status's are all in
        events, offset = read_events(run_dir, offset)
        batches = batches or any(event.get("event") == "batch" for event in events)
        if events or status != last_status:
            emit(events, status)
            last_status = status
        ours = pid is None or written_by(status, pid)
        if ours and status is not None:
            if state in OVER:
                message = str(status.get("message") or "")
                if state == RunState.INTERRUPTED:
                    message = _died_message(run_dir, status.get("pid"))
                return state, message
        elif pid is not None and not processes.alive(child_identity(pid)):
            events, offset = read_events(run_dir, offset)
            status = read_status(run_dir)
            if events or status != last_status:
                emit(events, status)
            if written_by(status, pid):
                continue  # it wrote its final status just before exiting
            return RunState.FAILED, _died_message(run_dir, pid)
        if stop.wait(poll_s if batches else first_poll_s):
            return FOLLOWING, ""


def _died_message(run_dir: Path, pid: Any) -> str:
    tail = output_tail(run_dir, lines=8).strip()
    reason = f"the trainer (pid {pid}) exited without reporting why"
    if not tail:
        return reason
    # the first line is what a status line shows: the log's last line (the error) goes there
    last = tail.splitlines()[-1].strip()
    return f"{reason}: {last}\nlast lines of {OUTPUT_LOG}:\n{tail}"
