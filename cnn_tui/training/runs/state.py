"""The states of a run and how each is shown: one table for the CLI and the TUI.

A trainer writes one of `WRITTEN` into status.json. A reader sees more: `INTERRUPTED` for a
"running" run whose process is gone, `ELSEWHERE` for a "running" run whose trainer runs on another
machine (a shared folder: shown "running on HOST", never signalled from here), `UNKNOWN` for a
missing or damaged status; the dashboard
shows `STARTING` until the trainer wrote its first status, and a sweep lists a run it has not
started yet as `PENDING`. A search's queue runner (`runs/search.py`) writes `PRUNED` over the
status of a trial that Optuna's pruner stopped (its trainer stopped it with a checkpoint, as on
request; the reason is the status's message). `RunState` is a `str` enum, so a state compares equal to the word in
status.json and is written as that word in JSON and f-strings.

`LOOKS` gives every state its mark, an ASCII mark for a terminal that is not UTF-8, its colour
and its label. The colour is the name of a colour of the Textual theme (`success`, `warning`,
`error`, `foreground-muted`): the TUI looks it up in `app.theme_variables` or writes it as
`$colour` in markup, so a state follows the theme. Nothing here imports torch or textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from cnn_tui.text import one_line


class RunState(StrEnum):
    STARTING = "starting"  # the dashboard of a run whose trainer has not written a status yet
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # stopped on request (or by a sweep): its checkpoint is kept
    FAILED = "failed"
    PRUNED = "pruned"  # a search's trial that its pruner stopped early (the status says why)
    INTERRUPTED = "interrupted"  # "running" in status.json, but the trainer's process is gone
    ELSEWHERE = "elsewhere"  # "running" in status.json, written by a trainer on another machine
    PENDING = "pending"  # a sweep's run that has not started yet
    UNKNOWN = "unknown"  # no status.json, or one that names no state

    @classmethod
    def of(cls, value: object) -> RunState:
        """The state that `value` (a field of a file: anything) names; UNKNOWN for anything else."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def look(self) -> Look:
        return LOOKS[self]


@dataclass(frozen=True)
class Look:
    """How a state is shown: `mark` and `label` ("✓ finished"), `ascii_mark` where the
    terminal is not UTF-8, `colour` a Textual theme colour's name."""

    mark: str
    ascii_mark: str
    colour: str
    label: str


LOOKS = MappingProxyType(
    {
        RunState.STARTING: Look("…", ".", "foreground-muted", "starting"),
        RunState.RUNNING: Look("▶", ">", "success", "running"),
        RunState.FINISHED: Look("✓", "+", "success", "finished"),
        RunState.STOPPED: Look("■", "#", "warning", "stopped"),
        RunState.FAILED: Look("✗", "x", "error", "failed"),
        RunState.PRUNED: Look("⊘", "%", "warning", "pruned"),
        RunState.INTERRUPTED: Look("✗", "x", "error", "interrupted"),
        RunState.ELSEWHERE: Look("▷", ">", "success", "running elsewhere"),
        RunState.PENDING: Look("…", ".", "foreground-muted", "pending"),
        RunState.UNKNOWN: Look("?", "?", "foreground-muted", "unknown"),
    }
)

WRITTEN = (RunState.RUNNING, RunState.FINISHED, RunState.FAILED, RunState.STOPPED, RunState.PRUNED)
"""The states written into status.json (`store.write_status` takes no other): a trainer's, and
PRUNED, which a search's runner writes once the trainer it stopped is gone."""
ACTIVE = (RunState.STARTING, RunState.RUNNING)
"""A trainer is (about to be) at work: the run can be stopped, not deleted or resumed."""
BUSY = (RunState.RUNNING, RunState.ELSEWHERE)
"""A trainer holds the run, here or on another machine: not deleted, resumed or trained into."""
OVER = (
    RunState.FINISHED,
    RunState.STOPPED,
    RunState.FAILED,
    RunState.INTERRUPTED,
    RunState.PRUNED,
)
"""The run's trainer is done with it, one way or another."""
BROKEN = (RunState.FAILED, RunState.INTERRUPTED)
"""Over without saying it was done: an error, or a trainer that died."""
RESUMABLE = (RunState.STOPPED, RunState.INTERRUPTED, RunState.FAILED, RunState.PRUNED)
"""Over before its last epoch: `--resume` trains it on from its checkpoint."""


def label(state: RunState, early_stop_epoch: int | None = None, host: str = "") -> str:
    """The state as listed: "finished (early stop @5)" for a run that early stopping ended,
    "running on HOST" for one whose trainer runs on another machine (`host` as status.json has
    it: text from a file, shown on one line with its control characters escaped)."""
    if state == RunState.FINISHED and early_stop_epoch:
        return f"{state.look.label} (early stop @{early_stop_epoch})"
    if state == RunState.ELSEWHERE and host:
        return f"running on {one_line(host)}"
    return state.look.label
