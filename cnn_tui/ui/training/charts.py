"""Line charts of training curves (textual-plotext), redrawn at most once a second.

`MetricChart.set_series` stores the data and redraws at once if the last redraw is older than
`MIN_REDRAW_S`; otherwise a timer picks the change up, so a fast run never floods the UI or the SSH
link. Line colours come from the app theme; each series also has its own marker, so the lines stay
apart on a terminal without colour. The y axis spans at least `MIN_SPAN` of its top value (a loss
that barely moved early in a run is not blown up to fill the chart) and its ticks are round
numbers with as few decimals as they need (`nice_ticks`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from textual.color import Color
from textual_plotext import PlotextPlot

from cnn_tui import text

MIN_REDRAW_S = 1.0
MIN_SPAN = 0.25  # the y range spans at least this fraction of its largest value
Y_TICKS = 5
# points beyond ±this are left out: no metric a trainer writes (float32, at most 3.4e38) gets
# there, while a damaged file's ±1e308 would overflow plotext's scaling
MAX_VALUE = 1e39
# rows of a chart that are not its plot: the title, the frame's two lines, the x ticks and label
PLOT_FRAME_ROWS = 5

# theme variable and plotext marker per series role; overlaid runs cycle through RUN_STYLES
ROLE_STYLES = {
    "batch": ("foreground-muted", "braille"),
    "train": ("primary", "hd"),
    "val": ("warning", "dot"),
}
RUN_STYLES = (
    ("primary", "hd"),
    ("warning", "dot"),
    ("success", "x"),
    ("error", "+"),
    ("accent", "o"),
    ("secondary", "*"),
)


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    role: str = "train"  # "batch", "train", "val", or "run<N>" for overlays


class MetricChart(PlotextPlot):
    """One chart of curves over epochs: loss or accuracy (percent)."""

    def __init__(
        self,
        title: str,
        *,
        percent: bool = False,
        x_label: str = "epoch",
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.percent = percent
        self.x_label = x_label  # (the System pane's charts: seconds, minutes or hours)
        self.series: list[Series] = []
        self.x_max: float = 0.0
        self.empty_note = "waiting for data"  # the title's note while there is nothing to draw
        # raise the y range so the legend's rows (top left) stay clear of the curves: a learning
        # rate starts at its top left, under the legend (the Metrics and System tabs' charts; a
        # percent chart up to 100 at most), and the top tick is at or above the data
        self.legend_room = False
        # the y axis starts at 0 (a machine's use and memory: the System tab), instead of
        # zooming into the data's range (a loss, whose changes are the point)
        self.from_zero = False
        self._drawn_at = 0.0
        self._dirty = True

    def on_mount(self) -> None:
        # (PlotextPlot's on_mount, which follows the app's theme, runs after this one: Textual
        # calls every class's handler, so no super() call)
        self.set_interval(MIN_REDRAW_S, self._redraw_if_dirty)
        self._draw()

    def on_resize(self) -> None:
        if self.legend_room:  # (the room the legend needs depends on the chart's size)
            self._dirty = True

    def set_series(self, series: list[Series], x_max: float = 0.0) -> None:
        """Replace the curves; `x_max` fixes the x range (e.g. the run's epoch count)."""
        first_data = not any(old.xs for old in self.series)
        self.series = series
        self.x_max = x_max
        self._dirty = True
        if first_data or time.monotonic() - self._drawn_at >= MIN_REDRAW_S:
            self._draw()

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._draw()

    def _colour(self, variable: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable) or self.app.theme_variables["foreground"]
        return Color.parse(value).rgb

    def _style(self, role: str) -> tuple[str, str]:
        if role in ROLE_STYLES:
            return ROLE_STYLES[role]
        if role.startswith("run"):
            return RUN_STYLES[int(role[3:] or 0) % len(RUN_STYLES)]
        return ROLE_STYLES["train"]

    def _draw(self) -> None:
        self._dirty = False
        self._drawn_at = time.monotonic()
        plt = self.plt
        plt.clear_figure()
        plt.title(self.chart_title)
        plt.xlabel(self.x_label)
        x_high = self.x_max
        has_data = False
        all_ys: list[float] = []
        for series in self.series:
            points = [
                (x, y)
                for x, y in zip(series.xs, series.ys, strict=False)
                if abs(x) <= MAX_VALUE and not abs(y) > MAX_VALUE  # (NaN: a gap, kept)
            ]
            if not points:
                continue
            has_data = True
            variable, marker = self._style(series.role)
            xs = [x for x, _ in points]
            ys = [y * 100 if self.percent else y for _, y in points]
            plt.plot(xs, ys, label=series.label, marker=marker, color=self._colour(variable))
            x_high = max(x_high, max(xs))
            all_ys += [y for y in ys if math.isfinite(y)]
        if not has_data:
            plt.title(f"{self.chart_title} ({self.empty_note})")
        if all_ys:
            top = 100.0 if self.percent else math.inf
            lowest = min(0.0, min(all_ys)) if self.from_zero else min(all_ys)
            low, high = y_range(lowest, max(all_ys), top=top)
            rows = self.size.height - PLOT_FRAME_ROWS
            if self.legend_room:
                high = min(top, self._above_legend(low, high, x_high))
            ticks, labels = fitting_ticks(low, high, rows)
            if self.legend_room and len(ticks) > 1 and ticks[-1] < max(all_ys) and high < top:
                # (a short chart's ticks are far apart: the top one under the data would read
                # as its maximum, e.g. "2" for 2.7; the range grows to the next tick)
                high = min(top, ticks[-1] + (ticks[-1] - ticks[-2]))
                ticks, labels = fitting_ticks(low, high, rows)
            plt.ylim(low, high)
            plt.yticks(ticks, labels)
        if x_high > 0:
            plt.xlim(0, x_high)
            step = max(1, int(x_high) // 8 + (1 if int(x_high) % 8 else 0))
            plt.xticks(list(range(0, int(x_high) + 1, step)))
        self.refresh()

    def _above_legend(self, low: float, high: float, x_high: float) -> float:
        """The top of the y range that keeps every point out from under the legend (plotext
        draws it over the top left corner: one row per labelled line)."""
        labels = [series.label for series in self.series if series.xs and series.label]
        if not labels or x_high <= 0:
            return high
        rows = self.size.height - 5  # (the title, the frame, the x ticks and label)
        columns = self.size.width - 10  # (the y ticks)
        if rows <= len(labels) + 2 or columns <= 0:
            return high
        x_end = x_high * min(1.0, (max(map(len, labels)) + 4) / columns)
        scale = 100.0 if self.percent else 1.0
        under = [
            y * scale
            for series in self.series
            for x, y in zip(series.xs, series.ys, strict=False)
            if x <= x_end and math.isfinite(y)
        ]
        return legend_clear_top(low, high, max(under, default=low), len(labels) + 0.5, rows)


def legend_clear_top(
    low: float, high: float, tallest: float, legend_rows: float, rows: int
) -> float:
    """The top of a y range [low, top] of `rows` rows whose top `legend_rows` rows stay above
    `tallest` (the highest point where the legend is drawn): `high` when they already do."""
    share = legend_rows / rows
    if high - tallest >= share * (high - low):
        return high
    return (tallest - share * low) / (1 - share)


def y_range(low: float, high: float, *, top: float = math.inf) -> tuple[float, float]:
    """The y range for values in [low, high]: at least MIN_SPAN of the largest value tall (grown
    about the middle, not below 0 for values that are not negative, capped at `top`), its ends
    rounded out to the ticks' step."""
    span = max(high - low, MIN_SPAN * max(abs(high), abs(low))) or 1.0
    if high - low < span:
        pad = (span - (high - low)) / 2
        floor = 0.0 if low >= 0 else -math.inf
        low, high = max(floor, low - pad), high + pad
        high = max(high, low + span)
        if high > top:
            low, high = max(floor, top - span), top
    step = tick_step(high - low)
    return math.floor(low / step + 1e-9) * step, min(top, math.ceil(high / step - 1e-9) * step)


def tick_step(span: float, count: int = Y_TICKS) -> float:
    """The step of 1, 2 or 5 × 10^k that puts closest to `count` ticks over `span`."""
    magnitude = 10 ** math.floor(math.log10(span / count))
    steps = [m * magnitude for m in (1, 2, 5, 10, 20)]
    return min(steps, key=lambda step: abs(span / step + 1 - count))


def nice_ticks(low: float, high: float, count: int = Y_TICKS) -> tuple[list[float], list[str]]:
    """Round tick values in [low, high] and their labels, with only the decimals the step needs:
    0.5, 1.0, 1.5 rather than 0.5000, 1.0000, 1.5000."""
    step = tick_step(high - low, count)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    ticks = [k * step for k in range(first, last + 1)]
    return ticks, [text.number(tick, f".{decimals}f") for tick in ticks]


def fitting_ticks(low: float, high: float, rows: int) -> tuple[list[float], list[str]]:
    """`nice_ticks` with a blank row between two ticks of a plot `rows` high: where two labels
    would share a row, plotext keeps one of them chosen by hash order (a different one from run
    to run), so a short chart gets fewer ticks instead."""
    most = max(2, (rows + 1) // 2)
    count = min(Y_TICKS, most)
    ticks, labels = nice_ticks(low, high, count)
    while len(ticks) > most and count > 2:
        count -= 1
        ticks, labels = nice_ticks(low, high, count)
    if len(ticks) > most:  # (even two ticks' step gives three: keep the ends' and every other)
        ticks, labels = ticks[::2], labels[::2]
    return ticks, labels
