"""`--log tensorboard`: event files in RUN/tensorboard through `torch.utils.tensorboard`.

    tensorboard --logdir runs        every run of the folder, side by side

What goes where, as Lightning's TensorBoardLogger does it:
- scalars: "batch/loss", "batch/lr", ... at every optimizer step; "epoch/val_acc", ... at the
  step of each epoch's last batch; "system/cpu_percent", ... and "test/accuracy", ... at the
  latest step (every number of every event, `base.scalars`);
- hyperparameters (the HPARAMS tab): the run's settings, written when each session starts, with
  "test/accuracy", "test/loss", "test/macro_f1", "epoch/val_acc" and "epoch/val_loss" as its
  metrics (the plugin reads them from those scalars, so a run that has not finished shows its
  settings without them);
- the confusion matrix as a picture (IMAGES) and, with the per-class table, as text (TEXT).

A resumed run writes into the same folder and its steps continue; events past the step it
continues from (what a killed session wrote after its last checkpoint) are purged
(`SummaryWriter(purge_step=...)`). Needs the `tensorboard` package (the extra of that name).
"""

from __future__ import annotations

from pathlib import Path

from cnn_tui.training.loggers import confusion
from cnn_tui.training.loggers.base import Evaluated, RunLogger, RunStart, Scalars, own_folder

FOLDER = "tensorboard"
FLUSH_SECONDS = 10  # at most this old on disk for a live `tensorboard` (and after a kill -9)
# the metrics of the HPARAMS tab: scalar tags the run writes
HPARAM_METRICS = ("test/accuracy", "test/loss", "test/macro_f1", "epoch/val_acc", "epoch/val_loss")


class Logger(RunLogger):
    name = "tensorboard"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        from torch.utils.tensorboard import SummaryWriter  # (the extra: checked before the run)

        self._writer_class = SummaryWriter
        self.folder = run_dir / FOLDER
        self.writer = None

    def start(self, run: RunStart) -> None:
        from torch.utils.tensorboard.summary import hparams

        if self.writer is None:
            own_folder(self.folder)
            purge = run.step + 1 if run.resumed else None
            self.writer = self._writer_class(
                log_dir=str(self.folder), purge_step=purge, flush_secs=FLUSH_SECONDS
            )
        experiment, start, end = hparams(run.hyperparameters(), dict.fromkeys(HPARAM_METRICS, 0.0))
        writer = self.writer.file_writer
        for summary in (experiment, start, end):
            writer.add_summary(summary, run.step)

    def log_scalars(self, scalars: Scalars) -> None:
        for tag, value in scalars.tagged().items():
            self.writer.add_scalar(tag, value, scalars.step, walltime=scalars.time or None)

    def log_test(self, result: Evaluated) -> None:
        step = result.step
        image = confusion.picture(result.confusion, result.classes)
        self.writer.add_image("test/confusion_matrix", image, step, dataformats="HWC")
        table = confusion.markdown_matrix(result.confusion, result.classes)
        self.writer.add_text("test/confusion_matrix", table, step)
        self.writer.add_text("test/per_class", confusion.markdown_per_class(result.per_class), step)
        self.writer.flush()

    def finalize(self, status: str) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    def where(self) -> str:
        return f"event files in {self.folder} (tensorboard --logdir {self.run_dir.parent})"
