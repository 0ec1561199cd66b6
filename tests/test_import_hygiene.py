"""The headless modules never load the TUI, and the quick paths never load torch.

`cnn-tui ... --no-ui` runs on servers and in CI, and `--help` or a lesson trace should start
at once; a stray module-level import undoes that quietly. Each check imports in a fresh
interpreter and looks at `sys.modules`, the only way to see what an import really pulls in.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

# Modules on the path of `--help` and of the lesson traces: neither textual nor torch.
QUICK = [
    "cnn_tui.cli",
    "cnn_tui.lessons.naive",
    "cnn_tui.lessons.examples",
    "cnn_tui.lessons.args",
    "cnn_tui.lessons.trace",
    "cnn_tui.errors",
    "cnn_tui.assets",
]
# The training side: torch is expected, textual is not. Those not written yet are skipped.
TRAINING = [
    "cnn_tui.training.config",
    "cnn_tui.training.datasets",
    "cnn_tui.training.models",
    "cnn_tui.training.engine",
    "cnn_tui.training.metrics",
    "cnn_tui.training.runs",
    "cnn_tui.training.headless",
    "cnn_tui.bench.measure",
]


def run_probe(code: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line last."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loaded_after(code: str) -> dict[str, bool]:
    """Which of textual / torch are imported after running `code` in a fresh interpreter."""
    return run_probe(
        f"{code}\nimport json, sys\n"
        "print(json.dumps({m: m in sys.modules for m in ('textual', 'torch')}))"
    )


@pytest.mark.parametrize("module", QUICK)
def test_quick_module_imports_neither_textual_nor_torch(module: str) -> None:
    assert loaded_after(f"import {module}") == {"textual": False, "torch": False}


def test_training_modules_do_not_import_the_tui() -> None:
    present = [m for m in TRAINING if importlib.util.find_spec(m) is not None]
    if not present:
        pytest.skip("no training module exists yet")
    # One interpreter for all (each loads torch, seconds apiece); textual's presence only
    # grows, so the first module after which it appears is the one that pulled it in.
    culprit = run_probe(
        "import importlib, json, sys\n"
        f"culprit = None\nfor name in {present!r}:\n"
        "    importlib.import_module(name)\n"
        "    if culprit is None and 'textual' in sys.modules:\n"
        "        culprit = name\n"
        "print(json.dumps(culprit))"
    )
    assert culprit is None, f"importing {culprit} loads textual"


def test_building_the_parser_loads_neither_textual_nor_torch() -> None:
    """`cnn-tui --help` builds every subcommand's flags; that must stay instant."""
    loaded = loaded_after("from cnn_tui.cli import build_parser\nbuild_parser()")
    assert loaded == {"textual": False, "torch": False}


def test_a_lesson_trace_runs_without_textual_or_torch() -> None:
    code = (
        "import contextlib, io\n"
        "from cnn_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['conv', '--no-ui', '--backward']) == 0\n"
        "    assert main(['pool', '--no-ui', '--backward']) == 0\n"
    )
    assert loaded_after(code) == {"textual": False, "torch": False}
