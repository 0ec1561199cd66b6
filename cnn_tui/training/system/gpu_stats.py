"""Live statistics of the NVIDIA GPUs on this machine, read through NVML (package nvidia-ml-py).

The trainer samples them every few seconds (`GpuMonitor.sample`, through `system/sampler.py`), as
nvitop does: utilisation, memory used / total, temperature and power of every GPU and the compute
processes on it (pid and GPU memory; their names come from the caller, psutil), a few microseconds
per GPU and no torch import. Without the library or the driver (`nvmlInit` fails)
`GpuMonitor.available` is False and `reason` says why in one line; a GPU whose reading fails
mid-run keeps its row with the values it could read (None: unknown).

The NVML calls go through a `source` object with pynvml's function names, so tests inject a fake
one instead of needing a GPU. UI-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnn_tui import text

# pid -> (the process's name or None, whether it is one of the run's trainer processes)
ProcessNamer = Callable[[int], tuple[str | None, bool]]


MAX_PROCESSES = 32  # per GPU: nvitop shows a screenful; a reading stays a few KiB


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU: its pid (in the host's pid namespace, as NVML sees it), the GPU
    memory it holds (None: NVML does not say, e.g. under MIG or WDDM), its name (None: not a
    process of this machine's view) and whether it is one of the run's own trainer processes."""

    pid: int
    used_memory_mb: float | None
    name: str | None = None
    trainer: bool = False


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU; a value NVML could not give is None."""

    index: int
    name: str
    util_percent: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    processes: tuple[GpuProcess, ...] = ()

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_mb is None or not self.memory_total_mb:
            return None
        return self.memory_used_mb / self.memory_total_mb


def _load_pynvml() -> Any:
    import pynvml  # nvidia-ml-py: a pure-Python ctypes binding, cheap to import

    return pynvml


class GpuMonitor:
    """Samples every GPU NVML sees; `available` is False (with `reason`) when there is none."""

    def __init__(self, source: Any | None = None) -> None:
        self.source = source
        self.reason = ""
        self._handles: list[tuple[int, Any, str]] = []
        try:
            if self.source is None:
                self.source = _load_pynvml()
            self.source.nvmlInit()
            count = int(self.source.nvmlDeviceGetCount())
            for index in range(count):
                handle = self.source.nvmlDeviceGetHandleByIndex(index)
                name = self.source.nvmlDeviceGetName(handle)
                if isinstance(name, bytes):  # older bindings return bytes
                    name = name.decode(errors="replace")
                self._handles.append((index, handle, str(name)))
        except ImportError:
            self.reason = "no GPU statistics: the nvidia-ml-py package is not installed"
        except Exception as exc:  # noqa: BLE001 - NVMLError_* (no driver, no library, no GPU)
            self.reason = f"no NVIDIA GPU statistics ({_error_text(exc)})"
            self._handles = []
        if not self._handles and not self.reason:
            self.reason = "no NVIDIA GPU found"

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def sample(self, describe: ProcessNamer | None = None) -> list[GpuSample]:
        """A reading of every GPU, in index order (empty when NVML is not available).

        `describe(pid)` -> (name or None, whether it is a trainer process) names the compute
        processes on each GPU; without it they are not read."""
        return [
            self._sample(index, handle, name, describe) for index, handle, name in self._handles
        ]

    def _sample(
        self, index: int, handle: Any, name: str, describe: ProcessNamer | None
    ) -> GpuSample:
        nvml = self.source
        util = _read(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        memory = _read(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        temperature = _read(
            lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        )
        power = _read(lambda: nvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
        limit = _read(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        return GpuSample(
            index=index,
            name=name,
            util_percent=_number(util),
            memory_used_mb=None if memory is None else _number(memory.used, text.MIB),
            memory_total_mb=None if memory is None else _number(memory.total, text.MIB),
            temperature_c=_number(temperature),
            power_w=_number(power, 1000),
            power_limit_w=_number(limit, 1000),
            processes=() if describe is None else self._processes(handle, describe),
        )

    def _processes(self, handle: Any, describe: ProcessNamer) -> tuple[GpuProcess, ...]:
        """The compute processes on a GPU, the largest GPU memory first (none when NVML cannot
        list them)."""
        found = _read(lambda: self.source.nvmlDeviceGetComputeRunningProcesses(handle)) or []
        result = []
        for info in list(found)[: MAX_PROCESSES * 4]:
            pid = getattr(info, "pid", None)
            if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
                continue
            name, trainer = describe(pid)
            used = _number(getattr(info, "usedGpuMemory", None), text.MIB)
            result.append(GpuProcess(pid, used, name, trainer))
        result.sort(key=lambda p: (-(p.used_memory_mb or 0.0), p.pid))
        return tuple(result[:MAX_PROCESSES])

    def close(self) -> None:
        if self._handles:
            _read(self.source.nvmlShutdown)
            self._handles = []


def _read(call: Any) -> Any:
    """`call()`, or None when NVML cannot give that value (not supported, GPU lost)."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends: the value is unknown
        return None


def _number(value: Any, divisor: float = 1) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value / divisor


def _error_text(exc: BaseException) -> str:
    said = str(exc).strip() or type(exc).__name__
    if len(said) > 1 and said[1].isupper():  # an acronym ("NVML ..."): keep it as it is
        return said
    return said[0].lower() + said[1:]


def format_sample(sample: GpuSample, *, compact: bool = False) -> str:
    """One line for a GPU: 'GPU0 NVIDIA H200 · util 87% · mem 34.2/139.8 GiB (24%) · 62°C · 412/700 W'.

    `compact` leaves out the name and the power limit (80 columns)."""
    parts = [f"GPU{sample.index}" if compact else f"GPU{sample.index} {text.one_line(sample.name)}"]
    parts.append(f"util {util_text(sample)}")
    parts.append(f"mem {memory_text(sample, share=not compact)}")
    parts.append(temperature_text(sample))
    parts.append(power_text(sample, limit=not compact))
    return " · ".join(parts)


def util_text(sample: GpuSample) -> str:
    """'87%'."""
    return text.percent(None if sample.util_percent is None else sample.util_percent / 100, 0)


def memory_text(sample: GpuSample, *, share: bool = True) -> str:
    """'34.2/140.4 GiB (24%)': one unit for both; `share` adds the fraction in use."""
    memory = f"{_gib(sample.memory_used_mb)}/{_gib(sample.memory_total_mb)} GiB"
    if share and sample.memory_fraction is not None:
        memory += f" ({text.percent(sample.memory_fraction, 0)})"
    return memory


def temperature_text(sample: GpuSample) -> str:
    """'62°C'."""
    return f"{text.number(sample.temperature_c, '.0f')}°C"


def power_text(sample: GpuSample, *, limit: bool = True) -> str:
    """'412/700 W' (`limit`: with the enforced power limit, when known), '412 W'."""
    power = text.number(sample.power_w, ".0f")
    if sample.power_limit_w is not None and limit:
        power += f"/{text.number(sample.power_limit_w, '.0f')}"
    return power + " W"


def _gib(megabytes: float | None) -> str:
    """A size in MiB as a number of GiB: "34.2"."""
    return text.number(megabytes * text.MIB / text.GIB if text.finite(megabytes) else None, ".1f")
