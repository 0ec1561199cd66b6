"""fast-cnn and airbench-cnn: the whitening first layer, flip-averaged evaluation, the engine hook."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.data import datasets
from cnn_tui.training.loop import engine, setup
from cnn_tui.training.models import registry as models
from cnn_tui.training.models.fast import WHITEN_EPS, whiten_


def correlated_images(n: int = 300, channels: int = 1, size: int = 12) -> torch.Tensor:
    """Smooth random images: neighbouring pixels are strongly correlated, as in photographs."""
    torch.manual_seed(0)
    noise = torch.randn(n, channels, size + 2, size + 2)
    return F.avg_pool2d(noise, 3, stride=1) * 3 + 0.5


@pytest.mark.parametrize(("channels", "kernel", "filters"), [(1, 3, 16), (3, 2, 24), (1, 2, 24)])
def test_whitened_filters_give_decorrelated_unit_variance_outputs(channels, kernel, filters):
    images = correlated_images(channels=channels)
    conv = torch.nn.Conv2d(channels, filters, kernel, bias=False)
    before = conv.weight.detach().clone()
    whiten_(conv, images)
    d = channels * kernel * kernel
    m = min(filters // 2, d)
    with torch.no_grad():
        out = conv(images).permute(1, 0, 2, 3).reshape(filters, -1).double()
    second_moment = out[:m] @ out[:m].T / out.shape[1]
    # the m strongest directions, each of unit second moment (eps aside), uncorrelated
    patches = F.unfold(images, kernel).transpose(1, 2).reshape(-1, d).double()
    eigenvalues = torch.linalg.eigvalsh(patches.T @ patches / len(patches))[-m:]
    expected = torch.diag(eigenvalues / (eigenvalues + WHITEN_EPS))
    assert torch.allclose(second_moment, expected, atol=1e-4)
    assert torch.allclose(conv.weight[m : 2 * m], -conv.weight[:m])  # both signs
    assert torch.equal(conv.weight[2 * m :], before[2 * m :])  # beyond 2d: as they were
    assert not conv.weight.requires_grad


def test_the_engine_whitens_and_freezes_the_first_layer_of_fast_cnn():
    config = TrainConfig.from_mapping(
        {"dataset": "shapes", "model": "fast-cnn", "limit": 200, "optimizer": "sgd"}
    )
    data = datasets.load_dataset("shapes", None, val_split=0.1, seed=0, limit=200)
    s = setup.prepare(config, torch.device("cpu"), data, weights="none")
    first = s.model.features[0]
    assert not first.weight.requires_grad
    optimized = {id(p) for group in s.optimizer.param_groups for p in group["params"]}
    assert id(first.weight) not in optimized
    assert optimized == {id(p) for p in models.trainable_parameters(s.model)}
    # its outputs on the training images are whitened: channel i has second moment ~1 (away
    # from the zero padding of the border)
    with torch.no_grad():
        out = first(s.eval_prep(s.train_x))[..., 1:-1, 1:-1]
    out = out.permute(1, 0, 2, 3).reshape(first.out_channels, -1)
    moments = (out[:8] ** 2).mean(1)
    assert torch.all((moments > 0.8) & (moments < 1.05)), moments

    # a step leaves it as it was, and changes the rest
    weight, rest = first.weight.clone(), s.model.classifier[1].weight.clone()
    images, labels = s.train_x[:32], s.train_y[:32]
    engine.train_step(s, images, labels, 0.1, models.trainable_parameters(s.model))
    assert torch.equal(first.weight, weight)
    assert not torch.equal(s.model.classifier[1].weight, rest)


def test_flip_averaged_evaluation_is_the_mean_of_both_mirror_images():
    model = models.build_model(
        "fast-cnn", in_channels=1, num_classes=4, image_size=16, hidden_units=8,
        weights="none", finetune="all",
    ).eval()  # fmt: skip
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        expected = (model.logits(x) + model.logits(x.flip(3))) / 2
        assert torch.allclose(model(x), expected, atol=1e-6)
        assert torch.allclose(model(x.flip(3)), expected, atol=1e-5)  # mirror-symmetric
