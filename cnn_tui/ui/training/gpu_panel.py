"""The dashboard's GPU panel: utilisation, memory, temperature and power of every GPU, live.

A thread worker opens NVML once (`gpu_stats.GpuMonitor`) and samples every `SAMPLE_S` seconds
until the screen closes or `stop()` is called, posting one `GpuSampled` message per reading (they
merge when the UI is busy). Without NVML (no driver, no library, no NVIDIA GPU) the panel stays
hidden and posts the reason once, for the log. One line per GPU, so a multi-GPU run shows the
memory of each; the usage bars are characters, so they read without colour too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

SAMPLE_S = 2.0
BAR_WIDTH = 10


@dataclass
class GpuSampled(Message):
    """One reading of every GPU (`gpu_stats.GpuSample`s), or why there is none (`reason`)."""

    samples: list[Any]
    reason: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GpuSampled) and not message.reason


def usage_bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """'▕██████░░░░▏' for 0.6: filled and empty cells differ in shape, not only in colour."""
    if fraction is None:
        return "▕" + "?" * width + "▏"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▕" + "█" * filled + "░" * (width - filled) + "▏"


def gpu_line(sample: Any, *, compact: bool) -> Text:
    """A GPU's line: its usage bars (utilisation, memory) and the numbers."""
    from cnn_tui.training.system.gpu_stats import format_sample

    util = None if sample.util_percent is None else sample.util_percent / 100
    text = Text()
    if not compact:
        text.append("util ", style="dim")
        text.append(usage_bar(util))
        text.append(" mem ", style="dim")
        text.append(usage_bar(sample.memory_fraction))
        text.append(" ")
    text.append(format_sample(sample, compact=compact))
    return text


class GpuPanel(Static):
    """The live GPU statistics; hidden until NVML gives a first reading."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; display: none; }
    GpuPanel.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.compact = False
        self.samples: list[Any] = []
        self._stopped = threading.Event()  # (the worker ends by itself: never a cancelled one)

    def start(self) -> None:
        """Begin sampling (the dashboard of a live run calls it)."""
        self.sample_gpus()

    def stop(self) -> None:
        """Stop sampling and hide: the run is over, its GPU figures are no longer about it."""
        self._stopped.set()
        self.remove_class("-shown")

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            self._draw()

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpu-stats")
    def sample_gpus(self) -> None:
        from cnn_tui.training.system.gpu_stats import GpuMonitor

        worker = get_current_worker()
        monitor = GpuMonitor()
        try:
            if not monitor.available:
                self.post_message(GpuSampled([], monitor.reason))
                return
            while not (worker.is_cancelled or self._stopped.is_set()):
                self.post_message(GpuSampled(monitor.sample()))
                self._stopped.wait(SAMPLE_S)
        finally:
            monitor.close()

    def on_gpu_sampled(self, message: GpuSampled) -> None:
        if message.reason or self._stopped.is_set():  # (the dashboard logs the reason)
            return
        message.stop()
        self.samples = message.samples
        self.set_class(bool(self.samples), "-shown")
        self._draw()

    def _draw(self) -> None:
        lines = [gpu_line(sample, compact=self.compact) for sample in self.samples]
        self.update(Text("\n").join(lines))
