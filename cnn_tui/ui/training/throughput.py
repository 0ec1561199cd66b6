"""The dashboard's throughput line: images/s over the whole run as a sparkline, with the numbers.

The values are the batch events' images/s (the per-epoch figure for a run without batch events),
as `RunHistory.throughput_series` keeps them: bounded, so a long run costs no more. A dip shows
where the data loader, the evaluation or another job on the GPU slowed training down.
"""

from __future__ import annotations

from statistics import fmean, median

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline, Static

from cnn_tui import text


def throughput_text(values: list[float]) -> str:
    """'1,890 img/s (median 1,850, peak 2,010)' for the last, typical and best speeds."""
    if not values:
        return text.throughput(None)
    return (
        f"{text.throughput(values[-1])} (median {text.count(median(values))}, "
        f"peak {text.count(max(values))})"
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

    def compose(self) -> ComposeResult:
        yield Label("throughput")
        yield Sparkline([], summary_function=fmean)
        yield Static(id="throughput-numbers")

    def show(self, values: list[float]) -> None:
        if values == self._shown:
            return
        self._shown = list(values)
        self.set_class(bool(values), "-shown")
        self.query_one(Sparkline).data = list(values)
        self.query_one("#throughput-numbers", Static).update(throughput_text(values))
