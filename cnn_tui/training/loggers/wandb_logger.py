"""`--log wandb`: the run as a Weights & Biases run, kept in RUN/wandb/, offline by default.

Offline unless the user chose a mode (`WANDB_MODE=online` after `wandb login`, or `disabled`):
a run on a laptop, a lab machine or a cluster node without network writes its files and trains;
`wandb sync RUN/wandb/offline-run-*` uploads them later, and `wandb beta leet RUN/wandb` (or
`wandb leet`) shows them in a terminal. The project is $WANDB_PROJECT or "cnn-tui", the W&B run's
name the run folder's.

What goes where, as Lightning's WandbLogger does it: the settings as the run's config; every
number of every event as "group/name" at its global step (`base`), so W&B charts "batch/loss",
"epoch/val_acc", "system/..." and "test/..."; the test metrics in the run's summary; the
confusion matrix as W&B's own confusion-matrix chart (a Table of actual, predicted, count, drawn
by the "wandb/confusion_matrix/v1" preset, as `wandb.plot.confusion_matrix` logs it) and the
per-class table as a Table. A stopped run finishes with exit code 0, a failed one 1.

A resumed run continues the same W&B run: its id is kept in RUN/wandb/cnn-tui-run-id, and
`wandb.init(id=..., resume="allow")` appends (offline: a new offline-run folder with the same
id, which `wandb sync` adds to the same run). W&B's own console capture is off: the trainer's
output is the run's output.log and --json's lines, untouched. Needs the `wandb` package (the
extra of that name).
"""

from __future__ import annotations

import os
import re
import secrets
import string
from pathlib import Path
from typing import Any

from cnn_tui.fileio import atomic_write_text, is_regular_file
from cnn_tui.training.loggers.base import Evaluated, RunLogger, RunStart, Scalars, own_folder

FOLDER = "wandb"
ID_FILE = "cnn-tui-run-id"  # in RUN/wandb/: the W&B run id, so --resume continues that run
DEFAULT_PROJECT = "cnn-tui"
ID_LETTERS = string.ascii_lowercase + string.digits
_ID_RE = re.compile(r"^[a-z0-9]{1,64}$")
CONFUSION_PRESET = "wandb/confusion_matrix/v1"  # W&B's own confusion-matrix chart
CONFUSION_FIELDS = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}


def run_id(folder: Path) -> str | None:
    """The W&B run id kept in the run's wandb folder, or None (none yet, or not an id: a file
    from elsewhere is not trusted)."""
    path = folder / ID_FILE
    if not is_regular_file(path):
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:100].strip()
    except OSError:
        return None
    return text if _ID_RE.match(text) else None


class Logger(RunLogger):
    name = "wandb"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        import wandb  # (the extra: checked before the run)

        self.wandb = wandb
        self.folder = run_dir / FOLDER
        self.run: Any = None

    def start(self, run: RunStart) -> None:
        if self.run is not None:
            return
        wandb = self.wandb
        own_folder(self.folder)
        ident = run_id(self.folder)
        if ident is None:
            ident = "".join(secrets.choice(ID_LETTERS) for _ in range(8))  # W&B's own form
            atomic_write_text(self.folder / ID_FILE, ident + "\n")
        # offline unless the user chose: mode=None lets WANDB_MODE (or `wandb offline`) decide
        mode = None if os.environ.get("WANDB_MODE") else "offline"
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            name=run.name,
            id=ident,
            resume="allow",
            dir=str(self.run_dir),
            mode=mode,
            config=run.hyperparameters(),
            settings=wandb.Settings(silent=True, console="off"),
            reinit="create_new",
        )

    def log_scalars(self, scalars: Scalars) -> None:
        if self.run is not None:
            self.run.log(scalars.tagged(), step=scalars.step)

    def log_test(self, result: Evaluated) -> None:
        wandb = self.wandb
        classes = list(result.classes)
        cells = [
            [classes[i], classes[j], int(count)]
            for i, row in enumerate(result.confusion[: len(classes)])
            for j, count in enumerate(row[: len(classes)])
        ]
        table = wandb.Table(columns=list(CONFUSION_FIELDS), data=cells)
        chart = wandb.plot_table(
            CONFUSION_PRESET, table, CONFUSION_FIELDS, {"title": "test confusion matrix"}
        )
        columns = ["class", "precision", "recall", "f1", "support"]
        per_class = wandb.Table(
            columns=columns, data=[[row.get(name) for name in columns] for row in result.per_class]
        )
        self.run.log(
            {"test/confusion_matrix": chart, "test/per_class": per_class}, step=result.step
        )
        self.run.summary.update({f"test/{key}": value for key, value in result.metrics.items()})

    def finalize(self, status: str) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.finish(exit_code=1 if status == "failed" else 0)

    def close(self) -> None:
        if self.run is not None:  # a session that ended without its last event (a crash)
            run, self.run = self.run, None
            run.finish(exit_code=1)

    def where(self) -> str:
        if self.run is None:
            return ""
        if self.run.disabled:
            return "disabled (WANDB_MODE=disabled): W&B keeps nothing of this run"
        sync_dir = Path(self.run.sync_dir)
        if self.run.offline:
            return f"offline run in {sync_dir} (upload it with: wandb sync {sync_dir})"
        return f"run {self.run.url or self.run.id} (a copy in {sync_dir})"
