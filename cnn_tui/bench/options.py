"""What a benchmark is asked to do: `BenchOptions` (one `cnn-tui bench`) and `SeedRunOptions`
(one whole seed-style run), with the defaults they take and the model specs they name.

Torch-free, so the command line can build its flags from these facts without waiting for torch.
Values that mean a `cnn-tui train` setting are parsed and checked by `cnn_tui.training.config`
before they get here; the defaults below are bench's own where a benchmark wants other ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cnn_tui.catalog import (
    DATASETS,
    MODEL_NAMES,
    MODELS_COMMAND,
    OWN_HELP,
    ZOO_PREFIX,
    parse_model,
)
from cnn_tui.errors import UsageError
from cnn_tui.training.config import FIELDS, find_preset

# an image folder is the user's own (no fixed classes): bench sticks to data sets it can generate
# or download
BENCH_DATASETS = tuple(name for name, data in DATASETS.items() if data.num_classes is not None)
BENCH_MODELS = MODEL_NAMES
# what `--models` measures by default: the seeds' models, the fast preset's fast-cnn, resnet18 at
# its two sizes, resnet50 and vgg16 at 32 px (at 224 px a CPU takes minutes per repeat for them:
# ask for resnet50@224,vgg16@224)
DEFAULT_MODELS = (
    "simple-cnn,the3-cnn,custom-cnn,fast-cnn,resnet18@32,resnet18@224,resnet50@32,vgg16@32"
)
QUICK_MODELS = "simple-cnn,the3-cnn"
STARTUP_MODELS = "simple-cnn"  # whose trainer --startup times (the issue's: simple-cnn's)
# --models NAME@SIZE takes the sizes --image-size does
SIZE_RANGE = (int(FIELDS["image_size"].minimum), int(FIELDS["image_size"].maximum))

# the modes, as each report's "mode" names them
SPEED, WHOLE_RUN, FEATURES, STARTUP, TUI = "speed", "whole-run", "features", "startup", "tui"
FRESH_PROCESS_MODES = (WHOLE_RUN, FEATURES)  # whole runs, timed by the wall clock

DEFAULT_EPOCHS = 1  # of each whole run
MIN_BATCH_SIZE = 2
SPEED_DEFAULTS = {"batch_size": 128, "batches": 20, "warmup": 3, "repeats": 3}
CPU_BATCHES = 8  # the CPU default: resnet18 at 224 px trains ~20 images/s there
QUICK = {"batch_size": 32, "batches": 3, "warmup": 1, "repeats": 2, "workers": 1}
WHOLE_RUN_BATCH_SIZE = 32  # the lecture notes' batch size
STARTUP_REPEATS = 5
TUI_REPEATS = 3  # runs started from the form (--quick: 1); with --pairs, pairs of runs

ModelSpec = tuple[str, int | None]  # a model and its image size (None: the data set's own)


def parse_model_spec(text: str) -> ModelSpec:
    """'resnet18@224' -> ('resnet18', 224); 'simple-cnn' -> ('simple-cnn', None): native size."""
    name, _, size_text = text.strip().partition("@")
    try:
        parse_model(name)
    except ValueError:
        raise UsageError(
            f"unknown model {name!r}; valid models: {', '.join(BENCH_MODELS)}, "
            f"{ZOO_PREFIX}NAME ({MODELS_COMMAND} lists them) or your own {OWN_HELP} (append "
            "@SIZE for an image size, "
            "e.g. resnet18@224)"
        ) from None
    if not size_text:
        return name, None
    try:
        size = int(size_text)
    except ValueError:
        raise UsageError(
            f"bad image size in {text!r}: expected NAME@PIXELS, e.g. resnet18@224"
        ) from None
    low, high = SIZE_RANGE
    if not low <= size <= high:
        raise UsageError(f"image size in {text!r} must be {low} to {high}")
    return name, size


def parse_model_list(text: str) -> list[ModelSpec]:
    """'simple-cnn,resnet18@224' -> [('simple-cnn', None), ('resnet18', 224)]."""
    specs = [part for part in text.split(",") if part.strip()]
    if not specs:
        raise UsageError("expected a comma-separated list of models")
    return [parse_model_spec(part) for part in specs]


@dataclass(frozen=True)
class BenchOptions:
    """One benchmark, every default filled in (`bench_options` builds it)."""

    mode: str  # SPEED, WHOLE_RUN, FEATURES, STARTUP or TUI
    dataset: str
    data_dir: str | None
    models: tuple[ModelSpec, ...]
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
    epochs: int
    limit: int | None
    preset: str | None = None  # --startup: a preset's trainer is timed as well
    pairs: bool = False  # --tui: headless and TUI runs alternated, their throughputs compared

    @property
    def fresh_processes(self) -> bool:
        """Whole runs in fresh processes, timed by the wall clock (--whole-run, --features)."""
        return self.mode in FRESH_PROCESS_MODES

    def report_settings(self) -> dict[str, Any]:
        """The settings as a report quotes them."""
        return {
            "dataset": self.dataset,
            "batch_size": self.batch_size,
            "optimizer": "adam",
            "lr": self.lr,
            "amp": self.amp,
            "channels_last": self.channels_last,
            "finetune": self.finetune,
            "workers": self.workers,
            "batches": self.batches,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "epochs": self.epochs if self.fresh_processes else None,
            "limit": self.limit,
            "quick": self.quick,
        }


def bench_options(
    mode: str = SPEED,
    *,
    quick: bool = False,
    dataset: str = FIELDS["dataset"].default,
    data_dir: str | None = None,
    models: list[ModelSpec] | None = None,
    finetune: str | None = None,
    batch_size: int | None = None,
    lr: float = FIELDS["lr"].default,
    device: str = FIELDS["device"].default,
    amp: bool = FIELDS["amp"].default,
    channels_last: bool = FIELDS["channels_last"].default,
    workers: int | None = None,
    batches: int | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    limit: int | None = None,
    preset: str | None = None,
    pairs: bool = False,
) -> BenchOptions:
    """The options of one benchmark; None takes the default of the mode (quick, whole runs,
    start-up) and, for `batches`, of the device (decided when it is known). `preset`: only
    with the start-up mode, a preset that exists; `pairs`: only with the TUI mode."""
    if batch_size is not None and batch_size < MIN_BATCH_SIZE:
        raise UsageError(
            f"--batch-size must be at least {MIN_BATCH_SIZE} for bench, got {batch_size}"
        )
    if preset is not None:
        if mode != STARTUP:
            raise UsageError("--preset is for --startup: the start-up of that preset's trainer")
        find_preset(preset)  # an unknown one: a usage error naming the presets
    if pairs and mode != TUI:
        raise UsageError(
            "--pairs is for --tui: headless and TUI runs of the same settings, alternated"
        )
    fresh_processes = mode in FRESH_PROCESS_MODES
    if models is None:
        default = DEFAULT_MODELS
        if quick or mode == FEATURES:
            default = QUICK_MODELS
        elif mode == STARTUP:
            default = STARTUP_MODELS
        models = parse_model_list(default)
    defaults: dict[str, Any] = dict(SPEED_DEFAULTS, **(QUICK if quick else {}))
    if fresh_processes:
        defaults["batch_size"] = WHOLE_RUN_BATCH_SIZE
    if mode == STARTUP:  # one round of fresh processes is cheap: more of them, and no --quick
        defaults["repeats"] = STARTUP_REPEATS
    if mode in (STARTUP, TUI):  # a run as `cnn-tui train` starts it: the training defaults
        defaults["batch_size"] = FIELDS["batch_size"].default
    if mode == TUI:
        defaults["repeats"] = 1 if quick else TUI_REPEATS
    if workers is None:
        workers = defaults.get("workers", os.cpu_count() or 1)
    return BenchOptions(
        mode=mode,
        dataset=dataset,
        data_dir=data_dir,
        models=tuple(models),
        finetune=finetune or ("head" if fresh_processes else "all"),
        batch_size=batch_size or defaults["batch_size"],
        lr=lr,
        device=device,
        amp=amp,
        channels_last=channels_last,
        workers=workers,
        batches=batches or (QUICK["batches"] if quick else None),
        warmup=defaults["warmup"] if warmup is None else warmup,
        repeats=repeats or defaults["repeats"],
        quick=quick,
        epochs=epochs,
        limit=limit,
        preset=preset,
        pairs=pairs,
    )


# --- the seed-style run -------------------------------------------------------------------------

# The seed's own defaults (one epoch of batches of 32, from scratch: the notes' loop loads no
# pretrained weights); every other setting defaults as in `cnn-tui train`.
SEED_DEFAULTS = {"epochs": 1, "batch_size": 32, "weights": "none"}


def _seed_default(name: str) -> Any:
    return SEED_DEFAULTS.get(name, FIELDS[name].default)


@dataclass(frozen=True)
class SeedRunOptions:
    """One whole seed-style run (`cnn_tui.bench.reference_loop.prepare`). Every field but
    `workers` means the `cnn-tui train` setting of the same name (`SEED_SETTINGS`)."""

    dataset: str = _seed_default("dataset")
    data_dir: str | None = _seed_default("data_dir")
    model: str = _seed_default("model")
    hidden_units: int = _seed_default("hidden_units")
    weights: str = _seed_default("weights")
    finetune: str = _seed_default("finetune")
    image_size: int | None = _seed_default("image_size")
    epochs: int = _seed_default("epochs")
    batch_size: int = _seed_default("batch_size")
    lr: float = _seed_default("lr")
    val_split: float = _seed_default("val_split")
    limit: int | None = _seed_default("limit")
    seed: int = _seed_default("seed")
    device: str = _seed_default("device")
    workers: int | None = None  # DataLoader worker processes; None: os.cpu_count()


SEED_SETTINGS = tuple(name for name in SeedRunOptions.__dataclass_fields__ if name in FIELDS)
