"""`cnn-tui export`: TorchScript, torch.export and ONNX files that agree with the checkpoint."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from inspect_fixtures import write_model_run

from cnn_tui import cli
from cnn_tui.training.tools import export
from cnn_tui.training.tools.run_model import load_run_model, load_test_split

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_model_run(tmp_path_factory.mktemp("export") / "run", model="the3-cnn")


@pytest.fixture(scope="module")
def reference(run_dir):
    """The checkpoint's model and normalised test images (not through export.py)."""
    run = load_run_model(run_dir, "cpu")
    images, _ = load_test_split(run)
    x = run.prep(torch.as_tensor(images[:40])).contiguous()
    with torch.no_grad():
        return x, run.model(x).numpy()


def load_and_run(fmt: str, path, x: torch.Tensor) -> np.ndarray:
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x).detach().numpy()
    if fmt == "torch-export":
        return torch.export.load(str(path)).module()(x).detach().numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


FORMATS = [
    "torchscript",
    "torch-export",
    pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="needs cnn-tui[onnx]")),
]


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_models_agree_with_the_checkpoint(run_dir, reference, tmp_path, capsys, fmt):
    target = tmp_path / f"model.{fmt}"
    assert cli.main(["export", str(run_dir), "--format", fmt, "-o", str(target)]) == 0
    out = capsys.readouterr().out
    x, expected = reference
    checked = min(export.CHECK_IMAGES, len(load_test_split(load_run_model(run_dir, "cpu"))[1]))
    assert out.startswith(f"wrote {target}") and f"checked on {checked} test images" in out
    np.testing.assert_allclose(load_and_run(fmt, target, x), expected, rtol=1e-4, atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left
    assert cli.main(["export", str(run_dir), "--format", fmt, "-o", str(target)]) == 2
    assert "already exists: pass --force" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_metadata_says_how_to_feed_the_file(run_dir, tmp_path):
    target = tmp_path / "m.pt"
    assert cli.main(["export", str(run_dir), "--format", "torchscript", "-o", str(target)]) == 0
    files = {export.METADATA_FILE: ""}
    torch.jit.load(str(target), _extra_files=files)
    meta = json.loads(files[export.METADATA_FILE])
    assert (
        meta["input"] == [3, 32, 32] and meta["mean"] == [0.45] * 3 and len(meta["classes"]) == 10
    )


def test_an_export_that_disagrees_is_not_written(run_dir, tmp_path, monkeypatch):
    real = export.export_torchscript

    def off_by_a_bit(model, example, meta):
        data, run = real(model, example, meta)
        return data, lambda x: run(x) + 0.01

    monkeypatch.setitem(export.EXPORTERS, "torchscript", off_by_a_bit)
    run = load_run_model(run_dir, "cpu")
    with pytest.raises(export.RunError, match="does not agree with the run's model"):
        export.export_run(run, "torchscript", tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


def test_without_the_onnx_extra_one_line_names_the_install(run_dir, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else real(name, *a),
    )
    assert (
        cli.main(["export", str(run_dir), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "pip install 'cnn-tui[onnx]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_bad_export_arguments(run_dir, tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope"), "--format", "torchscript",
                     "-o", str(tmp_path / "x.pt")]) == 2  # fmt: skip
    assert "is not a run directory" in capsys.readouterr().err
    assert cli.main(["export", str(run_dir), "--format", "torchscript", "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", str(run_dir), "--format", "tflite"])
    assert exit_info.value.code == 2
