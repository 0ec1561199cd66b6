"""Run directories with a real model for the inspect / predict / export tests.

`write_model_run` writes a run in the documented format without training: config.toml, a
finished status.json and a checkpoint.pt whose weights are a seeded fresh initialisation — the
files `cnn-tui eval` and the engine write, in a fraction of a second, and the same bits on every
machine (what the snapshot tests need). `train_run` trains a tiny real run with the engine where a
test wants the whole path.
"""

from __future__ import annotations

from pathlib import Path

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import store as runs

FIXED_MEAN, FIXED_STD = 0.45, 0.25


def write_model_run(
    run_dir: Path, *, model: str = "simple-cnn", dataset: str = "shapes", limit: int = 200,
    hidden_units: int = 4, seed: int = 0, **settings,
) -> Path:  # fmt: skip
    import torch

    from cnn_tui.training.data import datasets
    from cnn_tui.training.models import registry as models

    config = TrainConfig(
        dataset=dataset, limit=limit, model=model, hidden_units=hidden_units, epochs=1,
        device="cpu", weights="none", **settings,
    )  # fmt: skip
    run_dir.mkdir(parents=True)
    runs.write_config(run_dir, config)
    channels, size, _, classes = datasets.dataset_info(dataset)
    torch.manual_seed(seed)
    net = models.build_model(
        model, in_channels=channels, num_classes=len(classes), image_size=config.image_size or size[0],
        hidden_units=hidden_units, weights="none",
    )  # fmt: skip
    checkpoint = {
        "format": 1,
        "model": net.state_dict(),
        "epoch": 1,
        "batch": 0,
        "config": config.to_dict(),
        "classes": list(classes),
        "normalization": {
            "mean": [FIXED_MEAN] * channels,
            "std": [FIXED_STD] * channels,
            "image_size": None,
        },
    }
    torch.save(checkpoint, run_dir / runs.CHECKPOINT_FILE)
    runs.write_status(run_dir, "finished", epoch=1, epochs=1)
    return run_dir


def train_run(run_dir: Path, **settings) -> Path:
    """A real run trained by the engine (tiny: a few hundred images, one epoch)."""
    from cnn_tui.training.loop import engine

    config = TrainConfig(
        **{"dataset": "shapes", "limit": 300, "epochs": 1, "hidden_units": 4, "batch_size": 32,
           "device": "cpu", **settings}
    )  # fmt: skip
    engine.train(config, run_dir)
    return run_dir


def silence_conv(run_dir: Path, layer: str) -> Path:
    """Make the conv `layer` of a run's checkpoint dead: weights 0, bias -1, so each of its units
    is -1 before its ReLU and 0 after it (Grad-CAM there and behind it has nothing to show)."""
    import torch

    checkpoint = torch.load(run_dir / runs.CHECKPOINT_FILE, weights_only=False)
    checkpoint["model"][f"{layer}.weight"].zero_()
    checkpoint["model"][f"{layer}.bias"].fill_(-1.0)
    torch.save(checkpoint, run_dir / runs.CHECKPOINT_FILE)
    return run_dir
