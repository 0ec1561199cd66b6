"""cnn_tui.training.system.background_import: torch.optim's torch._dynamo loads while the data does."""

from __future__ import annotations

import builtins
import importlib
import subprocess
import sys
import textwrap
import threading

import pytest
from cli_process import ENV

from cnn_tui.training.system import background_import

GATED = """
import builtins
builtins._cnn_tui_gate.wait()  # the test lets the import finish
VALUE = 42
"""


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A folder on sys.path for throw-away modules, which are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_the_import_runs_on_its_own_thread_until_waited_for(modules, monkeypatch):
    (modules / "gated_module.py").write_text(GATED)
    gate = threading.Event()
    monkeypatch.setattr(builtins, "_cnn_tui_gate", gate, raising=False)
    background_import.start("gated_module")
    # start returned while the module's body is still blocked: the import is elsewhere
    assert [t.name for t in threading.enumerate()].count("import gated_module") == 1
    gate.set()
    background_import.wait()
    assert sys.modules["gated_module"].VALUE == 42
    assert "import gated_module" not in [t.name for t in threading.enumerate()]


def test_a_failed_background_import_leaves_the_error_to_the_real_import(modules):
    (modules / "broken_module.py").write_text("raise ValueError('broken on purpose')\n")
    background_import.start("broken_module")
    background_import.wait()  # nothing raised here
    with pytest.raises(ValueError, match="broken on purpose"):
        importlib.import_module("broken_module")


def test_an_imported_module_starts_no_thread():
    background_import.start("json")
    assert not background_import._pending


SEEN_WHILE_LOADING = textwrap.dedent(
    """
    import sys, threading
    from cnn_tui import cli
    from cnn_tui.training.loop import setup

    real_load = setup.load_data
    def load_data(config):
        threads = [t.name for t in threading.enumerate()]
        print("while loading:", "import torch._dynamo" in threads, flush=True)
        return real_load(config)
    setup.load_data = load_data
    code = cli.main(["train", "--no-ui", "--dataset", "shapes", "--limit", "60", "--epochs", "1",
                     "--batch-size", "20", "--model", "the3-cnn", "--run-dir", sys.argv[1]])
    print("after the run:", code, "torch._dynamo" in sys.modules, flush=True)
    """
)


def test_a_run_imports_torch_dynamo_while_its_data_loads(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SEEN_WHILE_LOADING, str(tmp_path / "run")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("while", "after"))]
    assert lines == ["while loading: True", "after the run: 0 True"]
