"""scripts/gpu_check.py (scripts/gpu-check.sh): the GPU checks, tested where there is no GPU.

The plan for a GPU machine is checked in full without running it: every step is there, every
`python -m cnn_tui` command line parses with cnn-tui's own parser and its settings pass their
validation (a flag that does not exist, a bad value or a wrong device would fail here, not on the
GPU machine), and torchrun's command line is the trainer's own. A part of the dry run runs for
real on the CPU (a short run, the GPU panel's reading of its system events, eval on it); failures,
timeouts, the budget and a missing own-model file are each a row of the report, and the next step
still runs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from cnn_tui import cli
from cnn_tui.commands import bench as bench_command
from cnn_tui.commands import train_flags

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # (dataclasses look their module up)
_spec.loader.exec_module(gpu_check)

DATA = "/data/fashion-mnist"


def gpu_plan(tmp_path: Path, gpus: int = 1) -> list:
    target = gpu_check.gpu_target(DATA, gpus, tmp_path / "work", tmp_path / "out")
    return gpu_check.plan(target)


def cnn_tui_args(argv: list[str]) -> list[str] | None:
    """The `cnn-tui ...` arguments of a step's command: run directly or by torchrun."""
    if argv[:3] == list(gpu_check.CNN_TUI):
        return argv[3:]
    if argv[1:3] == ["-m", "torch.distributed.run"]:
        from torch.distributed import run as torchrun

        torchrun.parse_args(argv[3:])  # (torchrun's own flags)
    if argv[1:3] == ["-m", "torch.distributed.run"] and "--module" in argv:
        rest = argv[argv.index("--module") + 1 :]
        assert rest[:2] == ["--", "cnn_tui"], rest
        return rest[2:]
    return None


def check_flags(args: list[str]) -> None:
    """Parse `cnn-tui ARGS` as cnn-tui would and validate the settings it names."""
    parsed = cli.build_parser().parse_args(args)  # (a bad flag: SystemExit 2)
    if args[0] in ("train", "sweep"):
        train_flags.config_from_args(parsed)
    elif args[0] == "bench":
        bench_command.options_from_args(parsed)


@pytest.mark.parametrize("gpus", [1, 2])
def test_the_gpu_plan_has_every_step_and_its_commands_parse(tmp_path, gpus):
    steps = gpu_plan(tmp_path, gpus)
    assert tuple(step.name for step in steps) == gpu_check.STEP_NAMES
    checked = 0
    for step in steps:
        if step.skip:  # (the own-model example, where this checkout has none)
            continue
        for argv in step.commands:
            args = cnn_tui_args(argv)
            if args is None:  # the script itself: --environment, --nccl-probe
                assert argv[1] == str(gpu_check.SCRIPT) or argv[-4] == str(gpu_check.SCRIPT)
                assert "cuda" in argv
                continue
            check_flags(args)
            checked += 1
            if "--device" in args:
                assert args[args.index("--device") + 1] == "cuda", step.name
            if args[0] in ("train", "sweep", "bench"):
                assert args[args.index("--data-dir") + 1] == DATA, step.name
    assert checked >= 13  # (the own-model step too, once its example is in the checkout)
    nccl = next(step for step in steps if step.name == "nccl")
    if gpus >= 2:  # a real data-parallel run on two GPUs
        assert nccl.commands[0][nccl.commands[0].index("--devices") + 1] == "2"
    else:  # one GPU: the one-rank NCCL group under torchrun
        assert gpu_check.NCCL_PROBE_FLAG in nccl.commands[0]


def test_the_plan_asks_for_what_the_issue_names(tmp_path):
    """The full bench table in both settings, resnet18 at 224 px against 16 workers, the preset,
    the zoo model: the GPU sizes, not the dry run's."""
    commands = {step.name: step.commands for step in gpu_plan(tmp_path)}
    amp, fp32 = commands["bench-amp"][0], commands["bench-fp32"][0]
    assert "--models" not in amp and "--limit" not in amp  # the default models, every image
    assert {"--no-amp", "--no-channels-last"} <= set(fp32) and "--no-amp" not in amp
    whole = commands["resnet18-224"][0]
    assert {"--whole-run", "resnet18@224"} <= set(whole)
    assert whole[whole.index("--workers") + 1] == "16"
    assert whole[whole.index("--finetune") + 1] == "all"
    fast = commands["fast-cifar10"][0]
    assert fast[fast.index("--preset") + 1] == "fast-cifar10" and "--limit" not in fast
    zoo = commands["zoo"][0]
    assert zoo[zoo.index("--model") + 1] == "torchvision:mobilenet_v3_small"
    assert zoo[zoo.index("--weights") + 1] == "none"
    assert len(commands["export"]) == 3


def test_time_to_a_share_of_the_final_accuracy():
    events = [
        {"event": "run_started", "time": 100.0},
        *[
            {"event": "epoch", "epoch": e, "time": 100.0 + 2 * e, "val_acc": acc}
            for e, acc in enumerate([0.5, 0.85, 0.9, 0.91], start=1)
        ],
    ]
    reached = gpu_check.time_to_share(events, 0.94)  # 94 % of 0.91 is 0.8554: epoch 3
    assert (reached["epoch"], reached["seconds"], reached["run_seconds"]) == (3, 6.0, 8.0)
    assert reached["final_val_acc"] == 0.91


def test_a_dry_run_trains_on_the_cpu_and_reads_the_run_back(tmp_path, capsys):
    out, work = tmp_path / "out", tmp_path / "work"
    flags = ["--out", str(out), "--work", str(work), "--only", "train,gpu-panel,eval"]
    assert gpu_check.main(["--dry-run", *flags]) == 0
    printed = capsys.readouterr().out
    # the plan first: the GPU commands of the steps asked for, then their CPU version
    assert "$ " + str(Path(sys.executable)) + " -m cnn_tui train --no-ui" in printed
    assert "--device cuda" in printed and "--device cpu" not in printed.split("Dry run:")[0]
    report = json.loads((out / "gpu-check.json").read_text(encoding="utf-8"))
    assert report["dry_run"] is True
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["train", "gpu-panel", "eval"]
    assert all(step["status"] == "ok" for step in steps.values()), steps
    assert steps["train"]["details"]["device"] == "cpu"
    readings = re.match(r"(\d+) readings, no GPU \(dry run\)", steps["gpu-panel"]["figure"])
    # the first and the last; a toy run on a quiet machine may end within the first reading's
    # 0.2 s, and then that one reading is also the last (`system.sampler.last_reading`)
    assert readings and int(readings[1]) >= 1
    assert steps["eval"]["details"]["test_accuracy"] == steps["train"]["details"]["test_accuracy"]
    table = (out / "gpu-check.md").read_text(encoding="utf-8")
    assert "| step | result | seconds | key figure |" in table
    assert "| train | ok |" in table and "| eval | ok |" in table
    log = (out / "gpu-check.log").read_text(encoding="utf-8")
    assert "-m cnn_tui eval" in log and "[exit 0]" in log


def test_a_failed_step_is_a_row_and_the_next_step_runs(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    flags = ["--out", str(out), "--work", str(work), "--only", "gpu-panel,own-model"]
    code = gpu_check.main(["--dry-run", *flags, "--own-model", "missing/model.py:Net"])
    assert code == 1  # gpu-panel found no run to read
    steps = json.loads((out / "gpu-check.json").read_text(encoding="utf-8"))["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("gpu-panel", "failed"),
        ("own-model", "skipped"),
    ]
    assert "train" in steps[0]["error"] and "no status.json" in steps[0]["error"]
    assert steps[1]["error"] == "missing/model.py is not in this checkout"
    assert "| own-model | skipped | 0.0 | missing/model.py is not in this checkout |" in (
        out / "gpu-check.md"
    ).read_text(encoding="utf-8")


def step(name: str, commands: list[list[str]], timeout_s: int = 30, needs=(), lane=""):
    return gpu_check.Step(
        name, name, commands, timeout_s, lambda t, o: ("fine", {}), needs, lane=lane
    )


def test_timeouts_the_budget_and_what_a_step_needs(tmp_path):
    target = gpu_check.cpu_target(tmp_path / "work", tmp_path / "out")
    with open(tmp_path / "log", "w", encoding="utf-8") as log:
        results = gpu_check.run_plan(
            [
                step("slow", [["sleep", "60"]], timeout_s=1),  # its process group is ended
                step("reader", [["true"]], needs=("slow",)),
                step("fails", [["false"], ["true"]]),
                step("fine", [["true"]]),
            ],
            target,
            budget=30,
            log=log,
        )
        spent = gpu_check.run_plan([step("late", [["true"]])], target, budget=1, log=log)
    assert [(r.name, r.status) for r in results] == [
        ("slow", "failed"),
        ("reader", "failed"),
        ("fails", "failed"),
        ("fine", "ok"),
    ]
    assert results[0].error.startswith("timed out after 1s")
    assert results[1].error == "needs step slow, which did not succeed"
    assert results[2].error == "exit 1: (no output)"
    assert results[3].figure == "fine"
    assert (spent[0].status, spent[0].error) == (
        "failed",
        "not run: the budget is spent (--budget)",
    )


def test_the_docs_list_the_steps_in_order():
    """docs/performance/gpu.md's table of the steps is STEP_NAMES."""
    page = (ROOT / "docs" / "performance" / "gpu.md").read_text(encoding="utf-8")
    section = page.split("<!-- gpu-check steps -->", 1)[1].strip().split("\n\n", 1)[0]
    names = [line.split("|")[1].strip() for line in section.splitlines()[2:]]
    assert tuple(names) == gpu_check.STEP_NAMES
    assert gpu_check.OWN_MODEL in page


def test_the_gpu_panel_step_reads_nvml_from_the_system_events(tmp_path):
    from train_ui_fixtures import add_system_events, system_events, write_run

    target = gpu_check.gpu_target(DATA, 1, tmp_path, tmp_path)
    run = write_run(tmp_path / "train")
    add_system_events(run, system_events(5, gpus=1))
    figure, details = gpu_check.check_gpu_panel(target, [])
    assert figure.startswith("5/5 readings with a GPU · NVIDIA H100 80GB HBM3: util ")
    assert " / 81559 MiB" in figure and figure.endswith("trainer among its processes: yes")
    assert details["gpu"]["memory_total_mb"] == 81_559.0

    write_run(tmp_path / "train")  # the same run, its readings without a GPU
    add_system_events(run, system_events(3, gpus=0))
    with pytest.raises(gpu_check.CheckFailed, match="3 readings, none with a GPU: no NVIDIA GPU"):
        gpu_check.check_gpu_panel(target, [])


def test_the_environment_step_fails_without_a_gpu_and_names_what_it_sees():
    target = gpu_check.gpu_target(DATA, 1, Path("work"), Path("out"))
    seen = {"torch": "2.11.0+cu130", "cuda": "13.0", "cpu_count": 16, "cuda_available": False}
    with pytest.raises(gpu_check.CheckFailed, match=r"torch sees no GPU \(torch 2.11.0\+cu130"):
        gpu_check.check_environment(target, [json.dumps(seen)])
    seen |= {"cuda_available": True, "gpu_names": ["NVIDIA H100 80GB HBM3"], "cudnn": 91002,
             "nccl": "2.27.3", "nvml": True}  # fmt: skip
    figure, _ = gpu_check.check_environment(target, ["a warning first\n" + json.dumps(seen)])
    assert figure == (
        "NVIDIA H100 80GB HBM3 · torch 2.11.0+cu130, CUDA 13.0, cuDNN 91002, NCCL 2.27.3 · NVML ok"
    )


def test_the_lanes_run_side_by_side_and_report_in_the_plans_order(tmp_path):
    """Each lane's step waits (up to 30 s) for the other lane's file: done in turn, both fail."""
    a, b = tmp_path / "a", tmp_path / "b"

    def meet(mine: Path, other: Path) -> list[str]:
        wait = f"touch {mine}; for i in $(seq 300); do [ -e {other} ] && exit 0; sleep 0.1; done"
        return ["sh", "-c", wait + "; exit 1"]

    target = gpu_check.cpu_target(tmp_path / "work", tmp_path / "out")
    with open(tmp_path / "log", "w", encoding="utf-8") as log:
        results = gpu_check.run_plan(
            [
                step("first", [["true"]]),
                step("a1", [meet(a, b)], lane="a"),
                step("a2", [["true"]], lane="a", needs=("a1",)),
                step("b1", [meet(b, a)], lane="b"),
                step("last", [["true"]]),
            ],
            target,
            budget=120,
            log=log,
        )
    assert [(r.name, r.status) for r in results] == [
        ("first", "ok"), ("a1", "ok"), ("a2", "ok"), ("b1", "ok"), ("last", "ok")
    ]  # fmt: skip
    blocks = (tmp_path / "log").read_text(encoding="utf-8").split("\n\n")
    assert sum(block.startswith("$ sh -c") for block in blocks) == 2  # each whole, not interleaved


def test_an_unknown_step_or_missing_data_is_exit_2_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        gpu_check.main(["--dry-run", "--only", "bench-amp,nope", "--out", str(tmp_path)])
    assert stopped.value.code == 2
    assert "unknown step nope; steps: environment, bench-amp" in capsys.readouterr().err
    assert gpu_check.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert f"no Fashion-MNIST in {tmp_path}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
