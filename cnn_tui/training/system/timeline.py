"""A run's "system" events folded into what the System pane draws and the headless report says:
the latest reading, the readings over time (bounded) and each quantity's mean and peak.

`SystemTimeline.add(events)` takes the events of metrics.jsonl in order (any kind; it keeps the
"system" ones). At most `max_points` readings are kept for the charts: when full, every other one
is dropped and only every second reading is kept from then on, so a run of any length costs the
same memory (as `ui/training/history.py` does with batch points). The means and peaks are of every
reading, dropped or not. UI-free and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnn_tui import text
from cnn_tui.training.system.reading import EVENT, SystemReading, from_event


@dataclass
class Stat:
    """Mean and peak of a quantity over the readings that had it."""

    total: float = 0.0
    count: int = 0
    peak: float | None = None

    def add(self, value: float | None) -> None:
        if value is None or not text.finite(value):
            return
        self.total += value
        self.count += 1
        self.peak = value if self.peak is None else max(self.peak, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def to_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "peak": self.peak}


GPU_STATS = ("util_percent", "memory_used_mb", "temperature_c", "power_w")


@dataclass
class SystemTimeline:
    max_points: int = 600

    readings: list[SystemReading] = field(default_factory=list)  # for the charts, bounded
    latest: SystemReading | None = None  # the last reading that read something
    error: SystemReading | None = None  # the last failed reading, when it came after `latest`
    count: int = 0  # readings seen (the failed ones not counted)
    stats: dict[str, Stat] = field(default_factory=dict)  # host and trainer quantities
    gpu_stats: dict[int, dict[str, Stat]] = field(default_factory=dict)  # per GPU index
    gpu_names: dict[int, str] = field(default_factory=dict)
    gpu_totals: dict[int, float] = field(default_factory=dict)  # memory_total_mb per GPU

    _stride: int = 1

    def add(self, events: list[dict[str, Any]]) -> bool:
        """Fold events in; whether there was a "system" one among them."""
        seen = False
        for event in events:
            if not isinstance(event, dict) or event.get("event") != EVENT:
                continue
            reading = from_event(event)
            if reading is None:
                continue
            seen = True
            if reading.error:
                self.error = reading
                continue
            self._add(reading)
        return seen

    def _add(self, reading: SystemReading) -> None:
        self.latest, self.error = reading, None
        self.count += 1
        machine, trainer = reading.machine, reading.trainer
        for name, value in (
            ("cpu_percent", machine.cpu_percent),
            ("ram_used", machine.ram_used),
            ("trainer_rss", trainer.rss),
            ("trainer_cpu_percent", trainer.cpu_percent),
        ):
            self.stats.setdefault(name, Stat()).add(value)
        for gpu in reading.gpus:
            stats = self.gpu_stats.setdefault(gpu.index, {name: Stat() for name in GPU_STATS})
            for name in GPU_STATS:
                stats[name].add(getattr(gpu, name))
            self.gpu_names[gpu.index] = gpu.name
            if gpu.memory_total_mb is not None:
                self.gpu_totals[gpu.index] = gpu.memory_total_mb
        if (self.count - 1) % self._stride:
            return
        self.readings.append(reading)
        if len(self.readings) > self.max_points:
            self.readings = self.readings[::2]
            self._stride *= 2

    @property
    def hosts(self) -> list[str]:
        """The machines the readings come from, in order (two when a run was resumed elsewhere)."""
        return list(dict.fromkeys(r.host for r in self.readings if r.host))

    def summary(self) -> dict[str, Any] | None:
        """Means and peaks over the run (None without readings): what `cnn-tui train` prints at
        the end and a report's JSON holds. Sizes in bytes, GPU memory in MiB, as in the event."""
        if self.latest is None:
            return None
        latest = self.latest
        return {
            "host": latest.host,
            "readings": self.count,
            "cpu_count": latest.machine.cpu_count,
            "ram_total": latest.machine.ram_total,
            "trainer_scope": latest.trainer.scope,
            "trainer_processes": latest.trainer.processes,
            **{name: stat.to_dict() for name, stat in self.stats.items()},
            "gpus": [
                {
                    "index": index,
                    "name": self.gpu_names.get(index, "?"),
                    "memory_total_mb": self.gpu_totals.get(index),
                    **{name: stat.to_dict() for name, stat in stats.items()},
                }
                for index, stats in sorted(self.gpu_stats.items())
            ],
        }
