"""The learning-rate schedule: a pure function of the optimizer step, and the whole of it drawn.

The engine sets the learning rate of every step from `lr_at` (so a resumed run needs no
scheduler state); the dashboard's Metrics grid draws `planned_lr`, the schedule over the whole run,
under the learning rates the run's batch events report. No torch: the TUI imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cnn_tui.training.config import FIELDS, SCHEDULES

PLANNED_POINTS = 400  # at most this many points (and a step schedule's corners) draw the plan


class ScheduleSettings(Protocol):
    """What the schedule depends on: a `TrainConfig` has it, so does `Schedule`."""

    @property
    def schedule(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def epochs(self) -> int: ...


def lr_at(config: ScheduleSettings, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step `step` (0-based) out of `total_steps`.

    none: constant. cosine: from lr down to 0. step: ×0.1 every epochs/3 epochs. onecycle: linear
    warm-up from lr/25 to lr over the first 30 % of the steps, then cosine down to 0.
    """
    t = step / max(1, total_steps)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if config.schedule == "step":
        every = max(1, config.epochs // 3)
        return config.lr * 0.1 ** ((step // max(1, steps_per_epoch)) // every)
    if config.schedule == "onecycle":
        warm = 0.3
        if t < warm:
            return config.lr * (0.04 + 0.96 * t / warm)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / (1.0 - warm)))
    return config.lr


@dataclass(frozen=True)
class Schedule:
    """The three settings of a run's schedule, read from its config (a file: checked here)."""

    schedule: str
    lr: float
    epochs: int

    @classmethod
    def from_values(cls, values: Mapping[str, Any] | None) -> Schedule | None:
        """The schedule of a run's config values (config.toml, or the run_started event's
        "config"); None when they do not describe one (missing, of the wrong type, out of range)."""
        if not isinstance(values, Mapping):
            return None
        kind, lr, epochs = values.get("schedule", "none"), values.get("lr"), values.get("epochs")
        if kind not in SCHEDULES or isinstance(lr, bool) or isinstance(epochs, bool):
            return None
        if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
            return None
        if not isinstance(epochs, int) or not 1 <= epochs <= (FIELDS["epochs"].maximum or 1):
            return None
        return cls(str(kind), float(lr), epochs)


def planned_lr(
    config: ScheduleSettings, steps_per_epoch: int, points: int = PLANNED_POINTS
) -> tuple[list[float], list[float]]:
    """The learning rate over the whole run as (x, y): x in epochs, the fraction of the run done
    after the step (where that step's batch event is drawn), at most `points` steps plus, for
    the step schedule, both sides of each drop, so it draws as stairs."""
    steps_per_epoch = max(1, steps_per_epoch)
    total = config.epochs * steps_per_epoch
    stride = max(1, math.ceil(total / max(2, points)))
    steps = set(range(0, total, stride)) | {total - 1}
    if config.schedule == "step":
        every = max(1, config.epochs // 3) * steps_per_epoch
        for drop in range(every, total, every):
            steps |= {drop - 1, drop}
    chosen = sorted(steps)
    return (
        [(step + 1) / steps_per_epoch for step in chosen],
        [lr_at(config, step, total, steps_per_epoch) for step in chosen],
    )
