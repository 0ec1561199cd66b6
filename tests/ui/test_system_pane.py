"""The run screen's System tab (3) on run folders written by hand: the trainer's latest reading,
its GPU processes and the charts over the run, at 120×40 and 80×24; a run without readings."""

from __future__ import annotations

import json
import time

import pytest
from conftest import wait_until
from train_ui_fixtures import add_system_events, run_async, system_events, write_run

from cnn_tui import text
from cnn_tui.training.system import devices
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.charts import MetricChart
from cnn_tui.ui.training.dashboard import DashboardScreen
from cnn_tui.ui.training.results import ResultsScreen
from cnn_tui.ui.training.system_pane import SystemPane, time_axis

RUN_NAME = "20251122-101500-simple-cnn-shapes"


@pytest.fixture(autouse=True)
def fixed_environment(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")  # the reading's time is shown in local time
    time.tzset()
    monkeypatch.setattr(
        devices, "detect_devices", lambda: [devices.DeviceInfo("cpu", "CPU — 2 threads", "cpu")]
    )


def make_app(tmp_path) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=str(tmp_path / "runs"))


def pane_text(screen) -> str:
    return str(screen.query_one("#system-now").render())


def finished_run_with_gpus(tmp_path):
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    return add_system_events(run, system_events(40, gpus=2, host="gpu-node-7"))


async def open_system_tab(app, pilot, screen) -> None:
    await app.push_screen(screen)
    await wait_until(pilot, lambda: screen.state == "finished", what="the run read")
    await pilot.press("3")
    await wait_until(pilot, lambda: screen.query_one(SystemPane).has_focus, what="the tab")


def test_the_time_axis_keeps_whole_number_ticks_readable():
    assert time_axis(78) == ("seconds", 1.0)
    assert time_axis(40 * 60) == ("minutes", 60.0)
    assert time_axis(30 * 3600) == ("hours", 3600.0)


@run_async
async def test_a_finished_run_shows_the_trainers_machine_its_gpus_and_charts(tmp_path) -> None:
    run = finished_run_with_gpus(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(run)
        await open_system_tab(app, pilot, screen)
        shown = pane_text(screen).splitlines()
        assert shown[0].startswith("host    gpu-node-7 (another machine) · 16 cores")
        assert "RSS 3.7 GiB · CPU 1.6 cores · 1 process" in shown[2]
        assert shown[3].startswith("GPU0 util▕") and shown[3].endswith("NVIDIA H100 80GB HBM3")
        processes = [line for line in shown if "4321" in line or "777" in line or "9001" in line]
        assert "python" in processes[0] and processes[0].endswith("◆ trainer")
        assert "jupyter" in processes[1] and "trainer" not in processes[1]
        assert processes[2].split()[-1] == "-"  # another user's job: no name, no memory figure
        util = screen.query_one("#system-gpu-util", MetricChart)
        assert [s.label for s in util.series] == ["GPU0", "GPU1"] and util.x_label == "seconds"
        assert len(util.series[0].xs) == 40 and util.x_max == pytest.approx(78)
        assert util.parent.display and screen.query_one("#system-gpu-power", MetricChart).series
        memory = screen.query_one("#system-memory", MetricChart)
        assert memory.series[1].label == "trainer RSS" and memory.series[1].ys[-1] > 3.5


@run_async
async def test_at_80x24_the_lines_fit_and_a_strange_host_name_is_escaped(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")
    add_system_events(run, system_events(5, gpus=1, host="evil\x1b]0;owned\x07"))
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ResultsScreen(run)
        await open_system_tab(app, pilot, screen)
        pane = screen.query_one(SystemPane)
        assert pane.compact
        shown = pane_text(screen)
        assert "evil\\x1b]0;owned\\x07" in shown and "\x1b" not in shown
        width = pane.scrollable_content_region.width
        # (the host line is as long as the name; it is cut with "…", never wrapped)
        assert all(len(line) <= width for line in shown.splitlines()[1:])
        assert "1 proc." in shown and "GPU0 util▕" in shown


@run_async
async def test_a_run_without_readings_says_so_in_one_line(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="finished")  # (an older run)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ResultsScreen(run)
        await open_system_tab(app, pilot, screen)
        assert pane_text(screen).startswith("no system readings in this run")
        assert not screen.query_one("#system-cpu", MetricChart).parent.display  # no empty charts
        assert not screen.query_one("#system-cpu", MetricChart).series


def chart_rows(chart: MetricChart) -> list[str]:
    return chart.render().plain.splitlines()


def legend_is_clear(chart: MetricChart) -> bool:
    """Whether the rows of the legend hold nothing but the legend up to two columns past its
    longest label (no curve drawn through it)."""
    labels = [series.label for series in chart.series]
    found = []
    for row in chart_rows(chart):
        for label in labels:
            if f" {label}" in row:
                start = row.index(f" {label}") + 1
                found.append(row[start : start + max(map(len, labels)) + 2])
    return len(found) == len(labels) and all(
        part.startswith(label) and not part[len(label) :].strip()
        for part, label in zip(found, labels, strict=True)
    )


@run_async
async def test_a_short_runs_memory_chart_keeps_its_legend_clear_and_its_ticks_above_the_data(
    tmp_path,
) -> None:
    events = system_events(3, gpus=0)
    for i, event in enumerate(events):  # RAM 2.55 to 2.85 GiB: a flat line at the top left
        event["ram_used"] = int((2.55 + 0.15 * i) * text.GIB)
        event["trainer_rss"] = int((0.4 + 0.3 * i) * text.GIB)
    run = add_system_events(write_run(tmp_path / "runs" / RUN_NAME, state="finished"), events)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ResultsScreen(run)
        await open_system_tab(app, pilot, screen)
        chart = screen.query_one("#system-memory", MetricChart)
        await wait_until(pilot, lambda: legend_is_clear(chart), 10, "the legend clear of curves")
        ticks = [float(row.split("┤")[0]) for row in chart_rows(chart) if "┤" in row]
        assert max(ticks) >= 2.85  # the top label is at or above the data, not "2" for 2.85
        cpu = screen.query_one("#system-cpu", MetricChart)
        await wait_until(pilot, lambda: legend_is_clear(cpu), 10, "the CPU legend clear")


@run_async
async def test_the_machines_charts_start_at_zero(tmp_path) -> None:
    events = system_events(3, gpus=0)
    for i, event in enumerate(events):  # a busy host: CPU 90-98 %, RAM 40-44 GiB
        event["cpu_percent"], event["ram_used"] = 90 + 4 * i, int((40 + 2 * i) * text.GIB)
        event["trainer_cpu_percent"], event["trainer_rss"] = 1400 + 50 * i, int(30 * text.GIB)
    run = add_system_events(write_run(tmp_path / "runs" / RUN_NAME, state="finished"), events)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ResultsScreen(run)
        await open_system_tab(app, pilot, screen)
        for name in ("#system-cpu", "#system-memory"):  # (zoomed, 90-98 % would look like 0-100)
            chart = screen.query_one(name, MetricChart)
            await wait_until(pilot, lambda chart=chart: legend_is_clear(chart), 10, name)
            ticks = [float(row.split("┤")[0]) for row in chart_rows(chart) if "┤" in row]
            assert min(ticks) == 0 and max(ticks) >= 44, (name, ticks)


@run_async
async def test_a_live_run_waits_for_its_first_reading_then_shows_it(tmp_path) -> None:
    run = write_run(tmp_path / "runs" / RUN_NAME, state="running")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = DashboardScreen(run)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.history.epochs, what="the run read")
        await pilot.press("3")
        await wait_until(pilot, lambda: "waiting for the trainer" in pane_text(screen))
        with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:  # the trainer writes
            handle.write(json.dumps(system_events(1, gpus=0, host="here")[0]) + "\n")
        await wait_until(pilot, lambda: "host    here" in pane_text(screen), what="the reading")
        assert "no NVIDIA GPU found" in pane_text(screen)


BOTH = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])


@BOTH
def test_system_tab_snapshot(snap_compare, tmp_path, size) -> None:
    """A finished run on another host with two GPUs: the readings, the processes, the charts."""
    run = finished_run_with_gpus(tmp_path)

    async def run_before(pilot) -> None:
        screen = ResultsScreen(run)
        await open_system_tab(pilot.app, pilot, screen)
        charts = list(screen.query(MetricChart))
        await wait_until(pilot, lambda: not any(chart._dirty for chart in charts), what="charts")

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=run_before)
