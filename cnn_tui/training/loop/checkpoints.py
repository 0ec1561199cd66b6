"""Checkpoints: one plain dict per file (nanoGPT), written atomically, read back with care.

`save_checkpoint` writes checkpoint.pt after every epoch (and at a stop mid-epoch): the weights,
the optimizer and AMP scaler state, the config, the normalisation, the RNG states and the
`Progress` (where the run is: epoch, batch within it, optimizer step, history, early stopping's
best). `save_best` writes best.pt, the best epoch's weights, for a run with early stopping.

Reading one back is the other half: `load_checkpoint` reads with `torch.load(weights_only=True)`
and refuses a file that is not a cnn-tui checkpoint, `check_resumable` / `resume_checkpoint`
refuse one that cannot be continued before the run writes anything, and `load_model_state` /
`load_training_state` turn a shape mismatch into one line that names the file. Every refusal is a
UsageError that says what to do instead. `run_weights` says which weights a saved run is judged
by (checkpoint.pt, or best.pt with early stopping).

Non-finite numbers: `weights_finite` is the engine's check before it saves, so a diverging run
never overwrites its last finite weights; `outputs_not_finite` is the one line eval, predict and
inspect give when a model's outputs are NaN anyway, and `diverged_note` says which weights of a
diverged run they use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import atomic_write, check_input_file
from cnn_tui.text import finite
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.loop import early_stop
from cnn_tui.training.loop.setup import Setup
from cnn_tui.training.models import registry as models
from cnn_tui.training.runs import store as runs

CHECKPOINT_FORMAT = 1


@dataclass
class Progress:
    """Where the run is: everything besides model/optimizer a checkpoint needs to continue."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done in the epoch after those (a mid-epoch stop)
    step: int = 0  # optimizer steps overall (drives the learning rate)
    loss_sum: float = 0.0  # over the current epoch's batches so far
    correct: int = 0
    seen: int = 0
    best_val_acc: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # training time over all sessions (the epochs: batches + validation)
    # wall time over all sessions: each trainer's, from its start (data, model, imports) to its
    # last checkpoint or its end (`Run.clock`); 0 in a checkpoint from before it was kept
    wall_seconds: float = 0.0
    # early stopping (--early-stop): the best value of its metric, the epoch (1-based) whose
    # weights are best.pt, and the epochs since then without an improvement. A checkpoint from
    # before early stopping existed has none of these: the defaults start afresh.
    best_metric: float | None = None
    best_epoch: int = 0
    since_best: int = 0

    def state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def track_best(self, config: TrainConfig, row: dict[str, Any]) -> bool:
        """Early stopping's bookkeeping after epoch `row`; True when it is the new best."""
        value = float(row[config.early_stop_metric])
        if early_stop.improved(config.early_stop_metric, self.best_metric, value, config.min_delta):
            self.best_metric, self.best_epoch, self.since_best = value, row["epoch"], 0
            return True
        self.since_best += 1
        return False

    def should_stop_early(self, config: TrainConfig) -> bool:
        return config.early_stop > 0 and self.since_best >= config.early_stop

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Epoch `row["epoch"]` is done: keep its row, its time and the best validation accuracy."""
        self.seconds += row["seconds"]
        self.epoch, self.batch = row["epoch"], 0
        if self.best_val_acc is None or row["val_acc"] > self.best_val_acc:
            self.best_val_acc = row["val_acc"]
        self.history.append(row)
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0


# --- writing --------------------------------------------------------------------------------------


def save_checkpoint(path: Path, s: Setup, progress: Progress) -> None:
    """One plain dict, written atomically; only tensors and plain Python values inside."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": {"schedule": s.config.schedule, "step": progress.step},
        "scaler": s.scaler.state_dict() if s.scaler is not None else None,
        "epoch": progress.epoch,
        "batch": progress.batch,
        "config": s.config.to_dict(),
        "classes": list(s.data.classes),
        "normalization": {
            "mean": list(s.prep.mean),
            "std": list(s.prep.std),
            "image_size": s.prep.image_size,
        },
        "rng": rng_state(s),
        "progress": progress.state(),
        "best_val_acc": progress.best_val_acc,
        "history": progress.history,
    }
    atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def save_best(path: Path, s: Setup, progress: Progress) -> None:
    """best.pt (early stopping): the weights of the best epoch so far, written atomically; a plain
    dict that `load_checkpoint` (weights_only=True) reads like a checkpoint."""
    best = {
        "format": CHECKPOINT_FORMAT,
        "model": s.model.state_dict(),
        "epoch": progress.best_epoch,
        "metric": s.config.early_stop_metric,
        "value": progress.best_metric,
        "config": s.config.to_dict(),
    }
    atomic_write(path, lambda handle: torch.save(best, handle))


def rng_state(s: Setup) -> dict[str, Any]:
    """The random states a checkpoint keeps so that a stopped epoch continues identically."""
    state = {"torch": torch.get_rng_state(), "augment": s.augment_generator.get_state()}
    state["cuda"] = torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None
    return state


def restore_rng(s: Setup, state: dict[str, Any]) -> None:
    """Put back `rng_state`'s states (those of another device type are left as they are)."""
    torch.set_rng_state(state["torch"])  # checked by `check_resumable`
    if s.device.type == "cuda" and state.get("cuda") is not None:
        with contextlib.suppress(RuntimeError, TypeError):  # saved on another device type
            torch.cuda.set_rng_state(state["cuda"], s.device)
    if state.get("augment") is not None:
        with contextlib.suppress(RuntimeError, TypeError):  # a generator of another device type
            s.augment_generator.set_state(state["augment"])


# --- reading --------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint dict (on the CPU); a missing or unreadable file is a UsageError naming it."""
    path = Path(path)
    if not os.path.lexists(path):
        raise UsageError(
            f"{path} does not exist: the run saved no checkpoint yet (it stops before its "
            "first batch); start a new run"
        )
    # not opened unless a regular file: a FIFO would wait for ever, a device never end
    check_input_file(path, "checkpoint", "the run folder is damaged; start a new run")
    try:
        checkpoint = models.torch_load(path)
    except models.TorchFileError as exc:
        raise UsageError(
            f"{path} is not a readable checkpoint ({exc}): the file is damaged; start a new run"
        ) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "epoch" not in checkpoint:
        raise UsageError(f"{path} is not a cnn-tui checkpoint (no 'model' and 'epoch' entries)")
    model = checkpoint["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise UsageError(
            f"{path} is damaged: its 'model' entry is not a state_dict; start a new run"
        )
    for key in ("epoch", "batch"):
        value = checkpoint.get(key, 0)
        if not _is_count(value):
            raise UsageError(
                f"{path} is damaged: its {key!r} entry is not a count of epochs or batches "
                f"(a {type(value).__name__}); start a new run"
            )
    return checkpoint


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


# what `Progress(**checkpoint["progress"])` takes: each field and the types a checkpoint may hold
# for it (a float may have been saved as a whole number), from the fields' annotations
_SAVED_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "float | None": (int, float, type(None)),
    "list[dict[str, Any]]": (list,),
}
_PROGRESS_TYPES = {f.name: _SAVED_TYPES[str(f.type)] for f in dataclasses.fields(Progress)}
_JSON_SCALARS = (str, int, float, bool, type(None))


def check_resumable(checkpoint: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose training state is damaged before the run writes anything.

    `load_checkpoint` checked the weights and the epoch; training on also needs the optimizer
    state, the progress (its history goes to summary.json as JSON) and, mid-epoch, the RNG state.
    """

    def damaged(what: str) -> UsageError:
        return UsageError(
            f"{path} cannot be continued: {what}; evaluate it with cnn-tui eval, or start a new run"
        )

    if not isinstance(checkpoint.get("optimizer"), dict):
        raise damaged("it has no optimizer state")
    progress = checkpoint.get("progress")
    if not isinstance(progress, dict) or not set(progress) <= set(_PROGRESS_TYPES):
        raise damaged("its 'progress' entry is missing or not the one cnn-tui writes")
    for key, value in progress.items():
        types = _PROGRESS_TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise damaged(f"its progress {key!r} is {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**62:
            raise damaged(f"its progress {key!r} is out of range")
    rows = progress.get("history", [])
    if not all(
        isinstance(row, dict) and all(isinstance(v, _JSON_SCALARS) for v in row.values())
        for row in rows
    ):
        raise damaged("its epoch history is not a list of plain rows")
    rng = checkpoint.get("rng")
    if progress.get("batch", 0) > 0:
        state = rng.get("torch") if isinstance(rng, dict) else None
        wanted = torch.get_rng_state()
        if (
            not isinstance(state, torch.Tensor)
            or state.dtype != wanted.dtype
            or state.shape != wanted.shape
        ):
            raise damaged("its random-number state (needed to continue mid-epoch) is damaged")


def resume_checkpoint(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (None: it saved none yet, start afresh)."""
    if not (run_dir / runs.CHECKPOINT_FILE).exists():
        return None
    checkpoint = load_checkpoint(run_dir / runs.CHECKPOINT_FILE)
    check_resumable(checkpoint, run_dir / runs.CHECKPOINT_FILE)
    done = int(checkpoint["epoch"])
    summary = runs.read_summary(run_dir)
    if summary is not None and summary.get("early_stopped"):
        raise UsageError(
            f"run {run_dir} stopped early after epoch {done} ({config.early_stop_metric} did not "
            f"improve for {config.early_stop} epochs): training it longer would stop again; "
            "start a new run with a larger --early-stop"
        )
    if done > config.epochs or (done == config.epochs and checkpoint.get("batch", 0) == 0):
        if runs.read_summary(run_dir) is not None:
            raise UsageError(
                f"run {run_dir} already trained {done} epoch{'s' * (done != 1)}: pass --epochs "
                f"with more than {done} to train it further"
            )
    return checkpoint


def load_model_state(model: nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's weights into `model`; UsageError naming the file when they do not fit
    (a shape, a missing or unexpected key, or a tensor that is no float weights,
    `models.tensor_misfit`)."""
    own = model.state_dict()
    for name, saved in checkpoint["model"].items():
        misfit = models.tensor_misfit(saved, own[name]) if name in own else None
        if misfit is not None:
            raise UsageError(
                f"{path} does not fit the model of {runs.CONFIG_FILE} ({name} is {misfit} in "
                f"the checkpoint but {str(own[name].dtype).removeprefix('torch.')} in the "
                "model): the file is damaged or not a cnn-tui checkpoint; start a new run"
            )
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} does not fit the model of {runs.CONFIG_FILE} ({_first_reason(exc)}): the "
            "checkpoint was saved with other settings; start a new run"
        ) from None


def load_training_state(s: Setup, checkpoint: dict[str, Any], path: Path) -> None:
    """Load the weights, the optimizer state and the AMP scaler of a checkpoint to continue it."""
    load_model_state(s.model, checkpoint, path)
    try:
        _check_optimizer_tensors(checkpoint["optimizer"])
        s.optimizer.load_state_dict(checkpoint["optimizer"])
        # load_state_dict keeps tensors of any shape; the first step would fail on them
        for group in s.optimizer.param_groups:
            for param in group["params"]:
                for value in s.optimizer.state.get(param, {}).values():
                    if isinstance(value, torch.Tensor) and value.dim() > 0:
                        if value.shape != param.shape:
                            raise ValueError(
                                f"a state of shape {tuple(value.shape)} for a parameter of "
                                f"shape {tuple(param.shape)}"
                            )
        if s.scaler is not None and checkpoint.get("scaler"):
            s.scaler.load_state_dict(checkpoint["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{path}: its optimizer state does not fit --optimizer {s.config.optimizer} over this "
            f"model ({_first_reason(exc)}); start a new run"
        ) from None


def _check_optimizer_tensors(state: Any) -> None:
    """ValueError for a saved optimizer state (a momentum, Adam's running means) that is no
    dense float tensor: `load_state_dict` would cast it to the parameter's dtype (complex ones
    with a warning), as it would weights (`models.tensor_misfit`)."""
    per_param = state.get("state") if isinstance(state, dict) else None
    values = per_param.values() if isinstance(per_param, dict) else ()
    for entry in values:
        for name, value in entry.items() if isinstance(entry, dict) else ():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                misfit = models.tensor_misfit(value, torch.empty(0))
                if misfit is not None:
                    raise ValueError(f"its {name} is {misfit}, not float values")


_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from "
    r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)"
)


def _first_reason(exc: BaseException) -> str:
    """The telling line of an error: torch's load_state_dict puts it on the second line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        lines = lines[1:]
    line = lines[0] if lines else type(exc).__name__
    if match := _SIZE_MISMATCH.match(line):
        name, saved, wanted = match.groups()
        line = f"{name} is {saved} in the checkpoint but {wanted} in the model"
    return line if len(line) <= 160 else line[:157] + "..."


# --- a saved run ----------------------------------------------------------------------------------


def best_weights(run_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """best.pt of a run with early stopping (weights_only=True), None without one."""
    if config.early_stop and (run_dir / runs.BEST_FILE).is_file():
        return load_checkpoint(run_dir / runs.BEST_FILE)
    return None


def run_weights(run_dir: Path, config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(checkpoint, weights, weights file) of a saved run: the weights a run is judged by are
    checkpoint.pt's, or best.pt's for a run with early stopping (its best epoch)."""
    checkpoint = load_checkpoint(run_dir / runs.CHECKPOINT_FILE)
    best = best_weights(run_dir, config)
    if best is not None:
        return checkpoint, best, runs.BEST_FILE
    return checkpoint, checkpoint, runs.CHECKPOINT_FILE


def weights_finite(model: nn.Module) -> bool:
    """Whether every weight and buffer (BatchNorm's running statistics too) of `model` is a
    finite number; one device sync."""
    checks = [torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(checks).all()) if checks else True


def outputs_not_finite(run_dir: Path, weights_file: str, epoch: int) -> RunError:
    """The one line for a model whose outputs are NaN or infinite: its weights come from a run
    that diverged (status.json says at which epoch when the engine saw it)."""
    diverged = runs.diverged_epoch(run_dir)
    at = f" at epoch {diverged}" if diverged is not None else ""
    return RunError(
        f"the model's outputs are NaN ({run_dir / weights_file}, the weights of epoch {epoch}): "
        f"the run diverged{at}; lower --lr and train a new run (--resume would diverge again)"
    )


def diverged_note(run_dir: Path, weights_file: str, epoch: int) -> str | None:
    """For a run whose training diverged: which of its weights are used (its last finite ones)."""
    diverged = runs.diverged_epoch(run_dir)
    if diverged is None:
        return None
    return (
        f"run {run_dir} diverged at epoch {diverged}; these are its last finite weights, "
        f"epoch {epoch}'s ({weights_file})"
    )


def saved_normalization(
    checkpoint: dict[str, Any], channels: int, path: Path
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) a checkpoint was trained with (None for one that saved none); a damaged
    entry is a UsageError naming the file."""
    saved = checkpoint.get("normalization") or {}
    if not (isinstance(saved, dict) and saved.get("mean")):
        return None
    mean, std = saved.get("mean"), saved.get("std")
    if not all(
        isinstance(values, (list, tuple))
        and len(values) == channels
        and all(finite(v) for v in values)
        for values in (mean, std)
    ) or not all(v > 0 for v in std):
        raise UsageError(
            f"{path} is damaged: its normalization is not "
            f"{channels} finite means and positive standard deviations"
        )
    return tuple(mean), tuple(std)
