"""scripts/fast94_ablation.py: the plan it runs and the fast-cnn variants it patches in (no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
    assert capsys.readouterr().out.count("--seed") == 6


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
