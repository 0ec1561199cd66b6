"""Process identity: which process a status file names, whether it still lives, and signalling it.

A pid alone names a process only until it ends: after a reboot or enough new processes the same
number is some other program, and a status file may be forged or written on another machine that
shares the folder. So a status records a `ProcessId`: the host, the pid and the process's start
time (psutil's `Process.create_time()`). Every liveness check (`alive`) and every signal
(`send_signal`) in cnn-tui goes through this module and verifies all three first:

- another host: never alive here, never signalled (the caller shows "running on HOST");
- this host: alive when the pid exists, is not a zombie and started when the record says (within
  `START_TOLERANCE_S`); otherwise the recorded process is gone, whoever has its pid now.

A record written before the start time was kept (a status of an older cnn-tui: a pid, no host,
no start time) cannot be checked that way. It counts as alive, and may be signalled, only when the
process at that pid is a cnn-tui process by its command line (`python -m cnn_tui ...`, the
`cnn-tui` script, the sweep runner, torchrun running `--module cnn_tui`); any other program at
that pid is not its trainer, so the run reads as interrupted and nothing is sent to it.

The signal goes through a pidfd opened before the identity is checked (Linux), so a pid reused
between the check and the signal cannot be hit; elsewhere psutil's own check of the start time
guards `send_signal`. Torch-free and UI-free; psutil is imported when a process is first looked
at, so importing this module (the TUI does, at start) costs nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnn_tui.text import finite

if TYPE_CHECKING:
    import psutil

# psutil derives the start time from the boot time (whole seconds) and the clock ticks since:
# two readers may differ by that rounding. NTP's slewing moves neither; a clock *stepped* by more
# while a trainer runs makes it look gone, which fails safe (nothing is signalled, and the run's
# lock still keeps a second trainer out). A reused pid starts later than this by far.
START_TOLERANCE_S = 1.0
# how a status file names the host and the start time (beside its "pid")
HOST_FIELD, STARTED_FIELD = "host", "pid_started"


def this_host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class ProcessId:
    """One process, for as long as it lives: its host, its pid and when it started (unix
    seconds, psutil's `create_time`). `host` and `started` are None in a record of an older
    cnn-tui, which kept the pid alone."""

    pid: int
    host: str | None = None
    started: float | None = None

    @property
    def here(self) -> bool:
        """Whether the process runs (or ran) on this machine; an old record without a host is
        taken to be from here (its command line is checked instead, see `alive`)."""
        return self.host is None or self.host == this_host()

    def same_as(self, other: ProcessId | None) -> bool:
        """Whether two records name the same process: the pid, the host and the start time agree
        (what a record lacks, an old one, is not compared)."""
        if other is None or other.pid != self.pid:
            return False
        if self.host is not None and other.host is not None and self.host != other.host:
            return False
        if self.started is None or other.started is None:
            return True
        return abs(self.started - other.started) <= START_TOLERANCE_S

    def fields(self) -> dict[str, Any]:
        """What a status file records: {"pid", "host", "pid_started"}."""
        return {"pid": self.pid, HOST_FIELD: self.host, STARTED_FIELD: self.started}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> ProcessId | None:
        """The process a status file names (its "pid", "host" and "pid_started"); None when it
        names none. Fields of the wrong type (a damaged or forged file) count as absent."""
        record = record or {}
        pid = record.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
            return None
        host = record.get(HOST_FIELD)
        started = record.get(STARTED_FIELD)
        return cls(
            pid,
            host if isinstance(host, str) and host else None,
            float(started) if finite(started) else None,  # (not 1e400 nor a 400-digit int)
        )


def this_process() -> ProcessId:
    import psutil

    return ProcessId(os.getpid(), this_host(), psutil.Process().create_time())


def identify(pid: int) -> ProcessId | None:
    """The identity of the process that has `pid` on this machine now (a zombie too: a child that
    has not been reaped); None when there is none."""
    import psutil

    try:
        return ProcessId(pid, this_host(), psutil.Process(pid).create_time())
    except (psutil.Error, ValueError, OverflowError):
        return None


def alive(identity: ProcessId | None) -> bool:
    """Whether the process `identity` names runs on this machine now (see the module's text).
    False for another host: this machine cannot tell."""
    return _verified(identity) is not None


def send_signal(identity: ProcessId | None, sig: int) -> bool:
    """Send `sig` to the process `identity` names, if it is that process (`alive`); False, and
    nothing sent, otherwise."""
    import psutil

    if identity is None or not identity.here:
        return False
    pidfd = _pidfd(identity.pid)
    try:
        process = _verified(identity)  # (after the pidfd is open: it holds the checked process)
        if process is None:
            return False
        if pidfd is not None:
            import signal

            signal.pidfd_send_signal(pidfd, sig)
        else:
            process.send_signal(sig)  # psutil checks that the pid was not reused since
        return True
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:  # no such process (checked again after), or a kernel without pidfds
        return None


def _verified(identity: ProcessId | None) -> psutil.Process | None:
    """The live process `identity` names, or None (another host, gone, a zombie, reused)."""
    import psutil

    if identity is None or not identity.here:
        return None
    try:
        process = psutil.Process(identity.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if identity.started is None:  # an old record: only a cnn-tui process counts
            return process if is_cnn_tui(process.cmdline()) else None
        if abs(process.create_time() - identity.started) > START_TOLERANCE_S:
            return None
    except (psutil.Error, ValueError, OverflowError):
        return None
    return process


def is_cnn_tui(cmdline: list[str]) -> bool:
    """Whether a command line is one of cnn-tui's long-lived processes: `python -m cnn_tui ...`
    (a trainer, the launcher of a data-parallel run), `python -m cnn_tui.commands.sweep_runner`
    (a sweep's queue runner), or the `cnn-tui` script."""
    head = cmdline[:3]
    if any(os.path.basename(part) == "cnn-tui" for part in head):
        return True
    if "-m" in head[:-1]:
        module = head[head.index("-m") + 1]
        return module == "cnn_tui" or module.startswith("cnn_tui.")
    return False
