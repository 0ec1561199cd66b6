"""`cnn-tui` as a user first meets it: --help for every subcommand, one-line usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest


def cnn_tui(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnn_tui", *argv], capture_output=True, text=True, timeout=60
    )


def test_top_level_help_lists_every_subcommand() -> None:
    proc = cnn_tui("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "convolutional networks in the terminal" in proc.stdout
    for command in ("conv", "pool", "net", "train", "eval", "runs", "bench"):
        assert command in proc.stdout


# subcommand -> words its --help must use to say what it is for
PURPOSES = {
    "conv": ("convolution", "--no-ui", "--kernel", "--backward"),
    "pool": ("pooling", "--no-ui", "--type", "--backward"),
    "net": ("network", "--no-ui", "--label", "--lr", "--example", "--summary"),
    "train": ("train", "--no-ui"),
    "eval": ("metrics", "RUN_DIR", "--no-ui"),
    "runs": ("runs", "--no-ui"),
    "bench": ("benchmark", "--no-ui"),
}


@pytest.mark.parametrize("command", PURPOSES)
def test_each_subcommand_help_says_what_it_is_for(command: str) -> None:
    proc = cnn_tui(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: cnn-tui {command}")
    for word in PURPOSES[command]:
        assert word.lower() in proc.stdout.lower(), f"{command} --help does not mention {word!r}"


def test_version_and_headless_overview() -> None:
    assert cnn_tui("--version").stdout.startswith("cnn-tui ")
    proc = cnn_tui("--no-ui")
    assert proc.returncode == 0 and "usage: cnn-tui" in proc.stdout


@pytest.mark.parametrize(
    "argv",
    [("--bogus",), ("conv", "--bogus"), ("pool", "--no-ui", "--bogus"), ("train", "--bogus")],
)
def test_an_unknown_flag_exits_2_with_one_line(argv: tuple[str, ...]) -> None:
    proc = cnn_tui(*argv)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "--bogus" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unknown_subcommand_exits_2_with_one_line() -> None:
    proc = cnn_tui("convolve")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "convolve" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "fix"),
    [((), "see --help"), (("runs",), "add --no-ui"), (("conv",), "add --no-ui")],
)
def test_the_tui_without_a_terminal_is_a_usage_error_not_a_hang(argv, fix: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_tui", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "needs a terminal (stdin and stdout not one)" in proc.stderr and fix in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_tui_with_only_its_output_redirected_names_stdout() -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cnn_tui", "runs"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2
    assert "cnn-tui runs needs a terminal (stdout not one)" in proc.stderr


def test_a_path_that_cannot_be_written_is_one_line_naming_it(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_tui", "--runs-dir", str(blocker / "runs"), "train", "--no-ui",
         "--epochs", "1", "--limit", "100"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{blocker / 'runs'}: Not a directory: check the path" in proc.stderr
    assert blocker.read_text() == "not a folder"


def test_runs_dir_is_taken_after_the_subcommand_too(tmp_path) -> None:
    (tmp_path / "after").mkdir()
    for argv in (
        ("runs", "--no-ui", "--runs-dir", str(tmp_path / "after")),
        ("--runs-dir", str(tmp_path / "after"), "runs", "--no-ui"),
        # both: the one after the subcommand, nearer to it, counts
        ("--runs-dir", str(tmp_path / "before"), "runs", "--no-ui", "--runs-dir", str(tmp_path / "after")),
    ):  # fmt: skip
        proc = cnn_tui(*argv)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"no runs in {tmp_path / 'after'}"
    proc = cnn_tui("runs", "--no-ui", "--runs-dir", "bad\x1bname")
    assert proc.returncode == 2 and "control character" in proc.stderr


def test_train_help_names_every_model_of_the_catalog() -> None:
    from cnn_tui.catalog import MODEL_NAMES

    proc = cnn_tui("train", "--help")
    description = proc.stdout.split("options:")[0].split("\n\n", 1)[1]  # (not the usage line)
    assert "ResNet18" not in description
    for name in MODEL_NAMES:
        assert name in " ".join(description.split()).replace("- ", "-"), name
