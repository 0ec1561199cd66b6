"""Classification metrics from a confusion matrix: accuracy, per-class and macro precision/recall/F1.

Pure numpy functions (no torch), so the TUI can derive views such as the row-normalised matrix
without loading torch. The engine counts the confusion matrix on the device and hands the counts
here, in an `EvalResult` (loss, accuracy, confusion matrix and the predictions of a split). Conventions follow scikit-learn: rows are true classes, columns predicted classes; a ratio
whose denominator is zero (a class never predicted, or never present) is 0 (`zero_division=0`);
macro averages run over the classes that occur in the true or the predicted labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui import text


@dataclass
class EvalResult:
    """The model on one split, as the engine's `evaluate` measures it."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # counts, rows = true class
    predictions: np.ndarray | None = None  # per image, when asked for
    confidences: np.ndarray | None = None


def confusion_matrix(true: Sequence[int], pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): entry [t, p] is how many of class t were predicted p."""
    true = np.asarray(true, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in length: {true.size} vs {pred.size}")
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def normalize_confusion(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the fraction of a true class that went to each prediction).

    A row with no samples stays all zeros.
    """
    matrix = np.asarray(matrix)
    return _safe_divide(matrix, matrix.sum(axis=1, keepdims=True))


def accuracy(matrix: np.ndarray) -> float:
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (floats) and support (ints) per class, as arrays of length K."""
    matrix = np.asarray(matrix)
    hits = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_divide(hits, predicted)
    recall = _safe_divide(hits, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def macro_averages(matrix: np.ndarray) -> dict[str, float]:
    """Unweighted means of per-class precision, recall and F1 over the classes that occur."""
    matrix = np.asarray(matrix)
    scores = per_class(matrix)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    if not present.any():
        return {"macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0}
    return {
        f"macro_{name}": float(scores[name][present].mean())
        for name in ("precision", "recall", "f1")
    }


def most_confused(matrix: np.ndarray, classes: Sequence[str], top: int = 5) -> list[dict[str, Any]]:
    """The largest off-diagonal counts, largest first: [{true, predicted, count}, ...]."""
    matrix = np.asarray(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    pairs = []
    for flat in order:
        t, p = np.unravel_index(flat, off.shape)
        if off[t, p] <= 0:
            break
        pairs.append({"true": classes[t], "predicted": classes[p], "count": int(off[t, p])})
    return pairs


def classification_report(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Everything the summary reports about a test set, JSON-ready (plain floats, ints, lists)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    scores = per_class(matrix)
    rows = [
        {
            "class": name,
            "precision": float(scores["precision"][i]),
            "recall": float(scores["recall"][i]),
            "f1": float(scores["f1"][i]),
            "support": int(scores["support"][i]),
        }
        for i, name in enumerate(classes)
    ]
    return {
        "test_accuracy": accuracy(matrix),
        **macro_averages(matrix),
        "confusion_matrix": matrix.tolist(),
        "classes": list(classes),
        "per_class": rows,
        "most_confused": most_confused(matrix, classes),
    }


def format_report(report: dict[str, Any]) -> str:
    """Plain-text per-class table and confusion matrix (counts) for a terminal or a log. The
    class names (a stranger's folder names) are written through `text.one_line`."""
    classes = [text.one_line(name) for name in report["classes"]]
    width = max(8, *(len(name) for name in classes))
    lines = [
        f"test accuracy {text.percent(report['test_accuracy'])}   macro precision "
        f"{report['macro_precision']:.4f}   macro recall {report['macro_recall']:.4f}   "
        f"macro F1 {report['macro_f1']:.4f}",
        "",
        f"{'class':<{width}}  precision  recall      f1  support",
    ]
    for row in report["per_class"]:
        lines.append(
            f"{text.one_line(row['class']):<{width}}  {row['precision']:9.4f}  "
            f"{row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7d}"
        )
    matrix = report["confusion_matrix"]
    cell = max(5, len(str(max((max(row) for row in matrix), default=0))) + 1)
    lines += ["", "confusion matrix (rows: true class, columns: predicted, in class order)"]
    lines.append(" " * width + "".join(f"{i:>{cell}}" for i in range(len(classes))))
    for name, row in zip(classes, matrix, strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{count:>{cell}}" for count in row))
    if report.get("most_confused"):
        pairs = ", ".join(
            f"{text.one_line(pair['true'])} → {text.one_line(pair['predicted'])} ({pair['count']})"
            for pair in report["most_confused"]
        )
        lines += ["", f"most confused: {pairs}"]
    return "\n".join(lines)
