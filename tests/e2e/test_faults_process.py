"""Process-level faults: a trainer killed mid-write, signals, two trainers on one run directory,
a full disk, damaged run files, and the TUI in a tiny terminal.

Trainers run as subprocesses where the process boundary is the point (kill -9, signals, a hangup,
two processes); the rest runs `cli.main` or the screens in this process. Waits poll the run's
files with a timeout; nothing asserts on timing.
"""

from __future__ import annotations

import errno
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_process import ENV
from conftest import press_quickly, wait_for, wait_until
from train_ui_fixtures import run_async, write_run

from cnn_tui import cli, fileio
from cnn_tui.errors import UsageError
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system.processes import this_host

FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip
LONG = [*FAST, "--limit", "600", "--epochs", "2000"]  # ~5 min: always interrupted

# `python -c` trainers: set up the fault, then run the real command line
KILLED_IN_SECOND_CHECKPOINT = r"""
import io, os, signal, sys
from cnn_tui import cli
from cnn_tui.training.loop import checkpoints

real, calls = checkpoints.atomic_write, []

def dying(path, write):
    calls.append(path)
    if not str(path).endswith("checkpoint.pt") or len(calls) < 2:
        return real(path, write)

    def half_then_kill(handle):  # half of the checkpoint is on disk when the process dies
        buffer = io.BytesIO()
        write(buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    return real(path, half_then_kill)

checkpoints.atomic_write = dying
sys.exit(cli.main(sys.argv[1:]))
"""
# SIGHUP as a login shell leaves it (pytest itself may run under nohup, which ignores it)
DEFAULT_SIGHUP = "import signal; signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
RUN = "import sys\nfrom cnn_tui import cli\nsys.exit(cli.main(sys.argv[1:]))\n"
ON_A_TERMINAL = (
    DEFAULT_SIGHUP
    + "import fcntl, termios\n"
    + "fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # stdin (a pty) becomes our controlling terminal\n"
    + RUN
)
# a second trainer that passed the "already holds a run" checks (both started at the same time)
WITHOUT_CHECKS = (
    "from cnn_tui.training.loop import trainer\n"
    "trainer.check_new_run_dir = lambda *args, **kwargs: None\n" + RUN
)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(tmp_path)
    return tmp_path


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def no_trainer_left():
    """A test that fails half-way leaves no trainer of its own running."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def trainer(*argv: str, cwd: Path, code: str | None = None, **popen) -> subprocess.Popen[str]:
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "cnn_tui"]
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    process = subprocess.Popen([*head, *argv], cwd=cwd, env=ENV, text=True, **popen)
    _started.append(process)
    return process


def events(run: Path) -> list[dict]:
    return runs.read_events(run)[0]


def training(run: Path) -> bool:
    return any(event.get("event") == "batch" for event in events(run))


def temp_files(run: Path) -> list[Path]:
    return sorted(run.glob(".*.tmp"))


def snapshot(run: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run.iterdir()) if path.is_file()}


def checkpoint_epoch(run: Path) -> int:
    import torch

    checkpoint = torch.load(run / runs.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    return int(checkpoint["epoch"])


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# --- 1. kill -9 while the checkpoint is being written ---------------------------------------


@pytest.mark.slow
def test_kill_9_mid_checkpoint_keeps_the_last_one_and_resume_finishes(in_tmp, capsys):
    process = trainer("train", "--no-ui", *FAST, "--epochs", "3", "--run-dir", "r", cwd=in_tmp,
                      code=KILLED_IN_SECOND_CHECKPOINT)  # fmt: skip
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL
    run = in_tmp / "r"
    (leftover,) = temp_files(run)  # half of the second checkpoint
    assert leftover.name.startswith(".checkpoint.pt.") and leftover.stat().st_size > 0
    assert checkpoint_epoch(run) == 1  # the first one, whole
    assert runs.read_status(run)["status"] == "running"
    assert runs.effective_status(runs.read_status(run)) == "interrupted"

    # nothing is confused by the leftover: the listing, eval, the resume
    capsys.readouterr()
    assert cli.main(["--runs-dir", ".", "runs", "--no-ui"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("r ")]
    assert row.split()[-1] == "interrupted" and " 1/3 " in row
    assert cli.main(["eval", "r", "--no-ui", "--device", "cpu"]) == 0
    assert "checkpoint after epoch 1" in capsys.readouterr().out
    assert cli.main(["train", "--no-ui", "--resume", "r"]) == 0
    out = capsys.readouterr().out
    assert "resuming at epoch 2" in out
    assert runs.read_status(run)["status"] == "finished"
    assert runs.read_summary(run)["epochs_done"] == 3 and checkpoint_epoch(run) == 3
    assert temp_files(run) == []  # the resumed trainer removed the leftover


# --- 2. SIGINT / SIGTERM / SIGHUP ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])  # fmt: skip
def test_signal_stops_with_one_checkpoint_and_resume_continues(in_tmp, capsys, sig):
    process = trainer("train", "--no-ui", *LONG, "--run-dir", "r", cwd=in_tmp,
                      code=DEFAULT_SIGHUP + RUN)  # fmt: skip
    run = in_tmp / "r"
    wait_for(lambda: training(run), what="the first batch")
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert one_line(err).startswith(f"cnn-tui: {sig.name}: stopping after this batch")
    status = runs.read_status(run)
    assert status["status"] == "stopped" and "--resume r" in status["message"]
    assert runs.effective_status(status) == "stopped"
    stops = [event for event in events(run) if event["event"] == "stopped"]
    assert len(stops) == 1 and events(run)[-1]["event"] == "stopped"
    assert (run / runs.CHECKPOINT_FILE).is_file() and temp_files(run) == []
    assert "continue with: cnn-tui train --no-ui --resume r" in out

    epochs = str(stops[0]["epoch"] + 1)  # finish the interrupted epoch
    capsys.readouterr()
    assert cli.main(["train", "--no-ui", "--resume", "r", "--epochs", epochs]) == 0
    assert "resuming at epoch" in capsys.readouterr().out
    assert runs.read_status(run)["status"] == "finished"
    assert checkpoint_epoch(run) == int(epochs)


def test_sighup_stops_the_run_unless_it_is_ignored(monkeypatch):
    """A closed terminal stops a run like SIGTERM; under `nohup` (SIGHUP ignored) it trains on.
    (The TUI's launcher starts trainers in their own session: no terminal sends them SIGHUP.)"""
    from cnn_tui.training.loop import trainer

    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_DFL)
    assert signal.SIGHUP in trainer.stop_signals()
    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_IGN)
    assert trainer.stop_signals() == [signal.SIGINT, signal.SIGTERM]


@pytest.mark.slow
def test_a_dropped_ssh_session_stops_with_a_checkpoint(in_tmp):
    """The trainer's terminal hangs up (its pty master closes, as when sshd goes away): SIGHUP,
    and every later write to the terminal fails. It still checkpoints, marks the run stopped and
    exits 130 instead of failing on a print."""
    import pty

    try:
        master, slave = pty.openpty()
    except OSError as exc:
        pytest.skip(f"no pseudo-terminals here: {exc}")
    process = trainer("train", "--no-ui", *LONG, "--run-dir", "r", cwd=in_tmp,
                      code=ON_A_TERMINAL, stdin=slave, stdout=slave, stderr=slave,
                      start_new_session=True)  # fmt: skip
    os.close(slave)
    screen, done = bytearray(), threading.Event()

    def drain() -> None:  # what a terminal does: read the output (the progress bar redraws)
        while not done.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    screen.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    run = in_tmp / "r"
    try:
        wait_for(lambda: training(run), what="the first batch")
    finally:
        done.set()
        reader.join()
        os.close(master)  # hang up
    assert process.wait(timeout=60) == 130
    assert b"run dir: r" in screen
    status = runs.read_status(run)
    assert status["status"] == "stopped", status
    assert (run / runs.CHECKPOINT_FILE).is_file() and temp_files(run) == []
    assert events(run)[-1]["event"] == "stopped"


# --- 3. one trainer per run directory ---------------------------------------------------------


@pytest.mark.slow
def test_a_second_trainer_on_a_running_run_is_refused(in_tmp, capsys):
    first = trainer("train", "--no-ui", *LONG, "--run-dir", "r", cwd=in_tmp)
    run = in_tmp / "r"
    try:
        wait_for(lambda: runs.read_status(run) is not None and training(run), what="training")
        config = (run / runs.CONFIG_FILE).read_bytes()
        capsys.readouterr()
        for argv in (["--run-dir", "r", *FAST], ["--resume", "r"]):
            assert cli.main(["train", "--no-ui", *argv]) == 2
            line = one_line(capsys.readouterr().err)
            assert f"pid {first.pid}" in line and ("in use by" in line or "still running" in line)
        # one that got past those checks (both started at the same moment) meets the lock
        racer = trainer("train", "--no-ui", *FAST, "--run-dir", "r", cwd=in_tmp,
                        code=WITHOUT_CHECKS)  # fmt: skip
        racer.stderr = racer.communicate(timeout=60)[1]
        assert racer.returncode == 2, racer.stderr
        assert f"is in use by another trainer (pid {first.pid})" in one_line(racer.stderr)
        # nothing of the first was touched
        assert (run / runs.CONFIG_FILE).read_bytes() == config
        assert runs.read_status(run)["pid"] == first.pid
        assert [e["event"] for e in events(run)].count("run_started") == 1
        assert all(e.get("pid", first.pid) == first.pid for e in events(run))
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert runs.read_status(run)["status"] == "stopped"


def test_the_lock_refuses_a_second_holder_and_frees_with_the_process(tmp_path):
    with runs.lock_run(tmp_path / "r") as run:
        assert (run / runs.LOCK_FILE).read_text().split() == [str(os.getpid()), this_host()]
        with pytest.raises(UsageError, match=r"in use by another trainer \(pid \d+\)"):
            with runs.lock_run(run):
                pass
        held = subprocess.run(
            [sys.executable, "-c", "import sys; from cnn_tui.training.runs import store as runs\n"
             "with runs.lock_run(sys.argv[1]): pass", str(run)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert held.returncode == 1 and "UsageError" in held.stderr
    with runs.lock_run(tmp_path / "r"):  # released
        pass
    killed = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cnn_tui.training.runs import store as runs\n"
         "with runs.lock_run(sys.argv[1]):\n print('locked', flush=True); time.sleep(60)",
         str(tmp_path / "r")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert killed.stdout.readline().strip() == "locked"
    with pytest.raises(UsageError):
        with runs.lock_run(tmp_path / "r"):
            pass
    killed.kill()
    killed.wait(timeout=30)
    with runs.lock_run(tmp_path / "r"):  # kill -9 frees it
        pass


@pytest.mark.parametrize("state", ["finished", "stopped", "failed", "interrupted", "running"])
def test_run_dir_of_an_existing_run_is_refused_and_left_alone(in_tmp, capsys, state):
    pid = None
    if state == "interrupted":  # a "running" status whose trainer is gone
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        pid = dead.pid
    write_run(in_tmp / "old", "running" if state == "interrupted" else state, pid=pid)
    (in_tmp / "old" / runs.CHECKPOINT_FILE).write_bytes(b"weights")
    before = snapshot(in_tmp / "old")
    assert cli.main(["train", "--no-ui", *FAST, "--run-dir", "old"]) == 2
    line = one_line(capsys.readouterr().err)
    if state == "running":
        assert "in use by a running trainer" in line and "choose another --run-dir" in line
    else:
        assert "pass --resume old to continue it or choose another --run-dir" in line
    assert snapshot(in_tmp / "old") == before


def test_the_tuis_form_does_not_write_over_an_existing_run(tmp_path, monkeypatch):
    """`cnn-tui train --run-dir OLD` opens the form; Start must not overwrite OLD's config.toml."""
    from cnn_tui.training.runs import launcher
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.form import TrainFormScreen

    launched = []
    # the real launch_run (its check of the folder), but no trainer process
    monkeypatch.setattr(launcher, "spawn_detached", lambda *a: launched.append(a) or 1)
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    write_run(tmp_path / "old", "finished")
    before = snapshot(tmp_path / "old")

    notes: list[str] = []

    @run_async
    async def start() -> None:
        app = CnnTuiApp(runs_dir=str(tmp_path))
        monkeypatch.setattr(app, "notify", lambda message, **kwargs: notes.append(str(message)))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = TrainFormScreen(run_dir=str(tmp_path / "old"))
            await app.push_screen(screen)
            await pilot.pause()
            screen.action_start()
            await pilot.pause()

    start()
    assert launched == [] and snapshot(tmp_path / "old") == before
    assert any("already holds a run: pass --resume" in note for note in notes), notes


# --- 4. a full disk -----------------------------------------------------------------------------


class FullDisk(io.FileIO):
    """A file on a disk with `room` bytes left: writes fit until then, then fail with ENOSPC."""

    room = 4096

    def write(self, data) -> int:
        data = bytes(data)
        if not self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = super().write(data[: self.room])
        FullDisk.room -= written
        return written


def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import torch

    target = tmp_path / "checkpoint.pt"
    fileio.atomic_write(target, lambda handle: torch.save({"w": torch.ones(3)}, handle))
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        fileio.os, "fdopen", lambda fd, mode="r", *a, **k: io.BufferedWriter(FullDisk(fd, "wb"))
    )
    big = {"w": torch.zeros(100_000)}
    for write in (
        lambda handle: torch.save(big, handle),
        lambda handle: handle.write(b"x" * 10**6),
    ):
        FullDisk.room = 4096
        with pytest.raises(OSError) as caught:  # torch.save turns it into a RuntimeError
            fileio.atomic_write(target, write)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    monkeypatch.setattr(fileio.os, "fdopen", real_fdopen)
    assert torch.load(target, weights_only=True)["w"].tolist() == [1.0, 1.0, 1.0]
    assert fileio.temp_files(target) == []


def test_a_full_disk_fails_the_run_with_one_line_and_keeps_the_checkpoint(
    in_tmp, capsys, monkeypatch
):
    from cnn_tui.training.loop import checkpoints

    real_save, real_fdopen, saves = checkpoints.save_checkpoint, os.fdopen, []
    full = threading.Event()

    def fdopen(fd, mode="r", *args, **kwargs):
        if full.is_set():
            return io.BufferedWriter(FullDisk(fd, "wb"))
        return real_fdopen(fd, mode, *args, **kwargs)

    def save_on_a_filling_disk(path, s, progress):
        saves.append(progress.epoch)
        if len(saves) == 2:  # the disk is full by the second checkpoint
            FullDisk.room = 4096
            full.set()
        try:
            real_save(path, s, progress)
        finally:
            full.clear()

    monkeypatch.setattr(fileio.os, "fdopen", fdopen)
    monkeypatch.setattr(checkpoints, "save_checkpoint", save_on_a_filling_disk)
    assert cli.main(["train", "--no-ui", *FAST, "--epochs", "3", "--run-dir", "r"]) == 1
    line = one_line(capsys.readouterr().err)
    path = Path("r") / runs.CHECKPOINT_FILE
    assert line == (
        f"cnn-tui: no space left on device while writing {path}: free space or choose another "
        "--run-dir"
    )
    status = runs.read_status(in_tmp / "r")
    assert status["status"] == "failed" and status["message"] == line.removeprefix("cnn-tui: ")
    assert checkpoint_epoch(in_tmp / "r") == 1 and temp_files(in_tmp / "r") == []
    assert events(in_tmp / "r")[-1]["event"] == "failed"
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)  # space freed: resume it
    assert cli.main(["train", "--no-ui", "--resume", "r"]) == 0
    assert runs.read_summary(in_tmp / "r")["epochs_done"] == 3


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk up to `leave` free bytes."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.slow
def test_a_run_on_a_disk_that_fills_up(small_disk, in_tmp, capsys):
    """A real full disk: the next checkpoint does not fit; the older one and the status do."""
    run = small_disk / "r"
    process = trainer("train", "--no-ui", *LONG, "--run-dir", str(run), cwd=in_tmp)
    wait_for(lambda: (run / runs.CHECKPOINT_FILE).is_file(), what="the first checkpoint")
    filler = fill(small_disk, leave=48 * 1024)  # a checkpoint is about 145 kB
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    line = one_line(err)
    assert line.startswith("cnn-tui: no space left on device while writing ")
    assert line.endswith(": free space or choose another --run-dir")
    assert str(run / runs.CHECKPOINT_FILE) in line
    status = runs.read_status(run)
    assert status["status"] == "failed" and "no space left on device" in status["message"]
    saved = checkpoint_epoch(run)
    assert saved >= 1 and temp_files(run) == []
    filler.unlink()  # space freed: nothing was lost, the run goes on
    capsys.readouterr()
    argv = ["train", "--no-ui", "--resume", str(run), "--epochs", str(saved + 1)]
    assert cli.main(argv) == 0
    assert runs.read_status(run)["status"] == "finished"


def test_a_full_disk_before_training_is_one_line_too(in_tmp, capsys, monkeypatch):
    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "r/config.toml")

    monkeypatch.setattr(runs, "write_config", no_room)
    assert cli.main(["train", "--no-ui", *FAST, "--run-dir", "r"]) == 1
    assert one_line(capsys.readouterr().err) == (
        "cnn-tui: no space left on device while writing r/config.toml: free space or choose "
        "another --run-dir"
    )


def test_an_event_log_line_cut_short_is_ended_before_the_next_one(tmp_path):
    (tmp_path / runs.EVENTS_FILE).write_text('{"event": "epoch", "epoch": 1}\n{"event": "ba')
    log = runs.EventLog(tmp_path)
    log.emit("stopped", epoch=1)
    log.close()
    found, _ = runs.read_events(tmp_path)
    assert [event["event"] for event in found] == ["epoch", "stopped"]
    assert runs.read_all_events(tmp_path)[1] == 1  # the cut line, skipped


# --- 5. damaged metrics.jsonl and status.json ---------------------------------------------------


def _list_first_line(data: bytes) -> bytes:
    """The first line (status.json: all of it) as a JSON list holding it, not an object."""
    first, newline, rest = data.partition(b"\n")
    return b"[" + first + b"]" + newline + rest


DAMAGE = {  # what a killed trainer, a full disk or a stray write leaves
    "half-line": lambda data: data + b'{"event": "epoch", "epoch": 3, "val_a',
    "binary": lambda data: data[: len(data) // 2] + b"\x00\xff\xfe\x89PNG" + data[len(data) // 2 :],
    "empty": lambda data: b"",
    "json-list": _list_first_line,
}


def damage(run: Path, name: str, kind: str) -> None:
    path = run / name
    path.write_bytes(DAMAGE[kind](path.read_bytes()))


@pytest.mark.parametrize("kind", DAMAGE)
def test_runs_list_shows_what_it_can_read(in_tmp, capsys, kind):
    damage(write_run(in_tmp / "runs" / "m", "stopped"), runs.EVENTS_FILE, kind)
    damage(write_run(in_tmp / "runs" / "s", "stopped"), runs.STATUS_FILE, kind)
    damage(write_run(in_tmp / "runs" / "both", "running"), runs.STATUS_FILE, kind)
    damage(in_tmp / "runs" / "both", runs.EVENTS_FILE, kind)
    capsys.readouterr()
    assert cli.main(["runs", "--no-ui"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert rows["m"][-1] == "stopped" and rows["m"][3] == "2/4"
    assert rows["s"][-1] == "unknown"  # the status is lost: the epochs come from metrics.jsonl
    assert rows["s"][3] == "2/4" and rows["s"][4] != "-"
    assert "s: status.json could not be read (damaged or cut short)" in lines
    assert cli.main(["runs", "--no-ui", "--json"]) == 0
    listed = {info["name"]: info for info in json.loads(capsys.readouterr().out)}
    assert listed["s"]["problems"] == ["status.json could not be read (damaged or cut short)"]
    assert listed["m"]["problems"] == []


def test_status_json_with_wrong_types_is_shown_as_unknown(in_tmp, capsys):
    run = write_run(in_tmp / "runs" / "odd", "stopped")
    (run / runs.STATUS_FILE).write_text(json.dumps(
        {"status": 5, "pid": "x", "epoch": "two", "epochs": [4], "started": "now", "message": None,
         "best_val_acc": "high"}))  # fmt: skip
    (run / runs.SUMMARY_FILE).write_text(json.dumps({"epochs_done": "y", "test_accuracy": [1]}))
    assert cli.main(["runs", "--no-ui"]) == 0
    out = capsys.readouterr().out
    assert "odd: status.json holds no known status (5)" in out
    assert out.splitlines()[1].split()[-1] == "unknown"
    assert runs.effective_status({"status": "running", "pid": "x"}) == "interrupted"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real run (with its checkpoint) to copy and damage."""
    import torch

    from cnn_tui.training.config import TrainConfig
    from cnn_tui.training.loop import engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(dataset="shapes", limit=60, epochs=1, hidden_units=4, device="cpu")
    engine.train(config, run)
    torch.set_num_threads(threads)
    return run


@pytest.mark.parametrize(("status_damage", "metrics_damage"),
                         [("binary", "half-line"), ("json-list", "empty")])  # fmt: skip
def test_eval_ignores_damaged_metrics_and_status(in_tmp, capsys, trained_run, status_damage,
                                                 metrics_damage):  # fmt: skip
    run = in_tmp / "r"
    shutil.copytree(trained_run, run)
    damage(run, runs.STATUS_FILE, status_damage)
    damage(run, runs.EVENTS_FILE, metrics_damage)
    assert cli.main(["eval", "r", "--no-ui", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "checkpoint after epoch 1" in captured.out and captured.err == ""


@pytest.mark.parametrize("kind", DAMAGE)
@run_async
async def test_runs_screen_and_results_show_damaged_runs(tmp_path, monkeypatch, kind):
    from textual.widgets import DataTable, RichLog, Static

    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.epochs import EpochTable
    from cnn_tui.ui.training.results import ResultsScreen
    from cnn_tui.ui.training.runs import RunsScreen

    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    base = tmp_path / "runs"
    damage(write_run(base / "m", "finished"), runs.EVENTS_FILE, kind)
    damage(write_run(base / "s", "stopped"), runs.STATUS_FILE, kind)
    app = CnnTuiApp(runs_dir=str(base))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = RunsScreen(base)
        await app.push_screen(screen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        details = []
        for _ in range(2):
            details.append(str(screen.query_one("#runs-detail", Static).render()))
            await pilot.press("down")
            await pilot.pause()
        assert any("status.json could not be read (damaged or cut short)" in d for d in details)

        for name, note in (("m", "metrics.jsonl: skipped"), ("s", "status.json could not")):
            results = ResultsScreen(base / name)
            await app.push_screen(results)
            await pilot.pause()
            await pilot.press("5")  # the Log tab (a hidden RichLog defers its lines)
            log = results.query_one(RichLog)
            if kind == "empty" and name == "m":  # nothing to read, nothing damaged
                await pilot.pause(0.2)
            else:
                await wait_until(pilot, lambda n=note, lg=log: n in text_of(lg), what=note)
                rows = len(results.query_one("#epoch-table", EpochTable).rows)
                assert rows == (2 if name == "s" else 4) or (
                    kind == "binary" and rows == 3
                )  # (binary: one epoch line lost)
            await pilot.press("escape")
            await pilot.pause()


def text_of(log) -> str:
    return "\n".join(strip.text for strip in log.lines)


@run_async
async def test_live_dashboard_of_a_damaged_run_keeps_following(tmp_path, monkeypatch):
    from textual.widgets import RichLog

    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.dashboard import DashboardScreen
    from cnn_tui.ui.training.epochs import EpochTable

    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    run = write_run(tmp_path / "live", "running")
    damage(run, runs.STATUS_FILE, "half-line")
    damage(run, runs.EVENTS_FILE, "half-line")
    app = CnnTuiApp(runs_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = DashboardScreen(run)
        await app.push_screen(screen)
        table = screen.query_one("#epoch-table", EpochTable)
        await wait_until(pilot, lambda: len(table.rows) == 2, what="the two epochs")
        (run / runs.STATUS_FILE).write_text(json.dumps({"status": "stopped", "pid": 1}))
        await wait_until(pilot, lambda: screen.state == "stopped", what="the stop")
        await pilot.press("5")  # the Log tab (a hidden RichLog defers its lines)
        log = screen.query_one(RichLog)
        await wait_until(pilot, lambda: "metrics.jsonl: skipped 1 line" in text_of(log))


# --- 6. a tiny terminal ---------------------------------------------------------------------

KEYS = ["tab", "tab", "down", "right", "up", "left", "enter", "question_mark", "escape", "tab",
        "shift+tab", "enter", "escape"]  # fmt: skip


def tiny_screens(base: Path) -> dict:
    from cnn_tui.ui.lessons.screen import LessonScreen
    from cnn_tui.ui.training.dashboard import DashboardScreen
    from cnn_tui.ui.training.form import TrainFormScreen
    from cnn_tui.ui.training.results import ResultsScreen
    from cnn_tui.ui.training.runs import RunsScreen

    return {
        "home": lambda: None,
        "conv": lambda: LessonScreen("conv", None),
        "pool": lambda: LessonScreen("pool", None),
        "form": TrainFormScreen,
        "dashboard": lambda: DashboardScreen(base / "live"),
        "results": lambda: ResultsScreen(base / "done"),
        "runs": lambda: RunsScreen(base),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["home", "conv", "pool", "form", "dashboard", "results", "runs"])
@run_async
async def test_tiny_terminal_does_not_crash(tmp_path, monkeypatch, name):
    """40×10, then 20×5 (shrunk while up): the screen lays out and takes keys without crashing."""
    from cnn_tui.training.runs import launcher
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.lessons.screen import LessonScreen

    def no_launching(*args):
        raise OSError("no trainer in this test")

    monkeypatch.setattr(launcher, "launch_run", no_launching)
    monkeypatch.setattr(launcher, "resume_run", no_launching)
    monkeypatch.setattr(LessonScreen, "run_checks_default", False)
    monkeypatch.setenv("CNN_TUI_PRESETS", str(tmp_path / "presets"))
    base = tmp_path / "runs"
    write_run(base / "done", "finished")
    write_run(base / "live", "running")
    app = CnnTuiApp(runs_dir=str(base))
    async with app.run_test(size=(40, 10)) as pilot:
        for size in ((40, 10), (20, 5)):
            await pilot.resize_terminal(*size)
            screen = tiny_screens(base)[name]()
            if screen is not None:
                await app.push_screen(screen)
            await pilot.pause()
            await press_quickly(pilot, *KEYS)  # (each once the screen has settled)
        await pilot.resize_terminal(5, 20)
        await pilot.pause()
    assert app.return_code in (None, 0)
