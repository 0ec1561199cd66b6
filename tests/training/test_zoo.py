"""torchvision's model zoo as --model torchvision:NAME: the spec, building with K classes, a
training step, --finetune, state_dicts that load as-is into torchvision, the feature cache, the
size estimate and Inside's stages, on a handful of families (with --weights none: offline)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.models import registry as models
from cnn_tui.training.models import sizes as model_sizes
from cnn_tui.training.models import zoo

FAMILIES = ["mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "regnet_y_400mf",
            "densenet121"]  # fmt: skip


def _build(name: str, num_classes: int = 3, channels: int = 3, **kwargs) -> nn.Module:
    kwargs = {"weights": "none", "finetune": "all", **kwargs}
    return models.build_model(
        catalog.ZOO_PREFIX + name,
        in_channels=channels,
        num_classes=num_classes,
        image_size=32,
        **kwargs,
    )


# --- the spec: torch-free ------------------------------------------------------------------------


def test_the_spec_names_a_short_model_or_a_torchvision_one():
    assert catalog.parse_model("resnet18") == catalog.ModelSpec("builtin", "resnet18")
    spec = catalog.parse_model(" torchvision:convnext_tiny ")
    assert (spec.source, spec.name, spec.text, spec.zoo, spec.pretrained) == (
        "torchvision", "convnext_tiny", "torchvision:convnext_tiny", True, True,
    )  # fmt: skip
    assert not catalog.parse_model("simple-cnn").pretrained
    assert catalog.is_pretrained("torchvision:anything") and not catalog.is_pretrained("nope")
    for bad, reason in [
        ("resnet77", "unknown model; valid models: simple-cnn"),
        ("torchvision:", "takes a model name of torchvision's registry"),
        ("torchvision:ResNet18", "lower case"),
        ("torchvision:googlenet", "not supported: its auxiliary classifiers"),
    ]:
        with pytest.raises(ValueError, match=reason):
            catalog.parse_model(bad)
    config = TrainConfig.from_mapping({"model": "torchvision:efficientnet_b0"})
    assert config.resolved_weights == "imagenet" and config.resolved_finetune == "head"
    with pytest.raises(UsageError, match="--model: unknown model.*cnn-tui models lists them"):
        TrainConfig.from_mapping({"model": "vgg99"})


def test_the_zoo_is_torchvisions_registry_less_the_excluded_models():
    names = zoo.names()
    registry = torchvision.models.list_models(module=torchvision.models)
    assert set(names) == set(registry) - set(catalog.ZOO_EXCLUDED)
    assert {"mobilenet_v3_small", "convnext_tiny", "regnet_y_400mf", "vit_b_16"} <= set(names)


def test_a_bad_name_or_size_is_one_usage_error_saying_what_to_do():
    with pytest.raises(UsageError, match="no such classification model; did you mean "
                       r"torchvision:mobilenet_v2.*cnn-tui models lists them"):  # fmt: skip
        _build("mobilenet_v4")
    with pytest.raises(UsageError, match="vit_b_16 does not take 32-px images.*--image-size 224"):
        _build("vit_b_16")
    with pytest.raises(UsageError, match="needs images of at least 224 px.*--image-size 224"):
        zoo.check_before_run("torchvision:vit_b_16", 32)
    with pytest.raises(UsageError, match="1- or 3-channel"):
        _build("mobilenet_v3_small", channels=4)


# --- building, training, state_dicts -------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_trains_and_its_state_dict_loads_as_is_into_torchvision(name):
    torch.manual_seed(0)
    model = _build(name, num_classes=3, channels=1)  # a grey image is repeated to RGB
    optimizer = torch.optim.SGD(models.trainable_parameters(model), lr=1e-3)
    models.set_train_mode(model, True)
    x, y = torch.randn(2, 1, 32, 32), torch.tensor([0, 2])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    spec = models.pretrained_spec(catalog.ZOO_PREFIX + name, model)
    assert not torch.equal(model.state_dict()[spec.head + ".weight"], before[spec.head + ".weight"])
    reference = torchvision.models.get_model(name, num_classes=3)
    reference.load_state_dict(model.state_dict())  # strict: same names, same shapes
    # (in training mode: a random network's BatchNorm statistics after one step of a batch of
    # two are no use to evaluation; the same seed draws the same dropout and stochastic depth)
    model.train(), reference.train()
    outputs = []
    for net, images in ((model, x), (reference, x.repeat(1, 3, 1, 1))):
        torch.manual_seed(5)
        with torch.no_grad():
            outputs.append(net(images))
    torch.testing.assert_close(*outputs)


@pytest.mark.parametrize(
    "name, head, last_stage",
    [
        ("mobilenet_v3_small", "classifier.3", "features.12"),
        ("efficientnet_b0", "classifier.1", "features.8"),
        ("convnext_tiny", "classifier.2", "features.7"),
        ("regnet_y_400mf", "fc", "trunk_output.block4"),
        ("densenet121", "classifier", "features.denseblock4"),
    ],
)
def test_finetune_trains_the_head_or_the_last_stage_on(name, head, last_stage):
    for finetune in ("head", "last-block", "all"):
        model = _build(name, finetune=finetune)
        trainable = {key for key, p in model.named_parameters() if p.requires_grad}
        spec = models.pretrained_spec(catalog.ZOO_PREFIX + name, model)
        assert (spec.head, spec.last_block) == (head, last_stage)
        if finetune == "head":
            assert trainable == {f"{head}.weight", f"{head}.bias"}
        elif finetune == "last-block":
            assert any(key.startswith(last_stage + ".") for key in trainable)
            assert f"{head}.weight" in trainable
            stage_at = [key for key, _ in model.named_parameters()].index(
                next(key for key, _ in model.named_parameters() if key.startswith(last_stage))
            )
            for at, (key, _) in enumerate(model.named_parameters()):
                assert (key in trainable) == (at >= stage_at), key
        else:
            assert trainable == {key for key, _ in model.named_parameters()}


def test_frozen_layers_stay_bit_identical_and_in_eval_mode():
    torch.manual_seed(0)
    model = _build("efficientnet_b0", finetune="last-block")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(models.trainable_parameters(model), lr=0.1, momentum=0.9)
    models.set_train_mode(model, True)
    assert model.classifier[0].training and not model.features[3][0].block[0][1].training
    for _ in range(2):
        optimizer.zero_grad()
        nn.functional.cross_entropy(
            model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 1])
        ).backward()
        optimizer.step()
    for key, value in before.items():
        if not key.startswith(("features.8.", "classifier.")):
            assert torch.equal(model.state_dict()[key], value), key
    assert not torch.equal(model.state_dict()["features.8.0.weight"], before["features.8.0.weight"])


def test_a_1000_class_state_dict_file_keeps_the_backbone_and_replaces_the_head(tmp_path):
    torch.manual_seed(3)
    imagenet_like = torchvision.models.get_model("mobilenet_v3_small")  # 1000 classes
    torch.save(imagenet_like.state_dict(), tmp_path / "mobilenet.pth")
    model = _build("mobilenet_v3_small", num_classes=4, weights=str(tmp_path / "mobilenet.pth"),
                   finetune="head")  # fmt: skip
    assert model.classifier[3].out_features == 4
    for key, value in imagenet_like.state_dict().items():
        if not key.startswith("classifier.3."):
            assert torch.equal(model.state_dict()[key], value), key
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UsageError, match="r18.pth does not fit torchvision:mobilenet_v3_small"):
        _build("mobilenet_v3_small", weights=str(tmp_path / "r18.pth"))


def test_the_imagenet_weights_and_normalisation_are_the_registrys_default(monkeypatch, tmp_path):
    default = torchvision.models.get_model_weights("convnext_tiny").DEFAULT
    assert models.imagenet_weights_url("torchvision:convnext_tiny") == default.url
    mean, std = models.weights_normalization("torchvision:convnext_tiny")
    assert mean == pytest.approx((0.485, 0.456, 0.406)) and std == pytest.approx(
        (0.229, 0.224, 0.225)
    )
    assert zoo.trained_size("efficientnet_b3") == 300 and zoo.min_image_size("vit_b_16") == 224
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached copy, no network
    monkeypatch.setattr(
        models, "imagenet_weights_url", lambda name: "https://weights.invalid/x-0123abcd.pth"
    )
    from cnn_tui.errors import RunError

    with pytest.raises(RunError, match="ImageNet weights for torchvision:mobilenet_v3_small"):
        _build("mobilenet_v3_small", weights="imagenet", finetune="head")


# --- the feature cache, Inside, the size estimate ------------------------------------------------


def test_the_feature_cache_split_composes_to_the_model():
    torch.manual_seed(0)
    model = _build("efficientnet_b0", num_classes=5, channels=1, finetune="head").eval()
    backbone, head = models.backbone_and_head(model)
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear] and head[1] is model.classifier[1]
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        features = backbone(x)
        assert features.shape == (3, models.feature_size(model)) == (3, 1280)
        torch.testing.assert_close(head(features), model(x))
    assert models.backbone_and_head(_build("efficientnet_b0", finetune="last-block")) is None
    assert models.backbone_and_head(_build("squeezenet1_1", finetune="head")) is None


def test_grad_cams_default_layer_is_a_block_of_the_feature_extractor(tmp_path):
    from inspect_fixtures import write_model_run

    from cnn_tui.training.tools import inspect
    from cnn_tui.training.tools.run_model import load_run_model, load_test_split

    run_dir = write_model_run(tmp_path / "run", model="torchvision:mobilenet_v3_small")
    run = load_run_model(run_dir, "cpu")
    images, labels = load_test_split(run)
    found = inspect.inspect_image(run, images[0], int(labels[0]))
    names = [stage.name for stage in found.stages]
    assert names[:3] == ["features.0", "features.1", "features.2"] and names[-1] == "features.12"
    assert found.cam_layer == "features.3"  # the deepest block with maps of 4×4
    assert found.first_conv is not None and found.first_conv.name == "features.0.0"


def test_the_measured_sizes_of_a_zoo_resnet18_are_the_tables():
    config = TrainConfig(model="torchvision:resnet18", dataset="cifar10", image_size=64)
    assert model_sizes.needs_measuring(config) or model_sizes.is_measured(
        config.model, 64
    )  # (another test may have measured it)
    for finetune in ("head", "last-block", "all"):
        kwargs = dict(num_classes=10, image_size=64, batch_size=32, finetune=finetune)
        measured = model_sizes.estimate(
            config.model, size=model_sizes.measure(config.model, 64), **kwargs
        )
        table = model_sizes.estimate("resnet18", **kwargs)
        assert (measured.params, measured.trainable) == (table.params, table.trainable)
        assert measured.bytes == pytest.approx(table.bytes, rel=0.1), finetune
    assert not model_sizes.needs_measuring(config)
    assert "11.2M params" in model_sizes.describe(config, cuda=False)
    assert "features cached" in model_sizes.describe(config.replace(finetune="head"), cuda=False)
    assert "weights trained at 224 px" in model_sizes.describe(
        TrainConfig(model="resnet18", image_size=64), cuda=False
    )  # (the size to pass as --image-size for ImageNet weights, from their meta)
    squeezenet = TrainConfig(model="torchvision:squeezenet1_1", finetune="head")
    assert "features cached" not in model_sizes.describe(squeezenet, cuda=False)  # a conv head
