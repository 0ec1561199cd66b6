"""Run the benchmark a `BenchOptions` asks for and return its report (a JSON-ready dict with
"mode", "environment", "settings" and "results"); `cnn_tui.commands.bench` prints it.

Each mode lives in its own module: `speed` (images/s per batch, the default), `whole_run`,
`features`, `startup` and `tui`. They import torch only when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnn_tui.bench.common import Note, no_notes
from cnn_tui.bench.features import features_report
from cnn_tui.bench.options import FEATURES, SPEED, STARTUP, TUI, WHOLE_RUN, BenchOptions
from cnn_tui.bench.speed import speed_report
from cnn_tui.bench.startup import startup_report
from cnn_tui.bench.tui_cost import tui_report
from cnn_tui.bench.whole_run import whole_run_report

REPORTS: dict[str, Callable[[BenchOptions, Note], dict[str, Any]]] = {
    SPEED: speed_report,
    WHOLE_RUN: whole_run_report,
    FEATURES: features_report,
    STARTUP: startup_report,
    TUI: tui_report,
}


def run_bench(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Measure what `opts.mode` names; `note` hears progress as it goes."""
    return REPORTS[opts.mode](opts, note)
