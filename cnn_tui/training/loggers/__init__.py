"""Loggers: a run's scalars, hyperparameters and confusion matrix, written where a team looks.

`cnn-tui train --log tensorboard,csv,wandb` (the `log` setting of `TrainConfig`) adds loggers to
a run, with PyTorch Lightning's loggers as the model: each gets the hyperparameters when the run
starts, the scalars as they come with their global step, the test results at the end, and is
finalised with the run's status. They are fed by the run's events, the very dicts the trainer
writes to metrics.jsonl (`events.RunLoggers`, hooked into the trainer's event callback in
`loop/trainer.py`), so there is no second path through the engine; any scalar an event carries
is logged, whatever kind of event it is.

    csv_logger.py          RUN/csv/*.csv: one file per kind of event (batch, epoch, system,
                           test, ...), the confusion matrix and per-class table
    tensorboard_logger.py  RUN/tensorboard/: event files through torch.utils.tensorboard
                           (the `tensorboard` extra)
    wandb_logger.py        RUN/wandb/: a Weights & Biases run, offline unless WANDB_MODE says
                           otherwise (the `wandb` extra)

Only the process that writes the run logs (rank 0 of a data-parallel run). A logger that fails
mid-run (a full disk, a W&B error) is reported once and dropped; training goes on. A missing extra
is a usage error before anything is written (`check_installed`). This module imports neither
torch nor a logger's library: the form and `--help` stay fast.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from cnn_tui.training.config import ConfigError


@dataclass(frozen=True)
class LoggerKind:
    """One logger `--log` names: its module here, and the package it needs (its extra's)."""

    name: str
    module: str  # cnn_tui.training.loggers.<module>, whose `Logger` class writes it
    package: str | None = None  # None: the standard library is enough

    @property
    def installed(self) -> bool:
        if self.package is None:
            return True
        try:
            return importlib.util.find_spec(self.package) is not None
        except (ImportError, ValueError):  # (a module half there, one without a spec)
            return False

    @property
    def install_hint(self) -> str:
        return f"pip install 'cnn-tui[{self.name}]'"  # (the extra is named after the logger)


# one per name of config.LOGGERS (the choices of --log), in their order
KINDS: dict[str, LoggerKind] = {
    "tensorboard": LoggerKind("tensorboard", "tensorboard_logger", "tensorboard"),
    "csv": LoggerKind("csv", "csv_logger"),
    "wandb": LoggerKind("wandb", "wandb_logger", "wandb"),
}


def check_installed(names: tuple[str, ...]) -> None:
    """A ConfigError for `log` (a usage error, exit 2) naming the first logger whose package is
    not installed and the pip command that installs it; nothing for installed ones."""
    for name in names:
        kind = KINDS[name]
        if not kind.installed:
            raise ConfigError(
                "log", f"--log {name} needs the {kind.package} package: {kind.install_hint}"
            )
