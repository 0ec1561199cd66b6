"""The ETA and speed estimate (`training.loop.eta`) fed made-up batch times: no clock involved."""

from __future__ import annotations

import pytest

from cnn_tui import text
from cnn_tui.training.loop.eta import MIN_SAMPLES, WARMUP_BATCHES, EtaEstimator

BATCH_S, IMAGES = 0.05, 64


def fed(times: list[float], estimator: EtaEstimator | None = None) -> EtaEstimator:
    estimator = estimator or EtaEstimator()
    for seconds in times:
        estimator.add_batch(seconds, IMAGES)
    return estimator


def test_a_slow_first_batch_does_not_make_the_eta():
    """The issue's run: a 5 s first batch (CUDA start-up), then 0.05 s batches; 1,000 left."""
    estimator = fed([5.0])
    assert estimator.eta_s(1000, 1) is None  # nothing to say yet: "estimating"
    assert text.eta(estimator.eta_s(1000, 1)) == "estimating"
    fed([BATCH_S] * (WARMUP_BATCHES - 1 + MIN_SAMPLES - 1), estimator)
    assert estimator.eta_s(1000, 1) is None  # one batch short of an estimate
    fed([BATCH_S], estimator)
    assert estimator.eta_s(1000, 1) == pytest.approx(1000 * BATCH_S)
    assert estimator.images_per_s() == pytest.approx(IMAGES / BATCH_S)


def test_a_resume_warms_up_again():
    """A resumed session is a new estimator: its own slow start is left out too."""
    before = fed([BATCH_S] * 20)
    assert before.eta_s(100, 1) == pytest.approx(100 * BATCH_S)
    resumed = fed([3.0, 0.8, 0.2])  # the resumed trainer's warm-up
    assert resumed.eta_s(100, 1) is None
    fed([BATCH_S] * MIN_SAMPLES, resumed)
    assert resumed.eta_s(100, 1) == pytest.approx(100 * BATCH_S)


def test_one_outlier_batch_moves_the_estimate_little():
    estimator = fed([BATCH_S] * 30)
    fed([10.0], estimator)  # a batch that stalled for 10 s
    eta = estimator.eta_s(1000, 1)
    assert eta is not None and eta < 1.5 * 1000 * BATCH_S  # not 10 s × 1000
    fed([BATCH_S] * 40, estimator)
    assert estimator.eta_s(1000, 1) == pytest.approx(1000 * BATCH_S, rel=0.02)


def test_the_estimate_follows_a_real_change_of_speed():
    estimator = fed([BATCH_S] * 30 + [2 * BATCH_S] * 60)
    assert estimator.eta_s(100, 1) == pytest.approx(100 * 2 * BATCH_S, rel=0.01)


def test_validation_time_counts_for_each_epoch_to_come():
    estimator = fed([BATCH_S] * 20)
    assert estimator.eta_s(100, 3) == pytest.approx(100 * BATCH_S)  # not measured yet
    estimator.add_epoch_overhead(2.0)
    assert estimator.eta_s(100, 3) == pytest.approx(100 * BATCH_S + 3 * 2.0)
