"""A run's console output: kept in RUN/output.log by a trainer started from a shell (a real tiny
run), and `cnn-tui runs --console RUN [--follow] [--tail N]` printing it safely."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from cli_process import ENV
from train_ui_fixtures import write_run

from cnn_tui import cli
from cnn_tui.training.runs import store as runs

# a model that prints and warns while it trains: the engine's loop, wrapped
TRAIN_WITH_NOISE = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np, torch
    from cnn_tui import cli
    from cnn_tui.training.loop import engine

    loop = engine._run

    def noisy(run, *rest):
        print("hello from the model")
        warnings.warn("the model finds this odd", UserWarning)
        frozen = np.zeros(3)
        frozen.setflags(write=False)
        torch.from_numpy(frozen)  # PyTorch's C++ TORCH_WARN_ONCE: a Python warning
        return loop(run, *rest)

    engine._run = noisy
    sys.argv = ["cnn-tui", *sys.argv[1:]]
    cli.run()
    """
)
FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu", "--epochs", "1"]  # fmt: skip


def test_a_run_started_from_a_shell_keeps_its_prints_and_warnings_then_runs_output(
    tmp_path, capsys, monkeypatch
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_WITH_NOISE, "train", "--no-ui", *FAST, "--run-dir", "r"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    kept = (tmp_path / "r" / runs.OUTPUT_LOG).read_text()
    for line in (
        "run dir: r",  # the reporter's lines
        "hello from the model",  # a print inside training
        "UserWarning: the model finds this odd",  # a Python warning
        "UserWarning: The given NumPy array is not writable",  # a C++ TORCH_WARN
        "test accuracy",
        "files: r/",
    ):
        assert line in kept, line
    assert "hello from the model" in result.stdout  # still printed where it was
    assert "the model finds this odd" in result.stderr
    assert kept.count("hello from the model") == 1

    # hostile bytes in the file are shown escaped, never sent
    with (tmp_path / "r" / runs.OUTPUT_LOG).open("ab") as log:
        log.write(b"\x1b]0;owned\x07title \x1b[2Jwiped \x1b\n")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["runs", "--console", "r"]) == 0
    printed = capsys.readouterr().out
    assert "hello from the model" in printed and "title wiped \\x1b" in printed
    assert "\x1b" not in printed and "\x07" not in printed
    assert cli.main(["runs", "--console", "r", "--tail", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("files: r/")
    assert cli.main(["--runs-dir", ".", "runs", "--console", "r", "--follow", "--tail", "1"]) == 0
    assert capsys.readouterr().out == "title wiped \\x1b\n"  # (over: following ends at once)


def test_runs_console_refuses_what_is_no_run_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    cases = {
        ("runs", "--console", "missing"): "missing: no such run folder (cnn-tui runs lists",
        ("runs", "--console", "folder"): "folder is not a run folder",
        ("runs", "--tail", "3"): "--tail: only with --console RUN",
        ("runs", "--follow"): "--follow: only with --console RUN",
        ("runs", "--console", "folder", "--json"): "--console prints text",
    }
    for argv, message in cases.items():
        assert cli.main(list(argv)) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err


def test_runs_console_of_an_older_run_without_output_log_says_so(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "old")
    assert cli.main(["--runs-dir", str(tmp_path), "runs", "--console", "old"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"cnn-tui: no {run / runs.OUTPUT_LOG}: no console output was kept\n"


def test_runs_console_follow_prints_lines_as_they_come_until_the_run_is_over(tmp_path) -> None:
    run = write_run(tmp_path / "live", "running", pid=None)
    log = run / runs.OUTPUT_LOG
    log.write_text("first\n")
    follower = subprocess.Popen(
        [sys.executable, "-m", "cnn_tui", "runs", "--console", str(run), "--follow"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout.readline() == "first\n"
        with log.open("a") as handle:
            handle.write("second, while it runs\n")
        assert follower.stdout.readline() == "second, while it runs\n"
        cut = run / "cut.tmp"  # (replaced whole: the follower sees it before or after)
        cut.write_text("[cnn-tui] the cap cut it\n")  # shorter than what was read: cut
        cut.replace(log)
        assert "was cut to its head and tail" in follower.stderr.readline()
        with log.open("a") as handle:
            handle.write("after the cut\nno line feed yet")
        assert follower.stdout.readline() == "after the cut\n"

        def end_the_run() -> None:
            time.sleep(0.2)
            with log.open("a") as handle:
                handle.write(" ... now\n")
            runs.write_status(run, "finished", epoch=4, epochs=4)

        threading.Thread(target=end_the_run).start()
        assert follower.stdout.read() == "no line feed yet ... now\n"
        assert follower.wait(timeout=30) == 0
    finally:
        follower.kill()
