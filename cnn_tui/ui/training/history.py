"""What the dashboard knows about a run, folded from its events; bounded in memory.

`RunHistory.add(events)` takes the dicts of `metrics.jsonl` in order. Epoch rows are kept whole
(one per epoch); the per-batch loss curve is the trainer's `smoothed_loss` (a debiased moving
average over every batch, `runs.LossSmoother`), so it agrees with the epoch table however thinly the
batch events were written; a run file from before `smoothed_loss` existed is smoothed here over
the events it has. Batch points (loss and images/s) are kept as at most `max_points`: when full,
every other point is dropped and only every second batch is recorded from then on, so a run of any
length costs the same memory; `metrics` holds every scalar of the events as named series (the
Metrics tab's, `training.runs.series`). No textual import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cnn_tui import text
from cnn_tui.training.loop import early_stop
from cnn_tui.training.runs.series import MetricHistory
from cnn_tui.training.runs.store import LossSmoother, count_or_zero


@dataclass
class RunHistory:
    max_points: int = 600

    started: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    last_batch: dict[str, Any] | None = None
    evaluated: dict[str, Any] | None = None
    end: dict[str, Any] | None = None  # the finished / failed / stopped event
    early_stop: dict[str, Any] | None = None  # the early_stop event (--early-stop ended the run)
    batch_x: list[float] = field(default_factory=list)  # fractional epoch of each point
    batch_loss: list[float] = field(default_factory=list)  # smoothed loss
    throughput: list[float] = field(default_factory=list)  # images/s of each batch point
    log: list[str] = field(default_factory=list)  # lines for the log panel, new since last take
    metrics: MetricHistory = field(default_factory=MetricHistory)  # every scalar (Metrics tab)

    _stride: int = 1
    _seen: int = 0
    _fallback: LossSmoother = field(default_factory=LossSmoother)  # old files: no smoothed_loss

    def add(self, events: list[dict[str, Any]]) -> set[str]:
        """Fold events in; returns the kinds seen (e.g. {"batch", "epoch"}) to know what to redraw."""
        kinds: set[str] = set()
        for event in events:
            kind = str(event.get("event", ""))
            kinds.add(kind)
            self.metrics.add_event(event)
            handler = getattr(self, f"_on_{kind}", None)
            if handler is not None:
                handler(event)
        return kinds

    def take_log(self) -> list[str]:
        lines, self.log = self.log, []
        return lines

    # --- derived values -----------------------------------------------------------------------

    @property
    def epochs_total(self) -> int:
        if self.started is not None:
            return count_or_zero(self.started.get("epochs"))
        if self.epochs:
            return count_or_zero(self.epochs[-1].get("epochs"))
        return 0

    @property
    def batches_per_epoch(self) -> int:
        if self.last_batch is not None:
            return count_or_zero(self.last_batch.get("batches"))
        if self.started is not None:
            return count_or_zero(self.started.get("batches_per_epoch"))
        return 0

    @property
    def classes(self) -> list[str]:
        classes = (self.started or {}).get("classes")
        return [str(name) for name in classes] if isinstance(classes, list) else []

    def progress(self) -> tuple[float, float]:
        """(batches done, batches in the run) for the progress bar."""
        per_epoch = self.batches_per_epoch
        total = self.epochs_total * per_epoch
        if not total:
            return 0.0, 0.0
        if self.end is not None and self.end.get("event") == "finished":
            return float(total), float(total)
        done = 0.0
        if self.epochs:
            done = count_or_zero(self.epochs[-1].get("epoch")) * per_epoch
        if self.last_batch is not None:
            batch_epoch = count_or_zero(self.last_batch.get("epoch"))
            batch_done = (batch_epoch - 1) * per_epoch + count_or_zero(self.last_batch.get("batch"))
            done = max(done, batch_done)
        return float(min(done, total)), float(total)

    @property
    def patience(self) -> int:
        """--early-stop of the run (0: off), from its run_started event."""
        value = ((self.started or {}).get("config") or {}).get("early_stop")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def early_stop_state(self) -> early_stop.State | None:
        """Where early stopping stands (None: off), replayed over the epoch rows read so far."""
        if not self.patience:
            return None
        config = (self.started or {}).get("config") or {}
        metric = config.get("early_stop_metric") or "val_loss"
        min_delta = config.get("min_delta")
        min_delta = float(min_delta) if text.finite(min_delta) else 0.0
        return early_stop.replay(self.epochs, str(metric), min_delta, self.patience)

    def kept_epoch(self) -> int | None:
        """The epoch whose weights early stopping keeps (best.pt), or None."""
        if self.early_stop is not None and isinstance(self.early_stop.get("best_epoch"), int):
            return self.early_stop["best_epoch"]
        state = self.early_stop_state()
        return state.best_epoch if state is not None and state.best_epoch else None

    def best_val_acc(self) -> float | None:
        values = [e["val_acc"] for e in self.epochs if text.finite(e.get("val_acc"))]
        return max(values) if values else None

    def throughput_series(self) -> list[float]:
        """Images/s over the run: of each batch point, or of each epoch for a run without
        batch events (or before its first); unknown values left out."""
        values = [v for v in self.throughput if math.isfinite(v)]
        if not values:
            values = [
                float(e["images_per_s"]) for e in self.epochs if text.finite(e.get("images_per_s"))
            ]
        return values

    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """Chart series: name -> (x, y); x is epochs (batches: fractional epochs)."""
        result: dict[str, tuple[list[float], list[float]]] = {}
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            rows = [
                e for e in self.epochs if text.finite(e.get(key)) and text.finite(e.get("epoch"))
            ]
            xs = [float(e["epoch"]) for e in rows]
            ys = [float(e[key]) for e in rows]
            result[key] = (xs, ys)
        result["batch_loss"] = (list(self.batch_x), list(self.batch_loss))
        return result

    # --- event handlers -----------------------------------------------------------------------

    def _on_run_started(self, event: dict[str, Any]) -> None:
        if not isinstance(event.get("config"), dict):  # (a file: its settings are a table or none)
            event = {**event, "config": {}}
        self.started = event
        device = event.get("device_name") or event.get("device") or "?"
        parameters = event.get("parameters")
        params = parameters.get("total") if isinstance(parameters, dict) else None
        start = count_or_zero(event.get("start_epoch")) or 1
        resumed = f", resumed at epoch {start}" if start > 1 else ""
        self.log.append(
            f"started on {device}: {event.get('n_train', '?')} train / {event.get('n_val', '?')} "
            f"val / {event.get('n_test', '?')} test images, "
            f"{text.count(params)} parameters{resumed}"
        )
        warnings = event.get("warnings")
        for warning in warnings if isinstance(warnings, list) else []:  # (a file: one line each)
            self.log.append(f"warning: {text.one_line(warning)}")

    def _on_batch(self, event: dict[str, Any]) -> None:
        self.last_batch = event
        loss = event.get("loss")
        if not text.finite(loss):
            return
        smoothed = event.get("smoothed_loss")
        if not text.finite(smoothed):
            smoothed = self._fallback.add(float(loss))
        self._seen += 1
        if self._seen % self._stride:
            return
        batches = count_or_zero(event.get("batches")) or 1
        epoch = count_or_zero(event.get("epoch")) or 1
        x = epoch - 1 + count_or_zero(event.get("batch")) / batches
        self.batch_x.append(x)
        self.batch_loss.append(float(smoothed))
        speed = event.get("images_per_s")
        self.throughput.append(float(speed) if text.finite(speed) else math.nan)
        if len(self.batch_x) > self.max_points:
            self.batch_x = self.batch_x[::2]
            self.batch_loss = self.batch_loss[::2]
            self.throughput = self.throughput[::2]
            self._stride *= 2

    def _on_epoch(self, event: dict[str, Any]) -> None:
        # a resumed run repeats nothing, but replace a row with the same epoch number just in case
        self.epochs = [e for e in self.epochs if e.get("epoch") != event.get("epoch")]
        self.epochs.append(event)
        self.log.append(
            f"epoch {event.get('epoch')}/{event.get('epochs')}: train loss "
            f"{text.number(event.get('train_loss'))} acc {text.percent(event.get('train_acc'))}, "
            f"val loss {text.number(event.get('val_loss'))} acc "
            f"{text.percent(event.get('val_acc'))} ({text.duration(event.get('seconds'))})"
        )

    def _on_evaluated(self, event: dict[str, Any]) -> None:
        self.evaluated = event
        self.log.append(
            f"test: accuracy {text.percent(event.get('test_accuracy'))}, macro F1 "
            f"{text.number(event.get('macro_f1'), '.3f')}"
        )

    def _on_early_stop(self, event: dict[str, Any]) -> None:
        self.early_stop = event
        self.log.append(str(event.get("message") or f"early stop after epoch {event.get('epoch')}"))

    def _on_finished(self, event: dict[str, Any]) -> None:
        self.end = event
        self.log.append("finished")

    def _on_failed(self, event: dict[str, Any]) -> None:
        self.end = event
        self.log.append(f"FAILED: {event.get('message', 'unknown error')}")

    def _on_stopped(self, event: dict[str, Any]) -> None:
        self.end = event
        message = event.get("message") or f"stopped after epoch {event.get('epoch', '?')}"
        self.log.append(f"stopped: {message}")
