"""`cnn-tui train/eval/runs --no-ui` end to end: subprocesses where the process boundary matters
(output to a pipe, exit codes, signals), `cli.main` in this process elsewhere (torch loads once)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import ENV, run_cnn_tui
from conftest import wait_for

from cnn_tui import cli
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import store as runs

FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip


def cnn_tui(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cnn_tui(*argv, cwd=cwd, timeout=timeout)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_plain_output_then_runs_and_eval(tmp_path, capsys, monkeypatch):
    result = cnn_tui("train", "--no-ui", *FAST, "--epochs", "2", "--run-dir", "r1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "run dir: r1"
    assert sum(1 for line in lines if line.lstrip().startswith(("1/2", "2/2"))) == 2
    assert "\r" not in result.stdout and "\x1b" not in result.stdout  # no redraws in a log
    assert any(line.startswith("test accuracy") and "macro F1" in line for line in lines)
    assert runs.read_status(tmp_path / "r1")["status"] == "finished"

    listed = cnn_tui("--runs-dir", ".", "runs", "--no-ui", cwd=tmp_path)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split()[:3] == ["run", "model", "data"]
    assert "r1" in listed.stdout and "finished" in listed.stdout

    evaluated = cnn_tui("eval", "r1", "--no-ui", "--device", "cpu", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    summary = runs.read_summary(tmp_path / "r1")
    assert report["confusion_matrix"] == summary["confusion_matrix"]
    assert report["test_accuracy"] == summary["test_accuracy"]
    assert (tmp_path / "r1" / runs.EVAL_FILE).is_file()

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["eval", "r1", "--no-ui", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "confusion matrix" in text and "precision" in text
    assert cli.main(["--runs-dir", ".", "runs", "--no-ui", "--json"]) == 0
    listed_json = json.loads(capsys.readouterr().out)
    assert listed_json[0]["name"] == "r1" and listed_json[0]["epochs_done"] == 2

    # nothing saved is ever overwritten by a new run
    assert cli.main(["train", "--no-ui", *FAST, "--run-dir", "r1"]) == 2
    assert "run dir r1 already holds a run: pass --resume r1" in capsys.readouterr().err


def test_json_mode_and_the_tui_launcher_layout(tmp_path):
    """The TUI writes RUN/config.toml (and the marker of a folder made ready for a new run), then
    runs `train --no-ui --config ... --run-dir` (here with --json: the JSON lines alone)."""
    run = tmp_path / "launched"
    config = TrainConfig(dataset="shapes", limit=60, epochs=1, hidden_units=4, device="cpu")
    runs.prepare_run_dir(run, config)
    assert (run / "config.toml").read_text() == config.to_toml()
    result = cnn_tui("train", "--no-ui", "--json", "--config", str(run / "config.toml"),
                     "--run-dir", str(run), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines only
    kinds = [event["event"] for event in events]
    assert kinds[0] == "run_started" and kinds[-2:] == ["evaluated", "finished"]
    assert events[0]["run_dir"] == str(run)
    assert runs.read_status(run)["status"] == "finished"


def test_new_runs_go_under_runs_dir(in_tmp, capsys):
    assert (
        cli.main(["--runs-dir", "mine", "train", "--no-ui", "--json", *FAST, "--epochs", "1"]) == 0
    )
    (run_dir,) = (in_tmp / "mine").iterdir()
    assert run_dir.name.endswith("-simple-cnn-shapes")
    assert runs.read_status(run_dir)["status"] == "finished"


def test_eval_usage_errors_need_no_torch(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cnn_tui("eval", "empty", "--no-ui", cwd=tmp_path)
    assert result.returncode == 2 and "not a run directory" in result.stderr
    run = tmp_path / "half"
    run.mkdir()
    (run / "config.toml").write_text('dataset = "shapes"\n')
    result = cnn_tui("eval", "half", "--no-ui", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "checkpoint.pt does not exist" in result.stderr


def test_unknown_cuda_device_is_a_usage_error(in_tmp, capsys):
    import torch

    spec = f"cuda:{torch.cuda.device_count() + 7}"
    assert cli.main(["train", "--no-ui", "--device", spec]) == 2
    err = capsys.readouterr().err
    assert f"--device {spec}" in err and len(err.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_divergence_exits_1_with_one_line(in_tmp, capsys):
    argv = ["train", "--no-ui", *FAST, "--epochs", "5", "--optimizer", "sgd", "--lr", "10",
            "--momentum", "0", "--weight-decay", "1", "--run-dir", "r"]  # fmt: skip
    assert cli.main(argv) == 1
    message = (
        "training diverged at epoch 2 (loss is nan): lower the learning rate (--lr, now 10); "
        "checkpoint.pt keeps the weights of epoch 1 (for cnn-tui eval and predict)"
    )
    assert capsys.readouterr().err.strip().splitlines() == [f"cnn-tui: {message}"]
    assert runs.read_status(in_tmp / "r")["status"] == "failed"


def test_missing_data_fails_the_run_with_the_loaders_message(in_tmp, capsys, monkeypatch):
    from cnn_tui.errors import RunError
    from cnn_tui.training.data import datasets

    def no_network(root):
        raise RunError(f"CIFAR-10 is not in {root} and could not be downloaded (no network)")

    monkeypatch.setattr(datasets, "_download_cifar10", no_network)
    assert cli.main(["train", "--no-ui", "--dataset", "cifar10", "--data-dir", "nothing",
                     "--device", "cpu", "--run-dir", "r"]) == 1  # fmt: skip
    assert "could not be downloaded" in capsys.readouterr().err
    status = runs.read_status(in_tmp / "r")
    assert status["status"] == "failed" and "could not be downloaded" in status["message"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_with_checkpoint_exit_130_and_resume_finishes(tmp_path, sig):
    command = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", *FAST, "--limit", "600",
               "--epochs", "30", "--run-dir", "r"]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(  # until training is under way
        lambda: any(event["event"] == "batch" for event in runs.read_events(tmp_path / "r")[0]),
        60,
        "the first batch",
    )
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "stopping after this batch" in err
    status = runs.read_status(tmp_path / "r")
    assert status["status"] == "stopped" and "--resume r" in status["message"]
    assert (tmp_path / "r" / runs.CHECKPOINT_FILE).is_file()
    events, _ = runs.read_events(tmp_path / "r")
    assert events[-1]["event"] == "stopped"
    assert "continue with: cnn-tui train --no-ui --resume r" in out

    if sig == signal.SIGTERM:  # settings other than --epochs / --device are refused on resume
        refused = cnn_tui("train", "--no-ui", "--resume", "r", "--lr", "0.5", cwd=tmp_path)
        assert (
            refused.returncode == 2
            and "only --epochs, --device, --devices and --log" in refused.stderr
        )
        return
    epochs = str(events[-1]["epoch"] + 1)  # finish the interrupted epoch, then stop there
    done = cnn_tui("train", "--no-ui", "--resume", "r", "--epochs", epochs, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resuming at epoch" in done.stdout
    assert runs.read_status(tmp_path / "r")["status"] == "finished"
    assert runs.read_summary(tmp_path / "r")["epochs_done"] == int(epochs)
