"""The run screen's System tab (3): the trainer's machine now and over the run, nvitop's view and
W&B LEET's system charts, drawn from the "system" events the trainer writes every few seconds
(`training/system/sampler.py`).

At the top the latest reading: the host (this machine or another one: the trainer's, never the
TUI's), CPU and RAM with usage bars, the trainer's own memory and CPU, one line per GPU and the
compute processes on the GPUs (the trainer's marked ◆). Below, charts over the run's time: CPU,
memory (host RAM, trainer RSS) and, when there are GPUs, their utilisation, memory, temperature and
power. A finished run shows the same from its file; a run written before cnn-tui recorded system
readings says so in one line. Everything shown from the file goes through `text.one_line`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from cnn_tui import text
from cnn_tui.training.runs.series import CPU_UNIT, KNOWN, of_all_cores
from cnn_tui.training.system import sampler
from cnn_tui.training.system.gpu_stats import GpuSample
from cnn_tui.training.system.processes import this_host
from cnn_tui.training.system.reading import SystemReading
from cnn_tui.training.system.timeline import SystemTimeline
from cnn_tui.training.system.trainer_stats import scope_text
from cnn_tui.ui.training.charts import MetricChart, Series
from cnn_tui.ui.training.gpu_panel import gpu_line, usage_bar

MAX_PROCESS_ROWS = 8  # GPU processes listed; the rest are counted
# (seconds below, unit, seconds per unit): the charts' time axis
TIME_UNITS = ((120, "seconds", 1.0), (2 * 3600, "minutes", 60.0), (float("inf"), "hours", 3600.0))


def time_axis(span_s: float) -> tuple[str, float]:
    """The unit of a time axis `span_s` seconds long and its seconds per unit: "seconds" below
    two minutes, "minutes" below two hours, else "hours" (whole-number ticks stay readable)."""
    for below, unit, scale in TIME_UNITS:
        if span_s < below:
            return unit, scale
    return TIME_UNITS[-1][1:]


def reading_lines(reading: SystemReading, *, compact: bool, here: str) -> list[Text]:
    """The latest reading: the host, CPU and RAM, the trainer's processes, one line per GPU."""
    machine, trainer = reading.machine, reading.trainer
    host = _line()
    host.append("host    ", style="dim")
    host.append(text.one_line(reading.host or "?"), style="bold")
    host.append(" (this machine)" if reading.host == here else " (another machine)")
    host.append(f" · {text.count(machine.cpu_count)} cores · read {text.started(reading.time)}")
    if not compact:
        host.append(f" (every {text.duration(sampler.SAMPLE_S)})", style="dim")

    cpu = _fraction(machine.cpu_percent)
    load = _line()
    load.append("CPU     ", style="dim")
    load.append(usage_bar(cpu))
    load.append(f" {text.percent(cpu, 0):>4}   ")
    load.append("RAM ", style="dim")
    load.append(usage_bar(machine.ram_fraction))
    load.append(f" {text.size(machine.ram_used)} / {text.size(machine.ram_total)}")
    if not compact:
        load.append(f" ({text.percent(machine.ram_fraction, 0)})")

    own = _line()
    own.append("trainer ", style="dim")
    ram = machine.ram_total
    own.append(usage_bar(trainer.rss / ram if trainer.rss is not None and ram else None))
    own.append(f" RSS {text.size(trainer.rss)} · CPU {_cores(trainer.cpu_percent)} · ")
    scope = scope_text(trainer.scope, trainer.processes)
    own.append(f"{trainer.processes} proc." if compact else scope, style="dim")

    lines = [host, load, own]
    lines += [gpu_line(gpu, compact=compact) for gpu in reading.gpus]
    if not reading.gpus:
        note = _line()
        note.append("GPUs    ", style="dim")
        note.append(text.one_line(reading.gpu_note or "no NVIDIA GPU"))
        lines.append(note)
    return lines


def _line() -> Text:
    """One line of the readings: cut with "…" on a narrow terminal, never wrapped."""
    return Text(no_wrap=True, overflow="ellipsis")


def _cores(percent_of_a_core: float | None) -> str:
    """A process's CPU use: "180%" of one core is "1.8 cores"."""
    if percent_of_a_core is None:
        return text.UNKNOWN
    return f"{text.number(percent_of_a_core / 100, '.1f')} cores"


def process_lines(gpus: tuple[GpuSample, ...], *, compact: bool) -> list[Text]:
    """The compute processes on the GPUs as a small table (most GPU memory first per GPU)."""
    rows = [(gpu.index, process) for gpu in gpus for process in gpu.processes]
    if not rows:
        return [Text("no compute processes on the GPUs", style="dim")] if gpus else []
    name_width = 16 if compact else 28
    header = Text(f"{'GPU':<4} {'PID':>8}  {'process':<{name_width}}  {'GPU mem':>9}", "bold")
    lines = [header]
    for index, process in rows[:MAX_PROCESS_ROWS]:
        name = text.ellipsis_middle(text.one_line(process.name or "?"), name_width)
        memory = (
            text.UNKNOWN
            if process.used_memory_mb is None
            else text.size(process.used_memory_mb * text.MIB)
        )
        line = Text(f"{index:<4} {process.pid:>8}  {name:<{name_width}}  {memory:>9}")
        if process.trainer:
            line.append("  ◆ trainer", style="bold")
        lines.append(line)
    if len(rows) > MAX_PROCESS_ROWS:
        lines.append(Text(f"… and {len(rows) - MAX_PROCESS_ROWS} more", style="dim"))
    return lines


class SystemPane(VerticalScroll):
    """The System tab: feed it the run's events (`add`), tell it when the run is over.

    Its charts are never lower than 12 rows: in fewer, a percent chart's six ticks share rows and
    plotext picks the label drawn there by set order, which changes from run to run."""

    DEFAULT_CSS = """
    SystemPane { height: 1fr; padding: 0 1; }
    SystemPane #system-now { height: auto; }
    SystemPane .system-charts { height: 12; }
    SystemPane.-no-gpus .system-charts { height: 1fr; min-height: 12; }
    SystemPane .system-charts MetricChart { width: 1fr; }
    SystemPane.-no-readings .system-charts, SystemPane.-no-gpus .system-gpu-charts {
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.timeline = SystemTimeline()
        self.compact = False
        self.over = False  # the run ended: no reading will come any more
        self.here = this_host()
        self._ready = False  # mounted: its parts can be drawn

    def compose(self) -> ComposeResult:
        yield Static(id="system-now")
        with Horizontal(classes="system-charts system-gpu-charts"):  # (first: nvitop's view)
            yield MetricChart(
                KNOWN["gpus.util_percent"].heading, percent=True, id="system-gpu-util"
            )
            yield MetricChart("GPU memory (GiB)", id="system-gpu-memory")
        with Horizontal(classes="system-charts"):
            yield MetricChart(f"CPU ({CPU_UNIT})", percent=True, id="system-cpu")
            yield MetricChart("memory (GiB)", id="system-memory")
        with Horizontal(classes="system-charts system-gpu-charts"):
            yield MetricChart(KNOWN["gpus.temperature_c"].heading, id="system-gpu-temperature")
            yield MetricChart(KNOWN["gpus.power_w"].heading, id="system-gpu-power")

    def on_mount(self) -> None:
        for chart in self.query(MetricChart):  # (the curves stay clear of the legend)
            chart.legend_room = True
            chart.from_zero = True  # (as nvitop draws them: 92 % of a GPU is not 92 % of 90-100)
        self._ready = True
        self._draw()

    @property
    def latest(self) -> SystemReading | None:
        return self.timeline.latest

    def add(self, events: list[dict[str, Any]]) -> bool:
        """Fold a poll's events in; redraws and returns True when there was a reading."""
        if not self.timeline.add(events):
            return False
        self._draw()
        return True

    def run_over(self) -> None:
        """No more readings will come: a pane without any says why instead of waiting."""
        if not self.over:
            self.over = True
            self._draw()

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            self.set_class(compact, "-compact")
            self._draw()

    # --- drawing --------------------------------------------------------------------------------

    def _draw(self) -> None:
        if not self._ready:
            return
        latest = self.timeline.latest
        self.set_class(latest is None, "-no-readings")
        self.set_class(latest is None or not latest.gpus, "-no-gpus")
        self.query_one("#system-now", Static).update(Text("\n").join(self._now_lines()))
        if latest is not None:
            self._draw_charts()

    def _now_lines(self) -> list[Text]:
        latest, failed = self.timeline.latest, self.timeline.error
        lines: list[Text] = []
        if latest is None:
            if self.over:
                lines.append(
                    Text(
                        "no system readings in this run (it was trained by a cnn-tui that did "
                        "not record them, or ended before the first one)",
                        style="dim",
                    )
                )
            else:
                every = text.duration(sampler.SAMPLE_S)
                lines.append(
                    Text(f"waiting for the trainer's first system reading (every {every})…", "dim")
                )
        else:
            lines += reading_lines(latest, compact=self.compact, here=self.here)
            lines += process_lines(latest.gpus, compact=self.compact)
            if latest.process_note:
                lines.append(Text(text.one_line(latest.process_note), style="dim"))
        if failed is not None:
            lines.append(
                Text(
                    f"a reading failed at {text.started(failed.time)}: {text.one_line(failed.error)}",
                    style="bold",
                )
            )
        return lines

    def _draw_charts(self) -> None:
        readings = self.timeline.readings
        start = readings[0].time
        unit, scale = time_axis(readings[-1].time - start)
        xs = [(r.time - start) / scale for r in readings]
        x_max = xs[-1]

        def series(label: str, values: list[float | None], role: str) -> Series:
            kept = [(x, y) for x, y in zip(xs, values, strict=True) if y is not None]
            return Series(label, [x for x, _ in kept], [y for _, y in kept], role=role)

        def host_share(r: SystemReading) -> float | None:  # (one scale with the host's line)
            share = of_all_cores(r.trainer.cpu_percent, r.machine.cpu_count)
            return None if share is None else share / 100

        def gib(n_bytes: int | None) -> float | None:
            return None if n_bytes is None else n_bytes / text.GIB

        charts: dict[str, list[Series]] = {
            "#system-cpu": [
                series("host", [_fraction(r.machine.cpu_percent) for r in readings], "train"),
                series("trainer", [host_share(r) for r in readings], "val"),
            ],
            "#system-memory": [
                series("host RAM", [gib(r.machine.ram_used) for r in readings], "train"),
                series("trainer RSS", [gib(r.trainer.rss) for r in readings], "val"),
            ],
        }
        indices = sorted({gpu.index for r in readings for gpu in r.gpus})
        per_gpu = {
            "#system-gpu-util": lambda g: _fraction(g.util_percent),
            "#system-gpu-memory": lambda g: _gib_of_mib(g.memory_used_mb),
            "#system-gpu-temperature": lambda g: g.temperature_c,
            "#system-gpu-power": lambda g: g.power_w,
        }
        for selector, value in per_gpu.items():
            charts[selector] = [
                series(f"GPU{index}", [_gpu_value(r, index, value) for r in readings], f"run{n}")
                for n, index in enumerate(indices)
            ]
        for selector, lines in charts.items():
            chart = self.query_one(selector, MetricChart)
            chart.x_label = unit
            chart.set_series(lines, x_max)


def _fraction(percent: float | None) -> float | None:
    return None if percent is None else percent / 100


def _gib_of_mib(megabytes: float | None) -> float | None:
    return None if megabytes is None else megabytes * text.MIB / text.GIB


def _gpu_value(reading: SystemReading, index: int, value: Any) -> float | None:
    for gpu in reading.gpus:
        if gpu.index == index:
            return value(gpu)
    return None
