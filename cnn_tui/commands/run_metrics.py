"""`cnn-tui runs --metrics RUN_DIR`: every scalar a run logged, as the Metrics tab lists them.

A table of each series (metric, line, event field) with its number of points and its last, lowest
and highest value (as the chart draws them: accuracy in percent); `--json` the same as a list of
objects, the values as logged; `--csv FILE` every point (x in
fractional epochs, as the charts draw them), the planned learning-rate schedule included.
The series are those of `training.runs.series` (found from the events themselves), read from
metrics.jsonl whole.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from cnn_tui.commands import output
from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text, json_text

HEADER = ("metric", "line", "field", "points", "last", "min", "max")
CSV_HEADER = ("metric", "line", "kind", "field", "epoch", "value")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        metavar="RUN_DIR",
        type=output.path_argument,
        default=None,
        help="list every metric RUN_DIR logged (points, last, min, max) and exit (headless)",
    )
    csv_flag = parser.add_argument(
        "--csv",
        metavar="FILE",
        type=output.path_argument,
        default=None,
        help="with --metrics: also write every point of every metric to FILE as CSV (- : stdout)",
    )
    output.chooses_output(csv_flag)


def run(args: argparse.Namespace) -> int:
    """The table (or JSON) of the metrics of `--metrics RUN_DIR`, and the CSV of `--csv`."""
    from cnn_tui.text import number, one_line, percent
    from cnn_tui.training.runs import store
    from cnn_tui.training.runs.series import MetricHistory

    run_dir = Path(args.metrics)
    if not store.looks_like_run(run_dir):
        raise UsageError(
            f"--metrics {one_line(run_dir)}: not a run directory (cnn-tui runs lists the runs)"
        )
    if args.csv:
        output.check_output(args.csv, "--csv")
    events, _ = store.read_all_events(run_dir)
    history = MetricHistory(max_points=sys.maxsize) if args.csv else MetricHistory()
    history.add(events)
    metrics = history.metrics()
    rows = [
        {
            "metric": key,
            "title": metric.label.heading,
            "line": series.label,
            "kind": series.kind,
            "field": series.name,
            "points": series.count,
            "last": series.last,
            "min": series.low,
            "max": series.high,
        }
        for key, metric in metrics.items()
        for series in metric.series
    ]
    if args.csv:
        _write_csv(Path(args.csv), metrics)
        if str(args.csv) == output.STDOUT:  # (`--csv -`: the CSV alone on stdout)
            return 0
    if args.json:
        output.say(json_text(rows))
        return 0
    if not rows:
        output.say(f"no metrics in {one_line(run_dir)} yet")
        return 0

    def shown(row: dict[str, Any], key: str) -> str:  # as the chart draws it: 93.42%, GiB
        label = metrics[row["metric"]].label
        return percent(row[key]) if label.percent else number(row[key] * label.scale, ".4g")

    table = [
        (
            row["title"],
            row["line"],
            row["field"] if row["kind"] != "plan" else "(the planned schedule)",
            str(row["points"]),
            *(shown(row, key) for key in ("last", "min", "max")),
        )
        for row in rows
    ]
    output.say(*output.table(HEADER, table, right=(3, 4, 5, 6)))
    return 0


def _write_csv(path: Path, metrics: dict[str, Any]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for key, metric in metrics.items():
        for series in metric.series:
            for x, y in zip(series.xs, series.ys, strict=True):
                writer.writerow((key, series.label, series.kind, series.name, repr(x), repr(y)))
    if str(path) == output.STDOUT:
        output.say(buffer.getvalue().rstrip("\n"))
    else:
        atomic_write_text(path, buffer.getvalue())
