"""Issue 12's pieces below the screens: the trainer's smoothed loss, the runs table's columns, the
eval pre-check and the GPU statistics (with a fake NVML, as a machine without a GPU has none)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from cnn_tui.errors import UsageError
from cnn_tui.text import run_name
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import gpu_stats
from cnn_tui.ui.training.runs import COLUMNS, OPTIONAL, fit_columns


def _reference_ema(losses: list[float], beta: float) -> list[float]:
    """TensorBoard's debiased EMA, written out: s_t = beta·s_{t-1} + (1 - beta)·x_t, / (1 - beta^t)."""
    out, s = [], 0.0
    for t, x in enumerate(losses, start=1):
        s = beta * s + (1 - beta) * x
        out.append(s / (1 - beta**t))
    return out


def test_the_smoother_is_the_debiased_ema_and_starts_at_the_first_loss():
    losses = [2.3, 2.1, 1.7, 1.9, 1.2, 0.8, float("nan"), 0.7]
    smoother = runs.LossSmoother(beta=0.9)
    got = [smoother.add(x) for x in losses]
    finite = [x for x in losses if math.isfinite(x)]
    expected = _reference_ema(finite, 0.9)
    assert got[0] == pytest.approx(2.3)  # no pull towards 0 at the start
    assert math.isnan(got[6])  # a non-finite loss is passed on, not folded in
    assert [g for g in got if math.isfinite(g)] == pytest.approx(expected)


def test_thinned_batch_events_carry_the_smoothed_loss_of_every_batch(tmp_path):
    # 40 batches in the same instant: the file keeps only the first and the epoch's last, yet the
    # last event's smoothed loss is the EMA over all 40 (what the dashboard draws)
    log = runs.EventLog(tmp_path)
    losses = [2.0 - 0.04 * i for i in range(40)]
    for b, loss in enumerate(losses, start=1):
        log.emit("batch", epoch=1, batch=b, batches=40, loss=loss)
    log.close()
    events = [json.loads(line) for line in (tmp_path / runs.EVENTS_FILE).read_text().splitlines()]
    batches = [e for e in events if e["event"] == "batch"]
    assert 2 <= len(batches) < 40 and batches[-1]["batch"] == 40
    assert batches[-1]["smoothed_loss"] == pytest.approx(_reference_ema(losses, 0.9)[-1])


def test_runs_columns_fit_the_width_dropping_the_start_time_first():
    widths = {key: len(header) for key, header in COLUMNS if key not in OPTIONAL}  # one folder
    widths |= {"name": 34, "started": 16, "model": 10, "dataset": 13, "status": 10}
    wide, name_wide, mark_only = fit_columns(widths, 130)
    assert wide == [key for key, _ in COLUMNS if key not in OPTIONAL]
    assert name_wide == 34 and not mark_only
    narrow, name_narrow, _ = fit_columns(widths, 92)
    assert "started" not in narrow and name_narrow >= 14
    narrow, name_narrow, mark_only = fit_columns(widths, 78)  # then the status word goes too
    assert "started" not in narrow and mark_only
    assert {"test", "model", "dataset", "best", "epochs"} <= set(narrow)
    assert 14 <= name_narrow < 34
    shortened = run_name("20261122-153012-simple-cnn-shapes", name_narrow)
    assert len(shortened) <= name_narrow and shortened.endswith("hapes") and "…" in shortened
    assert "153012" in shortened  # (the time that tells it from the runs of that day)


def test_eval_precheck_names_a_missing_run_or_checkpoint(tmp_path):
    with pytest.raises(UsageError, match="no such run directory"):
        runs.check_evaluable(tmp_path / "nope")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.write_config(run_dir, runs.TrainConfig(dataset="shapes"))
    with pytest.raises(UsageError, match="--resume"):
        runs.check_evaluable(run_dir)


class FakeNvml:
    """The part of pynvml's API the monitor uses; GPU 1 does not report its power."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail_init: Exception | None = None) -> None:
        self.fail_init, self.shut = fail_init, False

    def nvmlInit(self):
        if self.fail_init is not None:
            raise self.fail_init

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200" if handle == 0 else "NVIDIA A100"

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=87 if handle == 0 else 3)

    def nvmlDeviceGetMemoryInfo(self, handle):
        mib = 1024 * 1024
        return SimpleNamespace(used=35_000 * mib, total=143_771 * mib)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 62

    def nvmlDeviceGetPowerUsage(self, handle):
        if handle == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 412_000

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000

    def nvmlShutdown(self):
        self.shut = True


def test_every_gpu_is_sampled_and_a_value_nvml_lacks_is_a_dash():
    nvml = FakeNvml()
    monitor = gpu_stats.GpuMonitor(nvml)
    assert monitor.available
    first, second = monitor.sample()
    assert first.name == "NVIDIA H200" and first.power_w == pytest.approx(412)
    line = gpu_stats.format_sample(first)
    assert line.startswith("GPU0 NVIDIA H200") and "util 87%" in line and "412/700 W" in line
    assert "34.2/140.4 GiB (24%)" in line and "62°C" in line
    assert second.power_w is None and "- " in gpu_stats.format_sample(second, compact=True)
    monitor.close()
    assert nvml.shut and monitor.sample() == []


def test_without_a_driver_the_monitor_is_unavailable_and_says_why():
    monitor = gpu_stats.GpuMonitor(
        FakeNvml(fail_init=RuntimeError("NVML Shared Library Not Found"))
    )
    assert not monitor.available and monitor.sample() == []
    assert monitor.reason == "no NVIDIA GPU statistics (NVML Shared Library Not Found)"


def test_a_finished_run_is_extended_by_more_epochs_and_refuses_fewer(tmp_path):
    from cli_process import run_cnn_tui

    flags = ("--dataset", "shapes", "--model", "the3-cnn", "--limit", "200", "--epochs", "1")
    runs_dir = tmp_path / "runs"
    first = run_cnn_tui(
        "--runs-dir", str(runs_dir), "train", "--no-ui", *flags, cwd=tmp_path, timeout=120
    )
    assert first.returncode == 0, first.stderr
    (run_dir,) = runs_dir.iterdir()
    more = run_cnn_tui(
        "--runs-dir", str(runs_dir), "train", "--no-ui", "--resume", str(run_dir), "--epochs", "2",
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert more.returncode == 0, more.stderr
    epochs = [json.loads(line) for line in (run_dir / runs.EVENTS_FILE).read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1, 2]
    assert json.loads((run_dir / "summary.json").read_text())["epochs_done"] == 2
    fewer = run_cnn_tui(
        "--runs-dir", str(runs_dir), "train", "--no-ui", "--resume", str(run_dir), "--epochs", "2",
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert fewer.returncode == 2 and "more than 2" in fewer.stderr


def test_an_early_loss_that_barely_moved_is_not_zoomed_and_ticks_are_round():
    from cnn_tui.ui.training.charts import MIN_SPAN, nice_ticks, y_range

    low, high = y_range(2.62, 2.67)
    assert low <= 2.62 and high >= 2.67 and high - low >= MIN_SPAN * 2.67
    ticks, labels = nice_ticks(low, high)
    assert len(ticks) >= 3 and all(len(label.split(".")[-1]) <= 2 for label in labels)
    assert y_range(95.0, 99.0, top=100.0)[1] == 100.0  # accuracy never above 100 %
    assert y_range(0.01, 0.02)[0] >= 0.0  # a loss axis does not go below 0


def test_the_focused_form_field_is_marked_without_colour(tmp_path):
    import asyncio

    from textual.widgets import Input, Label

    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.form import TrainFormScreen

    async def check() -> None:
        app = CnnTuiApp()
        async with app.run_test(size=(120, 40)) as pilot:
            app.push_screen(TrainFormScreen())
            await pilot.pause()
            screen = app.screen
            screen.query_one("#field-epochs", Input).focus()
            await pilot.pause()
            marked = [
                row.id
                for row in screen.query(".form-row")
                if row.query_one(".form-label", Label).styles.text_style.reverse
            ]
            assert marked == ["row-epochs"]

    asyncio.run(check())


def test_eval_in_the_tui_recomputes_from_the_checkpoint_and_saves_eval_json(tmp_path):
    import asyncio

    from cnn_tui.training.config import TrainConfig
    from cnn_tui.training.loop import engine
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.results import ResultsScreen

    run_dir = tmp_path / "run"
    config = TrainConfig(dataset="shapes", model="the3-cnn", epochs=1, limit=200, device="cpu")
    trained = engine.train(config, run_dir)
    (run_dir / runs.EVAL_FILE).unlink(missing_ok=True)

    async def check() -> None:
        app = CnnTuiApp()
        async with app.run_test(size=(120, 40)) as pilot:
            screen = ResultsScreen(run_dir, recompute=True, device="cpu")
            await app.push_screen(screen)
            for _ in range(600):
                if screen.recomputed is not None:
                    break
                await pilot.pause(0.05)
            assert screen.recomputed is not None, "the metrics were not recomputed"
            assert screen.recomputed["test_accuracy"] == pytest.approx(trained["test_accuracy"])

    asyncio.run(check())
    saved = json.loads((run_dir / runs.EVAL_FILE).read_text())
    assert saved["test_accuracy"] == pytest.approx(trained["test_accuracy"])


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 6, 8, 9, 12, 30])
@pytest.mark.parametrize("span", [(0.0, 1.0), (2.62, 2.67), (0.0, 0.0011), (40.0, 100.0)])
def test_a_short_chart_gets_ticks_a_row_apart(rows, span):
    from cnn_tui.ui.training.charts import Y_TICKS, fitting_ticks, nice_ticks

    low, high = span
    ticks, labels = fitting_ticks(low, high, rows)
    assert 1 <= len(ticks) <= max(2, (rows + 1) // 2) and len(labels) == len(ticks)
    assert all(low - 1e-9 <= tick <= high + 1e-9 for tick in ticks)
    assert ticks == sorted(ticks) and len(set(labels)) == len(labels)
    if rows >= 2 * Y_TICKS + 2:  # room for all: the ticks nice_ticks chooses
        assert (ticks, labels) == nice_ticks(low, high)
