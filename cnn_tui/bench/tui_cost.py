"""TUI mode (`cnn-tui bench --tui`): what the terminal UI costs while it shows a run.

Each repeat is a fresh process (`python -m cnn_tui.ui.cost_probe`) that starts a run from the
training form, as a user does, and measures the seconds from Start to the first point on the
loss chart, the share of one core the TUI takes while it follows the live run, and the share it
takes while a finished run's results stay on screen. Medians of `repeats`; each repeat's
figures are kept. The settings are those of the run started (`--dataset`, `--epochs`,
`--limit`, `--batch-size`, `--device`; the model is the first of `--models`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cnn_tui.bench.common import Note, load_average, median, no_notes
from cnn_tui.bench.options import TUI, BenchOptions
from cnn_tui.errors import RunError

PROBE = (sys.executable, "-m", "cnn_tui.ui.cost_probe")
FINISHED_SECONDS = 10.0  # how long a finished run's results are watched (--quick: 2)
QUICK_FINISHED_SECONDS = 2.0
FIGURES = ("first_point_s", "first_batch_event_s", "following_core_share", "finished_core_share")


def probe_config(opts: BenchOptions) -> dict[str, Any]:
    """The settings of the run each repeat starts (a `TrainConfig` mapping)."""
    from cnn_tui.catalog import is_pretrained

    name, size = opts.models[0]
    values: dict[str, Any] = {
        "dataset": opts.dataset,
        "model": name,
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "lr": opts.lr,
        "device": opts.device,
        "amp": opts.amp,
        "channels_last": opts.channels_last,
    }
    if opts.data_dir:
        values["data_dir"] = opts.data_dir
    if size is not None:
        values["image_size"] = size
    if is_pretrained(name):
        values.update(weights="none", finetune="all")
    if opts.limit:
        values["limit"] = opts.limit
    return values


def _probe(config_file: Path, runs_dir: Path, finished_seconds: float) -> dict[str, Any]:
    argv = [*PROBE, str(config_file), str(runs_dir), repr(finished_seconds)]
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RunError(f"bench --tui: the probe failed (exit {done.returncode}): {last}")
    result = json.loads(lines[-1])
    if result.get("state") != "finished":
        raise RunError(f"bench --tui: the probe's run ended {result.get('state')}, not finished")
    return result


def tui_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Medians of `opts.repeats` probes, each a fresh process starting one run."""
    finished_seconds = QUICK_FINISHED_SECONDS if opts.quick else FINISHED_SECONDS
    config = probe_config(opts)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as folder:
        config_file = Path(folder) / "config.json"
        config_file.write_text(json.dumps(config))
        for repeat in range(opts.repeats):
            note(f"TUI cost, round {repeat + 1}/{opts.repeats}: a run started from the form")
            runs.append(_probe(config_file, Path(folder) / f"runs-{repeat}", finished_seconds))
    results: dict[str, Any] = {}
    for key in FIGURES:
        values = [run[key] for run in runs if run.get(key) is not None]
        results[key] = median(values) if values else None
    results["following_seconds"] = median([run["following_seconds"] for run in runs])
    tabs: dict[str, dict[str, float]] = {}
    for tab in dict.fromkeys(tab for run in runs for tab in run.get("following_tabs", {})):
        measured = [run["following_tabs"][tab] for run in runs if tab in run["following_tabs"]]
        tabs[tab] = {
            "core_share": median([figures["core_share"] for figures in measured]),
            "seconds": median([figures["seconds"] for figures in measured]),
        }
    results["following_tabs"] = tabs
    results["runs"] = runs
    return {
        "mode": TUI,
        "environment": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "cpu_count": os.cpu_count(),
            "load_average": load_average(),
        },
        "settings": {
            "run": config,
            "repeats": opts.repeats,
            "finished_seconds": finished_seconds,
            "terminal": "headless driver, 120×40",
        },
        "results": results,
    }
