"""`cnn-tui bench`: images per second of our engine against the seed-style loop, side by side.

Three modes, all headless:

- speed (default): for each model, training and evaluation images/s of
  - the engine — the real code path: `setup.prepare` builds the model, optimizer and batch
    preparation, `engine.train_one_epoch` slices batches from the uint8 data tensor (on the device)
    and `engine.evaluate` runs the large evaluation batches;
  - the seed-style reference (`cnn_tui.bench.reference_loop`): a torchvision-style data set with `ToTensor`
    per image, a `DataLoader` with worker processes, the lecture notes' `train_step` / `test_step`;
  with the same model, batch size and optimiser, warm-up batches first, then `--repeats` timed runs
  of `--batches` batches each; the table quotes medians and the ratio engine / reference.
- `--whole-run`: one complete run each — `cnn-tui train --no-ui` and
  `python -m cnn_tui.bench.reference_loop` as fresh processes, start-up, data loading, validation and the
  test pass included — timed by the wall clock. For a pretrained model (resnet18, resnet50,
  vgg16) with a frozen backbone the engine runs with and without the feature cache.
- `--features`: the tools around training, each a fresh process timed by the wall clock — one
  run on 1 and on 2 data-parallel processes (`--devices 2`), a sweep of 2 runs (`cnn-tui sweep
  --grid lr=...`) against the same 2 runs one after the other, and `cnn-tui inspect` on the
  trained run (feature maps, filters, Grad-CAM of one test image).
- `--startup`: wall-clock seconds of the start-up paths (`--help`, importing torch, the home
  screen painted headless and in tmux), each in a fresh process, medians of `--repeats`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.bench import args as bench_args
from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import atomic_write_text, check_output_path
from cnn_tui.training.config import PRETRAINED_MODELS

SPEED_DEFAULTS = {"batch_size": 128, "batches": 20, "warmup": 3, "repeats": 3}
CPU_BATCHES = 8  # the CPU default: resnet18 at 224 px trains ~20 images/s there
QUICK = {"batch_size": 32, "batches": 3, "warmup": 1, "repeats": 2, "workers": 1}
WHOLE_RUN_BATCH_SIZE = 32  # the lecture notes' batch size


@dataclass
class Options:
    dataset: str
    data_dir: str | None
    models: list[tuple[str, int | None]]
    finetune: str
    batch_size: int
    lr: float
    device: str
    amp: bool
    channels_last: bool
    workers: int
    batches: int | None  # None: 20 on CUDA, CPU_BATCHES on the CPU
    warmup: int
    repeats: int
    quick: bool
    whole_run: bool
    features: bool
    epochs: int
    limit: int | None
    json: str | None


def options_from_args(args: argparse.Namespace) -> Options:
    """Fill in the defaults that depend on the mode (--quick, --whole-run, --features) and the
    device."""
    quick = bool(getattr(args, "quick", False))
    whole = bool(getattr(args, "whole_run", False))
    features = bool(getattr(args, "features", False))
    fresh_processes = whole or features  # whole runs, timed by the wall clock
    settings = bench_args.settings_from_args(args)  # checked by the training settings' Fields
    models = args.models or bench_args.model_list(
        bench_args.QUICK_MODELS if quick or features else bench_args.DEFAULT_MODELS
    )
    defaults = dict(SPEED_DEFAULTS, **(QUICK if quick else {}))
    if fresh_processes:
        defaults["batch_size"] = WHOLE_RUN_BATCH_SIZE
    workers = args.workers
    if workers is None:
        workers = defaults.get("workers", os.cpu_count() or 1)
    return Options(
        dataset=args.dataset,
        data_dir=args.data_dir,
        models=models,
        finetune=args.finetune or ("head" if fresh_processes else "all"),
        batch_size=settings["batch_size"] or defaults["batch_size"],
        lr=settings["lr"],
        device=settings["device"],
        amp=args.amp,
        channels_last=args.channels_last,
        workers=workers,
        batches=args.batches or (QUICK["batches"] if quick else None),
        warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        repeats=args.repeats or defaults["repeats"],
        quick=quick,
        whole_run=whole,
        features=features,
        epochs=settings["epochs"],
        limit=settings["limit"],
        json=args.json,
    )


def run_bench(args: argparse.Namespace) -> int:
    """Entry point of `cnn-tui bench`: measure, print the table (or JSON), write --json FILE."""
    opts = options_from_args(args)
    if opts.json not in (None, "-"):
        check_output_path(opts.json, "--json")
    startup = bool(getattr(args, "startup", False))
    chosen = {"--whole-run": opts.whole_run, "--features": opts.features, "--startup": startup}
    modes = [flag for flag, on in chosen.items() if on]
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} are separate modes: pick one")
    if startup:
        report = startup_report(args.repeats or STARTUP_REPEATS)
    elif opts.features:
        report = features_report(opts)
    elif opts.whole_run:
        report = whole_run_report(opts)
    else:
        report = speed_report(opts)
    text = json.dumps(report, indent=1)
    if opts.json == "-":
        print(text)
    else:
        print(format_report(report))
        if opts.json:
            atomic_write_text(opts.json, text + "\n")
            print(f"written to {opts.json}")
    return 0


def note(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def ratio(ours: float, theirs: float) -> float | None:
    return ours / theirs if theirs > 0 else None


# --- environment ------------------------------------------------------------------------------


def environment(device: Any) -> dict[str, Any]:
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
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


# --- speed mode -------------------------------------------------------------------------------


class _NoLog:
    """Takes the engine's batch events and drops them (the bench times, it does not log)."""

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        return fields


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_config(opts: Options, name: str, size: int | None, native: int) -> Any:
    from cnn_tui.training.config import TrainConfig

    values: dict[str, Any] = {
        "dataset": opts.dataset,
        "model": name,
        "batch_size": opts.batch_size,
        "optimizer": "adam",
        "lr": opts.lr,
        "augment": "none",
        "device": opts.device,
        "amp": opts.amp,
        "channels_last": opts.channels_last,
        "seed": 0,
    }
    if opts.data_dir:
        values["data_dir"] = opts.data_dir
    if size is not None and size != native:
        values["image_size"] = size
    if name in PRETRAINED_MODELS:
        values.update(weights="none", finetune=opts.finetune)
    return TrainConfig.from_mapping(values)


def time_engine(opts: Options, config: Any, device: Any, data: Any) -> dict[str, Any]:
    """Median training and evaluation images/s of the engine's own loop on this config."""
    import threading

    from cnn_tui.training.loop import checkpoints, engine, setup

    s = setup.prepare(config, device, data, weights="none")
    log, stop = _NoLog(), threading.Event()
    available = setup.batches_per_epoch(len(s.train_y), config.batch_size)
    warmup = min(opts.warmup, max(0, available - 1))
    timed = max(1, min(opts.batches, available - warmup))
    n_eval = min(len(s.test_y), timed * config.batch_size)
    train_runs, eval_runs = [], []
    for repeat in range(opts.repeats):
        progress = checkpoints.Progress()
        engine.seed_epoch(s, repeat)
        s.batches = warmup
        engine.train_one_epoch(s, repeat, progress, log, stop)
        s.batches = warmup + timed
        seen_before = progress.seen
        _sync(device)
        started = time.perf_counter()
        engine.train_one_epoch(s, repeat, progress, log, stop)
        _sync(device)
        images = progress.seen - seen_before
        train_runs.append(images / (time.perf_counter() - started))

        engine.evaluate(s, s.test_x[: s.eval_batch_size], s.test_y[: s.eval_batch_size])
        _sync(device)
        started = time.perf_counter()
        engine.evaluate(s, s.test_x[:n_eval], s.test_y[:n_eval])
        _sync(device)
        eval_runs.append(n_eval / (time.perf_counter() - started))
    return {
        "train_images_per_s": median(train_runs),
        "eval_images_per_s": median(eval_runs),
        "train_runs": train_runs,
        "eval_runs": eval_runs,
        "timed_batches": timed,
        "eval_batch_size": s.eval_batch_size,
        "eval_images": n_eval,
        "amp": None if s.amp_dtype is None else str(s.amp_dtype).removeprefix("torch."),
        "channels_last": s.prep.channels_last,
    }


def time_reference(opts: Options, config: Any, device: Any, data: Any) -> dict[str, Any]:
    """Median training and evaluation images/s of the seed-style loop on the same work."""
    import torch
    from torch import nn

    from cnn_tui.bench import reference_loop
    from cnn_tui.training.models import registry as models

    size = config.image_size
    torch.manual_seed(config.seed)
    model = models.build_model(
        config.model,
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=size or data.image_size[0],
        hidden_units=config.hidden_units,
        weights="none",
        finetune=config.finetune,
    ).to(device)
    optimizer = torch.optim.Adam(models.trainable_parameters(model), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    mean, std = data.mean, data.std
    transform = reference_loop.seed_transform(mean, std, size)
    batch = config.batch_size
    train_set = reference_loop.SeedStyleDataset(data.train_x, data.train_y, transform)
    available = len(train_set) // batch
    warmup = min(opts.warmup, max(0, available - 1))
    timed = max(1, min(opts.batches, available - warmup))
    n_eval = min(len(data.test_y), (warmup + timed) * batch)
    test_set = reference_loop.SeedStyleDataset(
        data.test_x[:n_eval], data.test_y[:n_eval], transform
    )
    train_loader = reference_loop.make_loader(train_set, batch, shuffle=True, workers=opts.workers)
    test_loader = reference_loop.make_loader(test_set, batch, shuffle=False, workers=opts.workers)
    eval_warmup = min(warmup, max(0, len(test_loader) - 1))
    eval_timed = len(test_loader) - eval_warmup
    eval_images = n_eval - eval_warmup * batch
    train_runs, eval_runs = [], []
    for _ in range(opts.repeats):
        batches = iter(train_loader)  # starts the worker processes, as every seed epoch does
        reference_loop.train_step(
            model, reference_loop.take(batches, warmup), loss_fn, optimizer, device
        )
        _sync(device)
        started = time.perf_counter()
        reference_loop.train_step(
            model, reference_loop.take(batches, timed), loss_fn, optimizer, device
        )
        _sync(device)
        train_runs.append(timed * batch / (time.perf_counter() - started))
        del batches

        batches = iter(test_loader)
        reference_loop.test_step(model, reference_loop.take(batches, eval_warmup), loss_fn, device)
        started = time.perf_counter()
        reference_loop.test_step(model, reference_loop.take(batches, eval_timed), loss_fn, device)
        _sync(device)
        eval_runs.append(eval_images / (time.perf_counter() - started))
        del batches
    return {
        "train_images_per_s": median(train_runs),
        "eval_images_per_s": median(eval_runs),
        "train_runs": train_runs,
        "eval_runs": eval_runs,
        "timed_batches": timed,
        "eval_batch_size": batch,
        "eval_images": eval_images,
        "workers": opts.workers,
    }


def speed_report(opts: Options) -> dict[str, Any]:
    import torch

    from cnn_tui.training.data import datasets
    from cnn_tui.training.system import host_memory
    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the engine does
    # the engine's allocator settings, for both sides alike (they share this process)
    host_memory.keep_freed_memory()
    if opts.batches is None:
        opts.batches = SPEED_DEFAULTS["batches"] if device.type == "cuda" else CPU_BATCHES
    needed = (opts.warmup + opts.batches) * opts.batch_size
    note(f"loading {opts.dataset}")
    limit = opts.limit
    if opts.quick and limit is None:
        limit = max(needed, 10)
    data = datasets.load_dataset(opts.dataset, opts.data_dir, val_split=0.1, seed=0, limit=limit)
    results = []
    for name, size in opts.models:
        native = data.image_size[0]
        config = bench_config(opts, name, size, native)
        label = f"{name}@{size or native}"
        note(f"{label}: engine")
        ours = time_engine(opts, config, device, data)
        note(f"{label}: seed-style loop ({opts.workers} workers)")
        theirs = time_reference(opts, config, device, data)
        results.append(
            {
                "model": name,
                "image_size": size or native,
                "finetune": config.finetune if name in PRETRAINED_MODELS else None,
                "engine": ours,
                "reference": theirs,
                "ratio": {
                    "train": ratio(ours["train_images_per_s"], theirs["train_images_per_s"]),
                    "eval": ratio(ours["eval_images_per_s"], theirs["eval_images_per_s"]),
                },
            }
        )
    return {
        "mode": "speed",
        "environment": environment(device),
        "settings": settings(opts),
        "results": results,
    }


def settings(opts: Options) -> dict[str, Any]:
    return {
        "dataset": opts.dataset,
        "batch_size": opts.batch_size,
        "optimizer": "adam",
        "lr": opts.lr,
        "amp": opts.amp,
        "channels_last": opts.channels_last,
        "finetune": opts.finetune,
        "workers": opts.workers,
        "batches": opts.batches,
        "warmup": opts.warmup,
        "repeats": opts.repeats,
        "epochs": opts.epochs if opts.whole_run or opts.features else None,
        "limit": opts.limit,
        "quick": opts.quick,
    }


# --- whole-run mode ---------------------------------------------------------------------------


def _common_flags(opts: Options, name: str, size: int | None) -> list[str]:
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
    if name in PRETRAINED_MODELS:
        flags += ["--weights", "none", "--finetune", opts.finetune]
    if opts.limit:
        flags += ["--limit", str(opts.limit)]
    return flags


def whole_run_commands(
    opts: Options, name: str, size: int | None, run_dir: Path
) -> list[tuple[str, list[str]]]:
    """(label, argv) of each whole run to time for one model."""
    common = _common_flags(opts, name, size)
    engine = [
        sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--json",
        "--optimizer", "adam", "--schedule", "none", "--augment", "none",
        "--amp" if opts.amp else "--no-amp",
        "--channels-last" if opts.channels_last else "--no-channels-last",
        *common,
    ]  # fmt: skip
    reference = [sys.executable, "-m", "cnn_tui.bench.reference_loop", *common]
    reference += ["--workers", str(opts.workers)]
    variants = [("cnn-tui train", [*engine, "--run-dir", str(run_dir / "engine")])]
    if name in PRETRAINED_MODELS and opts.finetune == "head":
        variants[0] = ("cnn-tui train (feature cache)", variants[0][1])
        variants.append(
            (
                "cnn-tui train (no cache)",
                [*engine, "--no-cache-features", "--run-dir", str(run_dir / "nocache")],
            )
        )
    variants.append(("seed-style loop", reference))
    return variants


def _run_timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RunError(f"bench: {' '.join(argv[1:4])} ... failed (exit {proc.returncode}): {tail}")
    return seconds, proc.stdout


def _test_accuracy(argv: list[str], stdout: str) -> float | None:
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


def whole_run_report(opts: Options) -> dict[str, Any]:
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
                    seconds, stdout = _run_timed(argv)
                    timings.setdefault(variant, []).append(seconds)
                    accuracy[variant] = _test_accuracy(argv, stdout)
        reference = median(timings["seed-style loop"])
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
        "mode": "whole-run",
        "environment": environment(device),
        "settings": settings(opts),
        "results": rows,
    }


# --- features mode ---------------------------------------------------------------------------

FEATURE_LRS = ("0.001", "0.002")  # the sweep's grid: two runs as long as the plain one


def feature_commands(
    opts: Options, name: str, size: int | None, tmp: Path, parallel: bool = True
) -> list[dict]:
    """Each timed command of --features: label, argv and what it is compared with (`parallel`:
    include the 2-process run)."""
    common = [*_common_flags(opts, name, size), "--optimizer", "adam", "--augment", "none"]
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


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def features_report(opts: Options) -> dict[str, Any]:
    """Median wall-clock seconds of each feature command; × = the baseline's seconds (times
    how many runs the feature does) / the feature's."""
    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(opts.device)  # a bad --device is a usage error before any run
    name, size = opts.models[0]
    parallel = device.type == "cpu" or _gpu_count() >= 2
    if not parallel:
        note("one GPU: the --devices 2 row needs two")
    timings: dict[str, list[float]] = {}
    commands: list[dict] = []
    for repeat in range(opts.repeats):
        with tempfile.TemporaryDirectory(prefix="cnn-tui-bench-") as tmp:
            commands = feature_commands(opts, name, size, Path(tmp), parallel)
            for command in commands:
                note(f"{command['feature']} (run {repeat + 1}/{opts.repeats})")
                seconds, _ = _run_timed(command["argv"])
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
        "mode": "features",
        "environment": environment(device),
        "settings": {**settings(opts), "model": name, "image_size": size},
        "results": rows,
    }


def format_features(report: dict[str, Any]) -> str:
    cfg = report["settings"]
    lines = _header_lines(report)[:1]
    model = cfg["model"] + (f"@{cfg['image_size']}" if cfg["image_size"] else "")
    lines.append(
        f"{model} on {cfg['dataset']}, {cfg['epochs']} epoch(s), batch {cfg['batch_size']}"
        + (f", {cfg['limit']} training images" if cfg["limit"] else "")
        + f"; wall clock of a fresh process each, median of {cfg['repeats']}; × = the "
        "compared seconds / these"
    )
    header = f"{'what':<36} {'seconds':>8}  {'compared with':<22} {'×':>5}"
    lines += [header, "-" * len(header)]
    for row in report["results"]:
        lines.append(
            f"{row['feature']:<36} {row['seconds']:8.1f}  {row['compared_with'] or '':<22} "
            f"{_num(row['speedup'], 2) if row['speedup'] else '':>5}"
        )
    return "\n".join(lines)


# --- start-up mode -----------------------------------------------------------------------------

STARTUP_REPEATS = 5
HOME_SCREEN_MARKER = "home screen painted"
# A child process that starts the app headless (Textual's test driver renders without a terminal)
# and says when the home screen has been composed and painted.
_PAINT_PROBE = """
import argparse, asyncio, sys
from cnn_tui.ui.app import CnnTuiApp
async def main():
    app = CnnTuiApp(argparse.Namespace(command=None, runs_dir=sys.argv[1]))
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


def startup_report(repeats: int) -> dict[str, Any]:
    """Median wall-clock seconds of the start-up paths, each in a fresh process."""
    python = sys.executable
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
        "mode": "startup",
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "settings": {"repeats": repeats},
        "results": results,
    }


def format_startup(report: dict[str, Any]) -> str:
    env, res = report["environment"], report["results"]
    load = env.get("load_average")
    lines = [
        f"start-up, median of {report['settings']['repeats']} fresh processes; python "
        f"{env['python']}, {env['cpu_count']} CPUs"
        + (f", load average {load[0]:.2f}" if load else ""),
    ]
    labels = (
        ("python_seconds", "python -c pass (the floor)"),
        ("help_seconds", "cnn-tui --help"),
        ("home_screen_seconds", "home screen painted (headless driver)"),
        ("home_screen_tmux_seconds", "home screen on a terminal (tmux pane)"),
        ("import_torch_seconds", "import torch, torchvision (for scale)"),
    )
    for key, label in labels:
        if key in res:
            lines.append(f"{label:<42} {res[key]:6.2f} s")
    lines.append(
        f"torch imported by the home screen: {'yes' if res['home_screen_imports_torch'] else 'no'}"
    )
    return "\n".join(lines)


# --- output -----------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _header_lines(report: dict[str, Any]) -> list[str]:
    env, cfg = report["environment"], report["settings"]
    load = env.get("load_average")
    lines = [
        f"device {env['device']} ({env['device_name']}), torch {env['torch']}, torchvision "
        f"{env['torchvision']}, {env['torch_threads']} torch threads, {env['cpu_count']} CPUs"
        + (f", load average {load[0]:.2f}" if load else ""),
        f"data {cfg['dataset']}, batch {cfg['batch_size']}, adam lr {cfg['lr']:g}, --amp "
        f"{'on' if cfg['amp'] else 'off'}, --channels-last {'on' if cfg['channels_last'] else 'off'}"
        f", seed-style loop with {cfg['workers']} DataLoader workers",
    ]
    return lines


def engine_mode(result: dict[str, Any]) -> str:
    """How the engine ran: 'bf16+CL' (autocast and channels_last), 'CL', 'fp32' ..."""
    parts = [result["amp"]] if result.get("amp") else []
    if result.get("channels_last"):
        parts.append("CL")
    return "+".join(parts) or "fp32"


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width table, one row per model (speed) or per run (whole-run)."""
    if report["mode"] == "startup":
        return format_startup(report)
    if report["mode"] == "features":
        return format_features(report)
    lines = _header_lines(report)
    cfg = report["settings"]
    if report["mode"] == "speed":
        lines.append(
            f"images/s, median of {cfg['repeats']} repeats of {cfg['batches']} batches after "
            f"{cfg['warmup']} warm-up batches; × = engine / seed-style; engine in: fp32, CL "
            "(channels_last), bf16/float16 (autocast)"
        )
        header = (
            f"{'model':<12} {'size':>4} {'engine in':<9} {'train engine':>12} {'train seed':>10} "
            f"{'×':>6}  {'eval engine':>11} {'eval seed':>9} {'×':>6}"
        )
        lines += [header, "-" * len(header)]
        for row in report["results"]:
            ours, theirs, times = row["engine"], row["reference"], row["ratio"]
            lines.append(
                f"{row['model']:<12} {row['image_size']:>4} {engine_mode(ours):<9} "
                f"{_num(ours['train_images_per_s']):>12} {_num(theirs['train_images_per_s']):>10} "
                f"{_num(times['train'], 2):>6}  "
                f"{_num(ours['eval_images_per_s']):>11} {_num(theirs['eval_images_per_s']):>9} "
                f"{_num(times['eval'], 2):>6}"
            )
        return "\n".join(lines)
    lines.append(
        f"whole runs of {cfg['epochs']} epoch(s), wall clock of a fresh process each, median of "
        f"{cfg['repeats']}; × = seed-style seconds / these seconds"
    )
    header = f"{'model':<14} {'run':<30} {'seconds':>8} {'test acc':>8} {'×':>6}"
    lines += [header, "-" * len(header)]
    for row in report["results"]:
        label = row["model"] + (f"@{row['image_size']}" if row["image_size"] else "")
        acc = row["test_accuracy"]
        lines.append(
            f"{label:<14} {row['run']:<30} {row['seconds']:8.1f} "
            f"{'-' if acc is None else f'{acc * 100:.2f}%':>8} {_num(row['speedup'], 2):>6}"
        )
    return "\n".join(lines)


__all__ = ["run_bench", "speed_report", "whole_run_report", "startup_report", "format_report"]
