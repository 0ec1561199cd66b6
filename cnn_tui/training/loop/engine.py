"""The training engine: one readable loop from a TrainConfig to a finished run directory.

`train(config, run_dir)` sets the run up (`setup.prepare`: data set, model, optimizer; resuming, a
checkpoint's state), then `_run` is the loop: for each epoch `train_one_epoch` and `evaluate` on
the validation set, a checkpoint, an "epoch" event; at the end the test set. Below it come one
epoch, one optimizer step and the evaluation of a split. Around the loop, in their own modules:
`setup` (what the loop works with and how a batch becomes logits), `checkpoints` (one plain dict
per file, nanoGPT-style, read back with `torch.load(..., weights_only=True)` and checked) and
`bookkeeping` (the `Run`: its status, events and summary, written through `runs.store`).

Determinism: the batch order, the augmentation and dropout of epoch e are seeded from (seed, e), and
a checkpoint taken mid-epoch keeps the RNG states and the batch position, so on the CPU a run that
is stopped and resumed ends bit-identical to one that was never interrupted. The learning rate is a
pure function of the optimizer step (`schedule.lr_at`, torch-free: the TUI draws the schedule), so
it needs no scheduler state either.

Several processes (`--devices N`, `distributed`): each rank runs this same loop on its slice of
every batch, under DistributedDataParallel (`Setup.train_net`); `Setup.world` says which rank this
is, and only rank 0 writes the run directory (`Run.writes`). With one process `World()` makes every
one of those steps a no-op.

UI-free: the headless CLI and the TUI (through a background process) drive the same function.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnn_tui.errors import RunError, UsageError, disk_full
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import bookkeeping, checkpoints, distributed, metrics, setup
from cnn_tui.training.loop.bookkeeping import Run
from cnn_tui.training.loop.checkpoints import Progress
from cnn_tui.training.loop.distributed import PeerLost, World
from cnn_tui.training.loop.eta import EtaEstimator
from cnn_tui.training.loop.schedule import lr_at
from cnn_tui.training.loop.setup import Setup
from cnn_tui.training.models import feature_cache, own
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.system import background_import
from cnn_tui.training.system.devices import resolve_device
from cnn_tui.training.system.sampler import SystemSampler

EventCallback = Callable[[dict[str, Any]], None]

# --- the run --------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    resume: bool = False,
    world: World | None = None,
    started: float | None = None,
    trust_model_code: bool = False,
) -> dict[str, Any]:
    """Train `config`, writing the run into `run_dir`; returns the summary.

    `trust_model_code`: a resumed run of the user's own class may run the run's copy of its
    code (`own.run_source`; every rank builds from the bytes rank 0 read).

    `started`: when this session began (unix seconds; default: now), for the run's wall time
    (`wall_seconds` of summary.json): the trainer command passes its own start, so the time it
    spent loading torch counts too.

    `world`: this process's rank among several that train the run together (--devices); only
    rank 0 reads and writes `run_dir`, the others get the checkpoint to continue from it.

    The returned dict has "status": "finished" (and the test metrics of summary.json) or "stopped"
    (when `stop` was set: the current batch finished and a checkpoint was saved). A failure (a
    diverged loss, missing data, no GPU memory) is recorded as status "failed" with a "failed"
    event and raised as RunError (UsageError for bad input such as a bad --weights file). A
    diverged run's status and event also say at which epoch (`diverged_epoch`) and which saved
    weights are its last finite ones (`weights_file`, `weights_epoch`).
    """
    run_dir, world = Path(run_dir), world or World()
    checkpoint, source = world.from_main(
        lambda: bookkeeping.open_run(run_dir, config, resume, trust_model_code)
    )
    progress = Progress(**checkpoint["progress"]) if checkpoint is not None else Progress()
    log = runs.EventLog(run_dir, on_event) if world.main else distributed.SilentLog()
    run = Run(config, run_dir, log, stop or threading.Event(), progress, checkpoint, world=world)
    run.model_source = source
    if started is not None:
        run.started = started
    # the host, the trainer's memory and the GPUs as "system" events, from rank 0 only
    sampler = SystemSampler(log, ranks=world.parallel) if world.main else None
    if sampler is not None:  # (its last reading comes just before the run's end event)
        log.before_end = sampler.last_reading
    run.status(RunState.RUNNING, "starting")
    try:
        return _run(run, sampler)
    except KeyboardInterrupt:  # a second Ctrl+C: give up at once; the last checkpoint stays valid
        message = "aborted: --resume continues from the last saved checkpoint"
        run.status(RunState.STOPPED, message)
        log.emit("stopped", epoch=progress.epoch, message=message)
        raise
    except PeerLost as exc:  # another rank is gone: the launcher records why, if there is one
        if not distributed.has_launcher():
            run.fail(str(exc))
        raise
    except Diverged as exc:  # the checkpoint before it is kept: say which weights eval will use
        message = f"{exc}; {run.kept_weights_text()}"
        run.fail(message, diverged_epoch=exc.epoch, **run.kept_weights())
        raise Diverged(message, exc.epoch) from None
    except torch.cuda.OutOfMemoryError:
        message = f"out of GPU memory at batch size {config.batch_size}: lower --batch-size"
        run.fail(message)
        raise RunError(message) from None
    except runs.RunFolderGone:  # nowhere to record it: the folder is not made again
        raise
    except (RunError, UsageError) as exc:
        run.fail(str(exc))
        raise
    except OSError as exc:  # a full disk: one line naming the file; the older files stay valid
        # (a run's own files: a new run may go elsewhere, a resumed one only needs space)
        error = disk_full(exc, run_dir, flag=None if resume else "--run-dir")
        run.fail(str(error) if error is not None else f"{type(exc).__name__}: {exc}")
        if error is None:
            raise
        raise error from None
    except Exception as exc:  # a bug: record it, then let the traceback show
        if world.parallel and distributed.is_peer_loss(exc):  # (in DDP's gradient all-reduce)
            lost = PeerLost(f"lost contact with another process of the run ({exc})")
            if not distributed.has_launcher():
                run.fail(str(lost))
            raise lost from None
        mine = own.raised_in(exc, run.model_source)  # your own class's code: one line
        if mine is not None:
            run.fail(mine)
            raise RunError(mine) from None
        run.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if sampler is not None:
            sampler.stop()
        log.close()


def _run(run: Run, sampler: SystemSampler | None = None) -> dict[str, Any]:
    """The loop: for each epoch, train, validate, checkpoint; then test. Stops at `run.stop`.
    `sampler` starts once the run_started event is written (`train` stops it)."""
    config, progress = run.config, run.progress
    s = run.s = _prepare_run(run)
    run.log_started()
    if sampler is not None:
        sampler.start(cuda=s.device.type == "cuda")
    run.status(RunState.RUNNING, "training")
    resume_mid_epoch = run.checkpoint is not None and progress.batch > 0
    eta = EtaEstimator()  # per session: a resumed run warms up again

    for epoch in range(progress.epoch, config.epochs):
        if progress.should_stop_early(config):  # (stopped by a signal right after the decision)
            break
        if s.world.any(run.stop.is_set()):  # (every rank stops at the same place)
            return run.stopped()
        if resume_mid_epoch:  # continue a stopped epoch where it left off
            checkpoints.restore_rng(s, run.checkpoint["rng"])
            resume_mid_epoch = False
        else:
            seed_epoch(s, epoch)
            progress.batch, progress.loss_sum, progress.correct, progress.seen = 0, 0.0, 0, 0
        started, images_before = time.perf_counter(), progress.seen
        if s.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(s.device)

        finished = train_one_epoch(s, epoch, progress, run.log, run.stop, eta)
        train_seconds = time.perf_counter() - started
        if not finished:
            check_finite(s, epoch)  # (before the checkpoint of the stop)
            progress.seconds += train_seconds
            return run.stopped()

        val = evaluate(s, s.val_x, s.val_y)
        check_finite(s, epoch, val.loss)  # before anything saves this epoch's weights
        seconds = time.perf_counter() - started
        images_per_s = (progress.seen - images_before) / max(train_seconds, 1e-9)
        row = bookkeeping.epoch_row(s, epoch, progress, val, seconds, images_per_s)
        progress.end_epoch(row)
        if config.early_stop and progress.track_best(config, row):
            run.save_best()  # before the checkpoint that says so
        run.save_checkpoint()
        eta.add_epoch_overhead(time.perf_counter() - started - train_seconds)
        run.log.emit("epoch", **row)
        run.status(RunState.RUNNING, f"epoch {epoch + 1}/{config.epochs} done")
        if progress.should_stop_early(config):
            run.log_early_stop()
            break

    return _finish(run)


def _prepare_run(run: Run) -> Setup:
    """Device, data, model and optimizer of the run (their saved state when resuming); with
    several processes, each builds its own (a failure on any fails them all) and trains under
    DistributedDataParallel."""
    config, checkpoint, world = run.config, run.checkpoint, run.world
    device = setup.training_device(config, world)
    run.status(RunState.RUNNING, f"loading data set {config.dataset}")

    def build() -> Setup:
        background_import.start("torch._dynamo")  # the optimizer's import, while the data loads
        try:
            data = setup.load_data(config)
        finally:
            background_import.wait()
        # resuming: the saved weights replace the start weights, so do not download them again
        weights = "none" if checkpoint is not None else config.resolved_weights
        s = setup.prepare(
            config, device, data, weights=weights, world=world, model_source=run.model_source
        )
        if checkpoint is not None:
            checkpoints.load_training_state(s, checkpoint, run.dir / runs.CHECKPOINT_FILE)
        if feature_cache.applies(s):  # frozen backbone, no augmentation: its features, once
            run.status(RunState.RUNNING, "computing the frozen backbone's features")
            s = feature_cache.cache_features(s)
        return s

    s = world.everywhere(build)
    if world.parallel:
        s.train_net = distributed.wrap_model(s.net, device)
    return s


def _finish(run: Run) -> dict[str, Any]:
    """Test the weights the run is judged by (with early stopping its best epoch's); the summary."""
    s = run.s
    assert s is not None
    best = run.world.from_main(lambda: checkpoints.best_weights(run.dir, run.config))
    if best is not None:  # (into the model: the head of a cached s.net is the model's own)
        checkpoints.load_model_state(s.model, best, run.dir / runs.BEST_FILE)
    run.status(RunState.RUNNING, "evaluating on the test set")
    test = evaluate(s, s.test_x, s.test_y, keep_predictions=True)
    return run.finish(test, best_epoch=int(best["epoch"]) if best is not None else None)


# --- one epoch ------------------------------------------------------------------------------------


def train_one_epoch(
    s: Setup,
    epoch: int,
    progress: Progress,
    log: runs.EventLog,
    stop: threading.Event,
    eta: EtaEstimator | None = None,
) -> bool:
    """Train epoch `epoch` (0-based) from batch `progress.batch` on; False if stopped part-way.

    Each batch event has the speed and the time left as `eta` (the run's, across epochs)
    estimates them: None while it is still warming up. The events the log writes (about four a
    second, `EventLog.batch_due`, asked before the step) also carry the gradient and weight norms
    and the GPU memory (`step_measures`); the others cost nothing more."""
    eta = eta or EtaEstimator()
    config, model = s.config, s.model
    models.set_train_mode(model, True)
    trainable = models.trainable_parameters(model)  # (--grad-clip, the norms) once per epoch
    order = epoch_order(config.seed, epoch, len(s.train_y)).to(s.train_x.device)
    previous = time.perf_counter()
    for b in range(progress.batch, s.batches):
        images, labels = batch_rows(s, order, b)
        batch_images = min(config.batch_size, len(order) - b * config.batch_size)
        lr = lr_at(config, progress.step, s.total_steps, s.batches)
        measure = log.batch_due(last_of_epoch=b + 1 == s.batches)
        loss_value, correct, stopping, measures = shared_step(
            s, images, labels, lr, trainable, batch_images, stop, measure=measure
        )
        if not math.isfinite(loss_value):
            raise Diverged.at(epoch, f"loss is {loss_value}", config)

        progress.step += 1
        progress.batch = b + 1
        progress.loss_sum += loss_value * batch_images
        progress.correct += correct
        progress.seen += batch_images
        now = time.perf_counter()
        eta.add_batch(now - previous, batch_images)
        previous = now
        remaining = (s.batches - b - 1) + (config.epochs - epoch - 1) * s.batches
        log.emit(
            "batch",
            epoch=epoch + 1,
            batch=b + 1,
            batches=s.batches,
            loss=loss_value,
            lr=lr,
            images_per_s=eta.images_per_s(),
            eta_s=eta.eta_s(remaining, config.epochs - epoch),
            **measures,
        )
        # one process: a stop asked during this batch's event counts now; several: the ranks
        # agreed on `stopping` in the batch's sync, so every rank stops after the same batch
        if (stopping if s.world.parallel else stop.is_set()) and b + 1 < s.batches:
            return False
    return True


class Diverged(RunError):
    """The training loss, the validation loss or the weights stopped being finite numbers."""

    def __init__(self, message: str, epoch: int = 0) -> None:
        super().__init__(message, epoch)
        self.epoch = epoch  # 1-based: the epoch in which it diverged

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def at(cls, epoch: int, what: str, config: TrainConfig) -> Diverged:
        """Diverged in epoch `epoch` (0-based) because `what` ("loss is nan")."""
        return cls(
            f"training diverged at epoch {epoch + 1} ({what}): lower the learning rate "
            f"(--lr, now {config.lr:g})",
            epoch + 1,
        )


def check_finite(s: Setup, epoch: int, val_loss: float | None = None) -> None:
    """Diverged unless the validation loss (when given) and every weight are finite numbers:
    checked before a checkpoint is saved, so a diverging run keeps its last finite weights (a
    finite training loss can still leave weights that overflow on the next images)."""
    if val_loss is not None and not math.isfinite(val_loss):
        raise Diverged.at(epoch, f"validation loss is {val_loss}", s.config)
    if not checkpoints.weights_finite(s.model):
        raise Diverged.at(epoch, "weights are no longer finite", s.config)


def batch_rows(s: Setup, order: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of training batch `b` of an epoch visited in `order`, on the device
    (with several processes, this rank's slice of them)."""
    index = s.world.shard(order[b * s.config.batch_size : (b + 1) * s.config.batch_size])
    return setup.fetch(s.train_x, index, s.device), setup.fetch(s.train_y, index, s.device)


def train_step(
    s: Setup,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    trainable: list[nn.Parameter],
) -> tuple[float, int]:
    """One optimizer step on a batch at learning rate `lr`: forward, loss, backward, clip, step.

    Returns the batch's mean loss and how many images it got right (one device sync). A loss
    that is not finite is returned without a step: the caller decides (the loop stops the run,
    the LR finder its curve). The training loop and the LR finder (`lr_find`) both step here.
    """
    loss_value, correct, _, _ = shared_step(s, images, labels, lr, trainable, len(labels))
    return loss_value, correct


def shared_step(
    s: Setup,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    trainable: list[nn.Parameter],
    batch_images: int,
    stop: threading.Event | None = None,
    *,
    measure: bool = False,
) -> tuple[float, int, bool, dict[str, float]]:
    """`train_step` on this rank's slice of a batch of `batch_images` images; returns the whole
    batch's mean loss and correct count, whether to stop after it (`stop` set on any rank), and
    with `measure` the step's `step_measures` (else {}).

    One process: the slice is the batch. Several: the loss is the slice's sum × ranks /
    batch_images, so DDP's mean of the ranks' gradients is the mean over the whole batch; the
    ranks add [loss, correct, stop] in the one device sync a batch has anyway. The gradients
    are the same on every rank after DDP's all-reduce, so rank 0 measures alone.
    """
    config, optimizer, world = s.config, s.optimizer, s.world
    for group in optimizer.param_groups:
        group["lr"] = lr
    net = s.train_net if s.train_net is not None else s.net
    with s.autocast():
        logits = setup.batch_logits(net, images, s.prep, train=True, generator=s.augment_generator)
        loss = F.cross_entropy(
            logits,
            labels,
            label_smoothing=config.label_smoothing,
            reduction="sum" if world.parallel else "mean",
        )
    # one device sync per batch: the loss (to stop on divergence) and the correct count
    totals = [loss.detach().float(), (logits.argmax(1) == labels).sum().float()]
    if world.parallel:
        asked = stop is not None and stop.is_set()
        totals.append(torch.tensor(float(asked), device=loss.device))
    values = world.sum_(torch.stack(totals)).tolist()
    loss_value, correct = values[0], int(values[1])
    if world.parallel:
        loss_value /= batch_images
        loss = loss * (world.size / batch_images)
    if not math.isfinite(loss_value):
        return loss_value, correct, False, {}
    optimizer.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        if config.grad_clip > 0 or measure:  # (the step then skips its own unscaling)
            s.scaler.unscale_(optimizer)
        grad_norm = clip_gradients(trainable, config.grad_clip, measure)
        s.scaler.step(optimizer)
        s.scaler.update()
    else:
        loss.backward()
        grad_norm = clip_gradients(trainable, config.grad_clip, measure)
        optimizer.step()
    measures = step_measures(s, trainable, grad_norm) if grad_norm is not None else {}
    if world.parallel:
        return loss_value, correct, values[2] > 0, measures
    return loss_value, correct, stop is not None and stop.is_set(), measures


def clip_gradients(
    trainable: list[nn.Parameter], grad_clip: float, measure: bool
) -> torch.Tensor | None:
    """Clip the gradients' total L2 norm to `grad_clip` (0: no clipping); returns that norm
    before clipping (a tensor on the device, unsynced) when `measure`, else None."""
    if grad_clip > 0:
        norm = nn.utils.clip_grad_norm_(trainable, grad_clip)
        return norm if measure else None
    if not measure:
        return None
    return nn.utils.get_total_norm([p.grad for p in trainable if p.grad is not None], 2.0)


@torch.no_grad()
def step_measures(
    s: Setup, trainable: list[nn.Parameter], grad_norm: torch.Tensor
) -> dict[str, float]:
    """What a written batch event adds: the total L2 norm of the trainable parameters' gradients
    (before clipping, unscaled) and of the weights after the step, in one device sync, and on a
    GPU the memory torch holds allocated now (MiB; the epoch event has the epoch's peak). A norm
    that overflowed (fp16) is written as null."""
    weights = nn.utils.get_total_norm(trainable, 2.0)
    norms = torch.stack([grad_norm.float().to(weights.device), weights.float()]).tolist()
    measures: dict[str, float] = {"grad_norm": norms[0], "weight_norm": norms[1]}
    if s.device.type == "cuda":
        measures["gpu_mem_mb"] = torch.cuda.memory_allocated(s.device) / 2**20
    return measures


@torch.inference_mode()
def evaluate(
    s: Setup, images: torch.Tensor, labels: torch.Tensor, *, keep_predictions: bool = False
) -> metrics.EvalResult:
    """Loss, accuracy and confusion matrix of the model on a whole split, in large batches.

    With several processes each evaluates its contiguous share of the split, with rank 0's
    weights and BatchNorm statistics, and the sums are added: the same result as one process.
    """
    k, world = s.data.num_classes, s.world
    models.set_train_mode(s.model, False)
    world.sync_module(s.net)
    loss_sum = torch.zeros((), dtype=torch.float64, device=s.device)
    confusion = torch.zeros(k * k, dtype=torch.int64, device=s.device)
    predictions, confidences = [], []
    first, end = world.span(len(labels))
    for start in range(first, end, s.eval_batch_size):
        rows = slice(start, min(end, start + s.eval_batch_size))
        x, y = setup.fetch(images, rows, s.device), setup.fetch(labels, rows, s.device)
        with s.autocast():
            logits = setup.batch_logits(s.net, x, s.eval_prep)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        pred = logits.argmax(1)
        confusion += torch.bincount(y * k + pred, minlength=k * k)
        if keep_predictions:
            predictions.append(pred.cpu())
            confidences.append(logits.softmax(1).amax(1).cpu())
    world.sum_(loss_sum)
    world.sum_(confusion)
    if keep_predictions and world.parallel:  # every rank's share, in order
        predictions = [part for shares in world.gather(predictions) for part in shares]
        confidences = [part for shares in world.gather(confidences) for part in shares]
    n = len(labels)
    matrix = confusion.view(k, k).cpu().numpy()
    return metrics.EvalResult(
        loss=float(loss_sum) / n if n else 0.0,
        accuracy=metrics.accuracy(matrix),
        confusion=matrix,
        predictions=torch.cat(predictions).numpy() if predictions else None,
        confidences=torch.cat(confidences).numpy() if confidences else None,
    )


# --- the seeds ------------------------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` (0-based): its batch order, augmentation and dropout."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which epoch `epoch` visits the n training images (on the CPU)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


def seed_epoch(s: Setup, epoch: int) -> None:
    """Seed dropout (torch's global RNG) and the augmentation of a fresh epoch."""
    torch.manual_seed(epoch_seed(s.config.seed, epoch) + 1)
    s.augment_generator.manual_seed(epoch_seed(s.config.seed, epoch) + 2)


# --- evaluating a saved run -----------------------------------------------------------------------


def evaluate_run(
    run_dir: str | os.PathLike[str], device_spec: str = "auto", trust_model_code: bool = False
) -> dict[str, Any]:
    """Recompute the test metrics of a run from its checkpoint.pt (nothing in the run changes).
    A run of the user's own class runs its copy of the code only with `trust_model_code`
    (`own.run_source`, checked before anything is loaded).

    A model whose test loss is not a finite number (the weights of a run that diverged) is a
    RunError in one line (`checkpoints.outputs_not_finite`), not a report of NaN."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    source = own.run_source(run_dir, config.model, trusted=trust_model_code)
    checkpoint, weights, weights_file = checkpoints.run_weights(run_dir, config)
    device = resolve_device(device_spec)
    data = setup.load_data(config)
    config = config.replace(device=str(device))
    s = setup.prepare(config, device, data, weights="none", model_source=source)
    checkpoints.load_model_state(s.model, weights, run_dir / weights_file)
    saved = checkpoints.saved_normalization(
        checkpoint, data.channels, run_dir / runs.CHECKPOINT_FILE
    )
    if saved is not None:
        s.eval_prep.mean, s.eval_prep.std = saved
    test = evaluate(s, s.test_x, s.test_y)
    if not math.isfinite(test.loss):
        raise checkpoints.outputs_not_finite(run_dir, weights_file, int(weights["epoch"]))
    return {
        **metrics.classification_report(test.confusion, data.classes),
        "test_loss": test.loss,
        "n_test": len(data.test_y),
        "checkpoint_epoch": int(checkpoint["epoch"]),
        "checkpoint_batch": int(checkpoint.get("batch", 0)),
        "weights": weights_file,  # checkpoint.pt, or best.pt for a run with early stopping
        "weights_epoch": int(weights["epoch"]),
        "diverged_epoch": runs.diverged_epoch(run_dir),  # None, or where training diverged
        "device": str(device),
        "run_dir": str(run_dir),
    }
