"""Models: shapes of every model, the seeds' layer sizes, resnet18 weights and freezing."""

from __future__ import annotations

import time

import pytest
import torch
import torchvision
from torch import nn

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training import models


def _resnet(num_classes: int = 5, **kwargs) -> nn.Module:
    return models.build_model(
        "resnet18", in_channels=3, num_classes=num_classes, image_size=32, **kwargs
    )


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_every_model_maps_a_batch_to_logits(name, channels, size):
    torch.manual_seed(0)
    model = models.build_model(name, in_channels=channels, num_classes=7, image_size=size)
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(3, channels, size, size))
    assert logits.shape == (3, 7) and torch.isfinite(logits).all()
    total, trainable = models.count_parameters(model)
    assert total == trainable > 0


def test_simple_cnn_has_the_lecture_notes_layers():
    model = models.build_model("simple-cnn", in_channels=3, num_classes=10, image_size=32)
    conv1, relu1, conv2, relu2, pool = model.conv_block_1
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.padding) == (
        3, 10, (3, 3), (1, 1),
    )  # fmt: skip
    assert (conv2.in_channels, conv2.out_channels, conv2.kernel_size, conv2.padding) == (
        10, 10, (3, 3), (1, 1),
    )  # fmt: skip
    assert isinstance(relu1, nn.ReLU) and isinstance(relu2, nn.ReLU)
    assert isinstance(pool, nn.MaxPool2d) and pool.kernel_size == 2
    flatten, linear = model.classifier
    assert isinstance(flatten, nn.Flatten)
    assert (linear.in_features, linear.out_features) == (10 * 16 * 16, 10)
    assert models.count_parameters(model) == (26_800, 26_800)
    wide = models.build_model(
        "simple-cnn", in_channels=1, num_classes=10, image_size=28, hidden_units=16
    )
    assert wide.classifier[1].in_features == 16 * 14 * 14


def test_custom_cnn_and_the3_cnn_flatten_sizes():
    custom32 = models.build_model("custom-cnn", in_channels=3, num_classes=10, image_size=32)
    assert custom32.classifier[1].in_features == 256 * 2 * 2  # as in the notes
    custom28 = models.build_model("custom-cnn", in_channels=1, num_classes=10, image_size=28)
    assert custom28.classifier[1].in_features == 256  # 28 -> 14 -> 7 -> 3 -> 1
    the3 = models.build_model("the3-cnn", in_channels=3, num_classes=10, image_size=32)
    assert [m.out_channels for m in the3.features if isinstance(m, nn.Conv2d)] == [16, 32, 64]
    assert the3.classifier[1].in_features == 64 * 4 * 4
    assert the3.training and custom32.training  # building does not leave layers in eval mode
    assert all(m.training for m in custom32.modules())
    with pytest.raises(UsageError, match="too small for custom-cnn"):
        models.build_model("custom-cnn", in_channels=3, num_classes=10, image_size=8)


def test_resnet18_state_dict_loads_into_torchvision_resnet18():
    model = _resnet(num_classes=5)
    reference = torchvision.models.resnet18(num_classes=5)
    reference.load_state_dict(model.state_dict())  # strict: same names, same shapes
    model.eval(), reference.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_resnet18_repeats_a_grey_channel():
    model = models.build_model("resnet18", in_channels=1, num_classes=4, image_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), model(x.repeat(1, 3, 1, 1)))
    torchvision.models.resnet18(num_classes=4).load_state_dict(model.state_dict())


@pytest.mark.parametrize("finetune", ["head", "layer4"])
def test_frozen_layers_stay_bit_identical_while_training(finetune):
    torch.manual_seed(0)
    model = _resnet(num_classes=3, finetune=finetune)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = models.trainable_parameters(model)
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    models.set_train_mode(model, True)
    assert model.training and model.fc.training
    for _ in range(2):  # two steps, so momentum and weight decay act too
        x, y = torch.randn(3, 3, 16, 16), torch.tensor([0, 1, 2])
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    trainable = ("fc.",) if finetune == "head" else ("fc.", "layer4.")
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith(trainable):
            continue
        assert torch.equal(after[key], value), f"{key} changed"
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    if finetune == "layer4":
        assert not torch.equal(
            after["layer4.1.bn2.running_mean"], before["layer4.1.bn2.running_mean"]
        )
        assert not torch.equal(after["layer4.0.conv1.weight"], before["layer4.0.conv1.weight"])
        assert model.layer4[0].bn1.training and not model.layer3[0].bn1.training
    else:
        assert not model.layer4[0].bn1.training
    total, n_trainable = models.count_parameters(model)
    assert n_trainable == sum(p.numel() for p in params) < total
    if finetune == "head":
        assert n_trainable == 512 * 3 + 3
    models.set_train_mode(model, False)
    assert not any(m.training for m in model.modules())


def test_finetune_all_trains_every_layer():
    model = _resnet(finetune="all")
    assert all(p.requires_grad for p in model.parameters())
    models.set_train_mode(model, True)
    assert all(m.training for m in model.modules())
    assert models.backbone_and_head(model) is None


def test_backbone_and_head_compose_to_the_model():
    model = models.build_model(
        "resnet18", in_channels=1, num_classes=6, image_size=28, finetune="head"
    ).eval()
    parts = models.backbone_and_head(model)
    assert parts is not None
    backbone, head = parts
    assert head is model.fc
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        features = backbone(x)
        assert features.shape == (3, 512)
        assert torch.allclose(head(features), model(x))
    assert all(not p.requires_grad for p in backbone.parameters())
    small = models.build_model("simple-cnn", in_channels=3, num_classes=2, image_size=32)
    assert models.backbone_and_head(small) is None


def test_weights_path_round_trip(tmp_path):
    torch.manual_seed(1)
    source = _resnet(num_classes=5)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    loaded = _resnet(num_classes=5, weights=str(path), finetune="all")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key  # head too: same shape
    # our own checkpoint dict, and a DataParallel-style prefix
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    from_checkpoint = _resnet(num_classes=5, weights=str(tmp_path / "checkpoint.pt"))
    assert torch.equal(from_checkpoint.conv1.weight, source.conv1.weight)
    prefixed = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save(prefixed, tmp_path / "prefixed.pt")
    from_prefixed = _resnet(num_classes=5, weights=str(tmp_path / "prefixed.pt"))
    assert torch.equal(from_prefixed.layer2[0].bn1.running_var, source.layer2[0].bn1.running_var)


def test_weights_path_with_another_head_keeps_only_the_backbone(tmp_path):
    imagenet_like = torchvision.models.resnet18()  # 1000 classes
    torch.save(imagenet_like.state_dict(), tmp_path / "r18.pth")
    model = _resnet(num_classes=4, weights=str(tmp_path / "r18.pth"), finetune="head")
    assert model.fc.out_features == 4
    assert torch.equal(model.layer3[1].conv2.weight, imagenet_like.layer3[1].conv2.weight)
    assert models.count_parameters(model)[1] == 512 * 4 + 4


def test_bad_weights_files_are_usage_errors_naming_the_file(tmp_path):
    with pytest.raises(UsageError, match="missing.pt: no such file"):
        _resnet(weights=str(tmp_path / "missing.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"this is not a torch file")
    with pytest.raises(UsageError, match="garbage.pt is not a readable state_dict"):
        _resnet(weights=str(tmp_path / "garbage.pt"))
    small = models.build_model("simple-cnn", in_channels=3, num_classes=5, image_size=32)
    torch.save(small.state_dict(), tmp_path / "simple.pt")
    with pytest.raises(UsageError, match="simple.pt does not fit resnet18.*missing"):
        _resnet(weights=str(tmp_path / "simple.pt"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(UsageError, match="list.pt does not hold a state_dict"):
        _resnet(weights=str(tmp_path / "list.pt"))
    resized = torchvision.models.resnet18().state_dict()
    resized["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(resized, tmp_path / "resized.pt")
    with pytest.raises(UsageError, match="wrong shape: conv1.weight"):
        _resnet(weights=str(tmp_path / "resized.pt"))


def test_imagenet_weights_without_network_fail_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached copy
    monkeypatch.setattr(
        models, "IMAGENET_WEIGHTS_URL", "https://weights.invalid/resnet18-f37072fd.pth"
    )
    start = time.monotonic()
    with pytest.raises(RunError, match="ImageNet weights.*--weights none or --weights PATH"):
        _resnet(weights="imagenet")
    assert time.monotonic() - start < 30


def test_bad_options_are_usage_errors_listing_the_valid_values():
    with pytest.raises(UsageError, match="simple-cnn, the3-cnn, custom-cnn, resnet18"):
        models.build_model("vgg16", in_channels=3, num_classes=10, image_size=32)
    with pytest.raises(UsageError, match="head, layer4, all"):
        _resnet(finetune="layer3")
    with pytest.raises(UsageError, match="resnet18 only"):
        models.build_model(
            "simple-cnn", in_channels=3, num_classes=10, image_size=32, weights="imagenet"
        )
    with pytest.raises(UsageError, match="1- or 3-channel"):
        models.build_model("resnet18", in_channels=4, num_classes=10, image_size=32)
    with pytest.raises(UsageError, match="positive"):
        models.build_model("simple-cnn", in_channels=3, num_classes=0, image_size=32)


def test_small_models_ignore_finetune_and_auto_weights():
    model = models.build_model(
        "the3-cnn", in_channels=3, num_classes=10, image_size=32, weights="auto", finetune="head"
    )
    assert all(p.requires_grad for p in model.parameters())
