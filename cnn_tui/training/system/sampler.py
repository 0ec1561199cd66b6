"""The trainer's system sampler: a daemon thread that writes a "system" event (reading.py) into
the run's event log every `SAMPLE_S` seconds, from the run's "run_started" event (the engine
starts it then) until the run ends.

Only the main process samples (rank 0 of a data-parallel run, which adds up the ranks of its
host). The first reading comes `FIRST_S` after the start (the monitors start their CPU intervals
when they open, so it is a figure over that short interval), and the last one just before the
run's first end event (`last_reading`, which the engine hangs on `EventLog.before_end`): a run of
a few seconds has two readings at least. Reading and writing never stop training: a reading that fails is written once as a
"system" event with an `error` (the same error again is not repeated) and the sampler tries again
next time; a run folder that is gone ends the sampler, and the trainer finds out at its own next
write. `EventLog.emit` holds a lock, so the trainer's events and these never interleave, and no
reading follows the events that end the run (`EventLog.emit_while_running`): the last event of a
run stays its "finished", "failed" or "stopped".
UI-free and torch-free: the monitors read /proc (psutil) and NVML, a few milliseconds per reading.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Protocol

from cnn_tui import text
from cnn_tui.training.system import processes
from cnn_tui.training.system.gpu_stats import GpuMonitor, GpuSample
from cnn_tui.training.system.host_stats import HostMonitor
from cnn_tui.training.system.reading import EVENT, MAX_TEXT, SystemReading
from cnn_tui.training.system.trainer_stats import TrainerMonitor

SAMPLE_S = 2.0  # as nvitop refreshes; a day's run writes ~43,000 small lines (batch events: 4/s)
FIRST_S = 0.2  # the first reading: CPU use over this long (psutil's figure needs an interval)
STOP_WAIT_S = 5.0  # how long `stop` waits for a reading under way


class EventSink(Protocol):
    """`runs.store.EventLog`: `emit_while_running` writes nothing once the run's end is written."""

    def emit_while_running(self, kind: str, **fields: Any) -> dict[str, Any] | None: ...


FOREIGN_PIDS = "the GPUs' pids are the host's, not this container's: no names"


def _unnamed(gpu: GpuSample) -> GpuSample:
    processes = tuple(replace(process, name=None) for process in gpu.processes)
    return replace(gpu, processes=processes)


class Monitors:
    """The three monitors of one sampler, opened once (NVML's init costs ~50 ms); the trainer is
    process `pid` (default: this one)."""

    def __init__(
        self,
        *,
        pid: int | None = None,
        ranks: bool = False,
        psutil_source: Any = None,
        nvml_source: Any = None,
    ) -> None:
        self.host = processes.this_host()
        self.machine = HostMonitor(psutil_source)
        self.trainer = TrainerMonitor(pid, ranks=ranks, source=psutil_source)
        self.gpus = GpuMonitor(nvml_source)
        self.cuda = False  # the trainer computes on a GPU (set by the sampler)

    def read(self) -> SystemReading:
        trainer = self.trainer.sample()  # (first: it refreshes the trainer's pids for the GPUs)
        gpus = self.gpus.sample(self.trainer.describe)
        note = ""
        listed = [process for gpu in gpus for process in gpu.processes]
        if self.cuda and listed and not any(process.trainer for process in listed):
            # NVML's pids are the host's; a trainer on a GPU that is not among them runs in a
            # pid namespace of its own (a container): the names psutil gave are not theirs
            gpus = [_unnamed(gpu) for gpu in gpus]
            note = FOREIGN_PIDS
        return SystemReading(
            time=time.time(),
            host=self.host,
            machine=self.machine.sample(),
            trainer=trainer,
            gpus=tuple(gpus),
            gpu_note="" if self.gpus.available else self.gpus.reason,
            process_note=note,
        )

    def close(self) -> None:
        self.gpus.close()


class SystemSampler:
    """`start()` when the run starts, `stop()` in its `finally`; `monitors` is built on the
    sampler's thread (a factory, so tests give fake sources)."""

    def __init__(
        self,
        log: EventSink,
        *,
        interval: float | None = None,
        ranks: bool = False,
        monitors: Any = None,
    ) -> None:
        self.log = log
        self.interval = SAMPLE_S if interval is None else interval
        self.make_monitors = monitors or (lambda: Monitors(ranks=ranks))
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by `stop` and `last_reading`: no more waiting
        self._last = threading.Event()  # `last_reading` asked for one more reading
        self._last_done = threading.Event()  # ...and it is written (or the sampler is over)
        self._thread: threading.Thread | None = None
        self.cuda = False
        self.readings = 0  # how many were written (tests, the throughput measurement)
        self.errors: list[str] = []

    def start(self, *, cuda: bool = False) -> None:
        """Begin sampling; `cuda`: the trainer computes on a GPU (its pid must then be among the
        GPUs' processes, else NVML's pids are of another pid namespace)."""
        self.cuda = cuda
        self._thread = threading.Thread(target=self._run, name="system sampler", daemon=True)
        self._thread.start()

    def last_reading(self) -> None:
        """Take one more reading now and end the sampler (before the run's end event, which
        nothing follows); returns once it is written, or after `STOP_WAIT_S` at most."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._last.set()
        self._wake.set()
        self._last_done.wait(STOP_WAIT_S)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def _run(self) -> None:
        from cnn_tui.training.runs.store import RunFolderGone

        monitors = None
        try:
            monitors = self.make_monitors()
            monitors.cuda = self.cuda
            wait = min(FIRST_S, self.interval)
            while True:
                self._wake.wait(wait)
                if self._stop.is_set():
                    break
                last = self._last.is_set()
                try:
                    if self.log.emit_while_running(EVENT, **monitors.read().fields()):
                        self.readings += 1
                except RunFolderGone:
                    raise
                except Exception as exc:  # noqa: BLE001 - a reading never stops training
                    self._failed(exc)  # (a full disk too: the next reading may fit)
                if last:
                    break
                wait = self.interval
        except RunFolderGone:
            return
        except Exception as exc:  # noqa: BLE001 - the monitors could not be opened
            self._failed(exc)
        finally:
            if monitors is not None:
                monitors.close()
            self._last_done.set()

    def _failed(self, exc: BaseException) -> None:
        message = text.one_line(f"{type(exc).__name__}: {exc}")[:MAX_TEXT]
        if message in self.errors:
            return
        self.errors.append(message)
        try:
            self.log.emit_while_running(EVENT, host=processes.this_host(), error=message)
        except Exception:  # noqa: BLE001 - the log itself fails: nothing more to say
            pass
