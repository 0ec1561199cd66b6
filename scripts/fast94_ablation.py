"""Re-run the `fashion-mnist-94` ablation of issue 27 (docs/performance/fast-presets.md).

Each row is one whole `cnn-tui train --no-ui` process (start-up, validation and test included),
timed from outside as the wall seconds of that process, with the test accuracy from the run's
summary.json and the 1-minute load average before and after it. The rows run one at a time with
seed 0, then five rows with seeds 0, 1 and 2 and their medians (the best within about a minute
in the first round, the same for 10 epochs, and the second round's three best); it prints a
Markdown table. Run it on a quiet machine: the docs' figures were taken on a busy one.

Rows that only change settings run the preset with flags. The others try a change the engine does
not ship (none paid within the minute): a `Variant`, applied in a child process of this script
that patches the engine, then runs the same `cnn-tui train` entry point. The first round: a wider
or deeper fast-cnn, random translations after the flips, an exponential moving average of the
weights tested at the end. The second, on top of the deeper one (the candidate): residual second
convs and GELU, a last pooling that keeps the 7th row and column, Lookahead, a triangular
schedule, the weight gradient of the 3 px convs as one matmul, cutout, dropout, a larger
whitening conv, identity init, two convs at 14 px, narrower widths with more epochs. The third,
on the narrower one with 9 epochs: alternating flips, a hidden layer, more weight decay, Muon, a last epoch without flips.

    python scripts/fast94_ablation.py                 # every row, then the three-seed rows
    python scripts/fast94_ablation.py --seeds-only    # only the three-seed rows
    python scripts/fast94_ablation.py --dry-run       # print the plan, run nothing
    python scripts/fast94_ablation.py --seeds-only --rows "64/64, 9 epochs"   # one row's seeds
    python scripts/fast94_ablation.py --data-dir DIR  # Fashion-MNIST from DIR

About an hour and a half on 2 quiet cores (68 runs of 30-90 s).
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
from dataclasses import asdict, dataclass, replace
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
    residual: bool = False  # the second convs (extra_convs) add their input back (airbench96)
    activation: str = "relu"  # or "gelu"
    keep_edge: bool = False  # pool 7 -> 4 px (ceil_mode) instead of 7 -> 3, dropping nothing
    whiten: tuple[int, int] | None = None  # the whitening conv's (filters, kernel size)
    dropout: float = 0.0  # before the classifier
    lookahead: bool = False  # airbench94's Lookahead: every 5 steps, fast weights -> slow average
    warmup: float = 0.0  # one-cycle with this warm-up fraction and a linear decay (0: the engine's)
    im2col: bool = False  # the convs at 3x3 px get their weight gradient from one matmul
    cutout: int = 0  # after the flips, black out a random square of this side in half the images
    dirac: bool = (
        False  # airbench's init: each trained conv's first c_in filters pass their input on
    )
    wide14: int = 0  # block 2 as two convs at 14 px (16 -> wide14 -> 48 filters), then pooling
    hidden: int = 0  # a hidden layer of this many units (ReLU) before the classifier (0: none)
    alt_flip: bool = False
    plain_last: int = 0  # the last this many epochs train on the images as they are (no flips)
    muon: float = 0.0  # Muon (orthogonalised momentum) for the trained convs at this peak lr
    muon_momentum: float = 0.6  # its momentum (Nesterov), as airbench94_muon's  # airbench's alternating flip: each image flipped every other epoch


@dataclass(frozen=True)
class Row:
    label: str  # what the row changes, as the docs' table says it
    flags: tuple[str, ...] = ()
    variant: Variant | None = None
    preset: str = "fast-fashion-mnist"


CONVS = Variant(extra_convs=True)
SIX = ("--val-split", "0.01", "--epochs", "6")  # the candidate's settings (below)
FAST = Variant(extra_convs=True, im2col=True)  # the candidate, the same numbers sooner
EDGE = Variant(extra_convs=True, im2col=True, keep_edge=True)
NARROW = Variant(widths=(16, 48, 64, 64), extra_convs=True, im2col=True, keep_edge=True)
EIGHT = ("--val-split", "0.01", "--epochs", "8")  # the narrower one's settings (below)
# the second round (issue 27 again): every row is the candidate (6 epochs) plus the change
SECOND_ROUND = (
    Row(
        "the candidate with residual second convs and GELU (airbench96's ConvGroup)",
        SIX,
        Variant(extra_convs=True, residual=True, activation="gelu"),
    ),
    Row(
        "the candidate with batch 64 and lr 0.2", (*SIX, "--batch-size", "64", "--lr", "0.2"), CONVS
    ),
    Row(
        "the candidate with the last pooling 7 -> 4 px",
        SIX,
        Variant(extra_convs=True, keep_edge=True),
    ),
    Row("the candidate with Lookahead", SIX, Variant(extra_convs=True, lookahead=True)),
    Row(
        "the candidate with 20 % warm-up, linear decay", SIX, Variant(extra_convs=True, warmup=0.2)
    ),
    Row("the candidate with the 3 px convs' weight gradient as a matmul", SIX, FAST),
    Row("... and cutout 10 px", SIX, Variant(extra_convs=True, im2col=True, cutout=10)),
    Row("... and dropout 0.25", SIX, Variant(extra_convs=True, im2col=True, dropout=0.25)),
    Row(
        "... and whitening with 24 filters 5x5",
        SIX,
        Variant(extra_convs=True, im2col=True, whiten=(24, 5)),
    ),
    Row("... and identity (dirac) init", SIX, Variant(extra_convs=True, im2col=True, dirac=True)),
    Row(
        "... and two convs at 14 px (32, 48)",
        SIX,
        Variant(extra_convs=True, im2col=True, wide14=32),
    ),
    Row("... and the last pooling 7 -> 4 px", SIX, EDGE),
    Row("... and the last pooling 7 -> 4 px, lr 0.2", (*SIX, "--lr", "0.2"), EDGE),
    *(
        Row(
            f"... and the last pooling 7 -> {4 if edge else 3} px, widths "
            f"{'/'.join(map(str, widths))}, {epochs} epochs",
            ("--val-split", "0.01", "--epochs", str(epochs)),
            Variant(widths=widths, extra_convs=True, im2col=True, keep_edge=edge),
        )
        for widths, edge, epochs in (
            ((16, 48, 48, 48), True, 10),
            ((16, 48, 64, 64), False, 9),
            ((16, 32, 48, 48), True, 12),
            ((16, 48, 64, 64), False, 10),
            ((16, 48, 80, 80), True, 7),
        )
    ),
    Row("the narrower one (below) with lr 0.2", (*EIGHT, "--lr", "0.2"), NARROW),
    Row(
        "the narrower one (below) with batch 256 and lr 0.2, 9 epochs",
        ("--val-split", "0.01", "--epochs", "9", "--batch-size", "256", "--lr", "0.2"),
        NARROW,
    ),
    Row(
        "the narrower one (below) with Lookahead",
        EIGHT,
        Variant(
            widths=(16, 48, 64, 64), extra_convs=True, im2col=True, keep_edge=True, lookahead=True
        ),
    ),
)
NINE = ("--val-split", "0.01", "--epochs", "9")  # the second round's re-timed best
# the third round (issue 27, once more): the narrower one with 9 epochs plus the change
THIRD_ROUND = (
    Row(
        "the narrower one, 9 epochs, with weight decay 1e-3",
        (*NINE, "--weight-decay", "1e-3"),
        NARROW,
    ),
    *(
        Row(
            f"the narrower one, 9 epochs, with Muon for the convs at lr {lr}, momentum {momentum}",
            NINE,
            replace(NARROW, muon=lr, muon_momentum=momentum),
        )
        for lr, momentum in ((0.03, 0.6), (0.08, 0.6), (0.2, 0.6), (0.08, 0.9))
    ),
    Row(
        "the narrower one, 9 epochs, the last without flips",
        NINE,
        replace(NARROW, plain_last=1),
    ),
    Row(
        "the narrower one, 9 epochs, with weight decay 2e-3",
        (*NINE, "--weight-decay", "2e-3"),
        NARROW,
    ),
)
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
    *SECOND_ROUND,
    *THIRD_ROUND,
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
# the second round's best at about the minute (est. 60 s)
AT_THE_MINUTE = Row(
    "the candidate, its 3 px convs' weight gradient as a matmul, the last pooling 7 -> 4 px, "
    "7 epochs",
    ("--val-split", "0.01", "--epochs", "7"),
    EDGE,
)
# ... and narrower, with an eighth epoch: the best within the minute
NARROWER = Row(
    "the candidate, its 3 px convs' weight gradient as a matmul, the last pooling 7 -> 4 px, "
    "widths 16/48/64/64, 8 epochs",
    EIGHT,
    NARROW,
)
# ... and its sibling with 32 filters at 14 px and 10 epochs
NARROWEST = Row(
    "the candidate, its 3 px convs' weight gradient as a matmul, the last pooling 7 -> 4 px, "
    "widths 16/32/64/64, 10 epochs",
    ("--val-split", "0.01", "--epochs", "10"),
    Variant(widths=(16, 32, 64, 64), extra_convs=True, im2col=True, keep_edge=True),
)
# the third round's three-seed rows: the narrower one with 9 epochs, as it is and with a change
NINE_EPOCHS = Row(
    "the candidate, its 3 px convs' weight gradient as a matmul, the last pooling 7 -> 4 px, "
    "widths 16/48/64/64, 9 epochs",
    NINE,
    NARROW,
)
ALTERNATING = Row(
    "the narrower one, 9 epochs, with alternating flips", NINE, replace(NARROW, alt_flip=True)
)
HIDDEN = Row(
    "the narrower one, 9 epochs, with a hidden layer of 128 units",
    NINE,
    replace(NARROW, hidden=128),
)
SEEDED = (CANDIDATE, LONGER, AT_THE_MINUTE, NARROWER, NARROWEST, NINE_EPOCHS, ALTERNATING, HIDDEN)


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


def plan(seeds_only: bool, matching: str = "") -> list[tuple[Row, int]]:
    """(row, seed) in the order they run: each row with seed 0, then each of `SEEDED` with the
    three seeds; only the rows whose label holds `matching`, when given."""
    rows = [] if seeds_only else [(row, 0) for row in ROWS]
    steps = rows + [(row, seed) for row in SEEDED for seed in SEEDS]
    return [(row, seed) for row, seed in steps if matching in row.label]


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


MODEL_FIELDS = (
    "widths", "extra_convs", "residual", "activation", "keep_edge", "whiten", "dropout", "im2col",
    "dirac", "wide14", "hidden",
)  # fmt: skip


def apply_variant(variant: Variant) -> None:
    """Patch this process's engine as `variant` says (imports torch and the engine)."""
    options = {name: getattr(variant, name) for name in MODEL_FIELDS}
    if options != {name: getattr(Variant(), name) for name in MODEL_FIELDS}:
        _patch_model(options)
    if variant.shift:
        _patch_shifts(variant.shift)
    if variant.cutout:
        _patch_cutout(variant.cutout)
    if variant.ema:
        _patch_ema(variant.ema)
    if variant.lookahead:
        _patch_lookahead()
    if variant.warmup:
        _patch_schedule(variant.warmup)
    if variant.alt_flip:
        _patch_alternating_flip()
    if variant.muon:
        _patch_muon(variant.muon, variant.muon_momentum)
    if variant.plain_last:
        _patch_plain_last(variant.plain_last)


def small_map_conv_class():
    """A 3x3 conv (padding 1, no bias) for maps of a few pixels, whose weight gradient is one
    im2col matmul: oneDNN's bf16 weight gradient at 3x3 px took 1.9 ms of a 27 ms step, the
    matmul 0.6 ms (96 -> 96 filters, batch 128, one thread)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return F.conv2d(x, w, padding=1)

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            grad = grad.contiguous(memory_format=torch.channels_last)
            grad_x = grad_w = None
            if ctx.needs_input_grad[0]:
                grad_x = torch.ops.aten.convolution_backward(
                    grad, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                    [True, False, False],
                )[0]  # fmt: skip
            if ctx.needs_input_grad[1]:
                n, c, h, width = x.shape
                padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
                shifts = [padded[:, i : i + h, j : j + width] for i in range(3) for j in range(3)]
                columns = torch.cat(shifts, -1).reshape(-1, 9 * c)
                rows = grad.permute(0, 2, 3, 1).reshape(-1, w.shape[0])
                grad_w = (rows.T @ columns).view(-1, 3, 3, c).permute(0, 3, 1, 2)
            return grad_x, grad_w

    class SmallMapConv(nn.Conv2d):
        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__(c_in, c_out, kernel_size=3, padding=1, bias=False)

        def forward(self, x):
            w = self.weight
            if torch.is_autocast_enabled(x.device.type):
                dtype = torch.get_autocast_dtype(x.device.type)
                x, w = x.to(dtype), w.to(dtype)
            with torch.autocast(x.device.type, enabled=False):
                return _Function.apply(x, w)

    return SmallMapConv


def build_variant_model(
    in_channels: int,
    num_classes: int,
    image_size: int,
    widths: tuple | None = None,
    extra_convs: bool = False,
    *,
    residual: bool = False,
    activation: str = "relu",
    keep_edge: bool = False,
    whiten: tuple[int, int] | None = None,
    dropout: float = 0.0,
    im2col: bool = False,
    dirac: bool = False,
    wide14: int = 0,
    hidden: int = 0,
):
    """fast-cnn with other widths and/or a second conv-BN-ReLU after the pooling of blocks 2 and
    3 (airbench's ConvGroup; with `residual`, added to its input as airbench96's), GELU instead
    of ReLU, a last pooling that keeps the 7th row and column (7 -> 4 px), another whitening conv,
    dropout before the classifier; channels_last."""
    import torch
    from torch import nn

    from cnn_tui.training.models import fast

    SmallMapConv = small_map_conv_class()
    widths = tuple(widths or fast.FAST_CNN_WIDTHS)
    filters, kernel = whiten or (widths[0], 3)

    def act() -> nn.Module:
        return nn.GELU() if activation == "gelu" else nn.ReLU(inplace=True)

    def conv_norm(c_in: int, c_out: int, small: bool = False) -> list:
        if small and im2col:
            conv = SmallMapConv(c_in, c_out)
        else:
            conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        return [conv, nn.BatchNorm2d(c_out), act()]

    class Residual(nn.Module):
        def __init__(self, body: list) -> None:
            super().__init__()
            self.body = nn.Sequential(*body)

        def forward(self, x):
            return x + self.body(x)

    class FastCNNVariant(fast.FlipAveraged):
        def __init__(self) -> None:
            super().__init__()
            first = nn.Conv2d(in_channels, filters, kernel, padding=kernel // 2, bias=False)
            layers: list[nn.Module] = [first]
            c_in, side = filters, image_size
            for block, c_out in enumerate((filters, *widths[1:3])):
                if block == 1 and wide14:
                    layers += conv_norm(c_in, wide14)
                    c_in = wide14
                if block > 0:
                    layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))
                ceil = keep_edge and block == 2
                layers += [nn.MaxPool2d(2, ceil_mode=ceil), nn.BatchNorm2d(c_out), act()]
                side = -(-side // 2) if ceil else side // 2
                if extra_convs and block > 0:
                    second = conv_norm(c_out, c_out, small=block == 2)
                    layers += [Residual(second)] if residual else second
                c_in = c_out
            layers += conv_norm(widths[2], widths[3], small=True)
            self.features = nn.Sequential(*layers)
            head: list[nn.Module] = [nn.Flatten()]
            if dropout:
                head.append(nn.Dropout(dropout))
            features = widths[3] * side * side
            if hidden:
                head += [nn.Linear(features, hidden), nn.ReLU(inplace=True)]
                features = hidden
            head.append(nn.Linear(features, num_classes))
            self.classifier = nn.Sequential(*head)

        def logits(self, x):
            return self.classifier(self.features(x))

    model = FastCNNVariant()
    if dirac:
        with torch.no_grad():
            for conv in [m for m in model.features.modules() if isinstance(m, nn.Conv2d)][1:]:
                nn.init.dirac_(conv.weight[: conv.in_channels])
    return model.to(memory_format=torch.channels_last)


def _patch_model(options: dict) -> None:
    from cnn_tui.training.models import registry

    registry.MODELS["fast-cnn"] = lambda c, k, s, h: build_variant_model(c, k, s, **options)


def _patch_shifts(shift: int) -> None:
    from cnn_tui.training.data import datasets

    augment = datasets.augment

    def flip_then_shift(batch, mode, generator=None):
        out = augment(batch, mode, generator)
        return datasets.random_crop(out, shift, generator) if mode == "flip" else out

    datasets.augment = flip_then_shift


def _patch_cutout(side: int) -> None:
    """Cutout (DeVries & Taylor 2017) after the flips: in each image with probability 1/2, a
    side x side square around a random pixel (clipped at the border) set to 0, the background."""
    import torch

    from cnn_tui.training.data import datasets

    augment = datasets.augment

    def flip_then_cutout(batch, mode, generator=None):
        out = augment(batch, mode, generator)
        if mode != "flip":
            return out
        n, _, height, width = out.shape
        draws = torch.rand(n, 3, generator=generator, device=out.device)
        cy = (draws[:, 0] * height).long()[:, None, None]
        cx = (draws[:, 1] * width).long()[:, None, None]
        rows = torch.arange(height, device=out.device)[None, :, None]
        cols = torch.arange(width, device=out.device)[None, None, :]
        dy, dx = rows - cy + side // 2, cols - cx + side // 2
        square = (dy >= 0) & (dy < side) & (dx >= 0) & (dx < side)
        hit = square & (draws[:, 2] < 0.5)[:, None, None]
        return out.masked_fill(hit[:, None], 0)

    datasets.augment = flip_then_cutout


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


def _patch_lookahead(every: int = 5) -> None:
    """airbench94's Lookahead: every 5 steps the slow weights (all float tensors of the state)
    move towards the fast ones by 1 - decay, and the fast ones restart from them; decay rises as
    0.95^5 * (progress)^3; the test runs on the slow weights."""
    import torch

    from cnn_tui.training.loop import engine

    state = {"steps": 0, "slow": None}
    step, finish = engine.shared_step, engine._finish

    def tensors(model):
        return [t for t in model.state_dict().values() if t.is_floating_point()]

    def update(model, decay):
        with torch.no_grad():
            current = tensors(model)
            if state["slow"] is None:
                state["slow"] = [t.clone() for t in current]
            torch._foreach_lerp_(state["slow"], current, 1 - decay)
            torch._foreach_copy_(current, state["slow"])

    def lookahead_step(s, *args, **kwargs):
        out = step(s, *args, **kwargs)
        state["steps"] += 1
        if state["steps"] % every == 0:
            update(s.model, 0.95**every * (state["steps"] / s.total_steps) ** 3)
        return out

    def finish_on_slow(run):
        update(run.s.model, 1.0)
        return finish(run)

    engine.shared_step, engine._finish = lookahead_step, finish_on_slow


def _patch_schedule(warmup: float) -> None:
    """One-cycle with a linear warm-up over `warmup` of the steps from lr/25, then a linear
    decay to 0 (airbench's triangle)."""
    from cnn_tui.training.loop import engine

    def triangle(config, step, total_steps, steps_per_epoch):
        t = step / max(1, total_steps)
        if t < warmup:
            return config.lr * (0.04 + 0.96 * t / warmup)
        return config.lr * (1 - t) / (1 - warmup)

    engine.lr_at = triangle


def _patch_alternating_flip() -> None:
    """airbench's alternating flip (Jordan 2024): each training image gets one random bit from
    the run's seed; epoch 0 flips the images whose bit is 1, epoch 1 the others, and so on, so
    every two epochs see each image once each way instead of by chance."""
    import torch

    from cnn_tui.training.data import datasets
    from cnn_tui.training.loop import engine

    state: dict = {}
    batch_rows, seed_epoch, augment = engine.batch_rows, engine.seed_epoch, datasets.augment

    def remember_rows(s, order, b):
        state["index"] = s.world.shard(
            order[b * s.config.batch_size : (b + 1) * s.config.batch_size]
        )
        return batch_rows(s, order, b)

    def remember_epoch(s, epoch):
        if "bits" not in state:
            generator = torch.Generator().manual_seed(s.config.seed + 4242)
            state["bits"] = torch.rand(len(s.train_y), generator=generator) < 0.5
        state["epoch"] = epoch
        return seed_epoch(s, epoch)

    def alternating(batch, mode, generator=None):
        if mode != "flip" or "index" not in state or len(state["index"]) != len(batch):
            return augment(batch, mode, generator)
        flip = state["bits"][state["index"]] ^ bool(state["epoch"] % 2)
        flip = flip.to(batch.device)[:, None, None, None]
        return torch.where(flip, batch.flip(3), batch)

    engine.batch_rows, engine.seed_epoch, datasets.augment = (
        remember_rows,
        remember_epoch,
        alternating,
    )


def _patch_plain_last(epochs: int) -> None:
    """No augmentation in the run's last `epochs` epochs (as detectors stop their mosaics at
    the end): the last steps fit the images the test pass sees."""
    from cnn_tui.training.data import datasets
    from cnn_tui.training.loop import engine

    state = {"plain": False}
    seed_epoch, augment = engine.seed_epoch, datasets.augment

    def remember_epoch(s, epoch):
        state["plain"] = epoch >= s.config.epochs - epochs
        return seed_epoch(s, epoch)

    def maybe_plain(batch, mode, generator=None):
        return batch if state["plain"] else augment(batch, mode, generator)

    engine.seed_epoch, datasets.augment = remember_epoch, maybe_plain


def orthogonalized(g, steps: int = 5):
    """The nearest semi-orthogonal matrix to `g` (its singular values pushed towards 1) by five
    Newton-Schulz iterations in bf16, with Muon's quintic coefficients (Jordan 2024)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    x = x / (x.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return (x.T if tall else x).to(g.dtype)


def _patch_muon(lr: float, momentum: float) -> None:
    """Muon for every trained conv (airbench94_muon's): Nesterov momentum, the update
    orthogonalised (`orthogonalized`) and taken at `lr` times the schedule's fraction of its
    peak, each filter bank first rescaled to norm sqrt(filters) (BatchNorm follows every conv,
    so only the direction counts); no weight decay. The rest (BatchNorm, the classifier) keeps
    the engine's SGD."""
    import torch

    from cnn_tui.training.loop import setup

    build = setup.build_optimizer

    def build_optimizer(config, params):
        rest = [p for p in params if p.ndim != 4]
        optimizer = build(config, rest)
        filters = [p for p in params if p.ndim == 4]
        optimizer.add_param_group({"params": filters, "muon": lr / config.lr, "weight_decay": 0.0})
        step = optimizer.step

        @torch.no_grad()
        def muon_step(closure=None):
            groups = optimizer.param_groups
            optimizer.param_groups = [g for g in groups if not g.get("muon")]
            try:
                step()
            finally:
                optimizer.param_groups = groups
            for group in groups:
                if not group.get("muon"):
                    continue
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = optimizer.state[p]
                    if "muon_buffer" not in state:
                        state["muon_buffer"] = torch.zeros_like(p.grad)
                    buffer = state["muon_buffer"].mul_(momentum).add_(p.grad)
                    direction = p.grad.add(buffer, alpha=momentum)
                    p.mul_(len(p) ** 0.5 / p.norm())
                    update = orthogonalized(direction.reshape(len(p), -1)).view_as(p)
                    p.add_(update, alpha=-group["lr"] * group["muon"])

        optimizer.step = muon_step
        return optimizer

    setup.build_optimizer = build_optimizer


def child(argv: list[str]) -> None:
    fields = json.loads(argv[0])
    for name in ("widths", "whiten"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
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
    parser.add_argument("--rows", default="", metavar="TEXT", help="only rows whose label has TEXT")
    args = parser.parse_args(argv)
    steps = plan(args.seeds_only, args.rows)
    if not steps:
        parser.error(f"no row's label holds {args.rows!r}: see --dry-run for the labels")
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
