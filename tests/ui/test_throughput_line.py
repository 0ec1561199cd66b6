"""The throughput line: one outlier does not flatten the sparkline; the peak is still said."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Sparkline, Static
from train_ui_fixtures import run_async

from cnn_tui.ui.training.throughput import ThroughputLine, line_top, throughput_text

STEADY = [1800.0 + 10 * (i % 7) for i in range(40)]


def test_the_line_tops_out_below_a_single_outlier():
    values = [*STEADY[:20], 14_591.0, *STEADY[20:]]
    assert line_top(values) < 2000
    assert throughput_text(values).endswith("peak 14,591, off the scale)")
    # no outlier: the top is the real peak, nothing is said to be off the scale
    assert line_top(STEADY) == max(STEADY)
    assert "off the scale" not in throughput_text(STEADY)


class LineApp(App):
    def compose(self) -> ComposeResult:
        yield ThroughputLine(id="line")


@run_async
async def test_the_sparkline_is_drawn_to_the_robust_top():
    app = LineApp()
    async with app.run_test(size=(100, 5)) as pilot:
        line = app.query_one(ThroughputLine)
        line.show([*STEADY, 14_591.0])
        await pilot.pause()
        data = line.query_one(Sparkline).data
        assert max(data) == line_top([*STEADY, 14_591.0]) < 2000
        shown = str(line.query_one("#throughput-numbers", Static).render())
        assert "peak 14,591, off the scale" in shown
