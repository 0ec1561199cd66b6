"""Early stopping: the rule, a run that stops early (validation scripted, so it is deterministic),
best.pt, the test set evaluated with the best weights, the files and listings that say so, resume
keeping the counters, old checkpoints, and `cnn-tui eval` of such a run."""

from __future__ import annotations

import threading

import pytest
import torch

from cnn_tui import cli
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import early_stop, engine
from cnn_tui.training.runs import store as runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(dataset="shapes", limit=120, batch_size=32, device="cpu", hidden_units=4)
REAL_EVALUATE = engine.evaluate


# --- the rule ----------------------------------------------------------------------------------


def test_improved_by_more_than_min_delta_in_the_metric_s_direction():
    assert early_stop.improved("val_loss", None, 5.0)
    assert early_stop.improved("val_loss", 1.0, 0.9) and not early_stop.improved(
        "val_loss", 1.0, 1.0
    )
    assert not early_stop.improved("val_loss", 1.0, 0.75, min_delta=0.25)  # exactly: no
    assert early_stop.improved("val_loss", 1.0, 0.74, min_delta=0.25)
    assert early_stop.improved("val_acc", 0.5, 0.6) and not early_stop.improved("val_acc", 0.5, 0.4)
    assert not early_stop.improved("val_acc", 0.5, 0.52, min_delta=0.05)
    assert not early_stop.improved("val_loss", None, float("nan"))


def test_replay_finds_the_best_epoch_and_the_stop():
    rows = [{"epoch": e, "val_loss": v} for e, v in enumerate([1.0, 0.8, 0.9, 0.85, 0.7], 1)]
    assert early_stop.replay(rows, "val_loss", 0.0, 0) == early_stop.State(0.7, 5, 0)
    assert early_stop.replay(rows, "val_loss", 0.0, 2) == early_stop.State(0.8, 2, 2, 4)
    assert early_stop.replay(rows[:3], "val_loss", 0.0, 2) == early_stop.State(0.8, 2, 1)


# --- runs -----------------------------------------------------------------------------------


def scripted_validation(monkeypatch, values: list[float], metric: str = "val_loss") -> None:
    """engine.evaluate returns `values` in turn as the validation loss (or accuracy); the test
    set is evaluated for real."""
    real = engine.evaluate
    calls = iter(values)

    def evaluate(s, images, labels, **kwargs):
        result = real(s, images, labels, **kwargs)
        if images is s.val_x:
            value = next(calls)
            if metric == "val_loss":
                result.loss = value
            else:
                result.accuracy = value
        return result

    monkeypatch.setattr(engine, "evaluate", evaluate)


LOSSES = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6, 0.5]  # best at epoch 2; patience 2 stops after 4


def test_a_run_that_stops_improving_stops_early_and_tests_the_best_weights(
    tmp_path, monkeypatch, capsys
):
    scripted_validation(monkeypatch, LOSSES)
    config = TrainConfig(**TINY, epochs=8, early_stop=2)
    events: list[dict] = []
    summary = engine.train(config, tmp_path / "runs" / "es", on_event=events.append)
    run = tmp_path / "runs" / "es"

    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3, 4]
    stop = next(e for e in events if e["event"] == "early_stop")
    assert (stop["epoch"], stop["best_epoch"], stop["metric"], stop["patience"]) == (
        4,
        2,
        "val_loss",
        2,
    )
    assert stop["best"] == 0.8 and "early stop after epoch 4" in stop["message"]
    kinds = [e["event"] for e in events if e["event"] not in ("batch", "system")]
    assert kinds[-4:] == ["epoch", "early_stop", "evaluated", "finished"]
    on_disk = [e["event"] for e in runs.read_events(run)[0]]
    assert "early_stop" in on_disk

    written = runs.read_summary(run)
    for data in (summary, written):
        assert data["early_stopped"] is True and data["evaluated_with"] == "best"
        assert (data["stopped_epoch"], data["best_epoch"], data["epochs_done"]) == (4, 2, 4)
        assert data["best_metric"] == 0.8 and data["early_stop_metric"] == "val_loss"
    status = runs.read_status(run)
    assert status["status"] == "finished" and status["early_stop_epoch"] == 4
    info = runs.list_runs(tmp_path / "runs")[0]
    assert info.status == "finished" and info.early_stop_epoch == 4
    assert info.status_label == "finished (early stop @4)"
    assert info.to_dict()["early_stop_epoch"] == 4

    # best.pt holds epoch 2's weights: those of a plain 2-epoch run (constant lr, same seed)
    best = torch.load(run / runs.BEST_FILE, weights_only=True)
    assert best["epoch"] == 2 and best["metric"] == "val_loss" and best["value"] == 0.8
    last = torch.load(run / runs.CHECKPOINT_FILE, weights_only=True)
    assert last["epoch"] == 4
    monkeypatch.setattr(engine, "evaluate", REAL_EVALUATE)  # validation for real again
    plain = engine.train(config.replace(epochs=2, early_stop=0), tmp_path / "plain")
    reference = torch.load(tmp_path / "plain" / runs.CHECKPOINT_FILE, weights_only=True)
    for key, value in reference["model"].items():
        assert torch.equal(best["model"][key], value), key
    assert not any(torch.equal(last["model"][k], v) for k, v in reference["model"].items()
                   if v.is_floating_point() and v.numel() > 1)  # fmt: skip
    # ... and the test metrics are those weights' (the plain run tests its last = epoch 2)
    assert summary["test_loss"] == plain["test_loss"]
    assert summary["confusion_matrix"] == plain["confusion_matrix"]
    assert plain["evaluated_with"] == "last" and plain["early_stopped"] is False
    assert not (tmp_path / "plain" / runs.BEST_FILE).exists()  # off: no best.pt

    # the listing says so
    assert cli.main(["--runs-dir", str(tmp_path / "runs"), "runs", "--no-ui"]) == 0
    assert "finished (early stop @4)" in capsys.readouterr().out

    # eval uses best.pt and says so
    report = engine.evaluate_run(run, "cpu")
    assert report["weights"] == runs.BEST_FILE and report["weights_epoch"] == 2
    assert report["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert cli.main(["eval", str(run), "--no-ui", "--device", "cpu"]) == 0
    assert "best epoch, 2 (best.pt: early stopping)" in capsys.readouterr().out

    # resuming a run that stopped early is refused: it would stop again
    with pytest.raises(UsageError, match="stopped early after epoch 4"):
        engine.train(config.replace(epochs=20), run, resume=True)


def test_min_delta_and_val_acc(tmp_path, monkeypatch):
    # val_acc creeps up, never by more than min_delta over the best (epoch 1): no improvement
    scripted_validation(monkeypatch, [0.50, 0.52, 0.53, 0.54, 0.58], metric="val_acc")
    config = TrainConfig(
        **TINY, epochs=5, early_stop=3, early_stop_metric="val_acc", min_delta=0.05
    )
    summary = engine.train(config, tmp_path / "acc")
    assert summary["early_stopped"] and summary["stopped_epoch"] == 4
    assert summary["best_epoch"] == 1 and summary["best_metric"] == 0.50


def test_early_stop_on_the_last_epoch_is_not_an_early_stop(tmp_path, monkeypatch):
    scripted_validation(monkeypatch, [1.0, 1.1, 1.2])
    summary = engine.train(TrainConfig(**TINY, epochs=3, early_stop=2), tmp_path / "r")
    assert summary["early_stopped"] is False and summary["stopped_epoch"] is None
    assert summary["evaluated_with"] == "best" and summary["best_epoch"] == 1
    assert runs.run_info(tmp_path / "r").status_label == "finished"


def test_resume_keeps_the_counters(tmp_path, monkeypatch):
    config = TrainConfig(**TINY, epochs=8, early_stop=2)
    scripted_validation(monkeypatch, LOSSES)
    engine.train(config, tmp_path / "straight")
    straight = runs.read_summary(tmp_path / "straight")

    scripted_validation(monkeypatch, LOSSES)
    stop = threading.Event()

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 3:
            stop.set()  # stops before epoch 4

    result = engine.train(config, tmp_path / "resumed", on_event=on_event, stop=stop)
    assert result["status"] == "stopped"
    checkpoint = torch.load(tmp_path / "resumed" / runs.CHECKPOINT_FILE, weights_only=True)
    progress = checkpoint["progress"]
    assert (progress["best_metric"], progress["best_epoch"], progress["since_best"]) == (0.8, 2, 1)

    # the resumed run continues the scripted sequence (epoch 4: 0.85) and stops at once
    events: list[dict] = []
    summary = engine.train(config, tmp_path / "resumed", on_event=events.append, resume=True)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [4]
    assert summary["early_stopped"] and summary["stopped_epoch"] == 4 and summary["best_epoch"] == 2
    assert summary["test_loss"] == straight["test_loss"]


def test_a_checkpoint_without_the_early_stop_keys_resumes(tmp_path, monkeypatch):
    config = TrainConfig(**TINY, epochs=3, early_stop=2)
    stop = threading.Event()
    engine.train(
        config,
        tmp_path / "old",
        stop=stop,
        on_event=lambda e: e["event"] == "epoch" and stop.set(),
    )
    path = tmp_path / "old" / runs.CHECKPOINT_FILE
    checkpoint = torch.load(path, weights_only=True)
    for key in ("best_metric", "best_epoch", "since_best"):  # as written before early stopping
        del checkpoint["progress"][key]
    torch.save(checkpoint, path)
    summary = engine.train(config, tmp_path / "old", resume=True)
    assert summary["status"] == "finished" and summary["epochs_done"] == 3
    # the counters started afresh at epoch 2: its best is one of epochs 2-3, tested from best.pt
    assert summary["best_epoch"] in (2, 3) and summary["evaluated_with"] == "best"


def test_headless_train_says_why_it_stopped_and_which_weights_it_tested(
    tmp_path, monkeypatch, capsys
):
    scripted_validation(monkeypatch, [1.0, 1.1, 1.2, 1.3])
    argv = ["train", "--no-ui", "--dataset", "shapes", "--limit", "120", "--batch-size", "32",
            "--hidden-units", "4", "--device", "cpu", "--epochs", "4", "--early-stop", "1",
            "--run-dir", str(tmp_path / "r")]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "early stop after epoch 2: val_loss has not improved for 1 epoch; the best was epoch 1 "
        "(val_loss 1), whose weights (best.pt) are tested"
    ) in out
    assert "with epoch 1's weights (best.pt)" in out
    assert "checkpoint.pt, best.pt, metrics.jsonl" in out


def test_best_weights_reach_the_head_over_cached_features(tmp_path, monkeypatch):
    # resnet18 with a frozen backbone trains its head over cached features (feature_cache): the
    # best epoch's weights must be what tests, as eval (no cache) recomputes from best.pt
    scripted_validation(monkeypatch, [1.0, 1.1, 1.2])
    config = TrainConfig(
        **{**TINY, "limit": 60},
        model="resnet18",
        weights="none",
        finetune="head",
        epochs=3,
        early_stop=1,
        lr=0.05,
    )
    summary = engine.train(config, tmp_path / "r")
    assert summary["early_stopped"] and summary["best_epoch"] == 1
    monkeypatch.setattr(engine, "evaluate", REAL_EVALUATE)
    report = engine.evaluate_run(tmp_path / "r", "cpu")
    assert report["weights"] == runs.BEST_FILE
    assert report["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-4)
    last = torch.load(tmp_path / "r" / runs.CHECKPOINT_FILE, weights_only=True)["model"]
    best = torch.load(tmp_path / "r" / runs.BEST_FILE, weights_only=True)["model"]
    assert not torch.equal(last["fc.weight"], best["fc.weight"])  # the head did change after it
