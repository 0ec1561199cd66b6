"""The start-up timeline of `cnn-tui train --no-ui`: the probe `cnn-tui bench --startup` runs.

    python -m cnn_tui.commands.train_probe TRAIN_ARGS...

A fresh process runs `cnn-tui train TRAIN_ARGS` (`cnn_tui.cli.main`, as the command does) with a
mark at the end of each phase of its start-up, and as soon as the trainer has written its first
batch event to metrics.jsonl it writes one line, `PROBE_MARKER` and a JSON list of the marks, to
file descriptor 1 (past the trainer's tee of stdout) and leaves at once (`os._exit`: the run is
cut short; its folder is the benchmark's temporary one). Each mark is [phase, unix seconds, CPU
seconds of this process so far, every thread]. The phases, in order
(`cnn_tui.bench.timeline.PHASES`, where the benchmark reads them back):

- `python`: the interpreter is up and runs this module;
- `cli`: `cnn_tui.cli` imported (the flags' parser);
- `torch`: `import torch`;
- `training modules`: the engine and the modules it imports;
- `settings and run folder`: the flags parsed, the settings checked, the run folder made and
  locked, its first files written (`engine.train` entered);
- `data`: the data set read and split (`setup.load_data` returned);
- `torch._dynamo`: the optimizer's import, begun on a background thread before the data
  (`background_import`), is done;
- `model`: the model, its start weights and the optimizer built (`setup.prepare` returned);
- `first batch event`: the first step taken and its event written (the event's own clock).

The probe imports cli, torch and the training modules itself, in that order, before it hands
over to the command, so each import is a phase of its own; the command then finds them loaded.
Nothing of the command changes. It lives among the commands because it runs one (the core may not
import the CLI).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from cnn_tui.bench.timeline import PHASES, PROBE_MARKER

_marks: list[list[Any]] = []


def mark(phase: str, when: float | None = None) -> None:
    """The end of `phase` now (or at unix time `when`), once: a phase ends the first time."""
    assert phase in PHASES, phase
    if not any(done[0] == phase for done in _marks):
        _marks.append([phase, time.time() if when is None else when, time.process_time()])


def _after(module: Any, name: str, phase: str) -> None:
    """Mark `phase` when `module.name` (a function the command calls by its module) returns."""
    function = getattr(module, name)

    def marked(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        mark(phase)
        return result

    setattr(module, name, marked)


def _before(module: Any, name: str, phase: str) -> None:
    """Mark `phase` when `module.name` is called."""
    function = getattr(module, name)

    def marked(*args: Any, **kwargs: Any) -> Any:
        mark(phase)
        return function(*args, **kwargs)

    setattr(module, name, marked)


def _report_first_batch(event_log: type) -> None:
    """Write the marks and leave when the first batch event has been written."""
    emit = event_log.emit

    def emit_and_report(self: Any, kind: str, **fields: Any) -> dict[str, Any]:
        event = emit(self, kind, **fields)
        if kind == "batch":
            mark("first batch event", event["time"])
            os.write(1, (PROBE_MARKER + json.dumps(_marks) + "\n").encode())
            os._exit(0)
        return event

    event_log.emit = emit_and_report


def main(argv: list[str]) -> int:
    mark("python")
    from cnn_tui import cli

    mark("cli")
    import torch  # noqa: F401 - a phase of its own

    mark("torch")
    from cnn_tui.training.loop import engine, setup
    from cnn_tui.training.runs import store
    from cnn_tui.training.system import background_import

    mark("training modules")
    _before(engine, "train", "settings and run folder")
    _after(setup, "load_data", "data")
    _after(background_import, "wait", "torch._dynamo")
    _after(setup, "prepare", "model")
    _report_first_batch(store.EventLog)
    code = cli.main(["train", *argv])
    print(f"train_probe: the run ended (exit {code}) without a batch event", file=sys.stderr)
    return code or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
