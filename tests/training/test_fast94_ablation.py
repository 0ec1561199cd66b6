"""scripts/fast94_ablation.py: the plan it runs and the fast-cnn variants it patches in (no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from cnn_tui.training.models import registry as models

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fast94_ablation.py"


def load_script():
    spec = importlib.util.spec_from_file_location("fast94_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def test_the_plan_runs_every_row_with_seed_0_then_two_rows_with_three_seeds(capsys):
    ablation = load_script()
    steps = ablation.plan(seeds_only=False)
    assert [row for row, _ in steps[: len(ablation.ROWS)]] == list(ablation.ROWS)
    assert {seed for _, seed in steps[: len(ablation.ROWS)]} == {0}
    seeded = [(row, seed) for row in ablation.SEEDED for seed in (0, 1, 2)]
    assert steps[len(ablation.ROWS) :] == seeded
    assert ablation.plan(seeds_only=True) == steps[len(ablation.ROWS) :]

    plain = ablation.command(ablation.ROWS[1], 0, Path("r"), "fm")
    assert plain[1:] == [
        "-m", "cnn_tui", "train", "--no-ui", "--preset", "fast-fashion-mnist", "--epochs", "7",
        "--seed", "0", "--run-dir", "r", "--data-dir", "fm",
    ]  # fmt: skip
    patched = ablation.command(ablation.CANDIDATE, 2, Path("r"), None)
    assert patched[1:3] == [str(SCRIPT), ablation.CHILD]
    assert patched[4:] == [
        "train", "--no-ui", "--preset", "fast-fashion-mnist", "--val-split", "0.01",
        "--epochs", "6", "--seed", "2", "--run-dir", "r",
    ]  # fmt: skip

    assert ablation.main(["--dry-run", "--seeds-only"]) == 0
    assert capsys.readouterr().out.count("--seed") == 3 * len(ablation.SEEDED)
    labels = [row.label for row in (*ablation.ROWS, *ablation.SEEDED)]
    assert len(set(labels)) == len(labels)  # (the medians find a row's seeds by its label)
    # --rows: one row's seeds, for re-timing the row a doc quotes
    picked = ablation.plan(seeds_only=True, matching="16/48/64/64, 9 epochs")
    assert [seed for _, seed in picked] == [0, 1, 2]
    assert all("16/48/64/64, 9 epochs" in row.label for row, _ in picked)
    with pytest.raises(SystemExit):
        ablation.main(["--dry-run", "--rows", "no such row"])


def test_the_variants_are_fast_cnn_plus_the_change():
    ablation = load_script()
    shipped = models.build_model(
        "fast-cnn", in_channels=1, num_classes=10, image_size=28, hidden_units=8,
        weights="none", finetune="all",
    )  # fmt: skip
    same = ablation.build_variant_model(1, 10, 28, (16, 48, 96, 96), extra_convs=False)
    shapes = [tuple(p.shape) for p in shipped.state_dict().values()]
    assert [tuple(p.shape) for p in same.state_dict().values()] == shapes

    deeper = ablation.build_variant_model(1, 10, 28, (16, 48, 96, 96), extra_convs=True)
    convs = [m for m in deeper.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 16), (16, 48), (48, 48), (48, 96), (96, 96), (96, 96),
    ]  # fmt: skip
    deeper.init_from_data(torch.randn(64, 1, 28, 28))  # the whitening layer, as fast-cnn's
    assert not convs[0].weight.requires_grad
    assert deeper.eval()(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_the_second_round_variants_change_what_they_say():
    ablation = load_script()
    edge = ablation.build_variant_model(1, 10, 28, None, True, keep_edge=True, im2col=True)
    assert edge.classifier[-1].in_features == 96 * 4 * 4  # 7 -> 4 px: nothing dropped
    small = [m for m in edge.features if type(m).__name__ == "SmallMapConv"]
    assert [(c.in_channels, c.out_channels) for c in small] == [(96, 96), (96, 96)]

    wide = ablation.build_variant_model(
        1, 10, 28, None, True, whiten=(24, 5), wide14=32, residual=True, activation="gelu",
        dirac=True, dropout=0.25,
    )  # fmt: skip
    convs = [m for m in wide.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (5, 5) and convs[0].out_channels == 24
    assert [(c.in_channels, c.out_channels) for c in convs[1:3]] == [(24, 32), (32, 48)]
    assert any(isinstance(m, torch.nn.GELU) for m in wide.features.modules())
    assert isinstance(wide.classifier[1], torch.nn.Dropout)
    assert torch.equal(convs[2].weight[5, :, 1, 1], torch.eye(32)[5])  # identity init
    wide.init_from_data(torch.randn(64, 1, 28, 28))
    assert not convs[0].weight.requires_grad
    assert wide.eval()(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_the_matmul_weight_gradient_equals_the_convolutions():
    ablation = load_script()
    conv_class = ablation.small_map_conv_class()
    torch.manual_seed(0)
    plain = torch.nn.Conv2d(8, 6, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    small = conv_class(8, 6).to(memory_format=torch.channels_last)
    small.weight.data.copy_(plain.weight.data)
    x = torch.randn(5, 8, 3, 3).contiguous(memory_format=torch.channels_last)
    results = []
    for conv in (plain, small):
        inputs = x.clone().requires_grad_(True)
        (conv(inputs) ** 2).sum().backward()
        results.append((inputs.grad, conv.weight.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cutout_blacks_out_one_square_in_about_half_the_images():
    ablation = load_script()
    from cnn_tui.training.data import datasets

    kept = datasets.augment
    try:
        ablation._patch_cutout(10)
        batch = torch.full((64, 1, 28, 28), 200, dtype=torch.uint8)
        out = datasets.augment(batch, "flip", torch.Generator().manual_seed(0))
    finally:
        datasets.augment = kept
    blacked = (out == 0).sum((1, 2, 3))
    assert 16 < int((blacked > 0).sum()) < 48
    assert int(blacked.max()) == 100  # a whole 10 x 10 square somewhere inside the image
    assert set(out.unique().tolist()) == {0, 200}


def test_alternating_flips_show_each_image_once_each_way_in_two_epochs():
    ablation = load_script()
    from types import SimpleNamespace

    from cnn_tui.training.data import datasets
    from cnn_tui.training.loop import engine

    kept = engine.batch_rows, engine.seed_epoch, datasets.augment
    images = torch.arange(40 * 4, dtype=torch.uint8).view(40, 1, 2, 2)  # each row its own
    s = SimpleNamespace(
        config=SimpleNamespace(seed=3, batch_size=8),
        world=SimpleNamespace(shard=lambda index: index),
        train_x=images,
        train_y=torch.zeros(40, dtype=torch.long),
        device=torch.device("cpu"),
        augment_generator=torch.Generator(),
    )
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    flipped = []
    try:
        ablation._patch_alternating_flip()
        for epoch in (0, 1):
            engine.seed_epoch(s, epoch)
            rows = {}
            for b in range(5):
                batch, _ = engine.batch_rows(s, order, b)
                out = datasets.augment(batch, "flip", s.augment_generator)
                for index, before, after in zip(order[b * 8 : b * 8 + 8], batch, out, strict=True):
                    assert torch.equal(after, before) or torch.equal(after, before.flip(-1))
                    rows[int(index)] = not torch.equal(after, before)
            flipped.append(rows)
    finally:
        engine.batch_rows, engine.seed_epoch, datasets.augment = kept
    assert all(flipped[0][i] != flipped[1][i] for i in range(40))  # once each way
    assert 8 < sum(flipped[0].values()) < 32  # a random half, not all or none


def test_the_hidden_layer_sits_before_the_classifier():
    ablation = load_script()
    model = ablation.build_variant_model(
        1, 10, 28, (16, 48, 64, 64), True, keep_edge=True, hidden=128
    )
    linears = [m for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64 * 4 * 4, 128), (128, 10)]
    assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_muon_steps_the_convs_by_an_orthogonalised_update_and_the_rest_by_sgd():
    ablation = load_script()
    from types import SimpleNamespace

    from cnn_tui.training.loop import setup

    g = torch.randn(16, 72, generator=torch.Generator().manual_seed(0))
    singular = torch.linalg.svdvals(ablation.orthogonalized(g).float())
    assert 0.6 < float(singular.min()) and float(singular.max()) < 1.25  # all about 1

    kept = setup.build_optimizer
    try:
        ablation._patch_muon(0.05, 0.6)
        conv = torch.nn.Conv2d(8, 16, 3, bias=False)
        norm = torch.nn.BatchNorm2d(16)
        config = SimpleNamespace(
            optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, model="fast-cnn"
        )
        params = [conv.weight, norm.weight, norm.bias]
        optimizer = setup.build_optimizer(config, params)
    finally:
        setup.build_optimizer = kept
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer.step()
    # the conv: rescaled to norm sqrt(16), then moved by 0.05 x an orthogonal update
    scaled = before[0] * (16**0.5 / before[0].norm())
    update = (scaled - conv.weight.detach()).reshape(16, -1) / 0.05
    assert torch.linalg.svdvals(update).max() < 1.25 and torch.linalg.svdvals(update).min() > 0.6
    # BatchNorm's parameters: plain SGD (the first step: lr x (grad + weight decay x weight))
    expected = before[1] - 0.1 * (norm.weight.grad + 5e-4 * before[1])
    torch.testing.assert_close(norm.weight.detach(), expected)


def test_the_last_epoch_without_flips_leaves_its_images_as_they_are():
    ablation = load_script()
    from types import SimpleNamespace

    from cnn_tui.training.data import datasets
    from cnn_tui.training.loop import engine

    kept = engine.seed_epoch, datasets.augment
    s = SimpleNamespace(
        config=SimpleNamespace(seed=0, epochs=3), augment_generator=torch.Generator()
    )
    batch = torch.arange(64 * 4, dtype=torch.uint8).view(64, 1, 2, 2)
    changed = []
    try:
        ablation._patch_plain_last(1)
        for epoch in range(3):
            engine.seed_epoch(s, epoch)
            out = datasets.augment(batch, "flip", s.augment_generator)
            changed.append(int((out != batch).flatten(1).any(1).sum()))
    finally:
        engine.seed_epoch, datasets.augment = kept
    assert changed[0] > 0 and changed[1] > 0  # epochs 0 and 1 flip some images
    assert changed[2] == 0  # the last flips none
