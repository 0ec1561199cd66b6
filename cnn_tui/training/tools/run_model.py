"""A saved run's trained model, ready to run on images: what inspect, predict and export share.

`load_run_model(run_dir)` rebuilds the run's network from its config.toml, loads the weights it is
judged by (checkpoint.pt, or best.pt with early stopping: `checkpoints.run_weights`) and its own
preprocessing (the normalisation saved in the checkpoint and the resize to the model's input size,
`setup.BatchPrep`), without loading the data set: a prediction on one file starts at once. The
test split is loaded only when asked for (`load_test_split`), through the same `setup.load_data` as
training and `cnn-tui eval`, so test image i is the same image everywhere.

Outputs that are not finite numbers (the weights of a run that diverged) are a RunError in one
line (`RunModel.not_finite`) wherever the model runs, never NaN probabilities; a run whose
training diverged is used with its last finite weights, which `RunModel.note` names.

torch is imported inside the functions: the UI imports this module's types at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import store as runs

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnn_tui.training.loop.setup import BatchPrep

PREDICT_BATCH = 256


@dataclass
class RunModel:
    """A run's network in eval mode with the preprocessing it was trained with."""

    run_dir: Path
    config: TrainConfig
    classes: list[str]
    model: nn.Module
    prep: BatchPrep  # uint8 (N, C, H, W) at `image_size` -> the model's input
    device: torch.device
    channels: int  # of the data set's images (a grey set stays grey; models repeat it if needed)
    image_size: tuple[int, int]  # the data set's own (H, W): images are read at this size
    weights_file: str  # checkpoint.pt or best.pt
    epoch: int  # the epoch those weights are from
    amp_dtype: torch.dtype | None = None  # the autocast its evaluation ran under (speed_settings)

    @property
    def name(self) -> str:
        return self.run_dir.name

    def not_finite(self) -> RunError:
        """The one-line error for outputs that are NaN or infinite (a diverged run's weights)."""
        from cnn_tui.training.loop import checkpoints

        return checkpoints.outputs_not_finite(self.run_dir, self.weights_file, self.epoch)

    def note(self) -> str | None:
        """For a run whose training diverged: which of its (finite) weights these are."""
        from cnn_tui.training.loop import checkpoints

        return checkpoints.diverged_note(self.run_dir, self.weights_file, self.epoch)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W) -> the normalised, resized batch the model sees."""
        return self.prep(images.to(self.device))

    def probabilities(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Softmax class probabilities (N, K) of uint8 images (N, C, H, W), in batches; a
        RunError (`not_finite`) when any is not a finite number."""
        import torch

        from cnn_tui.training.loop.setup import autocast, batch_logits

        images = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
        out = []
        with torch.inference_mode(), autocast(self.device, self.amp_dtype):
            for start in range(0, len(images), PREDICT_BATCH):
                rows = images[start : start + PREDICT_BATCH].to(self.device)
                logits = batch_logits(self.model, rows, self.prep)
                out.append(logits.float().softmax(1).cpu())
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        probabilities = torch.cat(out)
        if not bool(torch.isfinite(probabilities).all()):
            raise self.not_finite()
        return probabilities.numpy()


def load_run_model(
    run_dir: str | os.PathLike[str], device_spec: str = "auto", trust_model_code: bool = False
) -> RunModel:
    """The trained model of a run; a missing or damaged run is a UsageError naming the file.

    A run of the user's own class is rebuilt from its copy of the code, and only with
    `trust_model_code` (--trust-model-code): a run folder never runs code by itself
    (`own.run_source`: refused before anything else is read)."""
    import torch

    from cnn_tui.training.data import datasets
    from cnn_tui.training.loop import checkpoints, setup
    from cnn_tui.training.models import own
    from cnn_tui.training.models import registry as models
    from cnn_tui.training.system.devices import resolve_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run directory (no such folder)")
    if not runs.looks_like_run(run_dir):
        raise UsageError(f"{run_dir} is not a run directory (no config.toml / status.json)")
    config = runs.read_config(run_dir)
    source = own.run_source(run_dir, config.model, trusted=trust_model_code)
    checkpoint, weights, weights_file = checkpoints.run_weights(run_dir, config)
    channels, native, _, info_classes = datasets.dataset_info(
        config.dataset, config.data_dir, config.image_size
    )
    classes = _classes(checkpoint, info_classes)
    input_size = config.image_size or native[0]
    device = resolve_device(device_spec)
    model = models.build_model(
        config.model,
        in_channels=channels,
        num_classes=len(classes),
        image_size=input_size,
        hidden_units=config.hidden_units,
        weights="none",
        finetune=config.resolved_finetune,
        source=source,
        dataset=config.dataset,
    )
    checkpoints.load_model_state(model, weights, run_dir / weights_file)
    # the layout and autocast training used on this device (prepare's rule): eval's numbers
    channels_last, amp_dtype = setup.speed_settings(config, device, input_size)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    models.set_train_mode(model, False)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    saved = checkpoints.saved_normalization(checkpoint, channels, run_dir / runs.CHECKPOINT_FILE)
    if saved is None:  # a checkpoint from before the normalisation was saved: recompute it
        saved = setup.normalization(config, setup.load_data(config))
    mean, std = saved
    resize_to = input_size if input_size != native[0] else None
    prep = setup.BatchPrep(mean, std, resize_to, "none", channels_last)
    return RunModel(
        run_dir=run_dir,
        config=config,
        classes=classes,
        model=model,
        prep=prep,
        device=device,
        channels=channels,
        image_size=native,
        weights_file=weights_file,
        epoch=int(weights.get("epoch", checkpoint.get("epoch", 0))),
        amp_dtype=amp_dtype,
    )


def _classes(checkpoint: dict[str, Any], fallback: list[str]) -> list[str]:
    saved = checkpoint.get("classes")
    if isinstance(saved, list) and saved and all(isinstance(c, str) for c in saved):
        return list(saved)
    return list(fallback)


def load_test_split(run: RunModel) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (uint8 (N, C, H, W)) and labels, split as training split them."""
    from cnn_tui.training.loop import setup

    data = setup.load_data(run.config)
    return data.test_x.numpy(), data.test_y.numpy()


def review_order(true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Every test index in the order the Samples tab uses: the most confident mistakes first,
    then the correct answers from the least to the most confident (the interesting ones first)."""
    pred = probabilities.argmax(1)
    confidence = probabilities.max(1)
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    right = np.flatnonzero(pred == true)
    right = right[np.argsort(confidence[right], kind="stable")]
    return np.concatenate([wrong, right]).astype(np.int64)
