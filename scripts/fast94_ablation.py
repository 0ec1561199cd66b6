"""Re-run the `fashion-mnist-94` ablation of issue 27 (docs/performance/fast-presets.md).

Each row is one whole `cnn-tui train --no-ui` process (start-up, validation and test included),
timed from outside as the wall seconds of that process, with the test accuracy from the run's
summary.json and the 1-minute load average before and after it. The rows run one at a time with
seed 0, then two rows with seeds 0, 1 and 2 and their medians (the best within about a minute,
and the same for 10 epochs); it prints a Markdown table. Run it on a quiet machine: the docs'
figures were taken on a busy one.

Rows that only change settings run the preset with flags. The others try a change the engine does
not ship (none paid within the minute): a `Variant`, applied in a child process of this script that patches the
engine, then runs the same `cnn-tui train` entry point — a wider or deeper fast-cnn, random
translations after the flips, an exponential moving average of the weights tested at the end.

    python scripts/fast94_ablation.py                 # every row, then the three-seed rows
    python scripts/fast94_ablation.py --seeds-only    # only the three-seed rows
    python scripts/fast94_ablation.py --dry-run       # print the plan, run nothing
    python scripts/fast94_ablation.py --data-dir DIR  # Fashion-MNIST from DIR

About 23 minutes on 2 quiet cores (22 runs of 30-90 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)
CHILD = "--child"  # argv[1] of the child process that applies a Variant


@dataclass(frozen=True)
class Variant:
    """A change the engine does not ship, patched into a child process."""

    widths: tuple[int, int, int, int] | None = None  # fast-cnn's widths (default 16/48/96/96)
    extra_convs: bool = False  # a second conv-BN-ReLU in blocks 2 and 3 (7, 3 px)
    shift: int = 0  # random translation by up to this many px after the flips (reflected border)
    ema: float = 0.0  # test with an EMA of the weights, this decay per step (0: off)


@dataclass(frozen=True)
class Row:
    label: str  # what the row changes, as the docs' table says it
    flags: tuple[str, ...] = ()
    variant: Variant | None = None
    preset: str = "fast-fashion-mnist"


CONVS = Variant(extra_convs=True)
# the ablation, in the docs' order: every row is fast-fashion-mnist (5 epochs) plus the change
ROWS = (
    Row("fast-fashion-mnist as it is"),
    Row("7 epochs", ("--epochs", "7")),
    Row("train on 99 % of the training set (--val-split 0.01)", ("--val-split", "0.01")),
    Row("... and 6 epochs", ("--val-split", "0.01", "--epochs", "6")),
    Row("EMA of the weights (0.99 a step), tested", variant=Variant(ema=0.99)),
    Row("random shifts by up to 2 px", variant=Variant(shift=2)),
    Row("random shifts by up to 2 px, 8 epochs", ("--epochs", "8"), Variant(shift=2)),
    Row(
        "random shifts by up to 1 px, --val-split 0.01, 7 epochs",
        ("--val-split", "0.01", "--epochs", "7"),
        Variant(shift=1),
    ),
    Row("widths 24/64/128/128", variant=Variant(widths=(24, 64, 128, 128))),
    Row("widths 32/64/128/128", variant=Variant(widths=(32, 64, 128, 128))),
    Row("a second conv in blocks 2 and 3", variant=CONVS),
    Row("a second conv in blocks 2 and 3, 7 epochs", ("--epochs", "7"), CONVS),
    *(
        Row(
            f"the candidate (below) with {change}",
            ("--val-split", "0.01", "--epochs", "6", *flags),
            CONVS,
        )
        for change, flags in (
            ("label smoothing 0.2", ("--label-smoothing", "0.2")),
            ("lr 0.2", ("--lr", "0.2")),
            ("batch 64", ("--batch-size", "64")),
        )
    ),
    Row(
        "a second conv in blocks 2 and 3, random shifts by up to 1 px, --val-split 0.01, 10 epochs",
        ("--val-split", "0.01", "--epochs", "10"),
        Variant(extra_convs=True, shift=1),
    ),
)
# the best within about a minute, and the same for 10 epochs: each run with three seeds
CANDIDATE = Row(
    "a second conv in blocks 2 and 3, --val-split 0.01, 6 epochs",
    ("--val-split", "0.01", "--epochs", "6"),
    CONVS,
)
LONGER = Row(
    "a second conv in blocks 2 and 3, --val-split 0.01, 10 epochs",
    ("--val-split", "0.01", "--epochs", "10"),
    CONVS,
)
SEEDED = (CANDIDATE, LONGER)


@dataclass
class Result:
    label: str
    seed: int
    accuracy: float | None = None
    seconds: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    error: str = ""


def command(row: Row, seed: int, run_dir: Path, data_dir: str | None) -> list[str]:
    """The process of one row and seed: `python -m cnn_tui train ...`, or this script as the
    child that applies the row's variant and then runs the same command line."""
    train = ["train", "--no-ui", "--preset", row.preset, *row.flags, "--seed", str(seed)]
    train += ["--run-dir", str(run_dir)]
    if data_dir is not None:
        train += ["--data-dir", data_dir]
    if row.variant is None:
        return [sys.executable, "-m", "cnn_tui", *train]
    variant = json.dumps(asdict(row.variant), separators=(",", ":"))
    return [sys.executable, str(Path(__file__).resolve()), CHILD, variant, *train]


def plan(seeds_only: bool) -> list[tuple[Row, int]]:
    """(row, seed) in the order they run: each row with seed 0, then each of `SEEDED` with the
    three seeds."""
    rows = [] if seeds_only else [(row, 0) for row in ROWS]
    return rows + [(row, seed) for row in SEEDED for seed in SEEDS]


def run_one(row: Row, seed: int, run_dir: Path, data_dir: str | None) -> Result:
    result = Result(row.label, seed, load_before=os.getloadavg()[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    args = command(row, seed, run_dir, data_dir)
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=run_dir.parent)
    result.seconds = time.perf_counter() - started
    result.load_after = os.getloadavg()[0]
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        result.error = lines[-1] if lines else f"exit {done.returncode}"
        return result
    result.accuracy = json.loads((run_dir / "summary.json").read_text())["test_accuracy"]
    return result


def table(results: list[Result]) -> str:
    """The Markdown table of the results, the median of each three-seed row's seeds below it."""
    lines = [
        "| change to fast-fashion-mnist | seed | test accuracy | whole run | load average |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        accuracy = f"{100 * r.accuracy:.2f} %" if r.accuracy is not None else f"failed: {r.error}"
        lines.append(
            f"| {r.label} | {r.seed} | {accuracy} | {r.seconds:.1f} s "
            f"| {r.load_before:.2f} → {r.load_after:.2f} |"
        )
    lines.append("")
    for row in SEEDED:
        seeds = [r for r in results if r.label == row.label and r.accuracy is not None]
        if len(seeds) == len(SEEDS):
            accuracy = statistics.median(r.accuracy for r in seeds)
            seconds = statistics.median(r.seconds for r in seeds)
            lines.append(f"{row.label}: median {100 * accuracy:.2f} % in {seconds:.1f} s")
    return "\n".join(lines)


# --- the child: patch the engine with a variant, then run cnn-tui ---------------------------------


def apply_variant(variant: Variant) -> None:
    """Patch this process's engine as `variant` says (imports torch and the engine)."""
    if variant.widths is not None or variant.extra_convs:
        _patch_model(variant.widths or (16, 48, 96, 96), variant.extra_convs)
    if variant.shift:
        _patch_shifts(variant.shift)
    if variant.ema:
        _patch_ema(variant.ema)


def build_variant_model(
    in_channels: int, num_classes: int, image_size: int, widths: tuple, extra_convs: bool
):
    """fast-cnn with other widths and/or a second conv-BN-ReLU after the pooling
    (airbench's ConvGroup without the residual), channels_last."""
    import torch
    from torch import nn

    from cnn_tui.training.models import fast

    class FastCNNVariant(fast.FlipAveraged):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            c_in = in_channels
            for block, c_out in enumerate(widths[:3]):
                layers += fast._conv_pool_norm(c_in, c_out, nn.ReLU)
                if extra_convs and block > 0:
                    layers += _conv_norm(c_out, c_out)
                c_in = c_out
            layers += _conv_norm(widths[2], widths[3])
            self.features = nn.Sequential(*layers)
            side = image_size // 8
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(widths[3] * side * side, num_classes)
            )

        def logits(self, x):
            return self.classifier(self.features(x))

    def _conv_norm(c_in: int, c_out: int) -> list:
        conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        return [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    return FastCNNVariant().to(memory_format=torch.channels_last)


def _patch_model(widths: tuple, extra_convs: bool) -> None:
    from cnn_tui.training.models import registry

    registry.MODELS["fast-cnn"] = lambda c, k, s, h: build_variant_model(
        c, k, s, widths, extra_convs
    )


def _patch_shifts(shift: int) -> None:
    from cnn_tui.training.data import datasets

    augment = datasets.augment

    def flip_then_shift(batch, mode, generator=None):
        out = augment(batch, mode, generator)
        return datasets.random_crop(out, shift, generator) if mode == "flip" else out

    datasets.augment = flip_then_shift


def _patch_ema(decay: float) -> None:
    """Every 5 steps, average = lerp(average, weights, 1 - decay^5) (a warm-up early on); the
    test pass runs on the average (weights and BatchNorm statistics)."""
    import torch

    from cnn_tui.training.loop import engine

    every, state = 5, {"steps": 0, "average": None}
    step, finish = engine.shared_step, engine._finish

    def tensors(model):
        return [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]

    def averaged_step(s, *args, **kwargs):
        out = step(s, *args, **kwargs)
        state["steps"] += 1
        n = state["steps"]
        if n % every == 0:
            with torch.no_grad():
                current = [t.detach() for t in tensors(s.model)]
                if state["average"] is None:
                    state["average"] = [t.clone() for t in current]
                else:
                    kept = min(decay**every, (1 + n) / (10 + n))
                    torch._foreach_lerp_(state["average"], current, 1 - kept)
        return out

    def finish_on_average(run):
        if state["average"] is not None:
            with torch.no_grad():
                for t, average in zip(tensors(run.s.model), state["average"], strict=True):
                    t.copy_(average)
        return finish(run)

    engine.shared_step, engine._finish = averaged_step, finish_on_average


def child(argv: list[str]) -> None:
    fields = json.loads(argv[0])
    if fields.get("widths") is not None:
        fields["widths"] = tuple(fields["widths"])
    apply_variant(Variant(**fields))
    sys.argv = ["cnn-tui", *argv[1:]]
    from cnn_tui.cli import run

    run()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD]:
        child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-only", action="store_true", help="only the three-seed rows")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--data-dir", help="where Fashion-MNIST is (default: cnn-tui's search)")
    args = parser.parse_args(argv)
    steps = plan(args.seeds_only)
    if args.dry_run:
        for row, seed in steps:
            print(f"{row.label} (seed {seed}):")
            print("   ", " ".join(command(row, seed, Path("RUN_DIR"), args.data_dir)[1:]))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="fast94-") as folder:
        for number, (row, seed) in enumerate(steps):
            result = run_one(row, seed, Path(folder) / f"run-{number:02d}", args.data_dir)
            results.append(result)
            accuracy = f"{100 * result.accuracy:.2f} %" if result.accuracy is not None else "failed"
            print(f"{row.label} (seed {seed}): {accuracy}, {result.seconds:.1f} s", flush=True)
    print()
    print(table(results))
    return 0 if all(r.accuracy is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
