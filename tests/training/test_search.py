"""Searches (`cnn-tui sweep --search optuna`, `cnn_tui.training.runs.search`, the sweep form).

The space parser and the flags are tested in this process. The queue runner of a search is
tested with a stand-in trainer (no torch: epochs whose val acc follows the trial's lr) for the
pruning, the resume of a search whose runner was killed, and two runner processes sharing one
SQLite study; one real tiny search runs end to end and is run again with more trials. The
form's grid/search switch is a pilot test on the form.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_process import ENV, run_cnn_tui
from conftest import wait_until
from textual.widgets import DataTable, Input, Select, Static
from train_ui_fixtures import run_async, write_run

from cnn_tui import cli
from cnn_tui.commands import sweep as sweep_command
from cnn_tui.commands import sweep_report
from cnn_tui.errors import UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import search, sweeps
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.system.processes import ProcessId, this_host
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.sweep import SweepFormScreen, SweepScreen

optuna = pytest.importorskip("optuna")  # the test extra installs it (the extra `search`)

# --- the space --------------------------------------------------------------------------------


def test_space_kinds_types_and_bounds() -> None:
    space = search.parse_space(
        ["lr=log:1e-4:1e-1", "--batch-size=32,64,128", "epochs=int:2:10:2", "momentum=float:0.8:0.99",
         "optimizer=sgd,adam", "hidden_units=log:4:64"]
    )  # fmt: skip
    assert list(space) == ["lr", "batch_size", "epochs", "momentum", "optimizer", "hidden_units"]
    lr = space["lr"].distribution(optuna)
    assert isinstance(lr, optuna.distributions.FloatDistribution) and lr.log
    assert (lr.low, lr.high) == (1e-4, 1e-1)
    batch = space["batch_size"].distribution(optuna)
    assert batch.choices == (32, 64, 128)
    epochs = space["epochs"].distribution(optuna)
    assert isinstance(epochs, optuna.distributions.IntDistribution)
    assert (epochs.low, epochs.high, epochs.step) == (2, 10, 2)
    hidden = space["hidden_units"].distribution(optuna)  # log on a whole-number setting
    assert isinstance(hidden, optuna.distributions.IntDistribution) and hidden.log
    assert space["optimizer"].choices == ("sgd", "adam")
    assert search.space_text(space).startswith("lr log 0.0001..0.1; batch-size 32, 64, 128; ")
    # sweep.json round trip, checked again on the way back
    back = search.space_from_manifest({"space": {k: d.to_dict() for k, d in space.items()}})
    assert back == space


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lr", "expected KEY=KIND:LOW:HIGH or KEY=V1,V2"),
        ("dropout=float:0:0.5", "unknown setting 'dropout'"),
        ("seed=1,2", "seed cannot be searched (it seeds the sampler)"),
        ("device=cpu,cuda", "is placed by the sweep"),
        ("lr=log:0:0.1", "--lr must be greater than 0"),
        ("weight_decay=log:0.0:0.1", "a log scale needs LOW above 0"),
        ("lr=log:0.1:0.01", "LOW must be below HIGH"),
        ("lr=log:1e-4:1e-1:0.01", "expected lr=log:LOW:HIGH"),
        ("lr=uniform:0:1", "unknown kind 'uniform'"),
        ("epochs=float:1:5", "--epochs is a whole number; use int:LOW:HIGH"),
        ("lr=int:1:5", "use float:LOW:HIGH"),
        ("optimizer=int:1:2", "--optimizer is not a number; list its values"),
        ("epochs=int:1:5:9", "STEP must be above 0 and at most HIGH - LOW"),
        ("batch_size=32", "a choice needs two values or more"),
        ("batch_size=32,32", "32 is in the list twice"),
        ("batch_size=32,,64", "an empty value in the list"),
        ("optimizer=sgd,lion", "--optimizer must be one of"),
        ("lr=float:0.1:x", "--lr must be a number"),
    ],
)
def test_bad_spaces_are_one_line(spec, expected) -> None:
    with pytest.raises(UsageError) as caught:
        search.parse_space([spec])
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--search", "optuna"], "a search needs a space"),
        (["--search", "optuna", "--space", "lr=log:1e-4:1e-1", "--space", "lr=0.1,0.2"],
         "lr is already in the space"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--grid", "epochs=1,2"],
         "--grid and --search exclude each other"),
        (["--space", "lr=0.1,0.2"], "--space belongs to a search: add --search optuna"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--lr", "0.1"],
         "--lr is given both as a flag and in --space"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--trials", "0"],
         "argument --trials: expected 1 to 1000, got 0"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--storage", "study.db"],
         "expected a database URL"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--storage",
          "sqlite:////no-such-folder/study.db"], "cannot open the study storage sqlite:////no-such"),
        (["--search", "optuna", "--space", "lr=0.1,0.2", "--pruner", "none",
          "--prune-warmup", "2"], "not --pruner none"),
    ],
)  # fmt: skip
def test_bad_search_flags_exit_2_and_write_nothing(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(["--runs-dir", "runs", "sweep", "--no-ui", "--device", "cpu", *argv])
    except SystemExit as stopped:  # argparse's own one-line error (a count out of bounds)
        code = stopped.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_without_optuna_one_line_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--no-ui", "--search", "optuna", "--space", "lr=log:1e-4:1e-1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'cnn-tui[search]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_optuna_is_imported_only_when_a_search_runs() -> None:
    code = (
        "import sys, cnn_tui.commands.sweep, cnn_tui.commands.sweep_report, "
        "cnn_tui.training.runs.search, cnn_tui.ui.training.sweep; "
        "print('optuna' in sys.modules, 'sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the queue runner, with a stand-in trainer ------------------------------------------------

FAKE_TRAINER = r"""
import json, os, signal, sys, time, tomllib
from cnn_tui.training.system.processes import this_process
from pathlib import Path
run = Path(sys.argv[sys.argv.index("--run-dir") + 1])
config = tomllib.loads((run / "config.toml").read_text())
def write(name, data):
    (run / (name + ".tmp")).write_text(json.dumps(data))
    os.replace(run / (name + ".tmp"), run / name)
def status(state, epoch):
    write("status.json", {"status": state, **this_process().fields(), "message": state,
                          "epoch": epoch, "epochs": config["epochs"], "started": time.time()})
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
status("running", 0)
acc = 0.9 if config["lr"] >= 0.05 else 0.1  # a good lr and a bad one
for epoch in range(1, config["epochs"] + 1):
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"event": "epoch", "epoch": epoch, "epochs": config["epochs"],
                            "val_acc": acc}) + "\n")
    deadline = time.time() + (600 if config["epochs"] >= 50 else 0.15)
    while time.time() < deadline and not stop:
        time.sleep(0.01)
    if stop:
        status("stopped", epoch)
        sys.exit(130)
write("summary.json", {"test_accuracy": acc, "macro_f1": 0.5, "seconds": 1.0,
                       "best_val_acc": acc, "epochs_done": config["epochs"]})
status("finished", config["epochs"])
"""


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch) -> Path:
    from cnn_tui.training.runs import launcher

    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)

    def command(run_dir: Path, resume: bool = False, trust: bool = False) -> list[str]:
        return [sys.executable, str(script), "--run-dir", str(run_dir)]

    monkeypatch.setattr(launcher, "train_command", command)
    return script


def new_search(tmp_path: Path, trials: int, name: str = "sw", **options) -> Path:
    base = TrainConfig(epochs=3, device="cpu")
    space = search.parse_space(["lr=0.1,0.001"])
    plan = search.make_search_plan(base, space, trials, "cpu", devices=["cpu"], **options)
    return search.create_search(plan, tmp_path, str(tmp_path / name))


def run(sweep_dir: Path, **kwargs) -> tuple[str, str]:
    out = io.StringIO()
    manifest = sweeps.read_manifest(sweep_dir)
    reporter = sweep_report.Reporter(out, sweeps.planned_runs(manifest))
    state = search.run_search(
        sweep_dir, ["cpu"], reporter, threading.Event(), poll_s=0.02, **kwargs
    )
    return state, out.getvalue()


def load_study(sweep_dir: Path):
    return optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir}/study.db")


def test_a_trial_below_the_pruner_stops_early_and_says_pruned(tmp_path, fake_trainer) -> None:
    sweep_dir = new_search(tmp_path, 3)
    manifest = sweeps.read_manifest(sweep_dir)
    study = search.open_study(sweep_dir, manifest)
    for lr in (0.1, 0.001, 0.1):  # the order of the trials, fixed
        study.enqueue_trial({"lr": lr})
    # a pruner whose verdict does not depend on chance: below 50 % from epoch 1 on
    state, out = run(sweep_dir, pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    assert state == "finished", out
    rows = sweeps.sweep_rows(sweep_dir)
    assert [row["status"] for row in rows] == ["finished", "pruned", "finished"]
    pruned = sweep_dir / rows[1]["run"]
    status = runs.read_status(pruned)
    assert status["status"] == "pruned" and status["message"].startswith("pruned at epoch 1:")
    assert "val acc 10.00%" in status["message"]
    assert (pruned / runs.SUMMARY_FILE).exists() is False  # it did not train to its end
    assert f"[2/3] {rows[1]['run']} pruned: pruned at epoch 1" in out
    trials = load_study(sweep_dir).get_trials()
    states = [trial.state for trial in trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                      optuna.trial.TrialState.COMPLETE]  # fmt: skip
    assert trials[0].value == 0.9 and trials[0].intermediate_values == {1: 0.9, 2: 0.9, 3: 0.9}
    assert trials[1].intermediate_values == {1: 0.1}
    assert "study sw in sqlite:///" in out and "3 trials (2 complete, 1 pruned)" in out
    assert "parameter importances need two complete trials" not in out


def test_resume_after_a_killed_runner_retries_the_interrupted_trial(
    tmp_path, fake_trainer, capsys
) -> None:
    sweep_dir = new_search(tmp_path, 2, pruner="none")  # the finished one and the retry
    manifest = sweeps.read_manifest(sweep_dir)
    study = search.open_study(sweep_dir, manifest)
    study.enqueue_trial({"lr": 0.1})
    study.enqueue_trial({"lr": 0.001})
    space = search.space_from_manifest(manifest["search"])
    distributions = {name: dim.distribution(optuna) for name, dim in space.items()}
    # what a runner killed with its trainers leaves: two trials in progress in the study, one
    # run "running" for a process that is gone, one that finished after the runner died (its
    # trainer runs in its own session), and the sweep "running" for a gone process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = ProcessId(int(dead.stdout), this_host(), 1.0)
    entries = []
    for lr in (0.1, 0.001):
        trial = study.ask(distributions)
        entries.append(search._new_entry(manifest, trial))
        manifest["runs"].append(entries[-1])
        run_dir = sweep_dir / entries[-1]["dir"]
        runs.write_config(run_dir, TrainConfig(epochs=3, device="cpu", lr=lr))
    search._write_manifest(sweep_dir, manifest)
    interrupted, finished = (sweep_dir / entry["dir"] for entry in entries)
    runs.write_status(interrupted, RunState.RUNNING, epoch=1, epochs=3, process=gone)
    epochs = [{"event": "epoch", "epoch": e, "epochs": 3, "val_acc": e / 10} for e in (1, 2, 3)]
    (finished / runs.EVENTS_FILE).write_text("".join(json.dumps(e) + "\n" for e in epochs))
    runs.write_summary(finished, {"best_val_acc": 0.3, "epochs_done": 3})
    runs.write_status(finished, RunState.FINISHED, epoch=3, epochs=3, process=gone)
    runs.write_status(sweep_dir, RunState.RUNNING, process=gone)
    assert sweeps.sweep_state(sweep_dir)[0] == "interrupted"

    code = cli.main(["sweep", "--no-ui", "--resume", str(sweep_dir), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"trial 0 ({entries[0]['dir']}) was interrupted: retried" in out
    assert f"trial 1 ({entries[1]['dir']}) finished meanwhile" in out
    trials = load_study(sweep_dir).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[0].user_attrs[search.RETRIED_ATTR] is True
    assert trials[1].value == 0.3 and trials[1].intermediate_values == {1: 0.1, 2: 0.2, 3: 0.3}
    assert trials[2].params == trials[0].params == {"lr": 0.1}  # the same settings again
    assert trials[2].value == 0.9
    status = runs.read_status(interrupted)
    assert status["status"] == "failed" and "retried as a new trial" in status["message"]
    manifest = sweeps.read_manifest(sweep_dir)
    assert manifest["runs"][0]["retried"] is True and len(manifest["runs"]) == 3
    assert [row["status"] for row in sweeps.sweep_rows(sweep_dir)] == ["failed"] + ["finished"] * 2
    assert runs.read_status(sweep_dir)["status"] == "finished"


SHARED_RUNNER = r"""
import sys, threading
from pathlib import Path
from cnn_tui.commands.sweep_report import Reporter
from cnn_tui.training.runs import launcher, search
script, sweep_dir, storage = sys.argv[1:4]
launcher.train_command = lambda run_dir, resume=False: [
    sys.executable, script, "--run-dir", str(run_dir)]
state = search.run_search(sweep_dir, ["cpu"], Reporter(sys.stdout, 4), threading.Event(),
                          storage=storage, poll_s=0.02)
print("state", state)
"""


def test_two_processes_share_one_study_in_one_sqlite_file(tmp_path, fake_trainer) -> None:
    storage = f"sqlite:///{tmp_path}/shared.db"
    folders = [new_search(tmp_path, 4, name, storage=storage, study="shared", pruner="none")
               for name in ("machine-a", "machine-b")]  # fmt: skip
    runner = tmp_path / "runner.py"
    runner.write_text(SHARED_RUNNER)
    processes = [
        subprocess.Popen(
            [sys.executable, str(runner), str(fake_trainer), str(folder), storage],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**ENV, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for folder in folders
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=storage)
    trials = study.get_trials()
    # both asked the one study: its trial numbers are split between the two folders
    numbers = [
        [entry["trial"] for entry in sweeps.read_manifest(folder)["runs"]] for folder in folders
    ]
    assert sorted(numbers[0] + numbers[1]) == [trial.number for trial in trials]
    assert 4 <= len(trials) <= 5  # (both may ask for the last one at the same moment)
    assert all(trial.state.name == "COMPLETE" for trial in trials)
    for output in outputs:  # each stopped once the shared study held its trials
        assert "study shared in sqlite:///" in output and "state finished" in output
    assert search.read_study_report(folders[0])["study"] == "shared"
    assert sweeps.read_manifest(folders[0])["search"]["storage"] == storage
    # a resume of such a search takes --storage again (sweep.json keeps no password)
    with pytest.raises(UsageError, match="give --storage URL again"):
        search.storage_url(folders[0], sweeps.read_manifest(folders[0])["search"])


# --- one real search --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_real_search_end_to_end_then_run_again_with_more_trials(tmp_path) -> None:
    argv = ["sweep", "--no-ui", "--search", "optuna", "--dataset", "shapes", "--limit", "200",
            "--epochs", "2", "--hidden-units", "2", "--device", "cpu", "--space",
            "lr=log:1e-3:1e-1", "--space", "batch_size=16,32", "--run-dir", "sw"]  # fmt: skip
    result = run_cnn_tui(*argv, "--trials", "3", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "search: lr log 0.001..0.1; batch-size 16, 32 (3 trials, TPE seed 0, median" in out
    assert "[3/3] trial-002-lr-" in out and "sweep finished: 3 runs: 3 finished" in out
    assert "parameter importances (PED-ANOVA, of 1): " in out
    sweep_dir = tmp_path / "sw"
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep_dir}/study.db")
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    rows = {row["run"]: row for row in sweeps.sweep_rows(sweep_dir)}
    for entry in sweeps.read_manifest(sweep_dir)["runs"]:
        trial = trials[entry["trial"]]
        assert trial.value == rows[entry["dir"]]["best_val_acc"]
        assert set(trial.intermediate_values) == {1, 2}  # each epoch reached the study
        config = runs.read_config(sweep_dir / entry["dir"])
        assert (config.lr, config.batch_size) == (trial.params["lr"], trial.params["batch_size"])
    table = json.loads(run_cnn_tui("sweep", "--show", "sw", "--no-ui", "--json", cwd=tmp_path,
                                   timeout=60).stdout)  # fmt: skip
    assert set(table["study"]["importances"]) == {"lr", "batch_size"}
    assert table["search"]["trials"] == 3 and len(table["table"]) == 3

    again = run_cnn_tui(*argv, "--trials", "4", cwd=tmp_path, timeout=300)  # the same, one more
    assert again.returncode == 0, again.stderr + again.stdout
    assert "[1/4]" not in again.stdout and "[4/4] trial-003-" in again.stdout
    assert len(optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep_dir}/study.db")
               .get_trials()) == 4  # fmt: skip
    changed = [arg.replace("1e-3", "1e-2") for arg in argv]  # another space, same folder
    other = run_cnn_tui(*changed, cwd=tmp_path, timeout=60)
    assert other.returncode == 2 and "holds another search" in other.stderr


# --- the form ---------------------------------------------------------------------------------


def hand_written_search(tmp_path: Path) -> Path:
    """A search folder written by hand: two trials (one finished, one pruned), its search.json."""
    sweep_dir = new_search(tmp_path, 4)
    manifest = sweeps.read_manifest(sweep_dir)
    for number, (lr, state) in enumerate(((0.1, "finished"), (0.001, "stopped"))):
        entry = {"index": number + 1, "dir": f"trial-00{number}-lr-{lr}", "overrides": {"lr": lr},
                 "trial": number}  # fmt: skip
        manifest["runs"].append(entry)
        write_run(sweep_dir / entry["dir"], state, epochs=3, epochs_done=1)
    runs.write_status(sweep_dir / manifest["runs"][1]["dir"], RunState.PRUNED,
                      message="pruned at epoch 1: val acc 10.00%", epoch=1, epochs=3)  # fmt: skip
    search._write_manifest(sweep_dir, manifest)
    runs.write_status(sweep_dir, RunState.STOPPED, message="stopped")
    report = {"study": "sw", "storage": "sqlite:///sw/study.db",
              "trials": {"complete": 1, "pruned": 1}, "importances": {"lr": 1.0}}  # fmt: skip
    (sweep_dir / search.REPORT_FILE).write_text(json.dumps(report))
    return sweep_dir


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@run_async
async def test_the_sweep_screen_of_a_search(tmp_path, size) -> None:
    sweep_dir = hand_written_search(tmp_path)
    app = CnnTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        screen = SweepScreen(sweep_dir)
        await app.push_screen(screen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        header = [str(column.label) for column in table.columns.values()]
        assert header[1:4] == ["#", "run", "lr"]  # the space's settings, as a grid's keys
        assert "pruned" in str(table.get_row_at(1)[-1])
        summary = screen.query_one("#sweep-summary", Static)
        await wait_until(pilot, lambda: "importance: lr 1.00" in str(summary.render()))
        assert "study: 2 of 4 trials (1 pruned)" in str(summary.render())
        assert screen.check_action("resume", ()) is True  # stopped with trials left


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@run_async
async def test_the_sweep_form_switches_to_a_search(tmp_path, monkeypatch, size) -> None:
    launched = []
    monkeypatch.setattr(
        sweeps,
        "launch_sweep",
        lambda path, devices, sort=None, storage=None, trust=False: launched.append(path) or 4242,
    )
    args = cli.build_parser().parse_args(
        ["--runs-dir", str(tmp_path / "runs"), "sweep", "--device", "cpu", "--limit", "40",
         "--grid", "epochs=1,2"]
    )  # fmt: skip
    app = CnnTuiApp(args.command, sweep_command.sweep_settings(args), runs_dir=args.runs_dir)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SweepFormScreen))
        form = app.screen
        assert not form.query_one("#row-sweep-trials").display  # grid mode
        form.query_one("#sweep-mode", Select).value = "search"
        await wait_until(pilot, lambda: form.query_one("#row-sweep-trials").display)
        await wait_until(pilot, lambda: isinstance(form.plan, search.SearchPlan))
        assert form.space["epochs"].choices == (1, 2)  # the field's list: a choice
        form.query_one("#sweep-grid", Input).value = "lr=log:1e-4"
        reason = form.query_one("#reason-sweep-grid", Static)
        await wait_until(pilot, lambda: "expected lr=log:LOW:HIGH" in str(reason.render()))
        assert form.plan is None
        form.query_one("#sweep-grid", Input).value = "lr=log:1e-4:1e-1"
        form.query_one("#sweep-trials", Input).value = "0"
        trials_reason = form.query_one("#reason-sweep-trials", Static)
        await wait_until(pilot, lambda: "1 to 1000" in str(trials_reason.render()))
        form.query_one("#sweep-trials", Input).value = "6"
        await wait_until(pilot, lambda: isinstance(form.plan, search.SearchPlan))
        summary = str(form.query_one("#form-summary", Static).render())
        assert "search of 6 trials over epochs, lr" in summary
        assert "⊞ search: log 0.0001..0.1" in str(form.query_one("#reason-lr", Static).render())

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepScreen))
        manifest = sweeps.read_manifest(launched[0])
        assert manifest["search"]["trials"] == 6 and manifest["grid"] == {}
        assert set(manifest["search"]["space"]) == {"epochs", "lr"}
        screen = app.screen
        await wait_until(pilot, lambda: "search of 6 trials" in str(
            screen.query_one("#sweep-summary", Static).render()))  # fmt: skip
