"""Data-parallel training (--devices N): torchrun, DistributedDataParallel, gloo on the CPU.

Four real launches of 2 processes (each costs a few seconds of start-up): a run started the way
the TUI starts one (`launcher.launch_run`, i.e. `cnn-tui train --no-ui --json` re-launching
itself under torchrun) ends with the weights of one process, in fp32 and under bf16 autocast (on a
CPU with bf16 in hardware), each to its tolerance; a SIGTERM stops both ranks with one
checkpoint, which one process resumes; a rank killed with SIGKILL fails the run with its name.
The rest runs in this process: usage errors, sharding, the launcher's command line and messages.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from cli_process import ENV
from conftest import wait_for

from cnn_tui import cli
from cnn_tui.commands.train_flags import config_flags, config_from_args
from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import checkpoints, distributed, engine, setup
from cnn_tui.training.loop.distributed import Nodes, RankFailure, Reported, World
from cnn_tui.training.runs import launcher
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import processes
from cnn_tui.training.system.devices import cpu_has_native_bf16
from cnn_tui.training.system.processes import ProcessId

# the3-cnn has no BatchNorm and no dropout: with SGD, 2 processes must end where 1 does, to the
# tolerance of the precision (distributed.WEIGHT_AGREEMENT). 400 images in batches of 33: 12
# batches split 17/16 between the ranks, then a last one of 4. One run of each precision.
EQUAL_RUN = TrainConfig(
    dataset="shapes", model="the3-cnn", optimizer="sgd", lr=0.05, limit=400, epochs=1,
    batch_size=33, device="cpu", devices="2", amp=False, log="csv",
)  # fmt: skip
SEVERAL_GPUS_DOC = Path(__file__).resolve().parents[2] / "docs" / "several-gpus.md"
# many small batches (2 x 100 of 4 images): a signal lands mid-run, the rest is quick to resume
SLOW = ["--dataset", "shapes", "--model", "simple-cnn", "--hidden-units", "4", "--limit", "400",
        "--epochs", "2", "--batch-size", "4", "--device", "cpu"]  # fmt: skip


def events_of(run_dir: Path) -> list[dict]:
    return runs.read_all_events(run_dir)[0]


def kinds(run_dir: Path) -> list[str]:
    return [event["event"] for event in events_of(run_dir)]


# --- real launches ------------------------------------------------------------------------------


def train_on_two_and_one(config: TrainConfig, tmp_path: Path) -> tuple[Path, Path, int]:
    """`config` trained on 2 processes, started as the TUI's Start does, and on one; the two
    run directories and the launcher's pid."""
    parallel, single = tmp_path / "two", tmp_path / "one"
    pid = launcher.launch_run(config, parallel)
    state, message = launcher.follow_run(
        parallel, lambda events, status: None, threading.Event(), pid=pid
    )
    assert (state, message) == ("finished", "finished"), launcher.output_tail(parallel)
    engine.train(config.replace(devices="1"), single)
    return parallel, single, pid


def assert_weights_agree(parallel: Path, single: Path, config: TrainConfig, precision: str):
    """The final weights of the two runs agree to `precision`'s tolerance: the largest difference
    of any weight at most WEIGHT_AGREEMENT[precision] × how far its tensor moved in training."""
    for run in (parallel, single):  # the precision the runs really trained in
        assert events_of(run)[0]["amp"] == {"fp32": None, "bf16": "bf16"}[precision]
    two = checkpoints.load_checkpoint(parallel / runs.CHECKPOINT_FILE)["model"]
    one = checkpoints.load_checkpoint(single / runs.CHECKPOINT_FILE)["model"]
    start = setup.prepare(config, torch.device("cpu"), setup.load_data(config), weights="none")
    start_weights = start.model.state_dict()
    assert two.keys() == one.keys()  # the unwrapped model (no DDP "module." prefix)
    tolerance = distributed.WEIGHT_AGREEMENT[precision]
    for name in one:
        moved = (one[name] - start_weights[name]).abs().max().item()
        assert moved > 0, name  # (every weight of the3-cnn trains)
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=tolerance * moved)


def test_two_processes_end_with_the_weights_of_one(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    parallel, single, pid = train_on_two_and_one(EQUAL_RUN, tmp_path)
    assert_weights_agree(parallel, single, EQUAL_RUN, "fp32")

    a, b = runs.read_summary(parallel), runs.read_summary(single)
    assert a["confusion_matrix"] == b["confusion_matrix"]  # evaluation sharded, then gathered
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6)
    assert a["history"][0]["val_acc"] == b["history"][0]["val_acc"]
    assert a["history"][0]["train_loss"] == pytest.approx(b["history"][0]["train_loss"], rel=1e-6)

    assert kinds(parallel).count("run_started") == 1  # rank 0 alone writes
    assert [k for k in kinds(parallel) if k not in ("batch", "system")] == kinds(single)[:1] + [
        "epoch", "evaluated", "finished"
    ]  # fmt: skip
    started = events_of(parallel)[0]
    assert started["world_size"] == 2 and started["backend"] == "gloo"
    assert [rank["rank"] for rank in started["ranks"]] == [0, 1]
    assert started["pid"] == pid == runs.read_status(parallel)["pid"]  # the launcher's pid
    # ... with its host and start time: what Stop checks before it signals
    recorded = ProcessId.from_record(runs.read_status(parallel))
    assert recorded.started is not None and recorded.same_as(launcher.child_identity(pid))
    assert started["batches_per_epoch"] == 13
    # --log csv: rank 0 alone logs (the other rank's rows would double the file)
    with (parallel / "csv" / "epoch.csv").open(newline="") as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["13"]
    # rank 0 measures the gradient DDP averaged: the whole batch's, as one process sees it
    last = [[e for e in events_of(run) if e["event"] == "batch"][-1] for run in (parallel, single)]
    assert last[0]["batch"] == last[1]["batch"] == 13  # (an epoch's last batch is always written)
    for key in ("grad_norm", "weight_norm"):
        assert last[0][key] == pytest.approx(last[1][key], rel=1e-4)
    # eval loads the checkpoint as before, in one process
    assert engine.evaluate_run(parallel, "cpu")["confusion_matrix"] == a["confusion_matrix"]


@pytest.mark.skipif(
    not cpu_has_native_bf16(), reason="this CPU has no bf16 in hardware: --amp trains in fp32 here"
)
def test_under_bf16_autocast_two_processes_end_near_the_weights_of_one(
    tmp_path, monkeypatch, one_torch_thread
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = EQUAL_RUN.replace(amp=True)
    parallel, single, _ = train_on_two_and_one(config, tmp_path)
    assert_weights_agree(parallel, single, config, "bf16")
    a, b = runs.read_summary(parallel), runs.read_summary(single)
    assert a["history"][0]["train_loss"] == pytest.approx(b["history"][0]["train_loss"], rel=1e-3)


def test_the_docs_quote_the_tolerance_of_each_precision() -> None:
    """docs/several-gpus.md's table of tolerances is WEIGHT_AGREEMENT."""
    page = SEVERAL_GPUS_DOC.read_text(encoding="utf-8")
    section = page.split("<!-- weight agreement -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines()[2:]]
    quoted = {row[0].strip().split()[0]: float(row[1].strip()) for row in rows}
    assert quoted == distributed.WEIGHT_AGREEMENT


def start_parallel(run_dir: Path, *flags: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "cnn_tui", "train", "--no-ui", "--json", "--devices", "2"]
    return subprocess.Popen(
        [*command, *SLOW, *flags, "--run-dir", str(run_dir)],
        env=ENV,
        cwd=run_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until_batch(process: subprocess.Popen[str]) -> dict:
    """The run_started event, once a batch event has followed it (training is under way)."""
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    started = None
    try:
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "run_started":
                started = event
            elif event["event"] == "batch":
                return started
    finally:
        watchdog.cancel()
    raise AssertionError(f"no batch event; stderr: {process.stderr.read()}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=150)
    return process.returncode, stderr


def test_sigterm_stops_every_rank_with_one_checkpoint_and_one_process_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    process = start_parallel(run_dir)
    read_until_batch(process)
    process.send_signal(signal.SIGTERM)  # what the TUI's Stop sends (status.json's pid)
    code, stderr = finish(process)
    assert code == 130, stderr
    status = runs.read_status(run_dir)
    assert status["status"] == "stopped"
    assert kinds(run_dir).count("stopped") == 1 and "failed" not in kinds(run_dir)
    checkpoint = checkpoints.load_checkpoint(run_dir / runs.CHECKPOINT_FILE)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (status["epoch"], status["batch"])

    capsys.readouterr()
    argv = ["train", "--no-ui", "--json", "--resume", str(run_dir), "--devices", "1"]
    assert cli.main(argv) == 0
    assert runs.read_status(run_dir)["status"] == "finished"
    assert runs.read_config(run_dir).devices == "1"
    assert kinds(run_dir).count("epoch") == 2 and kinds(run_dir).count("run_started") == 2


def test_a_killed_rank_fails_the_run_with_its_name(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    process = start_parallel(run_dir)
    started = read_until_batch(process)
    rank1 = started["ranks"][1]["pid"]
    os.kill(rank1, signal.SIGKILL)  # a real death: nothing of rank 1 gets to say goodbye
    code, stderr = finish(process)
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        f"cnn-tui: rank 1 (pid {rank1}) was killed by SIGKILL; the run stopped with it"
    )
    status = runs.read_status(run_dir)
    assert status["status"] == "failed" and f"rank 1 (pid {rank1})" in status["message"]
    assert kinds(run_dir).count("failed") == 1 and "stopped" not in kinds(run_dir)
    rank0 = ProcessId.from_record(started["ranks"][0])  # (pid, host and start time)
    wait_for(lambda: not processes.alive(rank0), 10, "rank 0 to end too")


# --- usage errors: one line, exit 2, nothing launched or written -------------------------------


def fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(
    ("flags", "gpus", "expected"),
    [
        (["--devices", "0"], 0, "--devices: expected a number of processes from 1 to 1024"),
        (["--devices", "all", "--device", "cpu"], 0, "--devices all means every GPU"),
        (["--devices", "all"], 0, "--devices all means every GPU"),  # auto, no GPU: the CPU
        (["--devices", "3", "--device", "cuda"], 2, "--devices 3: this machine has 2 GPUs"),
        (["--devices", "2", "--device", "cuda:1"], 2, "--device cuda:1 names one GPU"),
        (["--devices", "2", "--device", "cpu", "--sync-bn"], 0, "--sync-bn needs GPUs"),
        (["--devices", "2", "--device", "cpu", "--batch-size", "3"], 0, "--batch-size 3 is too"),
        (["--devices", "2", "--nnodes", "2"], 0, "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
        (["--devices", "2", "--nnodes", "2", "--rdzv-endpoint", "h:1"], 0, "needs --run-dir"),
        (["--node-rank", "1"], 0, "--node-rank and --rdzv-endpoint need --nnodes 2"),
    ],
)
def test_usage_errors_are_one_line(flags, gpus, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if gpus:
        fake_gpus(monkeypatch, gpus)
    assert cli.main(["train", "--no-ui", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnn-tui: error: ") and expected in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_devices_all_counts_the_gpus(monkeypatch):
    fake_gpus(monkeypatch, 4)
    config = TrainConfig(devices="all", device="cuda")
    assert distributed.processes_per_node(config) == 4
    assert distributed.processes_per_node(config.replace(device="auto", devices="2")) == 2
    assert distributed.processes_per_node(TrainConfig(device="cpu", devices="3")) == 3


def test_resume_may_change_the_number_of_processes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    runs.write_config(run_dir, EQUAL_RUN)
    runs.write_status(run_dir, "stopped", process=ProcessId(1))
    argv = ["train", "--no-ui", "--resume", str(run_dir), "--devices", "2", "--batch-size", "8"]
    assert cli.main(argv) == 2
    assert "only --epochs, --device, --devices and --log" in capsys.readouterr().err


# --- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size"), [(33, 2), (4, 2), (10, 3), (2, 4), (0, 2)])
def test_shards_split_a_batch_in_order(n, size):
    index = torch.arange(n)
    parts = [World(rank, size).shard(index) for rank in range(size)]
    assert torch.equal(torch.cat(parts), index)  # every image once, in the batch's order
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [len(p) for p in parts] == [len(p) for p in index.tensor_split(size)]
    assert World().shard(index) is index


def test_a_last_batch_too_small_for_every_rank_is_left_out():
    assert setup.batches_per_epoch(400, 33) == setup.batches_per_epoch(400, 33, 2) == 13
    assert setup.batches_per_epoch(397, 33, 2) == 12  # 1 image left: BatchNorm needs 2 a rank
    assert setup.batches_per_epoch(399, 33, 2) == 12 and setup.batches_per_epoch(399, 33) == 13


def test_torchrun_command_line():
    argv = distributed.torchrun_argv(2, Nodes(), ["train", "--no-ui"])
    assert argv[:2] == ["--nproc-per-node=2", "--standalone"]
    assert argv[-5:] == ["--module", "--", "cnn_tui", "train", "--no-ui"]
    multi = distributed.torchrun_argv(8, Nodes(2, 1, "gpu1:29500"), ["train", "--log=csv"])
    assert multi[:4] == ["--nproc-per-node=8", "--nnodes=2", "--node-rank=1",
                         "--rdzv-endpoint=gpu1:29500"]  # fmt: skip
    assert "--standalone" not in multi
    from torch.distributed.run import parse_args

    parsed = parse_args(multi)  # torchrun's own parser reads it
    assert (parsed.nnodes, parsed.node_rank, parsed.module) == ("2", 1, True)
    assert parsed.training_script == "cnn_tui"
    assert parsed.training_script_args == ["train", "--log=csv"]  # (a prefix of --log-dir)


def test_every_setting_reaches_the_ranks():
    import argparse

    from cnn_tui.commands import train_flags as train_args

    config = TrainConfig(
        lr=0.1, limit=400, devices="2", data_dir="-odd name", amp=False, log="wandb,csv"
    )
    parser = argparse.ArgumentParser()
    train_args.add_arguments(parser)
    assert config_from_args(parser.parse_args(config_flags(config))) == config


def test_the_failure_message_names_the_rank_that_failed():
    killed = RankFailure(1, -9, 42, "", "")  # no message of its own (`_rank_message`)
    victim = RankFailure(0, 1, 41, "", "")
    said = RankFailure(2, 1, 43, "", "RunError: no such file")
    assert distributed.failure_message([victim, said, killed]) == (
        "rank 2 (pid 43) failed: RunError: no such file"
    )
    assert "rank 1 (pid 42) was killed by SIGKILL" in distributed.failure_message([victim, killed])
    assert "rank 0 (pid 41) exited with code 1" in distributed.failure_message([victim])


def test_only_what_a_rank_wrote_counts_as_its_message(tmp_path):
    """torchrun fills in a generic line for a rank that left no error file: not a reason."""
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    silent = ProcessFailure(0, 41, 1, str(tmp_path / "none.json"))
    assert silent.message.startswith("To enable traceback")
    assert distributed._rank_message(silent) == ""
    killed = ProcessFailure(1, 42, -9, str(tmp_path / "none.json"))
    assert killed.message.startswith("Signal 9")
    assert distributed._rank_message(killed) == ""
    written = tmp_path / "error.json"
    written.write_text(json.dumps({"message": "RunError: no such file", "timestamp": 1}))
    said = ProcessFailure(1, 42, 1, str(written))
    assert distributed._rank_message(said) == "RunError: no such file"


class TwoRanks(World):
    """Rank `rank` of two whose gather returns what the ranks said (no process group)."""

    said: tuple = ()

    def gather(self, value):
        return [value if rank == self.rank else self.said[rank] for rank in range(self.size)]


def test_a_failure_on_one_rank_fails_every_rank():
    def fails():
        raise UsageError("data missing")

    on_zero = TwoRanks(0, 2)
    object.__setattr__(on_zero, "said", (None, ("usage", "data missing")))
    with pytest.raises(UsageError, match="^rank 1: data missing$"):
        on_zero.everywhere(lambda: 1)  # rank 0 records it
    on_one = TwoRanks(1, 2)
    object.__setattr__(on_one, "said", (("ok", None), None))
    with pytest.raises(Reported) as caught:
        on_one.everywhere(fails)  # the failing rank ends quietly with exit 2: rank 0 says why
    assert caught.value.exit_code == 2
    object.__setattr__(on_one, "said", (("run", "out of memory"), None))
    with pytest.raises(Reported):
        on_one.everywhere(lambda: 1)
    assert World().everywhere(lambda: 7) == 7
    with pytest.raises(RunError, match="boom"):
        World().from_main(lambda: (_ for _ in ()).throw(RunError("boom")))
