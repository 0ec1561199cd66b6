"""Process identity (issue 23, case 1): a status's pid is signalled only when it is the process
that wrote it.

A status.json may name a pid that is now another process (a reboot, pid reuse, a forged file) or
a trainer on another machine (a shared folder). The stranger here is a `Witness`: a process that
blocks SIGTERM and, asked, says whether one is pending, so "nothing was sent" is a fact read from
the process, not a wait that a slow machine could lose. A real trainer, stopped through its
status, shows that the check lets the right signal through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import ENV
from conftest import wait_for, wait_until
from train_ui_fixtures import run_async, write_run

from cnn_tui import cli
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop.trainer import resume_config
from cnn_tui.training.runs import launcher, sweeps
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import processes
from cnn_tui.training.system.processes import ProcessId, this_host

WITNESS = r"""
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("ready", flush=True)
sys.stdin.readline()
print("SIGTERM" if signal.SIGTERM in signal.sigpending() else "none", flush=True)
"""
OTHER_HOST = "build-node-7"


class Witness:
    """A live process that is not a trainer: SIGTERM blocked, so it outlives one and can tell.
    Its script is `name` (`cnn-tui`: it looks like the cnn-tui script by its command line)."""

    def __init__(self, folder: Path, name: str = "witness.py") -> None:
        script = folder / name
        script.write_text(WITNESS)
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.pid = self.process.pid
        self.started = processes.identify(self.pid).started

    def got_sigterm(self) -> bool:
        """Whether a SIGTERM was sent to it (pending, blocked); it exits after answering."""
        assert self.process.poll() is None, "the witness died"
        answer, _ = self.process.communicate("\n", timeout=30)
        return answer.strip() == "SIGTERM"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


@pytest.fixture
def witness(tmp_path):
    made: list[Witness] = []

    def make(name: str = "witness.py") -> Witness:
        made.append(Witness(tmp_path, name))
        return made[-1]

    yield make
    for one in made:
        one.close()


def running_status(folder: Path, **process: object) -> Path:
    """status.json saying "running", naming the process `process` describes (pid, host,
    pid_started: what a trainer writes; a pid alone: an older cnn-tui)."""
    folder.mkdir(parents=True, exist_ok=True)
    status = {"status": "running", "message": "training", "epoch": 1, "epochs": 5, **process}
    (folder / runs.STATUS_FILE).write_text(json.dumps(status))
    return folder


def fake_run(folder: Path, **process: object) -> Path:
    write_run(folder, "running", epochs=5, epochs_done=1)  # config, events; its status replaced
    return running_status(folder, **process)


def a_sweep(folder: Path, **process: object) -> Path:
    plan = sweeps.make_plan(TrainConfig(), {"seed": [1, 2]}, "cpu")
    sweep_dir = sweeps.create_sweep(plan, folder, str(folder / "sw"))
    return running_status(sweep_dir, **process)


# --- a pid that is now another process ----------------------------------------------------------


def test_a_reused_pid_is_neither_alive_nor_signalled_by_stop(tmp_path, witness) -> None:
    stranger = witness()
    run = fake_run(tmp_path / "run", pid=stranger.pid, host=this_host(),
                   pid_started=stranger.started - 3600)  # fmt: skip
    assert runs.read_state(run)[0] == "interrupted"  # its trainer is gone; resumable
    answer = launcher.stop_run(run)
    assert not answer
    assert answer.reason == (
        f"is not running: its trainer is gone, and pid {stranger.pid} is another process now "
        "(left alone)"
    )
    assert not stranger.got_sigterm()


def test_sweep_stop_leaves_a_process_that_reused_the_runners_pid_alone(
    tmp_path, witness, capsys
) -> None:
    stranger = witness()
    sweep_dir = a_sweep(
        tmp_path, pid=stranger.pid, host=this_host(), pid_started=stranger.started + 5
    )
    assert cli.main(["sweep", "--stop", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert f"pid {stranger.pid} is another process now (left alone)" in out
    assert sweeps.sweep_state(sweep_dir)[0] == "interrupted"
    assert not stranger.got_sigterm()


def test_the_quit_dialogs_stop_and_the_dashboards_pid_go_through_the_check(
    tmp_path, witness
) -> None:
    """`pid` given to stop_run (the dashboard's, the quit dialog's) is signalled only when it is
    a child this process started: a stranger's pid is refused."""
    stranger = witness()
    assert not launcher.stop_run(tmp_path, stranger.pid)
    assert not stranger.got_sigterm()


# --- a run on another machine ---------------------------------------------------------------


def test_a_run_on_another_host_is_shown_running_there_and_never_signalled(
    tmp_path, witness, capsys
) -> None:
    stranger = witness()  # what has that pid here: nothing to do with the run
    run = fake_run(tmp_path / "runs" / "far", pid=stranger.pid, host=OTHER_HOST,
                   pid_started=stranger.started)  # fmt: skip
    state, _ = runs.read_state(run)
    assert state == "elsewhere" and not processes.alive(
        ProcessId.from_record(runs.read_status(run))
    )
    info = runs.run_info(run)
    assert info.status_label == f"running on {OTHER_HOST}" and info.to_dict()["host"] == OTHER_HOST

    assert cli.main(["--runs-dir", str(tmp_path / "runs"), "runs", "--no-ui"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("far"))
    assert row.endswith(f"running on {OTHER_HOST}")

    answer = launcher.stop_run(run)
    assert not answer and answer.host == OTHER_HOST
    assert answer.reason == f"runs on {OTHER_HOST}, not on this machine: stop it there"
    # nothing may take the run over from here either
    with pytest.raises(UsageError, match=f"still running \\(pid {stranger.pid} on {OTHER_HOST}"):
        runs.delete_run(run)
    with pytest.raises(UsageError, match="in use by a running trainer"):
        runs.check_new_run_dir(run)
    with pytest.raises(UsageError, match="still running"):
        resume_config(run, {})
    assert not stranger.got_sigterm()


def test_sweep_stop_of_a_sweep_running_on_another_host_says_so(tmp_path, witness, capsys) -> None:
    stranger = witness()
    sweep_dir = a_sweep(tmp_path, pid=stranger.pid, host=OTHER_HOST, pid_started=stranger.started)
    assert cli.main(["sweep", "--stop", str(sweep_dir)]) == 1
    out = capsys.readouterr().out.strip()
    assert out == f"sweep {sweep_dir} runs on {OTHER_HOST}, not on this machine: stop it there"
    with pytest.raises(UsageError, match="running on another machine"):
        sweeps.check_resumable(sweep_dir)
    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui"]) == 0
    assert f"(running on {OTHER_HOST})" in capsys.readouterr().out
    assert not stranger.got_sigterm()


def test_a_forged_host_name_reaches_the_terminal_escaped(tmp_path, capsys) -> None:
    fake_run(tmp_path / "runs" / "far", pid=4242, host="evil\x1b]0;owned\x07", pid_started=1.0)
    assert cli.main(["--runs-dir", str(tmp_path / "runs"), "runs", "--no-ui"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "running on evil\\x1b]0;owned\\x07" in out


@run_async
async def test_the_dashboards_stop_says_in_one_line_that_the_run_is_elsewhere(
    tmp_path, witness
) -> None:
    from cnn_tui.ui.app import CnnTuiApp
    from cnn_tui.ui.training.dashboard import DashboardScreen
    from cnn_tui.ui.training.runs import RunsScreen

    stranger = witness()
    fake_run(tmp_path / "far", pid=stranger.pid, host=OTHER_HOST, pid_started=stranger.started)
    app = CnnTuiApp(runs_dir=tmp_path)
    shown: list[str] = []
    notify = app.notify
    app.notify = lambda message, **options: (shown.append(message), notify(message, **options))
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(RunsScreen(tmp_path))
        screen = app.screen
        await wait_until(pilot, lambda: len(screen.runs) == 1)
        assert screen.runs[0].status_label == f"running on {OTHER_HOST}"
        await pilot.press("enter")  # a run in progress, here or there: its dashboard
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        dashboard = app.screen
        await wait_until(pilot, lambda: dashboard.state == "elsewhere")
        status = str(dashboard.query_one("#dash-status").render())
        assert f"running on {OTHER_HOST}" in status
        await pilot.press("s")
        await wait_until(pilot, lambda: shown)
        assert shown == [f"far runs on {OTHER_HOST}, not on this machine: stop it there"]
        assert app.screen is dashboard  # no confirmation asked: there is nothing to confirm
        await pilot.press("escape")
        await app.workers.wait_for_complete()
    assert not stranger.got_sigterm()


# --- a status of an older cnn-tui: a pid, no host, no start time ----------------------------


def test_an_old_status_naming_another_program_reads_interrupted_and_is_not_signalled(
    tmp_path, witness, capsys
) -> None:
    stranger = witness()
    run = fake_run(tmp_path / "runs" / "old", pid=stranger.pid)
    assert runs.read_state(run)[0] == "interrupted"
    assert cli.main(["--runs-dir", str(tmp_path / "runs"), "runs", "--no-ui"]) == 0
    assert "interrupted" in capsys.readouterr().out
    assert not launcher.stop_run(run)
    sweep_dir = a_sweep(tmp_path, pid=stranger.pid)
    assert cli.main(["sweep", "--stop", str(sweep_dir)]) == 0
    assert not stranger.got_sigterm()


def test_an_old_status_naming_a_cnn_tui_process_is_running_and_stoppable(tmp_path, witness) -> None:
    trainer = witness("cnn-tui")  # by its command line, the cnn-tui script: an old trainer
    run = fake_run(tmp_path / "old", pid=trainer.pid)
    assert runs.read_state(run)[0] == "running"
    assert launcher.stop_run(run)
    assert trainer.got_sigterm()


# --- the right process still gets its signal --------------------------------------------------


@pytest.mark.slow
def test_a_real_trainer_is_stopped_through_its_status(tmp_path) -> None:
    argv = ["train", "--no-ui", "--dataset", "shapes", "--limit", "600", "--batch-size", "32",
            "--hidden-units", "4", "--device", "cpu", "--epochs", "2000", "--run-dir", "r"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn_tui", *argv],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = tmp_path / "r"
        wait_for(lambda: runs.read_state(run)[0] == "running", 120, "the trainer to start")
        recorded = ProcessId.from_record(runs.read_status(run))
        assert recorded.same_as(processes.identify(process.pid))
        assert recorded.host == this_host() and recorded.started is not None
        assert launcher.stop_run(run)  # no pid given: the status alone names it
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert runs.read_status(run)["status"] == "stopped"


# --- the identity itself ------------------------------------------------------------------------


def test_this_process_is_alive_and_others_by_its_pid_are_not() -> None:
    me = processes.this_process()
    assert processes.alive(me) and me.here and me.host == this_host()
    assert processes.alive(ProcessId(os.getpid(), this_host(), me.started + 0.5))  # rounding
    assert not processes.alive(ProcessId(os.getpid(), this_host(), me.started - 60))
    assert not processes.alive(ProcessId(os.getpid(), OTHER_HOST, me.started))
    assert not processes.alive(None)
    assert not processes.send_signal(ProcessId(os.getpid(), OTHER_HOST, me.started), 0)
    assert not processes.send_signal(ProcessId(os.getpid(), this_host(), me.started - 60), 0)
    assert processes.send_signal(me, 0)  # (signal 0: the check alone)


def test_a_zombie_is_not_alive() -> None:
    import psutil

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: psutil.Process(child.pid).status() == "zombie", 30)
        identity = processes.identify(child.pid)  # its start time is still there to read
        assert identity is not None and not processes.alive(identity)
        assert not processes.send_signal(identity, 0)
    finally:
        child.wait()


@pytest.mark.parametrize(
    "record",
    [
        {"pid": "123"},
        {"pid": True},
        {"pid": 0},
        {"pid": -5},
        {"pid": 2**40},
        {"pid": 1.5},
        {},
        None,
    ],
)
def test_a_record_without_a_usable_pid_names_no_process(record) -> None:
    assert ProcessId.from_record(record) is None
    assert runs.effective_status({"status": "running", **(record or {})}) == "interrupted"


def test_damaged_host_and_start_fields_count_as_absent() -> None:
    record = {"pid": 7, "host": ["x"], "pid_started": "yesterday"}
    assert ProcessId.from_record(record) == ProcessId(7, None, None)
    assert ProcessId.from_record({"pid": 7, "host": "", "pid_started": float("nan")}) == ProcessId(
        7
    )
    assert ProcessId.from_record({"pid": 7, "pid_started": True}).started is None


@pytest.mark.parametrize(
    ("cmdline", "ours"),
    [
        (["/usr/bin/python3", "-m", "cnn_tui", "train", "--no-ui"], True),
        (["python", "-m", "cnn_tui.commands.sweep_runner", "sw"], True),
        (["/home/u/.venv/bin/cnn-tui", "train"], True),
        (["/usr/bin/python3", "/home/u/.venv/bin/cnn-tui", "runs"], True),
        (["sleep", "60"], False),
        (["python", "-m", "pytest", "cnn_tui"], False),
        (["vim", "cnn_tui/cli.py"], False),
        (["python", "-m", "cnn_tuition"], False),
        ([], False),
    ],
)
def test_which_command_lines_are_cnn_tui(cmdline, ours) -> None:
    assert processes.is_cnn_tui(cmdline) is ours
