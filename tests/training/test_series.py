"""Every scalar of the event log as named series (runs/series.py) and the planned LR schedule."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import schedule
from cnn_tui.training.runs.series import MAX_SERIES, MetricHistory, describe

CONFIG = {"schedule": "cosine", "lr": 0.1, "epochs": 2}


def _events() -> list[dict]:
    return [
        {"event": "run_started", "time": 0.0, "config": CONFIG, "batches_per_epoch": 4},
        {"event": "batch", "time": 1.0, "epoch": 1, "batch": 2, "batches": 4, "loss": 2.0,
         "smoothed_loss": 2.1, "lr": 0.09, "grad_norm": 3.5, "weight_norm": 10.0,
         "images_per_s": None, "eta_s": 12.0, "flag": True, "note": "text",
         "future_sharpness": 0.25},
        {"event": "system", "time": 1.5, "cpu_percent": 40.0, "ram_used": 2 * 2**30,
         "gpus": [{"index": 0, "name": "H100", "util_percent": 90.0, "processes": [{"pid": 1}]},
                  {"index": 1, "util_percent": math.nan, "power_w": 300.0}]},
        {"event": "batch", "time": 2.0, "epoch": 1, "batch": 4, "batches": 4, "loss": 1.5,
         "lr": 0.05, "grad_norm": 2.5},
        {"event": "epoch", "time": 3.0, "epoch": 1, "epochs": 2, "train_loss": 1.7,
         "val_loss": 1.9, "train_acc": 0.4, "val_acc": 0.35, "lr": 0.05, "gpu_mem_mb": None},
        {"event": "finished", "time": 4.0},
    ]  # fmt: skip


def test_every_finite_scalar_becomes_a_series_placed_in_fractional_epochs():
    history = MetricHistory()
    history.add(_events())
    found = {(s.kind, s.name): s for s in history.series.values()}
    assert set(found) == {
        ("batch", "loss"),
        ("batch", "smoothed_loss"),
        ("batch", "lr"),
        ("batch", "grad_norm"),
        ("batch", "weight_norm"),
        ("batch", "eta_s"),
        ("batch", "future_sharpness"),
        ("system", "cpu_percent"),
        ("system", "ram_used"),
        ("system", "gpus[0].util_percent"),
        ("system", "gpus[1].power_w"),
        ("epoch", "train_loss"),
        ("epoch", "val_loss"),
        ("epoch", "train_acc"),
        ("epoch", "val_acc"),
        ("epoch", "lr"),
    }  # fmt: skip  (no None, NaN, bool, text, position field or nested list)
    assert found[("batch", "grad_norm")].xs == [0.5, 1.0]
    assert found[("batch", "grad_norm")].ys == [3.5, 2.5]
    assert found[("system", "cpu_percent")].xs == [0.5]  # the last batch event's place
    assert found[("epoch", "val_acc")].xs == [1.0]


def test_series_are_grouped_into_labelled_metrics_known_ones_first():
    history = MetricHistory()
    history.add(_events())
    metrics = history.metrics()
    assert list(metrics)[:5] == ["loss", "acc", "lr", "grad_norm", "weight_norm"]
    assert [s.label for s in metrics["loss"].series] == ["batch (smoothed)", "train", "val"]
    assert [s.label for s in metrics["acc"].series] == ["train", "val"]
    assert metrics["acc"].label.percent and metrics["acc"].label.heading == "accuracy (%)"
    assert [s.label for s in metrics["gpus.util_percent"].series] == ["GPU 0"]
    assert metrics["gpus.util_percent"].label.heading == "GPU utilisation (%)"
    assert metrics["ram"].label.scale == pytest.approx(1 / 2**30)
    # a field no table knows: a chart of its own, its title made from its name
    future = metrics["future_sharpness"]
    assert future.label.heading == "future sharpness" and future.series[0].ys == [0.25]


def test_the_learning_rate_metric_has_the_whole_planned_schedule_first():
    history = MetricHistory()
    history.add(_events())
    planned, used = history.metrics()["lr"].series
    assert (planned.kind, planned.label, used.kind, used.label) == (
        "plan",
        "planned",
        "batch",
        "used",
    )
    assert history.metrics()["lr_epoch"].series[0].ys == [0.05]  # (a chart of its own)
    assert planned.xs == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    config = TrainConfig(schedule="cosine", lr=0.1, epochs=2)
    assert planned.ys == pytest.approx([schedule.lr_at(config, s, 8, 4) for s in range(8)])
    # before any training event (and for a run without one) the plan alone
    fresh = MetricHistory()
    fresh.add(_events()[:1])
    assert list(fresh.metrics()) == ["lr"]


def test_the_step_schedule_is_drawn_as_stairs():
    config = schedule.Schedule("step", 1.0, 6)
    xs, ys = schedule.planned_lr(config, steps_per_epoch=100, points=20)
    assert len(xs) < 40 and xs[-1] == 6.0
    drop = xs.index(2.0)  # the last step of epoch 2, then the first at ×0.1
    assert (ys[drop], ys[drop + 1]) == pytest.approx((1.0, 0.1)) and xs[drop + 1] == 2.01
    assert ys == sorted(ys, reverse=True)


@pytest.mark.parametrize(
    "values",
    [None, {}, {"schedule": "warp", "lr": 0.1, "epochs": 2}, {"schedule": "cosine", "lr": "x",
     "epochs": 2}, {"schedule": "none", "lr": 0.1, "epochs": True}, {"lr": math.inf, "epochs": 1},
     {"schedule": "none", "lr": 0.1, "epochs": 10**9}],
)  # fmt: skip
def test_a_config_that_does_not_describe_a_schedule_draws_none(values):
    assert schedule.Schedule.from_values(values) is None


def test_memory_stays_bounded_and_statistics_exact():
    history = MetricHistory(max_points=50)
    history.add(
        {"event": "batch", "epoch": 1, "batch": b, "batches": 1000, "loss": float(b)}
        for b in range(1, 1001)
    )
    (series,) = history.series.values()
    assert len(series.xs) <= 50 and series.xs == sorted(series.xs)
    assert (series.count, series.last, series.low, series.high) == (1000, 1000.0, 1.0, 1000.0)
    # a forged file with ever new names, long names or names with control characters
    history.add({"event": "system", f"f{i}": 1.0} for i in range(2 * MAX_SERIES))
    history.add([{"event": "system", "x" * 500: 1.0, "bad\x1b[2J": 1.0}])
    assert len(history.series) == MAX_SERIES


def test_unknown_names_are_titled_from_their_words_and_unit():
    assert describe("gpu0_fan_percent").heading == "gpu0 fan (%)"
    assert describe("samples_per_s").heading == "samples (/s)"
    assert describe("swap_bytes").scale == pytest.approx(1 / 2**30)
    assert describe("plain").heading == "plain"


def test_the_series_module_needs_neither_torch_nor_textual():
    code = (
        "import json, sys\n"
        "from cnn_tui.training.runs.series import MetricHistory\n"
        "MetricHistory().add([{'event': 'run_started', 'config': {'lr': 0.1, 'epochs': 1},"
        " 'batches_per_epoch': 3}])\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'textual')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "textual": False}


def test_the_trainer_cpu_is_kept_in_the_host_cpu_s_unit():
    history = MetricHistory()
    history.add(
        [
            {"event": "system", "time": 1.0, "cpu_count": 4, "cpu_percent": 50.0,
             "trainer_cpu_percent": 150.0},  # 1.5 cores of 4
            {"event": "system", "time": 2.0, "trainer_cpu_percent": 100.0},  # no core count
        ]
    )  # fmt: skip
    metrics = history.metrics()
    assert metrics["trainer_cpu_percent"].series[0].ys == [37.5]
    assert metrics["trainer_cpu_percent"].label.unit == metrics["cpu_percent"].label.unit
    assert metrics["cpu_percent"].label.heading == "host CPU (% of all cores)"
