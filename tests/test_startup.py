"""Fast start-up, asserted by structure rather than by timing.

`cnn-tui --help` and the home screen must not wait for PyTorch (about 1-2 s to import on a small
machine): torch is imported only by the code that trains, benchmarks or checks a lesson against it.
Each check runs in a fresh interpreter and looks at `sys.modules` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _modules_after(code: str) -> dict[str, bool]:
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'torchvision', 'textual', 'numpy')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["cnn_tui.cli", "cnn_tui.commands.bench", "cnn_tui.ui.app", "cnn_tui.ui.home"]
)
def test_start_up_modules_do_not_import_torch(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert not loaded["torch"] and not loaded["torchvision"]


def test_help_of_every_subcommand_runs_without_torch() -> None:
    code = (
        "import contextlib, io\n"
        "from cnn_tui.cli import main\n"
        "for argv in (['--help'], ['bench', '--help'], ['train', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
    )
    loaded = _modules_after(code)
    # numpy too: the parser of every subcommand is argparse only (70 ms saved on each --help)
    assert loaded == {"torch": False, "torchvision": False, "textual": False, "numpy": False}


def test_painting_the_home_screen_does_not_import_torch(tmp_path) -> None:
    code = (
        "import argparse, asyncio\n"
        "from cnn_tui.ui.app import CnnTuiApp\n"
        "async def paint():\n"
        f"    app = CnnTuiApp(runs_dir={str(tmp_path)!r})\n"
        "    async with app.run_test(size=(100, 30)) as pilot:\n"
        "        await pilot.pause()\n"
        "        await app.workers.wait_for_complete()\n"
        "        assert type(app.screen).__name__ == 'HomeScreen', app.screen\n"
        "asyncio.run(paint())\n"
    )
    loaded = _modules_after(code)
    assert loaded["textual"] and not loaded["torch"] and not loaded["torchvision"]


def test_bench_startup_mode_reports_both_times(tmp_path) -> None:
    from cnn_tui.bench.timeline import PHASES
    from cnn_tui.cli import main

    out = tmp_path / "startup.json"
    argv = ["bench", "--startup", "--repeats", "1", "--limit", "100", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "startup"
    assert report["environment"]["bytecode"] == "cached"
    for key in ("help_seconds", "home_screen_seconds", "import_torch_seconds"):
        assert report["results"][key] > 0
    # the headless trainer: spawned to its first batch event, and the probe's timeline of it
    (trainer,) = report["results"]["trainers"]
    assert trainer["run"] == "simple-cnn on shapes" and trainer["start_to_first_batch_s"] > 0
    assert [phase["phase"] for phase in trainer["phases"]] == list(PHASES)
    assert all(phase["seconds"] >= 0 for phase in trainer["phases"])
    total = sum(phase["seconds"] for phase in trainer["phases"])
    assert total == pytest.approx(trainer["probe_start_to_first_batch_s"])


def test_bench_times_starts_with_the_package_bytecode_cached(tmp_path) -> None:
    # where PYTHONDONTWRITEBYTECODE is set, an editable install compiles every module at each
    # start; bench compiles them first, as `pip install` does, and says when it could not
    import importlib.util

    from cnn_tui.bench.startup import cache_bytecode

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "sub" / "mod.py").write_text("Y = 2\n")
    assert cache_bytecode(package) == "cached"
    for source in (package / "__init__.py", package / "sub" / "mod.py"):
        assert Path(importlib.util.cache_from_source(str(source))).is_file()
    (package / "bad.py").write_text("def (:\n")  # a file that does not compile
    assert cache_bytecode(package) == "compiled at each start"


def test_bench_startup_goes_on_when_torchvision_does_not_import(monkeypatch, tmp_path) -> None:
    # a torchvision built for another torch fails its import: that row says so, the rest is timed
    from cnn_tui.bench import startup
    from cnn_tui.cli import build_parser
    from cnn_tui.commands.bench import format_startup, options_from_args

    monkeypatch.setattr(startup, "SCALE_IMPORT", "import torch; raise ImportError('mismatch')")
    monkeypatch.setattr(startup, "_tmux_paint_seconds", lambda runs_dir: None)
    monkeypatch.setattr(startup, "trainer_report", lambda opts, note: [])
    args = build_parser().parse_args(["bench", "--startup", "--repeats", "1"])
    report = startup.startup_report(options_from_args(args))
    results = report["results"]
    assert results["import_torchvision_failed"] is True
    assert "import_torch_seconds" not in results and results["import_torch_only_seconds"] > 0
    shown = format_startup(report)
    assert "import torch, torchvision: failed" in shown and "import torch (what a" in shown
