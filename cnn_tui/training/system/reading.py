"""The "system" event of metrics.jsonl: one reading of the host, the trainer's processes and the
GPUs, written by the trainer (`sampler.py`) and read back by the System pane and `cnn-tui runs
show` of any run, live or over, from this machine or another.

The fields (docs/training/run-directory.md, "Events"), flat where they are one number so that a
reader that charts every scalar of the event log finds them:

    host                 the machine the trainer runs on
    cpu_percent          the host's CPU use, percent of all its cores (100: every core busy)
    cpu_count            its logical cores
    ram_used, ram_total  the host's RAM in use (total - available) and in all, bytes
    trainer_rss          RSS of the trainer's processes added up, bytes (trainer_stats.py)
    trainer_cpu_percent  their CPU use, percent of one core
    trainer_processes    how many processes, and which: trainer_scope (process | children | ranks)
    gpus                 per GPU: index, name, util_percent, memory_used_mb, memory_total_mb,
                         temperature_c, power_w, power_limit_w and processes (pid,
                         used_memory_mb, name, trainer), as `gpu_stats.GpuSample` holds them
    gpu_note             why there are no GPU readings (no driver, no nvidia-ml-py), if none
    process_note         why the GPU processes have no names (pids of another pid namespace)
    error                instead of the readings: why a reading failed (said once per error)

A value that could not be read is null. `from_event` reads a file from anywhere: every field is
checked (a number that is not finite, a string where a number belongs, counts out of range are
taken as unknown) and lists are cut to their limits, so a damaged or forged line shows as
unknowns, never as an error. Strings from it are still the file's: show them with
`text.one_line`. UI-free and torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cnn_tui.text import finite
from cnn_tui.training.system.gpu_stats import MAX_PROCESSES, GpuProcess, GpuSample
from cnn_tui.training.system.host_stats import HostSample
from cnn_tui.training.system.trainer_stats import SCOPES, TrainerSample

EVENT = "system"
MAX_GPUS = 64
MAX_TEXT = 200  # characters of a name or a note kept from a file


@dataclass(frozen=True)
class SystemReading:
    """One "system" event: when (unix seconds), where, and what was read."""

    time: float
    host: str
    machine: HostSample
    trainer: TrainerSample
    gpus: tuple[GpuSample, ...] = ()
    gpu_note: str = ""
    process_note: str = ""
    error: str = ""

    def fields(self) -> dict[str, Any]:
        """The event's fields (all but "event" and "time", which `EventLog.emit` adds)."""
        fields: dict[str, Any] = {
            "host": self.host,
            "cpu_percent": self.machine.cpu_percent,
            "cpu_count": self.machine.cpu_count,
            "ram_used": self.machine.ram_used,
            "ram_total": self.machine.ram_total,
            "trainer_rss": self.trainer.rss,
            "trainer_cpu_percent": self.trainer.cpu_percent,
            "trainer_processes": self.trainer.processes,
            "trainer_scope": self.trainer.scope,
            "gpus": [asdict(gpu) for gpu in self.gpus],
        }
        if self.gpu_note:
            fields["gpu_note"] = self.gpu_note
        if self.process_note:
            fields["process_note"] = self.process_note
        if self.error:
            fields["error"] = self.error
        return fields


def from_event(event: dict[str, Any]) -> SystemReading | None:
    """The reading a "system" event holds, or None for any other event (or one without a time)."""
    if not isinstance(event, dict) or event.get("event") != EVENT or not finite(event.get("time")):
        return None
    machine = HostSample(
        _number(event.get("cpu_percent")),
        _whole(event.get("cpu_count")),
        _whole(event.get("ram_used")),
        _whole(event.get("ram_total")),
    )
    scope = event.get("trainer_scope")
    trainer = TrainerSample(
        _whole(event.get("trainer_rss")),
        _number(event.get("trainer_cpu_percent")),
        _whole(event.get("trainer_processes")) or 0,
        scope if scope in SCOPES else "process",
    )
    gpus = event.get("gpus")
    readings = [_gpu(gpu) for gpu in (gpus if isinstance(gpus, list) else [])[:MAX_GPUS]]
    return SystemReading(
        time=float(event["time"]),
        host=_text(event.get("host")),
        machine=machine,
        trainer=trainer,
        gpus=tuple(gpu for gpu in readings if gpu is not None),
        gpu_note=_text(event.get("gpu_note")),
        process_note=_text(event.get("process_note")),
        error=_text(event.get("error")),
    )


def _gpu(value: Any) -> GpuSample | None:
    if not isinstance(value, dict) or _whole(value.get("index")) is None:
        return None
    processes = value.get("processes")
    found = [_process(p) for p in (processes if isinstance(processes, list) else [])]
    return GpuSample(
        index=_whole(value.get("index")) or 0,
        name=_text(value.get("name")) or "?",
        util_percent=_number(value.get("util_percent")),
        memory_used_mb=_number(value.get("memory_used_mb")),
        memory_total_mb=_number(value.get("memory_total_mb")),
        temperature_c=_number(value.get("temperature_c")),
        power_w=_number(value.get("power_w")),
        power_limit_w=_number(value.get("power_limit_w")),
        processes=tuple(p for p in found if p is not None)[:MAX_PROCESSES],
    )


def _process(value: Any) -> GpuProcess | None:
    if not isinstance(value, dict):
        return None
    pid = _whole(value.get("pid"))
    if not pid:
        return None
    name = _text(value.get("name")) or None
    return GpuProcess(pid, _number(value.get("used_memory_mb")), name, value.get("trainer") is True)


def _number(value: Any) -> float | None:
    return float(value) if finite(value) and value >= 0 else None


def _whole(value: Any) -> int | None:
    """A count or a size: a whole number >= 0 (below 2**63), else None."""
    return int(value) if finite(value) and 0 <= value < 2**63 else None


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""
