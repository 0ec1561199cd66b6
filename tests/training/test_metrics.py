"""Metrics against small cases computed by hand (scikit-learn conventions, zero_division=0)."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_tui.training.loop import metrics

# true 0 0 0 1 1 2 / pred 0 0 1 1 2 2
#        pred: 0  1  2
# true 0:     2  1  0
# true 1:     0  1  1
# true 2:     0  0  1
TRUE = [0, 0, 0, 1, 1, 2]
PRED = [0, 0, 1, 1, 2, 2]


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = metrics.confusion_matrix(TRUE, PRED, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.accuracy(cm) == pytest.approx(4 / 6)


def test_per_class_and_macro_by_hand():
    cm = metrics.confusion_matrix(TRUE, PRED, 3)
    scores = metrics.per_class(cm)
    np.testing.assert_allclose(scores["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(scores["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(scores["f1"], [0.8, 0.5, 2 / 3])
    assert scores["support"].tolist() == [3, 2, 1]
    macro = metrics.macro_averages(cm)
    assert macro["macro_precision"] == pytest.approx(2 / 3)
    assert macro["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert macro["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_class_never_predicted_counts_as_zero_not_nan():
    cm = metrics.confusion_matrix([0, 1, 2], [0, 1, 1], 3)
    scores = metrics.per_class(cm)
    assert scores["precision"].tolist() == [1.0, 0.5, 0.0]
    assert scores["f1"][2] == 0.0
    assert metrics.macro_averages(cm)["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    # a class absent from both true and predicted labels is left out of the macro mean (sklearn)
    cm4 = metrics.confusion_matrix([0, 1, 2], [0, 1, 1], 4)
    assert metrics.macro_averages(cm4) == pytest.approx(metrics.macro_averages(cm))


def test_empty_matrix_is_all_zeros():
    cm = np.zeros((3, 3), dtype=np.int64)
    assert metrics.accuracy(cm) == 0.0
    assert metrics.macro_averages(cm) == {
        "macro_precision": 0.0,
        "macro_recall": 0.0,
        "macro_f1": 0.0,
    }
    assert metrics.normalize_confusion(cm).tolist() == [[0.0] * 3] * 3


def test_normalized_rows_sum_to_one():
    cm = metrics.confusion_matrix(TRUE, PRED, 3)
    norm = metrics.normalize_confusion(cm)
    np.testing.assert_allclose(norm.sum(axis=1), [1, 1, 1])
    np.testing.assert_allclose(norm[0], [2 / 3, 1 / 3, 0])


def test_most_confused_pairs_largest_first():
    cm = np.array([[5, 3, 0], [1, 4, 0], [0, 2, 6]])
    pairs = metrics.most_confused(cm, ["a", "b", "c"], top=5)
    assert pairs == [
        {"true": "a", "predicted": "b", "count": 3},
        {"true": "c", "predicted": "b", "count": 2},
        {"true": "b", "predicted": "a", "count": 1},
    ]


def test_report_is_json_ready_and_formats():
    import json

    report = metrics.classification_report(metrics.confusion_matrix(TRUE, PRED, 3), ["x", "y", "z"])
    json.dumps(report)  # plain types only
    assert set(report) >= {
        "test_accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "confusion_matrix",
        "classes",
        "per_class",
        "most_confused",
    }
    assert report["per_class"][1] == {
        "class": "y",
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }
    text = metrics.format_report(report)
    assert "macro F1 0.6556" in text and "confusion matrix" in text
