"""TUI mode (`cnn-tui bench --tui`): what the terminal UI costs while it shows a run.

Each repeat is a fresh process (`python -m cnn_tui.ui.cost_probe`) that starts a run from the
training form, as a user does, and measures the seconds from Start to the first point on the
loss chart, the share of one core the TUI takes while it follows the live run, and the share it
takes while a finished run's results stay on screen. Medians of `repeats`; each repeat's
figures are kept. The settings are those of the run started (`--dataset`, `--epochs`,
`--limit`, `--batch-size`, `--device`; the model is the first of `--models`).

With `--pairs` it measures what the TUI costs the trainer instead: `repeats` pairs, each the same
run trained headless (`cnn-tui train --no-ui`, a fresh process) and then started from the form
(the probe, following the whole run on the Charts tab), alternated H, T, H, T, ... so that a
machine that gets busier or quieter weighs on both sides alike. Each side's figure is the
trainer's own training throughput (`run_images_per_s`: its epochs' images over their training
seconds, from its metrics.jsonl); each pair's ratio is TUI / headless, and the cost is 1 - the
median ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cnn_tui.bench.common import Note, load_average, median, no_notes, run_settings
from cnn_tui.bench.options import TUI, BenchOptions
from cnn_tui.errors import RunError

PROBE = (sys.executable, "-m", "cnn_tui.ui.cost_probe")
FINISHED_SECONDS = 10.0  # how long a finished run's results are watched (--quick: 2)
QUICK_FINISHED_SECONDS = 2.0
FIGURES = ("first_point_s", "first_batch_event_s", "following_core_share", "finished_core_share")


def probe_config(opts: BenchOptions) -> dict[str, Any]:
    """The settings of the run each repeat starts (a `TrainConfig` mapping)."""
    return run_settings(opts, opts.models[0])


def _probe(
    config_file: Path, runs_dir: Path, finished_seconds: float, tabs: str | None = None
) -> dict[str, Any]:
    argv = [*PROBE, str(config_file), str(runs_dir), repr(finished_seconds)]
    if tabs is not None:
        argv.append(tabs)
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
    """Medians of `opts.repeats` probes, each a fresh process starting one run (with
    `opts.pairs`: `pairs_report`)."""
    if opts.pairs:
        return pairs_report(opts, note)
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
        "environment": _environment(),
        "settings": {
            "run": config,
            "repeats": opts.repeats,
            "finished_seconds": finished_seconds,
            "terminal": "headless driver, 120×40",
        },
        "results": results,
    }


def _environment(load_before: list[float] | None = None) -> dict[str, Any]:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average": load_average(),
    }


# --- pairs: the trainer's throughput headless and under the TUI ---------------------------------

PAIR_TABS = "charts"  # the TUI follows the whole run on the tab a run opens on


def run_images_per_s(run_dir: Path) -> float:
    """The trainer's training throughput over its run: the images of its epochs over the seconds
    they trained (every epoch trains the same images: the harmonic mean of the epoch events'
    images_per_s). A run without a finished epoch is a RunError."""
    from cnn_tui.training.runs.store import read_all_events

    speeds = [
        float(event["images_per_s"])
        for event in read_all_events(run_dir)[0]
        if event.get("event") == "epoch" and event.get("images_per_s")
    ]
    if not speeds:
        raise RunError(f"bench --tui --pairs: the run in {run_dir} has no finished epoch")
    return len(speeds) / sum(1.0 / speed for speed in speeds)


def pair_ratios(pairs: list[tuple[float, float]]) -> list[float]:
    """TUI / headless images/s of each (headless, TUI) pair."""
    return [tui / headless for headless, tui in pairs]


def _headless(config_file: Path, run_dir: Path) -> None:
    """The run trained by `cnn-tui train --no-ui` in a fresh process, as a script would."""
    argv = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--config", str(config_file),
            "--run-dir", str(run_dir)]  # fmt: skip
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RunError(
            f"bench --tui --pairs: the headless run failed (exit {done.returncode}): {last}"
        )


def pairs_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """`opts.repeats` pairs of the same run, headless then from the form, alternated; each
    pair's training images/s and ratio, and the median ratio."""
    from cnn_tui.training.config import TrainConfig

    load_before = load_average()
    config = probe_config(opts)
    pairs: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as name:
        folder = Path(name)
        config_json, config_toml = folder / "config.json", folder / "config.toml"
        config_json.write_text(json.dumps(config))
        config_toml.write_text(TrainConfig.from_mapping(config).to_toml(), encoding="utf-8")
        for pair in range(opts.repeats):
            note(f"TUI cost, pair {pair + 1}/{opts.repeats}: the run headless")
            headless_dir = folder / f"headless-{pair}"
            _headless(config_toml, headless_dir)
            headless = run_images_per_s(headless_dir)
            note(f"TUI cost, pair {pair + 1}/{opts.repeats}: the run from the form")
            probe = _probe(config_json, folder / f"runs-{pair}", 0.0, PAIR_TABS)
            probes.append(probe)
            tui = run_images_per_s(Path(probe["run_dir"]))
            pairs.append({"headless_images_per_s": headless, "tui_images_per_s": tui,
                          "ratio": pair_ratios([(headless, tui)])[0],
                          "load_average": load_average()})  # fmt: skip
    ratio = median([pair["ratio"] for pair in pairs])
    return {
        "mode": TUI,
        "environment": _environment(load_before),
        "settings": {
            "run": config,
            "repeats": opts.repeats,
            "pairs": True,
            "order": "headless, TUI, headless, TUI, ...",
            "tabs": PAIR_TABS,
            "terminal": "headless driver, 120×40",
        },
        "results": {
            "pairs": pairs,
            "median_ratio": ratio,
            "tui_cost": 1.0 - ratio,
            "headless_images_per_s": median([pair["headless_images_per_s"] for pair in pairs]),
            "tui_images_per_s": median([pair["tui_images_per_s"] for pair in pairs]),
            "runs": probes,
        },
    }
