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
