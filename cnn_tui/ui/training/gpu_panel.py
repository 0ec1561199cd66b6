"""The dashboard's GPU lines above the tabs: utilisation, memory, temperature and power of every
GPU of the trainer's machine while the run trains.

They show the GPUs of the trainer's latest "system" event (`training/system/sampler.py`), as the
System tab does: the trainer's machine, which is not always the TUI's (a run on a shared file
system, followed from another host), and no NVML in the TUI process. Hidden without GPU readings
and once the run is over (its last figures are no longer about a live run; the System tab keeps
them). One line per GPU, so a multi-GPU run shows the memory of each; the usage bars are
characters, so they read without colour too.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from cnn_tui import text

BAR_WIDTH = 10


def usage_bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """'▕██████░░░░▏' for 0.6: filled and empty cells differ in shape, not only in colour."""
    if fraction is None:
        return "▕" + "?" * width + "▏"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▕" + "█" * filled + "░" * (width - filled) + "▏"


def gpu_line(sample: Any, *, compact: bool) -> Text:
    """A GPU's line, nvitop's figures with usage bars:
    'GPU0 util▕█████████░▏  92%  mem▕████░░░░░░▏ 30.0/79.6 GiB  64°C  586 W'; with room (not
    `compact`) the share of memory, the power limit and the GPU's name at the end. One line: a
    narrower terminal cuts its end with "…"."""
    from cnn_tui.training.system import gpu_stats

    util = None if sample.util_percent is None else sample.util_percent / 100
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"GPU{sample.index} ", style="bold")
    line.append("util", style="dim")
    line.append(usage_bar(util))
    line.append(f" {gpu_stats.util_text(sample):>4}  ")
    line.append("mem", style="dim")
    line.append(usage_bar(sample.memory_fraction))
    line.append(f" {gpu_stats.memory_text(sample, share=not compact)}  ")
    line.append(f"{gpu_stats.temperature_text(sample)}  ")
    line.append(gpu_stats.power_text(sample, limit=not compact))
    if not compact:
        line.append(f"  {text.one_line(sample.name)}", style="dim")
    return line


class GpuPanel(Static):
    """The GPUs of the trainer's latest reading (`show`); hidden while there are none."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; display: none; }
    GpuPanel.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.compact = False
        self.samples: list[Any] = []
        self.stopped = False

    def show(self, samples: list[Any]) -> None:
        """The GPUs of a new reading (`gpu_stats.GpuSample`s); none: hidden."""
        if self.stopped:
            return
        self.samples = list(samples)
        self.set_class(bool(self.samples), "-shown")
        self._draw()

    def stop(self) -> None:
        """Hide for good: the run is over, its GPU figures are no longer about it."""
        self.stopped = True
        self.remove_class("-shown")

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            self._draw()

    def _draw(self) -> None:
        lines = [gpu_line(sample, compact=self.compact) for sample in self.samples]
        self.update(Text("\n").join(lines))
