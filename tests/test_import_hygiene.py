"""The headless modules never load the TUI, and the quick paths never load torch.

`cnn-tui ... --no-ui` runs on servers and in CI, and `--help` or a lesson trace should start
at once; a stray module-level import undoes that quietly. Each check imports in a fresh
interpreter and looks at `sys.modules`, the only way to see what an import really pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cnn_tui

# The modules allowed to load torch when imported: the models, the data sets and the loops
# that use them. Every other module of the package (found by walking it, so a new module is
# covered the day it is added) must import without torch.
TORCH_AT_IMPORT = {
    "cnn_tui.training.data.datasets",
    "cnn_tui.training.models.registry",
    "cnn_tui.training.models.zoo",
    "cnn_tui.training.models.fast",
    "cnn_tui.training.models.layers",
    "cnn_tui.training.loop.engine",
    "cnn_tui.training.loop.setup",
    "cnn_tui.training.loop.checkpoints",
    "cnn_tui.training.loop.bookkeeping",
    "cnn_tui.training.models.feature_cache",
    "cnn_tui.bench.reference_loop",
}


def package_modules() -> list[str]:
    """Every module of cnn_tui, found on disk without importing it (`__main__` runs the app)."""
    root = Path(cnn_tui.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = package_modules()
CORE = [name for name in MODULES if not name.startswith("cnn_tui.ui")]
LIGHT = [name for name in MODULES if name not in TORCH_AT_IMPORT]


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


def first_module_that_loads(modules: list[str], heavy: str) -> str | None:
    """Import `modules` in order in one fresh interpreter; the first after which `heavy` is loaded.

    What an interpreter has loaded only grows, so that module is the one that pulled it in.
    """
    return run_probe(
        "import importlib, json, sys\n"
        f"culprit = None\nfor name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"    if culprit is None and {heavy!r} in sys.modules:\n"
        "        culprit = name\n"
        "print(json.dumps(culprit))"
    )


def test_the_walk_finds_every_package_and_the_allow_list_is_current() -> None:
    for package in ("cnn_tui.lessons", "cnn_tui.training", "cnn_tui.bench", "cnn_tui.ui"):
        assert package in MODULES
    assert "cnn_tui.lessons.naive" in MODULES and "cnn_tui.ui.training.form" in MODULES
    stale = TORCH_AT_IMPORT - set(MODULES)
    assert not stale, f"TORCH_AT_IMPORT names modules that no longer exist: {sorted(stale)}"


def test_nothing_outside_the_ui_loads_textual() -> None:
    culprit = first_module_that_loads(CORE, "textual")
    assert culprit is None, f"importing {culprit} loads textual"


def test_only_the_listed_modules_load_torch() -> None:
    """`--help`, the lesson traces, run listing and the TUI's first screen start without torch."""
    culprit = first_module_that_loads(LIGHT, "torch")
    assert culprit is None, (
        f"importing {culprit} loads torch (add it to TORCH_AT_IMPORT only if it must)"
    )


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
