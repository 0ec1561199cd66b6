"""`cnn-tui train --devices N` on the CPU: torchrun with gloo, two processes, the real CLI path.

Three launches in all (each torchrun start costs seconds): one two-process run checked against a
one-process run of the same settings, one stopped by SIGTERM and resumed, one whose rank 1 is
killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_process import ENV, run_cnn_tui

# the3-cnn has no BatchNorm and no dropout: with SGD, two ranks that each take half of every
# batch and average their gradients must end where one process with the whole batch does
SETTINGS = (
    "--dataset", "shapes", "--model", "the3-cnn", "--optimizer", "sgd",
    "--epochs", "1", "--limit", "400", "--batch-size", "64",
)  # fmt: skip


def _train(tmp_path: Path, name: str, *extra: str) -> Path:
    runs = tmp_path / name
    result = run_cnn_tui(
        "--runs-dir", str(runs), "train", "--no-ui", *SETTINGS, *extra, cwd=tmp_path, timeout=240
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = runs.iterdir()
    return run_dir


def _events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def test_two_processes_train_the_same_weights_as_one_and_write_the_run_once(tmp_path):
    two = _train(tmp_path, "two", "--devices", "2")
    one = _train(tmp_path, "one")

    a, b = _weights(two), _weights(one)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)

    events = _events(two)
    kinds = [event["event"] for event in events]
    assert kinds.count("run_started") == 1 and kinds.count("epoch") == 1
    started = next(event for event in events if event["event"] == "run_started")
    assert started["world_size"] == 2
    # evaluation is sharded and gathered: the test metrics equal the one-process run's
    summary_two = json.loads((two / "summary.json").read_text())
    summary_one = json.loads((one / "summary.json").read_text())
    assert summary_two["n_test"] == summary_one["n_test"]
    assert summary_two["confusion_matrix"] == summary_one["confusion_matrix"]
    assert summary_two["test_loss"] == pytest.approx(summary_one["test_loss"], rel=1e-5)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_every_rank_with_one_checkpoint_and_it_resumes_on_one_process(tmp_path):
    runs = tmp_path / "runs"
    child = _start_long_run(runs, tmp_path)
    try:
        _wait_for_checkpoint(runs)
        os.kill(child.pid, signal.SIGTERM)
        child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    (run_dir,) = runs.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "stopped", status
    assert [e["event"] for e in _events(run_dir)].count("stopped") == 1

    resumed = run_cnn_tui(
        "--runs-dir", str(runs), "train", "--no-ui", "--resume", str(run_dir),
        "--devices", "1", "--epochs", str(status["epoch"] + 1),
        cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of rank `rank` among the processes `launcher` (a cnn-tui train) started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(
                item.split("=", 1)
                for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in item
            )
        except OSError:
            continue
        if env.get("CNN_TUI_LAUNCHER_PID") == str(launcher) and env.get("RANK") == str(rank):
            return int(entry.name)
    return None


def _start_long_run(runs: Path, tmp_path: Path) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "cnn_tui", "--runs-dir", str(runs), "train", "--no-ui",
        "--dataset", "shapes", "--model", "the3-cnn", "--optimizer", "sgd",
        "--epochs", "40", "--limit", "2000", "--devices", "2",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_checkpoint(runs: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until an epoch is done: a checkpoint exists
        if any(runs.glob("*/checkpoint.pt")):
            return
        time.sleep(0.2)
    pytest.fail("the two-process run wrote no checkpoint in 120 s")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_rank_that_dies_fails_the_run_with_its_message(tmp_path):
    runs = tmp_path / "runs"
    child = _start_long_run(runs, tmp_path)
    try:
        _wait_for_checkpoint(runs)
        rank = _rank_pid(child.pid, 1)
        assert rank is not None, "rank 1 not found"
        os.kill(rank, signal.SIGKILL)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0, stderr[-2000:]
    (run_dir,) = runs.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed", (status, child.returncode, stderr[-3000:])
    assert "rank 1" in status["message"] and "SIGKILL" in status["message"]
    assert "rank 1" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("devices", "named"),
    [("0", "--devices"), ("x", "--devices"), ("all", "--devices all"), ("99", "--batch-size")],
)
def test_bad_devices_are_one_line_usage_errors_and_write_nothing(tmp_path, devices, named):
    runs = tmp_path / "runs"
    result = run_cnn_tui(
        "--runs-dir", str(runs), "train", "--no-ui", "--dataset", "shapes", "--device", "cpu",
        "--devices", devices, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr
    assert not runs.exists()
