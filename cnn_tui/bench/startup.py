"""Start-up mode (`cnn-tui bench --startup`): wall-clock seconds of the start-up paths
(`--help`, importing torch, the home screen painted headless and in tmux), each in a fresh
process, medians of `repeats`."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

from cnn_tui.bench.common import Note, load_average, median, no_notes
from cnn_tui.bench.options import STARTUP, BenchOptions
from cnn_tui.errors import RunError

HOME_SCREEN_MARKER = "home screen painted"
# A child process that starts the app headless (Textual's test driver renders without a terminal)
# and says when the home screen has been composed and painted.
_PAINT_PROBE = """
import asyncio, sys
from cnn_tui.ui.app import CnnTuiApp
async def main():
    app = CnnTuiApp(runs_dir=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "HomeScreen"
        print("home screen painted", "torch" in sys.modules, flush=True)
asyncio.run(main())
"""


def _wall(argv: list[str], marker: str | None = None) -> tuple[float, str]:
    """Seconds from starting `argv` until it exits (or prints a line starting with `marker`)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    if marker is not None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                break
        seconds = time.perf_counter() - started
        proc.communicate()
    else:
        proc.communicate()
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RunError(f"bench: {' '.join(argv[:4])} ... failed (exit {proc.returncode})")
    return seconds, line


def _tmux_paint_seconds(runs_dir: str) -> float | None:
    """Seconds until a real terminal (a tmux pane) shows the home screen; None without tmux."""
    import shutil

    if shutil.which("tmux") is None:
        return None
    session = f"cnn-tui-bench-{os.getpid()}"
    command = f"{sys.executable} -m cnn_tui --runs-dir {runs_dir}"
    started = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
    )
    try:
        while time.perf_counter() - started < 30:
            pane = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if "Convolution lesson" in pane:
                return time.perf_counter() - started
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def startup_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Median wall-clock seconds of the start-up paths, each in a fresh process, `opts.repeats`
    rounds (nothing else of `opts` applies)."""
    python, repeats = sys.executable, opts.repeats
    samples: dict[str, list[float]] = {}
    torch_loaded = False
    with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as runs_dir:
        for repeat in range(repeats):
            note(f"start-up, round {repeat + 1}/{repeats}")
            timings = {
                "python_seconds": _wall([python, "-c", "pass"])[0],
                "help_seconds": _wall([python, "-m", "cnn_tui", "--help"])[0],
                "import_torch_seconds": _wall([python, "-c", "import torch, torchvision"])[0],
            }
            seconds, line = _wall([python, "-c", _PAINT_PROBE, runs_dir], HOME_SCREEN_MARKER)
            timings["home_screen_seconds"] = seconds
            torch_loaded = torch_loaded or line.strip().endswith("True")
            tmux = _tmux_paint_seconds(runs_dir)
            if tmux is not None:
                timings["home_screen_tmux_seconds"] = tmux
            for key, value in timings.items():
                samples.setdefault(key, []).append(value)
    results: dict[str, Any] = {key: median(values) for key, values in samples.items()}
    results["runs"] = samples
    results["home_screen_imports_torch"] = torch_loaded
    return {
        "mode": STARTUP,
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": load_average(),
        },
        "settings": {"repeats": repeats},
        "results": results,
    }
