"""The process-wide speed settings: glibc's malloc tunables, fused optimizers, the quick exit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from cli_process import ENV, run_cnn_tui

from cnn_tui import cli
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import checkpoints, engine, metrics, setup
from cnn_tui.training.system import devices, host_memory

# how many bytes glibc holds in mmap'ed blocks after allocating 8 MiB (a fresh interpreter)
MMAPPED_AFTER_ALLOCATION = textwrap.dedent(
    """
    import ctypes, sys
    from cnn_tui.training.system import host_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    applied = host_memory.keep_freed_memory() if sys.argv[1] == "tuned" else False
    before = libc.mallinfo2().hblkhd
    block = bytearray(8 * 1024**2)
    print(applied, libc.mallinfo2().hblkhd - before)
    """
)

needs_glibc = pytest.mark.skipif(
    host_memory.glibc() is None or not hasattr(host_memory.glibc(), "mallinfo2"),
    reason="glibc 2.33 or later only",
)


def mmapped_after_allocation(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", MMAPPED_AFTER_ALLOCATION, mode],
        env={**ENV, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


@needs_glibc
def test_keep_freed_memory_serves_large_blocks_from_the_heap():
    applied, mmapped = mmapped_after_allocation("default")
    assert applied == "False" and mmapped >= 8 * 1024**2  # glibc: an mmap of its own
    assert mmapped_after_allocation("tuned") == ("True", 0)


@needs_glibc
def test_keep_freed_memory_leaves_the_users_own_malloc_settings_alone():
    applied, mmapped = mmapped_after_allocation("tuned", MALLOC_MMAP_THRESHOLD_="65536")
    assert applied == "False" and mmapped > 8 * 1024**2


def test_the_optimizers_are_fused_on_the_cpu():
    params = [torch.nn.Parameter(torch.zeros(3))]
    for name in ("sgd", "adam", "adamw"):
        config = TrainConfig.from_mapping({"optimizer": name, "lr": 0.01})
        assert setup.build_optimizer(config, params).defaults["fused"] is True, name
    # an integer "parameter" cannot be fused: the plain implementation then
    assert not setup.fused_supported(torch.zeros(3, dtype=torch.int64))


def test_run_exits_at_once_after_flushing_once_torch_is_loaded(monkeypatch, capsys):
    exits = []
    monkeypatch.setattr(cli, "main", lambda: print("last line", end="") or 3)
    monkeypatch.setattr(cli.os, "_exit", lambda code: exits.append((code, capsys.readouterr())))
    monkeypatch.setattr(sys, "gettrace", lambda: None)
    monkeypatch.setattr(sys, "getprofile", lambda: None)
    cli.run()
    assert exits[0][0] == 3 and exits[0][1].out == "last line"  # flushed before the exit


def test_run_exits_as_usual_without_torch_or_under_a_profiler(monkeypatch):
    monkeypatch.setattr(cli, "main", lambda: 4)
    monkeypatch.setattr(cli.os, "_exit", lambda code: pytest.fail("os._exit"))
    monkeypatch.setattr(sys, "getprofile", lambda: object())  # cProfile writes its file at exit
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 4


@pytest.mark.slow
def test_a_quick_exit_keeps_every_file_and_line_of_a_run(tmp_path):
    done = run_cnn_tui(
        "train", "--no-ui", "--dataset", "shapes", "--limit", "60", "--epochs", "1",
        "--batch-size", "30", "--hidden-units", "4", "--device", "cpu", "--run-dir", "r",
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("files: r/")
    run = tmp_path / "r"
    assert checkpoints.load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "finished"


@pytest.mark.parametrize(
    "capabilities, native",
    [
        ({"avx512_f": True, "avx512_bf16": True}, True),  # Zen 4/5, Cooper Lake
        ({"amx_bf16": True, "amx_tile": True}, True),  # Sapphire Rapids
        ({"avx2": True, "avx512_f": True, "avx512_bf16": False}, False),  # Skylake-SP
        ({"architecture": "arm64", "neon": True}, False),
    ],
)
def test_native_bf16_is_read_from_torchs_cpu_capabilities(monkeypatch, capabilities, native):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    assert devices.cpu_has_native_bf16() is native


def test_the_cpu_autocasts_to_bf16_only_where_it_has_bf16_in_hardware(monkeypatch):
    cpu, on, off = torch.device("cpu"), TrainConfig(), TrainConfig(amp=False, channels_last=False)
    for native in (True, False):
        monkeypatch.setattr(setup, "cpu_has_native_bf16", lambda native=native: native)
        assert setup.speed_settings(on, cpu, 28) == (True, torch.bfloat16 if native else None)
        assert setup.speed_settings(on, cpu, 224) == (True, torch.bfloat16 if native else None)
        assert setup.speed_settings(off, cpu, 28) == (False, None)  # --no-amp --no-channels-last


def test_a_bf16_run_trains_and_its_predictions_agree_with_its_evaluation(monkeypatch, tmp_path):
    from cnn_tui.training.tools.run_model import load_run_model, load_test_split

    monkeypatch.setattr(setup, "cpu_has_native_bf16", lambda: True)  # emulated where it is not
    config = TrainConfig(dataset="shapes", limit=120, epochs=2, batch_size=32, hidden_units=4,
                         device="cpu", lr=0.01)  # fmt: skip
    events: list[dict] = []
    summary = engine.train(config, tmp_path / "run", on_event=events.append)
    assert events[0]["amp"] == "bf16"
    losses = [e["train_loss"] for e in events if e["event"] == "epoch"]
    assert all(0 < loss < 10 for loss in losses) and losses[1] < losses[0]
    run = load_run_model(tmp_path / "run", "cpu")
    assert run.amp_dtype == torch.bfloat16
    images, labels = load_test_split(run)
    predicted = run.probabilities(images).argmax(1)
    assert float((predicted == labels).mean()) == pytest.approx(summary["test_accuracy"])
    matrix = metrics.confusion_matrix(labels.tolist(), predicted.tolist(), len(run.classes))
    assert summary["confusion_matrix"] == matrix.tolist()
