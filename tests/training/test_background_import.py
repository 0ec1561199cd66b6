"""cnn_tui.training.system.background_import: torch.optim's torch._dynamo loads while the run
folder is made and the data loads."""

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


def test_a_second_start_of_an_import_under_way_starts_no_thread(modules, monkeypatch):
    (modules / "gated_twice.py").write_text(GATED)
    gate = threading.Event()
    monkeypatch.setattr(builtins, "_cnn_tui_gate", gate, raising=False)
    background_import.start("gated_twice")
    background_import.start("gated_twice")  # (the trainer starts it, then the engine)
    assert [t.name for t in threading.enumerate()].count("import gated_twice") == 1
    gate.set()
    background_import.wait()
    assert not background_import._pending and sys.modules["gated_twice"].VALUE == 42


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
    from cnn_tui.training.runs import store
    from cnn_tui.training.system import background_import

    def under_way():  # started and not yet waited for (however fast the import is)
        return "torch._dynamo" in background_import._pending

    real_lock = store.lock_run
    def lock_run(run_dir):
        print("while the run folder is locked:", under_way(), flush=True)
        return real_lock(run_dir)
    store.lock_run = lock_run
    real_load = setup.load_data
    def load_data(config):
        print("while loading:", under_way(), flush=True)
        return real_load(config)
    setup.load_data = load_data
    real_prepare = setup.prepare
    def prepare(*args, **kwargs):
        print("prepared after it:", "torch._dynamo" in sys.modules and not under_way(),
              flush=True)
        return real_prepare(*args, **kwargs)
    setup.prepare = prepare
    code = cli.main(["train", "--no-ui", "--dataset", "shapes", "--limit", "60", "--epochs", "1",
                     "--batch-size", "20", "--model", "the3-cnn", "--run-dir", sys.argv[1]])
    print("after the run:", code, "torch._dynamo" in sys.modules, flush=True)
    """
)


def test_a_run_imports_torch_dynamo_while_its_folder_is_made_and_its_data_loads(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SEEN_WHILE_LOADING, str(tmp_path / "run")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [
        line for line in proc.stdout.splitlines() if line.startswith(("while", "after", "prepared"))
    ]
    assert lines == [
        "while the run folder is locked: True",
        "while loading: True",
        "prepared after it: True",
        "after the run: 0 True",
    ]
