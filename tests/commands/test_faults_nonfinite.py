"""Non-finite numbers (issue 23, case 10): a diverged run's checkpoint never gives a traceback,
numpy warnings, invalid JSON or a report of "test loss nan".

- JSON never holds NaN or Infinity: `fileio.json_text`, behind every `--json` and every run file;
- a model whose outputs are NaN: predict, inspect and eval say so in one line (exit 1);
- a run that diverges keeps its last finite checkpoint, its status says which, and eval, predict
  and inspect use those weights and name their epoch.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from inspect_fixtures import write_model_run
from PIL import Image

from cnn_tui import fileio
from cnn_tui.cli import main
from cnn_tui.commands import output
from cnn_tui.errors import RunError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import engine
from cnn_tui.training.runs import store as runs
from cnn_tui.training.tools.inspect import Stage

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAN_LINE = "the model's outputs are NaN"
TINY = dict(dataset="shapes", limit=120, batch_size=32, hidden_units=4, device="cpu")
# weight decay 1 at lr 10 multiplies the weights by -9 each step: epoch 1 ends finite, the
# weights overflow in epoch 2 (tests/training/test_engine.py's divergence)
DIVERGING = dict(TINY, epochs=5, optimizer="sgd", lr=10.0, momentum=0.0, weight_decay=1.0)


def strict_json(text: str) -> object:
    """Parse `text` as strict JSON: the bare NaN / Infinity Python writes by default fail."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`cnn-tui ARGV` in this process, numpy's warnings recorded: (exit code, stdout, stderr),
    with a warning as `WARNING: ...` on stderr as Python would print it."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(list(argv))
    out, err = capsys.readouterr()
    err += "".join(f"WARNING: {w.category.__name__}: {w.message}\n" for w in caught)
    return code, out, err


def assert_one_line(err: str, *names: str) -> None:
    assert "Traceback" not in err and "Warning" not in err, err
    assert err.count("\n") == 1 and err.startswith("cnn-tui: "), err
    for name in names:
        assert name in err, (name, err)


def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    return path


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory) -> Path:
    """A run whose checkpoint holds a NaN weight (the checkpoint of a run that diverged before
    the engine kept its last finite weights): every output is NaN."""
    run_dir = write_model_run(tmp_path_factory.mktemp("nonfinite") / "nan-run")
    checkpoint = torch.load(run_dir / runs.CHECKPOINT_FILE, weights_only=True)
    first = next(key for key in checkpoint["model"] if key.endswith("weight"))
    checkpoint["model"][first][0] = float("nan")
    torch.save(checkpoint, run_dir / runs.CHECKPOINT_FILE)
    return run_dir


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory) -> Path:
    """A real run trained by the engine that diverges in epoch 2."""
    run_dir = tmp_path_factory.mktemp("nonfinite") / "diverged"
    with pytest.raises(RunError, match="training diverged at epoch 2"):
        engine.train(TrainConfig(**DIVERGING), run_dir)
    return run_dir


# --- JSON never holds NaN or Infinity ------------------------------------------------------------


def test_json_text_writes_every_non_finite_number_as_null() -> None:
    data = {
        "nan": math.nan, "inf": math.inf, "-inf": -math.inf, "ok": 1.5, "n": 3, "flag": True,
        "np32": np.float32("nan"), "np64": np.float64(2.5), "npint": np.int64(7),
        "array": np.array([1.0, np.nan, np.inf]), "tensor": torch.tensor([np.nan, 2.0]),
        "nested": [{"deep": (math.nan, "text")}], "none": None,
    }  # fmt: skip
    assert strict_json(fileio.json_text(data)) == {
        "nan": None, "inf": None, "-inf": None, "ok": 1.5, "n": 3, "flag": True,
        "np32": None, "np64": 2.5, "npint": 7,
        "array": [1.0, None, None], "tensor": [None, 2.0],
        "nested": [{"deep": [None, "text"]}], "none": None,
    }  # fmt: skip


def test_json_output_and_run_files_hold_null_for_nan(tmp_path: Path, capsys) -> None:
    record = {"loss": math.nan, "values": [math.inf, 1.0]}
    output.write_json(record, output.STDOUT)
    output.write_json(record, str(tmp_path / "out.json"))
    lines = output.JsonLines(None, str(tmp_path / "lines.jsonl"))
    lines.write(record)
    lines.close()
    expected = {"loss": None, "values": [None, 1.0]}
    assert strict_json(capsys.readouterr().out) == expected
    assert strict_json((tmp_path / "out.json").read_text()) == expected
    assert strict_json((tmp_path / "lines.jsonl").read_text()) == expected

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.write_status(run_dir, "finished", best_val_acc=math.nan)
    runs.write_summary(run_dir, {"test_loss": math.nan, "history": [{"val_loss": math.inf}]})
    runs.write_eval(run_dir, {"test_loss": np.float32("nan")})
    log = runs.EventLog(run_dir)
    log.emit("epoch", val_loss=math.nan)
    log.close()
    assert strict_json((run_dir / runs.STATUS_FILE).read_text())["best_val_acc"] is None
    assert strict_json((run_dir / runs.SUMMARY_FILE).read_text())["history"] == [{"val_loss": None}]
    assert strict_json((run_dir / runs.EVAL_FILE).read_text()) == {"test_loss": None}
    (event,) = [strict_json(line) for line in (run_dir / runs.EVENTS_FILE).read_text().splitlines()]
    assert event["val_loss"] is None


# --- a model whose outputs are NaN: one line, exit 1 --------------------------------------------


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_predict_with_nan_outputs_says_so_in_one_line(nan_run, tmp_path, capsys, json_flag):
    argv = ["predict", str(nan_run), str(image_file(tmp_path)), "--device", "cpu", *json_flag]
    code, out, err = cli(capsys, *argv)
    assert code == 1
    assert_one_line(err, NAN_LINE, "lower --lr")
    assert out == ""  # no bare NaN, no half report


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_inspect_with_nan_outputs_says_so_without_numpy_warnings(nan_run, capsys, json_flag):
    code, out, err = cli(capsys, "inspect", str(nan_run), "--no-ui", "--device", "cpu", *json_flag)
    assert code == 1
    assert_one_line(err, NAN_LINE, str(nan_run / runs.CHECKPOINT_FILE))
    assert out == ""


def test_eval_with_nan_outputs_says_so_instead_of_test_loss_nan(nan_run, capsys) -> None:
    code, out, err = cli(capsys, "eval", str(nan_run), "--no-ui", "--device", "cpu")
    assert code == 1
    assert_one_line(err, NAN_LINE, "the weights of epoch 1")
    assert "nan" not in out
    assert not (nan_run / runs.EVAL_FILE).exists()  # no report of NaN metrics is saved


def test_layer_statistics_of_huge_or_infinite_maps_give_no_warnings() -> None:
    # a run near divergence: finite float32 maps whose sums overflow float32, and an inf
    maps = np.full((2, 4, 4), 3e38, dtype=np.float32)
    maps[1, 0, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = Stage("conv", "conv 3×3", maps).stats()
    assert stats["min"] == pytest.approx(3e38) and stats["channel_means"][0] == pytest.approx(3e38)
    assert math.isinf(stats["max"])  # and JSON writes it as null
    assert strict_json(fileio.json_text(stats))["max"] is None


# --- a diverged run keeps its last finite weights and says which ---------------------------------


def test_a_diverged_run_keeps_epoch_1s_finite_checkpoint_and_says_so(diverged_run) -> None:
    status = runs.read_status(diverged_run)
    assert status["status"] == "failed"
    assert status["diverged_epoch"] == 2
    assert (status["weights_file"], status["weights_epoch"]) == (runs.CHECKPOINT_FILE, 1)
    assert "checkpoint.pt keeps the weights of epoch 1" in status["message"]
    events, _ = runs.read_events(diverged_run)
    assert events[-1]["event"] == "failed" and events[-1]["diverged_epoch"] == 2
    checkpoint = torch.load(diverged_run / runs.CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(
        torch.isfinite(t).all() for t in checkpoint["model"].values() if t.is_floating_point()
    )


def test_eval_predict_inspect_of_a_diverged_run_use_and_name_epoch_1(
    diverged_run, tmp_path, capsys
):
    code, out, err = cli(capsys, "eval", str(diverged_run), "--no-ui", "--device", "cpu")
    assert code == 0, err
    assert "checkpoint after epoch 1 (the run diverged at epoch 2)" in out.splitlines()[0]
    code, out, err = cli(capsys, "eval", str(diverged_run), "--no-ui", "--device", "cpu", "--json")
    report = strict_json(out)
    assert (report["weights_epoch"], report["diverged_epoch"]) == (1, 2)

    note = f"cnn-tui: note: run {diverged_run} diverged at epoch 2; these are its last finite "
    note += "weights, epoch 1's (checkpoint.pt)\n"
    image = str(image_file(tmp_path))
    code, out, err = cli(capsys, "predict", str(diverged_run), image, "--device", "cpu", "--json")
    assert code == 0 and err == note
    assert strict_json(out)["images"] == 1
    code, out, err = cli(capsys, "inspect", str(diverged_run), "--no-ui", "--device", "cpu")
    assert code == 0 and err == note
    assert "predicted" in out.splitlines()[0]


def _nan_on_call(calls: int, real=engine.evaluate):
    """`engine.evaluate` whose `calls`-th call (a validation) gives a NaN loss."""
    seen = []

    def evaluate(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(1)
        if len(seen) == calls:
            result.loss = math.nan
        return result

    return evaluate


def test_a_nan_validation_loss_stops_the_run_before_it_saves_that_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "evaluate", _nan_on_call(2))
    with pytest.raises(RunError, match=r"diverged at epoch 2 \(validation loss is nan\)"):
        engine.train(TrainConfig(**TINY, epochs=3), tmp_path / "run")
    checkpoint = torch.load(tmp_path / "run" / runs.CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 1
    events, _ = runs.read_events(tmp_path / "run")
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1]  # no row of NaN


def test_with_early_stopping_the_best_epochs_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "evaluate", _nan_on_call(2))
    with pytest.raises(RunError, match="best.pt keeps the weights of epoch 1"):
        engine.train(TrainConfig(**TINY, epochs=3, early_stop=2), tmp_path / "run")
    status = runs.read_status(tmp_path / "run")
    assert (status["weights_file"], status["weights_epoch"]) == (runs.BEST_FILE, 1)


def test_a_run_diverging_in_epoch_1_says_it_saved_no_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "evaluate", _nan_on_call(1))
    with pytest.raises(RunError, match="diverged at epoch 1 .*; it saved no weights before"):
        engine.train(TrainConfig(**TINY, epochs=2), tmp_path / "run")
    assert not (tmp_path / "run" / runs.CHECKPOINT_FILE).exists()
    assert "weights_epoch" not in runs.read_status(tmp_path / "run")
