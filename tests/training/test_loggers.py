"""`--log tensorboard,csv,wandb`: the setting, the events-to-loggers rules, the CSV files, and a
real run whose files are read back with each library's own reader (TensorBoard's
EventAccumulator, `wandb leet inspect --json` on the offline run's .wandb file, the csv module).
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import run_cnn_tui

from cnn_tui import cli
from cnn_tui.commands import train_flags
from cnn_tui.errors import UsageError
from cnn_tui.training import loggers
from cnn_tui.training.config import LOGGERS, ConfigError, TrainConfig, parse_field
from cnn_tui.training.loggers import csv_logger
from cnn_tui.training.loggers.base import Evaluated, RunLogger, RunStart, Scalars, scalars
from cnn_tui.training.loggers.events import RunLoggers
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs import sweeps

# --- the setting --------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_flags.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_log_is_a_comma_list_or_a_repeated_flag_or_a_toml_array(tmp_path):
    assert TrainConfig().log is None and TrainConfig().loggers == ()
    config = train_flags.config_from_args(_args("--log", "tensorboard, csv", "--log", "csv"))
    assert config.log == "tensorboard,csv" and config.loggers == ("tensorboard", "csv")
    path = tmp_path / "run.toml"
    path.write_text('log = ["wandb", "csv"]\n')
    from_file = train_flags.config_from_args(_args("--config", str(path)))
    assert from_file.loggers == ("wandb", "csv")
    assert train_flags.config_from_args(_args("--config", str(path), "--log", "none")).log is None
    # what a run's config.toml keeps reads back the same, and the ranks' command line too
    assert TrainConfig.from_mapping({"log": "wandb,csv"}).to_toml().count('log = "wandb,csv"') == 1
    assert train_flags.config_from_args(_args(*train_flags.config_flags(from_file))) == from_file


@pytest.mark.parametrize(
    "text, says",
    [
        ("tensorbord", "'tensorbord' is not one of tensorboard, csv, wandb"),
        ("none,csv", "'none' is not one of"),
        ("csv;wandb", "'csv;wandb' is not one of"),
    ],
)
def test_a_bad_logger_name_is_one_line_naming_the_choices(text, says):
    with pytest.raises(ConfigError, match=says) as caught:
        parse_field("log", text)
    assert caught.value.field == "log" and "\n" not in str(caught.value)


def test_every_logger_name_has_a_logger():
    assert tuple(loggers.KINDS) == LOGGERS


def test_a_missing_extra_is_exit_2_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake = loggers.LoggerKind("tensorboard", "tensorboard_logger", "no_such_package_here")
    monkeypatch.setitem(loggers.KINDS, "tensorboard", fake)
    argv = ["train", "--no-ui", "--dataset", "shapes", "--log", "csv,tensorboard"]
    assert cli.main([*argv, "--run-dir", "r"]) == 2
    err = capsys.readouterr().err
    assert "--log tensorboard needs the no_such_package_here package: pip install " in err
    assert "pip install 'cnn-tui[tensorboard]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()
    with pytest.raises(UsageError, match="pip install"):  # a sweep says so before it starts
        sweeps.make_plan(TrainConfig(log="tensorboard"), {"lr": [0.1, 0.01]}, "cpu")


def test_a_sweep_does_not_vary_the_loggers():
    with pytest.raises(UsageError, match="--log is not a hyperparameter"):
        sweeps.parse_grid(["log=csv,tensorboard"])


# --- from events to loggers ------------------------------------------------------------------


def test_scalars_are_every_finite_number_of_an_event_flattened():
    event = {
        "event": "system",
        "time": 5.0,
        "epoch": 2,
        "cpu_percent": 50,
        "host": "box",
        "busy": True,
        "gpu_mem_mb": None,
        "nan": math.nan,
        "parameters": {"total": 10, "trainable": 4},
        "gpus": [{"util_percent": 80.0, "processes": [{"pid": 7}]}, "not a dict"],
    }
    assert scalars(event) == {
        "cpu_percent": 50.0,
        "parameters/total": 10.0,
        "parameters/trainable": 4.0,
        "gpus/0/util_percent": 80.0,
    }


class Recorder(RunLogger):
    """A logger that keeps what it is told; `fail_on` makes one call raise."""

    def __init__(self, run_dir: Path, fail_on: str = "") -> None:
        super().__init__(run_dir)
        self.calls: list[tuple[str, object]] = []
        self.fail_on = fail_on

    def _record(self, what: str, value: object) -> None:
        if what == self.fail_on:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.calls.append((what, value))

    def start(self, run: RunStart) -> None:
        self._record("start", run)

    def log_scalars(self, scalars: Scalars) -> None:
        self._record("scalars", scalars)

    def log_test(self, result: Evaluated) -> None:
        self._record("test", result)

    def finalize(self, status: str) -> None:
        self._record("finalize", status)

    def close(self) -> None:
        self._record("close", None)


def _started(**extra) -> dict:
    return {
        "event": "run_started",
        "time": 100.0,
        "config": TrainConfig().to_dict(),
        "classes": ["a", "b"],
        "batches_per_epoch": 3,
        "start_epoch": 1,
        "start_batch": 0,
        **extra,
    }


def _batch(epoch: int, batch: int, time: float, loss: float = 1.0) -> dict:
    return {
        "event": "batch",
        "time": time,
        "epoch": epoch,
        "batch": batch,
        "batches": 3,
        "loss": loss,
    }


def _feed(events: list[dict], **make) -> tuple[list[Recorder], list[str]]:
    made: list[Recorder] = []
    notes: list[str] = []

    def build(name: str, run_dir: Path) -> Recorder:
        made.append(Recorder(run_dir, **make.get(name, {})))
        made[-1].name = name
        return made[-1]

    hub = RunLoggers(("csv", "wandb"), Path("run"), notes.append, make=build)
    for event in events:
        hub.event(event)
    hub.close()
    return made, notes


def test_events_become_logger_calls_at_their_global_step():
    test = {
        "event": "evaluated",
        "time": 120.0,
        "test_loss": 0.5,
        "test_accuracy": 0.75,
        "classes": ["a", "b"],
        "confusion_matrix": [[3, 1], [0, 4]],
        "per_class": [{"class": "a", "f1": 0.8}, {"class": "b", "f1": 0.9}],
    }
    events = [
        {"event": "batch", "time": 99.0, "epoch": 1, "batch": 1, "loss": 9.0},  # before: ignored
        _started(),
        *(_batch(1, b, 100.0 + b) for b in (1, 2, 3)),
        {"event": "epoch", "time": 104.0, "epoch": 1, "epochs": 2, "val_acc": 0.5, "lr": 0.1},
        _batch(2, 1, 105.0),
        {"event": "system", "time": 105.5, "cpu_percent": 30.0, "host": "box"},
        test,
        {"event": "finished", "time": 121.0},
    ]
    [recorder, _], notes = _feed(events)
    assert notes == []
    kinds = [what for what, _ in recorder.calls]
    assert kinds == ["start", *["scalars"] * 6, "scalars", "test", "finalize", "close"]
    start = recorder.calls[0][1]
    assert start.step == 0 and not start.resumed and start.classes == ("a", "b")
    points = [value for what, value in recorder.calls if what == "scalars"]
    assert [(p.group, p.step) for p in points] == [
        ("batch", 1), ("batch", 2), ("batch", 3), ("epoch", 3), ("batch", 4), ("system", 4),
        ("test", 4),
    ]  # fmt: skip
    assert points[0].values == {"loss": 1.0} and points[0].index == {"epoch": 1, "batch": 1}
    assert points[3].values == {"val_acc": 0.5, "lr": 0.1} and points[3].index == {"epoch": 1}
    assert points[5].values == {"cpu_percent": 30.0}
    assert points[6].values == {"loss": 0.5, "accuracy": 0.75}  # the tables are log_test's
    result = recorder.calls[-3][1]
    assert result.confusion == [[3, 1], [0, 4]] and result.metrics["accuracy"] == 0.75
    assert result.step == 4 and result.per_class[1]["f1"] == 0.9
    assert recorder.calls[-2] == ("finalize", "finished")


def test_a_resumed_run_continues_its_steps():
    events = [_started(resumed=True, start_epoch=2, start_batch=1), _batch(2, 2, 101.0)]
    [recorder, _], _ = _feed(events)
    assert recorder.calls[0][1].step == 4 and recorder.calls[0][1].resumed
    assert recorder.calls[1][1].step == 5


def test_fast_batches_are_thinned_to_the_mean_loss_and_keep_each_epochs_end():
    events = [_started(), _batch(1, 1, 100.00, 1.0), _batch(1, 2, 100.01, 2.0)]
    events += [_batch(1, 3, 100.02, 6.0), _batch(2, 1, 100.03, 5.0)]
    [recorder, _], _ = _feed(events)
    points = [value for what, value in recorder.calls if what == "scalars"]
    # the first batch; then the epoch's last, with the mean loss of the two batches since
    assert [(p.step, p.values["loss"]) for p in points] == [(1, 1.0), (3, 4.0)]


def test_a_failing_logger_is_dropped_with_one_warning_and_the_others_go_on():
    events = [_started(), _batch(1, 1, 101.0), _batch(1, 2, 102.0), {"event": "finished"}]
    [failing, healthy], notes = _feed(events, csv={"fail_on": "scalars"})
    assert len(notes) == 1
    assert notes[0].startswith(
        "warning: the csv logger failed to log (OSError: [Errno 28] No space"
    )
    assert "training goes on" in notes[0]
    assert [what for what, _ in failing.calls] == ["start", "close"]  # closed once, at once
    assert [what for what, _ in healthy.calls].count("scalars") == 2


def test_a_logger_that_cannot_start_leaves_the_run_to_the_others():
    notes: list[str] = []

    def build(name: str, run_dir: Path) -> RunLogger:
        if name == "wandb":
            raise ImportError("wandb is broken")
        return Recorder(run_dir)

    hub = RunLoggers(("wandb", "csv"), Path("run"), notes.append, make=build)
    hub.event(_started())
    hub.event(_batch(1, 1, 101.0))
    assert len(hub.loggers) == 1 and len(notes) == 1
    assert "the wandb logger could not start (ImportError: wandb is broken)" in notes[0]


# --- the CSV files ----------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _start(tmp_path: Path, resumed: bool = False, step: int = 0) -> RunStart:
    return RunStart(tmp_path, {}, ("a", "b"), resumed, step, 3)


def test_csv_files_widen_for_new_numbers_and_survive_a_cut_short_row(tmp_path):
    logger = csv_logger.Logger(tmp_path)
    logger.start(_start(tmp_path))
    logger.log_scalars(Scalars("batch", 1, 10.0, {"loss": 2.5}, {"epoch": 1, "batch": 1}))
    logger.log_scalars(Scalars("batch", 2, 11.0, {"loss": 2.0, "grad_norm": 3.0}, {"epoch": 1}))
    path = tmp_path / "csv" / "batch.csv"
    rows = _rows(path)
    assert list(rows[0]) == ["step", "time", "epoch", "batch", "loss", "grad_norm"]
    assert rows[0]["grad_norm"] == "" and rows[1]["grad_norm"] == "3"
    assert [len(row) for row in csv.reader(path.open())] == [6, 6, 6]  # padded, not ragged
    logger.close()
    with path.open("a") as handle:  # a trainer killed in the middle of a row
        handle.write("3,12.0,1,3,1.")
    resumed = csv_logger.Logger(tmp_path)
    resumed.start(_start(tmp_path, resumed=True, step=1))  # continues after step 1
    resumed.log_scalars(Scalars("batch", 2, 13.0, {"loss": 1.5}, {"epoch": 1, "batch": 2}))
    resumed.close()
    rows = _rows(path)
    assert [(row["step"], row["loss"]) for row in rows] == [("1", "2.5"), ("2", "1.5")]


def test_csv_test_tables(tmp_path):
    logger = csv_logger.Logger(tmp_path)
    logger.start(_start(tmp_path))
    per_class = [{"class": "a", "precision": 1.0, "recall": 0.75, "f1": 0.86, "support": 4}]
    logger.log_test(Evaluated({"accuracy": 0.8}, [[3, 1], [0, 4]], ("a", "b"), per_class, 6))
    with (tmp_path / "csv" / csv_logger.CONFUSION_FILE).open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["true \\ predicted", "a", "b"], ["a", "3", "1"], ["b", "0", "4"]
        ]  # fmt: skip
    assert _rows(tmp_path / "csv" / csv_logger.PER_CLASS_FILE)[0]["recall"] == "0.75"


def test_a_full_disk_mid_run_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    notes: list[str] = []
    hub = RunLoggers(("csv",), tmp_path, notes.append)
    hub.event(_started())
    hub.event(_batch(1, 1, 101.0))

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv_logger.os, "write", full)
    for b in (2, 3):
        hub.event(_batch(1, b, 101.0 + b))
    hub.event({"event": "finished"})
    hub.close()
    assert len(notes) == 2 and "csv: CSV files in" in notes[0]
    assert "the csv logger failed to log (OSError: [Errno 28] No space left" in notes[1]
    assert len(_rows(tmp_path / "csv" / "batch.csv")) == 1


# --- a real run, read back with each library's own reader ----------------------------------------

FAST = ["--dataset", "shapes", "--limit", "120", "--batch-size", "32", "--hidden-units", "4",
        "--device", "cpu"]  # fmt: skip


def _wandb_records(wandb_file: Path) -> list[dict]:
    """The records of an offline run's .wandb file, as W&B's own reader prints them."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(wandb_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B offline (the default: WANDB_MODE unset), its caches and settings in the test's folder."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def test_a_run_and_its_resume_read_back_by_tensorboard_wandb_and_csv(tmp_path, wandb_env):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    first = run_cnn_tui(
        "train", "--no-ui", *FAST, "--epochs", "1", "--run-dir", "r", "--log", "tensorboard,csv",
        "--log", "wandb", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "wandb: offline run in r/wandb/offline-run-" in first.stderr
    assert "warning" not in first.stderr
    second = run_cnn_tui(
        "train", "--no-ui", "--resume", "r", "--epochs", "2", cwd=tmp_path, timeout=300
    )
    assert second.returncode == 0, second.stderr
    run = tmp_path / "r"
    summary = runs.read_summary(run)
    events, _ = runs.read_all_events(run)
    per_epoch = next(e for e in events if e["event"] == "run_started")["batches_per_epoch"]
    steps = 2 * per_epoch

    # TensorBoard: one folder, the steps continuing across the two sessions
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    logged = [e.step for e in acc.Scalars("batch/loss")]  # (fast batches thinned; not ends)
    assert logged == sorted(set(logged)) and {1, per_epoch, steps} <= set(logged)
    assert logged[-1] == steps
    epochs = {e.step: e.value for e in acc.Scalars("epoch/val_acc")}
    assert epochs == pytest.approx({per_epoch: summary["history"][0]["val_acc"],
                                    steps: summary["history"][1]["val_acc"]})  # fmt: skip
    assert acc.Scalars("test/accuracy")[-1].value == pytest.approx(summary["test_accuracy"])
    assert acc.Scalars("test/accuracy")[-1].step == steps
    hparams = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["lr"].number_value == pytest.approx(1e-3)
    assert start.session_start_info.hparams["log"].string_value == "tensorboard,csv,wandb"
    assert acc.Images("test/confusion_matrix")[-1].width > 100
    assert "test/confusion_matrix/text_summary" in acc.Tags()["tensors"]

    # W&B: two offline sessions of one run id, the second continuing the steps
    files = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and len({path.name for path in files}) == 1  # the same id
    sessions = [_wandb_records(path) for path in files]
    config = next(r for r in sessions[0] if r["type"] == "run")["run"]["config"]["update"]
    assert config["model"] == "simple-cnn" and config["epochs"] == 1
    history = [r["history"] for s in sessions for r in s if r["type"] == "history"]
    assert [h["step"]["num"] for h in history if "batch/loss" in h["item"]] == logged
    last = history[-1]["item"]
    assert last["test/accuracy"] == pytest.approx(summary["test_accuracy"])
    assert last["test/confusion_matrix_table._type"] == "table-file"
    assert [r["exit"]["exit_code"] for s in sessions for r in s if r["type"] == "exit"] == [0, 0]
    table = next((run / "wandb").glob("offline-run-*/files/media/table/test/confusion_matrix*"))
    cells = json.loads(table.read_text())["data"]
    classes = summary["classes"]
    assert [classes[0], classes[0], summary["confusion_matrix"][0][0]] in cells

    # CSV: appended, rows per step, the test tables as summary.json has them
    batch_rows = _rows(run / "csv" / "batch.csv")
    assert [int(row["step"]) for row in batch_rows] == logged
    assert [int(row["epoch"]) for row in _rows(run / "csv" / "epoch.csv")] == [1, 2]
    with (run / "csv" / csv_logger.CONFUSION_FILE).open(newline="") as handle:
        matrix = [[int(n) for n in row[1:]] for row in list(csv.reader(handle))[1:]]
    assert matrix == summary["confusion_matrix"]
    test_rows = _rows(run / "csv" / "test.csv")
    assert float(test_rows[-1]["accuracy"]) == pytest.approx(summary["test_accuracy"])


def test_wandb_mode_is_the_users_when_set(tmp_path, wandb_env, monkeypatch):
    """WANDB_MODE=disabled (the user's choice) wins over our offline default: nothing written."""
    from cnn_tui.training.loggers import wandb_logger

    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = wandb_logger.Logger(tmp_path)
    logger.start(_start(tmp_path))
    logger.log_scalars(Scalars("batch", 1, 10.0, {"loss": 2.5}))
    logger.finalize("finished")
    logger.close()
    assert not list((tmp_path / "wandb").glob("offline-run-*"))
    assert wandb_logger.run_id(tmp_path / "wandb") is not None
    (tmp_path / "wandb" / wandb_logger.ID_FILE).write_text("../../etc\n")  # not an id: a new one
    assert wandb_logger.run_id(tmp_path / "wandb") is None


def test_no_logger_no_files(tmp_path):
    hub = RunLoggers((), tmp_path, print)
    hub.event(_started())
    hub.close()
    assert os.listdir(tmp_path) == []


def test_a_logger_folder_that_is_a_link_is_not_written_into(tmp_path):
    """A run folder from someone else leads nowhere else: RUN/csv linked to elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "csv").symlink_to(elsewhere)
    notes: list[str] = []
    hub = RunLoggers(("csv",), run, notes.append)
    hub.event(_started())
    hub.event(_batch(1, 1, 101.0))
    hub.close()
    assert list(elsewhere.iterdir()) == []
    assert len(notes) == 1 and "is not a folder of the run (a link or a file)" in notes[0]
