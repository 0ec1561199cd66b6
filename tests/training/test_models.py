"""Models: shapes of every model, the seeds' layer sizes, pretrained weights and freezing."""

from __future__ import annotations

import time

import pytest
import torch
import torchvision
from torch import nn

from cnn_tui import catalog
from cnn_tui.catalog import PRETRAINED_MODELS
from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.models import registry as models
from cnn_tui.training.models import sizes as model_sizes


def _resnet(num_classes: int = 5, **kwargs) -> nn.Module:
    return models.build_model(
        "resnet18", in_channels=3, num_classes=num_classes, image_size=32, **kwargs
    )


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_every_model_maps_a_batch_to_logits(name, channels, size):
    torch.manual_seed(0)
    if size < catalog.MODELS[name].min_image_size:
        with pytest.raises(UsageError, match=f"{name} needs images of at least 32 px"):
            models.build_model(name, in_channels=channels, num_classes=7, image_size=size)
        return
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


@pytest.mark.parametrize("finetune", ["head", "layer4", "last-block"])
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
    if finetune != "head":
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
        models, "imagenet_weights_url", lambda name: f"https://weights.invalid/{name}-0123abcd.pth"
    )
    start = time.monotonic()
    with pytest.raises(RunError, match="ImageNet weights for resnet18.*--weights none or"):
        _resnet(weights="imagenet")
    assert time.monotonic() - start < 30


def test_bad_options_are_usage_errors_listing_the_valid_values():
    with pytest.raises(UsageError, match="simple-cnn, the3-cnn, custom-cnn, resnet18, resnet50"):
        models.build_model("vgg19", in_channels=3, num_classes=10, image_size=32)
    with pytest.raises(UsageError, match="head, last-block, all, layer4"):
        _resnet(finetune="layer3")
    with pytest.raises(UsageError, match="pretrained models only"):
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


# --- the pretrained backbones: resnet18, resnet50, vgg16 share every path ---------------------


def _pretrained(name: str, num_classes: int = 3, **kwargs) -> nn.Module:
    kwargs = {"weights": "none", "finetune": "head", **kwargs}
    return models.build_model(name, in_channels=3, num_classes=num_classes, image_size=32, **kwargs)


def test_one_table_for_the_pretrained_models():
    assert tuple(models.PRETRAINED) == PRETRAINED_MODELS == tuple(model_sizes.SIZES)
    for name, spec in models.PRETRAINED.items():
        enum = models._weights_enum(name)
        assert name in enum.url and enum.url.endswith(".pth")
        assert models.imagenet_weights_url(name) == enum.url
        assert spec.head in spec.trainable["head"]
    assert models.PRETRAINED["resnet50"].weights == "ResNet50_Weights.IMAGENET1K_V2"  # DEFAULT
    assert models.imagenet_weights_url("resnet18").endswith("resnet18-f37072fd.pth")
    for name in PRETRAINED_MODELS:  # what the engine normalises pretrained inputs with
        mean, std = models.weights_normalization(name)
        assert mean == pytest.approx((0.485, 0.456, 0.406))
        assert std == pytest.approx((0.229, 0.224, 0.225))


@pytest.mark.parametrize("name", PRETRAINED_MODELS)
def test_state_dict_loads_as_is_into_torchvision_and_computes_the_same(name):
    torch.manual_seed(0)
    model = _pretrained(name, num_classes=5).eval()
    reference = getattr(torchvision.models, name)(num_classes=5).eval()
    reference.load_state_dict(model.state_dict())  # strict: same names, same shapes
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert models.count_parameters(model) == (
        sum(p.numel() for p in reference.parameters()),
        models.PRETRAINED[name].features * 5 + 5,
    )


def test_resnet50_head_is_the_lectures_dropout_and_linear():
    torch.manual_seed(0)
    model = _pretrained("resnet50", num_classes=4)
    torch.manual_seed(0)
    plain = torchvision.models.resnet50(num_classes=4)
    head = model.fc
    assert isinstance(head, models.DropoutLinear) and isinstance(head, nn.Linear)
    assert (head.in_features, head.out_features, head.p) == (2048, 4, 0.2)
    assert set(head.state_dict()) == {"weight", "bias"}
    for key, value in plain.state_dict().items():  # same start as torchvision's, head included
        assert torch.equal(model.state_dict()[key], value), key
    features = torch.ones(64, 2048)
    head.eval()
    assert torch.equal(head(features), nn.functional.linear(features, head.weight, head.bias))
    head.train()
    torch.manual_seed(1)
    dropped = head(features)
    torch.manual_seed(1)
    mask = nn.functional.dropout(features, 0.2, True)
    assert torch.equal(dropped, nn.functional.linear(mask, head.weight, head.bias))
    assert "dropout=0.2" in repr(head)


@pytest.mark.parametrize(
    "name, finetune, trainable",
    [
        ("resnet18", "last-block", ("layer4.", "fc.")),
        ("resnet50", "head", ("fc.",)),
        ("resnet50", "last-block", ("layer4.", "fc.")),
        ("resnet50", "layer4", ("layer4.", "fc.")),
        ("vgg16", "head", ("classifier.6.",)),
        ("vgg16", "last-block", ("classifier.",)),
        ("vgg16", "all", ("",)),
    ],
)
def test_finetune_trains_these_parameters_and_nothing_else(name, finetune, trainable):
    model = _pretrained(name, finetune=finetune)
    for key, parameter in model.named_parameters():
        assert parameter.requires_grad == key.startswith(trainable), key
    assert models.count_parameters(model)[1] == sum(
        p.numel() for key, p in model.named_parameters() if key.startswith(trainable)
    )


def test_layer4_is_resnets_name_for_its_last_block():
    with pytest.raises(UsageError, match="layer4 is a ResNet block; vgg16 has none.*last-block"):
        _pretrained("vgg16", finetune="layer4")


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_frozen_parts_stay_bit_identical_and_in_eval_mode(name):
    torch.manual_seed(0)
    model = _pretrained(name, num_classes=3, finetune="head")
    head = models.PRETRAINED[name].head + "."
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(models.trainable_parameters(model), lr=0.1, weight_decay=5e-4)
    models.set_train_mode(model, True)
    for _ in range(2):
        x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    after = model.state_dict()
    for key, value in before.items():
        if not key.startswith(head):
            assert torch.equal(after[key], value), f"{key} changed"
    assert not torch.equal(after[head + "weight"], before[head + "weight"])
    layers = dict(model.named_modules())
    if name == "resnet50":
        assert not layers["layer4.2.bn3"].training and not layers["bn1"].training
        assert model.fc.training  # the head's dropout is on while it trains
    else:  # vgg16: the dropout in the frozen classifier is off, the one before the head on
        assert not layers["classifier.2"].training and layers["classifier.5"].training
    models.set_train_mode(model, False)
    assert not any(m.training for m in model.modules())


def test_last_block_batchnorm_trains_and_the_rest_stays_in_eval_mode():
    model = _pretrained("resnet50", finetune="last-block")
    models.set_train_mode(model, True)
    assert model.layer4[0].bn1.training and model.layer4[0].downsample[1].training
    assert not model.layer3[5].bn3.training and not model.bn1.training
    vgg = _pretrained("vgg16", finetune="last-block")
    models.set_train_mode(vgg, True)
    assert all(m.training for m in vgg.classifier) and not vgg.features[0].training


@pytest.mark.parametrize("name", PRETRAINED_MODELS)
def test_backbone_and_head_of_every_pretrained_model(name):
    torch.manual_seed(0)
    model = models.build_model(
        name, in_channels=1, num_classes=6, image_size=32, weights="none", finetune="head"
    ).eval()
    parts = models.backbone_and_head(model)
    assert parts is not None
    backbone, head = parts
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        features = backbone(x)
        assert features.shape == (3, models.PRETRAINED[name].features)
        torch.testing.assert_close(head(features), model(x))
    assert all(not p.requires_grad for p in backbone.parameters())
    assert all(p.requires_grad for p in head.parameters())
    assert models.backbone_and_head(_pretrained(name, finetune="last-block")) is None


@pytest.mark.parametrize("name", ["resnet50", pytest.param("vgg16", marks=pytest.mark.slow)])
def test_weights_file_in_torchvisions_imagenet_format_keeps_the_backbone(name, tmp_path):
    """A 1000-class state_dict, as torchvision saves ImageNet weights: the head is replaced."""
    torch.manual_seed(2)
    imagenet_like = getattr(torchvision.models, name)(weights=None)
    path = tmp_path / f"{name}.pth"
    torch.save(imagenet_like.state_dict(), path)
    del imagenet_like  # vgg16 is 528 MiB
    source = models.torch_load(path)
    model = _pretrained(name, num_classes=4, weights=str(path), finetune="head")
    head = models.PRETRAINED[name].head + "."
    for key, value in model.state_dict().items():
        if key.startswith(head):
            assert value.shape[0] == 4 and source[key].shape[0] == 1000
        else:
            assert torch.equal(value, source[key]), key
    assert models.count_parameters(model)[1] == models.PRETRAINED[name].features * 4 + 4


def test_a_weights_file_of_another_network_names_the_model(tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(UsageError, match="r18.pt does not fit resnet50.*wrong shape"):
        _pretrained("resnet50", weights=str(tmp_path / "r18.pt"))


# --- model_sizes: the form's torch-free numbers match the real networks -----------------------


def _measured(name: str, image_size: int, finetune: str) -> tuple[int, int]:
    """(values kept for backward per image, largest frozen layer input + output) of the real
    network on the meta device: each layer's output from the first one that trains on."""
    with torch.device("meta"):
        model = getattr(torchvision.models, name)(num_classes=10).eval()
    trainable = models.trainable_modules(name, finetune)
    seen: list[tuple[str, int, int]] = []
    for key, module in model.named_modules():
        if not any(True for _ in module.children()):
            module.register_forward_hook(
                lambda m, i, o, key=key: seen.append((key, i[0][0].numel(), o[0].numel()))
            )
    model(torch.zeros(1, 3, image_size, image_size, device="meta"))
    first = next(i for i, (key, _, _) in enumerate(seen) if models._under(key, trainable))
    kept = seen[first][1] + sum(out for _, _, out in seen[first:])
    return kept, max((i + o for _, i, o in seen[:first]), default=0)


@pytest.mark.parametrize("name", PRETRAINED_MODELS)
def test_model_sizes_match_torchvision(name):
    with torch.device("meta"):
        real = models.build_model(
            name, in_channels=3, num_classes=10, image_size=32, finetune="head"
        )
    for finetune in ("head", "last-block", "all"):
        models._freeze(real, name, models.trainable_modules(name, finetune))
        found = model_sizes.estimate(name, num_classes=10, image_size=224, batch_size=1,
                                     finetune=finetune)  # fmt: skip
        assert (found.params, found.trainable) == models.count_parameters(real), finetune
        for size in (224, 64):
            kept, peak = _measured(name, size, finetune)
            spatial, flat = model_sizes.SIZES[name].activations[finetune]
            estimate = spatial * (size / 224) ** 2 + flat + 10
            assert estimate == pytest.approx(kept, rel=0.1), (finetune, size)
            if finetune != "all":
                scaled = model_sizes.SIZES[name].peak * (size / 224) ** 2
                assert scaled == pytest.approx(peak, rel=0.1), (finetune, size)


@pytest.mark.parametrize("name", ["simple-cnn", "the3-cnn", "custom-cnn", "fast-cnn"])
def test_a_channels_last_model_gets_the_same_gradients_laid_out_channels_last(name):
    from cnn_tui.training.models.layers import Flatten

    torch.manual_seed(0)
    model = models.build_model(name, in_channels=1, num_classes=10, image_size=28)
    models.set_train_mode(model, False)  # no dropout: both passes compute the same function
    plain = models.build_model(name, in_channels=1, num_classes=10, image_size=28)
    plain.load_state_dict(model.state_dict())
    models.set_train_mode(plain, False)
    for module in plain.modules():  # the same network with torch's own Flatten
        for child_name, child in module.named_children():
            if isinstance(child, Flatten):
                setattr(module, child_name, nn.Flatten(child.start_dim, child.end_dim))
    model.to(memory_format=torch.channels_last)
    plain.to(memory_format=torch.channels_last)
    x = torch.rand(4, 1, 28, 28)
    seen = []
    flatten = next(m for m in model.modules() if isinstance(m, Flatten))
    flatten.register_forward_hook(lambda m, i, o: [i[0].register_hook(seen.append)] and None)
    model(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert seen and seen[0].is_contiguous(memory_format=torch.channels_last)
    for (key, a), b in zip(model.named_parameters(), plain.parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=key)
