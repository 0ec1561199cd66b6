"""Files from strangers, a third campaign: what the earlier ones (test_faults_files.py,
test_faults_paths.py, tests/e2e/test_faults_process.py) left open. Each case once gave a
traceback, a wrong piece of advice, a silent cast or gigabytes of memory; each now gives one
line (exit 2) or reads what it can.

- JSON nested deeper than the parser's recursion limit (metrics.jsonl lines, summary.json,
  status.json, sweep.json): `fileio.json_value` makes it a ValueError like any other damage;
- a sweep.json whose runs, grid or sort are of the wrong types, and run files in a sweep whose
  counts are text: `sweeps.read_manifest` checks every field once, `sweep_rows` reads numbers
  as `store.number_or_none` / `count_or_zero`;
- weights whose tensors are no float weights (whole numbers, true/false, complex, sparse, meta)
  or whose names are no strings: refused, never cast (`models.tensor_misfit`);
- a gzip IDX file that inflates to gigabytes: stopped at `datasets.MAX_IDX_BYTES`;
- `--data-dir` that names a file; a lesson file of an op that is no lesson; a TOML file that
  starts with a byte-order mark; an image folder of hundreds of empty class folders.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import idx_bytes, write_image_folder, write_tiny_idx
from torch import nn
from train_ui_fixtures import write_run

from cnn_tui import fileio, text
from cnn_tui.cli import main
from cnn_tui.errors import UsageError
from cnn_tui.lessons import examples
from cnn_tui.training.config import TrainConfig, read_toml
from cnn_tui.training.data import datasets
from cnn_tui.training.loop import checkpoints
from cnn_tui.training.models import registry
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs import sweeps

QUICK = ["--epochs", "1", "--limit", "10", "--device", "cpu"]
DEEP = "[" * 100_000 + "]" * 100_000  # past any recursion limit


def cli(capsys, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """Run `cnn-tui ARGV` in this process; (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--runs-dir", str(tmp_path / "runs"), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    assert err.startswith("cnn-tui: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)


# --- JSON nested too deep ----------------------------------------------------------------------


def test_json_value_makes_nesting_too_deep_a_value_error() -> None:
    assert fileio.json_value('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="nested too deep"):
        fileio.json_value(DEEP)


def test_run_files_nested_too_deep_read_as_damaged(capsys, tmp_path: Path) -> None:
    base = tmp_path / "runs"
    deep_line = write_run(base / "deep-line")
    with (deep_line / runs.EVENTS_FILE).open("a") as handle:
        handle.write(DEEP + "\n")
    deep_files = write_run(base / "deep-files")
    (deep_files / runs.SUMMARY_FILE).write_text(DEEP)
    (deep_files / runs.STATUS_FILE).write_text(DEEP)
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui")
    assert code == 0 and err == "", err
    assert "deep-files: status.json could not be read (damaged or cut short)" in out
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui", "--metrics", str(deep_line))
    assert code == 0 and "Traceback" not in err, err
    assert "val_acc" in out  # the readable lines are listed
    assert runs.read_all_events(deep_line)[1] == 1  # the deep line: one line skipped


# --- sweeps: the manifest and the files of its runs ---------------------------------------------


def _sweep(tmp_path: Path) -> Path:
    plan = sweeps.make_plan(TrainConfig(limit=10), {"epochs": [1, 2]}, "cpu", devices=["cpu"])
    return sweeps.create_sweep(plan, tmp_path / "runs")


def _rewrite(sweep_dir: Path, change) -> None:
    path = sweep_dir / runs.SWEEP_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m["runs"][0].update(index="x"), "a run's index is not a count"),
        (lambda m: m["runs"][0].update(index=10**30), "a run's index is not a count"),
        (lambda m: m["runs"][0].update(index=True), "a run's index is not a count"),
        (lambda m: m["runs"][0].update(overrides=[1]), "run 1's overrides are not"),
        (lambda m: m["runs"].append(5), "a run is not a JSON object"),
        (lambda m: m.update(sort="\x1b[2J"), "its sort is not one of val_acc"),
        (lambda m: m.update(sort=[1]), "its sort is not one of val_acc"),
        (lambda m: m.update(grid={"lr": "x"}), "its grid is not setting -> list of values"),
        (lambda m: m.update(base=None), "no base settings"),
        (lambda m: m.update(runs={}), "no list of runs"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_sweep_manifest_of_the_wrong_types_is_one_line(capsys, tmp_path, change, reason):
    sweep_dir = _sweep(tmp_path)
    _rewrite(sweep_dir, change)
    for flag in ("--show", "--resume"):
        code, _, err = cli(capsys, tmp_path, "sweep", "--no-ui", flag, str(sweep_dir))
        assert code == 2
        assert_one_line(err, str(sweep_dir / runs.SWEEP_FILE), "is not a sweep manifest", reason)
        assert "\x1b" not in err


def test_a_sweep_manifest_nested_too_deep_is_one_line(capsys, tmp_path: Path) -> None:
    sweep_dir = _sweep(tmp_path)
    (sweep_dir / runs.SWEEP_FILE).write_text(DEEP)
    code, _, err = cli(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep_dir))
    assert code == 2
    assert_one_line(err, str(sweep_dir / runs.SWEEP_FILE), "nested too deep")


def test_a_sweep_whose_runs_hold_text_for_numbers_is_shown(capsys, tmp_path: Path) -> None:
    sweep_dir = _sweep(tmp_path)
    first, second = (sweeps.run_path(sweep_dir, e) for e in sweeps.read_manifest(sweep_dir)["runs"])
    write_run(first)
    summary = json.loads((first / runs.SUMMARY_FILE).read_text())
    summary.update(epochs_done="x", best_val_acc="high", test_accuracy=[1], macro_f1={"a": 1})
    (first / runs.SUMMARY_FILE).write_text(json.dumps(summary))
    write_run(second, "stopped")
    status = json.loads((second / runs.STATUS_FILE).read_text())
    status.update(epochs=[4], epoch="two", best_val_acc="x")
    (second / runs.STATUS_FILE).write_text(json.dumps(status))
    rows = sweeps.sweep_rows(sweep_dir)
    assert [row["epochs_done"] for row in rows] == [0, 0]
    assert [row["epochs"] for row in rows] == [4, 2]  # (the second: from its overrides)
    assert rows[0]["best_val_acc"] is None and rows[0]["test_acc"] is None
    code, out, err = cli(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep_dir))
    assert code == 0 and err == "", err
    assert first.name in out and second.name in out


# --- weights that are no float weights ----------------------------------------------------------


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2)  # (its num_batches_tracked is an int64 buffer)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda w: w.to(torch.int64), "int64 in the checkpoint but float32"),
        (lambda w: w.bool(), "bool in the checkpoint"),
        (lambda w: w.to(torch.complex64), "complex64 in the checkpoint"),
        (lambda w: w.to_sparse(), "sparse_coo in the checkpoint"),
        (lambda w: torch.empty_like(w, device="meta"), "a tensor without values (meta)"),
    ],
    ids=["int", "bool", "complex", "sparse", "meta"],
)
def test_a_checkpoint_tensor_that_is_no_float_is_refused_not_cast(tmp_path, make, words) -> None:
    model = _Tiny()
    state = model.state_dict()
    state["conv.weight"] = make(state["conv.weight"])
    path = tmp_path / "checkpoint.pt"
    with _no_warnings(), pytest.raises(UsageError) as caught:
        checkpoints.load_model_state(_Tiny(), {"model": state}, path)
    message = str(caught.value)
    assert message.startswith(f"{path} does not fit") and "conv.weight is " + words in message


@contextlib.contextmanager
def _no_warnings():
    """Fail on any warning (torch warns where it casts complex weights to real ones)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_half_weights_and_count_buffers_still_load() -> None:
    source = _Tiny()
    state = {key: value.half() if value.is_floating_point() else value.to(torch.int32)
             for key, value in source.state_dict().items()}  # fmt: skip
    target = _Tiny()
    checkpoints.load_model_state(target, {"model": state}, Path("c.pt"))
    assert torch.equal(target.conv.weight, source.conv.weight.half().float())


def test_tensor_misfit_says_what_a_tensor_is() -> None:
    weight = torch.zeros(2)
    assert registry.tensor_misfit(torch.zeros(2, dtype=torch.bfloat16), weight) is None
    assert registry.tensor_misfit(torch.zeros(2, dtype=torch.int64), weight) == "int64"
    assert registry.tensor_misfit(torch.zeros(2), torch.zeros(2, dtype=torch.int64)) is None


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({5: torch.zeros(1), "a": torch.zeros(1)}, "does not hold a state_dict"),
        ("complex", "not float weights: conv1.weight (complex64)"),
    ],
    ids=["int-key", "complex"],
)
def test_weights_file_with_int_keys_or_complex_tensors(capsys, tmp_path, state, reason) -> None:
    if state == "complex":
        import torchvision

        state = torchvision.models.resnet18(weights=None).state_dict()
        state["conv1.weight"] = state["conv1.weight"].to(torch.complex64)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with _no_warnings():
        code, _, err = cli(
            capsys, tmp_path, "train", "--no-ui", *QUICK, "--model", "resnet18",
            "--image-size", "32", "--weights", str(path),
        )  # fmt: skip
    assert code == 2
    assert_one_line(err, f"--weights {path}", reason)


# --- data set files -----------------------------------------------------------------------------


def test_a_gzip_bomb_in_an_idx_file_is_stopped_before_it_fills_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 1 << 20)
    root = write_tiny_idx(tmp_path / "fm")
    bomb = root / "train-images-idx3-ubyte.gz"
    n = 4000  # 3 MiB of zeros behind a valid header, 3 KiB of gzip
    bomb.write_bytes(
        gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + bytes(n * 784))
    )
    inflated = []
    real_decompressobj = datasets.zlib.decompressobj

    def counting(*args, **kwargs):
        inflater = real_decompressobj(*args, **kwargs)

        class Counting:
            eof = property(lambda self: inflater.eof)
            unused_data = property(lambda self: inflater.unused_data)

            def decompress(self, data, limit):
                part = inflater.decompress(data, limit)
                inflated.append(len(part))
                return part

        return Counting()

    monkeypatch.setattr(datasets.zlib, "decompressobj", counting)
    with pytest.raises(UsageError, match=r"train-images-idx3-ubyte.gz holds more than 1 MiB"):
        datasets.read_idx(bomb)
    assert max(inflated) <= (1 << 20) + 1  # never more than the limit in memory
    monkeypatch.setattr(datasets.zlib, "decompressobj", real_decompressobj)
    big = root / "train-images-idx3-ubyte"
    big.write_bytes(bytes((1 << 20) + 1))  # not gzipped: its size is enough
    with pytest.raises(UsageError, match="holds more than 1 MiB"):
        datasets.read_idx(big)


@pytest.mark.parametrize("members", [1, 2])
def test_idx_files_still_read_whole_and_in_several_gzip_members(tmp_path, members) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    data = idx_bytes(images)
    cut = len(data) // members
    path = tmp_path / "x.gz"
    path.write_bytes(b"".join(gzip.compress(data[i * cut : (i + 1) * cut if i < members - 1 else None])
                              for i in range(members)))  # fmt: skip
    np.testing.assert_array_equal(datasets.read_idx(path), images)
    path.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(UsageError, match="is not readable"):
        datasets.read_idx(path)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_a_data_dir_that_is_a_file_is_a_usage_error(capsys, tmp_path, dataset) -> None:
    afile = tmp_path / "data.txt"
    afile.write_text("not a folder\n")
    args = ["train", "--no-ui", *QUICK, "--dataset", dataset, "--data-dir", str(afile)]
    code, _, err = cli(capsys, tmp_path, *args)
    assert code == 2  # (not a failed download: exit 1, "[Errno 17] File exists")
    assert_one_line(err, f"--data-dir {afile} is a file, not a folder")


def test_hundreds_of_empty_class_folders_are_named_in_one_short_line(capsys, tmp_path) -> None:
    root = write_image_folder(tmp_path / "images")
    for i in range(300):
        (root / f"empty{i:03d}").mkdir()
    code, _, err = cli(
        capsys, tmp_path, "train", "--no-ui", *QUICK, "--dataset", "imagefolder",
        "--data-dir", str(root),
    )  # fmt: skip
    assert code == 2
    assert_one_line(err, "no readable images in empty000, empty001", "and 290 more")
    assert len(err) < 400


def test_some_names_at_most_and_escaped() -> None:
    assert text.some(["a", "b"]) == "a, b"
    assert text.some([f"n{i}" for i in range(12)], shown=3) == "n0, n1, n2 and 9 more"
    assert text.some(["\x1b[2J"]) == "\\x1b[2J"


# --- lesson and config files --------------------------------------------------------------------


@pytest.mark.parametrize("op", ["foo", "\x1b[2Jconv"])
def test_a_lesson_file_of_no_lesson_names_the_lessons_not_a_command(tmp_path, op) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(f"op = {json.dumps(op)}\nx = [[1]]\n")
    with pytest.raises(UsageError) as caught:
        examples.build_example("conv", example=str(path))
    message = str(caught.value)
    assert "op must be one of conv, pool, net, batchnorm, dropout" in message
    assert "open it with" not in message and "\x1b" not in message


def test_toml_files_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    lesson = tmp_path / "bom.toml"
    lesson.write_bytes(b'\xef\xbb\xbfop = "conv"\nx = [[1, 2], [3, 4]]\nw = [[1]]\n')
    assert examples.build_example("conv", example=str(lesson)).x.shape == (1, 1, 2, 2)
    config = tmp_path / "config.toml"
    config.write_bytes(b"\xef\xbb\xbfepochs = 3\n")
    assert read_toml(config) == {"epochs": 3}


# --- outputs never replace the files a run keeps -----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["eval", "RUN", "--json-file", "RUN/checkpoint.pt"], "checkpoint.pt"),
        (["predict", "RUN", "IMAGE", "--json-file", "RUN/summary.json"], "summary.json"),
        (["inspect", "RUN", "--json", "RUN/metrics.jsonl"], "metrics.jsonl"),
        (["export", "RUN", "--format", "torchscript", "-o", "RUN/config.toml", "--force"],
         "config.toml"),
        (["export", "RUN", "--format", "onnx", "-o", "RUN/./status.json", "--force"],
         "status.json"),
        (["runs", "--metrics", "RUN", "--csv", "RUN/metrics.jsonl"], "metrics.jsonl"),
        (["runs", "--json-file", "RUN/output.log"], "output.log"),
        (["lr-find", "-o", "RUN/samples.npz"], "samples.npz"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else value,
)  # fmt: skip
def test_an_output_never_replaces_a_file_the_run_keeps(capsys, tmp_path, argv, name) -> None:
    run = write_run(tmp_path / "runs" / "done")
    for kept in ("checkpoint.pt", "samples.npz", "output.log"):
        if not (run / kept).exists():
            (run / kept).write_bytes(b"the run's own " + kept.encode())
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    argv = [arg.replace("RUN", str(run)).replace("IMAGE", str(image)) for arg in argv]
    code, _, err = cli(capsys, tmp_path, *argv, "--no-ui")
    assert code == 2
    assert_one_line(err, f"{run}/{name} is a file the run in {run} keeps")
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before


def test_a_new_run_or_sweep_never_gets_its_json_over_its_own_files(capsys, tmp_path) -> None:
    for command, name in (("train", "metrics.jsonl"), ("sweep", "sweep.json")):
        folder = tmp_path / command
        folder.mkdir()  # (an empty folder: a new run or sweep may take it)
        grid = ["--grid", "lr=0.1"] if command == "sweep" else []
        code, _, err = cli(
            capsys, tmp_path, command, "--no-ui", *QUICK, *grid, "--run-dir", str(folder),
            "--json-file", str(folder / name),
        )  # fmt: skip
        assert code == 2
        assert_one_line(err, f"{folder / name} is a file the run or sweep in {folder} will keep")
        assert list(folder.iterdir()) == []


def test_a_sweep_manifest_is_never_replaced_by_an_output(capsys, tmp_path) -> None:
    sweep_dir = _sweep(tmp_path)
    before = (sweep_dir / runs.SWEEP_FILE).read_bytes()
    manifest = str(sweep_dir / runs.SWEEP_FILE)
    code, _, err = cli(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep_dir),
                       "--json-file", manifest)  # fmt: skip
    assert code == 2
    assert_one_line(err, f"{manifest} is a file the sweep in {sweep_dir} keeps")
    assert (sweep_dir / runs.SWEEP_FILE).read_bytes() == before
    # a search's study and report, the queue runner's lock: kept as well
    for name in (runs.STUDY_FILE, runs.SEARCH_REPORT_FILE, runs.RUNNER_LOCK_FILE):
        (sweep_dir / name).write_bytes(b"the sweep's own " + name.encode())
        target = str(sweep_dir / name)
        code, _, err = cli(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep_dir),
                           "--json-file", target)  # fmt: skip
        assert code == 2
        assert_one_line(err, f"{target} is a file the sweep in {sweep_dir} keeps")
        assert (sweep_dir / name).read_bytes() == b"the sweep's own " + name.encode()


def test_outputs_next_to_a_runs_files_are_still_written(capsys, tmp_path) -> None:
    run = write_run(tmp_path / "runs" / "done")
    code, _, err = cli(capsys, tmp_path, "runs", "--no-ui", "--json-file", str(run / "list.json"))
    assert code == 0, err
    assert json.loads((run / "list.json").read_text())[0]["name"] == "done"


# --- samples.npz: a zip bomb, arrays the Samples tab cannot draw --------------------------------


def _samples(n: int = 4, **change) -> dict[str, np.ndarray]:
    arrays = {
        "images": np.zeros((n, 3, 8, 8), np.uint8),
        "true": np.arange(n),
        "pred": np.arange(n),
        "confidence": np.full(n, 0.5, np.float32),
        "classes": np.array(["a", "b", "c", "d"]),
    }
    return {**arrays, **change}


def test_a_samples_zip_bomb_is_never_inflated(tmp_path: Path, monkeypatch) -> None:
    run = write_run(tmp_path / "run")
    monkeypatch.setattr(runs, "MAX_SAMPLES_BYTES", 1 << 20)
    images = np.zeros((40, 3, 128, 128), np.uint8)  # 2 MiB of zeros, a few KiB deflated
    np.savez_compressed(run / runs.SAMPLES_FILE, **_samples(40, images=images))
    assert (run / runs.SAMPLES_FILE).stat().st_size < 100_000
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("inflated"))
    assert runs.read_samples(run) is None


def test_a_samples_member_claiming_a_huge_shape_reads_as_none(tmp_path: Path) -> None:
    """A .npy member's header may claim any shape: 100 bytes saying (2**45,) ask numpy for
    32 TiB (MemoryError), which the zip's own sizes do not show."""
    import io
    import zipfile

    run = write_run(tmp_path / "run")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<u1", "fortran_order": False, "shape": (2**45,)}
    )
    with zipfile.ZipFile(run / runs.SAMPLES_FILE, "w") as archive:
        archive.writestr("images.npy", header.getvalue() + b"\0" * 16)
    assert runs.read_samples(run) is None


@pytest.mark.parametrize(
    "change",
    [
        {"images": np.zeros((4, 8, 8), np.uint8)},  # no channel axis
        {"images": np.zeros((4, 2, 8, 8), np.uint8)},
        {"images": np.zeros((4, 3, 8, 8), np.float64)},
        {"images": np.zeros((4, 3, 1, 5000), np.uint8)},
        {"true": np.arange(3)},  # fewer labels than images
        {"pred": np.array(["x"] * 4)},
        {"confidence": np.zeros((4, 2))},
        {"classes": np.arange(4)},
    ],
    ids=["3-d", "2-channels", "float", "5000-wide", "short", "text-pred", "2-d", "int-classes"],
)
def test_samples_the_tab_cannot_draw_read_as_none(tmp_path: Path, change) -> None:
    run = write_run(tmp_path / "run")
    np.savez(run / runs.SAMPLES_FILE, **_samples(**change))
    assert runs.read_samples(run) is None


def test_sound_samples_still_read(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    np.savez(run / runs.SAMPLES_FILE, **_samples())
    assert runs.read_samples(run)["images"].shape == (4, 3, 8, 8)
    np.savez(run / runs.SAMPLES_FILE, **_samples(images=np.zeros((4, 1, 28, 28), np.uint8)))
    assert runs.read_samples(run)["images"].shape == (4, 1, 28, 28)  # (Fashion-MNIST's)


def test_a_status_or_summary_too_large_reads_as_damaged(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runs, "MAX_JSON_BYTES", 4096)
    run = write_run(tmp_path / "runs" / "big")
    status = json.loads((run / runs.STATUS_FILE).read_text())
    (run / runs.STATUS_FILE).write_text(json.dumps({**status, "junk": "x" * 5000}))
    assert runs.read_status(run) is None
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui")
    assert code == 0 and err == ""
    assert "big: status.json could not be read (damaged or cut short)" in out
    (run / runs.STATUS_FILE).write_text(json.dumps(status))
    assert runs.read_status(run) == status  # (the limit is on size alone)


def test_a_run_config_too_large_is_listed_unread(capsys, tmp_path, monkeypatch) -> None:
    run = write_run(tmp_path / "runs" / "big")
    config = (run / runs.CONFIG_FILE).read_text()
    monkeypatch.setattr(runs, "MAX_TOML_BYTES", len(config) + 10)
    (run / runs.CONFIG_FILE).write_text(config + "# " + "x" * 100 + "\n")
    assert runs.read_config_values(run) == {}
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui")
    assert code == 0 and err == ""
    assert "big: config.toml could not be read (damaged or cut short)" in out


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64])
def test_an_optimizer_state_that_is_no_float_is_refused_not_cast(dtype) -> None:
    from types import SimpleNamespace

    def setup() -> SimpleNamespace:
        model = _Tiny()
        optimizer = torch.optim.Adam(model.parameters())
        config = SimpleNamespace(optimizer="adam")
        return SimpleNamespace(model=model, optimizer=optimizer, scaler=None, config=config)

    saved = setup()
    saved.model.conv(torch.ones(1, 1, 3, 3)).sum().backward()
    saved.optimizer.step()
    checkpoint = {"model": saved.model.state_dict(), "optimizer": saved.optimizer.state_dict()}
    checkpoints.load_training_state(setup(), checkpoint, Path("c.pt"))  # (sound: it loads)
    first = next(iter(checkpoint["optimizer"]["state"].values()))
    first["exp_avg"] = first["exp_avg"].to(dtype)
    with _no_warnings(), pytest.raises(UsageError) as caught:
        checkpoints.load_training_state(setup(), checkpoint, Path("c.pt"))
    assert f"its exp_avg is {str(dtype).removeprefix('torch.')}, not float values" in str(
        caught.value
    )


# --- whole numbers too large for a float ------------------------------------------------------

HUGE = "1" + "0" * 400  # valid JSON; float() of it overflows


def test_finite_is_false_for_an_int_no_float_holds() -> None:
    assert text.finite(10**300) and not text.finite(10**400) and not text.finite(-(10**400))


def test_run_files_with_400_digit_numbers_are_listed(capsys, tmp_path: Path) -> None:
    done = write_run(tmp_path / "runs" / "done")
    summary = (done / runs.SUMMARY_FILE).read_text()
    (done / runs.SUMMARY_FILE).write_text(
        re.sub(r'"test_accuracy": [^,}]+', f'"test_accuracy": {HUGE}', summary)
    )
    live = write_run(tmp_path / "runs" / "live", "running")  # (its pid: this process)
    status = json.loads((live / runs.STATUS_FILE).read_text())
    text_status = json.dumps({**status, "pid_started": 0}).replace(
        '"pid_started": 0', f'"pid_started": {HUGE}'
    )
    (live / runs.STATUS_FILE).write_text(text_status)
    code, out, err = cli(capsys, tmp_path, "runs", "--no-ui")
    assert code == 0 and err == "", err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["done"][5] == "-"  # the test accuracy: unknown
    # the start time counts as absent: an old status, whose pid (pytest) is no cnn-tui process
    assert rows["live"][-1] == "interrupted"


def test_a_study_report_with_a_400_digit_importance_is_shown(capsys, tmp_path: Path) -> None:
    sweep_dir = _sweep(tmp_path)
    _rewrite(sweep_dir, lambda m: m.update(grid={}, search={"trials": 2, "space": {}}))
    (sweep_dir / "search.json").write_text(
        f'{{"importances": {{"lr": {HUGE}, "epochs": 0.5}}, "trials": {{"complete": 1}}}}'
    )
    code, out, err = cli(capsys, tmp_path, "sweep", "--no-ui", "--show", str(sweep_dir))
    assert code == 0 and "Traceback" not in err, err
    assert "epochs 0.50" in out and "lr" not in out.split("importance")[-1]
