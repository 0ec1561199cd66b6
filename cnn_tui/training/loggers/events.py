"""From a run's events to its loggers' calls: `RunLoggers`, the one place loggers are fed.

The trainer hands every event its engine emits (the dicts of metrics.jsonl, each batch event
before the file's throttle thins them) to `RunLoggers.event`. "run_started" opens the loggers
(lazily: a run that fails before it has nothing to log) and starts them; an event with numbers
becomes `log_scalars` at its global step (`base`); "evaluated" also `log_test`; "finished",
"stopped" and "failed" `finalize`. Events of kinds added later (system readings, ...) are logged
by the same rule: their numbers, under their kind.

A logger that raises is dropped with one warning through `note` (its library's error in one
line) and training goes on: a logger is never a reason to lose a run. Nothing here raises.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnn_tui.text import finite, one_line
from cnn_tui.training.loggers import KINDS
from cnn_tui.training.loggers.base import (
    INDEX_KEYS,
    Evaluated,
    RunLogger,
    RunStart,
    Scalars,
    group_of,
    group_values,
    scalars,
    whole,
)
from cnn_tui.training.runs.store import BatchThrottle

# batch events reach the loggers at most this often (every batch at ordinary speeds: a fast run
# is thinned, as Lightning's log_every_n_steps does, each point's loss the mean since the last;
# an epoch's last batch always): a logger's call costs ~0.1-0.4 ms, far less than a batch then
BATCH_INTERVAL_S = 0.05
ENDS = ("finished", "stopped", "failed")  # the events that end a session: `finalize`
NO_SCALARS = ("run_started", *ENDS)  # what these carry is settings and messages, not metrics
TEST_TABLES = ("confusion_matrix", "classes", "per_class")  # "evaluated": `log_test`'s, not scalars


def make_logger(name: str, run_dir: Path) -> RunLogger:
    """The logger `--log NAME` means, writing into `run_dir` (its library imported now)."""
    module = importlib.import_module(f"cnn_tui.training.loggers.{KINDS[name].module}")
    return module.Logger(run_dir)


class RunLoggers:
    """The loggers of one run in this process, fed its events; `close` when the session ends.

    `names`: the loggers (`TrainConfig.loggers`); `note`: where a warning goes (the trainer's
    reporter, so stderr and the run's output.log); `make`: builds a logger (tests pass fakes)."""

    def __init__(
        self,
        names: Sequence[str],
        run_dir: Path,
        note: Callable[[str], None],
        make: Callable[[str, Path], RunLogger] = make_logger,
    ) -> None:
        self.names, self.run_dir, self.note, self.make = tuple(names), Path(run_dir), note, make
        self.loggers: list[RunLogger] = []
        self.opened = False
        self.batches_per_epoch = 0
        self.step = 0  # the latest global step
        self.throttle = BatchThrottle(BATCH_INTERVAL_S)
        self.lock = threading.RLock()

    def event(self, event: dict[str, Any]) -> None:
        """Pass one event of the run to every logger (never raises). Safe from several threads
        (the loop's events and a sampler's system readings): one event at a time."""
        with self.lock:
            self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if not isinstance(kind, str) or not self.names:
            return
        if kind == "run_started":
            self._open(event)
        if not self.loggers:
            return
        if kind == "batch" and finite(event.get("loss")) and finite(event.get("time")):
            self._step_of(kind, event)  # (every batch moves the step, logged or not)
            event = self.throttle.add(event)
            if event is None:
                return
        if kind not in NO_SCALARS:
            self._scalars(kind, event)
        if kind == "evaluated":
            self._test(event)
        if kind in ENDS:
            self._each("finalize", lambda logger: logger.finalize(kind))

    def close(self) -> None:
        """Close every logger (each once; a failure is reported and ignored)."""
        with self.lock:
            loggers, self.loggers = self.loggers, []
        for logger in loggers:
            try:
                logger.close()
            except Exception as exc:  # noqa: BLE001 - a logger never ends a run
                self._warn(logger, "close", exc)

    # --- the events ----------------------------------------------------------------------------

    def _open(self, event: dict[str, Any]) -> None:
        bpe = whole(event.get("batches_per_epoch")) or 0
        start_epoch = whole(event.get("start_epoch")) or 1
        start_batch = whole(event.get("start_batch")) or 0
        self.batches_per_epoch = bpe
        self.step = max(0, start_epoch - 1) * bpe + start_batch
        config = event.get("config")
        classes = event.get("classes")
        run = RunStart(
            run_dir=self.run_dir,
            config=dict(config) if isinstance(config, dict) else {},
            classes=tuple(str(name) for name in classes) if isinstance(classes, list) else (),
            resumed=bool(event.get("resumed")),
            step=self.step,
            batches_per_epoch=bpe,
        )
        if not self.opened:
            self.opened = True
            for name in self.names:
                try:
                    self.loggers.append(self.make(name, self.run_dir))
                except Exception as exc:  # noqa: BLE001 - a broken install: no logger, the run goes on
                    self.note(
                        f"warning: the {name} logger could not start ({_reason(exc)}): the run "
                        "goes on without it"
                    )
        self._each("start", lambda logger: logger.start(run))
        for logger in self.loggers:
            if where := logger.where():
                self.note(f"{logger.name}: {where}")

    def _step_of(self, kind: str, event: dict[str, Any]) -> int:
        epoch, batch = whole(event.get("epoch")), whole(event.get("batch"))
        batches = whole(event.get("batches")) or self.batches_per_epoch
        if kind == "batch" and epoch and batch is not None:
            self.batches_per_epoch = batches
            self.step = (epoch - 1) * batches + batch
        elif kind == "epoch" and epoch:
            self.step = max(self.step, epoch * self.batches_per_epoch)
        return self.step

    def _scalars(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "evaluated":
            event = {key: value for key, value in event.items() if key not in TEST_TABLES}
        values = scalars(event)
        if not values:
            return
        group = group_of(kind)
        time = event.get("time")
        point = Scalars(
            group=group,
            step=self._step_of(kind, event),
            time=float(time) if isinstance(time, int | float) else 0.0,
            values=group_values(group, values),
            index={key: n for key in INDEX_KEYS if (n := whole(event.get(key))) is not None},
        )
        self._each("log", lambda logger: logger.log_scalars(point))

    def _test(self, event: dict[str, Any]) -> None:
        matrix, classes = event.get("confusion_matrix"), event.get("classes")
        per_class = event.get("per_class")
        if not (isinstance(matrix, list) and isinstance(classes, list)):
            return
        result = Evaluated(
            metrics=group_values(
                "test", scalars({k: v for k, v in event.items() if k not in TEST_TABLES})
            ),
            confusion=matrix,
            classes=tuple(str(name) for name in classes),
            per_class=[row for row in per_class if isinstance(row, dict)]
            if isinstance(per_class, list)
            else [],
            step=self.step,
        )
        self._each("log the test results", lambda logger: logger.log_test(result))

    # --- failures ------------------------------------------------------------------------------

    def _each(self, what: str, call: Callable[[RunLogger], None]) -> None:
        for logger in list(self.loggers):
            try:
                call(logger)
            except Exception as exc:  # noqa: BLE001 - a logger never ends a run
                self.loggers.remove(logger)
                self._warn(logger, what, exc)
                try:
                    logger.close()
                except Exception:  # noqa: BLE001, S110 - it failed already; said once
                    pass

    def _warn(self, logger: RunLogger, what: str, exc: BaseException) -> None:
        self.note(
            f"warning: the {logger.name} logger failed to {what} ({_reason(exc)}): it logs "
            "nothing more for this run; training goes on"
        )


def _reason(exc: BaseException) -> str:
    """An exception in one line, for a warning ("OSError: [Errno 28] No space left ...")."""
    return one_line(f"{type(exc).__name__}: {exc}")[:300]
