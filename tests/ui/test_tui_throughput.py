"""Throughput of a run followed by the TUI vs the same run headless (opt-in measurement).

    CNN_TUI_MEASURE=1 python -m pytest -s tests/ui/test_tui_throughput.py

runs the same short training alternately headless (`cnn-tui train --no-ui`) and started from the
training form with the dashboard following it (a pilot app at 120×40 that draws everything), a
few rounds each, and prints the images/s of both (the mean of the epochs after the first, the
median over rounds) and the share of one CPU core the TUI process used while following. Settings: CNN_TUI_MEASURE_DEVICE (default auto), CNN_TUI_MEASURE_MODEL
(default simple-cnn), CNN_TUI_MEASURE_EPOCHS (default 4), CNN_TUI_MEASURE_ROUNDS (default 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_until

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs.state import OVER
from cnn_tui.training.runs.store import read_events

pytestmark = pytest.mark.skipif(
    os.environ.get("CNN_TUI_MEASURE") != "1", reason="a measurement: set CNN_TUI_MEASURE=1"
)


def measured_config() -> TrainConfig:
    return TrainConfig(
        dataset="shapes",
        model=os.environ.get("CNN_TUI_MEASURE_MODEL", "simple-cnn"),
        epochs=int(os.environ.get("CNN_TUI_MEASURE_EPOCHS", "4")),
        batch_size=128,
        device=os.environ.get("CNN_TUI_MEASURE_DEVICE", "auto"),
    )


def images_per_s(run_dir: Path) -> float:
    """Mean training images/s of the epochs after the first (the first warms up)."""
    epochs = [e for e in read_events(run_dir)[0] if e.get("event") == "epoch"]
    values = [e["images_per_s"] for e in epochs[1:]] or [e["images_per_s"] for e in epochs]
    return statistics.fmean(values)


def run_headless(config: TrainConfig, run_dir: Path) -> float:
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(config.to_toml())
    command = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--json"]
    command += ["--config", str(run_dir / "config.toml"), "--run-dir", str(run_dir)]
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return images_per_s(run_dir)


async def run_followed(config: TrainConfig, runs_dir: Path) -> tuple[float, float]:
    """images/s of a run started from the form, and the CPU share of one core the TUI used."""
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.form import TrainFormScreen

    app = CnnTuiApp(runs_dir=str(runs_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(TrainFormScreen(config))
        await pilot.pause()
        await app.workers.wait_for_complete()  # device detection (imports torch) is not counted
        cpu, wall = time.process_time(), time.monotonic()
        await pilot.press("ctrl+s")
        await pilot.pause()
        dashboard = app.screen
        await wait_until(pilot, lambda: dashboard.state in OVER, 1800, "the run to end")
        assert dashboard.state == "finished", dashboard.state_message
        cpu_share = (time.process_time() - cpu) / (time.monotonic() - wall)
        return images_per_s(dashboard.run_dir), cpu_share


def test_followed_run_is_as_fast_as_headless(tmp_path) -> None:
    config = measured_config()
    rounds = int(os.environ.get("CNN_TUI_MEASURE_ROUNDS", "3"))
    headless, followed, cpu_shares = [], [], []
    for index in range(rounds):
        headless.append(run_headless(config, tmp_path / f"headless-{index}"))
        speed, cpu_share = asyncio.run(run_followed(config, tmp_path / f"tui-{index}"))
        followed.append(speed)
        cpu_shares.append(cpu_share)
    result = {
        "config": {k: v for k, v in config.to_dict().items() if v is not None},
        "headless_images_per_s": headless,
        "followed_images_per_s": followed,
        "headless_median": statistics.median(headless),
        "followed_median": statistics.median(followed),
        "tui_cpu_share_of_one_core": cpu_shares,
    }
    result["ratio"] = result["followed_median"] / result["headless_median"]
    print(json.dumps(result, indent=1))
    if os.environ.get("CNN_TUI_MEASURE_OUT"):
        Path(os.environ["CNN_TUI_MEASURE_OUT"]).write_text(json.dumps(result, indent=1))
