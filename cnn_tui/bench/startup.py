"""Start-up mode (`cnn-tui bench --startup`): wall-clock seconds of the start-up paths
(`--help`, importing torch, the home screen painted headless and in tmux) and of a headless
trainer's start (`cnn-tui train --no-ui`: from the process's start to its first batch event,
with its timeline), each in a fresh process, medians of `repeats`.

The trainer's runs: each of `--models` on `--dataset` (the start-up mode's default: simple-cnn)
and `--preset NAME` if given, with `--data-dir`, `--limit`, `--batch-size` and `--device`. Each
repeat starts the plain command (`start_to_first_batch_s`: its spawn to the first batch event's
own clock, read from the run's metrics.jsonl) and the probe (`cnn_tui.commands.train_probe`: the
same command with a mark at the end of each phase; `phases`: the seconds of each, wall clock and
CPU of the process, every thread). Each process is killed once its first batch event is written.
They run in the current folder, as `cnn-tui train` would (its default ./data, a relative
--data-dir), and write their runs into a temporary folder.

Every start is timed with cnn_tui's bytecode cached (`cache_bytecode`), as after `pip install` or
any earlier start: where PYTHONDONTWRITEBYTECODE is set (this project's CI machines set it) an
editable install would otherwise compile its ~180 modules from source at every start (+0.1 s).

The TUI's figure (Start → the first point on the chart) is `cnn-tui bench --tui`'s
(`cnn_tui.bench.tui_cost`): it needs a whole run followed by the app.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.bench.common import Note, load_average, median, no_notes, run_settings
from cnn_tui.bench.options import STARTUP, BenchOptions
from cnn_tui.bench.timeline import PHASES, PROBE_MARKER, phase_seconds
from cnn_tui.errors import RunError

HOME_SCREEN_MARKER = "home screen painted"
SCALE_IMPORT = "import torch, torchvision"  # timed for scale: what the zoo models load
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


def cache_bytecode(package: Path) -> str:
    """Compile the package's modules into their __pycache__ folders, as `pip install` does, so the
    timed starts read bytecode: "cached", or "compiled at each start" when the folder is not
    writable (or a module in it does not compile)."""
    import compileall

    ok = compileall.compile_dir(package, quiet=2, workers=1)
    return "cached" if ok else "compiled at each start"


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


# --- the trainer's start: `cnn-tui train --no-ui` to its first batch event ---------------------

TRAIN_TIMEOUT_S = 600.0  # a trainer that has not trained a batch by then is a failure
POLL_S = 0.02  # how often metrics.jsonl is looked at (the event's own clock is what is timed)


@dataclass(frozen=True)
class TrainerRun:
    """One trainer whose start is timed: `cnn-tui train --no-ui FLAGS`, its settings given as
    `flags` and, when `config` is not empty, a --config file holding that TOML text."""

    label: str
    flags: tuple[str, ...]
    config: str = ""

    def argv(self, folder: Path, run_dir: Path) -> list[str]:
        """The command's arguments (after `cnn-tui`), its --config file written into `folder`."""
        flags = list(self.flags)
        if self.config:
            config_file = folder / "config.toml"
            config_file.write_text(self.config, encoding="utf-8")
            flags = ["--config", str(config_file), *flags]
        return ["train", "--no-ui", *flags, "--run-dir", str(run_dir)]

    def shown(self) -> str:
        """The command as a report shows it."""
        return " ".join(["cnn-tui train --no-ui", *(["--config FILE"] if self.config else []),
                         *self.flags])  # fmt: skip


def train_runs(opts: BenchOptions) -> list[TrainerRun]:
    """The trainers timed: each of --models on --dataset (its settings as a --config file), then
    --preset if given (with --device, --data-dir, --limit)."""
    from cnn_tui.training.config import TrainConfig

    runs = []
    for spec in opts.models:
        config = TrainConfig.from_mapping(run_settings(opts, spec))
        label = config.model + (f"@{spec[1]}" if spec[1] else "") + f" on {config.dataset}"
        runs.append(TrainerRun(label, (), config.to_toml()))
    if opts.preset is not None:
        flags = ["--preset", opts.preset, "--device", opts.device]
        if opts.data_dir:
            flags += ["--data-dir", opts.data_dir]
        if opts.limit:
            flags += ["--limit", str(opts.limit)]
        runs.append(TrainerRun(f"preset {opts.preset}", tuple(flags)))
    return runs


def _first_batch_time(run_dir: Path) -> float | None:
    """The clock of the first batch event in the run's metrics.jsonl, if it is there yet."""
    from cnn_tui.training.runs.store import read_all_events

    for event in read_all_events(run_dir)[0]:
        if event.get("event") == "batch":
            return float(event["time"])
    return None


def _failed(what: str, proc: subprocess.Popen, stderr_file: Path) -> RunError:
    lines = stderr_file.read_text(errors="replace").strip().splitlines() or ["no output"]
    return RunError(f"bench --startup: {what} failed (exit {proc.returncode}): {lines[-1]}")


def time_trainer(argv: list[str], folder: Path, run_dir: Path) -> float:
    """Seconds from spawning `cnn-tui ARGV` (a trainer writing into `run_dir`) to its first
    batch event; the process is killed then."""
    stderr_file = folder / "stderr.txt"
    with stderr_file.open("w") as stderr:
        spawned = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnn_tui", *argv],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        while (first := _first_batch_time(run_dir)) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise _failed("cnn-tui train --no-ui", proc, stderr_file)
            time.sleep(POLL_S)
        return first - spawned
    finally:
        proc.kill()
        proc.wait()


def probe_trainer(argv: list[str], folder: Path) -> list[tuple[str, float, float]]:
    """The phases of a trainer's start (`train_probe`): (phase, wall seconds, CPU seconds) of
    each, from spawning the process; the probe leaves at its first batch event."""
    stderr_file = folder / "probe-stderr.txt"
    with stderr_file.open("w") as stderr:
        spawned = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "cnn_tui.commands.train_probe", *argv[1:]],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=TRAIN_TIMEOUT_S,
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(PROBE_MARKER)]
    if proc.returncode != 0 or not lines:
        raise _failed("the trainer's probe (cnn_tui.commands.train_probe)", proc, stderr_file)
    marks = json.loads(lines[-1].removeprefix(PROBE_MARKER))
    return phase_seconds(spawned, marks)


def trainer_report(opts: BenchOptions, note: Note = no_notes) -> list[dict[str, Any]]:
    """For each trainer of `train_runs`: the medians of `opts.repeats` fresh processes (start to
    the first batch event; each phase of the probe's timeline) and each repeat's figures."""
    rows = []
    for run in train_runs(opts):
        starts: list[float] = []
        timelines: list[list[tuple[str, float, float]]] = []
        for repeat in range(opts.repeats):
            note(f"train --no-ui ({run.label}), round {repeat + 1}/{opts.repeats}")
            with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as name:
                folder = Path(name)
                run_dir = folder / "run"
                starts.append(time_trainer(run.argv(folder, run_dir), folder, run_dir))
                timelines.append(probe_trainer(run.argv(folder, folder / "probe"), folder))
        phases = []
        for phase in PHASES:
            timed = [(wall, cpu) for timeline in timelines for name, wall, cpu in timeline
                     if name == phase]  # fmt: skip
            if timed:
                phases.append({
                    "phase": phase,
                    "seconds": median([wall for wall, _ in timed]),
                    "cpu_seconds": median([cpu for _, cpu in timed]),
                })  # fmt: skip
        rows.append({
            "run": run.label,
            "command": run.shown(),
            "start_to_first_batch_s": median(starts),
            "probe_start_to_first_batch_s": median([sum(p[1] for p in t) for t in timelines]),
            "phases": phases,
            "runs": {"start_to_first_batch_s": starts, "timelines": timelines},
        })  # fmt: skip
    return rows


def startup_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Median wall-clock seconds of the start-up paths, each in a fresh process, `opts.repeats`
    rounds; then the trainers' starts (`trainer_report`: the runs that --models, --dataset,
    --preset and the other training settings ask for)."""
    import cnn_tui

    python, repeats = sys.executable, opts.repeats
    bytecode = cache_bytecode(Path(cnn_tui.__file__).parent)
    load_before = load_average()
    samples: dict[str, list[float]] = {}
    torch_loaded = torchvision_failed = False
    with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as runs_dir:
        for repeat in range(repeats):
            note(f"start-up, round {repeat + 1}/{repeats}")
            timings = {
                "python_seconds": _wall([python, "-c", "pass"])[0],
                "help_seconds": _wall([python, "-m", "cnn_tui", "--help"])[0],
                "import_torch_only_seconds": _wall([python, "-c", "import torch"])[0],
            }
            try:  # (for scale only: a torchvision that does not match torch fails its import)
                timings["import_torch_seconds"] = _wall([python, "-c", SCALE_IMPORT])[0]
            except RunError:
                torchvision_failed = True
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
    if torchvision_failed:
        results["import_torchvision_failed"] = True
    results["trainers"] = trainer_report(opts, note)
    return {
        "mode": STARTUP,
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average": load_average(),
            "bytecode": bytecode,
        },
        "settings": {"repeats": repeats, "runs": [run.label for run in train_runs(opts)]},
        "results": results,
    }
