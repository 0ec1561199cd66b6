"""Bad files and bad values: every one gives ONE line on stderr, exit 2 (1 for a run error), no
traceback, the file named; a file from someone else never runs code.

Covers the data set files (CIFAR-10 pickles, Fashion-MNIST IDX, image folders), checkpoints and
--weights files, config files and presets, and the values of every setting (seed, limit, ...),
with property tests over the train flags and config-file values. Process-level faults (signals,
locks, a full disk, truncated metrics.jsonl / status.json) are in test_faults_process.py.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import pickle
import pickletools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datafiles import (
    idx_bytes,
    py2_pickle,
    write_image_folder,
    write_tiny_cifar10,
    write_tiny_idx,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_tui.cli import build_parser, main
from cnn_tui.commands.train_flags import config_from_args
from cnn_tui.errors import UsageError
from cnn_tui.training.config import FIELDS, MAX_TOML_BYTES, SEED_MAX, list_presets, read_toml
from cnn_tui.training.data import datasets
from cnn_tui.training.loop import engine
from cnn_tui.training.runs import store as runs

QUICK = ["--epochs", "1", "--limit", "10", "--device", "cpu"]


def short_id(value: object) -> str:
    """Test ids: short text as is, file contents by their size."""
    if isinstance(value, str) and len(value) <= 40:
        return value
    return f"{len(value)}B" if isinstance(value, bytes) else type(value).__name__


def cli(capsys, tmp_path: Path, *argv: str) -> tuple[int, str]:
    """Run `cnn-tui ARGV` in this process; (exit code, stderr)."""
    capsys.readouterr()
    code = main(["--runs-dir", str(tmp_path / "runs"), *argv])
    return code, capsys.readouterr().err


def assert_one_line(err: str, *names: str) -> None:
    """stderr is one `cnn-tui:` line with no traceback that names each of `names`."""
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("cnn-tui: "), err
    for name in names:
        assert str(name) in err, (name, err)


def train_fails(capsys, tmp_path: Path, *argv: str, code: int = 2) -> str:
    rc, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, *argv)
    assert rc == code, err
    assert_one_line(err)
    return err


# --- CIFAR-10 pickles ---------------------------------------------------------------------------


class _Payload:
    """Unpickling this opens (creates) `marker`: code a data file must never get to run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _protocol0_call(module: str, name: str, arg: str) -> bytes:
    """A protocol-0 pickle that calls module.name(arg), as Python 2 would have written it."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    return write_tiny_cifar10(tmp_path / "cifar", n_train=50, n_test=20) / "cifar-10-batches-py"


def test_tiny_cifar_files_are_pickled_like_the_official_ones(cifar: Path) -> None:
    """Python 2's numpy at protocol 2: str opcodes for bytes (no _codecs.encode) and only the
    array builders under their numpy 1 names; they load through the restricted unpickler."""
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        raw = (cifar / name).read_bytes()
        assert raw[:2] == b"\x80\x02"
        ops = list(pickletools.genops(raw))
        globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
        assert globals_ <= {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
        names = {op.name for op, _, _ in ops}
        assert not names & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES", "STACK_GLOBAL"}
    data = datasets.load_dataset("cifar10", str(cifar.parent), download=False)
    assert data.train_x.shape[1:] == (3, 32, 32) and data.classes[0] == "airplane"


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_batch_pickled_again_by_python3_still_loads(cifar: Path, protocol: int) -> None:
    path = cifar / "data_batch_1"
    batch = datasets._read_pickle_dict(path)
    batch["labels"] = [np.int64(v) for v in batch["labels"]]  # numpy scalars: another builder
    path.write_bytes(pickle.dumps({k.encode(): v for k, v in batch.items()}, protocol=protocol))
    x, y = datasets._read_cifar10_batch(path)
    assert x.shape[1:] == (3, 32, 32) and len(y) == len(x)


@pytest.mark.parametrize("name", ["data_batch_1", "batches.meta", "test_batch"])
@pytest.mark.parametrize("how", ["reduce", "posix.system", "builtins.exec"])
def test_cifar_pickle_with_a_payload_never_runs(
    capsys, tmp_path: Path, cifar: Path, name: str, how: str
) -> None:
    marker = tmp_path / "MARKER"
    if how == "reduce":
        raw = py2_pickle({b"data": _Payload(marker), b"labels": [1]})
    elif how == "posix.system":
        raw = _protocol0_call("posix", "system", f"touch {marker}")
    else:
        raw = _protocol0_call("builtins", "exec", f"open({str(marker)!r}, 'w')")
    (cifar / name).write_bytes(raw)
    err = train_fails(capsys, tmp_path, "--dataset", "cifar10", "--data-dir", str(cifar.parent))
    assert not marker.exists(), "the pickle's payload ran"
    assert "not a CIFAR-10 batch file" in err and "it asks for" in err and name in err


def _batch(data=None, labels=None) -> bytes:
    data = np.zeros((2, 3072), np.uint8) if data is None else data
    return py2_pickle({b"data": data, b"labels": [1, 2] if labels is None else labels})


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a readable CIFAR-10 file"),
        (b"garbage \x00\xff" * 20, "not a readable CIFAR-10 file"),
        ("truncated", "not a readable CIFAR-10 file"),
        (py2_pickle([1, 2]), "expected a dict"),
        (_batch(data=np.zeros((2, 100), np.uint8)), "not 3072"),
        (_batch(data=np.zeros((2, 3072), np.float32)), "not a uint8"),
        (_batch(labels=[1]), "2 images but 1 labels"),
        (_batch(labels=[1, 10]), "labels outside 0-9"),
        (_batch(labels=[1, -1]), "labels outside 0-9"),
        (_batch(labels=[1, 2**70]), "labels outside 0-9"),
        (_batch(labels=[1.5, 2]), "not a list of whole numbers"),
        (_batch(labels=[None, 2]), "not a list of whole numbers"),
        (_batch(labels=b"ab"), "not a list of whole numbers"),
    ],
    ids=short_id,
)
def test_damaged_cifar_batch(capsys, tmp_path: Path, cifar: Path, content, reason: str) -> None:
    path = cifar / "data_batch_2"
    if content == "truncated":
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    err = train_fails(capsys, tmp_path, "--dataset", "cifar10", "--data-dir", str(cifar.parent))
    assert str(path) in err and reason in err


def test_cifar_meta_with_undecodable_names_still_loads(cifar: Path) -> None:
    meta = {b"label_names": [b"\xff\xfe"] * 10, b"num_cases_per_batch": 10, b"num_vis": 3072}
    (cifar / "batches.meta").write_bytes(py2_pickle(meta))
    data = datasets.load_dataset("cifar10", str(cifar.parent), download=False)
    assert len(data.classes) == 10


def test_cifar_meta_without_ten_names(capsys, tmp_path: Path, cifar: Path) -> None:
    (cifar / "batches.meta").write_bytes(py2_pickle({b"label_names": [b"a"]}))
    err = train_fails(capsys, tmp_path, "--dataset", "cifar10", "--data-dir", str(cifar.parent))
    assert "batches.meta" in err and "label_names" in err


# --- Fashion-MNIST IDX files ---------------------------------------------------------------------


IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"


def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        (IMAGES, b"not gzip at all", "not readable"),
        (IMAGES, "truncated-gzip", "not readable"),
        (IMAGES, _gz(b"\x08\x03\x00\x00"), "bad magic number"),
        (IMAGES, _gz(b"\x00\x00\x0d\x03" + bytes(12)), "bad magic number"),  # floats, not bytes
        (IMAGES, _gz(b"\x00\x00\x08\x03\x00\x00"), "incomplete IDX header"),
        (IMAGES, _gz(b"\x00\x00\x08\xff" + bytes(1020)), "255 dimensions"),
        (IMAGES, _gz(b"\x00\x00\x08\x03" + b"\xff" * 12), "truncated or corrupt"),
        (IMAGES, "truncated-data", "truncated or corrupt"),
        (IMAGES, _gz(idx_bytes(np.zeros((10, 28, 28)))), "10 images but"),
        (IMAGES, _gz(idx_bytes(np.zeros((60, 28)))), "2-D data"),
        (IMAGES, _gz(idx_bytes(np.zeros((60, 2, 2)))), "2x2 images"),
        (LABELS, _gz(idx_bytes(np.zeros((60, 2)))), "2-D data"),
        (LABELS, _gz(idx_bytes(np.full(60, 10))), "labels outside 0-9"),
        (IMAGES, b"", "bad magic number"),
    ],
    ids=short_id,
)
def test_damaged_idx_file(capsys, tmp_path: Path, name: str, content, reason: str) -> None:
    root = write_tiny_idx(tmp_path / "fm", n_train=60, n_test=20)
    path = root / name
    if content == "truncated-gzip":
        content = path.read_bytes()[:-30]
    elif content == "truncated-data":
        content = _gz(gzip.decompress(path.read_bytes())[:500])
    path.write_bytes(content)
    err = train_fails(capsys, tmp_path, "--dataset", "fashion-mnist", "--data-dir", str(root))
    assert str(path) in err and reason in err


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_idx_files_with_no_images(capsys, tmp_path: Path, split: str) -> None:
    root = write_tiny_idx(tmp_path / "fm", gz=False)
    (root / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((0, 28, 28))))
    (root / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(0)))
    err = train_fails(capsys, tmp_path, "--dataset", "fashion-mnist", "--data-dir", str(root))
    assert "too small" in err and str(root) in err


# --- image folders --------------------------------------------------------------------------------


def _folder(tmp_path: Path, **kwargs) -> Path:
    return write_image_folder(tmp_path / "images", **kwargs)


def _imagefolder(capsys, tmp_path: Path, root: Path, code: int = 2) -> str:
    return train_fails(
        capsys, tmp_path, "--dataset", "imagefolder", "--data-dir", str(root), code=code
    )


def test_image_folder_with_one_class(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path, classes=("cats",))
    err = _imagefolder(capsys, tmp_path, root)
    assert str(root) in err and "needs at least 2 class folders" in err


def test_image_folder_with_an_empty_class(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "birds").mkdir()
    err = _imagefolder(capsys, tmp_path, root)
    assert "no readable images in birds" in err and "add images" in err


def test_image_folder_class_with_only_bad_files(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "birds").mkdir()
    (root / "birds" / "zero.png").write_bytes(b"")
    (root / "birds" / "noise.jpg").write_bytes(os.urandom(300))
    (root / "birds" / "notes.txt").write_text("hello")
    err = _imagefolder(capsys, tmp_path, root)
    assert "no readable images in birds" in err and "unreadable file(s) skipped" in err


def test_image_folder_too_few_images(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path, per_class=1, corrupt=False, non_image=False)
    err = _imagefolder(capsys, tmp_path, root)
    assert "too small" in err and str(root) in err and "at least 2 per class" in err


def test_bad_images_are_skipped_and_counted(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "cats" / "zero.png").write_bytes(b"")
    (root / "dogs" / "noise.jpg").write_bytes(os.urandom(500))
    os.symlink(tmp_path / "nowhere.png", root / "dogs" / "dangling.png")
    rc, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, "--dataset", "imagefolder",
                  "--data-dir", str(root), "--run-dir", str(tmp_path / "run"))  # fmt: skip
    assert rc == 0, err
    assert "Traceback" not in err
    started = next(e for e in runs.read_events(tmp_path / "run")[0] if e["event"] == "run_started")
    assert sorted(started["skipped"]) == [
        "cats/broken.jpg", "cats/zero.png", "dogs/noise.jpg", "dogs/notes.txt",
    ]  # fmt: skip


def test_image_folder_that_cannot_be_listed(capsys, tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path)
    listing = Path.iterdir

    def iterdir(self):
        if self == root:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    err = _imagefolder(capsys, tmp_path, root)
    assert f"cannot read image folder {root}" in err and "Permission denied" in err


def test_class_folder_that_cannot_be_listed(capsys, tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path)
    listdir = os.listdir

    def fake_listdir(path="."):
        if Path(path) == root / "dogs":
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(datasets.os, "listdir", fake_listdir)
    err = _imagefolder(capsys, tmp_path, root)
    assert f"cannot read class folder {root / 'dogs'}" in err and "chmod" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_class_folder_chmod_000(capsys, tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "dogs").chmod(0)
    try:
        err = _imagefolder(capsys, tmp_path, root)
    finally:
        (root / "dogs").chmod(0o755)
    assert str(root / "dogs") in err


@pytest.mark.parametrize("where", ["missing", "file"])
def test_image_folder_that_is_not_a_folder(capsys, tmp_path: Path, where: str) -> None:
    root = tmp_path / "images"
    if where == "file":
        root.write_text("x")
    err = _imagefolder(capsys, tmp_path, root)
    assert str(root) in err


# --- values of the settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed", ["99999999999999999999999", "18446744073709551616", str(2**63), str(SEED_MAX + 1)]
)
def test_seed_too_large_flag(capsys, tmp_path: Path, seed: str) -> None:
    err = train_fails(capsys, tmp_path, "--seed", seed)
    assert f"--seed must be at most {SEED_MAX}" in err


def test_seed_too_large_in_config_file(capsys, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("seed = 99999999999999999999999\n")
    err = train_fails(capsys, tmp_path, "--config", str(config))
    assert str(config) in err and "--seed must be at most" in err


def test_largest_seed_fits_every_generator() -> None:
    import torch

    np.random.default_rng(SEED_MAX)
    torch.manual_seed(SEED_MAX)
    for epoch in (0, 1, FIELDS["epochs"].maximum - 1):
        seed = engine.epoch_seed(SEED_MAX, int(epoch))
        torch.Generator().manual_seed(seed + 2)  # seed_epoch adds up to 2
        torch.manual_seed(seed + 1)


def test_largest_seed_trains(capsys, tmp_path: Path, one_torch_thread) -> None:
    rc, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, "--seed", str(SEED_MAX))
    assert rc == 0, err


@pytest.mark.parametrize(
    "flags",
    [
        ["--image-size", "8"],
        ["--model", "the3-cnn", "--image-size", "8"],
        ["--model", "fast-cnn", "--image-size", "8"],
        ["--hidden-units", "1024", "--image-size", "8"],
        ["--val-split", "0.5"],
        ["--val-split", "1e-300"],
        ["--batch-size", "65536"],
        ["--lr", "1e-320", "--grad-clip", "1e308"],
        ["--optimizer", "sgd", "--momentum", "0.999", "--weight-decay", "1", "--lr", "10"],
    ],
)
def test_extreme_valid_values_train(capsys, tmp_path: Path, flags, one_torch_thread) -> None:
    rc, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, *flags)
    assert rc in (0, 1), err  # 1: a diverged run is a run error, said in one line
    if rc:
        assert_one_line(err, "diverged")


def test_largest_limit_trains(capsys, tmp_path: Path, one_torch_thread) -> None:
    root = _folder(tmp_path, per_class=4)
    rc, err = cli(capsys, tmp_path, "train", "--no-ui", *QUICK, "--limit", "1000000000",
                  "--dataset", "imagefolder", "--data-dir", str(root), "--image-size", "16")  # fmt: skip
    assert rc == 0, err


@pytest.mark.parametrize("model", ["custom-cnn", "airbench-cnn"])
def test_image_size_too_small_for_the_model(capsys, tmp_path: Path, model: str) -> None:
    err = train_fails(capsys, tmp_path, "--model", model, "--image-size", "8")
    assert "too small" in err and model in err


@pytest.mark.parametrize(
    "flag, value, reason",
    [
        ("--seed", "9" * 5000, "must be a whole number"),
        ("--lr", "9" * 400, "must be a finite number"),
        ("--lr", "nan", "must be a finite number"),
        ("--limit", "1000000001", "must be at most 1000000000"),
        ("--epochs", "10001", "must be at most 10000"),
        ("--data-dir", "a\nb", "control characters"),
        ("--device", "cuda:x", "--device"),
    ],
    ids=short_id,
)
def test_bad_values(capsys, tmp_path: Path, flag: str, value: str, reason: str) -> None:
    err = train_fails(capsys, tmp_path, f"{flag}={value}")
    assert reason in err and len(err) < 400


# --- config files and presets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, reason",
    [
        (b'model = "\xff\xfe"\n', "not UTF-8"),
        (b"seed = " + b"9" * 5000 + b"\n", "not a usable TOML file"),
        (b"lr = " + b"9" * 400 + b"\n", "must be a finite number"),
        (b"a = " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "not a usable TOML file"),
        (b"[model]\nx = 1\n", "--model must be text"),
        (b"seed = [1, 2]\n", "--seed must be a whole number"),
        (b"seed = 1979-05-27\n", "--seed must be a whole number"),
        (b"epochs = 1e300\n", "--epochs must be at most 10000"),
        (b"seed = inf\n", "--seed must be a whole number"),
        (b"data_dir = 5\n", "--data-dir must be text"),
        (b'data_dir = "a\\u0000b"\n', "control characters"),
        (b"batch_size = true\n", "--batch-size must be a whole number"),
        (b"colour = 1\n", "unknown setting 'colour'"),
        (b"model = ", "not valid TOML"),
        (b"x" * (MAX_TOML_BYTES + 1), "over 1 MiB"),
    ],
    ids=short_id,
)
def test_bad_config_file(capsys, tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    err = train_fails(capsys, tmp_path, "--config", str(path))
    # one short line; an unknown setting's also lists the valid ones, which grow with each setting
    from cnn_tui.training.config import FIELDS

    listed = len(", ".join(FIELDS)) if "unknown setting" in reason else 0
    assert str(path) in err and reason in err and len(err) < 400 + listed
    assert err.count("\n") == 1


@pytest.mark.parametrize("path", ["/dev/zero", "missing.toml", "."])
def test_config_that_is_not_a_file(capsys, tmp_path: Path, path: str) -> None:
    if not Path(path).is_absolute():
        path = str(tmp_path / path)
    if path == "/dev/zero" and not Path(path).exists():
        pytest.skip("no /dev/zero")
    err = train_fails(capsys, tmp_path, "--config", path)
    assert path in err


def test_user_presets_that_are_damaged_are_listed_not_fatal(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "table.toml").write_text("preset = 3\nepochs = 2\n")
    (folder / "binary.toml").write_bytes(b"\xff\x00")
    (folder / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "dir.toml").mkdir()
    monkeypatch.setenv("CNN_TUI_PRESETS", str(folder))
    names = {preset.name for preset in list_presets()}
    assert {"table", "binary", "deep", "dir"} <= names
    for name in ("binary", "deep", "dir"):
        err = train_fails(capsys, tmp_path, "--preset", name)
        assert str(folder / f"{name}.toml") in err


def test_read_toml_refuses_what_is_not_a_config(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"# " + b"x" * MAX_TOML_BYTES)
    with pytest.raises(UsageError, match="over 1 MiB"):
        read_toml(path)


# --- checkpoints, --resume, eval ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One finished 1-epoch run to copy and damage."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    try:
        assert main(["train", "--no-ui", *QUICK, "--run-dir", str(run_dir)]) == 0
    finally:
        torch.set_num_threads(before)
    return run_dir


@pytest.fixture
def run_dir(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def _resume(capsys, tmp_path: Path, run_dir: Path) -> tuple[int, str]:
    return cli(capsys, tmp_path, "train", "--no-ui", "--resume", str(run_dir), "--epochs", "2")


def _eval(capsys, tmp_path: Path, run_dir: Path) -> tuple[int, str]:
    return cli(capsys, tmp_path, "eval", "--no-ui", str(run_dir), "--device", "cpu")


def _edit_checkpoint(run_dir: Path, change) -> None:
    import torch

    path = run_dir / runs.CHECKPOINT_FILE
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)


@pytest.mark.parametrize("command", [_resume, _eval])
def test_checkpoint_that_does_not_fit_the_config(capsys, tmp_path, run_dir, command) -> None:
    config = run_dir / runs.CONFIG_FILE
    config.write_text(config.read_text().replace("hidden_units = 10", "hidden_units = 12"))
    before = (run_dir / runs.CHECKPOINT_FILE).read_bytes()
    rc, err = command(capsys, tmp_path, run_dir)
    assert rc == 2
    assert_one_line(err, run_dir / runs.CHECKPOINT_FILE, "does not fit the model of config.toml")
    assert "in the checkpoint but" in err
    assert (run_dir / runs.CHECKPOINT_FILE).read_bytes() == before  # nothing saved is lost


def _payload_checkpoint(run_dir: Path, marker: Path) -> None:
    import torch

    torch.save({"model": _Payload(marker), "epoch": 1}, run_dir / runs.CHECKPOINT_FILE)


@pytest.mark.parametrize("command", [_resume, _eval])
@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "truncated or damaged"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
        (lambda p: p.write_bytes(b"garbage"), "not a PyTorch file"),
        (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps({"model": {}, "epoch": 1})), "not a readable"),
        ("payload", "not run"),
        ("epoch", "'epoch' entry is not a count"),
        ("model", "'model' entry is not a state_dict"),
        ("not-dict", "not a cnn-tui checkpoint"),
    ],
    ids=short_id,
)
def test_damaged_checkpoint(capsys, tmp_path, run_dir, command, damage, reason) -> None:
    import torch

    path = run_dir / runs.CHECKPOINT_FILE
    marker = tmp_path / "MARKER"
    if damage == "payload":
        _payload_checkpoint(run_dir, marker)
    elif damage == "epoch":
        _edit_checkpoint(run_dir, lambda c: c.update(epoch="x"))
    elif damage == "model":
        _edit_checkpoint(run_dir, lambda c: c.update(model=[1, 2]))
    elif damage == "not-dict":
        torch.save([1, 2], path)
    else:
        damage(path)
    rc, err = command(capsys, tmp_path, run_dir)
    assert rc == 2
    assert_one_line(err, path, reason)
    assert not marker.exists()


def _bad_optimizer_shape(checkpoint: dict) -> None:
    state = checkpoint["optimizer"]["state"]
    first = next(iter(state.values()))
    first["exp_avg"] = first["exp_avg"].flatten()[:1].clone()


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda c: c.pop("progress"), "'progress' entry is missing"),
        (lambda c: c["progress"].update(bogus=1), "'progress' entry is missing"),
        (lambda c: c["progress"].update(step="x"), "progress 'step' is str"),
        (lambda c: c["progress"].update(history=[{"a": [1]}]), "epoch history"),
        (lambda c: c.pop("optimizer"), "no optimizer state"),
        (lambda c: c["optimizer"].update(param_groups=[]), "optimizer state does not fit"),
        (_bad_optimizer_shape, "optimizer state does not fit"),
        (lambda c: (c["progress"].update(batch=1), c.update(rng={})), "random-number state"),
    ],
    ids=short_id,
)
def test_checkpoint_that_cannot_be_continued(capsys, tmp_path, run_dir, change, reason) -> None:
    _edit_checkpoint(run_dir, change)
    rc, err = _resume(capsys, tmp_path, run_dir)
    assert rc == 2
    assert_one_line(err, run_dir / runs.CHECKPOINT_FILE, reason)


@pytest.mark.parametrize(
    "normalization", [{"mean": [1, 2, 3, 4], "std": [1]}, {"mean": [0.5] * 3, "std": [0.0] * 3}]
)
def test_eval_of_a_checkpoint_with_a_damaged_normalization(
    capsys, tmp_path, run_dir, normalization
) -> None:
    _edit_checkpoint(run_dir, lambda c: c.update(normalization=normalization))
    rc, err = _eval(capsys, tmp_path, run_dir)
    assert rc == 2
    assert_one_line(err, run_dir / runs.CHECKPOINT_FILE, "normalization")


def test_eval_that_cannot_write_eval_json(capsys, tmp_path, run_dir) -> None:
    (run_dir / runs.EVAL_FILE).mkdir()
    rc, err = _eval(capsys, tmp_path, run_dir)
    assert rc == 1
    assert_one_line(err, run_dir / runs.EVAL_FILE)


@pytest.mark.parametrize(
    "config", [b"model = 3\n", b"\xff\xfe", b"seed = " + b"9" * 5000], ids=short_id
)
def test_run_with_a_damaged_config(capsys, tmp_path, run_dir, config: bytes) -> None:
    (run_dir / runs.CONFIG_FILE).write_bytes(config)
    for command in (_resume, _eval):
        rc, err = command(capsys, tmp_path, run_dir)
        assert rc == 2
        assert_one_line(err, run_dir / runs.CONFIG_FILE)


def test_run_with_damaged_json_files_still_resumes(capsys, tmp_path, run_dir) -> None:
    (run_dir / runs.SUMMARY_FILE).write_text("{not json")
    (run_dir / runs.STATUS_FILE).write_text("[1, 2]")
    (run_dir / runs.EVAL_FILE).write_text("\x00\x01")
    rc, err = _resume(capsys, tmp_path, run_dir)
    assert rc == 0, err
    assert json.loads((run_dir / runs.SUMMARY_FILE).read_text())["epochs_done"] == 2


@pytest.mark.parametrize(
    "content", [b"garbage", b"", "object-array", "wrong-member"], ids=lambda c: str(c)[:12]
)
def test_damaged_samples_file_reads_as_none(run_dir: Path, content) -> None:
    path = run_dir / runs.SAMPLES_FILE
    marker = run_dir / "MARKER"
    if content == "object-array":
        np.savez(path, images=np.array([_Payload(marker)], dtype=object))
    elif content == "wrong-member":
        path.write_bytes(b"PK\x03\x04" + os.urandom(100))
    else:
        path.write_bytes(content)
    assert runs.read_samples(run_dir) is None
    assert not marker.exists()


# --- --weights files ------------------------------------------------------------------------------


def _weights_file(tmp_path: Path, kind: str) -> Path:
    import torch

    path = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"\x00garbage")
    elif kind == "shape":
        torch.save({"conv1.weight": torch.zeros(3, 3)}, path)
    elif kind == "list":
        torch.save([1, 2], path)
    elif kind == "payload":
        torch.save({"conv1.weight": _Payload(tmp_path / "MARKER")}, path)
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("garbage", "not a readable state_dict file"),
        ("shape", "does not fit resnet18"),
        ("list", "does not hold a state_dict"),
        ("payload", "not run"),
        ("folder", "is a folder"),
        ("missing", "no such file"),
    ],
)
def test_bad_weights_file(capsys, tmp_path: Path, kind: str, reason: str) -> None:
    path = _weights_file(tmp_path, kind)
    err = train_fails(capsys, tmp_path, "--model", "resnet18", "--weights", str(path))
    assert str(path) in err and reason in err
    assert not (tmp_path / "MARKER").exists()


# --- end to end, in a fresh process ---------------------------------------------------------------


def _cnn_tui(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnn_tui", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_e2e_malicious_cifar_batch(tmp_path: Path, cifar: Path) -> None:
    marker = tmp_path / "MARKER"
    (cifar / "data_batch_3").write_bytes(_protocol0_call("posix", "system", f"touch {marker}"))
    done = _cnn_tui("train", "--no-ui", *QUICK, "--dataset", "cifar10", "--data-dir",
                    str(cifar.parent), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, cifar / "data_batch_3", "posix.system")
    assert not marker.exists()


def test_e2e_eval_of_a_payload_checkpoint(tmp_path: Path, run_dir: Path) -> None:
    marker = tmp_path / "MARKER"
    _payload_checkpoint(run_dir, marker)
    done = _cnn_tui("eval", "--no-ui", str(run_dir), "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_one_line(done.stderr, run_dir / runs.CHECKPOINT_FILE, "not run")
    assert not marker.exists()


# --- properties: any flag text, any config value --------------------------------------------------


TEXT_FIELDS = [name for name, field in FIELDS.items() if field.kind is not bool]
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@functools.cache
def _parser():
    return build_parser()


def _check_settings(argv: list[str]) -> None:
    """config_from_args either validates or raises a one-line UsageError; nothing else."""
    args = _parser().parse_args(["train", "--no-ui", "--limit", "10", "--epochs", "1", *argv])
    try:
        config_from_args(args)
    except UsageError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 600, message


@PROPERTY
@given(name=st.sampled_from(TEXT_FIELDS), text=st.text(max_size=40))
def test_any_flag_text_validates_or_is_a_usage_error(name: str, text: str) -> None:
    _check_settings([f"{FIELDS[name].flag}={text}"])


@PROPERTY
@given(
    name=st.sampled_from(TEXT_FIELDS),
    text=st.one_of(
        st.integers().map(str),
        st.integers(min_value=-(2**1400), max_value=2**1400).map(str),
        st.floats().map(repr),
        st.sampled_from(["1e400", "-0", "9" * 30, "0x10", "1_000", " 5 ", "1.0", "1e3"]),
    ),
)
def test_any_number_text_validates_or_is_a_usage_error(name: str, text: str) -> None:
    _check_settings([f"{FIELDS[name].flag}={text}"])


ODD_TEXTS = [
    "", " ", "0", "-1", "1.5", "1e400", "-1e400", "nan", "inf", "9" * 30, "9" * 400, "9" * 5000,
    "0x10", "1_000", "true", "none", "auto", "cpu", "cuda:0", "a\nb", "a\x00b", "\u2028", "é",
]  # fmt: skip
ODD_TOML = [
    "0", "-1", "1.5", "1e400", "-1e400", "nan", "inf", "9" * 30, "9" * 400, "9" * 5000, "0x10",
    "true", '""', '"a\\nb"', '"\\u0000"', "[]", "[1, 2]", '["a"]', "{}", "{a = 1}",
    "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "[" * 3000 + "]" * 3000,
]  # fmt: skip


def test_every_setting_with_every_odd_value(tmp_path: Path) -> None:
    """Each setting, as a flag and in a config file, with each odd value: valid or one line."""
    path = tmp_path / "config.toml"
    for name in FIELDS:
        if name in TEXT_FIELDS:
            for text in ODD_TEXTS:
                _check_settings([f"{FIELDS[name].flag}={text}"])
        for literal in ODD_TOML:
            path.write_text(f"{name} = {literal}\n", encoding="utf-8")
            _check_settings(["--config", str(path)])


def _float_literal(value: float) -> str:
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return repr(value)


_TOML_SCALARS = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(2**1400), max_value=2**1400).map(str),
    st.floats().map(_float_literal),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=30).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.sampled_from(
        [
            "1979-05-27",
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "{}",
            "{a = 1}",
            "9" * 5000,
            "1e400",
            "0x10",
            "0o7",
            "0b1",
            '"cpu"',
            '"cuda:0"',
            '"adam"',
            '"imagefolder"',
            '"resnet18"',
        ]
    ),  # fmt: skip
)
_TOML_VALUES = st.one_of(
    _TOML_SCALARS, st.lists(_TOML_SCALARS, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")
)


@PROPERTY
@given(
    values=st.dictionaries(
        st.one_of(st.sampled_from(list(FIELDS)), st.sampled_from(["preset", "x", "seed.y"])),
        _TOML_VALUES,
        max_size=3,
    )
)
def test_any_config_file_validates_or_is_a_usage_error(tmp_path: Path, values) -> None:
    path = tmp_path / "config.toml"
    text = "".join(f"{key} = {value}\n" for key, value in values.items())
    path.write_text(text, encoding="utf-8")
    _check_settings(["--config", str(path)])


@PROPERTY
@given(content=st.binary(max_size=200))
def test_any_config_bytes_validate_or_are_a_usage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    _check_settings(["--config", str(path)])
