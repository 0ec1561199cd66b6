"""Every scalar a run logs, as named series over the run: what the Metrics grid draws.

`MetricHistory.add(events)` takes the events of metrics.jsonl in order. Each top-level field of a
"batch", "epoch" or "system" event whose value is a finite number (bools are not) is a point of
the series (kind, field); a list of objects (the "gpus" of a system event) adds each object's
numbers, one series per object. Nothing names the fields in advance: a field a later trainer logs
shows up as it comes. The fields that place an event (epoch, batch, time, ...) are not series.

x is the fractional epoch, as the Charts tab draws it: epoch - 1 + batch / batches for a batch
event, the epoch number for an epoch event, and for a system event the place of the last
training event before it (a system event that has epoch, batch and batches is placed by them).

Series are grouped into metrics, one chart each (`Metric`): an epoch's train_loss and val_loss
with the batches' smoothed loss are "loss"; batch and epoch images_per_s are one "throughput";
each GPU of a system event is one line of "GPU utilisation". The trainer's CPU (of one core in the
event) is kept in percent of all cores, the host CPU's unit (`of_all_cores`), as the System pane
draws both. `KNOWN` names the known metrics and
their units; any other gets a title from its field name (`describe`). The "lr" metric also has the
whole planned schedule of the run (`schedule.planned_lr`, from the run_started event's config).

Bounded memory, as `RunHistory`: each series keeps at most `max_points` points (when full, every
other one is dropped and only every second value is kept from then on), its count, last, min and
max are exact; at most `MAX_SERIES` series and names of at most `MAX_NAME` characters (a forged
file cannot grow it without end). Field names come from a file: show them through
`text.one_line` (`describe` does). No torch, no textual.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cnn_tui import text
from cnn_tui.training.loop.schedule import Schedule, planned_lr

KINDS = ("batch", "epoch", "system")
PLAN = "plan"  # the kind of the planned learning-rate series (not an event)
POSITION_FIELDS = frozenset(
    {"epoch", "epochs", "batch", "batches", "time", "step", "pid", "rank", "index", "world_size"}
)
MAX_SERIES = 256
MAX_NAME = 64
MAX_LIST = 64  # objects of a list field (GPUs) read per event
DEFAULT_METRICS = ("loss", "acc", "lr", "grad_norm")  # what the Metrics grid opens with


@dataclass(frozen=True)
class MetricLabel:
    """How a metric is shown: its chart's title, its unit, and how its values are drawn."""

    title: str
    unit: str = ""
    percent: bool = False  # values are fractions, drawn as percent
    scale: float = 1.0  # drawn as value × scale (bytes as GiB)
    short: str = ""  # the list's name where the heading does not fit ("grad norm")

    @property
    def heading(self) -> str:
        """The chart's title: `learning rate`, `throughput (img/s)`, `accuracy (%)`."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def fitting(self, width: int) -> str:
        """The heading, or the short name where the heading is longer than `width` (the list's
        room) and the short one is shorter; the cell cuts whatever is still too long."""
        if len(self.heading) <= width or not self.short:
            return self.heading
        return self.short


# the unit of both CPU fields: a system event's trainer_cpu_percent is of one core, drawn divided
# by its cpu_count (as the System pane's CPU chart draws it) so the two lines share one scale
CPU_UNIT = "% of all cores"
# the metrics known by name, in the order the list shows them (others follow as they came)
KNOWN: dict[str, MetricLabel] = {
    "loss": MetricLabel("loss"),
    "acc": MetricLabel("accuracy", "%", percent=True),
    "lr": MetricLabel("learning rate"),
    "grad_norm": MetricLabel("gradient norm", "L2, unclipped", short="grad norm"),
    "weight_norm": MetricLabel("weight norm", "L2", short="weight norm"),
    "images_per_s": MetricLabel("throughput", "img/s", short="img/s"),
    "gpu_mem_mb": MetricLabel("GPU memory (torch)", "MiB", short="GPU mem torch"),
    "batch_loss": MetricLabel("batch loss (unsmoothed)", short="batch loss raw"),
    "seconds": MetricLabel("epoch time", "s"),
    "eta_s": MetricLabel("time left", "s"),
    "lr_epoch": MetricLabel("learning rate at epoch end", short="lr at epoch end"),
    # the "system" events (training/system/reading.py)
    "cpu_percent": MetricLabel("host CPU", CPU_UNIT, short="host CPU %"),
    "trainer_cpu_percent": MetricLabel("trainer CPU", CPU_UNIT, short="trainer CPU %"),
    "ram": MetricLabel("RAM", "GiB", scale=1 / text.GIB),
    "gpus.util_percent": MetricLabel("GPU utilisation", "%", short="GPU util %"),
    "gpus.memory_used_mb": MetricLabel("GPU memory used", "MiB", short="GPU mem used"),
    "gpus.temperature_c": MetricLabel("GPU temperature", "°C", short="GPU temp °C"),
    "gpus.power_w": MetricLabel("GPU power", "W"),
    "gpus.memory_total_mb": MetricLabel("GPU memory total", "MiB", short="GPU mem total"),
    "gpus.power_limit_w": MetricLabel("GPU power limit", "W", short="GPU power limit"),
    "cpu_count": MetricLabel("CPU cores"),
    "trainer_processes": MetricLabel("trainer processes"),
}

# (kind, field) -> (metric, series label), where the general rule would not group them well
SERIES_NAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("batch", "loss"): ("batch_loss", "batch"),  # the mean loss of the batches since the last event
    ("batch", "smoothed_loss"): ("loss", "batch (smoothed)"),
    ("batch", "lr"): ("lr", "used"),  # (drawn over the planned schedule)
    ("epoch", "lr"): ("lr_epoch", "epoch"),  # the last step's: a line between epochs would
    # draw a step schedule's drop as a slope
    ("batch", "gpu_mem_mb"): ("gpu_mem_mb", "allocated"),
    ("epoch", "gpu_mem_mb"): ("gpu_mem_mb", "epoch peak"),
    ("system", "ram_used"): ("ram", "host used"),
    ("system", "ram_total"): ("ram", "host total"),
    ("system", "trainer_rss"): ("ram", "trainer"),
}
SPLIT_PREFIXES = ("train_", "val_", "test_")  # of epoch fields: train_loss is "loss", series train
LIST_ITEM_NAMES = {"gpus": "GPU"}  # a list field's objects: "GPU 0", "GPU 1"

# a fallback title's unit, from the end of the field name (the first that fits)
UNIT_SUFFIXES = (
    ("_per_s", "/s", 1.0),
    ("_percent", "%", 1.0),
    ("_pct", "%", 1.0),
    ("_mb", "MiB", 1.0),
    ("_mib", "MiB", 1.0),
    ("_gb", "GiB", 1.0),
    ("_bytes", "GiB", 1 / text.GIB),
    ("_ms", "ms", 1.0),
    ("_s", "s", 1.0),
    ("_c", "°C", 1.0),
    ("_w", "W", 1.0),
    ("_mhz", "MHz", 1.0),
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]*$")


def describe(metric: str) -> MetricLabel:
    """The label of metric `metric`: from `KNOWN`, else made from its name (`gpu0_fan_percent`:
    "gpu0 fan", unit "%"), text from a file made safe to show."""
    if metric in KNOWN:
        return KNOWN[metric]
    name, unit, scale = metric, "", 1.0
    for suffix, suffix_unit, suffix_scale in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit, scale = name[: -len(suffix)], suffix_unit, suffix_scale
            break
    title = text.one_line(name.replace("_", " ").replace(".", " ").strip()) or "?"
    return MetricLabel(title, unit, scale=scale)


TRAINER_CPU = "trainer_cpu_percent"


def of_all_cores(percent_of_one: Any, cores: Any) -> float | None:
    """A process's CPU use in percent of one core (a system event's `trainer_cpu_percent`, 200:
    two cores busy) as percent of all `cores` (`CPU_UNIT`); None without a core count."""
    if not text.finite(percent_of_one) or not text.finite(cores) or cores < 1:
        return None
    return float(percent_of_one) / float(cores)


def names_of(kind: str, field: str) -> tuple[str, str]:
    """(metric, series label) of the field `field` of `kind` events."""
    if (kind, field) in SERIES_NAMES:
        return SERIES_NAMES[(kind, field)]
    if kind == "epoch":
        for prefix in SPLIT_PREFIXES:
            if field.startswith(prefix) and len(field) > len(prefix):
                return field[len(prefix) :], prefix[:-1]
    return field, kind


@dataclass
class Series:
    """One field's values over the run, thinned to at most `max_points` points."""

    kind: str  # "batch", "epoch", "system" (or PLAN)
    name: str  # the event's field ("gpus[0].util_percent" for a list's object)
    metric: str  # the chart it belongs to
    label: str  # its line's name in that chart
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    count: int = 0
    last: float = math.nan
    low: float = math.inf
    high: float = -math.inf
    _stride: int = 1

    def add(self, x: float, y: float, max_points: int) -> None:
        self.count += 1
        self.last, self.low, self.high = y, min(self.low, y), max(self.high, y)
        if (self.count - 1) % self._stride:
            return
        self.xs.append(x)
        self.ys.append(y)
        if len(self.xs) > max_points:
            self.xs, self.ys = self.xs[::2], self.ys[::2]
            self._stride *= 2


@dataclass(frozen=True)
class Metric:
    """One chart: a metric's label and its series (the planned learning rate first)."""

    key: str
    label: MetricLabel
    series: tuple[Series, ...]


@dataclass
class MetricHistory:
    """The series of every scalar of a run's events, grouped into metrics."""

    max_points: int = 600

    series: dict[tuple[str, str], Series] = field(default_factory=dict)  # in discovery order
    position: float = 0.0  # x of the last batch or epoch event
    schedule: Schedule | None = None  # from the last run_started event
    batches_per_epoch: int = 0
    version: int = 0  # grows when a series or the planned schedule appears (the list changes)
    _planned: Series | None = None

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.add_event(event)

    def add_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "run_started":
            self._started(event)
            return
        if kind not in KINDS:
            return
        x = self._place(str(kind), event)
        for name, value in event.items():
            if name in POSITION_FIELDS or not isinstance(name, str):
                continue
            if kind == "system" and name == TRAINER_CPU:
                value = of_all_cores(value, event.get("cpu_count"))
            if text.finite(value):
                self._point(str(kind), name, x, float(value))
            elif isinstance(value, list):
                self._list_points(str(kind), name, value, x)

    def _place(self, kind: str, event: dict[str, Any]) -> float:
        epoch, batch, batches = event.get("epoch"), event.get("batch"), event.get("batches")
        if kind == "epoch" and text.finite(epoch):
            self.position = float(epoch)
        elif text.finite(epoch) and text.finite(batch) and text.finite(batches) and batches > 0:
            x = float(epoch) - 1 + float(batch) / float(batches)
            if kind != "batch":
                return x
            self.position = x
        return self.position

    def _list_points(self, kind: str, name: str, items: list[Any], x: float) -> None:
        for i, item in enumerate(items[:MAX_LIST]):
            if not isinstance(item, dict):
                continue
            index = item.get("index", i)
            index = int(index) if text.finite(index) and 0 <= index < 2**31 else i
            item_name = LIST_ITEM_NAMES.get(name, name)
            for sub, value in item.items():
                if isinstance(sub, str) and sub not in POSITION_FIELDS and text.finite(value):
                    key = f"{name}[{index}].{sub}"
                    names = (f"{name}.{sub}", f"{item_name} {index}")
                    self._point(kind, key, x, float(value), names)

    def _point(
        self, kind: str, name: str, x: float, y: float, names: tuple[str, str] | None = None
    ) -> None:
        series = self.series.get((kind, name))
        if series is None:
            if len(self.series) >= MAX_SERIES or len(name) > MAX_NAME or not _NAME.match(name):
                return
            metric, label = names or names_of(kind, name)
            series = self.series[(kind, name)] = Series(kind, name, metric, label)
            self.version += 1
        series.add(x, y, self.max_points)

    def _started(self, event: dict[str, Any]) -> None:
        schedule = Schedule.from_values(event.get("config"))
        batches = event.get("batches_per_epoch")
        batches = int(batches) if text.finite(batches) and 0 < batches < 2**31 else 0
        if (schedule, batches) != (self.schedule, self.batches_per_epoch):
            self.schedule, self.batches_per_epoch, self._planned = schedule, batches, None
            self.version += 1

    def planned_lr(self) -> Series | None:
        """The run's whole learning-rate schedule (from its run_started event), or None."""
        if self.schedule is None or not self.batches_per_epoch:
            return None
        if self._planned is None:
            xs, ys = planned_lr(self.schedule, self.batches_per_epoch)
            planned = Series(PLAN, "lr", "lr", "planned")
            for x, y in zip(xs, ys, strict=True):
                planned.add(x, y, max(len(xs), 1))
            self._planned = planned
        return self._planned

    def metrics(self) -> dict[str, Metric]:
        """Every metric, the known ones first in `KNOWN`'s order, then the others as they came."""
        grouped: dict[str, list[Series]] = {}
        planned = self.planned_lr()
        if planned is not None:
            grouped["lr"] = [planned]
        for series in self.series.values():
            grouped.setdefault(series.metric, []).append(series)
        known = list(KNOWN)
        order = sorted(
            enumerate(grouped),
            key=lambda item: (known.index(item[1]) if item[1] in known else len(known), item[0]),
        )
        return {key: Metric(key, describe(key), tuple(grouped[key])) for _, key in order}
