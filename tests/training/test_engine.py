"""The training engine on tiny data: events, files, checkpoints, resume, stop, divergence."""

from __future__ import annotations

import math
import threading
import types

import numpy as np
import pytest
import torch

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import checkpoints, engine, setup
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system.devices import cpu_has_native_bf16

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(dataset="shapes", limit=120, batch_size=32, epochs=2, device="cpu", hidden_units=4)


def _train(tmp_path, name="run", **overrides):
    config = TrainConfig(**{**TINY, **overrides})
    events: list[dict] = []
    summary = engine.train(config, tmp_path / name, on_event=events.append)
    return summary, events


def test_run_writes_events_files_and_a_loadable_checkpoint(tmp_path):
    summary, events = _train(tmp_path)
    run = tmp_path / "run"
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-2:] == ["evaluated", "finished"]
    assert kinds.count("epoch") == 2
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) == 2 * events[0]["batches_per_epoch"]  # the callback gets every batch

    started = events[0]
    for key in ("run_dir", "config", "device", "device_name", "classes", "n_train", "n_val",
                "n_test", "epochs", "start_epoch", "batches_per_epoch", "parameters", "pid",
                "amp", "channels_last", "time"):  # fmt: skip
        assert key in started, key
    assert started["device"] == "cpu" and started["start_epoch"] == 1
    assert started["amp"] == ("bf16" if cpu_has_native_bf16() else None)  # --amp is on by default
    assert set(batches[0]) >= {"epoch", "batch", "batches", "loss", "lr", "images_per_s", "eta_s"}
    epoch = next(e for e in events if e["event"] == "epoch")
    assert set(epoch) >= {"epoch", "epochs", "train_loss", "train_acc", "val_loss", "val_acc",
                          "lr", "seconds", "images_per_s", "gpu_mem_mb"}  # fmt: skip
    assert epoch["epoch"] == 1 and epoch["gpu_mem_mb"] is None

    # the file holds the same stream (batch events throttled), one JSON object per line
    written, _ = runs.read_events(run)
    assert [e["event"] for e in written if e["event"] != "batch"] == [
        k for k in kinds if k != "batch"
    ]
    assert runs.read_status(run)["status"] == "finished"
    on_disk = runs.read_summary(run)
    for key in ("test_accuracy", "macro_precision", "macro_recall", "macro_f1",
                "confusion_matrix", "classes", "per_class", "most_confused", "best_val_acc",
                "epochs_done", "seconds"):  # fmt: skip
        assert key in on_disk, key
    assert on_disk["epochs_done"] == 2 and summary["status"] == "finished"
    assert np.asarray(on_disk["confusion_matrix"]).sum() == started["n_test"]

    checkpoint = torch.load(run / runs.CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["config"]["model"] == "simple-cnn"
    assert {"model", "optimizer", "scheduler", "rng", "best_val_acc", "history"} <= set(checkpoint)

    samples = np.load(run / runs.SAMPLES_FILE)
    assert samples["images"].dtype == np.uint8 and samples["images"].shape[1:] == (3, 32, 32)
    n = len(samples["images"])
    assert 0 < n <= runs.SAMPLES_TOTAL
    assert len(samples["true"]) == len(samples["pred"]) == len(samples["confidence"]) == n
    wrong = samples["true"] != samples["pred"]
    if wrong.any():  # mistakes first, most confident first
        k = int(wrong.sum())
        assert wrong[:k].all()
        assert (np.diff(samples["confidence"][:k]) <= 0).all()


def test_resume_after_a_mid_epoch_stop_equals_an_uninterrupted_run(tmp_path):
    # dropout + BatchNorm (custom-cnn), augmentation and a per-batch schedule: every RNG matters;
    # 16 px (resized on the fly) keeps custom-cnn cheap
    overrides = dict(
        model="custom-cnn", epochs=3, limit=64, batch_size=16, image_size=16,
        augment="flip-crop", schedule="cosine",
    )  # fmt: skip
    whole, _ = _train(tmp_path, "whole", **overrides)

    config = TrainConfig(**{**TINY, **overrides})
    stop = threading.Event()

    def stop_in_epoch_2(event):
        if event["event"] == "batch" and event["epoch"] == 2 and event["batch"] == 2:
            stop.set()

    part = engine.train(config, tmp_path / "part", on_event=stop_in_epoch_2, stop=stop)
    assert part["status"] == "stopped" and part["epochs_done"] == 1 and part["batch"] == 2
    assert runs.read_status(tmp_path / "part")["status"] == "stopped"
    events: list[dict] = []
    resumed = engine.train(config, tmp_path / "part", on_event=events.append, resume=True)
    assert events[0]["start_epoch"] == 2 and events[0]["start_batch"] == 2
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert [h["val_loss"] for h in resumed["history"]] == [h["val_loss"] for h in whole["history"]]
    a = torch.load(tmp_path / "whole" / runs.CHECKPOINT_FILE, weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / runs.CHECKPOINT_FILE, weights_only=True)["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_stop_between_epochs_and_resume_with_more_epochs(tmp_path):
    config = TrainConfig(**{**TINY, "epochs": 1})
    engine.train(config, tmp_path / "run")
    with pytest.raises(UsageError, match="already trained 1 epoch: pass --epochs with more than 1"):
        engine.train(config, tmp_path / "run", resume=True)
    events: list[dict] = []
    summary = engine.train(
        config.replace(epochs=2), tmp_path / "run", on_event=events.append, resume=True
    )
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]
    assert summary["epochs_done"] == 2 and len(summary["history"]) == 2


def test_divergence_fails_the_run_with_a_clear_message(tmp_path):
    # weight decay 1 at lr 10 multiplies the weights by -9 each step: they overflow in epoch 2
    config = TrainConfig(
        **{
            **TINY,
            "epochs": 5,
            "optimizer": "sgd",
            "lr": 10.0,
            "momentum": 0.0,
            "weight_decay": 1.0,
        }
    )
    with pytest.raises(RunError, match=r"training diverged at epoch \d+ \(loss is (nan|inf)\): "
                       r"lower the learning rate \(--lr, now 10\)"):  # fmt: skip
        engine.train(config, tmp_path / "run")
    status = runs.read_status(tmp_path / "run")
    assert status["status"] == "failed" and "diverged" in status["message"]
    events, _ = runs.read_events(tmp_path / "run")
    assert events[-1]["event"] == "failed" and "diverged" in events[-1]["message"]


def test_weights_that_are_not_finite_are_divergence_before_any_checkpoint():
    from types import SimpleNamespace

    from torch import nn

    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    s = SimpleNamespace(model=model, config=TrainConfig(lr=0.5))
    engine.check_finite(s, 0, 1.25)  # finite weights, finite validation loss: nothing to say
    with pytest.raises(engine.Diverged, match=r"epoch 3 \(validation loss is inf\)"):
        engine.check_finite(s, 2, float("inf"))
    model[1].running_var[0] = float("inf")  # a buffer counts: eval would give NaN
    with pytest.raises(
        engine.Diverged, match=r"epoch 1 \(weights are no longer finite\)"
    ) as caught:
        engine.check_finite(s, 0)
    assert caught.value.epoch == 1 and "(--lr, now 0.5)" in str(caught.value)


def test_lr_schedules():
    config = TrainConfig(lr=0.1, epochs=3)
    assert engine.lr_at(config, 5, 30, 10) == 0.1
    cosine = config.replace(schedule="cosine")
    assert engine.lr_at(cosine, 0, 30, 10) == pytest.approx(0.1)
    assert engine.lr_at(cosine, 15, 30, 10) == pytest.approx(0.05)
    step = config.replace(schedule="step")
    assert [engine.lr_at(step, s, 30, 10) for s in (0, 9, 10, 25)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001]
    )
    one = config.replace(schedule="onecycle")
    lrs = [engine.lr_at(one, s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.004) and max(lrs) == pytest.approx(0.1, rel=0.02)
    assert lrs[-1] < 0.001


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(UsageError, match="checkpoint.pt does not exist"):
        checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="not a readable checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "checkpoint.pt")


def _weight_change(tmp_path, name, **overrides) -> float:
    """How far SGD moved the weights from their seeded start in one epoch."""
    config = TrainConfig(**{**TINY, "epochs": 1, "optimizer": "sgd", "lr": 0.1, **overrides})
    start = setup.prepare(
        config, torch.device("cpu"), setup.load_data(config), weights="none"
    ).model.state_dict()
    engine.train(config, tmp_path / name)
    trained = checkpoints.load_checkpoint(tmp_path / name / runs.CHECKPOINT_FILE)["model"]
    return max(
        (trained[key].float() - start[key].float()).abs().max().item()
        for key in start
        if start[key].is_floating_point()
    )


def test_grad_clip_bounds_each_sgd_step(tmp_path):
    free = _weight_change(tmp_path, "free")
    clipped = _weight_change(tmp_path, "clipped", grad_clip=1e-6)
    steps = -(-int(0.9 * TINY["limit"]) // TINY["batch_size"])  # batches in the epoch
    # each step moves a weight by at most lr * 1e-6 with momentum 0.9 adding up to 10x
    assert clipped <= steps * 0.1 * 1e-6 * 10
    assert free > 1000 * clipped


def test_gradient_and_weight_norms_against_a_hand_computation():
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        layer.bias.copy_(torch.tensor([0.0, 2.0]))
    layer.weight.grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    layer.bias.grad = torch.tensor([0.0, 12.0])
    trainable = list(layer.parameters())
    cpu = types.SimpleNamespace(device=torch.device("cpu"))

    assert engine.clip_gradients(trainable, 0.0, measure=False) is None
    norm = engine.clip_gradients(trainable, 0.0, measure=True)  # sqrt(9 + 16 + 144)
    assert engine.step_measures(cpu, trainable, norm) == pytest.approx(
        {"grad_norm": 13.0, "weight_norm": math.sqrt(1 + 4 + 9 + 16 + 4)}
    )  # (no "gpu_mem_mb" on the CPU)
    assert torch.equal(layer.bias.grad, torch.tensor([0.0, 12.0]))  # measured, not clipped
    # --grad-clip: the norm before clipping, the gradients scaled to the limit
    assert float(engine.clip_gradients(trainable, 6.5, measure=True)) == pytest.approx(13.0)
    assert layer.weight.grad == pytest.approx(torch.tensor([[1.5, 0.0], [0.0, 2.0]]), rel=1e-5)


def test_the_step_measures_the_gradients_it_steps_with():
    config = TrainConfig(**{**TINY, "optimizer": "sgd", "lr": 0.1, "amp": False})
    s = setup.prepare(config, torch.device("cpu"), setup.load_data(config), weights="none")
    trainable = models.trainable_parameters(s.model)
    images, labels = setup.fetch(s.train_x, slice(0, 32), s.device), s.train_y[:32]
    *_, measures = engine.shared_step(s, images, labels, 0.1, trainable, 32, measure=True)
    by_hand = [(p.grad.double() ** 2).sum() for p in trainable]  # (kept after the step)
    assert measures["grad_norm"] == pytest.approx(float(sum(by_hand)) ** 0.5, rel=1e-5)
    weights = [(p.detach().double() ** 2).sum() for p in trainable]  # after the step
    assert measures["weight_norm"] == pytest.approx(float(sum(weights)) ** 0.5, rel=1e-5)
    assert engine.shared_step(s, images, labels, 0.1, trainable, 32)[3] == {}


def test_only_the_batch_events_the_log_writes_carry_the_norms(tmp_path):
    _, events = _train(tmp_path, grad_clip=0.5)
    written = [e for e in runs.read_events(tmp_path / "run")[0] if e["event"] == "batch"]
    measured = [e for e in events if e["event"] == "batch" and "grad_norm" in e]
    assert written and len(measured) == len(written) < len(events)
    for event in written:  # (the last batch of each epoch is always written)
        assert event["grad_norm"] > 0 and event["weight_norm"] > 0 and "gpu_mem_mb" not in event
    assert {(e["epoch"], e["batch"]) for e in written} == {
        (e["epoch"], e["batch"]) for e in measured
    }


def test_eta_waits_for_the_warm_up_and_the_summary_has_the_wall_time(tmp_path):
    from cnn_tui.training.loop.eta import MIN_SAMPLES, WARMUP_BATCHES

    summary, events = _train(tmp_path, limit=400, batch_size=16, epochs=1)
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) > WARMUP_BATCHES + MIN_SAMPLES
    estimating = batches[: WARMUP_BATCHES + MIN_SAMPLES - 1]
    assert all(e["eta_s"] is None and e["images_per_s"] is None for e in estimating)
    later = batches[WARMUP_BATCHES + MIN_SAMPLES - 1 :]
    assert all(e["eta_s"] >= 0 and e["images_per_s"] > 0 for e in later)
    assert later[-1]["eta_s"] < later[0]["eta_s"]  # (fewer batches left, same speed estimate)
    on_disk = runs.read_summary(tmp_path / "run")
    # the wall time covers the start and the test as well as the epochs
    assert on_disk["wall_seconds"] > on_disk["seconds"] > 0
