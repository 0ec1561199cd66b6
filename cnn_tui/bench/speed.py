"""Speed mode (the default of `cnn-tui bench`): training and evaluation images/s per batch, the
engine against the seed-style loop, side by side in this process.

For each model:
- the engine — the real code path: `setup.prepare` builds the model, optimizer and batch
  preparation, `engine.train_one_epoch` slices batches from the uint8 data tensor (on the device)
  and `engine.evaluate` runs the large evaluation batches;
- the seed-style reference (`cnn_tui.bench.reference_loop`): a torchvision-style data set with
  `ToTensor` per image, a `DataLoader` with worker processes, the lecture notes' `train_step` /
  `test_step`;
with the same model, batch size and optimiser, warm-up batches first, then `repeats` timed runs of
`batches` batches each; the report quotes medians and the ratio engine / reference.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from cnn_tui.bench.common import Note, environment, median, no_notes, ratio
from cnn_tui.bench.options import CPU_BATCHES, SPEED, SPEED_DEFAULTS, BenchOptions
from cnn_tui.catalog import PRETRAINED_MODELS


class _NoLog:
    """Takes the engine's batch events and drops them (the bench times, it does not log)."""

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        return fields

    def batch_due(self, last_of_epoch: bool = False) -> bool:
        return False  # (a run measures its norms ~4 times a second: nothing to time here)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_config(opts: BenchOptions, name: str, size: int | None, native: int) -> Any:
    """The TrainConfig both sides train with: model `name` at `size` px (`native`: the data
    set's own size), from scratch, no augmentation, seed 0."""
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


def time_engine(opts: BenchOptions, config: Any, device: Any, data: Any) -> dict[str, Any]:
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


def time_reference(opts: BenchOptions, config: Any, device: Any, data: Any) -> dict[str, Any]:
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
        finetune=config.resolved_finetune,
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


def speed_report(opts: BenchOptions, note: Note = no_notes) -> dict[str, Any]:
    """Images/s of the engine and of the seed-style loop for each of `opts.models`."""
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
        batches = SPEED_DEFAULTS["batches"] if device.type == "cuda" else CPU_BATCHES
        opts = dataclasses.replace(opts, batches=batches)
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
                "finetune": config.resolved_finetune if name in PRETRAINED_MODELS else None,
                "engine": ours,
                "reference": theirs,
                "ratio": {
                    "train": ratio(ours["train_images_per_s"], theirs["train_images_per_s"]),
                    "eval": ratio(ours["eval_images_per_s"], theirs["eval_images_per_s"]),
                },
            }
        )
    return {
        "mode": SPEED,
        "environment": environment(device),
        "settings": opts.report_settings(),
        "results": results,
    }
