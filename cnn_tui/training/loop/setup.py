"""Set-up: everything the training loop works with, built once per process from a TrainConfig.

`prepare(config, device, data)` builds the model (with its start weights), the optimizer and the
batch preparations and returns them as a `Setup`, with the data set's uint8 tensors on the device
when they fit there. A batch is sliced from those tensors and turned into the model's input by
`BatchPrep` (augment, normalise, resize, memory layout) as batched tensor ops, as airbench does:
no DataLoader, no per-image Python work; `batch_logits` is the one place a batch becomes logits.

The speed settings (`speed_settings`: channels_last, autocast to bf16/fp16) follow one rule for
training, evaluation and a saved run's predictions, built on the catalogue's threshold
(`cnn_tui.catalog.AMP_MIN_IMAGE_SIZE`); `training_device` switches on CUDA's fast paths.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.data import datasets
from cnn_tui.training.loop import distributed
from cnn_tui.training.loop.distributed import World
from cnn_tui.training.models import own
from cnn_tui.training.models import registry as models
from cnn_tui.training.system import host_memory
from cnn_tui.training.system.devices import cpu_has_native_bf16

# move the data set to the GPU when it takes at most this fraction of the free memory
DEVICE_DATA_FRACTION = 0.25


# --- a batch: from uint8 images to logits ---------------------------------------------------------


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


def fetch(source: torch.Tensor, index: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
    """Rows `index` of a data tensor, on `device` (copied through pinned memory from the CPU)."""
    rows = source[index]
    if rows.device == device:
        return rows
    if device.type == "cuda":
        rows = rows.pin_memory()
    return rows.to(device, non_blocking=True)


# --- what the loop works with ---------------------------------------------------------------------


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


def prepare(
    config: TrainConfig,
    device: torch.device,
    data: datasets.DataSplits,
    *,
    weights: str,
    world: World | None = None,
    model_source: own.Source | None = None,
) -> Setup:
    """Model, optimizer and batch preparation for `config` on `device` (as rank `world.rank`);
    the user's own class is built from `model_source` (a run's code), by default its file's."""
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
        finetune=config.resolved_finetune,
        source=model_source,
        dataset=config.dataset,
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


def normalization(config: TrainConfig, data: datasets.DataSplits) -> tuple[tuple, tuple]:
    """Pretrained weights want the statistics they were trained with (ImageNet's, from the
    weights' own meta); everything else the data set's own."""
    if catalog.is_pretrained(config.model) and config.resolved_weights != "none":
        mean, std = models.weights_normalization(config.model)
        if data.channels == 1:  # grey images are repeated to RGB inside the model
            return (sum(mean) / 3,), (sum(std) / 3,)
        return mean, std
    return tuple(data.mean), tuple(data.std)


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


def build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD, Adam or AdamW, fused: one kernel per step over all the parameters instead of a
    dozen small ops per tensor (simple-cnn on 2 CPU cores: the Adam step 0.55 -> 0.1 ms)."""
    if not params:
        hint = (
            "check --finetune"
            if catalog.is_pretrained(config.model)
            else "give the class layers with weights"
        )
        raise UsageError(f"the model has no trainable parameters: {hint}")
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


def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """ceil(n / batch_size), leaving out a last batch of fewer than two images per process
    (BatchNorm needs two): with one process, a last batch of a single image."""
    batches = math.ceil(n / batch_size)
    if batches > 1 and 0 < n % batch_size < 2 * world_size:
        batches -= 1
    return batches


def training_device(config: TrainConfig, world: World | None = None) -> torch.device:
    """The device a run trains on (a rank of several: its own GPU), with CUDA's speed settings
    switched on and freed host memory kept for the next step (`host_memory`)."""
    device = distributed.rank_device(config.device, world or World())
    host_memory.keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest conv kernels for these shapes
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs: TF32 tensor cores (as convs)
    return device
