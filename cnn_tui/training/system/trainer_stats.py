"""The trainer's own footprint on the host: the memory (RSS) and CPU of its processes, through
psutil, and the names of other processes (those NVML lists on a GPU).

Which processes are "the trainer" (`TrainerMonitor`, its `scope`):

- `process`: one process that trains alone, with nothing below it;
- `children`: that process and its child processes (data-loader workers, a compile worker pool),
  added up;
- `ranks`: a data-parallel run (`--devices N`, torchrun): every rank on this host and their
  children, added up: torchrun's agent is rank 0's parent and the other ranks are its siblings.

RSS counts the pages a process has in RAM, its share of shared libraries in full: a sum over
processes that share pages (the ranks map the same CUDA libraries) is an upper bound, as in top
and nvitop. CPU is in percent of one core (200 = two cores busy), measured between two samples:
a process that appeared since the last one counts from the next. UI-free and torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

SCOPES = ("process", "children", "ranks")
SCOPE_TEXT = {  # what the trainer's figures add up, for people
    "process": "1 process",
    "children": "{n} processes: the trainer and its children",
    "ranks": "{n} processes: the ranks on this host and their children",
}


def scope_text(scope: str, processes: int) -> str:
    """'1 process', '3 processes: the trainer and its children', ... (SCOPE_TEXT)."""
    return SCOPE_TEXT.get(scope, SCOPE_TEXT["process"]).format(n=processes)


@dataclass(frozen=True)
class TrainerSample:
    """The trainer's processes added up: RSS in bytes, CPU in percent of one core, how many
    processes and which (`scope`, one of SCOPES); their pids, to tell them on a GPU (only while
    sampling: the event does not keep them)."""

    rss: int | None
    cpu_percent: float | None
    processes: int
    scope: str
    pids: frozenset[int] = field(default=frozenset(), compare=False)  # (not in the event)


class TrainerMonitor:
    """Samples the process `pid` (default: this one) and its children; with `ranks`, the ranks
    that torchrun's agent (its parent) started on this host instead."""

    def __init__(self, pid: int | None = None, *, ranks: bool = False, source: Any = None) -> None:
        if source is None:
            import psutil as source
        self.psutil = source
        self.own = source.Process(os.getpid() if pid is None else pid)
        self.root, self.ranks = self.own, False
        if ranks:
            parent = _read(self.own.parent)
            if parent is not None:
                self.root, self.ranks = parent, True
        self._known: dict[int, Any] = {}
        self._track(self._members())  # starts every process's CPU interval

    def _members(self) -> list[Any]:
        children = _read(lambda: self.root.children(recursive=True)) or []
        if self.ranks:
            return children if any(p.pid == self.own.pid for p in children) else [self.own]
        return [self.root, *children]

    def _track(self, members: list[Any]) -> list[tuple[Any, bool]]:
        """The psutil objects to read (kept between samples: CPU use is measured from the last
        call on the same object), each with whether it is new (its CPU interval starts now)."""
        kept: dict[int, Any] = {}
        tracked = []
        for process in members:
            known = self._known.get(process.pid)
            fresh = known is None or _read(known.create_time) != _read(process.create_time)
            current = process if fresh else known
            if fresh:
                _read(lambda p=current: p.cpu_percent(interval=None))
            kept[process.pid] = current
            tracked.append((current, fresh))
        self._known = kept
        return tracked

    def sample(self) -> TrainerSample:
        tracked = self._track(self._members())
        rss, cpu, pids = 0, 0.0, set()
        for process, fresh in tracked:
            memory = _read(process.memory_info)
            if memory is None:  # ended since it was listed
                continue
            pids.add(process.pid)
            rss += int(memory.rss)
            if not fresh:
                cpu += _read(lambda p=process: float(p.cpu_percent(interval=None))) or 0.0
        if not pids:
            return TrainerSample(None, None, 0, self.scope(0))
        return TrainerSample(rss, cpu, len(pids), self.scope(len(pids)), frozenset(pids))

    def scope(self, processes: int) -> str:
        if self.ranks:
            return "ranks"
        return "children" if processes > 1 else "process"

    def describe(self, pid: int) -> tuple[str | None, bool]:
        """(the name of process `pid` on this machine or None, whether it is a trainer process):
        what `gpu_stats.GpuMonitor.sample` shows beside a pid on a GPU."""
        trainer = pid in self._known
        process = self._known.get(pid)
        if process is None:
            process = _read(lambda: self.psutil.Process(pid))
        name = None if process is None else _read(process.name)
        return (str(name) if name else None), trainer


def _read(call: Any) -> Any:
    try:
        return call()
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess, AccessDenied: unknown
        return None
