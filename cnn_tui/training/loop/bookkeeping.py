"""Run bookkeeping: what a training run writes as it goes, so the loop itself stays short.

A `Run` is one training run in this process: its settings, its folder, the event log
(metrics.jsonl) and the stop flag, where it is (`checkpoints.Progress`) and, once built, the
`Setup` it trains. Its methods write what the CLI, the dashboard and `cnn-tui runs` read: status.json
(`status`), the events of a run's life (`log_started`, `log_early_stop`, `stopped`, `finish`,
`fail`), checkpoint.pt and best.pt (`save_checkpoint`, `save_best`), and at the end summary.json
and the test samples. The files themselves are written by `cnn_tui.training.runs.store`, the one
owner of a run folder (which stops the run, `RunFolderGone`, when the folder was deleted); with
several processes only rank 0 writes (`Run.writes`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import checkpoints, distributed, metrics
from cnn_tui.training.loop.checkpoints import Progress
from cnn_tui.training.loop.distributed import World
from cnn_tui.training.loop.setup import Setup
from cnn_tui.training.models import own
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import state as run_state
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.system.devices import device_name


def open_run(
    run_dir: Path, config: TrainConfig, resume: bool, trust_model_code: bool = False
) -> tuple[dict[str, Any] | None, own.Source | None]:
    """Make the run directory and write its config.toml; the checkpoint to continue, if any,
    and the code of the user's own model class (None for any other model): a new run reads it
    from the user's file and keeps a copy (model_source.py, its sha256 beside it), a resumed
    one runs that copy, once trusted (`own.run_source`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoints.resume_checkpoint(run_dir, config) if resume else None
    runs.write_config(run_dir, config)
    source = None
    if resume:
        source = own.run_source(run_dir, config.model, trusted=trust_model_code)
    elif own.spec_of(config.model) is not None:
        source = own.read_source(config.model)
        own.keep_copy(run_dir, source)
    return checkpoint, source


@dataclass
class Run:
    """One training run in this process: its settings and files, where it is, what it trains.

    `engine.train` makes it; `engine._run` is the loop over it; `s` is set once the data and
    model are ready.
    """

    config: TrainConfig
    dir: Path
    log: runs.EventLog
    stop: threading.Event
    progress: Progress
    checkpoint: dict[str, Any] | None = None  # the checkpoint being continued (--resume)
    s: Setup | None = None
    world: World = field(default_factory=World)
    saved: tuple[int, int] | None = None  # (epoch, batch) of the checkpoint.pt on disk
    started: float = field(default_factory=time.time)  # when this session began (unix seconds)
    model_source: own.Source | None = None  # the user's own class: the code it is built from

    def __post_init__(self) -> None:
        if self.checkpoint is not None:
            self.saved = (int(self.checkpoint["epoch"]), int(self.checkpoint.get("batch", 0)))
        self.wall_before = self.progress.wall_seconds  # the sessions before this one

    def clock(self) -> None:
        """Bring `progress.wall_seconds` up to now: before a checkpoint and at the end."""
        self.progress.wall_seconds = self.wall_before + max(0.0, time.time() - self.started)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory: rank 0 (the only one, alone)."""
        return self.world.main

    def status(self, state: RunState, message: str = "", **extra: Any) -> None:
        """(Re)write status.json: the state, and which epoch the run is at."""
        if not self.writes:
            return
        runs.write_status(
            self.dir,
            state,
            message=message,
            epoch=self.progress.epoch,
            epochs=self.config.epochs,
            best_val_acc=self.progress.best_val_acc,
            process=distributed.status_process(),
            **extra,
        )

    def save_checkpoint(self) -> None:
        assert self.s is not None
        self.clock()
        if self.writes:
            with runs.writing_into(self.dir):
                checkpoints.save_checkpoint(self.dir / runs.CHECKPOINT_FILE, self.s, self.progress)
        self.saved = (self.progress.epoch, self.progress.batch)

    def save_best(self) -> None:
        assert self.s is not None
        if self.writes:
            with runs.writing_into(self.dir):
                checkpoints.save_best(self.dir / runs.BEST_FILE, self.s, self.progress)

    def fail(self, message: str, **extra: Any) -> None:
        """Record a failure in status.json and the event log, as far as the disk lets us."""
        with contextlib.suppress(OSError):  # (on a full disk even these few bytes may not fit)
            self.status(RunState.FAILED, message, **extra)
        with contextlib.suppress(OSError):
            self.log.emit("failed", message=message, epoch=self.progress.epoch + 1, **extra)

    def kept_weights(self) -> dict[str, Any]:
        """The saved weights eval and predict use now (`checkpoints.run_weights`' choice):
        {"weights_file", "weights_epoch"}, with "weights_batch" for a checkpoint taken
        mid-epoch; {} before the first checkpoint."""
        progress = self.progress
        if self.config.early_stop and progress.best_epoch > 0:
            return {"weights_file": runs.BEST_FILE, "weights_epoch": progress.best_epoch}
        if self.saved is None:
            return {}
        epoch, batch = self.saved
        kept = {"weights_file": runs.CHECKPOINT_FILE, "weights_epoch": epoch}
        return {**kept, "weights_batch": batch} if batch else kept

    def kept_weights_text(self) -> str:
        """`kept_weights` in words, for the message of a diverged run."""
        kept = self.kept_weights()
        if not kept:
            return "it saved no weights before"
        where = f"epoch {kept['weights_epoch']}"
        if kept.get("weights_batch"):
            where = f"epoch {kept['weights_epoch'] + 1} up to batch {kept['weights_batch']}"
        return f"{kept['weights_file']} keeps the weights of {where} (for cnn-tui eval and predict)"

    def log_started(self) -> None:
        """The "run_started" event: what trains, on what, from where."""
        s, config, progress = self.s, self.config, self.progress
        assert s is not None
        data = s.data
        total, trainable = models.count_parameters(s.model)
        self.log.emit(
            "run_started",
            run_dir=str(self.dir),
            config=config.to_dict(),
            device=str(s.device),
            device_name=device_name(s.device),
            classes=list(data.classes),
            n_train=len(data.train_y),
            n_val=len(data.val_y),
            n_test=len(data.test_y),
            epochs=config.epochs,
            start_epoch=progress.epoch + 1,
            start_batch=progress.batch,
            batches_per_epoch=s.batches,
            parameters={"total": total, "trainable": trainable},
            pid=distributed.status_pid(),
            **distributed.describe(s.world),  # world_size and each rank's pid and host
            amp={torch.bfloat16: "bf16", torch.float16: "fp16"}.get(s.amp_dtype),
            channels_last=s.prep.channels_last,
            resumed=self.checkpoint is not None,
            data_on_device=s.train_x.device.type == s.device.type,
            data_source=data.source,
            skipped=data.skipped,
            warnings=list(
                config.warnings().values()
            ),  # settings seldom meant, e.g. a frozen random backbone
        )

    def log_early_stop(self) -> None:
        """The "early_stop" event and status, once early stopping ends the training."""
        config, progress = self.config, self.progress
        self.log.emit(
            "early_stop",
            epoch=progress.epoch,
            epochs=config.epochs,
            best_epoch=progress.best_epoch,
            metric=config.early_stop_metric,
            best=progress.best_metric,
            patience=config.early_stop,
            min_delta=config.min_delta,
            message=_early_stop_text(config, progress),
        )
        self.status(RunState.RUNNING, f"stopped early after epoch {progress.epoch}")

    def stopped(self) -> dict[str, Any]:
        """Save where the run stopped (`stop` was set) and say how to continue it."""
        progress = self.progress
        self.save_checkpoint()
        where = f"after epoch {progress.epoch}"
        if progress.batch:
            assert self.s is not None
            where = f"in epoch {progress.epoch + 1} after batch {progress.batch}/{self.s.batches}"
        message = f"stopped {where}; continue with: cnn-tui train --no-ui --resume {self.dir}"
        self.status(RunState.STOPPED, message, batch=progress.batch)
        self.log.emit("stopped", epoch=progress.epoch, batch=progress.batch, message=message)
        return {
            "status": RunState.STOPPED,
            "message": message,
            "epochs_done": progress.epoch,
            "batch": progress.batch,
            "best_val_acc": progress.best_val_acc,
            "run_dir": str(self.dir),
        }

    def finish(self, test: metrics.EvalResult, best_epoch: int | None) -> dict[str, Any]:
        """Write the test samples, summary.json and the last events; returns the summary.

        `test` holds the predictions on the test set of the weights the run is judged by: the
        last epoch's, or with early stopping the best epoch's (`best_epoch`).
        """
        s, progress, config = self.s, self.progress, self.config
        assert s is not None
        self.clock()
        stopped_early = progress.should_stop_early(config) and progress.epoch < config.epochs
        report = metrics.classification_report(test.confusion, s.data.classes)
        assert test.predictions is not None and test.confidences is not None
        test_x, test_y = s.data.test_x.numpy(), s.data.test_y.numpy()  # the images, not features
        if self.writes:
            runs.write_samples(
                self.dir, test_x, test_y, test.predictions, test.confidences, list(s.data.classes)
            )
        summary = {
            "status": RunState.FINISHED,
            **report,
            "test_loss": test.loss,
            "n_test": len(s.data.test_y),
            "best_val_acc": progress.best_val_acc,
            "epochs_done": progress.epoch,
            "epochs": s.config.epochs,
            "seconds": progress.seconds,
            "wall_seconds": progress.wall_seconds,
            "model": s.config.model,
            "dataset": s.config.dataset,
            "device": str(s.device),
            "history": progress.history,
            "run_dir": str(self.dir),
            "early_stopped": stopped_early,
            "evaluated_with": "best" if best_epoch is not None else "last",
        }
        if config.early_stop:
            summary.update(
                stopped_epoch=progress.epoch if stopped_early else None,
                best_epoch=best_epoch,
                early_stop_metric=config.early_stop_metric,
                best_metric=progress.best_metric,
            )
        if self.writes:
            runs.write_summary(self.dir, summary)
        self.log.emit(  # (the tables too: what a logger shows of the test, `training/loggers`)
            "evaluated",
            test_loss=test.loss,
            test_accuracy=report["test_accuracy"],
            macro_precision=report["macro_precision"],
            macro_recall=report["macro_recall"],
            macro_f1=report["macro_f1"],
            classes=report["classes"],
            confusion_matrix=report["confusion_matrix"],
            per_class=report["per_class"],
        )
        extra = {"early_stop_epoch": progress.epoch} if stopped_early else {}
        message = run_state.label(RunState.FINISHED, progress.epoch if stopped_early else None)
        self.status(RunState.FINISHED, message, test_accuracy=report["test_accuracy"], **extra)
        self.log.emit("finished")
        return summary


def epoch_row(
    s: Setup,
    epoch: int,
    progress: Progress,
    val: metrics.EvalResult,
    seconds: float,
    images_per_s: float,
) -> dict[str, Any]:
    """The "epoch" event of epoch `epoch` (0-based), also the row kept in the history."""
    return {
        "epoch": epoch + 1,
        "epochs": s.config.epochs,
        "train_loss": progress.loss_sum / max(1, progress.seen),
        "train_acc": progress.correct / max(1, progress.seen),
        "val_loss": val.loss,
        "val_acc": val.accuracy,
        "lr": s.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "images_per_s": images_per_s,
        "gpu_mem_mb": (
            torch.cuda.max_memory_allocated(s.device) / 2**20 if s.device.type == "cuda" else None
        ),
    }


def _early_stop_text(config: TrainConfig, progress: Progress) -> str:
    delta = f" by more than {config.min_delta:g}" if config.min_delta else ""
    return (
        f"early stop after epoch {progress.epoch}: {config.early_stop_metric} has not improved"
        f"{delta} for {progress.since_best} epoch{'s' * (progress.since_best != 1)}; the best "
        f"was epoch {progress.best_epoch} "
        f"({config.early_stop_metric} {progress.best_metric:.4g}), whose weights "
        f"({runs.BEST_FILE}) are tested"
    )
