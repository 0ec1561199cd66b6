"""The seed-style training loop: the yardstick `cnn-tui bench` measures the engine against.

This is how the lecture notes (seed 004) train: a torchvision-style data set that turns each image
into a PIL image and then a tensor (`ToTensor`, plus `Resize` / `Normalize` so it does the same work
as our engine), a `DataLoader` with `os.cpu_count()` worker processes, and the plain `train_step` /
`test_step` loop — `.item()` per batch, validation every epoch, the test set at the end.

It runs on the same splits (`cnn_tui.training.data.datasets.load_dataset`), the same model
(`cnn_tui.training.models.registry`) and the same optimiser as the engine, so any difference in
speed comes from the data path and the loop. Kept deliberately unoptimised: it is what people
write, not what we ship.

The speed mode of `cnn-tui bench` times its `train_step` / `test_step` batch by batch; `prepare`
and `run` are one whole seed-style run, which `python -m cnn_tui.commands.reference_loop
--dataset fashion-mnist --model simple-cnn --epochs 1` starts as its own process and
`cnn-tui bench --whole-run` times against `cnn-tui train --no-ui`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cnn_tui.bench.options import SeedRunOptions
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.data import datasets
from cnn_tui.training.models import registry as models


class SeedStyleDataset(Dataset):
    """Like torchvision's MNIST / CIFAR10 classes: uint8 arrays in memory, one PIL image per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None) -> None:
        array = images.numpy()  # (N, C, H, W) uint8
        # torchvision keeps MNIST as (N, H, W) and CIFAR-10 as (N, H, W, C)
        self.data = (
            array[:, 0]
            if array.shape[1] == 1
            else np.ascontiguousarray(array.transpose(0, 2, 3, 1))
        )
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, target = self.data[index], self.targets[index]
        img = Image.fromarray(img)  # (H, W) uint8: mode L; (H, W, 3): RGB
        if self.transform is not None:
            img = self.transform(img)
        return img, target


def seed_transform(
    mean: Sequence[float], std: Sequence[float], image_size: int | None
) -> transforms.Compose:
    """Resize (when asked), ToTensor, Normalize: the per-image version of the engine's BatchPrep."""
    steps: list = [transforms.Resize((image_size, image_size))] if image_size else []
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def make_loader(
    dataset: Dataset, batch_size: int, *, shuffle: bool, workers: int | None = None
) -> DataLoader:
    """The lecture notes' DataLoader: os.cpu_count() workers, pinned memory on CUDA."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=(os.cpu_count() or 0) if workers is None else workers,
        pin_memory=torch.cuda.is_available(),
    )


def train_step(
    model: nn.Module,
    batches: Iterable,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> tuple[float, float]:
    """One pass over `batches` (a DataLoader, or an islice of its iterator): mean loss and acc."""
    models.set_train_mode(model, True)
    train_loss, train_acc, count = 0.0, 0.0, 0
    for X, y in batches:
        X, y = X.to(device), y.to(device)
        y_pred = model(X)
        loss = loss_fn(y_pred, y)
        train_loss += loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        y_pred_class = torch.argmax(torch.softmax(y_pred, dim=1), dim=1)
        train_acc += (y_pred_class == y).sum().item() / len(y_pred)
        count += 1
    return train_loss / max(1, count), train_acc / max(1, count)


def test_step(
    model: nn.Module, batches: Iterable, loss_fn: nn.Module, device: torch.device
) -> tuple[float, float]:
    """Mean loss and accuracy over `batches` (mean of per-batch values, as in the notes)."""
    models.set_train_mode(model, False)
    test_loss, test_acc, count = 0.0, 0.0, 0
    with torch.inference_mode():
        for X, y in batches:
            X, y = X.to(device), y.to(device)
            test_pred_logits = model(X)
            loss = loss_fn(test_pred_logits, y)
            test_loss += loss.item()
            test_pred_labels = test_pred_logits.argmax(dim=1)
            test_acc += (test_pred_labels == y).sum().item() / len(test_pred_labels)
            count += 1
    return test_loss / max(1, count), test_acc / max(1, count)


def take(loader_iter, n: int) -> Iterable:
    """The next `n` batches of a DataLoader iterator (for timing a fixed number of batches)."""
    return itertools.islice(loader_iter, n)


@dataclass
class SeedRun:
    """What one whole seed-style run trains: the model on its device and the data set."""

    options: SeedRunOptions
    device: torch.device
    data: datasets.DataSplits
    model: nn.Module


def prepare(options: SeedRunOptions) -> SeedRun:
    """Resolve the device, load the data set and build the model; bad input is a UsageError
    (a data set that cannot be had: a RunError) before any training."""
    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(options.device)
    data = datasets.load_dataset(
        options.dataset,
        options.data_dir,
        val_split=options.val_split,
        seed=options.seed,
        limit=options.limit,
    )
    size = options.image_size or data.image_size[0]
    torch.manual_seed(options.seed)
    model = models.build_model(
        options.model,
        in_channels=data.channels,
        num_classes=data.num_classes,
        image_size=size,
        hidden_units=options.hidden_units,
        weights=options.weights,
        # --finetune auto as `cnn-tui train` reads it (the head, or all layers of random weights)
        finetune=TrainConfig(
            model=options.model, weights=options.weights, finetune=options.finetune
        ).resolved_finetune,
    ).to(device)
    return SeedRun(options, device, data, model)


def run(prepared: SeedRun, on_epoch: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Train like the lecture notes: every epoch a pass over the training set and one over the
    validation set (`on_epoch` gets its losses, accuracies and seconds), then the test set.
    Returns the test accuracy and loss, the epochs' history and the device."""
    options, data, device, model = prepared.options, prepared.data, prepared.device, prepared.model
    size = options.image_size or data.image_size[0]
    transform = seed_transform(data.mean, data.std, size if size != data.image_size[0] else None)

    def loader(images: torch.Tensor, labels: torch.Tensor, shuffle: bool) -> DataLoader:
        dataset = SeedStyleDataset(images, labels, transform)
        return make_loader(dataset, options.batch_size, shuffle=shuffle, workers=options.workers)

    train_loader = loader(data.train_x, data.train_y, True)
    val_loader = loader(data.val_x, data.val_y, False)
    test_loader = loader(data.test_x, data.test_y, False)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(models.trainable_parameters(model), lr=options.lr)
    history = []
    for epoch in range(options.epochs):
        epoch_started = time.perf_counter()
        train_loss, train_acc = train_step(model, train_loader, loss_fn, optimizer, device)
        val_loss, val_acc = test_step(model, val_loader, loss_fn, device)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - epoch_started,
            }
        )
        on_epoch(history[-1])
    test_loss, test_acc = test_step(model, test_loader, loss_fn, device)
    return {
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "history": history,
        "device": str(device),
    }
