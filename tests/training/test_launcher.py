"""cnn_tui.training.runs.launcher: runs start in their own session, stop on SIGTERM, and are followed by file.

A stand-in trainer (a few lines of Python writing status.json and metrics.jsonl like the real one)
keeps these tests fast; the real engine is exercised by tests/ui/test_training_screens.py and the tmux test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import wait_for

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import launcher
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.store import read_status
from cnn_tui.training.system.processes import this_process

FAKE_TRAINER = r"""
import json, os, signal, sys, time
from cnn_tui.training.system.processes import this_process
from pathlib import Path
run = Path(sys.argv[1])
mode = sys.argv[2]
def status(state, message=""):
    tmp = run / "status.tmp"
    tmp.write_text(json.dumps({"status": state, **this_process().fields(), "message": message,
                               "epoch": 0, "epochs": 1}))
    os.replace(tmp, run / "status.json")
def event(**fields):
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"time": time.time(), **fields}) + "\n")
if mode == "crash":
    print("Traceback: something broke early", flush=True)
    sys.exit(1)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
status("running")
event(event="run_started", epochs=1, batches_per_epoch=1000)
for batch in range(1, 1001):
    if stop:
        event(event="stopped", epoch=1, message="stopped by SIGTERM")
        status("stopped", "stopped by SIGTERM")
        sys.exit(130)
    event(event="batch", epoch=1, batch=batch, batches=1000, loss=1.0)
    time.sleep(0.01 if mode == "slow" else 0)
    if mode == "fast" and batch == 3:
        break
event(event="finished")
status("finished")
"""


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    """Make launcher start the stand-in trainer; returns a setter for its mode."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    mode = {"value": "slow"}

    def command(run_dir: Path, resume: bool = False, trust: bool = False) -> list[str]:
        return [sys.executable, str(script), str(run_dir), mode["value"]]

    monkeypatch.setattr(launcher, "train_command", command)
    return mode


def test_launcher_imports_without_textual_or_torch() -> None:
    code = (
        "import sys, cnn_tui.training.runs.launcher; "
        "bad = [m for m in ('textual', 'torch') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_train_command_runs_the_headless_trainer(tmp_path) -> None:
    command = launcher.train_command(tmp_path)
    assert command[:3] == [sys.executable, "-m", "cnn_tui"]
    assert command[3:5] == ["train", "--no-ui"]
    assert "--json" not in command  # output.log is for people (the Console tab)
    assert command[-4:] == ["--config", str(tmp_path / "config.toml"), "--run-dir", str(tmp_path)]
    assert launcher.train_command(tmp_path, resume=True)[-2:] == ["--resume", str(tmp_path)]


def test_launch_writes_config_and_detaches(tmp_path, fake_trainer) -> None:
    config = TrainConfig(epochs=3, device="cpu")
    pid = launcher.launch_run(config, tmp_path / "run")
    try:
        run = tmp_path / "run"
        assert (run / "config.toml").read_text() == config.to_toml()
        # its own session: closing our terminal (SIGHUP to our session) does not reach it
        assert os.getsid(pid) == pid != os.getsid(0)
        wait_for(lambda: (run / "status.json").exists())
        assert run in launcher.live_children()
    finally:
        launcher.stop_run(tmp_path / "run", pid)
    wait_for(lambda: launcher.child_exit_code(pid) is not None)
    assert launcher.child_exit_code(pid) == 130
    assert read_status(tmp_path / "run")["status"] == "stopped"
    assert tmp_path / "run" not in launcher.live_children()


def test_stop_run_of_a_run_that_is_not_running(tmp_path) -> None:
    assert not launcher.stop_run(tmp_path)
    (tmp_path / "status.json").write_text(json.dumps({"status": "finished", "pid": os.getpid()}))
    answer = launcher.stop_run(tmp_path)
    assert not answer and answer.reason == "is not running"


def test_follow_run_until_finished(tmp_path, fake_trainer) -> None:
    fake_trainer["value"] = "fast"
    run = tmp_path / "run"
    pid = launcher.launch_run(TrainConfig(), run)
    seen: list[dict] = []
    statuses: list[dict | None] = []

    def emit(events, status):
        seen.extend(events)
        statuses.append(status)

    state, message = launcher.follow_run(run, emit, threading.Event(), pid=pid, poll_s=0.02)
    assert state == "finished"
    assert [e["event"] for e in seen] == ["run_started", "batch", "batch", "batch", "finished"]
    assert statuses[-1]["status"] == "finished"


def test_follow_run_reports_a_trainer_that_died_before_starting(tmp_path, fake_trainer) -> None:
    fake_trainer["value"] = "crash"
    run = tmp_path / "run"
    pid = launcher.launch_run(TrainConfig(), run)
    state, message = launcher.follow_run(
        run, lambda *_: None, threading.Event(), pid=pid, poll_s=0.02
    )
    assert state == "failed"
    assert "exited without reporting why" in message
    assert "something broke early" in message.splitlines()[0]  # its last line, first


def test_follow_run_waits_for_a_resumed_run_to_write_its_own_status(tmp_path, fake_trainer) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # the status the previous (stopped) trainer left behind
    (run / "status.json").write_text(json.dumps({"status": "stopped", "pid": 1}))
    fake_trainer["value"] = "fast"
    pid = launcher.resume_run(run)
    state, _ = launcher.follow_run(run, lambda *_: None, threading.Event(), pid=pid, poll_s=0.02)
    assert state == "finished"


def test_follow_run_stops_when_asked(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    status = {"status": "running", **this_process().fields()}  # this process: alive
    (run / "status.json").write_text(json.dumps(status))
    stop = threading.Event()
    stop.set()
    assert launcher.follow_run(run, lambda *_: None, stop, poll_s=0.02) == ("following", "")


def test_follow_run_marks_a_dead_trainer_interrupted(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "output.log").write_text("RuntimeError: CUDA out of memory\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / "status.json").write_text(json.dumps({"status": "running", "pid": dead.pid}))
    state, message = launcher.follow_run(run, lambda *_: None, threading.Event(), poll_s=0.02)
    assert state == "interrupted"
    assert "CUDA out of memory" in message


def test_follow_run_sees_a_final_status_written_just_before_the_trainer_exited(
    tmp_path, monkeypatch
) -> None:
    """Read "running", then the trainer writes "stopped" and exits before we look at its pid:
    the run is stopped, not interrupted."""
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status_file = run / "status.json"
    status_file.write_text(json.dumps({"status": "running", "pid": dead.pid}))
    real_effective = runs.effective_status

    def trainer_ends_meanwhile(status):
        status_file.write_text(json.dumps({"status": "stopped", "pid": dead.pid}))
        return real_effective(status)

    monkeypatch.setattr(runs, "effective_status", trainer_ends_meanwhile)
    state, _ = launcher.follow_run(run, lambda *_: None, threading.Event(), poll_s=0.02)
    assert state == "stopped"
