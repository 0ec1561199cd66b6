"""Results of a run that is over (`cnn-tui eval RUN_DIR`, or opened from the runs screen).

The dashboard screen replayed from the run's files: curves, epoch table and log, and the test
results (confusion matrix, per-class metrics, most-confused pairs, sample predictions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnn_tui.ui.training.dashboard import RunScreen


class ResultsScreen(RunScreen):
    """A finished, stopped or failed run, read once from its directory."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__(run_dir, live=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace | None) -> ResultsScreen:
        return cls(getattr(args, "run_dir", None) or ".")
