"""The frozen-backbone feature cache trains the same head as the uncached path, only faster.

resnet18 stands for the pretrained models here; resnet50 and vgg16 share its code path.
"""

from __future__ import annotations

import pytest
import torch

from cnn_tui import catalog
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import checkpoints, engine, setup
from cnn_tui.training.models import feature_cache
from cnn_tui.training.models import registry as models

SMALL = dict(
    dataset="shapes",
    model="resnet18",
    weights="none",
    finetune="head",
    epochs=2,
    batch_size=32,
    limit=200,
    device="cpu",
    seed=3,
)


def _train(tmp_path, name: str, **changes) -> tuple[dict, list[dict]]:
    config = TrainConfig.from_mapping({**SMALL, **changes})
    events: list[dict] = []
    summary = engine.train(config, tmp_path / name, on_event=events.append)
    return summary, events


def test_cached_and_uncached_head_training_agree(tmp_path) -> None:
    cached, _ = _train(tmp_path, "cached", cache_features=True)
    plain, _ = _train(tmp_path, "plain", cache_features=False)
    assert cached["status"] == plain["status"] == "finished"
    assert cached["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=1e-9)
    assert cached["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-4, abs=1e-5)
    for ours, theirs in zip(cached["history"], plain["history"], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4, abs=1e-5)
        assert ours["val_acc"] == pytest.approx(theirs["val_acc"], abs=1e-9)


def test_resnet50_with_its_dropout_head_trains_the_same_cached_or_not(tmp_path) -> None:
    """The head's Dropout(0.2) draws the same masks whether the backbone ran this epoch or not."""
    changes = {"model": "resnet50", "limit": 60, "batch_size": 16}
    cached, _ = _train(tmp_path, "cached", cache_features=True, **changes)
    plain, _ = _train(tmp_path, "plain", cache_features=False, **changes)
    assert cached["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=1e-9)
    for ours, theirs in zip(cached["history"], plain["history"], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4, abs=1e-5)


def test_a_torchvision_model_with_a_dropout_head_trains_the_same_cached_or_not(tmp_path) -> None:
    """MobileNetV3's head part is Dropout(0.2) + Linear(1024, K): run up to it once per image."""
    changes = {"model": "torchvision:mobilenet_v3_small", "limit": 60, "batch_size": 16}
    cached, _ = _train(tmp_path, "cached", cache_features=True, **changes)
    plain, _ = _train(tmp_path, "plain", cache_features=False, **changes)
    assert cached["test_accuracy"] == pytest.approx(plain["test_accuracy"], abs=1e-9)
    for ours, theirs in zip(cached["history"], plain["history"], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4, abs=1e-5)


def test_the_cached_run_saves_the_whole_resnet(tmp_path) -> None:
    _train(tmp_path, "cached", cache_features=True, epochs=1)
    checkpoint = checkpoints.load_checkpoint(tmp_path / "cached" / "checkpoint.pt")
    reference = models.build_model("resnet18", in_channels=3, num_classes=10, image_size=32)
    assert set(checkpoint["model"]) == set(reference.state_dict())
    assert checkpoint["normalization"]["mean"]  # the image normalisation, not the features'


def _setup(**changes) -> setup.Setup:
    from cnn_tui.training.data import datasets

    config = TrainConfig.from_mapping({**SMALL, "limit": 40, **changes})
    data = datasets.load_dataset("shapes", limit=40, val_split=0.1, seed=0)
    return setup.prepare(config, torch.device("cpu"), data, weights="none")


@pytest.mark.parametrize(
    "changes",
    [
        {"cache_features": False},
        {"augment": "flip"},
        {"finetune": "layer4"},
        {"finetune": "last-block", "model": "vgg16"},
        {"finetune": "all"},
        {"model": "simple-cnn", "weights": "auto"},
    ],
)
def test_the_cache_applies_only_to_a_frozen_backbone_without_augmentation(changes) -> None:
    assert feature_cache.applies(_setup(**changes)) is False


@pytest.mark.parametrize(
    "model, features",
    [
        ("resnet18", 512),
        ("resnet50", 2048),
        ("vgg16", 4096),
        ("torchvision:mobilenet_v3_small", 1024),
    ],
)
def test_cached_features_are_the_backbone_output_and_the_head_gives_the_logits(
    model, features
) -> None:
    s = _setup(model=model, amp=False)  # fp32: exact; bf16 autocast rounds batch by batch
    assert feature_cache.applies(s)
    cached = feature_cache.cache_features(s)
    assert cached.train_x.shape == (len(s.train_y), features)
    backbone, _ = models.backbone_and_head(s.model)
    with torch.no_grad():  # the cache holds what the frozen backbone computes, image by image
        computed = backbone(s.eval_prep(s.train_x[:5]))
    torch.testing.assert_close(cached.train_x[:5], computed, rtol=1e-4, atol=1e-5)
    assert cached.test_y.device == cached.test_x.device
    models.set_train_mode(s.model, False)
    with torch.no_grad():
        direct = s.model(s.eval_prep(s.test_x))
        via_cache = setup.batch_logits(cached.net, cached.test_x, cached.eval_prep)
    torch.testing.assert_close(via_cache, direct, rtol=1e-4, atol=1e-5)


def test_backbone_batches_shrink_for_large_images() -> None:
    assert catalog.backbone_batch_size(32, 4096) == 4096
    assert catalog.backbone_batch_size(224, 4096) == 256
    assert catalog.backbone_batch_size(512, 4096) >= 16
