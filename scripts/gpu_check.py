"""The GPU checks in one prepared script: the CUDA path of every feature, run step by step on a
GPU machine, each step with its own timeout, into one JSON and one Markdown table.

    scripts/gpu-check.sh                      # on a GPU machine, from the repository root
    scripts/gpu-check.sh --out DIR --data-dir DIR --budget 480 --only bench-amp,train
    scripts/gpu-check.sh --dry-run            # anywhere: the plan, then its small CPU version

Nothing needs installing: every step runs `python -m cnn_tui` (or torchrun) from this checkout
with the interpreter that runs the script, so a machine with torch, torchvision, numpy, rich,
psutil and nvidia-ml-py is enough (the headless commands import no Textual). Fashion-MNIST's
four IDX .gz files go into `.device-data/fashion-mnist/` (git-ignored; `--data-dir` names
another folder). The steps, in the order they run (`plan`):

    environment       the GPU, torch, CUDA, cuDNN, NCCL and NVML as the steps will see them
    bench-amp         the full `cnn-tui bench` table on CUDA, AMP and channels_last on
    resnet18-224      resnet18 at 224 px, a whole run against the seed-style loop with 16
                      DataLoader workers (`bench --whole-run`)
    fast-cifar10      the preset on the stand-in data set (Fashion-MNIST: no CIFAR-10 offline),
                      with the time to 94 % of its own final validation accuracy
    torchrun          `train --devices 1` started by torchrun (a one-process world trains as one)
    nccl              the NCCL process group: on 2+ GPUs a real `--devices 2` run; on one GPU a
                      one-rank NCCL group under torchrun (the trainer's own `process_group` and
                      `wrap_model`, a DDP backward, an all-reduce)
    sweep             a two-run sweep on the GPU
    train             one epoch of simple-cnn on the GPU (what the next four steps read)
    gpu-panel         its "system" events: NVML's readings of the GPU, as the GPU panel shows them
    eval, inspect     the run's metrics and inside (Grad-CAM) recomputed on CUDA
    export            TorchScript, torch.export and ONNX of the CUDA-trained run, each checked
    zoo               a torchvision-zoo model (mobilenet_v3_small, no weights: no internet)
    own-model         the user's own model file (OWN_MODEL below; skipped when it is missing)
    bench-fp32        the bench table again with AMP and channels_last off (last: a budget cut
                      short loses the least here)

The timed steps run alone; the functional ones (torchrun to own-model) in three lanes side by
side (`Step.lane`). Each step gets `min(its timeout, what is left of --budget)`; a step that fails
or times out is written down and the next one runs; the exit code is 1 when any step failed (2:
bad flags or no data, 130: Ctrl+C, which ends the steps under way and still writes the report). The
output folder (`--out`, default `gpu-check-out/`, git-ignored) gets `gpu-check.json` (every step:
commands, result, seconds, key figure, details), `gpu-check.md` (the table, and the bench tables),
`gpu-check.log` (every command's output) and the bench JSON files; run folders go to `--work`
(default: a new temporary folder). With the device tool: `--out $OUT`.

`--dry-run` prints the GPU plan, then runs the same steps on the CPU at toy sizes (the `shapes`
data set, `--limit`, one or two epochs; the NCCL step over gloo): every step's command line and
reading of its results is exercised where no GPU is (tests/test_gpu_check.py). Two steps run
this script itself: `--environment DEVICE` (what torch sees, as one JSON line) and, under
torchrun, `--nccl-probe DEVICE FILE`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's cnn_tui, installed or not

from cnn_tui import text  # noqa: E402

# the user's own model the own-model step trains: helper ownmodel's example (FILE.py:Class)
OWN_MODEL = "assets/examples/the3_student_cnn.py:StudentCNN"
DATA_DIR = ".device-data/fashion-mnist"  # Fashion-MNIST's four IDX .gz files (git-ignored)
OUT_DIR = "gpu-check-out"  # git-ignored
BUDGET_S = 480  # the whole check: 8 minutes
GPU_LIMIT = 10_000  # training images of the short runs on the GPU (val and test shrink alike)
TINY_LIMIT = "200"  # ... and of the dry run's toy runs on the CPU
SEED_WORKERS = 16  # the seed-style loop's DataLoader workers in the resnet18 comparison
FAST_SHARE = 0.94  # fast-cifar10: the time to this share of its own final accuracy
MIN_STEP_S = 5  # a step with less time left than this is not started
KILL_GRACE_S = 10  # after a timeout: SIGTERM to the step's process group, then SIGKILL
PY = sys.executable
CNN_TUI = (PY, "-m", "cnn_tui")
SCRIPT = Path(__file__).resolve()
NCCL_PROBE_FLAG = "--nccl-probe"
STOPPED = "stopped (Ctrl+C)"


class CheckFailed(Exception):
    """A step ran but what it produced is wrong: one line saying what."""


# --- where and how big: the GPU check, or the dry run's toy version on the CPU ------------------


@dataclass(frozen=True)
class Target:
    """The machine the steps are planned for: `cuda` with the real sizes, or the CPU (`tiny`)."""

    device: str  # "cuda" or "cpu"
    data: tuple[str, ...]  # the data set flags
    gpus: int  # GPUs the plan counts on (the nccl step's form)
    work: Path  # run folders and files the steps write
    out: Path  # the report and the bench JSON files

    @property
    def tiny(self) -> bool:
        return self.device == "cpu"

    def sized(self, full: Sequence[str], tiny: Sequence[str]) -> list[str]:
        return list(tiny if self.tiny else full)

    def short_run(self) -> list[str]:
        """The flags of a short training run: GPU_LIMIT images for an epoch, or a toy one."""
        return ["--limit", TINY_LIMIT if self.tiny else str(GPU_LIMIT), "--epochs", "1"]


def gpu_target(data_dir: str, gpus: int, work: Path, out: Path) -> Target:
    data = ("--dataset", "fashion-mnist", "--data-dir", data_dir)
    return Target("cuda", data, max(gpus, 1), work, out)


def cpu_target(work: Path, out: Path) -> Target:
    return Target("cpu", ("--dataset", "shapes"), 0, work, out)


# --- the steps ------------------------------------------------------------------------------------


@dataclass
class Step:
    """One check: commands run in order, then `check` reads what they left and returns the key
    figure and details (or raises CheckFailed)."""

    name: str
    what: str  # the CUDA path it checks, one line
    commands: list[list[str]]
    timeout_s: int
    check: Callable[[Target, list[str]], tuple[str, dict[str, Any]]]
    needs: tuple[str, ...] = ()  # steps whose output it reads (earlier in the same lane)
    skip: str = ""  # why it is not run (a missing file), said in the table
    lane: str = ""  # "": runs alone (its figures are timings); else beside the other lanes


@dataclass
class Result:
    name: str
    what: str
    commands: list[str]
    status: str  # "ok", "failed", "skipped"
    seconds: float
    figure: str = ""
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def cnn_tui(*args: str) -> list[str]:
    return [*CNN_TUI, *args]


def plan(t: Target, own_model: str = OWN_MODEL) -> list[Step]:
    """Every step for target `t`, in the order they run (a lane's steps beside the other lanes')."""
    from cnn_tui.training.loop import distributed

    w, on, data, short = t.work, ["--device", t.device], list(t.data), t.short_run()

    def train(name: str, *flags: str) -> list[str]:
        """`cnn-tui train --no-ui FLAGS` on the target's data and device, into WORK/name."""
        return cnn_tui("train", "--no-ui", *flags, *data, *on, "--run-dir", str(w / name))

    def bench(name: str, *flags: str) -> list[str]:
        return cnn_tui("bench", *flags, *data, *on, "--json-file", str(t.out / f"{name}.json"))

    bench_table = t.sized([], ["--models", "simple-cnn", "--limit", TINY_LIMIT, "--batch-size",
                               "16", "--batches", "2", "--warmup", "1", "--repeats", "1",
                               "--workers", "1"])  # fmt: skip
    whole_run = t.sized(
        ["--models", "resnet18@224", "--workers", str(SEED_WORKERS), "--limit", str(GPU_LIMIT)],
        ["--models", "resnet18@32", "--workers", "1", "--limit", "100"],
    )
    fast_sizes = t.sized([], ["--limit", TINY_LIMIT, "--epochs", "2", "--batch-size", "64"])
    torchrun_child = ["train", "--no-ui", "--devices", "1", *on, *data, *short,
                      "--run-dir", str(w / "torchrun")]  # fmt: skip
    torchrun = distributed.torchrun_command(
        distributed.torchrun_argv(1, distributed.Nodes(), torchrun_child)
    )
    if t.gpus >= 2:  # a real data-parallel run: two ranks, one GPU each
        nccl_what = "`train --devices 2` on NCCL: two ranks, one GPU each"
        nccl_command, nccl_check = train("ddp", "--devices", "2", *short), check_ddp_run
    else:  # one GPU: the trainer's process group and DDP wrapper in a one-rank world
        nccl_what = (
            f"a one-rank {'gloo' if t.tiny else 'NCCL'} group under torchrun: the trainer's "
            "process_group and wrap_model, a DDP backward, an all-reduce"
        )
        nccl_command = [PY, "-m", "torch.distributed.run", "--nproc-per-node=1", "--standalone",
                        "--max-restarts=0", str(SCRIPT), NCCL_PROBE_FLAG, t.device,
                        str(w / "nccl-probe.json")]  # fmt: skip
        nccl_check = check_nccl_probe
    own_file = own_model.rpartition(":")[0]
    run = str(w / "train")
    return [
        Step("environment", "the GPU, torch, CUDA, cuDNN, NCCL and NVML the steps see",
             [[PY, str(SCRIPT), "--environment", t.device]], 30, check_environment),
        Step("bench-amp", "the full `cnn-tui bench` table, AMP and channels_last on",
             [bench("bench-amp", *bench_table)], 150, check_bench("bench-amp.json")),
        Step("resnet18-224", "resnet18 at 224 px, a whole run against the seed-style loop "
             f"({SEED_WORKERS} DataLoader workers)",
             [bench("bench-resnet18-224", "--whole-run", "--finetune", "all", *whole_run,
                    "--epochs", "1", "--repeats", "1")], 120, check_whole_run),
        Step("fast-cifar10", "the fast-cifar10 preset on the stand-in data set, time to "
             f"{FAST_SHARE:.0%} of its final accuracy",
             [train("fast-cifar10", "--preset", "fast-cifar10", *fast_sizes)], 120, check_fast_run),
        # the functional checks: their figures are no benchmarks, so three lanes run side by side
        Step("torchrun", "`train --devices 1` started by torchrun (WORLD_SIZE 1: trains as one "
             "process)", [torchrun], 90, check_torchrun_run, lane="a"),
        Step("nccl", nccl_what, [nccl_command], 120, nccl_check, lane="a"),
        Step("sweep", "a two-run sweep (--grid lr=0.001,0.002) on the GPU",
             [cnn_tui("sweep", "--no-ui", "--grid", "lr=0.001,0.002", *data, *short, *on,
                      "--run-dir", str(w / "sweep"))], 120, check_sweep, lane="a"),
        Step("train", "one epoch of simple-cnn on the GPU: what the next four steps read",
             [train("train", "--model", "simple-cnn", *t.sized(["--epochs", "1"], short))], 90,
             check_trained("train"), lane="b"),
        Step("gpu-panel", "the trainer's NVML readings of the GPU (the run's system events)", [],
             10, check_gpu_panel, needs=("train",), lane="b"),
        Step("eval", "`cnn-tui eval` on CUDA: the test metrics recomputed from the checkpoint",
             [cnn_tui("eval", run, "--no-ui", *on, "--json")], 60, check_eval, needs=("train",),
             lane="b"),
        Step("inspect", "`cnn-tui inspect` on CUDA: feature maps, probabilities, Grad-CAM",
             [cnn_tui("inspect", run, "--no-ui", *on, "--json", str(w / "inspect.json"))], 60,
             check_inspect, needs=("train",), lane="b"),
        Step("export", "TorchScript, torch.export and ONNX of the CUDA-trained run, each checked",
             [cnn_tui("export", run, "--format", fmt, "-o", str(w / name), "--force", "--json")
              for fmt, name in EXPORTS], 120, check_exports, needs=("train",), lane="b"),
        Step("zoo", "a torchvision-zoo model (mobilenet_v3_small, --weights none) at 64 px",
             [train("zoo", "--model", "torchvision:mobilenet_v3_small", "--weights", "none",
                    "--image-size", "64", *short)], 90, check_trained("zoo"), lane="c"),
        Step("own-model", f"the user's own model ({own_model})",
             [train("own-model", "--model", own_model, *short)], 90, check_trained("own-model"),
             lane="c",
             skip="" if (ROOT / own_file).is_file() else f"{own_file} is not in this checkout"),
        # last: where the budget runs short, the AMP-off table is what is lost
        Step("bench-fp32", "the full `cnn-tui bench` table, AMP and channels_last off",
             [bench("bench-fp32", *bench_table, "--no-amp", "--no-channels-last")], 150,
             check_bench("bench-fp32.json")),
    ]  # fmt: skip


EXPORTS = (("torchscript", "model.pt"), ("torch-export", "model.pt2"), ("onnx", "model.onnx"))
STEP_NAMES = (
    "environment", "bench-amp", "resnet18-224", "fast-cifar10", "torchrun", "nccl", "sweep",
    "train", "gpu-panel", "eval", "inspect", "export", "zoo", "own-model", "bench-fp32",
)  # fmt: skip


# --- reading what the steps left: the key figures ------------------------------------------------


def last_json(output: str) -> dict[str, Any]:
    """The last line of `output` that is a JSON object."""
    for line in reversed(output.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise CheckFailed("no JSON line in the output")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"cannot read {path.name}: {exc}") from None


def finished_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """A finished run's status, events and summary (CheckFailed when it did not finish)."""
    from cnn_tui.training.runs import store as runs

    status = runs.read_status(run_dir)
    if not status or status.get("status") != "finished":
        state = (status or {}).get("status", "no status.json")
        raise CheckFailed(f"{run_dir.name}: {state} {(status or {}).get('message', '')}".strip())
    events = runs.read_all_events(run_dir)[0]
    return status, events, runs.read_summary(run_dir) or {}


def started_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event.get("event") == "run_started":
            return event
    raise CheckFailed("no run_started event")


def expect_device(t: Target, started: dict[str, Any]) -> str:
    """The device the run trained on, checked to be the target's kind."""
    device = str(started.get("device", ""))
    if not device.startswith(t.device):
        raise CheckFailed(f"trained on {device or 'an unknown device'}, not {t.device}")
    return device


def run_figure(summary: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """test accuracy · training speed · epochs' time."""
    speeds = [e["images_per_s"] for e in events if e.get("event") == "epoch"]
    return (
        f"test {text.percent(summary.get('test_accuracy'), 1)} · "
        f"{text.throughput(speeds[-1] if speeds else None)} · "
        f"{text.duration(summary.get('seconds'))} of epochs"
    )


def check_environment(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    env = last_json(outputs[0])
    versions = f"torch {env['torch']}"
    if not t.tiny:
        if not env.get("cuda_available"):
            raise CheckFailed(f"torch sees no GPU ({versions}, CUDA {env.get('cuda')})")
        names = ", ".join(env["gpu_names"])
        nvml = "NVML ok" if env.get("nvml") is True else f"NVML: {env.get('nvml')}"
        figure = (
            f"{names} · {versions}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, "
            f"NCCL {env['nccl']} · {nvml}"
        )
        return figure, env
    return f"CPU only (dry run) · {versions} · {env['cpu_count']} cores", env


def environment_probe(device: str) -> int:
    """`--environment`: what the steps will see, as one JSON line."""
    import platform

    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "gpu_names": [],
        "device": device,
    }
    if torch.cuda.is_available():
        env["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        env["cudnn"] = torch.backends.cudnn.version()
        env["bf16"] = torch.cuda.is_bf16_supported()
        env["nccl"] = nccl_version()
    try:
        import pynvml

        pynvml.nvmlInit()
        env["nvml"] = True
        driver = pynvml.nvmlSystemGetDriverVersion()
        env["driver"] = driver.decode() if isinstance(driver, bytes) else driver
        pynvml.nvmlShutdown()
    except Exception as exc:  # no library, no driver: said, not raised
        env["nvml"] = text.one_line(f"{type(exc).__name__}: {exc}")
    print(json.dumps(env, default=str), flush=True)
    return 0


def nccl_version() -> str:
    """The NCCL torch was built with, as text (a tuple in recent torch, an int in older ones)."""
    import torch

    try:
        version = torch.cuda.nccl.version()
    except Exception as exc:  # no NCCL in this build
        return f"unavailable ({text.one_line(exc)})"
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def bench_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = report.get("results")
    if not isinstance(rows, list) or not rows:
        raise CheckFailed("the bench report has no results")
    return rows


def check_bench(filename: str) -> Callable[[Target, list[str]], tuple[str, dict[str, Any]]]:
    def check(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
        report = read_json(t.out / filename)
        rows = bench_rows(report)
        table = [
            {
                "model": f"{row['model']}@{row['image_size']}",
                "engine_train": row["engine"]["train_images_per_s"],
                "seed_train": row["reference"]["train_images_per_s"],
                "train_ratio": row["ratio"]["train"],
                "engine_eval": row["engine"]["eval_images_per_s"],
                "seed_eval": row["reference"]["eval_images_per_s"],
                "eval_ratio": row["ratio"]["eval"],
                "amp": row["engine"].get("amp"),
                "channels_last": row["engine"].get("channels_last"),
            }
            for row in rows
        ]
        below = [r["model"] for r in table if (r["train_ratio"] or 0) < 1.0]
        lead = next((r for r in table if r["model"] == "resnet18@224"), table[0])
        figure = (
            f"models: {len(table)} · {lead['model']} {text.throughput(lead['engine_train'])} "
            f"({ratio_text(lead['train_ratio'])} the seed loop) · "
            + (f"below 1.0×: {', '.join(below)}" if below else "every row ≥ 1.0×")
        )
        return figure, {"rows": table, "environment": report.get("environment")}

    return check


def ratio_text(value: Any) -> str:
    return f"{text.number(value, '.2f')}×"


def check_whole_run(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    rows = bench_rows(read_json(t.out / "bench-resnet18-224.json"))
    engine = next(r for r in rows if r["run"].startswith("cnn-tui train"))
    seed = next(r for r in rows if r["run"] == "seed-style loop")
    figure = (
        f"{text.duration(engine['seconds'])} vs the seed loop's {text.duration(seed['seconds'])}: "
        f"{ratio_text(engine['speedup'])} · test {text.percent(engine['test_accuracy'], 1)} vs "
        f"{text.percent(seed['test_accuracy'], 1)}"
    )
    return figure, {"rows": rows}


def time_to_share(events: list[dict[str, Any]], share: float) -> dict[str, Any]:
    """When a run's validation accuracy first reached `share` of its final one: the epoch and
    the seconds since run_started (data loading and the model's set-up included)."""
    start = started_event(events)["time"]
    epochs = [e for e in events if e.get("event") == "epoch" and text.finite(e.get("val_acc"))]
    if not epochs:
        raise CheckFailed("no epoch with a validation accuracy")
    final = epochs[-1]["val_acc"]
    reached = next(e for e in epochs if e["val_acc"] >= share * final)
    return {
        "final_val_acc": final,
        "target_val_acc": share * final,
        "epoch": reached["epoch"],
        "epochs": len(epochs),
        "seconds": reached["time"] - start,
        "run_seconds": epochs[-1]["time"] - start,
    }


def check_fast_run(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    status, events, summary = finished_run(t.work / "fast-cifar10")
    expect_device(t, started_event(events))
    reached = time_to_share(events, FAST_SHARE)
    figure = (
        f"final val {text.percent(reached['final_val_acc'], 1)}, test "
        f"{text.percent(summary.get('test_accuracy'), 1)}; {FAST_SHARE:.0%} of it "
        f"({text.percent(reached['target_val_acc'], 1)}) at epoch {reached['epoch']}/"
        f"{reached['epochs']}, {text.duration(reached['seconds'])} after the start "
        f"(all epochs {text.duration(reached['run_seconds'])})"
    )
    return figure, {**reached, "test_accuracy": summary.get("test_accuracy")}


def check_torchrun_run(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    status, events, summary = finished_run(t.work / "torchrun")
    started = started_event(events)
    device = expect_device(t, started)
    if started.get("world_size", 1) != 1:
        raise CheckFailed(f"world_size {started.get('world_size')}, expected 1")
    return f"finished on {device} as one process · {run_figure(summary, events)}", {
        "device": device
    }


def check_ddp_run(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    status, events, summary = finished_run(t.work / "ddp")
    started = started_event(events)
    expect_device(t, started)
    backend, size = started.get("backend"), started.get("world_size")
    if (backend, size) != ("nccl", 2):
        raise CheckFailed(f"backend {backend}, world_size {size}: expected nccl, 2")
    return f"2 ranks on NCCL · {run_figure(summary, events)}", {"backend": backend}


def check_nccl_probe(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    probe = read_json(t.work / "nccl-probe.json")
    expected = "gloo" if t.tiny else "nccl"
    if probe.get("backend") != expected:
        raise CheckFailed(f"backend {probe.get('backend')}, expected {expected}")
    if probe.get("all_reduce") != 1.0 or not probe.get("grads_finite"):
        raise CheckFailed(f"the collective gave {probe}")
    return (
        f"{probe['backend']} group of 1 on {probe['device']}: DDP backward and all-reduce ran"
        + (f" (NCCL {probe['nccl']})" if probe.get("nccl") else ""),
        probe,
    )


def nccl_probe(device_spec: str, out: str) -> int:
    """`--nccl-probe` (a rank torchrun started): the trainer's process group and DDP wrapper."""
    import torch
    import torch.distributed as dist
    from torch import nn

    from cnn_tui.training.loop import distributed

    world = distributed.World.from_env()
    if world is None:
        print("--nccl-probe runs under torchrun", file=sys.stderr)
        return 2
    with distributed.process_group(world, device_spec):
        device = distributed.rank_device(device_spec, world)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(2)).to(device)
        model(torch.zeros(1, 1, 8, 8, device=device))  # (the lazy layer's shape)
        ddp = distributed.wrap_model(model, device)
        ddp(torch.randn(8, 1, 8, 8, device=device)).square().mean().backward()
        grads_finite = all(bool(p.grad.isfinite().all()) for p in model.parameters())
        tensor = torch.ones(1, device=device)
        dist.all_reduce(tensor)
        result = {
            "backend": dist.get_backend(),
            "device": str(device),
            "world_size": dist.get_world_size(),
            "all_reduce": tensor.item(),
            "grads_finite": grads_finite,
        }
        if device.type == "cuda":
            result["nccl"] = nccl_version()
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0


def check_sweep(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    from cnn_tui.training.runs import sweeps

    rows = sweeps.sweep_rows(t.work / "sweep")
    if len(rows) != 2 or any(row["status"] != "finished" for row in rows):
        raise CheckFailed("runs: " + ", ".join(f"{r['run']} {r['status']}" for r in rows))
    devices = set()
    for row in rows:
        _, events, _ = finished_run(Path(row["path"]))
        devices.add(expect_device(t, started_event(events)))
    accuracies = " / ".join(text.percent(row["best_val_acc"], 1) for row in rows)
    figure = f"2 runs finished on {', '.join(sorted(devices))} · best val acc {accuracies}"
    return figure, {"rows": [{k: str(v) for k, v in row.items()} for row in rows]}


def check_trained(folder: str) -> Callable[[Target, list[str]], tuple[str, dict[str, Any]]]:
    def check(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
        status, events, summary = finished_run(t.work / folder)
        started = started_event(events)
        device = expect_device(t, started)
        amp = started.get("amp") or "fp32"
        return f"{device} ({amp}) · {run_figure(summary, events)}", {
            "device": device,
            "amp": amp,
            "test_accuracy": summary.get("test_accuracy"),
        }

    return check


def check_gpu_panel(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    from cnn_tui.training.system import reading

    _, events, _ = finished_run(t.work / "train")
    readings = [
        r for e in events if e.get("event") == reading.EVENT if (r := reading.from_event(e))
    ]
    if not readings:
        raise CheckFailed("the run wrote no system event")
    with_gpus = [r for r in readings if r.gpus]
    if t.tiny:
        note = next((r.gpu_note for r in readings if r.gpu_note), "")
        return f"{len(readings)} readings, no GPU (dry run): {note or 'no note'}", {}
    if not with_gpus:
        raise CheckFailed(f"{len(readings)} readings, none with a GPU: {readings[-1].gpu_note}")
    gpu = max((r.gpus[0] for r in with_gpus), key=lambda g: g.memory_used_mb or 0)
    if gpu.util_percent is None and gpu.memory_used_mb is None:
        raise CheckFailed(f"GPU {gpu.index}: NVML gave no utilisation and no memory")
    trainer = any(p.trainer for r in with_gpus for g in r.gpus for p in g.processes)
    figure = (
        f"{len(with_gpus)}/{len(readings)} readings with a GPU · {gpu.name}: "
        f"util {text.number(gpu.util_percent, '.0f')} %, "
        f"{text.number(gpu.memory_used_mb, '.0f')} / {text.number(gpu.memory_total_mb, '.0f')} MiB, "
        f"{text.number(gpu.temperature_c, '.0f')} °C, {text.number(gpu.power_w, '.0f')} W · "
        f"trainer among its processes: {'yes' if trainer else 'no'}"
    )
    notes = {r.process_note for r in readings if r.process_note}
    details = dataclasses.asdict(gpu) | {"processes": len(gpu.processes)}
    return figure, {"gpu": details, "notes": sorted(notes)}


def check_eval(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    from cnn_tui.training.runs import store as runs

    report = last_json(outputs[0])
    trained = (runs.read_summary(t.work / "train") or {}).get("test_accuracy")
    again = report.get("test_accuracy")
    if not (text.finite(again) and text.finite(trained)) or abs(again - trained) > 0.005:
        raise CheckFailed(f"test accuracy {again}, the run's own {trained}")
    figure = f"test {text.percent(again)} (the run's own: {text.percent(trained)})"
    return figure, {"test_accuracy": again, "run_test_accuracy": trained}


def check_inspect(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    report = read_json(t.work / "inspect.json")
    if not report.get("probabilities") or not report.get("grad_cam"):
        raise CheckFailed("the report has no probabilities or no Grad-CAM")
    figure = (
        f"{report.get('image')}: true {report.get('true')}, predicted "
        f"{report.get('predicted')} · {len(report.get('layers', []))} layers"
    )
    return figure, {k: report.get(k) for k in ("image", "true", "predicted")}


def check_exports(t: Target, outputs: list[str]) -> tuple[str, dict[str, Any]]:
    written = [last_json(output) for output in outputs]
    parts = [
        f"{w['format']} {text.number(w.get('max_relative_difference'), '.1e')}" for w in written
    ]
    figure = (
        f"checked on {written[0].get('checked_images')} test images, largest relative "
        f"difference: {', '.join(parts)}"
    )
    return figure, {"files": [{k: w.get(k) for k in ("format", "bytes")} for w in written]}


# --- running ---------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The steps' environment: this checkout first on the path, output unbuffered."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


class Runner:
    """Runs the steps: the log (one block per command, whole, as lanes write side by side), the
    process groups alive now (ended all at once on Ctrl+C) and the results so far."""

    def __init__(self, target: Target, budget: float, log: TextIO) -> None:
        self.target = target
        self.deadline = time.monotonic() + budget
        self.log = log
        self.lock = threading.Lock()
        self.groups: set[int] = set()
        self.done: dict[str, Result] = {}
        self.stopping = False

    def say(self, line: str) -> None:
        with self.lock:
            print(line, flush=True)

    def command(self, argv: list[str], timeout: float) -> tuple[int | None, str]:
        """Run `argv` in its own process group (torchrun's ranks, DataLoader workers); at the
        timeout the group gets SIGTERM, then SIGKILL. Returns (exit code or None, output)."""
        with self.lock:
            if self.stopping:
                return None, "(stopped)"
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            self.groups.add(proc.pid)
        try:
            output, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            end_group(proc.pid, signal.SIGTERM)
            try:
                output, _ = proc.communicate(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                end_group(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
            code = None
        finally:
            with self.lock:
                self.groups.discard(proc.pid)
        ended = code if code is not None else f"timeout after {timeout:.0f}s"
        with self.lock:
            self.log.write(f"$ {shlex.join(argv)}\n{output}[exit {ended}]\n\n")
            self.log.flush()
        return code, output

    def stop(self) -> None:
        """Ctrl+C: no new command starts, and every group alive now ends."""
        with self.lock:
            self.stopping = True
            groups = list(self.groups)
        for group in groups:
            end_group(group, signal.SIGTERM)

    def step(self, step: Step) -> Result:
        self.say(f"[{step.name}] {step.what}")
        result = self.run_step(step)
        self.done[step.name] = result
        shown = result.figure if result.status == "ok" else result.error
        self.say(f"[{step.name}] {result.status} ({text.duration(result.seconds)}): {shown}")
        return result

    def run_step(self, step: Step) -> Result:
        commands = [shlex.join(argv) for argv in step.commands]
        result = Result(step.name, step.what, commands, "failed", 0.0)
        if step.skip:
            result.status, result.error = "skipped", step.skip
            return result
        # (a step that this invocation did not run, --only, may have left its files in --work)
        done = self.done
        missing = [need for need in step.needs if need in done and done[need].status != "ok"]
        if missing:
            result.error = f"needs step {', '.join(missing)}, which did not succeed"
            return result
        started = time.monotonic()
        step_deadline = min(self.deadline, started + step.timeout_s)
        outputs = []
        for argv in step.commands:
            timeout = step_deadline - time.monotonic()
            if self.deadline - time.monotonic() < MIN_STEP_S:
                result.error = "not run: the budget is spent (--budget)"
                break
            if timeout <= 0:
                result.error = f"timed out after {step.timeout_s}s, before {shlex.join(argv[2:5])}"
                break
            code, output = self.command(argv, timeout)
            outputs.append(output)
            if self.stopping:
                result.error = STOPPED
                break
            if code is None:
                result.error = f"timed out after {timeout:.0f}s: {last_line(output)}"
                break
            if code != 0:
                result.error = f"exit {code}: {last_line(output)}"
                break
        else:
            try:
                result.figure, result.details = step.check(self.target, outputs)
                result.status = "ok"
            except CheckFailed as exc:
                result.error = text.one_line(str(exc))
            except Exception as exc:  # a reading that broke: the step failed, the next one runs
                result.error = text.one_line(f"{type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        return result

    def lanes(self, steps: list[Step]) -> None:
        """Steps of several lanes: each lane's in order, the lanes side by side."""
        lanes: dict[str, list[Step]] = {}
        for step in steps:
            lanes.setdefault(step.lane, []).append(step)
        pool = ThreadPoolExecutor(len(lanes))
        try:
            for future in [pool.submit(lambda ss: [self.step(s) for s in ss], ss)
                           for ss in lanes.values()]:  # fmt: skip
                future.result()
        except KeyboardInterrupt:
            self.stop()  # (before waiting for the lanes: their commands end now)
            raise
        finally:
            pool.shutdown(wait=True)


def end_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return text.one_line(lines[-1]) if lines else "(no output)"


def run_plan(steps: list[Step], t: Target, budget: float, log: TextIO) -> list[Result]:
    """Run `steps` in order (a run of consecutive steps with lanes: side by side); their results
    in the plan's order. Ctrl+C ends the steps under way; the results so far are returned."""
    runner = Runner(t, budget, log)
    try:
        index = 0
        while index < len(steps):
            if not steps[index].lane:
                runner.step(steps[index])
                index += 1
                continue
            end = index
            while end < len(steps) and steps[end].lane:
                end += 1
            runner.lanes(steps[index:end])
            index = end
    except KeyboardInterrupt:
        runner.stop()
        runner.say("stopped (Ctrl+C): the steps under way were ended")
    return [runner.done[step.name] for step in steps if step.name in runner.done]


# --- the report ------------------------------------------------------------------------------------


def cell(value: str) -> str:
    """Text for a Markdown table cell (a | would end it)."""
    return text.one_line(value).replace("|", "\\|")


def markdown(results: list[Result], header: dict[str, Any]) -> str:
    lines = [
        "# GPU check",
        "",
        f"{header['device']} · {header['date']} · {text.duration(header['seconds'])} of a "
        f"{text.duration(header['budget_s'])} budget"
        + (" · **dry run on the CPU, toy sizes**" if header["dry_run"] else ""),
        "",
        "| step | result | seconds | key figure |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        shown = r.figure if r.status == "ok" else r.error
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {cell(shown)} |")
    for r in results:
        if r.name.startswith("bench-") and r.status == "ok":
            lines += ["", f"## {r.name}", "", *bench_table(r.details["rows"])]
    return "\n".join(lines) + "\n"


def bench_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| model | engine train | seed train | × | engine eval | seed eval | × | amp | channels_last |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {text.count(r['engine_train'])} | {text.count(r['seed_train'])} | "
            f"{ratio_text(r['train_ratio'])} | {text.count(r['engine_eval'])} | "
            f"{text.count(r['seed_eval'])} | {ratio_text(r['eval_ratio'])} | "
            f"{r['amp'] or 'fp32'} | {'on' if r['channels_last'] else 'off'} |"
        )
    return lines


def write_report(out: Path, results: list[Result], header: dict[str, Any]) -> None:
    from cnn_tui.fileio import atomic_write_text

    report = {**header, "steps": [r.__dict__ for r in results]}
    atomic_write_text(
        out / "gpu-check.json", json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n"
    )
    atomic_write_text(out / "gpu-check.md", markdown(results, header))


def print_plan(steps: list[Step], t: Target, budget: float) -> None:
    print(f"GPU check plan ({t.device}, {len(steps)} steps, budget {text.duration(budget)}):")
    for step in steps:
        print(f"\n[{step.name}] {step.what} (timeout {step.timeout_s}s)")
        if step.skip:
            print(f"  skipped: {step.skip}")
        if step.needs:
            print(f"  reads: {', '.join(step.needs)}")
        for argv in step.commands:
            print(f"  $ {shlex.join(argv)}")
        if not step.commands:
            print("  (reads the files of the steps before it)")


def count_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pick(steps: list[Step], only: str | None) -> list[Step]:
    if not only:
        return steps
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in STEP_NAMES]
    if unknown:
        raise ValueError(f"unknown step {', '.join(unknown)}; steps: {', '.join(STEP_NAMES)}")
    return [step for step in steps if step.name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu-check.sh",
        description="Run the CUDA path of every feature, step by step, into OUT/gpu-check.json "
        "and OUT/gpu-check.md.",
    )
    add = parser.add_argument
    add("--out", default=OUT_DIR, metavar="DIR", help=f"report folder (default: {OUT_DIR})")
    add("--data-dir", metavar="DIR", help=f"Fashion-MNIST (default: the checkout's {DATA_DIR})")
    add("--work", metavar="DIR", help="folder for the runs (default: a new temporary folder)")
    add("--budget", type=float, default=BUDGET_S, metavar="SECONDS",
        help=f"for all steps together (default: {BUDGET_S})")  # fmt: skip
    add("--only", metavar="STEPS", help="a comma list of steps: " + ", ".join(STEP_NAMES))
    add("--own-model", default=OWN_MODEL, metavar="FILE.py:Class",
        help=f"the own-model step's model (default: {OWN_MODEL})")  # fmt: skip
    add("--dry-run", action="store_true",
        help="print the GPU plan, then run its toy version on the CPU")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--environment"]:
        return environment_probe(argv[1])
    if argv[:1] == [NCCL_PROBE_FLAG]:
        return nccl_probe(argv[1], argv[2])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        pick([], args.only)  # (a step name that does not exist: exit 2 before anything runs)
    except ValueError as exc:
        parser.error(str(exc))
    out = Path(args.out).resolve()
    data_dir = Path(args.data_dir).resolve() if args.data_dir else ROOT / DATA_DIR
    if not args.dry_run and not (data_dir / "train-images-idx3-ubyte.gz").is_file():
        print(
            f"gpu-check: no Fashion-MNIST in {data_dir}: copy its four IDX .gz files there "
            "(e.g. from Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist) "
            "or pass --data-dir",
            file=sys.stderr,
        )
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-")).resolve()
    gpus = 0 if args.dry_run else count_gpus()
    t = gpu_target(str(data_dir), gpus, work, out)
    if args.dry_run:
        print_plan(pick(plan(t, args.own_model), args.only), t, args.budget)
        print(f"\nDry run: the same steps on the CPU at toy sizes, runs in {work}\n")
        t = cpu_target(work, out)
    steps = pick(plan(t, args.own_model), args.only)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(out / "gpu-check.log", "w", encoding="utf-8") as log:
        results = run_plan(steps, t, args.budget, log)
    header = {
        "device": t.device if t.tiny else "cuda",
        "gpus": gpus,
        "dry_run": args.dry_run,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": time.monotonic() - started,
        "budget_s": args.budget,
        "data": list(t.data),
        "work": str(work),
    }
    env = next((r.details for r in results if r.name == "environment" and r.status == "ok"), {})
    if env.get("gpu_names"):
        header["device"] = ", ".join(env["gpu_names"])
    write_report(out, results, header)
    failed = [r.name for r in results if r.status == "failed"]
    skipped = [r.name for r in results if r.status == "skipped"]
    stopped = any(r.error == STOPPED for r in results)
    print(
        f"\n{len(results) - len(failed) - len(skipped)} of {len(results)} steps ok"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
        + f". Report: {out / 'gpu-check.md'} (and .json, .log)"
    )
    return 130 if stopped else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
