"""Frozen-backbone feature cache: compute a pretrained model's features once, then train the head.

With `--finetune head` and no augmentation the backbone of resnet18, resnet50 or vgg16 (ResNet's
conv1 ... avgpool; VGG's conv layers and its first two fully connected layers) is a fixed function
of each image: its weights are frozen and its BatchNorm and dropout layers stay in eval mode
(`models.set_train_mode`). Running it again every epoch recomputes the same 512 / 2048 / 4096
numbers per image. So `cache_features` runs it once over the train, validation and test images —
in large batches, on the device, in eval mode, under the same autocast as training — and the loop
then slices batches of those features and runs the head alone (`Linear(512, K)`; resnet50's
Dropout(0.2) + Linear(2048, K); vgg16's Dropout(0.5) + Linear(4096, K)). A 10-epoch head-only run
costs about one backbone pass.

The engine calls `cache_features(setup)` after building the model (and loading a checkpoint, when
resuming) if `applies(setup)`. The returned Setup holds the features where the uint8 images were,
batch preparations that pass rows on unchanged (`BatchPrep.features`) and the head as `net`, the
module each batch runs through. The model object, the optimizer and the checkpoint are unchanged:
the head is the model's own last layer (and the dropout before it), so the saved state_dict is the
whole network's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnn_tui.catalog import backbone_batch_size
from cnn_tui.training.models import registry as models


def applies(setup: Any) -> bool:
    """True for a run whose backbone is frozen and whose images are not augmented, when asked."""
    config = setup.config
    return (
        config.cache_features
        and config.augment == "none"
        and models.backbone_and_head(setup.model) is not None
    )


@torch.no_grad()  # not inference_mode: the features are later inputs of a layer that trains
def compute_features(
    backbone: nn.Module,
    images: torch.Tensor,
    prep: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    batch_size: int,
    autocast: Callable[[], Any],
) -> torch.Tensor:
    """The backbone's output for every image, (N, features), on `device`, batch by batch."""
    backbone.eval()
    parts = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device, non_blocking=True)
        with autocast():
            parts.append(backbone(prep(x)))
    if not parts:  # no images: as many features as the backbone would make, from a dummy image
        size = images.shape[1:]
        dummy = torch.zeros((1, *size), dtype=images.dtype, device=device)
        with autocast():
            return backbone(prep(dummy))[:0]
    return torch.cat(parts)


def cache_features(setup: Any) -> Any:
    """A copy of the engine's Setup whose data tensors are the backbone's features (on the device).

    Labels move to the device with them so that one index tensor slices both.
    """
    split = models.backbone_and_head(setup.model)
    if split is None:
        raise ValueError("cache_features needs a pretrained model frozen but for its head")
    backbone, head = split
    prep = setup.eval_prep
    size = prep.image_size or int(setup.train_x.shape[-1])
    batch = backbone_batch_size(size, max(setup.eval_batch_size, setup.config.batch_size))
    device = setup.device

    def features(images: torch.Tensor) -> torch.Tensor:
        return compute_features(backbone, images, prep, device, batch, setup.autocast)

    return dataclasses.replace(
        setup,
        train_x=features(setup.train_x),
        train_y=setup.train_y.to(device),
        val_x=features(setup.val_x),
        val_y=setup.val_y.to(device),
        test_x=features(setup.test_x),
        test_y=setup.test_y.to(device),
        net=head,
        prep=dataclasses.replace(setup.prep, features=True),
        eval_prep=dataclasses.replace(prep, features=True),
    )
