"""Run directories written by hand in the documented format, for the training UI tests.

They let most UI tests (and all snapshot tests) run without the engine and without timing:
`write_run(path, state=...)` writes config.toml, status.json, metrics.jsonl and, for a finished
run, summary.json and samples.npz (real `shapes` images).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import types
from pathlib import Path

import numpy as np

from cnn_tui import text
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.data import datasets
from cnn_tui.training.data import shapes as shapes_dataset
from cnn_tui.training.system.processes import this_process

CLASSES = list(shapes_dataset.CLASSES)
FASHION_CLASSES = list(datasets.FASHION_MNIST_CLASSES)
STARTED = 1_763_800_000.0  # a fixed time, so nothing on screen depends on the clock


def _epoch(epoch: int, epochs: int, scale: float = 1.0) -> dict:
    return {
        "event": "epoch",
        "time": STARTED + 10 * epoch,
        "epoch": epoch,
        "epochs": epochs,
        "train_loss": round(2.2 * math.exp(-0.45 * epoch * scale), 4),
        "train_acc": round(1 - 0.85 * math.exp(-0.5 * epoch * scale), 4),
        "val_loss": round(2.3 * math.exp(-0.4 * epoch * scale) + 0.05, 4),
        "val_acc": round(1 - 0.88 * math.exp(-0.45 * epoch * scale) - 0.02, 4),
        "lr": 0.001,
        "seconds": 9.5,
        "images_per_s": 1890.0,
        "gpu_mem_mb": None,
    }


def _batches(epoch: int, epochs: int, batches: int, upto: int | None = None) -> list[dict]:
    result = []
    for batch in range(1, (upto or batches) + 1):
        x = epoch - 1 + batch / batches
        loss = 2.3 * math.exp(-0.45 * x) + 0.08 * math.sin(7 * batch)
        result.append(
            {
                "event": "batch",
                "time": STARTED + 10 * (epoch - 1) + batch,
                "epoch": epoch,
                "batch": batch,
                "batches": batches,
                "loss": round(loss, 4),
                "lr": 0.001,
                "images_per_s": 1890.0,
                "eta_s": round(((epochs - epoch) * batches + batches - batch) * 0.07, 1),
            }
        )
    return result


def confusion(n_per_class: int = 40) -> list[list[int]]:
    """A plausible confusion matrix: mostly right, a few typical mix-ups."""
    k = len(CLASSES)
    matrix = [[0] * k for _ in range(k)]
    mixups = {(0, 9): 6, (9, 0): 4, (1, 7): 3, (5, 6): 1, (3, 8): 5, (4, 0): 2}
    for i in range(k):
        wrong = sum(count for (a, _), count in mixups.items() if a == i)
        matrix[i][i] = n_per_class - wrong
    for (i, j), count in mixups.items():
        matrix[i][j] = count
    return matrix


def summary(matrix: list[list[int]], classes: list[str] = CLASSES) -> dict:
    k = len(matrix)
    per_class = []
    for i in range(k):
        tp = matrix[i][i]
        predicted = sum(matrix[r][i] for r in range(k))
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {
                "class": classes[i],
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "support": support,
            }
        )
    pairs = sorted(
        (
            {"true": classes[i], "predicted": classes[j], "count": matrix[i][j]}
            for i in range(k)
            for j in range(k)
            if i != j and matrix[i][j]
        ),
        key=lambda pair: -pair["count"],
    )
    total = sum(map(sum, matrix))
    return {
        "test_accuracy": round(sum(matrix[i][i] for i in range(k)) / total, 4),
        "macro_precision": round(sum(row["precision"] for row in per_class) / k, 4),
        "macro_recall": round(sum(row["recall"] for row in per_class) / k, 4),
        "macro_f1": round(sum(row["f1"] for row in per_class) / k, 4),
        "confusion_matrix": matrix,
        "classes": classes,
        "per_class": per_class,
        "most_confused": pairs[:5],
        "best_val_acc": 0.9,
        "epochs_done": 4,
        "seconds": 41.3,
    }


def write_samples(run_dir: Path, n: int = 12) -> None:
    images, labels = shapes_dataset.generate(n, seed=3, split="test")
    pred = labels.copy()
    pred[: n // 2] = (labels[: n // 2] + 1) % len(CLASSES)  # the first half are "mistakes"
    confidence = np.linspace(0.97, 0.55, n).astype(np.float32)
    np.savez(
        run_dir / "samples.npz",
        images=images.astype(np.uint8),
        true=labels.astype(np.int64),
        pred=pred.astype(np.int64),
        confidence=confidence,
    )


def write_run(
    run_dir: Path,
    state: str = "finished",
    *,
    epochs: int = 4,
    epochs_done: int | None = None,
    batches: int = 20,
    pid: int | None = None,
    message: str = "",
    scale: float = 1.0,
    classes: list[str] = CLASSES,
    started: float = STARTED,
) -> Path:
    """Write a run dir in the documented format. state: finished | running | stopped | failed.

    A "running" run has done `epochs_done` epochs (default 2) and is half-way through the next,
    with status.json pointing at `pid` (default: this test process, so it counts as alive).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(epochs=epochs, device="cpu", limit=800, batch_size=32)
    (run_dir / "config.toml").write_text(config.to_toml())
    done = epochs if state == "finished" else (2 if epochs_done is None else epochs_done)
    events: list[dict] = [
        {
            "event": "run_started",
            "time": STARTED,
            "config": config.to_dict(),
            "device": "cpu",
            "device_name": "CPU (2 threads)",
            "classes": classes,
            "n_train": 720,
            "n_val": 80,
            "n_test": 400,
            "epochs": epochs,
            "start_epoch": 1,
            "batches_per_epoch": batches,
            "parameters": {"total": 8_130, "trainable": 8_130},
            "pid": pid or os.getpid(),
            "amp": False,
            "channels_last": False,
        }
    ]
    for epoch in range(1, done + 1):
        events += _batches(epoch, epochs, batches)
        events.append(_epoch(epoch, epochs, scale))
    if state == "running":
        events += _batches(done + 1, epochs, batches, upto=batches // 2)
    elif state == "finished":
        data = summary(confusion(), classes)
        events.append({"event": "evaluated", "time": STARTED + 100, "test_loss": 0.31} | data)
        events.append({"event": "finished", "time": STARTED + 101})
        (run_dir / "summary.json").write_text(json.dumps(data))
        write_samples(run_dir)
    elif state == "stopped":
        events.append({"event": "stopped", "time": STARTED + 50, "epoch": done, "message": message})
    elif state == "failed":
        events.append({"event": "failed", "time": STARTED + 50, "epoch": done, "message": message})
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
    status = {
        "status": state,
        # the trainer's identity, as a trainer writes it (this process: alive); a pid alone for
        # a given one
        **(this_process().fields() if pid is None else {"pid": pid}),
        "message": message,
        "epoch": done,
        "epochs": epochs,
        "started": started,
        "updated": STARTED + 100,
    }
    (run_dir / "status.json").write_text(json.dumps(status))
    return run_dir


class FakeNvml:
    """Two GPUs; the second cannot report its power (NVMLError_NotSupported in real life)."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, fail_init: bool = False) -> None:
        self.fail_init = fail_init
        self.shut = False

    def nvmlInit(self):  # noqa: N802 - pynvml's names
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return index

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return b"NVIDIA H200" if handle == 0 else "NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        return types.SimpleNamespace(gpu=87 if handle == 0 else 3)

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        used = (34_000 if handle == 0 else 512) * text.MIB
        return types.SimpleNamespace(used=used, total=143_771 * text.MIB)

    def nvmlDeviceGetTemperature(self, handle, sensor):  # noqa: N802
        return 62 if handle == 0 else 31

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        if handle == 1:
            raise RuntimeError("Not Supported")
        return 412_000

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):  # noqa: N802
        return 700_000

    def nvmlShutdown(self):  # noqa: N802
        self.shut = True


def run_async(test):
    """Run an `async def` test with asyncio.run (no pytest async plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


# --- the dashboard of a run in a Textual app under a pilot --------------------------------------


async def open_finished_run(pilot, run: Path):
    """The dashboard of a finished run, pushed and loaded; returns it."""
    from conftest import wait_until

    from cnn_tui.ui.training.dashboard import RunScreen

    screen = RunScreen(run, live=False)
    await pilot.app.push_screen(screen)
    await wait_until(pilot, lambda: screen.state == "finished")
    return screen


def status_line(screen) -> str:
    """The dashboard's status line as text."""
    from textual.widgets import Static

    return str(screen.query_one("#dash-status", Static).render())


def system_events(
    n: int = 40, *, gpus: int = 2, host: str = "gpu-node-7", start: float = STARTED + 2
) -> list[dict]:
    """`n` "system" events 2 s apart, as the trainer writes them (training/system/reading.py):
    a 16-core host with 64 GiB, one trainer process and `gpus` H100s, GPU 0 running the trainer
    (pid 4321) beside another user's job."""
    events = []
    for i in range(n):
        warm = 1 - math.exp(-i / 8)  # ramps up as the run warms up
        gpu_list = [
            {
                "index": g,
                "name": "NVIDIA H100 80GB HBM3",
                "util_percent": round((90 if g == 0 else 35) * warm + 3 * math.sin(i), 1),
                "memory_used_mb": round(1_000 + (30_000 if g == 0 else 9_000) * warm),
                "memory_total_mb": 81_559.0,
                "temperature_c": round(34 + (30 if g == 0 else 12) * warm),
                "power_w": round(70 + (520 if g == 0 else 160) * warm, 1),
                "power_limit_w": 700.0,
                "processes": [
                    {"pid": 4321, "used_memory_mb": 30_000.0, "name": "python", "trainer": True},
                    {"pid": 777, "used_memory_mb": 1_000.0, "name": "jupyter", "trainer": False},
                ]
                if g == 0
                else [{"pid": 9001, "used_memory_mb": None, "name": None, "trainer": False}],
            }
            for g in range(gpus)
        ]
        events.append(
            {
                "event": "system",
                "time": start + 2 * i,
                "host": host,
                "cpu_percent": round(12 + 40 * warm + 5 * math.sin(i / 2), 1),
                "cpu_count": 16,
                "ram_used": int((9 + 6 * warm) * text.GIB),
                "ram_total": 64 * text.GIB,
                "trainer_rss": int((1.2 + 2.5 * warm) * text.GIB),
                "trainer_cpu_percent": round(100 + 60 * warm, 1),
                "trainer_processes": 1,
                "trainer_scope": "process",
                "gpus": gpu_list,
                **({} if gpus else {"gpu_note": "no NVIDIA GPU found"}),
            }
        )
    return events


def add_system_events(run_dir: Path, events: list[dict]) -> Path:
    """Put `events` into a written run's metrics.jsonl after its run_started event."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1:1] = [json.dumps(event) + "\n" for event in events]
    path.write_text("".join(lines), encoding="utf-8")
    return run_dir
