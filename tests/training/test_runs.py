"""Run directories: naming, status, incremental event reading, listing, deleting (no torch)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import state
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.system.processes import ProcessId


def _fake_run(path, status="finished", pid=None, **status_extra):
    path.mkdir(parents=True)
    (path / runs.CONFIG_FILE).write_text(TrainConfig(epochs=3).to_toml())
    process = None if pid is None else ProcessId(pid)  # (a pid alone: an old record)
    runs.write_status(path, status, epoch=3, epochs=3, process=process, **status_extra)
    return path


def test_import_hygiene():
    """runs/metrics load without torch (the TUI imports them); no headless module loads textual."""
    code = (
        "import sys, cnn_tui.training.runs.store, cnn_tui.training.loop.metrics, cnn_tui.training.system.devices; "
        "print('torch' in sys.modules, 'textual' in sys.modules); "
        "import cnn_tui.training.loop.trainer, cnn_tui.training.loop.engine; print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_new_run_dir_is_unique_and_named_after_model_and_dataset(tmp_path):
    config = TrainConfig(model="the3-cnn", dataset="fashion-mnist")
    first = runs.new_run_dir(tmp_path / "runs", config)
    second = runs.new_run_dir(tmp_path / "runs", config)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("-the3-cnn-fashion-mnist")


def test_a_run_named_after_a_file_in_another_script_keeps_its_letters(tmp_path):
    config = TrainConfig(model="модели/сеть_v2.py:Сеть", dataset="shapes")
    name = runs.new_run_dir(tmp_path / "runs", config).name
    assert name.endswith("-сеть-v2.py-Сеть-shapes"), name
    assert "/" not in name and ":" not in name and "_" not in name
    # controls, spaces and a right-to-left override become one dash each; a name of none is "run"
    odd = TrainConfig(model="a\u202eb c\x1bd.py:Net", dataset="shapes")
    assert runs.new_run_dir(tmp_path / "runs", odd).name.endswith("-a-b-c-d.py-Net-shapes")


def test_status_keeps_started_and_updates(tmp_path):
    first = runs.write_status(tmp_path, "running", epoch=0, epochs=5)
    second = runs.write_status(tmp_path, "stopped", epoch=2, epochs=5, message="stopped")
    assert second["started"] == first["started"]
    assert runs.read_status(tmp_path)["status"] == "stopped"
    assert runs.read_status(tmp_path / "nowhere") is None
    with pytest.raises(ValueError):
        runs.write_status(tmp_path, "exploded")


def test_every_state_has_one_look_and_anything_else_is_unknown():
    assert set(state.LOOKS) == set(RunState)
    for look in state.LOOKS.values():
        assert len(look.mark) == 1 and look.ascii_mark.isascii() and len(look.ascii_mark) == 1
    assert RunState.of("running") is RunState.RUNNING and RunState.RUNNING == "running"
    for value in (None, 5, True, ["running"], "exploded"):
        assert RunState.of(value) is RunState.UNKNOWN
    assert runs.effective_status({"status": "pending"}) is RunState.UNKNOWN  # no trainer writes it
    assert state.label(RunState.FINISHED, 5) == "finished (early stop @5)"
    assert state.label(RunState.STOPPED, 5) == "stopped"
    assert json.dumps({"status": RunState.INTERRUPTED}) == '{"status": "interrupted"}'


def test_read_events_is_incremental_and_tolerates_a_partial_last_line(tmp_path):
    path = tmp_path / runs.EVENTS_FILE
    assert runs.read_events(tmp_path) == ([], 0)
    path.write_text('{"event": "a"}\n{"event": "b"}\n{"event": "c"')
    events, offset = runs.read_events(tmp_path)
    assert [e["event"] for e in events] == ["a", "b"]
    with path.open("a") as handle:
        handle.write(', "x": 1}\nnot json\n')
    events, offset2 = runs.read_events(tmp_path, offset)
    assert events == [{"event": "c", "x": 1}]
    assert offset2 == path.stat().st_size
    assert runs.read_events(tmp_path, offset2) == ([], offset2)


def test_list_runs_shows_dead_running_runs_as_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_run(tmp_path / "a", "finished", best_val_acc=0.5)
    (tmp_path / "a" / runs.SUMMARY_FILE).write_text(
        json.dumps({"test_accuracy": 0.42, "best_val_acc": 0.5, "epochs_done": 3})
    )
    _fake_run(tmp_path / "b", "running", pid=dead.pid)
    _fake_run(tmp_path / "c", "running")  # this process: alive
    (tmp_path / "not-a-run").mkdir()
    infos = {info.name: info for info in runs.list_runs(tmp_path)}
    assert set(infos) == {"a", "b", "c"}
    assert infos["a"].status == "finished" and infos["a"].test_acc == 0.42
    assert infos["a"].best_val_acc == 0.5 and infos["a"].epochs_done == 3
    assert infos["a"].model == "simple-cnn" and infos["a"].dataset == "shapes"
    assert infos["b"].status == "interrupted"
    assert infos["c"].status == "running"
    assert runs.list_runs(tmp_path / "missing") == []


def test_delete_run_refuses_non_runs_and_live_runs(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    with pytest.raises(UsageError):
        runs.delete_run(tmp_path / "precious")
    live = _fake_run(tmp_path / "live", "running")
    with pytest.raises(UsageError):
        runs.delete_run(live)
    done = _fake_run(tmp_path / "done", "finished")
    runs.delete_run(done)
    assert not done.exists() and (tmp_path / "precious" / "thesis.tex").exists()


def test_writing_events_through_the_throttle_never_imports_torch(tmp_path):
    """The run directory's owner is torch-free: the TUI and `--json` output use it at once."""
    code = (
        "import json, sys\n"
        "from cnn_tui.training.runs import store as runs\n"
        f"log = runs.EventLog({str(tmp_path)!r})\n"
        "log.emit('run_started', epochs=1)\n"
        "for b in range(50):\n"
        "    log.emit('batch', batch=b + 1, loss=1.0)\n"
        "log.emit('finished')\n"
        "log.close()\n"
        "throttle = runs.BatchThrottle()\n"
        "throttle.add({'event': 'batch', 'time': 0.0, 'loss': 1.0})\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'textual')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "textual": False}
    events, _ = runs.read_events(tmp_path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "finished"
    assert 1 <= kinds.count("batch") < 50  # throttled: 50 batches within far less than 0.25 s each


def test_batch_throttle_merges_batches_into_their_mean_loss():
    throttle = runs.BatchThrottle(interval=1.0)
    first = throttle.add({"event": "batch", "time": 10.0, "loss": 4.0})
    assert first is not None and first["loss"] == 4.0
    assert throttle.add({"event": "batch", "time": 10.5, "loss": 1.0}) is None
    merged = throttle.add({"event": "batch", "time": 11.0, "loss": 3.0})
    assert merged is not None and merged["loss"] == 2.0 and merged["time"] == 11.0


def test_event_log_hands_every_event_to_the_callback(tmp_path):
    seen = []
    log = runs.EventLog(tmp_path, seen.append)
    for b in range(5):
        log.emit("batch", batch=b + 1, loss=1.0)
    log.close()
    assert len(seen) == 5 and all(isinstance(e["time"], float) for e in seen)
    assert len(runs.read_events(tmp_path)[0]) == 1  # the file: the first, then throttled


def test_samples_round_trip_worst_mistakes_first(tmp_path):
    np = pytest.importorskip("numpy")
    n = 100
    images = np.arange(n * 3 * 4 * 4, dtype=np.uint8).reshape(n, 3, 4, 4)
    true = np.arange(n) % 3
    pred = true.copy()
    pred[:40] = (true[:40] + 1) % 3  # 40 mistakes
    confidence = np.linspace(0.1, 0.9, n)
    runs.write_samples(tmp_path, images, true, pred, confidence, ["a", "b", "c"])
    samples = runs.read_samples(tmp_path)
    assert samples is not None and len(samples["images"]) == runs.SAMPLES_TOTAL
    k = runs.SAMPLES_WRONG
    assert (samples["true"][:k] != samples["pred"][:k]).all()
    assert (samples["true"][k:] == samples["pred"][k:]).all()
    assert (np.diff(samples["confidence"][:k]) <= 0).all()  # most confident mistakes first
    assert samples["confidence"].dtype == np.float32 and list(samples["classes"]) == ["a", "b", "c"]
    picked = runs.pick_samples(true, pred, confidence)
    assert (samples["images"] == images[picked]).all()
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_read_samples_refuses_missing_damaged_and_pickled_files(tmp_path):
    np = pytest.importorskip("numpy")
    assert runs.read_samples(tmp_path) is None
    (tmp_path / runs.SAMPLES_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    assert runs.read_samples(tmp_path) is None
    np.savez(tmp_path / runs.SAMPLES_FILE, images=np.array([{"code": 1}], dtype=object))
    assert runs.read_samples(tmp_path) is None  # object arrays need pickle: never loaded


def test_summary_config_and_eval_writers_round_trip(tmp_path):
    runs.write_config(tmp_path, TrainConfig(epochs=7))
    assert runs.read_config(tmp_path).epochs == 7
    runs.write_summary(tmp_path, {"test_accuracy": 0.5})
    assert runs.read_summary(tmp_path) == {"test_accuracy": 0.5}
    runs.write_eval(tmp_path, {"test_loss": 1.5})
    assert json.loads((tmp_path / runs.EVAL_FILE).read_text()) == {"test_loss": 1.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [runs.CONFIG_FILE, runs.SUMMARY_FILE, runs.EVAL_FILE]
    )
