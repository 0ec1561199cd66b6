"""The Metrics tab (metrics_grid.py) on run folders written by hand, at 120×40 and 80×24."""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import wait_until
from textual.widgets import Input, Static, TabbedContent
from train_ui_fixtures import run_async, write_run

from cnn_tui.training.runs.series import KNOWN
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.help import HelpPage, screen_keys
from cnn_tui.ui.training.charts import MetricChart, legend_clear_top
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.metrics_grid import MARK, NARROW_LIST_WIDTH, MetricList, MetricsGrid
from cnn_tui.ui.training.results import ResultsScreen


def write_measured_run(run_dir: Path, state: str) -> Path:
    """A hand-written run with a cosine schedule whose batch events carry the norms, and a
    field no table knows (`sharpness`)."""
    write_run(run_dir, state=state, epochs=4, batches=20)
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for event in events:
        if event["event"] == "run_started":
            event["config"]["schedule"] = "cosine"
        if event["event"] == "batch":
            step = (event["epoch"] - 1) * 20 + event["batch"] - 1
            event["lr"] = 0.001 * 0.5 * (1 + math.cos(math.pi * step / 80))
            event["grad_norm"] = round(3 * math.exp(-step / 30) + 0.2, 4)
            event["weight_norm"] = round(20 + step / 10, 3)
            event["sharpness"] = round(1 + step / 80, 3)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


async def open_metrics(pilot, screen) -> MetricsGrid:
    await pilot.app.push_screen(screen)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("2")
    grid = screen.query_one(MetricsGrid)
    await wait_until(pilot, lambda: len(grid.charts) == 4)
    return grid


def listed(grid: MetricsGrid) -> list[str]:
    listing = grid.query_one(MetricList)
    return [listing.get_option_at_index(i).id for i in range(listing.option_count)]


def marked(grid: MetricsGrid) -> list[str]:
    """The metrics the list marks [x]."""
    listing = grid.query_one(MetricList)
    options = [listing.get_option_at_index(i) for i in range(listing.option_count)]
    return [option.id for option in options if str(option.prompt).startswith("[x] ")]


@run_async
async def test_the_metrics_tab_of_a_finished_run_at_120x40(tmp_path) -> None:
    run = write_measured_run(tmp_path / "run", "finished")
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(run)
        grid = await open_metrics(pilot, screen)
        assert screen.query_one(TabbedContent).active == "metrics"
        assert grid.query_one(MetricList).has_focus
        # every metric of the events, the known ones first; the defaults chosen
        names = listed(grid)
        assert names[:5] == ["loss", "acc", "lr", "grad_norm", "weight_norm"]
        assert "sharpness" in names and "eta_s" in names and "lr_epoch" in names
        assert grid.chosen == ["loss", "acc", "lr", "grad_norm"]
        assert marked(grid) == grid.chosen
        # two columns of charts, each half the pane high
        columns = {chart.region.x for chart in grid.charts.values()}
        assert len(columns) == 2 and all(c.region.height >= 10 for c in grid.charts.values())
        # the learning rate: the whole planned cosine under the rates used
        lr = grid.charts["lr"]
        assert [s.label for s in lr.series] == ["planned", "used"]
        planned, used = lr.series
        assert planned.xs[-1] == 4.0 and planned.ys[0] == 0.001 and planned.ys[-1] < 1e-6
        assert used.ys == [
            e["lr"]
            for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if e["event"] == "batch"
        ]
        assert grid.charts["acc"].percent and grid.charts["acc"].chart_title == "accuracy (%)"

        # choose weight norm: its chart comes in the list's order; drop accuracy
        await pilot.press("down", "down", "down", "down", "space")
        await pilot.pause()
        assert grid.chosen == ["loss", "acc", "lr", "grad_norm", "weight_norm"]
        await pilot.press("up", "up", "up", "enter")
        await pilot.pause()
        assert grid.chosen == ["loss", "lr", "grad_norm", "weight_norm"] == marked(grid)
        assert "acc" not in grid.charts and len(grid.query(MetricChart)) == 4

        # "/" filters the list by name; escape goes back to the list, choices kept
        await pilot.press("slash", *"norm")
        await pilot.pause()
        assert listed(grid) == ["grad_norm", "weight_norm"]
        assert marked(grid) == ["grad_norm", "weight_norm"]
        no_match = grid.query_one("#metrics-no-match", Static)
        assert not no_match.display
        await pilot.press(*"zz")  # a filter that matches nothing says so in one line
        await pilot.pause()
        assert listed(grid) == [] and no_match.display
        assert str(no_match.render()) == "no metric matches 'normzz'"
        await pilot.press("backspace", "backspace")
        await pilot.pause()
        assert not no_match.display
        await pilot.press("escape")
        assert grid.query_one(MetricList).has_focus
        grid.query_one("#metrics-filter", Input).value = ""
        await pilot.pause()
        assert len(listed(grid)) > 5 and grid.chosen == ["loss", "lr", "grad_norm", "weight_norm"]

        # the ? page lists the pane's keys
        keys = dict(screen_keys(screen))
        assert keys.get("space") == "Show / hide chart" and keys.get("/") == "Filter metrics"
        assert keys.get("tab") == "List ⇄ charts" and keys.get("↑/↓") == "Move in the list"
        assert keys.get("2") == "Metrics"
        # tab goes to the charts (the arrows scroll them) and back to the list
        await pilot.press("tab")
        assert grid.query_one("#metrics-charts").has_focus
        await pilot.press("tab")
        assert grid.query_one(MetricList).has_focus
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpPage)


@run_async
async def test_the_metrics_tab_follows_a_live_run_at_80x24(tmp_path) -> None:
    run = write_measured_run(tmp_path / "run", "running")
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = DashboardScreen(run)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.history.epochs) == 2)
        await pilot.press("2")
        grid = screen.query_one(MetricsGrid)
        await wait_until(pilot, lambda: len(grid.charts) == 4)
        # one column, each chart as high as the pane (one visible at a time, the rest scroll)
        charts = list(grid.charts.values())
        assert grid.query_one("#metrics-charts").styles.grid_size_columns == 1
        assert {chart.region.x for chart in charts if chart.region.height} == {charts[0].region.x}
        assert charts[0].region.height >= 10
        assert charts[0].region.right <= 80
        assert "sharpness" in listed(grid)  # a field no table knows
        planned, used = grid.charts["lr"].series
        assert planned.xs[-1] == 4.0 and 2 < used.xs[-1] < 3  # the plan ahead of the run

        # the narrow list names each metric so that it stays told apart from the others
        listing = grid.query_one(MetricList)
        assert str(listing.get_option("grad_norm").prompt) == "[x] grad norm"
        assert str(listing.get_option("lr").prompt) == "[x] learning rate"
        # the cursor on "sharpness"; then a known metric comes (above it) and a new field
        listing.highlighted = listed(grid).index("sharpness")
        acc_drawn = []
        grid.charts["acc"].set_series = lambda *args: acc_drawn.append(args)  # (no new epoch)
        with (run / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            event = {"event": "batch", "time": 1e9, "epoch": 3, "batch": 11, "batches": 20,
                     "loss": 0.5, "lr": 0.0004, "brand_new_s": 2.5, "gpu_mem_mb": 80.0}  # fmt: skip
            handle.write(json.dumps(event) + "\n")
        await wait_until(pilot, lambda: "brand_new_s" in listed(grid), timeout=10)
        assert str(listing.get_option("brand_new_s").prompt) == "[ ] brand new (s)"
        assert listed(grid).index("gpu_mem_mb") < listed(grid).index("sharpness")
        # the cursor stayed on its metric, not on its row: space shows sharpness
        assert listing.get_option_at_index(listing.highlighted).id == "sharpness"
        await pilot.press("space")
        await pilot.pause()
        assert grid.chosen == ["loss", "acc", "lr", "grad_norm", "sharpness"] == marked(grid)
        # only the charts whose data changed were drawn again
        assert grid.charts["lr"].series[1].xs[-1] == 2.55 and acc_drawn == []
        await pilot.press("escape")
        await app.workers.wait_for_complete()


def test_the_y_range_grows_only_as_far_as_the_legend_needs() -> None:
    # 10 rows, the legend 2 of them: a point at 5 of 0-10 is clear of it, one at 9.5 is not
    assert legend_clear_top(0.0, 10.0, 5.0, 2, 10) == 10.0
    top = legend_clear_top(0.0, 10.0, 9.5, 2, 10)
    assert top > 10.0 and (top - 9.5) / top >= 0.2 - 1e-12  # the top 2 rows of 10 above 9.5


def test_every_known_metric_has_a_name_that_fits_the_narrow_list_whole():
    room = NARROW_LIST_WIDTH - 2 - MARK  # (the list's scrollbar, the "[x] " mark)
    names = {key: label.fitting(room) for key, label in KNOWN.items()}
    assert all(len(name) <= room for name in names.values()), names
    assert len(set(names.values())) == len(names)  # still told apart
    assert names["grad_norm"] == "grad norm" and names["batch_loss"] == "batch loss raw"
    assert names["lr_epoch"] == "lr at epoch end" and names["loss"] == "loss"
    assert names["cpu_percent"] == "host CPU %" and names["trainer_cpu_percent"] == "trainer CPU %"
    assert KNOWN["grad_norm"].fitting(40) == "gradient norm (L2, unclipped)"  # (wide: whole)


# --- one snapshot per size ----------------------------------------------------------------------


def _metrics_tab(run: Path):
    async def run_before(pilot) -> None:
        screen = ResultsScreen(run)
        await pilot.app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("2")
        grid = screen.query_one(MetricsGrid)
        await pilot.press("down", "down", "down", "down", "space")  # weight norm too
        drawn = lambda: len(grid.charts) == 5 and not any(c._dirty for c in grid.charts.values())  # noqa: E731
        await wait_until(pilot, drawn, 30, "the charts to draw")

    return run_before


def test_snapshot_metrics_tab_120x40(snap_compare, tmp_path) -> None:
    run = write_measured_run(tmp_path / "runs" / "20251122-101500-simple-cnn-shapes", "finished")
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_metrics_tab(run))


def test_snapshot_metrics_tab_80x24(snap_compare, tmp_path) -> None:
    run = write_measured_run(tmp_path / "runs" / "20251122-101500-simple-cnn-shapes", "finished")
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_metrics_tab(run))
