"""The package's import contracts (pyproject.toml, [tool.importlinter]) hold.

Lessons and training never import each other, the core never imports the UI, the commands or the
CLI, neither the core nor the UI imports argparse (flags become typed settings in `cnn_tui.commands`),
the catalogue and the formatters are leaves, nothing outside `cnn_tui.ui` imports Textual, and the
lessons run without torch. import-linter reads
the imports statically, lazy ones inside functions included, so a contract breaks the day a
forbidden import is written, not when it happens to run.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_ruff_lint_and_format_are_clean() -> None:
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "cnn_tui", "tests", "scripts"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, f"ruff {' '.join(command)}:\n{proc.stdout[-3000:]}"


def test_the_contracts_keep_the_command_line_at_the_edge() -> None:
    """The argparse contract covers the whole core and the UI: a package left out of it could take
    an argparse namespace again without any check noticing."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    sources = {
        module
        for contract in contracts
        if "argparse" in contract.get("forbidden_modules", [])
        for module in contract["source_modules"]
    }
    packages = {
        f"cnn_tui.{path.stem}"
        for path in (ROOT / "cnn_tui").iterdir()
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py"
    }
    edge = {"cnn_tui.commands", "cnn_tui.cli", "cnn_tui.__init__", "cnn_tui.__main__"}
    assert packages - edge <= sources, packages - edge - sources
