"""Messages that say what really happened: a failed write names what was being written and the
flag that chooses it; `preset = "..."` in a config file is applied or refused; every count flag
has a bound, stated in its --help and enforced; a run folder deleted under its trainer stops the
trainer without being made again; an image too large is refused in whole words.

Issue 23, case 12 ("messages"). Each test runs the real command line (in this process, or as a
child process where the process boundary is the point: stdout on /dev/full, a live trainer).
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
from cli_process import ENV, run_cnn_tui
from conftest import wait_for
from inspect_fixtures import write_model_run

from cnn_tui import cli
from cnn_tui.commands import output
from cnn_tui.commands.count_flags import with_bounds
from cnn_tui.errors import STDOUT, disk_full, path_error
from cnn_tui.training.config import FIELDS, TrainConfig, layer_settings, to_toml
from cnn_tui.training.data import image_files
from cnn_tui.training.runs import store as runs

FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip
DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")


def main_err(capsys, *argv: str) -> tuple[int, str]:
    """`cnn-tui ARGV` in this process: (exit code, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# --- a failed write names what was written and its flag -----------------------------------------


@needs_dev_full
@pytest.mark.parametrize("argv", [["conv", "--no-ui"], ["--no-ui"]], ids=["conv", "overview"])
def test_stdout_on_a_full_device_is_named_not_the_run_directory(tmp_path, argv) -> None:
    with open(DEV_FULL, "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "cnn_tui", *argv], cwd=tmp_path, env=ENV, stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        "cnn-tui: no space left on device while writing standard output: free space where it "
        "is redirected, or redirect it elsewhere"
    )
    assert "--run-dir" not in done.stderr and list(tmp_path.iterdir()) == []


def _full_disk(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_full_disk_under_json_file_names_that_file_and_flag(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(output, "atomic_write_text", _full_disk)
    code, err = main_err(capsys, "runs", "--no-ui", "--json-file", "listed.json")
    assert code == 1
    assert one_line(err) == (
        "cnn-tui: no space left on device while writing listed.json: free space or choose "
        "another --json-file"
    )


def test_a_full_disk_under_runs_dir_names_runs_dir(capsys, tmp_path, monkeypatch):
    """The run's first file, written before training starts (the CLI's handler, not the
    engine's): the flag that chose its folder is --runs-dir, as no --run-dir was given."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "write_config", lambda run_dir, config: _full_disk(run_dir))
    code, err = main_err(capsys, "--runs-dir", "mine", "train", "--no-ui", *FAST)
    assert code == 1
    line = one_line(err)
    assert line.startswith("cnn-tui: no space left on device while writing mine/")
    assert line.endswith(": free space or choose another --runs-dir")


def _namespace(*argv: str) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = cli.build_parser()
    return parser, parser.parse_args(list(argv))


@pytest.mark.parametrize(
    "argv, written, flag",
    [
        (["train", "--run-dir", "r"], "r/checkpoint.pt", "--run-dir"),
        (["train"], "runs/20260101-simple-cnn-shapes/status.json", "--runs-dir"),
        (["--runs-dir", "runs", "train", "--resume", "runs/a"], "runs/a/checkpoint.pt", None),
        (["eval", "runs/a"], "runs/a/eval.json", None),  # RUN is nearer than --runs-dir
        (["lr-find", "-o", "out/curve.json"], "out/curve.json", "--json"),
        (["export", "runs/a", "--format", "onnx", "-o", "m.onnx"], "m.onnx", "--output"),
        (["export", "runs/a", "--format", "onnx"], "a.onnx", None),
        (["inspect", "runs/a", "--json-file", "i.json"], "i.json", "--json-file"),
        (["train", "--data-dir", ".", "--run-dir", "r"], "r/config.toml", "--run-dir"),
        (["train", "--config", "r"], "r/config.toml", None),  # a file read, not written
    ],
)
def test_the_flag_named_is_the_one_that_chose_the_file(argv, written, flag) -> None:
    parser, args = _namespace(*argv)
    assert cli.flag_for(written, parser, args) == flag


def test_messages_without_a_flag_say_only_what_helps() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "RUN/eval.json")
    assert str(disk_full(full)) == "no space left on device while writing RUN/eval.json: free space"
    assert str(disk_full(full, flag="-o")).endswith(": free space or choose another -o")
    denied = OSError(errno.EACCES, "Permission denied", "out/x.json")
    assert "check the path or choose another --json-file (" in str(
        path_error(denied, "--json-file")
    )
    assert path_error(OSError(errno.EACCES, "Permission denied", STDOUT)) is None


# --- preset = "..." in a config file ------------------------------------------------------------


@pytest.fixture
def user_presets(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    monkeypatch.setenv("CNN_TUI_PRESETS", str(folder))
    tiny = {"dataset": "shapes", "model": "simple-cnn", "hidden_units": 4, "limit": 120,
            "batch_size": 32, "epochs": 3, "lr": 0.01, "optimizer": "sgd"}  # fmt: skip
    (folder / "tiny.toml").write_text(to_toml(tiny, header={"description": "a tiny run"}))
    (folder / "chained.toml").write_text('preset = "tiny"\nepochs = 2\n')
    return folder


def test_a_preset_named_in_a_config_file_is_layered_as_the_flag_would_be(tmp_path, user_presets):
    config = tmp_path / "c.toml"
    config.write_text('preset = "tiny"\nepochs = 2\n')
    from_file = layer_settings(config_file=config)
    # defaults < preset < config file < flags
    assert (from_file.optimizer, from_file.lr, from_file.epochs) == ("sgd", 0.01, 2)
    assert from_file == layer_settings(preset="tiny", config_file=config)
    assert layer_settings(config_file=config, flags={"epochs": "1"}).epochs == 1
    # --preset is a flag: it wins over the file's key, as every flag does
    other = layer_settings(preset="fast-fashion-mnist", config_file=config)
    assert (other.dataset, other.model, other.epochs, other.lr) == (
        "fashion-mnist",
        "fast-cnn",
        2,
        0.1,
    )


def test_a_preset_named_in_a_config_file_trains_that_preset(
    capsys, tmp_path, monkeypatch, user_presets, one_torch_thread
):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text('preset = "tiny"\nepochs = 1\n')
    argv = ["train", "--no-ui", "--config", str(config), "--device", "cpu", "--run-dir", "r"]
    code, err = main_err(capsys, *argv)
    assert code == 0, err
    trained = runs.read_config(tmp_path / "r")
    assert (trained.optimizer, trained.lr, trained.hidden_units, trained.epochs) == (
        "sgd", 0.01, 4, 1,
    )  # fmt: skip


@pytest.mark.parametrize(
    "content, reason",
    [
        ('preset = "no-such-preset"\n', "unknown preset 'no-such-preset'; available presets:"),
        ("preset = 3\n", "preset must be the name of a preset"),
        ('preset = ""\n', "preset must be the name of a preset"),
        ('preset = "chained"\n', "only a --config file may name a preset (presets do not chain)"),
    ],
    ids=["unknown", "number", "empty", "chained"],
)
def test_a_bad_preset_in_a_config_file_is_one_line_and_trains_nothing(
    capsys, tmp_path, monkeypatch, user_presets, content, reason
):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text(content)
    code, err = main_err(capsys, "train", "--no-ui", "--config", str(config), *FAST)
    assert code == 2
    line = one_line(err)
    assert reason in line
    named = user_presets / "chained.toml" if "chained" in content else config
    assert str(named) in line
    assert not (tmp_path / "runs").exists()


def test_the_preset_table_of_a_saved_preset_is_still_its_description(tmp_path) -> None:
    saved = tmp_path / "saved.toml"
    saved.write_text(to_toml({"epochs": 4}, header={"description": "four epochs"}))
    assert layer_settings(config_file=saved) == TrainConfig(epochs=4)


# --- every count flag has a bound ---------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _number_flags() -> list[tuple[str, argparse.Action]]:
    """Every flag of every command that takes a number (its metavar N, K, M or X, or a count)."""
    found = []
    for command, parser in _subparsers().items():
        for action in parser._actions:
            counted = getattr(action.type, "__name__", "") == "count"
            if action.option_strings and (counted or action.metavar in ("N", "K", "M", "X")):
                found.append((command, action))
    return found


def test_the_number_flags_are_all_found() -> None:
    flags = {(command, action.option_strings[-1]) for command, action in _number_flags()}
    assert {("train", "--nnodes"), ("train", "--node-rank"), ("bench", "--batches"),
            ("bench", "--warmup"), ("bench", "--repeats"), ("bench", "--workers"),
            ("bench", "--batch-size"), ("lr-find", "--steps"), ("predict", "--top"),
            ("inspect", "--test-index"), ("sweep", "--epochs"), ("train", "--seed")} <= flags  # fmt: skip


@pytest.mark.parametrize(
    "command, action",
    _number_flags(),
    ids=lambda x: x if isinstance(x, str) else x.option_strings[-1],
)
def test_every_number_flag_states_its_bound_in_its_help(command, action) -> None:
    field = FIELDS.get(action.dest)
    if field is not None:  # a training setting's flag: its Field's bounds
        assert field.bounds and field.bounds in action.help, action.help
    else:  # a count (`count_flags`), or a lesson's (net --label: 0 to K-1)
        assert " to " in action.help, action.help


@pytest.mark.parametrize(
    "argv, named",
    [
        (["train", "--nnodes", "0"], "--nnodes: expected 1 to 1024, got 0"),
        (["train", "--node-rank", "-1"], "--node-rank: expected 0 to 1023, got -1"),
        (["bench", "--batches", "1000000000"], "--batches: expected 1 to 10000, got 1000000000"),
        (["bench", "--repeats", "0"], "--repeats: expected 1 to 100, got 0"),
        (["bench", "--warmup", "5000"], "--warmup: expected 0 to 1000, got 5000"),
        (["bench", "--workers", "100000"], "--workers: expected 0 to 256, got 100000"),
        (["lr-find", "--steps", "99999999"], "--steps: expected 5 to 10000, got 99999999"),
        (["predict", "RUN", "x.png", "--top", "0"], "--top: expected 1 to 1000, got 0"),
        (["inspect", "RUN", "--test-index", "-3"], "--test-index: expected 0 to 999999999"),
        (["bench", "--batches", "many"], "--batches: expected a whole number, got 'many'"),
    ],
    ids=lambda x: x[0] + " " + x[1] if isinstance(x, list) else None,
)
def test_a_count_out_of_bounds_is_one_line_exit_2(capsys, argv, named) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main([*argv, "--no-ui"])
    assert stopped.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert named in line and line.endswith(f"(see 'cnn-tui {argv[0]} --help')")


def test_a_lesson_seed_states_its_bound() -> None:
    assert "0 to 4294967295" in next(
        a.help for a in _subparsers()["conv"]._actions if a.dest == "seed"
    )


def test_with_bounds_puts_the_range_first_in_the_closing_parenthesis() -> None:
    assert with_bounds("passes (default: 5)", "1 to 20") == "passes (1 to 20; default: 5)"
    assert with_bounds("workers (default: f())", "0 to 9") == "workers (0 to 9; default: f())"
    assert with_bounds("classes shown", "1 to 9") == "classes shown (1 to 9)"


# --- an image too large -------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is width x height: Pillow reads the size before any pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


LIMIT_WORDS = f"over the limit of {image_files.MAX_PIXELS:,} pixels"


@pytest.mark.parametrize(
    "size", [(20_000, 20_000), (10_000, 10_000), (9_000, 8_000)], ids=["bomb", "warned", "large"]
)
def test_an_image_too_large_is_refused_in_whole_words_without_a_warning(tmp_path, size) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_header(*size))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(image_files.ImageFileError) as refused:
            image_files.read_image(path, 3, (32, 32))
    assert seen == []
    message = str(refused.value)
    assert message.startswith("too large") and LIMIT_WORDS in message
    assert message.endswith("(a decompression bomb, or not meant for this)")


def test_a_long_reason_is_cut_at_a_word(tmp_path, monkeypatch) -> None:
    from PIL import Image

    def damaged(path):
        raise OSError("image file is truncated " + "abcdefghij " * 20)

    monkeypatch.setattr(Image, "open", damaged)
    (tmp_path / "x.png").write_bytes(b"")  # a regular file: read_image checks that before opening
    with pytest.raises(image_files.ImageFileError) as refused:
        image_files.read_image(tmp_path / "x.png", 3, (32, 32))
    reason = str(refused.value)
    assert reason.startswith("damaged or truncated (image file is truncated abcdefghij")
    assert reason.endswith(" ...)") and "abcdefghij ...)" in reason


def test_predict_on_a_bomb_names_the_file_and_the_limit(capsys, tmp_path) -> None:
    run = write_model_run(tmp_path / "run")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20_000, 20_000))
    code, err = main_err(capsys, "predict", str(run), str(bomb), "--device", "cpu")
    assert code == 2
    line = one_line(err)
    assert f"skipped {bomb}: too large: {LIMIT_WORDS}" in line


# --- a run folder deleted under its trainer -----------------------------------------------------


def test_a_run_folder_deleted_while_training_stops_the_trainer(tmp_path) -> None:
    run = tmp_path / "r"
    argv = ["train", "--no-ui", *FAST, "--limit", "600", "--epochs", "2000", "--run-dir", "r"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn_tui", *argv], cwd=tmp_path, env=ENV, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            lambda: any(e["event"] == "batch" for e in runs.read_events(run)[0]),
            what="the first batch event",
        )
        # `rm -r` as one step: moved away, the folder is gone for the trainer at once (a trainer
        # making a temporary file in it cannot make the removal fail half-way)
        os.rename(run, tmp_path / "deleted")
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    shutil.rmtree(tmp_path / "deleted", ignore_errors=True)
    assert process.returncode == runs.EXIT_RUN_FOLDER_GONE == 3
    assert one_line(err) == "cnn-tui: run folder r was deleted while training: stopped"
    assert not run.exists()  # not made again with a checkpoint and a status in it


def test_every_write_of_a_run_stops_once_its_folder_is_gone(tmp_path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    log = runs.EventLog(run)
    log.emit("run_started")
    shutil.rmtree(run)
    for write in (
        lambda: log.emit("epoch", epoch=1),
        lambda: runs.write_status(run, "running"),
        lambda: runs.write_summary(run, {}),
    ):
        with pytest.raises(runs.RunFolderGone, match="run folder .* was deleted while training"):
            write()
        assert not run.exists()
    log.close()


def test_a_run_folder_deleted_and_made_again_is_seen_by_the_event_log(tmp_path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    log = runs.EventLog(run)
    shutil.rmtree(run)
    run.mkdir()  # someone else's folder now, of the same name
    with pytest.raises(runs.RunFolderGone):
        log.emit("epoch", epoch=1)
    assert list(run.iterdir()) == []
    log.close()


def test_the_bounds_reach_the_help_the_reference_page_is_made_of(tmp_path) -> None:
    """The bounds reach `cnn-tui train --help`, the page docs/cli.md is generated from."""
    done = run_cnn_tui("train", "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    assert "--nnodes M" in done.stdout and "(1 to 1024; default: 1)" in done.stdout
