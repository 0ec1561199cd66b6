"""Sweeps (`cnn-tui sweep`, `cnn_tui.training.runs.sweeps`, `cnn_tui.ui.training.sweep`).

The grid, the plan and the table are tested in this process without training. The runs are real
but tiny (`--limit 40`, one or two epochs, `--device cpu`): a foreground `--no-ui` sweep, a
resume of a sweep whose runs were left finished / stopped / pending, and a background sweep
stopped by SIGTERM and resumed. UI tests read sweep folders written by hand (`write_run`).
Nothing sleeps for a fixed time as an assertion: waits poll a condition with a timeout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_process import run_cnn_tui
from conftest import wait_for, wait_until
from textual.widgets import Button, DataTable, Input, Static
from train_ui_fixtures import run_async, write_run

from cnn_tui import cli
from cnn_tui.commands import sweep as sweep_command
from cnn_tui.commands import sweep_report
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs import sweeps
from cnn_tui.training.system import processes
from cnn_tui.training.system.processes import ProcessId
from cnn_tui.ui.app import CnnTuiApp, open_screen_for
from cnn_tui.ui.training.charts import MetricChart
from cnn_tui.ui.training.form import TrainFormScreen
from cnn_tui.ui.training.sweep import SweepFormScreen, SweepScreen, SweepSettings

TINY = ["--dataset", "shapes", "--limit", "40", "--batch-size", "8", "--hidden-units", "2",
        "--device", "cpu"]  # fmt: skip


def cnn_tui(*argv: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cnn_tui(*argv, cwd=cwd, timeout=timeout)


def table_lines(stdout: str) -> list[str]:
    """The comparison table's rows (after its header line, up to the 'sorted by' line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#  run"))
    end = next(i for i, line in enumerate(lines) if line.startswith("sorted by"))
    return lines[start + 1 : end]


def cells(line: str) -> list[str]:
    """A table row's cells after the best-run mark: #, run, grid values, metrics, status."""
    tokens = line.split()
    return tokens[1:] if tokens[0] == "*" else tokens


# --- the grid ---------------------------------------------------------------------------------


def test_parse_grid_types_order_and_names() -> None:
    grid = sweeps.parse_grid(["epochs=20,50,100", "batch-size=32,64", "--amp=on,off", "lr=1e-3"])
    assert grid == {
        "epochs": [20, 50, 100],
        "batch_size": [32, 64],
        "amp": [True, False],
        "lr": [0.001],
    }
    assert list(grid) == ["epochs", "batch_size", "amp", "lr"]


BAD_GRIDS = [
    (["--grid", "foo=1,2"], "unknown setting 'foo'"),
    (["--grid", "epochs=0,2"], "--epochs must be at least 1"),
    (["--grid", "lr=0.1,abc"], "--lr must be a number"),
    (["--grid", "model=simple-cnn,vgg"], "--model: unknown model"),
    (["--grid", "epochs="], "no values"),
    (["--grid", "epochs=1,,2"], "an empty value"),
    (["--grid", "epochs"], "expected KEY=V1,V2"),
    (["--grid", "epochs=1,1"], "twice"),
    (["--grid", "lr=0.001,1e-3"], "twice"),
    (["--grid", "epochs=1,2", "--grid", "epochs=3"], "already in the grid"),
    (["--grid", "epochs=1,2", "--grid", "Epochs=3"], "unknown setting"),
    (["--grid", "device=cpu,cuda"], "places its runs on the devices itself"),
    (["--epochs", "2", "--grid", "epochs=1,2"], "given both as a flag and in --grid"),
    (["--grid", "seed=1,2,3,4,5,6,7,8,9", "--grid", "epochs=1,2,3,4,5,6,7,8"], "72 runs"),
    ([], "a sweep needs a grid"),
    (["--grid", "dataset=shapes,imagefolder"], "run 2 of the grid (dataset=imagefolder)"),
    (["--grid", "epochs=1,2", "--device", "gpu"], "expected auto, cpu, cuda or cuda:N"),
    (["--grid", "epochs=1,2", "--device", "cpu,cpu"], "twice"),
    (["--grid", "epochs=1,2", "--device", "auto,cpu"], "give it alone"),
    (["--grid", "epochs=1,2", "--preset", "nope"], "unknown preset 'nope'"),
    (["--show", "nothere"], "no such sweep folder"),
    (["--show", "."], "not a sweep folder"),
    (["--resume", "."], "not a sweep folder"),
    (["--stop", "."], "not a sweep folder"),
    (["--show", ".", "--epochs", "3"], "do not apply"),
    (["--show", ".", "--resume", "."], "cannot be combined"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_GRIDS, ids=[" ".join(a) for a, _ in BAD_GRIDS])
def test_bad_grids_are_one_line_exit_2_and_write_nothing(
    argv, expected, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli.main(["--runs-dir", "runs", "sweep", "--no-ui", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert list(tmp_path.iterdir()) == []  # no runs folder, no sweep folder


def test_a_grid_at_the_limit_is_fine_and_the_tui_checks_before_opening(tmp_path) -> None:
    grid = sweeps.parse_grid(["seed=" + ",".join(str(i) for i in range(sweeps.MAX_RUNS))])
    plan = sweeps.make_plan(TrainConfig(), grid, "cpu")
    assert len(plan.runs) == sweeps.MAX_RUNS
    with pytest.raises(UsageError, match="65 runs"):
        sweep_command.sweep_settings(
            argparse.Namespace(grid=["seed=" + ",".join(str(i) for i in range(65))])
        )
    assert list(tmp_path.iterdir()) == []


def test_refusing_a_setting_in_both_the_flags_and_the_grid_but_not_in_a_preset(tmp_path) -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["sweep", "--preset", "lecture-simple-cnn", "--grid", "epochs=1,2"])
    plan = sweep_command.plan_from_args(args)  # the preset sets epochs = 10; the grid wins
    assert [run["overrides"] for run in plan.runs] == [{"epochs": 1}, {"epochs": 2}]
    assert plan.base.batch_size == 32  # from the preset


def test_expansion_order_names_and_manifest(tmp_path) -> None:
    grid = sweeps.parse_grid(["epochs=20,50,100", "lr=0.01,0.001"])
    plan = sweeps.make_plan(TrainConfig(limit=100), grid, "cpu", "test_acc")
    assert [run["overrides"] for run in plan.runs] == [
        {"epochs": 20, "lr": 0.01},
        {"epochs": 20, "lr": 0.001},
        {"epochs": 50, "lr": 0.01},
        {"epochs": 50, "lr": 0.001},
        {"epochs": 100, "lr": 0.01},
        {"epochs": 100, "lr": 0.001},
    ]
    assert [run["dir"] for run in plan.runs][:2] == [
        "01-epochs-20-lr-0.01",
        "02-epochs-20-lr-0.001",
    ]
    assert plan.devices == ["cpu"]

    sweep_dir = sweeps.create_sweep(plan, tmp_path / "runs")
    assert sweep_dir.parent == tmp_path / "runs"
    assert sweep_dir.name.startswith("sweep-") and sweep_dir.name.endswith("-epochs-lr")
    assert [p.name for p in sweep_dir.iterdir()] == [runs.SWEEP_FILE]  # nothing else yet
    manifest = sweeps.read_manifest(sweep_dir)
    assert manifest["grid"] == {"epochs": [20, 50, 100], "lr": [0.01, 0.001]}
    assert manifest["base"] == TrainConfig(limit=100).to_dict()
    assert manifest["device"] == "cpu" and manifest["sort"] == "test_acc"
    assert manifest["runs"] == plan.runs
    assert all(row["status"] == "pending" for row in sweeps.sweep_rows(sweep_dir))
    assert sweeps.sweep_state(sweep_dir)[0] == "created"
    with pytest.raises(UsageError, match="not empty"):
        sweeps.create_sweep(plan, tmp_path, str(sweep_dir))  # an explicit folder is never reused


# --- the table --------------------------------------------------------------------------------


def fixture_sweep(tmp_path: Path, values: list[tuple[str, float | None, float | None]]) -> Path:
    """A sweep over epochs with runs written by hand: (state, best val acc, test acc) each."""
    grid = {"epochs": [index + 1 for index in range(len(values))]}
    plan = sweeps.make_plan(TrainConfig(device="cpu"), grid, "cpu")
    sweep_dir = sweeps.create_sweep(plan, tmp_path / "runs")
    for run, (state, best, test) in zip(plan.runs, values, strict=True):
        if state == "pending":
            continue
        path = write_run(sweep_dir / run["dir"], state, epochs=4, scale=0.5 + run["index"])
        if state == "finished":
            summary = runs.read_summary(path)
            summary.update(best_val_acc=best, test_accuracy=test, seconds=10.0 * run["index"])
            (path / runs.SUMMARY_FILE).write_text(json.dumps(summary))
    return sweep_dir


def test_show_table_sorted_with_the_best_marked(tmp_path, capsys) -> None:
    sweep_dir = fixture_sweep(
        tmp_path,
        [("finished", 0.80, 0.70), ("finished", 0.95, 0.60), ("stopped", None, None),
         ("pending", None, None), ("finished", 0.90, 0.85)],
    )  # fmt: skip
    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui", "--sort", "test_acc"]) == 0
    out = capsys.readouterr().out
    rows = table_lines(out)
    assert [cells(line)[0] for line in rows[:3]] == ["5", "1", "2"]  # test acc 85, 70, 60
    assert rows[0].startswith("*") and not any(line.startswith("*") for line in rows[1:])
    assert "sorted by test acc; * best: 05-epochs-5 (test acc 85.00%)" in out
    assert {line.split()[-1] for line in rows[3:]} == {"stopped", "pending"}
    assert "5 runs: 3 finished, 1 stopped, 1 pending" in out

    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui"]) == 0  # default: val acc
    rows = table_lines(capsys.readouterr().out)
    assert rows[0].startswith("*") and cells(rows[0])[0] == "2"
    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui", "--sort", "time"]) == 0
    rows = table_lines(capsys.readouterr().out)
    assert rows[0].startswith("*") and cells(rows[0])[0] == "1"  # 10 s, the fastest finished run

    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui", "--json", "--sort", "f1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sort"] == "f1" and data["grid"] == {"epochs": [1, 2, 3, 4, 5]}
    assert [row["index"] for row in data["table"]][-2:] == [3, 4]  # no F1 yet: last
    assert data["best"] == data["table"][0]["run"]


def test_runs_of_a_sweep_are_listed_by_cnn_tui_runs(tmp_path) -> None:
    sweep_dir = fixture_sweep(tmp_path, [("finished", 0.8, 0.7), ("pending", None, None)])
    write_run(tmp_path / "runs" / "single", "finished")
    names = {info.name for info in runs.list_runs(tmp_path / "runs")}
    assert names == {"single", f"{sweep_dir.name}/01-epochs-1"}  # a pending run is not a run yet


# --- the queue, with a stand-in trainer ------------------------------------------------------

FAKE_TRAINER = r"""
import json, os, signal, sys, time, tomllib
from cnn_tui.training.system.processes import this_process
from pathlib import Path
run = Path(sys.argv[sys.argv.index("--run-dir") + 1] if "--run-dir" in sys.argv else sys.argv[-1])
config = tomllib.loads((run / "config.toml").read_text())
def write(name, data):
    (run / (name + ".tmp")).write_text(json.dumps(data))
    os.replace(run / (name + ".tmp"), run / name)
def status(state):
    write("status.json", {"status": state, **this_process().fields(), "message": state, "epoch": 1,
                          "epochs": 1, "started": time.time(), "best_val_acc": 0.5})
if config["seed"] == 3:
    print("Traceback: something broke early", flush=True)
    sys.exit(1)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
status("running")
with open(run / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"event": "epoch", "epoch": 1, "epochs": 1, "val_acc": 0.5}) + "\n")
deadline = time.time() + (600 if config["seed"] == 9 else 0.3)  # seed 9: until SIGTERM
while time.time() < deadline and not stop:
    time.sleep(0.01)
if stop:
    status("stopped")
    sys.exit(130)
write("summary.json", {"test_accuracy": config["seed"] / 10, "macro_f1": 0.5, "seconds": 1.0,
                       "best_val_acc": 0.5, "epochs_done": 1})
status("finished")
"""


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    """The sweep's runs start a stand-in trainer (no torch): seed 3 crashes, seed 9 runs until
    SIGTERM, the others finish with test accuracy seed / 10."""
    from cnn_tui.training.runs import launcher

    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)

    def command(run_dir: Path, resume: bool = False, trust: bool = False) -> list[str]:
        return [sys.executable, str(script), "--run-dir", str(run_dir)]

    monkeypatch.setattr(launcher, "train_command", command)


def fake_sweep(tmp_path: Path, seeds: list[int]) -> Path:
    plan = sweeps.make_plan(TrainConfig(), {"seed": seeds}, "cpu")
    return sweeps.create_sweep(plan, tmp_path, str(tmp_path / "sw"))


def test_queue_runs_one_run_per_device_in_parallel(tmp_path, fake_trainer) -> None:
    import io

    sweep_dir = fake_sweep(tmp_path, [1, 2, 3, 4, 5])
    out = io.StringIO()
    devices = ["cuda:0", "cuda:1"]
    state = sweeps.run_queue(
        sweep_dir,
        devices,
        sweep_report.JsonReporter(out, 5),
        threading.Event(),
        sort="test_acc",
        poll_s=0.02,
    )
    assert state == "finished"
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [(e["event"], e.get("index")) for e in events]
    # the first two runs start together, one per device, before either ends
    assert kinds[1:3] == [("run_started", 1), ("run_started", 2)]
    assert [e["device"] for e in events[1:3]] == devices
    busy: dict[str, int] = {}
    for event in events:  # never two runs at once on one device
        if event["event"] == "run_started":
            assert event["device"] not in busy
            busy[event["device"]] = event["index"]
        elif event["event"] == "run_ended":
            device = next(d for d, index in busy.items() if index == event["index"])
            del busy[device]
    rows = {row["index"]: row for row in events[-1]["table"]}
    assert [rows[i]["status"] for i in range(1, 6)] == ["finished"] * 2 + ["failed"] + [
        "finished"
    ] * 2
    assert "exited with code 1: Traceback: something broke early" in rows[3]["message"]
    assert events[-1]["best"] == "05-seed-5" and events[-1]["table"][0]["index"] == 5
    assert {runs.read_config(sweep_dir / f"0{i}-seed-{i}").device for i in (1, 2, 4, 5)} == set(
        devices
    )
    assert runs.read_status(sweep_dir)["status"] == "finished"


def test_stopping_the_queue_stops_the_run_in_progress_and_keeps_the_rest_pending(
    tmp_path, fake_trainer
) -> None:
    sweep_dir = fake_sweep(tmp_path, [9, 1, 2])
    stop = threading.Event()

    class StopAtFirstEpoch(sweep_report.Reporter):
        def epoch(self, active, event):
            super().epoch(active, event)
            stop.set()  # as SIGTERM to the runner does

    import io

    out = io.StringIO()
    state = sweeps.run_queue(sweep_dir, ["cpu"], StopAtFirstEpoch(out, 3), stop, poll_s=0.02)
    assert state == "stopped"
    assert [row["status"] for row in sweeps.sweep_rows(sweep_dir)] == [
        "stopped",
        "pending",
        "pending",
    ]
    assert "[1/3] 01-seed-9 stopped" in out.getvalue()
    assert "continue with: cnn-tui sweep --no-ui --resume" in out.getvalue()
    assert runs.read_status(sweep_dir)["status"] == "stopped"
    with pytest.raises(UsageError, match="already being run"):
        lock = sweeps.SweepLock(sweep_dir)
        try:
            sweeps.run_queue(sweep_dir, ["cpu"], sweep_report.Reporter(out, 3), threading.Event())
        finally:
            lock.release()


# --- real runs --------------------------------------------------------------------------------


def test_foreground_sweep_of_two_runs_prints_progress_and_the_table(tmp_path) -> None:
    result = cnn_tui(
        "--runs-dir", "runs", "sweep", "--no-ui", *TINY, "--epochs", "1",
        "--grid", "lr=0.01,0.001", "--sort", "f1", "--run-dir", "sw", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert out.splitlines()[0] == "sweep dir: sw"
    for tag in ("[1/2] 01-lr-0.01", "[2/2] 02-lr-0.001"):
        assert f"{tag} (lr=" in out and f"{tag} epoch 1/1: val acc" in out
        assert f"{tag} finished: best val" in out
    rows = table_lines(out)
    assert len(rows) == 2 and rows[0].startswith("*") and not rows[1].startswith("*")
    f1 = [float(line.split()[-3]) for line in rows]
    assert f1 == sorted(f1, reverse=True)
    assert "sweep finished: 2 runs: 2 finished" in out
    assert runs.read_status(tmp_path / "sw")["status"] == "finished"
    for run in ("01-lr-0.01", "02-lr-0.001"):
        assert runs.read_summary(tmp_path / "sw" / run)["epochs_done"] == 1
    assert runs.read_config(tmp_path / "sw" / "02-lr-0.001").lr == 0.001


def test_resume_keeps_finished_resumes_stopped_and_starts_pending(tmp_path) -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["sweep", *TINY, "--epochs", "1", "--grid", "seed=1,2,3"])
    plan = sweep_command.plan_from_args(args)
    sweep_dir = sweeps.create_sweep(plan, tmp_path, str(tmp_path / "sw"))
    first, second, third = (sweep_dir / run["dir"] for run in plan.runs)
    write_run(first, "finished")  # kept as it is
    kept = (first / runs.EVENTS_FILE).read_bytes()
    config = TrainConfig.from_mapping(plan.runs[1]["overrides"], base=plan.base)
    second.mkdir()
    runs.write_config(second, config)  # stopped before its first checkpoint: starts afresh
    runs.write_status(second, "stopped", message="stopped by hand", pid=1)
    runs.write_status(sweep_dir, "stopped", message="stopped")

    result = cnn_tui("sweep", "--no-ui", "--resume", "sw", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "2 to train" in result.stdout
    assert "[2/3] 02-seed-2 (seed=2) resumed on cpu" in result.stdout
    assert "[3/3] 03-seed-3 (seed=3) started on cpu" in result.stdout
    assert "[1/3]" not in result.stdout
    assert (first / runs.EVENTS_FILE).read_bytes() == kept
    assert [row["status"] for row in sweeps.sweep_rows(sweep_dir)] == ["finished"] * 3
    assert runs.read_config(third).seed == 3

    again = cnn_tui("sweep", "--no-ui", "--resume", "sw", "--lr", "0.1", cwd=tmp_path)
    assert again.returncode == 2 and "only --device and --sort" in again.stderr


def test_background_sweep_stopped_by_sigterm_then_resumed(tmp_path, capsys) -> None:
    started = cnn_tui(
        "sweep", "--no-ui", "--detach", *TINY, "--grid", "epochs=100,1", "--run-dir", "sw",
        cwd=tmp_path,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    sweep_dir, first = tmp_path / "sw", tmp_path / "sw" / "01-epochs-100"
    wait_for(lambda: (first / runs.CHECKPOINT_FILE).exists())  # training, past an epoch
    runner = ProcessId.from_record(runs.read_status(sweep_dir))
    assert processes.alive(runner)
    assert cli.main(["sweep", "--stop", str(sweep_dir)]) == 0  # at once, while it trains
    wait_for(lambda: not processes.alive(runner))
    assert runs.read_status(sweep_dir)["status"] == "stopped"
    states = [row["status"] for row in sweeps.sweep_rows(sweep_dir)]
    assert states == ["stopped", "pending"], (sweep_dir / "output.log").read_text()
    stopped_at = runs.read_status(first)["epoch"]
    assert 1 <= stopped_at < 100
    assert cli.main(["sweep", "--show", str(sweep_dir), "--no-ui"]) == 0
    assert "2 runs: 1 stopped, 1 pending" in capsys.readouterr().out

    resumed = cnn_tui("sweep", "--no-ui", "--resume", "sw", "--json", cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert [e["run"] for e in events if e["event"] == "run_started"] == [
        "01-epochs-100",
        "02-epochs-1",
    ]
    assert next(e for e in events if e["event"] == "run_started")["resumed"] is True
    epochs = [e["epoch"] for e in events if e["event"] == "epoch" and e["index"] == 1]
    assert epochs[0] == stopped_at + 1  # continued from the checkpoint, not from the start
    final = events[-1]
    assert final["event"] == "sweep_finished" and final["status"] == "finished"
    assert [row["status"] for row in final["table"]] == ["finished", "finished"]
    assert runs.read_summary(first)["epochs_done"] == 100


# --- the TUI ----------------------------------------------------------------------------------

SIZE = (120, 40)


def make_app(runs_dir: Path) -> CnnTuiApp:
    return CnnTuiApp(runs_dir=runs_dir)


@run_async
async def test_sweep_screen_table_best_curves_and_sort(tmp_path) -> None:
    sweep_dir = fixture_sweep(
        tmp_path, [("finished", 0.80, 0.90), ("finished", 0.95, 0.60), ("pending", None, None)]
    )
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        screen = open_screen_for("sweep", SweepSettings(show=str(sweep_dir), sort=None))
        assert isinstance(screen, SweepScreen)
        await app.push_screen(screen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[0] == "★" and first[1] == "2"  # best val acc 95 %
        summary = str(screen.query_one("#sweep-summary", Static).render())
        assert "★ 02-epochs-2 (best val 95.00%)" in summary and "1 pending" in summary
        acc = screen.query_one("#compare-acc", MetricChart)
        await wait_until(pilot, lambda: len([s for s in acc.series if s.xs]) == 2)
        assert [s.label for s in acc.series] == ["#1", "#2", "#3"]  # numbered as the table
        await pilot.press("o")  # sort by test acc
        await wait_until(pilot, lambda: str(table.get_row_at(0)[1]) == "1")
        assert screen.sort == "test_acc" and str(table.get_row_at(0)[0]) == "★"
        assert screen.check_action("stop", ()) is None  # not running
        table.focus()
        table.move_cursor(row=2)  # the pending run
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("c")
        await wait_until(pilot, lambda: app.screen is not screen)
        assert len(app.screen.run_dirs) == 2  # the runs that started


@run_async
async def test_form_sweep_mode_grid_from_fields_and_grid_row(tmp_path, monkeypatch) -> None:
    launched = []
    monkeypatch.setattr(
        sweeps,
        "launch_sweep",
        lambda path, devices, sort=None, storage=None, trust=False: launched.append(path) or 4242,
    )
    args = cli.build_parser().parse_args(
        ["--runs-dir", str(tmp_path / "runs"), "sweep", "--device", "cpu", "--limit", "40",
         "--grid", "epochs=1,2", "--grid", "optimizer=sgd,adam"]
    )  # fmt: skip
    app = CnnTuiApp(args.command, sweep_command.sweep_settings(args), runs_dir=args.runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepFormScreen))
        form = app.screen
        assert form.query_one("#field-epochs", Input).value == "1,2"
        assert form.query_one("#sweep-grid", Input).value == "optimizer=sgd,adam"
        await wait_until(pilot, lambda: form.plan is not None)
        assert len(form.plan.runs) == 4
        assert "sweep of 4 runs" in str(form.query_one("#form-summary", Static).render())
        assert "⊞ grid: 1, 2" in str(form.query_one("#reason-epochs", Static).render())

        form.query_one("#field-lr", Input).value = "0.01,x"
        await wait_until(pilot, lambda: form.plan is None)
        assert "must be a number" in str(form.query_one("#reason-lr", Static).render())
        assert form.query_one("#start", Button).disabled
        form.query_one("#field-lr", Input).value = "0.01,0.001"
        form.query_one("#sweep-grid", Input).value = "optimizer=sgd,adam epochs=3,4"
        grid_reason = form.query_one("#reason-sweep-grid", Static)
        await wait_until(pilot, lambda: "already has a list" in str(grid_reason.render()))
        assert form.plan is None and form.query_one("#start", Button).disabled
        form.query_one("#sweep-grid", Input).value = "optimizer=sgd,adam"
        await wait_until(pilot, lambda: form.plan is not None and len(form.plan.runs) == 8)

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepScreen))
        assert launched and app.screen.pid == 4242
        manifest = sweeps.read_manifest(launched[0])
        assert manifest["grid"] == {
            "epochs": [1, 2],
            "lr": [0.01, 0.001],
            "optimizer": ["sgd", "adam"],
        }
        assert manifest["base"]["limit"] == 40 and manifest["device"] == "cpu"


@run_async
async def test_a_field_applies_in_a_sweep_when_any_value_of_the_grid_uses_it(tmp_path) -> None:
    args = cli.build_parser().parse_args(
        ["--runs-dir", str(tmp_path / "runs"), "sweep", "--device", "cpu", "--optimizer", "adam",
         "--grid", "optimizer=adam,sgd"]
    )  # fmt: skip
    app = CnnTuiApp(args.command, sweep_command.sweep_settings(args), runs_dir=args.runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepFormScreen))
        form = app.screen
        momentum = form.query_one("#field-momentum", Input)
        assert not momentum.disabled  # sgd is one of the grid's optimizers
        momentum.value = "0.8,0.95"
        await wait_until(pilot, lambda: form.plan is not None and len(form.plan.runs) == 4)
        assert form.grid["momentum"] == [0.8, 0.95]

        form.query_one("#sweep-grid", Input).value = "lr=0.01,0.001"
        await wait_until(pilot, lambda: momentum.disabled)  # adam only now
        await wait_until(pilot, lambda: form.plan is not None and len(form.plan.runs) == 2)
        assert "momentum" not in form.grid

        form.query_one("#field-early_stop", Input).value = "0,2"
        await wait_until(pilot, lambda: not form.query_one("#field-min_delta", Input).disabled)


@run_async
async def test_train_form_switches_to_sweep_mode_and_back(tmp_path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = TrainFormScreen()
        await app.push_screen(form)
        await pilot.pause()
        form.query_one("#field-epochs", Input).value = "7"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepFormScreen))
        sweep_form = app.screen
        await pilot.pause()
        assert sweep_form.query_one("#field-epochs", Input).value == "7"
        assert sweep_form.plan is None and sweep_form.config is not None
        assert "comma" in str(sweep_form.query_one("#form-summary", Static).render())
        sweep_form.query_one("#field-epochs", Input).value = "7,8"
        await wait_until(pilot, lambda: sweep_form.plan is not None)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: type(app.screen) is TrainFormScreen)
        assert app.screen.query_one("#field-epochs", Input).value == "7,8"


def test_the_time_column_is_the_wall_time_not_the_epochs_time():
    from cnn_tui.training.runs.state import RunState

    summary = {"seconds": 0.5, "wall_seconds": 5.2}  # 0.5 s of epochs in a 5.2 s run
    status = {"started": 1000.0, "updated": 1006.0}
    assert sweeps.wall_seconds(RunState.FINISHED, status, summary) == 5.2
    row = {"seconds": sweeps.wall_seconds(RunState.FINISHED, status, summary)}
    assert sweeps.format_metric(row, "time") == "5.2s"
    # a run of an older cnn-tui (no wall_seconds): from its first status to its last
    assert sweeps.wall_seconds(RunState.FINISHED, status, {"seconds": 0.5}) == 6.0
    assert sweeps.wall_seconds(RunState.FAILED, status, {}) is None


ZOO_TOO_SMALL = [
    (
        ["--grid", "model=simple-cnn,torchvision:vit_b_16"],
        "the runs with model=torchvision:vit_b_16: torchvision:vit_b_16 needs images of at "
        "least 224 px (its weights' meta), got 32 px: pass --image-size 224 or more",
    ),
    (  # the model in the base settings, the image size in the grid: only the small runs
        ["--model", "torchvision:vit_b_16", "--grid", "image-size=224,64"],
        "the runs with image-size=64: torchvision:vit_b_16 needs images of at least 224 px",
    ),
    (
        ["--search", "optuna", "--space", "model=simple-cnn,torchvision:vit_b_16"],
        "the trials with model=torchvision:vit_b_16: torchvision:vit_b_16 needs images of at "
        "least 224 px",
    ),
]


@pytest.mark.parametrize(
    ("argv", "expected"), ZOO_TOO_SMALL, ids=[" ".join(a) for a, _ in ZOO_TOO_SMALL]
)
def test_a_torchvision_model_of_the_grid_or_space_too_big_for_the_images_is_refused_first(
    argv, expected, tmp_path, monkeypatch, capsys
) -> None:
    """Each distinct (torchvision model, image size) of the plan is checked against its
    weights' meta (and built on the meta device) before the sweep folder is made: the run
    that would have failed at its start is named, exit 2, nothing written."""
    if argv[0] == "--search":
        pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)
    code = cli.main(
        ["--runs-dir", "runs", "sweep", "--no-ui", "--dataset", "shapes", "--epochs", "1", *argv]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert list(tmp_path.iterdir()) == []  # no runs folder, no sweep folder


def test_a_sweep_plan_lists_each_torchvision_model_once_per_image_size() -> None:
    """The plan's one listing of the models it checks: a torchvision model once per image size
    it gets (the data set's own, or the grid's), named by the settings the grid varies; a model
    of cnn-tui's own is left to the settings' rules."""
    from cnn_tui.training.runs import search

    grid = sweeps.parse_grid(
        ["model=simple-cnn,torchvision:resnet18", "image-size=32,64", "lr=0.1,0.01"]
    )
    checks = sweeps.make_plan(TrainConfig(), grid, devices=[]).model_checks()
    assert [(c.config.model, c.config.image_size, c.runs) for c in checks] == [
        ("torchvision:resnet18", 32, "the runs with model=torchvision:resnet18 image-size=32"),
        ("torchvision:resnet18", 64, "the runs with model=torchvision:resnet18 image-size=64"),
    ]
    base = TrainConfig.from_mapping({"model": "torchvision:resnet18"})
    grid = sweeps.parse_grid(["dataset=shapes,fashion-mnist"])  # 32 and 28 px
    checks = sweeps.make_plan(base, grid, devices=[]).model_checks()
    assert [c.runs for c in checks] == [
        "the runs with dataset=shapes",
        "the runs with dataset=fashion-mnist",
    ]
    grid = sweeps.parse_grid(["dataset=shapes,cifar10"])  # 32 px both: one check
    assert len(sweeps.make_plan(base, grid, devices=[]).model_checks()) == 1
    space = search.parse_space(["image-size=int:16:256"])
    checks = search.make_search_plan(base, space, 5, devices=[]).model_checks()
    assert [c.config.image_size for c in checks] == [16, 256]  # each end of the range


@run_async
async def test_the_sweep_form_refuses_a_torchvision_model_of_its_grid_too_big_for_the_images(
    tmp_path, monkeypatch
) -> None:
    """At 80×24: the grid's torchvision model is measured on the meta device as the model
    field's is; one that does not take the 32-px images is shown beside the grid row and in
    the summary, and Start writes nothing."""
    settings = SweepSettings(texts={"dataset": "shapes", "epochs": "1"})
    app = CnnTuiApp("sweep", settings, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SweepFormScreen)
        screen.query_one("#sweep-grid", Input).value = "model=simple-cnn,torchvision:vit_b_16"
        await wait_until(pilot, lambda: "vit_b_16" in screen.plan_error, what="the problem")
        summary = str(screen.query_one("#form-summary", Static).render())
        assert "does not take 32-px images" in summary
        assert "the runs with model=torchvision:vit_b_16" in summary
        grid_reason = str(screen.query_one("#reason-sweep-grid", Static).render())
        assert "torchvision:vit_b_16 does not take 32-px images" in grid_reason
        assert screen.plan is None and screen.query_one("#start", Button).disabled
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (tmp_path / "runs").exists()
        # at 224 px it takes them: the plan is back
        screen._set_widget("image_size", "224")
        screen.validate_form()
        await wait_until(pilot, lambda: screen.plan is not None, what="measured at 224 px")
        assert not screen.query_one("#start", Button).disabled
