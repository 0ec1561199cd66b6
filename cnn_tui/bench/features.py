"""Features mode (`cnn-tui bench --features`): the tools around training, each a fresh process
timed by the wall clock — one run on 1 and on 2 data-parallel processes (`--devices 2`), a sweep
of 2 runs (`cnn-tui sweep --grid lr=...`) against the same 2 runs one after the other, and
`cnn-tui inspect` on the trained run (feature maps, filters, Grad-CAM of one test image).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from cnn_tui.bench.common import Note, environment, median, no_notes, ratio, run_timed
from cnn_tui.bench.options import FEATURES, BenchOptions
from cnn_tui.bench.whole_run import common_flags
from cnn_tui.training.system import devices

FEATURE_LRS = ("0.001", "0.002")  # the sweep's grid: two runs as long as the plain one


def feature_commands(
    opts: BenchOptions, name: str, size: int | None, tmp: Path, parallel: bool = True
) -> list[dict]:
    """Each timed command of --features: label, argv and what it is compared with (`parallel`:
    include the 2-process run)."""
    common = [*common_flags(opts, name, size), "--optimizer", "adam", "--augment", "none"]
    run = tmp / "one"
    train = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", *common]
    at = common.index("--lr")  # the grid gives the sweep's learning rates
    sweep = [
        sys.executable, "-m", "cnn_tui", "sweep", "--no-ui", *common[:at], *common[at + 2 :],
        "--grid", f"lr={','.join(FEATURE_LRS)}", "--run-dir", str(tmp / "sweep"),
    ]  # fmt: skip
    inspect = [
        sys.executable, "-m", "cnn_tui", "inspect", str(run), "--no-ui", "--test-index", "0",
        "--device", opts.device, "--json", str(tmp / "inside.json"),
    ]  # fmt: skip
    two = {
        "feature": "train, --devices 2 (data-parallel)",
        "argv": [*train, "--devices", "2", "--run-dir", str(tmp / "two")],
        "baseline": "train, 1 process",
    }
    return [
        {"feature": "train, 1 process", "argv": [*train, "--run-dir", str(run)]},
        *([two] if parallel else []),
        {
            "feature": f"sweep of {len(FEATURE_LRS)} runs",
            "argv": sweep,
            "baseline": "train, 1 process",
            "baseline_times": len(FEATURE_LRS),
        },
        {"feature": "inspect one test image", "argv": inspect},
    ]


def features_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Median wall-clock seconds of each feature command; × = the baseline's seconds (times
    how many runs the feature does) / the feature's."""
    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(opts.device)  # a bad --device is a usage error before any run
    name, size = opts.models[0]
    parallel = device.type == "cpu" or devices.gpu_count() >= 2
    if not parallel:
        note("one GPU: the --devices 2 row needs two")
    timings: dict[str, list[float]] = {}
    commands: list[dict] = []
    for repeat in range(opts.repeats):
        with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as tmp:
            commands = feature_commands(opts, name, size, Path(tmp), parallel)
            for command in commands:
                note(f"{command['feature']} (run {repeat + 1}/{opts.repeats})")
                seconds, _ = run_timed(command["argv"])
                timings.setdefault(command["feature"], []).append(seconds)
    rows = []
    for command in commands:
        seconds = median(timings[command["feature"]])
        row = {
            "feature": command["feature"],
            "seconds": seconds,
            "runs": timings[command["feature"]],
            "compared_with": None,
            "speedup": None,
        }
        if "baseline" in command:
            times = command.get("baseline_times", 1)
            row["compared_with"] = command["baseline"] + (f" × {times}" if times > 1 else "")
            row["speedup"] = ratio(median(timings[command["baseline"]]) * times, seconds)
        rows.append(row)
    return {
        "mode": FEATURES,
        "environment": environment(device),
        "settings": {**opts.report_settings(), "model": name, "image_size": size},
        "results": rows,
    }
