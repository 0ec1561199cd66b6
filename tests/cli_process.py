"""Running `python -m cnn_tui` as a child process in the tests (one thread, unbuffered output).

Import with `from cli_process import ENV, run_cnn_tui` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_cnn_tui(*argv: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m cnn_tui ARGV...` in `cwd`, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cnn_tui", *argv],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},  # (as the test set it)
        capture_output=True,
        text=True,
        timeout=timeout,
    )
