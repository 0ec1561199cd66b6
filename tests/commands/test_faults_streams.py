"""Output streams that never crash (issue 23, cases 8 and 9): any encoding, a reader that went away,
a closed stdout or stderr. The mechanism is `cnn_tui.commands.streams`, set up by `cli.run`.

The commands run as subprocesses (`python -m cnn_tui`), since the process's own stdout and
stderr are the point: `PYTHONIOENCODING=ascii` / `latin-1` / `LC_ALL=C PYTHONUTF8=0`, a pipe whose
reader has gone (its read end closed before the command writes, or after the first line), `>&-`.
One rule for the exit status: a closed pipe never makes a command fail; a command that only
prints stops at it with 0, train and sweep go on to the end of their runs.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import ENV
from datafiles import write_image_folder
from inspect_fixtures import write_model_run

from cnn_tui.commands import output, streams, sweep_report, train_report
from cnn_tui.training.runs import store as runs

FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip

ENCODINGS = {
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
    "C-locale": {"LC_ALL": "C", "PYTHONUTF8": "0"},
}

# each command of case 8, and a line of its output as an ASCII stream shows it
SPELLED = {
    "net": (["net", "--no-ui"], "<= 0 -> 0"),
    "conv": (["conv", "--no-ui", "--backward"], "floor((5 + 2*0 - 3)/1) + 1 = 3"),
    "conv-help": (["conv", "--help"], "D*(K-1)/2"),
    "eval": (["eval", "runs/r", "--no-ui", "--device", "cpu"], "r - checkpoint after epoch 1"),
    "inspect": (["inspect", "runs/r", "--no-ui", "--device", "cpu"], " * predicted "),
    "predict": (["predict", "runs/r", "images", "--no-ui", "--device", "cpu"], "* predicted:"),
    "lr-find": (["lr-find", "--no-ui", *FAST, "--steps", "20"], "(steepest descent; minimum / 10"),
}

# case 9: the commands whose output goes into a pipe
PIPED = {
    "runs": ["runs", "--no-ui"],
    "runs-json": ["runs", "--no-ui", "--json"],
    "predict": ["predict", "runs/r", "images", "--no-ui", "--device", "cpu"],
    "predict-json": ["predict", "runs/r", "images", "--no-ui", "--device", "cpu", "--json"],
    "eval": ["eval", "runs/r", "--no-ui", "--device", "cpu"],
    "eval-json": ["eval", "runs/r", "--no-ui", "--device", "cpu", "--json"],
    "inspect": ["inspect", "runs/r", "--no-ui", "--device", "cpu"],
    "inspect-json": ["inspect", "runs/r", "--no-ui", "--device", "cpu", "--json"],
    "conv": ["conv", "--no-ui", "--backward"],
    "help": ["--help"],
}

BIG_TRACE = ["conv", "--no-ui", "--backward", "--channels", "2", "--filters", "2", "--batch", "2"]

# `python -c`: a trainer that, once it has printed epoch 1, waits until the reader of its stdout
# has gone (poll reports POLLERR on a pipe without readers), so that every later line meets the
# closed pipe
CLOSED_AFTER_EPOCH_1 = r"""
import select
from cnn_tui import cli
from cnn_tui.commands import train_report

made = train_report.make_reporter

def make_reporter(*args, **kwargs):
    reporter = made(*args, **kwargs)
    event = reporter.event

    def then_wait(record):
        event(record)
        if record["event"] == "epoch" and record["epoch"] == 1:
            poll = select.poll()
            poll.register(1, 0)
            while not poll.poll(60_000):
                pass

    reporter.event = then_wait
    return reporter

train_report.make_reporter = make_reporter
cli.run()
"""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in ENV.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL")}
    return {**env, **extra}


def cnn_tui(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, **popen
) -> subprocess.CompletedProcess[bytes]:
    popen.setdefault("capture_output", True)
    return subprocess.run(
        [sys.executable, "-m", "cnn_tui", *argv],
        cwd=cwd,
        env=env or child_env(),
        timeout=300,
        **popen,
    )


def in_shell(command: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """`python -m cnn_tui ARGV` followed by shell redirections (`>&-`, `2>&-`)."""
    line = shlex.join([sys.executable, "-m", "cnn_tui", *argv])
    return subprocess.run(
        f"{line} {command}", shell=True, cwd=cwd, env=child_env(), capture_output=True, timeout=300
    )


def a_pipe_without_reader() -> int:
    """The write end of a pipe whose reader has gone (`| head -c 0` after head exited)."""
    read, write = os.pipe()
    os.close(read)
    return write


def no_traceback(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with a run (runs/r) and images in class folders (images/circle, images/square)."""
    root = tmp_path_factory.mktemp("streams")
    write_model_run(root / "runs" / "r")
    write_image_folder(root / "images", classes=("circle", "square"), per_class=2, corrupt=False,
                       non_image=False)  # fmt: skip
    return root


# --- case 8: any encoding ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("command", SPELLED)
def test_every_command_prints_ascii_where_stdout_is_not_utf8(world, command, encoding):
    argv, spelled = SPELLED[command]
    result = cnn_tui(*argv, cwd=world, env=child_env(**ENCODINGS[encoding]))
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii() and result.stderr.isascii()
    assert spelled in result.stdout.decode("ascii")


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_run_is_never_failed_by_the_encoding_of_its_output(world, encoding):
    run = f"train-{encoding}"
    result = cnn_tui("train", "--no-ui", *FAST, "--epochs", "2", "--run-dir", run, cwd=world,
                     env=child_env(**ENCODINGS[encoding]))  # fmt: skip
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert runs.read_status(world / run)["status"] == "finished"
    assert result.stdout.isascii()
    assert "data: shapes - 120 train / " in result.stdout.decode("ascii")


def test_on_utf8_the_trace_keeps_its_symbols(world):
    result = cnn_tui("conv", "--no-ui", cwd=world, env=child_env(PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0
    assert "⌊(5 + 2·0 − 3)/1⌋ + 1 = 3" in result.stdout.decode("utf-8")


def test_spellings_are_ascii_and_used_only_where_the_encoding_lacks_a_symbol():
    assert all(spelling.isascii() for spelling in streams.SPELLINGS.values())
    assert streams.spelling_for("utf-8") is None
    for encoding in ("ascii", "latin-1", "cp1252", None):  # latin-1 has · and ×, not ∂: all ASCII
        table = streams.spelling_for(encoding)
        assert "∂L/∂x = Σ 2·3 × 4 → ✓ ▁▂█ ━╸".translate(table) == (
            "dL/dx = sum  2*3 x 4 -> + _.# --"
        )


# --- case 9: a reader that went away ---------------------------------------------------------


@pytest.mark.parametrize("command", PIPED)
def test_a_pipe_closed_before_the_first_line_ends_quietly(world, command):
    stdout = a_pipe_without_reader()
    try:
        result = cnn_tui(*PIPED[command], cwd=world, stdout=stdout, stderr=subprocess.PIPE,
                         capture_output=False)  # fmt: skip
    finally:
        os.close(stdout)
    assert result.returncode == 0 and result.stderr == b"", result.stderr


def test_a_pipe_closed_mid_trace_ends_quietly(world):
    """`| head -1`: the trace (300 kB) fills the pipe, so it is still writing when the reader
    goes."""
    process = subprocess.Popen([sys.executable, "-m", "cnn_tui", *BIG_TRACE], cwd=world,
                               env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout.readline().startswith(b"conv2d:")
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == 0 and err == b"", err


def test_stderr_into_a_closed_pipe_keeps_the_exit_code(world):
    """The one-line error of a bad command meets a closed pipe: still exit 2, no traceback."""
    stdout, stderr = a_pipe_without_reader(), a_pipe_without_reader()
    try:
        result = cnn_tui("eval", "no-such-run", "--no-ui", cwd=world, stdout=stdout,
                         stderr=stderr, capture_output=False)  # fmt: skip
    finally:
        os.close(stdout)
        os.close(stderr)
    assert result.returncode == 2


@pytest.mark.slow
@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
def test_a_trainer_whose_reader_went_away_finishes_its_run(world, json_lines):
    run = world / f"reader-gone-{'json' if json_lines else 'plain'}"
    argv = ["train", "--no-ui", *FAST, "--epochs", "2", "--run-dir", str(run)]
    process = subprocess.Popen([sys.executable, "-c", CLOSED_AFTER_EPOCH_1, *argv, *(["--json"] if json_lines else [])],
                               cwd=world, env=child_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    epoch_1 = [b'"event": "epoch"', b'"epoch": 1,'] if json_lines else [b"      1/2  "]
    for line in process.stdout:
        if all(part in line for part in epoch_1):
            break
    else:
        pytest.fail(f"no epoch line: {process.stderr.read()!r}")
    process.stdout.close()  # the reader goes: epoch 2 and the result meet a closed pipe
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=300) == 0, err
    assert err == b"", err
    assert runs.read_status(run)["status"] == "finished"
    assert (run / runs.SUMMARY_FILE).is_file() and (run / runs.CHECKPOINT_FILE).is_file()
    assert [e["epoch"] for e in runs.read_events(run)[0] if e["event"] == "epoch"] == [1, 2]


class _Gone(io.StringIO):
    """A stream whose reader has gone: every write fails as on a closed pipe."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_reporters_go_silent_when_their_output_goes():
    """train's and sweep's reporters and the JSON lines writer catch the failed write; the run
    they report on never sees it."""
    epoch = {"event": "stopped", "message": "stopped after epoch 1"}
    for reporter in (train_report.PlainReporter(_Gone()), train_report.JsonReporter(_Gone())):
        reporter.begin(Path("r"))
        reporter.event(epoch)
        reporter.close()
    sweep = sweep_report.Reporter(_Gone(), total=2)
    sweep.show("[1/2] r1 started")
    sweep.show_started(Path("s"), {"grid": {"lr": [0.1]}}, ["cpu"], [])
    gone = _Gone()
    lines = output.JsonLines(gone, None)
    lines.write({"event": "epoch"})
    lines.write({"event": "epoch"})
    assert lines.out is None and gone.writes == 1


def test_the_guard_raises_once_on_stdout_and_never_on_stderr():
    for raise_once in (True, False):
        write = a_pipe_without_reader()
        stream = streams.Guarded(open(write, "w", encoding="utf-8"), raise_once=raise_once)
        try:
            if raise_once:  # stdout: the command that only prints stops here
                with pytest.raises(BrokenPipeError):
                    stream.write("a line\n")
                    stream.flush()
            else:
                stream.write("a line\n")
                stream.flush()
            stream.write("more\n")  # then silent: the descriptor now is /dev/null
            stream.flush()
            assert stream.gone
            assert os.path.samestat(os.fstat(write), os.stat(os.devnull))
        finally:
            stream.stream.close()


def test_a_real_write_error_is_not_taken_for_a_reader_gone():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    stream = streams.Guarded(open("/dev/full", "w", encoding="utf-8"), raise_once=False)
    try:
        for _ in range(2):
            with pytest.raises(OSError, match="No space left"):
                stream.write("a line\n")
                stream.flush()
    finally:
        stream.gone = True
        try:
            stream.stream.close()
        except OSError:
            pass


# --- case 9: a closed stdout or stderr --------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--no-ui"],
        ["conv", "--no-ui"],
        ["predict", "runs/r", "images", "--no-ui", "--device", "cpu"],
        ["inspect", "runs/r", "--no-ui", "--device", "cpu"],
        ["eval", "runs/r", "--no-ui", "--device", "cpu", "--json-file", "eval-copy.json"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_closed_stdout_runs_the_command(world, argv):
    result = in_shell(">&-", *argv, cwd=world)
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    if argv[0] == "eval":
        assert (world / "eval-copy.json").is_file()


def test_file_descriptor_1_closed_after_python_started(world):
    code = "import os\nos.close(1)\nfrom cnn_tui import cli\ncli.run()\n"
    result = subprocess.run([sys.executable, "-c", code, "runs", "--no-ui"], cwd=world,
                            env=child_env(), capture_output=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and result.stderr == b"", result.stderr


def test_a_closed_stderr_keeps_the_exit_code_and_stdout_clean(world):
    failed = in_shell("2>&-", "eval", "no-such-run", "--no-ui", cwd=world)
    assert failed.returncode == 2 and failed.stdout == b""  # the error line never lands on stdout
    listed = in_shell("2>&-", "runs", "--no-ui", cwd=world)
    assert listed.returncode == 0 and b"finished" in listed.stdout
    both = in_shell(">&- 2>&-", "runs", "--no-ui", cwd=world)
    assert both.returncode == 0
