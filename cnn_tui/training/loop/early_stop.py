"""Early stopping's rule, in one place: when an epoch's validation metric counts as an improvement.

`--early-stop PATIENCE` (0: off) stops a run once `--early-stop-metric` (val_loss: lower is
better; val_acc: higher is better) has not improved by more than `--min-delta` for PATIENCE epochs
in a row, as Keras' and Lightning's EarlyStopping do. The engine keeps the best epoch's weights in
`best.pt` and tests those. The engine (`engine._run`) applies the rule epoch by epoch; the
dashboard replays it over the epoch rows it has read (`replay`) to show the state while a run
trains. Torch-free and UI-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def improved(metric: str, best: float | None, value: float, min_delta: float = 0.0) -> bool:
    """Whether `value` of `metric` improves on `best` by more than `min_delta` (None: no best
    yet, so any finite value does)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    if metric == "val_acc":
        return value - best > min_delta
    return best - value > min_delta


@dataclass(frozen=True)
class State:
    """Where early stopping stands after some epochs."""

    best: float | None = None  # the best value of the metric so far
    best_epoch: int = 0  # the epoch (1-based) that reached it; its weights are best.pt
    since_best: int = 0  # epochs since then without an improvement
    stop_epoch: int | None = None  # the epoch after which the run stops (None: not yet)


def replay(rows: list[dict[str, Any]], metric: str, min_delta: float, patience: int) -> State:
    """Apply the rule to epoch rows in order (the `epoch` events: "epoch" and the metric)."""
    state = State()
    for row in rows:
        value = row.get(metric)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        epoch = int(row.get("epoch") or 0)
        if improved(metric, state.best, float(value), min_delta):
            state = State(float(value), epoch, 0)
        else:
            state = State(state.best, state.best_epoch, state.since_best + 1)
        if patience and state.since_best >= patience:
            return State(state.best, state.best_epoch, state.since_best, epoch)
    return state
