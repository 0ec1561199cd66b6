"""Whole-run mode (`cnn-tui bench --whole-run`): one complete run each — `cnn-tui train --no-ui`
and the seed-style loop (`python -m cnn_tui.commands.reference_loop`) as fresh processes,
start-up, data loading, validation and the test pass included — timed by the wall clock.

For a pretrained model (resnet18, resnet50, vgg16) with a frozen backbone the engine runs with
and without the feature cache.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cnn_tui.bench.common import Note, environment, median, no_notes, ratio, run_timed
from cnn_tui.bench.options import WHOLE_RUN, BenchOptions
from cnn_tui.catalog import is_pretrained

SEED_STYLE = "seed-style loop"  # the row the others are compared with
# the seed-style loop as its own process (its command line lives at the edge)
REFERENCE_LOOP = (sys.executable, "-m", "cnn_tui.commands.reference_loop")


def common_flags(opts: BenchOptions, name: str, size: int | None) -> list[str]:
    """The flags `cnn-tui train` and the seed-style loop share for model `name` at `size` px."""
    flags = [
        "--dataset", opts.dataset,
        "--model", name,
        "--epochs", str(opts.epochs),
        "--batch-size", str(opts.batch_size),
        "--lr", repr(opts.lr),
        "--device", opts.device,
        "--seed", "0",
    ]  # fmt: skip
    if opts.data_dir:
        flags += ["--data-dir", opts.data_dir]
    if size is not None:
        flags += ["--image-size", str(size)]
    if is_pretrained(name):
        flags += ["--weights", "none", "--finetune", opts.finetune]
    if opts.limit:
        flags += ["--limit", str(opts.limit)]
    return flags


def whole_run_commands(
    opts: BenchOptions, name: str, size: int | None, run_dir: Path
) -> list[tuple[str, list[str]]]:
    """(label, argv) of each whole run to time for one model."""
    common = common_flags(opts, name, size)
    engine = [
        sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--json",
        "--optimizer", "adam", "--schedule", "none", "--augment", "none",
        "--amp" if opts.amp else "--no-amp",
        "--channels-last" if opts.channels_last else "--no-channels-last",
        *common,
    ]  # fmt: skip
    reference = [*REFERENCE_LOOP, *common, "--workers", str(opts.workers)]
    variants = [("cnn-tui train", [*engine, "--run-dir", str(run_dir / "engine")])]
    if is_pretrained(name) and opts.finetune == "head":
        variants[0] = ("cnn-tui train (feature cache)", variants[0][1])
        variants.append(
            (
                "cnn-tui train (no cache)",
                [*engine, "--no-cache-features", "--run-dir", str(run_dir / "nocache")],
            )
        )
    variants.append((SEED_STYLE, reference))
    return variants


def _test_accuracy(argv: list[str], stdout: str) -> float | None:
    """The test accuracy of a finished run: from its run directory (`cnn-tui train`) or from
    the last JSON line it printed (the seed-style loop)."""
    if "--run-dir" in argv:
        from cnn_tui.training.runs.store import read_summary

        summary = read_summary(argv[argv.index("--run-dir") + 1]) or {}
        with contextlib.suppress(TypeError, ValueError, KeyError):
            return float(summary["test_accuracy"])
        return None
    for line in reversed(stdout.strip().splitlines()):
        with contextlib.suppress(ValueError, KeyError):
            return float(json.loads(line)["test_accuracy"])
    return None


def whole_run_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Median wall-clock seconds and test accuracy of each whole run; speedup = the seed-style
    loop's seconds / the run's."""
    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(opts.device)  # a bad --device is a usage error before any run
    rows = []
    for name, size in opts.models:
        label = f"{name}@{size}" if size else name
        timings: dict[str, list[float]] = {}
        accuracy: dict[str, float | None] = {}
        for repeat in range(opts.repeats):
            with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as tmp:
                for variant, argv in whole_run_commands(opts, name, size, Path(tmp)):
                    note(f"{label}: {variant} (run {repeat + 1}/{opts.repeats})")
                    seconds, stdout = run_timed(argv)
                    timings.setdefault(variant, []).append(seconds)
                    accuracy[variant] = _test_accuracy(argv, stdout)
        reference = median(timings[SEED_STYLE])
        for variant, runs in timings.items():
            rows.append(
                {
                    "model": name,
                    "image_size": size,
                    "run": variant,
                    "epochs": opts.epochs,
                    "seconds": median(runs),
                    "runs": runs,
                    "test_accuracy": accuracy[variant],
                    "speedup": ratio(reference, median(runs)),
                }
            )
    return {
        "mode": WHOLE_RUN,
        "environment": environment(device),
        "settings": opts.report_settings(),
        "results": rows,
    }
