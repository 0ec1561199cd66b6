"""The phases of a trainer's start, as `cnn_tui.commands.train_probe` marks them and `cnn-tui
bench --startup` reads them back (`phase_seconds`). Standard library only: the probe imports
this before its first mark."""

from __future__ import annotations

from typing import Any

PROBE_MARKER = "cnn-tui-train-probe "  # the probe's line of marks starts with this
PHASES = (
    "python",
    "cli",
    "torch",
    "training modules",
    "settings and run folder",
    "data",
    "torch._dynamo",
    "model",
    "first batch event",
)


def phase_seconds(spawned: float, marks: list[list[Any]]) -> list[tuple[str, float, float]]:
    """(phase, wall seconds, CPU seconds) of each phase from the probe's marks [phase, unix
    time, CPU so far], in `PHASES` order (one the run skipped is left out), the first from
    `spawned`. CPU counts every thread: a phase that overlaps a background thread counts its
    share too."""
    at = {phase: (when, cpu) for phase, when, cpu in marks}
    phases, previous = [], (spawned, 0.0)
    for phase in PHASES:
        if phase not in at:
            continue
        when, cpu = at[phase]
        phases.append((phase, when - previous[0], cpu - previous[1]))
        previous = (when, cpu)
    return phases
