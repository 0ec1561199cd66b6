"""The dashboard's throughput line: images/s over the whole run as a sparkline, with the numbers.

The values are the batch events' images/s (the per-epoch figure for a run without batch events),
as `RunHistory.throughput_series` keeps them: bounded, so a long run costs no more. A dip shows
where the data loader, the evaluation or another job on the GPU slowed training down.

One freak value (a batch timed across a pause, an older run's first batches) would set the line's
scale and flatten the rest into its bottom row, so the line is drawn up to a robust top
(`line_top`: the 95th percentile, at most twice the median); a peak above it is drawn at the top
and said in the numbers ("peak 14,591, off the scale").
"""

from __future__ import annotations

import math
from statistics import fmean, median

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline, Static

from cnn_tui import text

TOP_PERCENTILE = 95  # the line's scale ends at this percentile of the values ...
TOP_TIMES_MEDIAN = 2.0  # ... or at this many times their median, whichever is lower


def line_top(values: list[float]) -> float:
    """The highest value the line draws to scale: the 95th percentile (nearest rank), at most
    twice the median; a higher value is drawn at the top."""
    ranked = sorted(values)
    percentile = ranked[max(0, math.ceil(TOP_PERCENTILE / 100 * len(ranked)) - 1)]
    return min(percentile, TOP_TIMES_MEDIAN * median(ranked))


def throughput_text(values: list[float]) -> str:
    """'1,890 img/s (median 1,850, peak 2,010)' for the last, typical and best speeds; a peak
    that the line clips is said to be off the scale."""
    if not values:
        return text.throughput(None)
    peak = max(values)
    off_scale = ", off the scale" if peak > line_top(values) else ""
    return (
        f"{text.throughput(values[-1])} (median {text.count(median(values))}, "
        f"peak {text.count(peak)}{off_scale})"
    )


class ThroughputLine(Horizontal):
    """'img/s ▁▃▅▇▇▆▇ 1,890 img/s (median …)': hidden until there is a value."""

    DEFAULT_CSS = """
    ThroughputLine { height: 1; display: none; }
    ThroughputLine.-shown { display: block; }
    ThroughputLine Label { width: auto; padding-right: 1; color: $text-muted; }
    ThroughputLine Sparkline { width: 1fr; max-width: 60; }
    ThroughputLine Static { width: auto; padding-left: 1; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._shown: list[float] = []
        self._numbers = ""  # the text of the numbers shown

    def compose(self) -> ComposeResult:
        yield Label("throughput")
        yield Sparkline([], summary_function=fmean)
        yield Static(id="throughput-numbers")

    def show(self, values: list[float]) -> None:
        if values == self._shown:
            return
        self._shown = list(values)
        self.set_class(bool(values), "-shown")
        top = line_top(values) if values else 0.0
        self.query_one(Sparkline).data = [min(value, top) for value in values]
        numbers = throughput_text(values)
        # (a text as wide as the last needs no layout pass: most are, at 4 per second)
        layout = len(numbers) != len(self._numbers)
        self._numbers = numbers
        self.query_one("#throughput-numbers", Static).update(numbers, layout=layout)
