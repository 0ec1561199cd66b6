"""The package's import contracts (pyproject.toml, [tool.importlinter]) hold.

Lessons and training never import each other, the core never imports the UI or the CLI, nothing
outside `cnn_tui.ui` imports Textual, and the lessons run without torch. import-linter reads
the imports statically, lazy ones inside functions included, so a contract breaks the day a
forbidden import is written, not when it happens to run.
"""

from __future__ import annotations

import subprocess
import sys
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
            [sys.executable, "-m", "ruff", *command, "cnn_tui", "tests"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, f"ruff {' '.join(command)}:\n{proc.stdout[-3000:]}"
