"""The host's load: CPU use over all its cores and the RAM in use, through psutil.

`HostMonitor.sample()` is cheap (two reads of /proc on Linux). CPU use is measured between two
calls, as `top` does: the monitor's first call (when it is made) starts the interval, so the first
reading after it covers the time since. The psutil calls go through a `source` object with
psutil's names, so tests inject a fake one. UI-free and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostSample:
    """One reading of the machine: CPU use in percent of all its cores (100 = every core busy),
    how many logical cores it has, and RAM in use (total - available) and in all, in bytes. A
    value psutil could not give is None."""

    cpu_percent: float | None
    cpu_count: int | None
    ram_used: int | None
    ram_total: int | None

    @property
    def ram_fraction(self) -> float | None:
        if self.ram_used is None or not self.ram_total:
            return None
        return self.ram_used / self.ram_total


class HostMonitor:
    """Samples the host; build it when the interval to measure starts."""

    def __init__(self, source: Any | None = None) -> None:
        if source is None:
            import psutil as source
        self.source = source
        self.cpu_count = _read(lambda: int(self.source.cpu_count(logical=True)))
        _read(lambda: self.source.cpu_percent(interval=None))  # starts the first interval

    def sample(self) -> HostSample:
        cpu = _read(lambda: float(self.source.cpu_percent(interval=None)))
        memory = _read(self.source.virtual_memory)
        total = _read(lambda: int(memory.total))
        available = _read(lambda: int(memory.available))
        used = total - available if total is not None and available is not None else None
        return HostSample(cpu, self.cpu_count, used, total)


def _read(call: Any) -> Any:
    """`call()`, or None when psutil cannot give that value here."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - psutil.Error, OSError, an odd platform: the value is unknown
        return None
