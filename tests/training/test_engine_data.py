"""The engine on each data source and on resnet18: it learns, reads the real file formats, and
writes checkpoints that plain torchvision can load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from datafiles import write_image_folder, write_tiny_cifar10, write_tiny_idx

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import engine
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import store as runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(run_dir: Path, **settings):
    events: list[dict] = []
    summary = engine.train(TrainConfig(device="cpu", **settings), run_dir, on_event=events.append)
    return summary, events


@pytest.mark.slow
def test_a_small_cnn_actually_learns_shapes(tmp_path):
    # a few seconds on one CPU thread: chance is 10 %, this reaches about 80 %
    summary, events = _train(
        tmp_path / "r", dataset="shapes", model="the3-cnn", limit=2000, epochs=3, batch_size=32,
        lr=3e-3,
    )  # fmt: skip
    val = [event["val_acc"] for event in events if event["event"] == "epoch"]
    assert val[-1] > val[0]
    assert summary["test_accuracy"] > 0.5 and summary["macro_f1"] > 0.45


def test_tiny_cifar10_files(tmp_path):
    root = write_tiny_cifar10(tmp_path / "cifar", n_train=200, n_test=50)
    summary, events = _train(
        tmp_path / "r", dataset="cifar10", data_dir=str(root), model="the3-cnn", epochs=3,
        batch_size=16, lr=3e-3,
    )  # fmt: skip
    assert events[0]["classes"][0] == "airplane" and events[0]["n_test"] == 50
    assert summary["test_accuracy"] > 0.5  # colour-coded classes: easy when the loader is right


def test_tiny_fashion_mnist_files_one_channel(tmp_path):
    root = write_tiny_idx(tmp_path / "fm", n_train=120, n_test=30)
    summary, events = _train(
        tmp_path / "r", dataset="fashion-mnist", data_dir=str(root), epochs=1, batch_size=16,
        hidden_units=4,
    )  # fmt: skip
    assert events[0]["classes"][-1] == "Ankle boot" and summary["n_test"] == 30
    sample = runs.SAMPLES_FILE
    import numpy as np

    assert np.load(tmp_path / "r" / sample)["images"].shape[1:] == (1, 28, 28)


def test_image_folder_skips_and_reports_bad_files(tmp_path):
    root = write_image_folder(tmp_path / "pets", per_class=12)
    summary, events = _train(
        tmp_path / "r", dataset="imagefolder", data_dir=str(root), image_size=32, epochs=1,
        batch_size=8, hidden_units=4,
    )  # fmt: skip
    assert events[0]["classes"] == ["cats", "dogs"]
    assert sorted(events[0]["skipped"]) == ["cats/broken.jpg", "dogs/notes.txt"]
    assert summary["classes"] == ["cats", "dogs"]


def test_resnet18_head_only_checkpoint_loads_into_torchvision_and_backbone_stays(tmp_path):
    summary, events = _train(
        tmp_path / "r", dataset="shapes", model="resnet18", weights="none", finetune="head",
        limit=40, epochs=1, batch_size=20,
    )  # fmt: skip
    assert events[0]["parameters"]["trainable"] == 512 * 10 + 10
    state = torch.load(tmp_path / "r" / runs.CHECKPOINT_FILE, weights_only=True)["model"]
    plain = torchvision.models.resnet18(num_classes=10)
    plain.load_state_dict(state)  # as is: no renamed or wrapped keys

    torch.manual_seed(0)  # the engine builds the model right after seeding with config.seed
    start = models.build_model(
        "resnet18", in_channels=3, num_classes=10, image_size=32, weights="none", finetune="head"
    ).state_dict()
    for key, value in start.items():
        if key.startswith("fc."):
            assert not torch.equal(value, state[key]), key  # the head trained
        else:
            assert torch.equal(value, state[key]), key  # frozen weights and BN statistics


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_real_fashion_mnist(tmp_path):
    summary, events = _train(
        tmp_path / "r", dataset="fashion-mnist", model="the3-cnn", limit=3000, epochs=1,
        batch_size=32, lr=3e-3,
    )  # fmt: skip
    assert events[0]["data_source"] == str(FASHION_MNIST)
    assert summary["n_test"] == 556  # the 10k test images shrink like the training set: 3k/54k
    assert summary["test_accuracy"] > 0.6
