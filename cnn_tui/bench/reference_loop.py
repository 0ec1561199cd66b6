"""The seed-style training loop: the yardstick `cnn-tui bench` measures the engine against.

This is how the lecture notes (seed 004) train: a torchvision-style data set that turns each image
into a PIL image and then a tensor (`ToTensor`, plus `Resize` / `Normalize` so it does the same work
as our engine), a `DataLoader` with `os.cpu_count()` worker processes, and the plain `train_step` /
`test_step` loop — `.item()` per batch, validation every epoch, the test set at the end.

It runs on the same splits (`cnn_tui.training.data.datasets.load_dataset`), the same model (`cnn_tui.training.models.registry`) and
the same optimiser as the engine, so any difference in speed comes from the data path and the loop.
Kept deliberately unoptimised: it is what people write, not what we ship.

`python -m cnn_tui.bench.reference_loop --dataset fashion-mnist --model simple-cnn --epochs 1` is one
whole seed-style run; `cnn-tui bench --whole-run` times it against `cnn-tui train --no-ui`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cnn_tui.commands.train_flags import field_type
from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import FIELDS
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


# Its flags mean the `cnn-tui train` settings of the same name: choices, parsing and limits come
# from `config.FIELDS`. The defaults are the training ones except these, the seed's own: one
# epoch of batches of 32, from scratch (the notes' loop loads no pretrained weights).
SEED_DEFAULTS = {"epochs": 1, "batch_size": 32, "weights": "none"}
SETTINGS = (
    "dataset",
    "data_dir",
    "model",
    "hidden_units",
    "weights",
    "finetune",
    "image_size",
    "epochs",
    "batch_size",
    "lr",
    "val_split",
    "limit",
    "seed",
    "device",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_tui.bench.reference_loop",
        description="One whole seed-style training run (DataLoader + ToTensor + plain loop).",
    )
    for name in SETTINGS:
        field = FIELDS[name]
        if field.choices:
            metavar = "{" + ",".join(field.choices) + "}"
        else:
            metavar = {int: "N", float: "X"}.get(field.kind, name.upper())
        parser.add_argument(
            field.flag,
            dest=name,
            type=field_type(name),
            default=SEED_DEFAULTS.get(name, field.default),
            metavar=metavar,
            help=field.help,
        )
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: cpu count)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Train like the lecture notes; print one JSON line with the result and the timings."""
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    from cnn_tui.training.system.devices import resolve_device

    try:
        device = resolve_device(args.device)
        data = datasets.load_dataset(
            args.dataset,
            args.data_dir,
            val_split=args.val_split,
            seed=args.seed,
            limit=args.limit,
        )
        size = args.image_size or data.image_size[0]
        torch.manual_seed(args.seed)
        model = models.build_model(
            args.model,
            in_channels=data.channels,
            num_classes=data.num_classes,
            image_size=size,
            hidden_units=args.hidden_units,
            weights=args.weights,
            finetune=args.finetune,
        ).to(device)
    except (UsageError, RunError) as exc:
        print(f"reference_loop: {exc}", file=sys.stderr)
        return 2
    transform = seed_transform(data.mean, data.std, size if size != data.image_size[0] else None)
    train_loader = make_loader(
        SeedStyleDataset(data.train_x, data.train_y, transform),
        args.batch_size,
        shuffle=True,
        workers=args.workers,
    )
    val_loader = make_loader(
        SeedStyleDataset(data.val_x, data.val_y, transform),
        args.batch_size,
        shuffle=False,
        workers=args.workers,
    )
    test_loader = make_loader(
        SeedStyleDataset(data.test_x, data.test_y, transform),
        args.batch_size,
        shuffle=False,
        workers=args.workers,
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(models.trainable_parameters(model), lr=args.lr)
    history = []
    for epoch in range(args.epochs):
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
        print(json.dumps({"event": "epoch", **history[-1]}), file=sys.stderr, flush=True)
    test_loss, test_acc = test_step(model, test_loader, loss_fn, device)
    result = {
        "event": "finished",
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "history": history,
        "device": str(device),
        "seconds_in_process": time.perf_counter() - started,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
