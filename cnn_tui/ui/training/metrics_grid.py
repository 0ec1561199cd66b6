"""The Metrics tab: every scalar the run logs, chosen from a list and drawn as a grid of charts.

The list (`MetricList`, an `OptionList`) names every metric the run's events have had so far
(`training.runs.series.MetricHistory`, found from the events themselves, so a new field shows up
with no change here); `space` or `enter` adds or removes a metric's chart, and the line above it
filters the list by name (`/` goes there, `esc` or `↓` back; "no metric matches" when none
does); `tab` goes to the charts and back. The cursor stays on its metric when the list grows
above it. A name wider than the list shows its `MetricLabel.short` (the chart keeps the whole
title). It opens with loss, accuracy, learning rate and gradient norm chosen. The learning-rate
chart draws the whole schedule the run planned (dim) under the learning rates its batches used.

The charts are `MetricChart`s in a scrolling grid: two columns where each gets at least
`MIN_CHART_WIDTH` columns, else one; each chart half the height of the pane, at least
`MIN_CHART_HEIGHT` rows. The charts are redrawn only while the tab is on view (`show` keeps the
data; the tab's activation draws it), at most every `MIN_REFRESH_S`, and only those whose series
changed; the list is rebuilt only when a metric appeared (or the filter or its width changed).
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from cnn_tui import text
from cnn_tui.training.runs.series import DEFAULT_METRICS, PLAN, Metric, MetricHistory
from cnn_tui.ui.training.charts import MetricChart, Series

MIN_CHART_WIDTH = 40  # a chart narrower than this cannot show its ticks and legend
MIN_CHART_HEIGHT = 10
MIN_REFRESH_S = 2.0  # the grid takes new data at most every 2 s: 4 charts redrawn each second took
# 3 % of a core more than the Charts tab (docs/training/tui.md)
LIST_WIDTH, NARROW_LIST_WIDTH, NARROW = 30, 24, 100


def chart_series(metric: Metric) -> list[Series]:
    """The lines of a metric's chart: the planned schedule dim underneath, per-batch values dim
    beside epoch values (as the Charts tab draws the loss), train and val in their own styles,
    any other line a style of its own; a chart of one line has no legend."""
    has_epoch = any(s.kind == "epoch" for s in metric.series)
    has_plan = any(s.kind == PLAN for s in metric.series)
    scale = metric.label.scale
    result, others = [], 0
    for series in metric.series:
        if series.kind == PLAN or (series.kind == "batch" and has_epoch and not has_plan):
            role = "batch"
        elif series.label in ("train", "val"):
            role = series.label
        else:
            role, others = f"run{others}", others + 1
        ys = series.ys if scale == 1.0 else [y * scale for y in series.ys]
        label = series.label if len(metric.series) > 1 else ""  # (one line: no legend)
        result.append(Series(label, list(series.xs), ys, role=role))
    return result


class MetricList(OptionList):
    """The list of metrics, `[x]` before the chosen ones (seen without colour too); `space` /
    `enter` shows or hides the chart of the one under the cursor, ↑ ↓ move (bound here so the
    `?` page lists them). Each option's id is its metric's name."""

    BINDINGS = [
        Binding("space,enter", "select", "Show / hide chart", key_display="space"),
        Binding("up", "cursor_up", "Move in the list", show=False, key_display="↑/↓"),
        Binding("down", "cursor_down", "", show=False),
    ]


MARK = 4  # "[x] "


def list_prompt(metric: Metric, chosen: bool, width: int = 0) -> Text:
    """A metric's line in the list: `[x] learning rate` (the title is escaped text, no markup;
    its short name where the heading is wider than `width` columns; the list cuts what is
    still too long with `…`)."""
    mark = ("[x] " if chosen else "[ ] ", "bold" if chosen else "dim")
    return Text.assemble(
        mark, metric.label.fitting(width - MARK) if width else metric.label.heading
    )


class MetricsGrid(Horizontal):
    """The list of a run's metrics and the charts of the chosen ones."""

    DEFAULT_CSS = """
    MetricsGrid { height: 1fr; }
    MetricsGrid #metrics-side { width: 30; height: 1fr; }
    MetricsGrid.-narrow #metrics-side { width: 24; }
    MetricsGrid #metrics-filter { height: 1; border: none; padding: 0 1; background: $boost; }
    MetricsGrid #metrics-filter:focus { background: $primary 30%; }
    MetricsGrid MetricList, MetricsGrid MetricList:focus { height: 1fr; border: none; padding: 0; }
    MetricsGrid MetricList { text-wrap: nowrap; text-overflow: ellipsis; }
    MetricsGrid #metrics-charts { width: 1fr; height: 1fr; layout: grid; grid-size: 2; }
    MetricsGrid #metrics-charts MetricChart { height: 1fr; }
    MetricsGrid #metrics-none { column-span: 2; padding: 1 2; color: $text-muted; display: none; }
    MetricsGrid #metrics-no-match { height: auto; padding: 0 0 0 1; color: $text-muted; display: none; }
    """

    BINDINGS = [
        Binding("slash", "filter", "Filter metrics", show=False, key_display="/"),
        Binding("tab", "other_side", "List ⇄ charts", show=False, key_display="tab"),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.history: MetricHistory | None = None
        self.x_max = 0.0
        self.empty_note = "waiting for data"
        self.wanted: list[str] = list(DEFAULT_METRICS)  # chosen, in the order of choosing
        self.charts: dict[str, MetricChart] = {}
        self._listed: tuple[int, str, int] | None = None  # (history version, filter, width)
        self._drawn: dict[str, tuple] = {}  # per chart: what its series were made from
        self._pending = False  # data came while the grid's last redraw was too recent
        self._refreshed_at = -math.inf

    def compose(self) -> ComposeResult:
        with Vertical(id="metrics-side"):
            yield Input(placeholder="/ filter", id="metrics-filter", compact=True)
            yield Static(id="metrics-no-match", markup=False)
            yield MetricList(id="metrics-list")
        with VerticalScroll(id="metrics-charts"):
            yield Static(
                "No metric chosen: choose one in the list (space or enter).", id="metrics-none"
            )

    def on_mount(self) -> None:
        self._fit()
        self.set_interval(MIN_REFRESH_S, self._refresh_if_pending)

    def on_resize(self) -> None:
        self._fit()
        self._pending = True  # (the list's names may have to change to fit: within a second)

    # --- data -----------------------------------------------------------------------------------

    def show(self, history: MetricHistory, x_max: float, empty_note: str | None = None) -> None:
        """Keep the run's metrics (and its epoch count, the charts' x range); drawn now when
        the tab is on view, else when it comes into view (`refresh_view`)."""
        self.history, self.x_max = history, x_max
        if empty_note is not None:
            self.empty_note = empty_note
        self._pending = True
        if time.monotonic() - self._refreshed_at >= MIN_REFRESH_S:  # (else the timer's, soon)
            self._refresh_if_pending()

    def _refresh_if_pending(self) -> None:
        if self._pending and self.on_view:
            self.refresh_view()

    @property
    def on_view(self) -> bool:
        """Whether the pane is shown (its tab is the active one)."""
        return self.is_mounted and all(node.display for node in self.ancestors_with_self)

    def refresh_view(self) -> None:
        """Bring the list and the charts up to date with the history."""
        if self.history is None:
            return
        self._pending, self._refreshed_at = False, time.monotonic()
        metrics = self.history.metrics()
        self._update_list(metrics)
        self._update_charts(metrics)

    def metrics(self) -> dict[str, Metric]:
        return self.history.metrics() if self.history is not None else {}

    @property
    def chosen(self) -> list[str]:
        """The metrics whose charts are shown, in the list's order."""
        return list(self.charts)

    # --- the list -------------------------------------------------------------------------------

    def _update_list(self, metrics: dict[str, Metric]) -> None:
        query = self.query_one("#metrics-filter", Input).value.strip().lower()
        assert self.history is not None
        listing = self.query_one(MetricList)
        width = self._list_width()
        key = (self.history.version, query, width)
        if key == self._listed:  # (no new metric, same filter and room: the list stands)
            return
        self._listed = key
        highlighted = listing.highlighted
        under = listing.get_option_at_index(highlighted).id if highlighted is not None else None
        listing.clear_options()
        listing.add_options(
            Option(list_prompt(metric, name in self.wanted, width), id=name)
            for name, metric in metrics.items()
            if not query
            or query in metric.label.heading.lower()
            or query in metric.label.short.lower()
            or query in name.lower()
        )
        if listing.option_count:  # the cursor stays on its metric (a new one may come above)
            ids = [listing.get_option_at_index(i).id for i in range(listing.option_count)]
            index = ids.index(under) if under in ids else min(highlighted or 0, len(ids) - 1)
            listing.highlighted = index
        no_match = self.query_one("#metrics-no-match", Static)
        no_match.display = bool(query) and not listing.option_count
        no_match.update(f"no metric matches '{text.one_line(query)}'")

    def _list_width(self) -> int:
        """The columns a list line has (its scrollbar taken off)."""
        side = NARROW_LIST_WIDTH if self.size.width < NARROW else LIST_WIDTH
        return side - 2  # (room for the list's scrollbar)

    @on(OptionList.OptionSelected, "MetricList")
    def _toggled(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        name = str(event.option.id)
        if name in self.wanted:
            self.wanted = [wanted for wanted in self.wanted if wanted != name]
        else:
            self.wanted.append(name)
        metric = self.metrics().get(name)
        if metric is not None:
            prompt = list_prompt(metric, name in self.wanted, self._list_width())
            event.option_list.replace_option_prompt(name, prompt)
        self.refresh_view()

    @on(Input.Changed, "#metrics-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_view()

    @on(Input.Submitted, "#metrics-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(MetricList).focus()

    def action_filter(self) -> None:
        self.query_one("#metrics-filter", Input).focus()

    def on_key(self, event: events.Key) -> None:
        filter_box = self.query_one("#metrics-filter", Input)
        if filter_box.has_focus and event.key in ("escape", "down"):
            event.stop()
            self.query_one(MetricList).focus()

    def focus_list(self) -> None:
        self.query_one(MetricList).focus()

    def action_other_side(self) -> None:
        """`tab`: from the list (or its filter) to the charts (↑ ↓ scroll them), and back."""
        charts = self.query_one("#metrics-charts", VerticalScroll)
        if charts.has_focus or not self.charts:
            self.focus_list()
        else:
            charts.focus()

    # --- the charts -----------------------------------------------------------------------------

    def _update_charts(self, metrics: dict[str, Metric]) -> None:
        chosen = [name for name in metrics if name in self.wanted]
        grid = self.query_one("#metrics-charts", VerticalScroll)
        for name in [name for name in self.charts if name not in chosen]:
            self.charts.pop(name).remove()
            self._drawn.pop(name, None)
        added = False
        for i, name in enumerate(chosen):  # (in the list's order: before the next one shown)
            if name in self.charts:
                continue
            label = metrics[name].label
            chart = self.charts[name] = MetricChart(label.heading, percent=label.percent)
            chart.legend_room = True
            after = next((self.charts[n] for n in chosen[i + 1 :] if n in self.charts), None)
            grid.mount(chart, before=after) if after is not None else grid.mount(chart)
            added = True
        self.charts = {name: self.charts[name] for name in chosen}
        none = self.query_one("#metrics-none", Static)
        none.display = not self.charts
        if not self.charts:
            none.update(
                "No metric chosen: choose one in the list (space or enter)."
                if metrics
                else f"No metrics yet ({self.empty_note})."
            )
        if added:
            self._fit()
        for name, chart in self.charts.items():  # (only the charts whose data changed)
            made_from = (
                self.x_max,
                self.empty_note,
                tuple((id(series), series.count) for series in metrics[name].series),
            )
            if self._drawn.get(name) == made_from:
                continue
            self._drawn[name] = made_from
            chart.empty_note = self.empty_note
            chart.set_series(chart_series(metrics[name]), self.x_max)

    def _fit(self) -> None:
        """Two columns of charts where they fit, else one; each half the pane's height."""
        if not self.is_mounted:
            return
        self.set_class(self.size.width < NARROW, "-narrow")
        grid = self.query_one("#metrics-charts", VerticalScroll)
        side = NARROW_LIST_WIDTH if self.size.width < NARROW else LIST_WIDTH
        width = max(0, self.size.width - side - 1)
        columns = 2 if width >= 2 * MIN_CHART_WIDTH else 1
        grid.styles.grid_size_columns = columns
        height = max(MIN_CHART_HEIGHT, self.size.height // 2)
        if self.size.height < 2 * MIN_CHART_HEIGHT:  # (one row of charts fills the pane)
            height = max(MIN_CHART_HEIGHT, self.size.height)
        grid.styles.grid_rows = str(height)
