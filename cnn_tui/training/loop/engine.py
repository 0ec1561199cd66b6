"""The training engine: one readable loop from a TrainConfig to a finished run directory.

`train(config, run_dir)` loads the data set once into uint8 tensors (on the device when it fits),
builds the model, and runs `train_one_epoch` / `evaluate` for each epoch (`_run`, the loop), writing
every event to `run_dir/metrics.jsonl` and handing it to `on_event`. A `Run` holds what the loop
works on: the config, the run's files (event log, status), the stop flag, the `Progress` and the
`Setup` (data, model, optimizer). Each batch is sliced from the data tensor by a seeded permutation
and normalised / augmented / resized as batched tensor ops (`BatchPrep`), as in airbench: no
DataLoader, no per-image Python work. The checkpoint is one plain dict (nanoGPT) that
`torch.load(..., weights_only=True)` reads; every other file of the run directory is written and
read by `runs.py`.

Determinism: the batch order, the augmentation and dropout of epoch e are seeded from (seed, e), and
a checkpoint taken mid-epoch keeps the RNG states and the batch position, so on the CPU a run that
is stopped and resumed ends bit-identical to one that was never interrupted. The learning rate is a
pure function of the optimizer step (`lr_at`), so it needs no scheduler state either.

Several processes (`--devices N`, training/distributed.py): each rank runs this same loop on its
slice of every batch, under DistributedDataParallel (`Setup.train_net`); `Setup.world` says which
rank this is, and only rank 0 writes the run directory (`Run.writes`). With one process `World()`
makes every one of those steps a no-op.

UI-free: the headless CLI and the TUI (through a background process) drive the same function.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnn_tui import catalog
from cnn_tui.errors import RunError, UsageError, disk_full
from cnn_tui.fileio import atomic_write
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.data import datasets
from cnn_tui.training.loop import distributed, early_stop, metrics
from cnn_tui.training.loop.distributed import PeerLost, World
from cnn_tui.training.models import feature_cache
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import background_import, host_memory
from cnn_tui.training.system.devices import cpu_has_native_bf16, device_name, resolve_device

EventCallback = Callable[[dict[str, Any]], None]

CHECKPOINT_FORMAT = 1
# move the data set to the GPU when it takes at most this fraction of the free memory
DEVICE_DATA_FRACTION = 0.25


# --- the pieces of the loop -------------------------------------------------------------------


@dataclass
class BatchPrep:
    """How a batch of uint8 images becomes the model's input: augment, normalise, resize, layout."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int | None = None  # resize to this square size; None keeps the data's own size
    augment: str = "none"
    channels_last: bool = False
    features: bool = False  # the rows are cached backbone features (feature_cache): pass them on

    def __call__(
        self,
        images: torch.Tensor,
        *,
        train: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if self.features:
            return images
        if train and self.augment != "none":
            images = datasets.augment(images, self.augment, generator)
        x = datasets.normalize(images, self.mean, self.std)
        if self.image_size is not None:
            x = datasets.resize(x, self.image_size)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def batch_logits(
    net: nn.Module,
    images: torch.Tensor,
    prep: BatchPrep,
    *,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """How a batch becomes logits — the one place where that happens.

    `net` is `Setup.net`: the model, or only its head when the frozen backbone's features are
    cached (feature_cache), in which case the batch rows are those features and `prep` passes
    them on unchanged.
    """
    return net(prep(images, train=train, generator=generator))


def lr_at(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step `step` (0-based) out of `total_steps`.

    none: constant. cosine: from lr down to 0. step: ×0.1 every epochs/3 epochs. onecycle: linear
    warm-up from lr/25 to lr over the first 30 % of the steps, then cosine down to 0.
    """
    t = step / max(1, total_steps)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if config.schedule == "step":
        every = max(1, config.epochs // 3)
        return config.lr * 0.1 ** ((step // max(1, steps_per_epoch)) // every)
    if config.schedule == "onecycle":
        warm = 0.3
        if t < warm:
            return config.lr * (0.04 + 0.96 * t / warm)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1.0 - warm)))
    return config.lr


def build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW, fused: one kernel per step over all the parameters instead of a
    dozen small ops per tensor (simple-cnn on 2 CPU cores: the Adam step 0.55 -> 0.1 ms)."""
    if not params:
        raise UsageError("the model has no trainable parameters: check --finetune")
    fused = {"fused": True} if all(fused_supported(p) for p in params) else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            **fused,
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


def fused_supported(param: torch.Tensor) -> bool:
    """PyTorch's fused optimizers take floating-point tensors on the CPU and CUDA."""
    return param.device.type in ("cpu", "cuda") and param.is_floating_point()


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` (0-based): its batch order, augmentation and dropout."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which epoch `epoch` visits the n training images (on the CPU)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """ceil(n / batch_size), leaving out a last batch of fewer than two images per process
    (BatchNorm needs two): with one process, a last batch of a single image."""
    batches = math.ceil(n / batch_size)
    if batches > 1 and 0 < n % batch_size < 2 * world_size:
        batches -= 1
    return batches


@dataclass
class Setup:
    """What the loop works with, built once per process by `prepare`."""

    config: TrainConfig
    device: torch.device
    data: datasets.DataSplits
    # uint8 images and labels: on the device when the data set fits there, else on the CPU
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    model: nn.Module
    net: nn.Module  # what each batch runs through: the model, or its head over cached features
    optimizer: torch.optim.Optimizer
    prep: BatchPrep
    eval_prep: BatchPrep
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    batches: int
    total_steps: int
    eval_batch_size: int
    augment_generator: torch.Generator
    world: World = field(default_factory=World)  # which of how many processes (--devices)
    # what training batches run through with several processes: `net` under DDP (else None)
    train_net: nn.Module | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp_dtype)


@dataclass
class Progress:
    """Where the run is: everything besides model/optimizer a checkpoint needs to continue."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in the epoch after those (a mid-epoch stop)
    step: int = 0  # optimizer steps overall (drives the learning rate)
    loss_sum: float = 0.0  # over the current epoch's batches so far
    correct: int = 0
    seen: int = 0
    best_val_acc: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # training time over all sessions
    # early stopping (--early-stop): the best value of its metric, the epoch (1-based) whose
    # weights are best.pt, and the epochs since then without an improvement. A checkpoint from
    # before early stopping existed has none of these: the defaults start afresh.
    best_metric: float | None = None
    best_epoch: int = 0
    since_best: int = 0

    def state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def track_best(self, config: TrainConfig, row: dict[str, Any]) -> bool:
        """Early stopping's bookkeeping after epoch `row`; True when it is the new best."""
        value = float(row[config.early_stop_metric])
        if early_stop.improved(config.early_stop_metric, self.best_metric, value, config.min_delta):
            self.best_metric, self.best_epoch, self.since_best = value, row["epoch"], 0
            return True
        self.since_best += 1
        return False

    def should_stop_early(self, config: TrainConfig) -> bool:
        return config.early_stop > 0 and self.since_best >= config.early_stop

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Epoch `row["epoch"]` is done: keep its row, its time and the best validation accuracy."""
        self.seconds += row["seconds"]
        self.epoch, self.batch = row["epoch"], 0
        if self.best_val_acc is None or row["val_acc"] > self.best_val_acc:
            self.best_val_acc = row["val_acc"]
        self.history.append(row)
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0


def normalization(config: TrainConfig, data: datasets.DataSplits) -> tuple[tuple, tuple]:
    """Pretrained weights want the statistics they were trained with (ImageNet's, from the
    weights' own meta); everything else the data set's own."""
    if config.model in models.PRETRAINED and config.resolved_weights != "none":
        mean, std = models.weights_normalization(config.model)
        if data.channels == 1:  # grey images are repeated to RGB inside the model
            return (sum(mean) / 3,), (sum(std) / 3,)
        return mean, std
    return tuple(data.mean), tuple(data.std)


def fetch(source: torch.Tensor, index: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
    """Rows `index` of a data tensor, on `device` (copied through pinned memory from the CPU)."""
    rows = source[index]
    if rows.device == device:
        return rows
    if device.type == "cuda":
        rows = rows.pin_memory()
    return rows.to(device, non_blocking=True)


def load_data(config: TrainConfig) -> datasets.DataSplits:
    """The data set of a run, split as its config says (the same split for training and eval)."""
    return datasets.load_dataset(
        config.dataset,
        config.data_dir,
        val_split=config.val_split,
        seed=config.seed,
        image_size=config.image_size if config.dataset == "imagefolder" else None,
        limit=config.limit,
    )


def data_fits(data: datasets.DataSplits, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    size = sum(t.numel() * t.element_size() for t in (data.train_x, data.val_x, data.test_x))
    free, _ = torch.cuda.mem_get_info(device)
    return size <= DEVICE_DATA_FRACTION * free


def speed_settings(
    config: TrainConfig, device: torch.device, image_size: int
) -> tuple[bool, torch.dtype | None]:
    """(channels_last, autocast dtype or None) of a model with inputs of `image_size` px on
    `device`: one rule for training, evaluation and a saved run's predictions, so they agree.

    On CUDA both apply from `catalog.AMP_MIN_IMAGE_SIZE` px on (where they pay off: the
    catalogue says why). On the CPU, oneDNN's convolutions prefer channels_last at every size
    (2 cores, batch 32: simple-cnn 10.4k vs 7.3k img/s, custom-cnn +23 %, evaluation +20-60 %),
    and a CPU with bf16 in hardware gains from bf16 autocast at every size too (2 Zen 5 cores,
    batch 32: simple-cnn +13 %, custom-cnn +20 %, resnet18 +18 %); without it bf16 is emulated
    and slower. --no-amp / --no-channels-last turn them off everywhere.
    """
    if device.type == "cuda":
        fast = image_size >= catalog.AMP_MIN_IMAGE_SIZE
        amp_dtype = None
        if fast and config.amp:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return fast and config.channels_last, amp_dtype
    return config.channels_last, torch.bfloat16 if config.amp and cpu_has_native_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """`torch.autocast` to `dtype` on `device`; nothing when `dtype` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def prepare(
    config: TrainConfig,
    device: torch.device,
    data: datasets.DataSplits,
    *,
    weights: str,
    world: World | None = None,
) -> Setup:
    """Model, optimizer and batch preparation for `config` on `device` (as rank `world.rank`)."""
    world = world or World()
    image_size = config.image_size or data.image_size[0]
    torch.manual_seed(config.seed)  # the initial weights
    model = models.build_model(
        config.model,
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=image_size,
        hidden_units=config.hidden_units,
        weights=weights,
        finetune=config.finetune,
    )
    if world.parallel and config.sync_bn:
        model = distributed.sync_batchnorm(model)
    channels_last, amp_dtype = speed_settings(config, device, image_size)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    mean, std = normalization(config, data)
    resize_to = image_size if image_size != data.image_size[0] else None
    prep = BatchPrep(mean, std, resize_to, config.augment, channels_last)
    eval_prep = BatchPrep(mean, std, resize_to, "none", channels_last)
    init_from_data = getattr(model, "init_from_data", None)
    if init_from_data is not None:  # fast-cnn, airbench-cnn: a whitening first layer, frozen
        # (resuming, the checkpoint's weights replace it; the layer stays frozen all the same)
        init_from_data(eval_prep(fetch(data.train_x, slice(0, model.init_images), device)))
    where = device if data_fits(data, device) else torch.device("cpu")
    n = len(data.train_y)
    batches = batches_per_epoch(n, config.batch_size, world.size)
    return Setup(
        config=config,
        device=device,
        data=data,
        train_x=data.train_x.to(where),
        train_y=data.train_y.to(where),
        val_x=data.val_x.to(where),
        val_y=data.val_y.to(where),
        test_x=data.test_x.to(where),
        test_y=data.test_y.to(where),
        model=model,
        net=model,
        optimizer=build_optimizer(config, models.trainable_parameters(model)),
        prep=prep,
        eval_prep=eval_prep,
        amp_dtype=amp_dtype,
        scaler=scaler,
        batches=batches,
        total_steps=batches * config.epochs,
        eval_batch_size=catalog.evaluation_batch_size(
            config.batch_size, image_size, device.type == "cuda"
        ),
        augment_generator=torch.Generator(device=device),
        world=world,
    )


class Diverged(RunError):
    pass


def batch_rows(s: Setup, order: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of training batch `b` of an epoch visited in `order`, on the device
    (with several processes, this rank's slice of them)."""
    index = s.world.shard(order[b * s.config.batch_size : (b + 1) * s.config.batch_size])
    return fetch(s.train_x, index, s.device), fetch(s.train_y, index, s.device)


def train_step(
    s: Setup,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    trainable: list[nn.Parameter],
) -> tuple[float, int]:
    """One optimizer step on a batch at learning rate `lr`: forward, loss, backward, clip, step.

    Returns the batch's mean loss and how many images it got right (one device sync). A loss
    that is not finite is returned without a step: the caller decides (the loop stops the run,
    the LR finder its curve). The training loop and the LR finder (`lr_find`) both step here.
    """
    loss_value, correct, _ = shared_step(s, images, labels, lr, trainable, len(labels))
    return loss_value, correct


def shared_step(
    s: Setup,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    trainable: list[nn.Parameter],
    batch_images: int,
    stop: threading.Event | None = None,
) -> tuple[float, int, bool]:
    """`train_step` on this rank's slice of a batch of `batch_images` images; returns the whole
    batch's mean loss and correct count, and whether to stop after it (`stop` set on any rank).

    One process: the slice is the batch. Several: the loss is the slice's sum × ranks /
    batch_images, so DDP's mean of the ranks' gradients is the mean over the whole batch; the
    ranks add [loss, correct, stop] in the one device sync a batch has anyway.
    """
    config, optimizer, world = s.config, s.optimizer, s.world
    for group in optimizer.param_groups:
        group["lr"] = lr
    net = s.train_net if s.train_net is not None else s.net
    with s.autocast():
        logits = batch_logits(net, images, s.prep, train=True, generator=s.augment_generator)
        loss = F.cross_entropy(
            logits,
            labels,
            label_smoothing=config.label_smoothing,
            reduction="sum" if world.parallel else "mean",
        )
    # one device sync per batch: the loss (to stop on divergence) and the correct count
    totals = [loss.detach().float(), (logits.argmax(1) == labels).sum().float()]
    if world.parallel:
        asked = stop is not None and stop.is_set()
        totals.append(torch.tensor(float(asked), device=loss.device))
    values = world.sum_(torch.stack(totals)).tolist()
    loss_value, correct = values[0], int(values[1])
    if world.parallel:
        loss_value /= batch_images
        loss = loss * (world.size / batch_images)
    if not math.isfinite(loss_value):
        return loss_value, correct, False
    optimizer.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        if config.grad_clip > 0:
            s.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        s.scaler.step(optimizer)
        s.scaler.update()
    else:
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
    if world.parallel:
        return loss_value, correct, values[2] > 0
    return loss_value, correct, stop is not None and stop.is_set()


def train_one_epoch(
    s: Setup,
    epoch: int,
    progress: Progress,
    log: runs.EventLog,
    stop: threading.Event,
) -> bool:
    """Train epoch `epoch` (0-based) from batch `progress.batch` on; False if stopped part-way."""
    config, model = s.config, s.model
    models.set_train_mode(model, True)
    trainable = models.trainable_parameters(model)  # for --grad-clip, found once per epoch
    order = epoch_order(config.seed, epoch, len(s.train_y)).to(s.train_x.device)
    started, first = time.perf_counter(), progress.batch
    for b in range(progress.batch, s.batches):
        images, labels = batch_rows(s, order, b)
        batch_images = min(config.batch_size, len(order) - b * config.batch_size)
        lr = lr_at(config, progress.step, s.total_steps, s.batches)
        loss_value, correct, stopping = shared_step(
            s, images, labels, lr, trainable, batch_images, stop
        )
        if not math.isfinite(loss_value):
            raise Diverged(
                f"training diverged at epoch {epoch + 1} (loss is {loss_value}): lower the "
                f"learning rate (--lr, now {config.lr:g})"
            )

        progress.step += 1
        progress.batch = b + 1
        progress.loss_sum += loss_value * batch_images
        progress.correct += correct
        progress.seen += batch_images
        elapsed = time.perf_counter() - started
        per_batch = elapsed / (b + 1 - first)
        remaining = (s.batches - b - 1) + (config.epochs - epoch - 1) * s.batches
        log.emit(
            "batch",
            epoch=epoch + 1,
            batch=b + 1,
            batches=s.batches,
            loss=loss_value,
            lr=lr,
            images_per_s=(b + 1 - first) * config.batch_size / max(elapsed, 1e-9),
            eta_s=remaining * per_batch,
        )
        # one process: a stop asked during this batch's event counts now; several: the ranks
        # agreed on `stopping` in the batch's sync, so every rank stops after the same batch
        if (stopping if s.world.parallel else stop.is_set()) and b + 1 < s.batches:
            return False
    return True


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    confusion: np.ndarray  # counts, rows = true class
    predictions: np.ndarray | None = None  # per image, when asked for
    confidences: np.ndarray | None = None


@torch.inference_mode()
def evaluate(
    s: Setup, images: torch.Tensor, labels: torch.Tensor, *, keep_predictions: bool = False
) -> EvalResult:
    """Loss, accuracy and confusion matrix of the model on a whole split, in large batches.

    With several processes each evaluates its contiguous share of the split, with rank 0's
    weights and BatchNorm statistics, and the sums are added: the same result as one process.
    """
    k, world = s.data.num_classes, s.world
    models.set_train_mode(s.model, False)
    world.sync_module(s.net)
    loss_sum = torch.zeros((), dtype=torch.float64, device=s.device)
    confusion = torch.zeros(k * k, dtype=torch.int64, device=s.device)
    predictions, confidences = [], []
    first, end = world.span(len(labels))
    for start in range(first, end, s.eval_batch_size):
        rows = slice(start, min(end, start + s.eval_batch_size))
        x, y = fetch(images, rows, s.device), fetch(labels, rows, s.device)
        with s.autocast():
            logits = batch_logits(s.net, x, s.eval_prep)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        pred = logits.argmax(1)
        confusion += torch.bincount(y * k + pred, minlength=k * k)
        if keep_predictions:
            predictions.append(pred.cpu())
            confidences.append(logits.softmax(1).amax(1).cpu())
    world.sum_(loss_sum)
    world.sum_(confusion)
    if keep_predictions and world.parallel:  # every rank's share, in order
        predictions = [part for shares in world.gather(predictions) for part in shares]
        confidences = [part for shares in world.gather(confidences) for part in shares]
    n = len(labels)
    matrix = confusion.view(k, k).cpu().numpy()
    return EvalResult(
        loss=float(loss_sum) / n if n else 0.0,
        accuracy=metrics.accuracy(matrix),
        confusion=matrix,
        predictions=torch.cat(predictions).numpy() if predictions else None,
        confidences=torch.cat(confidences).numpy() if confidences else None,
    )


# --- checkpoints ------------------------------------------------------------------------------


def rng_state(s: Setup) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "augment": s.augment_generator.get_state()}
    state["cuda"] = torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None
    return state


def restore_rng(s: Setup, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])  # checked by `check_resumable`
    if s.device.type == "cuda" and state.get("cuda") is not None:
        with contextlib.suppress(RuntimeError, TypeError):  # saved on another device type
            torch.cuda.set_rng_state(state["cuda"], s.device)
    if state.get("augment") is not None:
        with contextlib.suppress(RuntimeError, TypeError):  # a generator of another device type
            s.augment_generator.set_state(state["augment"])


def seed_epoch(s: Setup, epoch: int) -> None:
    """Seed dropout (torch's global RNG) and the augmentation of a fresh epoch."""
    torch.manual_seed(epoch_seed(s.config.seed, epoch) + 1)
    s.augment_generator.manual_seed(epoch_seed(s.config.seed, epoch) + 2)


def save_checkpoint(path: Path, s: Setup, progress: Progress) -> None:
    """One plain dict, written atomically; only tensors and plain Python values inside."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": {"schedule": s.config.schedule, "step": progress.step},
        "scaler": s.scaler.state_dict() if s.scaler is not None else None,
        "epoch": progress.epoch,
        "batch": progress.batch,
        "config": s.config.to_dict(),
        "classes": list(s.data.classes),
        "normalization": {
            "mean": list(s.prep.mean),
            "std": list(s.prep.std),
            "image_size": s.prep.image_size,
        },
        "rng": rng_state(s),
        "progress": progress.state(),
        "best_val_acc": progress.best_val_acc,
        "history": progress.history,
    }
    atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def save_best(path: Path, s: Setup, progress: Progress) -> None:
    """best.pt (early stopping): the weights of the best epoch so far, written atomically; a plain
    dict that `load_checkpoint` (weights_only=True) reads like a checkpoint."""
    best = {
        "format": CHECKPOINT_FORMAT,
        "model": s.model.state_dict(),
        "epoch": progress.best_epoch,
        "metric": s.config.early_stop_metric,
        "value": progress.best_metric,
        "config": s.config.to_dict(),
    }
    atomic_write(path, lambda handle: torch.save(best, handle))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint dict (on the CPU); a missing or unreadable file is a UsageError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"{path} does not exist: the run saved no checkpoint yet (it stops before its "
            "first batch); start a new run"
        )
    try:
        checkpoint = models.torch_load(path)
    except models.TorchFileError as exc:
        raise UsageError(
            f"{path} is not a readable checkpoint ({exc}): the file is damaged; start a new run"
        ) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "epoch" not in checkpoint:
        raise UsageError(f"{path} is not a cnn-tui checkpoint (no 'model' and 'epoch' entries)")
    model = checkpoint["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise UsageError(
            f"{path} is damaged: its 'model' entry is not a state_dict; start a new run"
        )
    for key in ("epoch", "batch"):
        value = checkpoint.get(key, 0)
        if not _is_count(value):
            raise UsageError(
                f"{path} is damaged: its {key!r} entry is not a count of epochs or batches "
                f"(a {type(value).__name__}); start a new run"
            )
    return checkpoint


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


# what `Progress(**checkpoint["progress"])` takes: each field and the types a checkpoint may hold
_PROGRESS_TYPES: dict[str, tuple[type, ...]] = {
    "epoch": (int,),
    "batch": (int,),
    "step": (int,),
    "loss_sum": (int, float),
    "correct": (int,),
    "seen": (int,),
    "best_val_acc": (int, float, type(None)),
    "history": (list,),
    "seconds": (int, float),
    "best_metric": (int, float, type(None)),
    "best_epoch": (int,),
    "since_best": (int,),
}
_JSON_SCALARS = (str, int, float, bool, type(None))


def check_resumable(checkpoint: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose training state is damaged before the run writes anything.

    `load_checkpoint` checked the weights and the epoch; training on also needs the optimizer
    state, the progress (its history goes to summary.json as JSON) and, mid-epoch, the RNG state.
    """

    def damaged(what: str) -> UsageError:
        return UsageError(
            f"{path} cannot be continued: {what}; evaluate it with cnn-tui eval, or start a new run"
        )

    if not isinstance(checkpoint.get("optimizer"), dict):
        raise damaged("it has no optimizer state")
    progress = checkpoint.get("progress")
    if not isinstance(progress, dict) or not set(progress) <= set(_PROGRESS_TYPES):
        raise damaged("its 'progress' entry is missing or not the one cnn-tui writes")
    for key, value in progress.items():
        types = _PROGRESS_TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise damaged(f"its progress {key!r} is {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**62:
            raise damaged(f"its progress {key!r} is out of range")
    rows = progress.get("history", [])
    if not all(
        isinstance(row, dict) and all(isinstance(v, _JSON_SCALARS) for v in row.values())
        for row in rows
    ):
        raise damaged("its epoch history is not a list of plain rows")
    rng = checkpoint.get("rng")
    if progress.get("batch", 0) > 0:
        state = rng.get("torch") if isinstance(rng, dict) else None
        wanted = torch.get_rng_state()
        if (
            not isinstance(state, torch.Tensor)
            or state.dtype != wanted.dtype
            or state.shape != wanted.shape
        ):
            raise damaged("its random-number state (needed to continue mid-epoch) is damaged")


_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from "
    r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)"
)


def _first_reason(exc: BaseException) -> str:
    """The telling line of an error: torch's load_state_dict puts it on the second line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        lines = lines[1:]
    line = lines[0] if lines else type(exc).__name__
    if match := _SIZE_MISMATCH.match(line):
        name, saved, wanted = match.groups()
        line = f"{name} is {saved} in the checkpoint but {wanted} in the model"
    return line if len(line) <= 160 else line[:157] + "..."


def load_model_state(model: nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's weights into `model`; UsageError naming the file when they do not fit."""
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} does not fit the model of {runs.CONFIG_FILE} ({_first_reason(exc)}): the "
            "checkpoint was saved with other settings; start a new run"
        ) from None


def load_training_state(s: Setup, checkpoint: dict[str, Any], path: Path) -> None:
    """Load the weights, the optimizer state and the AMP scaler of a checkpoint to continue it."""
    load_model_state(s.model, checkpoint, path)
    try:
        s.optimizer.load_state_dict(checkpoint["optimizer"])
        # load_state_dict keeps tensors of any shape; the first step would fail on them
        for group in s.optimizer.param_groups:
            for param in group["params"]:
                for value in s.optimizer.state.get(param, {}).values():
                    if isinstance(value, torch.Tensor) and value.dim() > 0:
                        if value.shape != param.shape:
                            raise ValueError(
                                f"a state of shape {tuple(value.shape)} for a parameter of "
                                f"shape {tuple(param.shape)}"
                            )
        if s.scaler is not None and checkpoint.get("scaler"):
            s.scaler.load_state_dict(checkpoint["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{path}: its optimizer state does not fit --optimizer {s.config.optimizer} over this "
            f"model ({_first_reason(exc)}); start a new run"
        ) from None


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One training run in this process: its settings and files, where it is, what it trains.

    `train` makes it; `_run` is the loop over it; `s` is set once the data and model are ready.
    """

    config: TrainConfig
    dir: Path
    log: runs.EventLog
    stop: threading.Event
    progress: Progress
    checkpoint: dict[str, Any] | None = None  # the checkpoint being continued (--resume)
    s: Setup | None = None
    world: World = field(default_factory=World)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory: rank 0 (the only one, alone)."""
        return self.world.main

    def status(self, state: str, message: str = "", **extra: Any) -> None:
        """(Re)write status.json: the state, and which epoch the run is at."""
        if not self.writes:
            return
        runs.write_status(
            self.dir,
            state,
            message=message,
            epoch=self.progress.epoch,
            epochs=self.config.epochs,
            best_val_acc=self.progress.best_val_acc,
            pid=distributed.status_pid(),
            **extra,
        )

    def save_checkpoint(self) -> None:
        assert self.s is not None
        if self.writes:
            save_checkpoint(self.dir / runs.CHECKPOINT_FILE, self.s, self.progress)

    def save_best(self) -> None:
        assert self.s is not None
        if self.writes:
            save_best(self.dir / runs.BEST_FILE, self.s, self.progress)


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    resume: bool = False,
    world: World | None = None,
) -> dict[str, Any]:
    """Train `config`, writing the run into `run_dir`; returns the summary.

    `world`: this process's rank among several that train the run together (--devices); only
    rank 0 reads and writes `run_dir`, the others get the checkpoint to continue from it.

    The returned dict has "status": "finished" (and the test metrics of summary.json) or "stopped"
    (when `stop` was set: the current batch finished and a checkpoint was saved). A failure (a
    diverged loss, missing data, no GPU memory) is recorded as status "failed" with a "failed"
    event and raised as RunError (UsageError for bad input such as a bad --weights file).
    """
    run_dir, world = Path(run_dir), world or World()
    checkpoint = world.from_main(lambda: _open_run(run_dir, config, resume))
    progress = Progress(**checkpoint["progress"]) if checkpoint is not None else Progress()
    log = runs.EventLog(run_dir, on_event) if world.main else distributed.SilentLog()
    run = Run(config, run_dir, log, stop or threading.Event(), progress, checkpoint, world=world)
    run.status("running", "starting")
    try:
        return _run(run)
    except KeyboardInterrupt:  # a second Ctrl+C: give up at once; the last checkpoint stays valid
        message = "aborted: --resume continues from the last saved checkpoint"
        run.status("stopped", message)
        log.emit("stopped", epoch=progress.epoch, message=message)
        raise
    except PeerLost as exc:  # another rank is gone: the launcher records why, if there is one
        if not distributed.has_launcher():
            _fail(run, str(exc))
        raise
    except torch.cuda.OutOfMemoryError:
        message = f"out of GPU memory at batch size {config.batch_size}: lower --batch-size"
        _fail(run, message)
        raise RunError(message) from None
    except (RunError, UsageError) as exc:
        _fail(run, str(exc))
        raise
    except OSError as exc:  # a full disk: one line naming the file; the older files stay valid
        error = disk_full(exc, run_dir)
        _fail(run, str(error) if error is not None else f"{type(exc).__name__}: {exc}")
        if error is None:
            raise
        raise error from None
    except Exception as exc:  # a bug: record it, then let the traceback show
        if world.parallel and distributed.is_peer_loss(exc):  # (in DDP's gradient all-reduce)
            lost = PeerLost(f"lost contact with another process of the run ({exc})")
            if not distributed.has_launcher():
                _fail(run, str(lost))
            raise lost from None
        _fail(run, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log.close()


def _open_run(run_dir: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Make the run directory and write its config.toml; the checkpoint to continue, if any."""
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = resume_checkpoint(run_dir, config) if resume else None
    runs.write_config(run_dir, config)
    return checkpoint


def resume_checkpoint(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (None: it saved none yet, start afresh)."""
    if not (run_dir / runs.CHECKPOINT_FILE).exists():
        return None
    checkpoint = load_checkpoint(run_dir / runs.CHECKPOINT_FILE)
    check_resumable(checkpoint, run_dir / runs.CHECKPOINT_FILE)
    done = int(checkpoint["epoch"])
    summary = runs.read_summary(run_dir)
    if summary is not None and summary.get("early_stopped"):
        raise UsageError(
            f"run {run_dir} stopped early after epoch {done} ({config.early_stop_metric} did not "
            f"improve for {config.early_stop} epochs): training it longer would stop again; "
            "start a new run with a larger --early-stop"
        )
    if done > config.epochs or (done == config.epochs and checkpoint.get("batch", 0) == 0):
        if runs.read_summary(run_dir) is not None:
            raise UsageError(
                f"run {run_dir} already trained {done} epoch{'s' * (done != 1)}: pass --epochs "
                f"with more than {done} to train it further"
            )
    return checkpoint


def _fail(run: Run, message: str) -> None:
    with contextlib.suppress(OSError):  # (on a full disk even these few bytes may not fit)
        run.status("failed", message)
    with contextlib.suppress(OSError):
        run.log.emit("failed", message=message, epoch=run.progress.epoch + 1)


def _run(run: Run) -> dict[str, Any]:
    """The loop: for each epoch, train, validate, checkpoint; then test. Stops at `run.stop`."""
    config, progress = run.config, run.progress
    s = run.s = _setup(run)
    _log_started(run)
    run.status("running", "training")
    resume_mid_epoch = run.checkpoint is not None and progress.batch > 0

    for epoch in range(progress.epoch, config.epochs):
        if progress.should_stop_early(config):  # (stopped by a signal right after the decision)
            break
        if s.world.any(run.stop.is_set()):  # (every rank stops at the same place)
            return _stopped(run)
        if resume_mid_epoch:  # continue a stopped epoch where it left off
            restore_rng(s, run.checkpoint["rng"])
            resume_mid_epoch = False
        else:
            seed_epoch(s, epoch)
            progress.batch, progress.loss_sum, progress.correct, progress.seen = 0, 0.0, 0, 0
        started, images_before = time.perf_counter(), progress.seen
        if s.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(s.device)

        finished = train_one_epoch(s, epoch, progress, run.log, run.stop)
        train_seconds = time.perf_counter() - started
        if not finished:
            progress.seconds += train_seconds
            return _stopped(run)

        val = evaluate(s, s.val_x, s.val_y)
        seconds = time.perf_counter() - started
        images_per_s = (progress.seen - images_before) / max(train_seconds, 1e-9)
        row = _epoch_row(s, epoch, progress, val, seconds, images_per_s)
        progress.end_epoch(row)
        if config.early_stop and progress.track_best(config, row):
            run.save_best()  # before the checkpoint that says so
        run.save_checkpoint()
        run.log.emit("epoch", **row)
        run.status("running", f"epoch {epoch + 1}/{config.epochs} done")
        if progress.should_stop_early(config):
            _log_early_stop(run)
            break

    return _finish(run)


def _early_stop_text(config: TrainConfig, progress: Progress) -> str:
    delta = f" by more than {config.min_delta:g}" if config.min_delta else ""
    return (
        f"early stop after epoch {progress.epoch}: {config.early_stop_metric} has not improved"
        f"{delta} for {progress.since_best} epoch{'s' * (progress.since_best != 1)}; the best "
        f"was epoch {progress.best_epoch} "
        f"({config.early_stop_metric} {progress.best_metric:.4g}), whose weights "
        f"({runs.BEST_FILE}) are tested"
    )


def _log_early_stop(run: Run) -> None:
    config, progress = run.config, run.progress
    run.log.emit(
        "early_stop",
        epoch=progress.epoch,
        epochs=config.epochs,
        best_epoch=progress.best_epoch,
        metric=config.early_stop_metric,
        best=progress.best_metric,
        patience=config.early_stop,
        min_delta=config.min_delta,
        message=_early_stop_text(config, progress),
    )
    run.status("running", f"stopped early after epoch {progress.epoch}")


def training_device(config: TrainConfig, world: World | None = None) -> torch.device:
    """The device a run trains on (a rank of several: its own GPU), with CUDA's speed settings
    switched on and freed host memory kept for the next step (`host_memory`)."""
    device = distributed.rank_device(config.device, world or World())
    host_memory.keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest conv kernels for these shapes
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs: TF32 tensor cores (as convs)
    return device


def _setup(run: Run) -> Setup:
    """Device, data, model and optimizer of the run (their saved state when resuming); with
    several processes, each builds its own (a failure on any fails them all) and trains under
    DistributedDataParallel."""
    config, checkpoint, world = run.config, run.checkpoint, run.world
    device = training_device(config, world)
    run.status("running", f"loading data set {config.dataset}")

    def build() -> Setup:
        background_import.start("torch._dynamo")  # the optimizer's import, while the data loads
        try:
            data = load_data(config)
        finally:
            background_import.wait()
        # resuming: the saved weights replace the start weights, so do not download them again
        weights = "none" if checkpoint is not None else config.resolved_weights
        s = prepare(config, device, data, weights=weights, world=world)
        if checkpoint is not None:
            load_training_state(s, checkpoint, run.dir / runs.CHECKPOINT_FILE)
        if feature_cache.applies(s):  # frozen backbone, no augmentation: its features, once
            run.status("running", "computing the frozen backbone's features")
            s = feature_cache.cache_features(s)
        return s

    s = world.everywhere(build)
    if world.parallel:
        s.train_net = distributed.wrap_model(s.net, device)
    return s


def _log_started(run: Run) -> None:
    s, config, progress = run.s, run.config, run.progress
    assert s is not None
    data = s.data
    total, trainable = models.count_parameters(s.model)
    run.log.emit(
        "run_started",
        run_dir=str(run.dir),
        config=config.to_dict(),
        device=str(s.device),
        device_name=device_name(s.device),
        classes=list(data.classes),
        n_train=len(data.train_y),
        n_val=len(data.val_y),
        n_test=len(data.test_y),
        epochs=config.epochs,
        start_epoch=progress.epoch + 1,
        start_batch=progress.batch,
        batches_per_epoch=s.batches,
        parameters={"total": total, "trainable": trainable},
        pid=distributed.status_pid(),
        **distributed.describe(s.world),  # world_size and each rank's pid and host
        amp={torch.bfloat16: "bf16", torch.float16: "fp16"}.get(s.amp_dtype),
        channels_last=s.prep.channels_last,
        resumed=run.checkpoint is not None,
        data_on_device=s.train_x.device.type == s.device.type,
        data_source=data.source,
        skipped=data.skipped,
    )


def _epoch_row(
    s: Setup, epoch: int, progress: Progress, val: EvalResult, seconds: float, images_per_s: float
) -> dict[str, Any]:
    """The "epoch" event of epoch `epoch` (0-based), also the row kept in the history."""
    return {
        "epoch": epoch + 1,
        "epochs": s.config.epochs,
        "train_loss": progress.loss_sum / max(1, progress.seen),
        "train_acc": progress.correct / max(1, progress.seen),
        "val_loss": val.loss,
        "val_acc": val.accuracy,
        "lr": s.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "images_per_s": images_per_s,
        "gpu_mem_mb": (
            torch.cuda.max_memory_allocated(s.device) / 2**20 if s.device.type == "cuda" else None
        ),
    }


def _stopped(run: Run) -> dict[str, Any]:
    progress = run.progress
    run.save_checkpoint()
    where = f"after epoch {progress.epoch}"
    if progress.batch:
        assert run.s is not None
        where = f"in epoch {progress.epoch + 1} after batch {progress.batch}/{run.s.batches}"
    message = f"stopped {where}; continue with: cnn-tui train --no-ui --resume {run.dir}"
    run.status("stopped", message, batch=progress.batch)
    run.log.emit("stopped", epoch=progress.epoch, batch=progress.batch, message=message)
    return {
        "status": "stopped",
        "message": message,
        "epochs_done": progress.epoch,
        "batch": progress.batch,
        "best_val_acc": progress.best_val_acc,
        "run_dir": str(run.dir),
    }


def _best_weights(run: Run) -> dict[str, Any] | None:
    """best.pt of a run with early stopping (weights_only=True), None without one."""
    if run.config.early_stop and (run.dir / runs.BEST_FILE).is_file():
        return load_checkpoint(run.dir / runs.BEST_FILE)
    return None


def _finish(run: Run) -> dict[str, Any]:
    s, progress, config = run.s, run.progress, run.config
    assert s is not None
    stopped_early = progress.should_stop_early(config) and progress.epoch < config.epochs
    best_epoch = None
    best = run.world.from_main(lambda: _best_weights(run))
    if best is not None:
        load_model_state(s.model, best, run.dir / runs.BEST_FILE)  # (the head of a cached s.net)
        best_epoch = int(best["epoch"])
    run.status("running", "evaluating on the test set")
    test = evaluate(s, s.test_x, s.test_y, keep_predictions=True)
    report = metrics.classification_report(test.confusion, s.data.classes)
    assert test.predictions is not None and test.confidences is not None
    test_x, test_y = s.data.test_x.numpy(), s.data.test_y.numpy()  # the images, not features
    if run.writes:
        runs.write_samples(
            run.dir, test_x, test_y, test.predictions, test.confidences, list(s.data.classes)
        )
    summary = {
        "status": "finished",
        **report,
        "test_loss": test.loss,
        "n_test": len(s.data.test_y),
        "best_val_acc": progress.best_val_acc,
        "epochs_done": progress.epoch,
        "epochs": s.config.epochs,
        "seconds": progress.seconds,
        "model": s.config.model,
        "dataset": s.config.dataset,
        "device": str(s.device),
        "history": progress.history,
        "run_dir": str(run.dir),
        "early_stopped": stopped_early,
        "evaluated_with": "best" if best_epoch is not None else "last",
    }
    if config.early_stop:
        summary.update(
            stopped_epoch=progress.epoch if stopped_early else None,
            best_epoch=best_epoch,
            early_stop_metric=config.early_stop_metric,
            best_metric=progress.best_metric,
        )
    if run.writes:
        runs.write_summary(run.dir, summary)
    run.log.emit(
        "evaluated",
        test_loss=test.loss,
        test_accuracy=report["test_accuracy"],
        macro_precision=report["macro_precision"],
        macro_recall=report["macro_recall"],
        macro_f1=report["macro_f1"],
    )
    extra = {"early_stop_epoch": progress.epoch} if stopped_early else {}
    message = f"finished (early stop @{progress.epoch})" if stopped_early else "finished"
    run.status("finished", message, test_accuracy=report["test_accuracy"], **extra)
    run.log.emit("finished")
    return summary


# --- evaluating a saved run -------------------------------------------------------------------


def run_weights(run_dir: Path, config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(checkpoint, weights, weights file) of a saved run: the weights a run is judged by are
    checkpoint.pt's, or best.pt's for a run with early stopping (its best epoch)."""
    checkpoint = load_checkpoint(run_dir / runs.CHECKPOINT_FILE)
    if config.early_stop and (run_dir / runs.BEST_FILE).is_file():
        return checkpoint, load_checkpoint(run_dir / runs.BEST_FILE), runs.BEST_FILE
    return checkpoint, checkpoint, runs.CHECKPOINT_FILE


def saved_normalization(
    checkpoint: dict[str, Any], channels: int, path: Path
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) a checkpoint was trained with (None for one that saved none); a damaged
    entry is a UsageError naming the file."""
    saved = checkpoint.get("normalization") or {}
    if not (isinstance(saved, dict) and saved.get("mean")):
        return None
    mean, std = saved.get("mean"), saved.get("std")
    if not all(
        isinstance(values, (list, tuple))
        and len(values) == channels
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        for values in (mean, std)
    ) or not all(v > 0 for v in std):
        raise UsageError(
            f"{path} is damaged: its normalization is not "
            f"{channels} finite means and positive standard deviations"
        )
    return tuple(mean), tuple(std)


def evaluate_run(run_dir: str | os.PathLike[str], device_spec: str = "auto") -> dict[str, Any]:
    """Recompute the test metrics of a run from its checkpoint.pt (nothing in the run changes)."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    checkpoint, weights, weights_file = run_weights(run_dir, config)
    device = resolve_device(device_spec)
    data = load_data(config)
    config = config.replace(device=str(device))
    s = prepare(config, device, data, weights="none")
    load_model_state(s.model, weights, run_dir / weights_file)
    saved = saved_normalization(checkpoint, data.channels, run_dir / runs.CHECKPOINT_FILE)
    if saved is not None:
        s.eval_prep.mean, s.eval_prep.std = saved
    test = evaluate(s, s.test_x, s.test_y)
    return {
        **metrics.classification_report(test.confusion, data.classes),
        "test_loss": test.loss,
        "n_test": len(data.test_y),
        "checkpoint_epoch": int(checkpoint["epoch"]),
        "checkpoint_batch": int(checkpoint.get("batch", 0)),
        "weights": weights_file,  # checkpoint.pt, or best.pt for a run with early stopping
        "weights_epoch": int(weights["epoch"]),
        "device": str(device),
        "run_dir": str(run_dir),
    }
