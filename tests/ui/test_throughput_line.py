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


@run_async
async def test_the_dashboard_says_estimating_until_the_trainer_has_an_eta(tmp_path):
    import json

    from conftest import wait_until
    from train_ui_fixtures import write_run

    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.dashboard import DashboardScreen

    run = write_run(tmp_path / "run", state="running", epochs=4, epochs_done=0)
    warming_up = {"event": "batch", "time": 1.0, "epoch": 1, "batch": 2, "batches": 20,
                  "loss": 2.1, "lr": 0.01, "images_per_s": None, "eta_s": None}  # fmt: skip
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(warming_up) + "\n")
    app = CnnTuiApp(runs_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = DashboardScreen(run)
        await app.push_screen(screen)
        await pilot.pause()
        line = lambda: str(screen.query_one("#dash-speed", Static).render())  # noqa: E731
        await wait_until(pilot, lambda: "batch 2/20" in line())
        assert "ETA estimating" in line() and "img/s" not in line()
