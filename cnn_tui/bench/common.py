"""What every benchmark shares: medians and ratios, the machine it ran on, progress notes, and a
command timed by the wall clock in a fresh process."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from cnn_tui.bench.options import BenchOptions, ModelSpec
from cnn_tui.errors import RunError

# Progress as the benchmark goes ("loading shapes", "simple-cnn@32: engine"): the command shows
# it; the core only says it.
Note = Callable[[str], None]


def no_notes(text: str) -> None:
    """A `Note` that keeps quiet."""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def ratio(ours: float, theirs: float) -> float | None:
    return ours / theirs if theirs > 0 else None


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def environment(device: Any) -> dict[str, Any]:
    """The device, the library versions and how busy the machine was."""
    import torch
    import torchvision

    from cnn_tui.training.system.devices import device_name

    env = {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def run_timed(argv: list[str]) -> tuple[float, str]:
    """Wall-clock seconds of `argv` as a fresh process, and its stdout; a failure is a RunError."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RunError(f"bench: {' '.join(argv[1:4])} ... failed (exit {proc.returncode}): {tail}")
    return seconds, proc.stdout


def run_settings(opts: BenchOptions, spec: ModelSpec) -> dict[str, Any]:
    """The settings of a `cnn-tui train` run of model `spec` as bench's flags ask for it (a
    `TrainConfig` mapping): the data set, epochs, batch, learning rate, device, engine switches,
    the data folder and limit when given; a pretrained model from scratch, all of it trained."""
    from cnn_tui.catalog import is_pretrained

    name, size = spec
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
