"""How big the pretrained models are and about how much memory training one takes.

The form shows this beside the model field as it is edited. For resnet18, resnet50 and vgg16 it
is arithmetic on a few numbers per backbone (`SIZES`), not a model built: torchvision's import
alone takes over a second. The numbers are torchvision's layer sizes, checked against the real
networks by tests/test_models.py. A torchvision:NAME model's numbers are measured on the model
itself (`measure`: built, then run once on the meta device at the image size, so no memory and
no arithmetic), which imports torch and torchvision: the form runs it in a thread worker.

The estimate adds, in bytes:
- the weights, fp32: 4 per parameter;
- per trainable parameter its gradient (4) and the optimizer's state (Adam/AdamW: 8; SGD with
  momentum: 4; plain SGD: 0);
- the activations kept for the backward pass, from the first layer that trains on: the outputs of
  every layer per image (at 224 px, scaled by the image area: convolutions keep their spatial
  size ratio; the fully connected part does not scale), times the batch, in 2-byte bf16/fp16
  when mixed precision applies (CUDA, from `catalog.AMP_MIN_IMAGE_SIZE` px), else 4 bytes;
- the frozen layers' forward pass, one layer at a time: its largest input + output;
- with the feature cache, the backbone's pass over the data set in the engine's batches for it
  (`catalog.backbone_batch_size`) instead (the cached features themselves — N × 512 / 2048 / 4096
  floats — are not counted, nor the data set, CUDA's context or cuDNN's workspace).
It is an estimate to compare batch sizes and models by, within some tens of percent.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_tui import catalog, text
from cnn_tui.training.config import TrainConfig

if TYPE_CHECKING:
    from cnn_tui.training.models import own as own_module

REFERENCE_SIZE = 224  # the image size of the activation counts below


@dataclass(frozen=True)
class BackboneSize:
    params: int  # every parameter but the head layer's
    features: int  # inputs of the head layer
    last_block: int  # parameters of the last block (--finetune last-block), head layer excluded
    # --finetune -> (values per image at 224 px that scale with the image area, values that do
    # not), kept for the backward pass; the head's K outputs come on top
    activations: dict[str, tuple[int, int]]
    peak: int  # largest input + output of one frozen layer, per image at 224 px
    reference_size: int = REFERENCE_SIZE  # the image size `activations` and `peak` are for
    cacheable: bool = True  # the feature cache applies with --finetune head (not SqueezeNet's)
    trained_size: int = REFERENCE_SIZE  # the size its ImageNet weights were trained at


SIZES: dict[str, BackboneSize] = {
    "resnet18": BackboneSize(
        params=11_176_512,
        features=512,
        last_block=8_393_728,  # layer4
        activations={"all": (7_626_752, 512), "last-block": (401_408, 512), "head": (0, 512)},
        peak=1_605_632,  # conv1: 3×224×224 in, 64×112×112 out
    ),
    "resnet50": BackboneSize(
        params=23_508_032,
        features=2048,
        last_block=14_964_736,  # layer4
        activations={
            "all": (32_187_904, 2048),
            "last-block": (1_981_952, 2048),
            "head": (0, 2048),
        },
        peak=1_605_632,
    ),
    "vgg16": BackboneSize(
        params=134_260_544,
        features=4096,
        last_block=119_545_856,  # fc6 and fc7
        activations={
            "all": (28_775_936, 49_664),
            "last-block": (0, 49_664),  # the classifier works on 512×7×7 whatever the image size
            "head": (0, 2 * 4096),
        },
        peak=6_422_528,  # conv1_2: 64×224×224 in and out
    ),
}


@dataclass(frozen=True)
class Estimate:
    params: int
    trainable: int
    bytes: int
    half: bool  # activations in bf16/fp16
    cached: bool  # the feature cache applies


def _finetune(finetune: str) -> str:
    return "last-block" if finetune == "layer4" else finetune


def estimate(
    name: str,
    *,
    num_classes: int,
    image_size: int,
    batch_size: int,
    finetune: str = "head",
    optimizer: str = "adam",
    momentum: float = 0.9,
    half: bool = False,
    cached: bool = False,
    cuda: bool = True,
    size: BackboneSize | None = None,
) -> Estimate:
    """Parameters and approximate training memory of pretrained model `name` (see the module);
    `size`: its measured sizes (a torchvision:NAME model, `measure`), else `SIZES[name]`."""
    size = size or SIZES[name]
    finetune = _finetune(finetune)
    head = size.features * num_classes + num_classes
    params = size.params + head
    trainable = {"head": head, "last-block": size.last_block + head, "all": params}[finetune]
    state = {"adam": 8, "adamw": 8}.get(optimizer, 4 if momentum > 0 else 0)
    element = 2 if half else 4
    scale = (image_size / size.reference_size) ** 2
    spatial, flat = size.activations[finetune]
    kept = batch_size * (spatial * scale + flat + num_classes) * element
    frozen = 0 if finetune == "all" else batch_size * size.peak * scale * element
    cached = cached and size.cacheable
    if cached and finetune == "head":
        # the feature cache's batches start from the evaluation batch, as the engine's do
        evaluation = catalog.evaluation_batch_size(batch_size, image_size, cuda)
        rows = catalog.backbone_batch_size(image_size, max(evaluation, batch_size))
        frozen = rows * size.peak * scale * element
    total = 4 * params + (4 + state) * trainable + kept + frozen
    return Estimate(params, trainable, int(total), half, cached and finetune == "head")


_MEASURED: dict[tuple[str, int], BackboneSize] = {}  # (model, image size) -> its sizes
_MEASURING = threading.Lock()


def is_measured(model: str, image_size: int) -> bool:
    """Whether `measure(model, image_size)` is known already (returns at once)."""
    return (model, image_size) in _MEASURED


def measure(model: str, image_size: int) -> BackboneSize:
    """The sizes of pretrained model `model` (a torchvision:NAME model) at `image_size`, from the
    model itself: its parameters, and each layer's input and output per image, recorded by
    forward hooks in the order they run on the meta device. Imports torch and torchvision."""
    key = (model, image_size)
    with _MEASURING:  # (held for the look-ups only: the UI thread reads these tables too)
        if key in _MEASURED:
            return _MEASURED[key]
    found = _measure(model, image_size)  # (the import of torchvision takes seconds)
    with _MEASURING:
        return _MEASURED.setdefault(key, found)


def _measure(name: str, image_size: int) -> BackboneSize:
    import torch

    from cnn_tui.training.models import registry

    classes = 10

    def build() -> torch.nn.Module:
        return registry.build_model(
            name, in_channels=3, num_classes=classes, image_size=image_size, finetune="all"
        )

    try:
        with torch.device("meta"):
            model = build()
    except NotImplementedError:  # RegNet computes its widths with tensors while it is built
        model = build().to("meta")
    model.eval()
    seen: list[tuple[str, int, int]] = []  # (layer, input values, output values) per image
    for key, module in model.named_modules():
        if key and not any(True for _ in module.children()):
            module.register_forward_hook(
                lambda m, i, o, key=key: seen.append(
                    (key, i[0][0].numel() if i else 0, o[0].numel())
                )
            )
    with torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size, device="meta"))
    spec = registry.pretrained_spec(name, model)
    total = sum(p.numel() for p in model.parameters())
    head = spec.features * classes + classes
    activations: dict[str, tuple[int, int]] = {}
    peak = 0
    trained: dict[str, int] = {}
    for finetune in ("head", "last-block", "all"):
        trainable = registry.trainable_modules(name, finetune, model)
        trained[finetune] = sum(
            p.numel() for key, p in model.named_parameters() if registry._under(key, trainable)
        )
        first = next(
            (i for i, (key, _, _) in enumerate(seen) if registry._under(key, trainable)), len(seen)
        )
        kept = (seen[first][1] if first < len(seen) else 0) + sum(o for _, _, o in seen[first:])
        activations[finetune] = (max(0, kept - classes), 0)
        if finetune == "head":
            peak = max((i + o for _, i, o in seen[:first]), default=0)
    registry._freeze(model, name, registry.trainable_modules(name, "head", model))
    from cnn_tui.training.models import zoo

    return BackboneSize(
        trained_size=zoo.trained_size(name.removeprefix(catalog.ZOO_PREFIX)),
        cacheable=registry.backbone_and_head(model) is not None,
        params=total - head,
        features=spec.features,
        last_block=trained["last-block"] - head,
        activations=activations,
        peak=peak,
        reference_size=image_size,
    )


def _classes(config: TrainConfig) -> int:
    if known := catalog.DATASETS[config.dataset].num_classes:
        return known
    try:  # imagefolder: one class per sub-folder; until the folder is given, say two
        root = Path(config.data_dir or "")
        found = sum(1 for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        found = 0
    return found if found >= 2 else 2


def image_size_of(config: TrainConfig) -> int:
    """The size of the model's inputs: --image-size, else the data set's own."""
    return config.image_size or catalog.DATASETS[config.dataset].image_size


def measure_key(config: TrainConfig) -> tuple:
    """What a measurement of `config`'s model depends on: the model and the image size; for the
    user's own class also the data set's channels and classes, --hidden-units and the file as
    it is now (its size and mtime: an edited file is measured again)."""
    if not catalog.is_own(config.model):
        return (config.model, image_size_of(config))
    spec = catalog.parse_model(config.model)
    stamp: tuple = ()
    if spec.source == catalog.OWN_FILE:
        try:
            info = Path(spec.location).stat()
            stamp = (info.st_size, info.st_mtime_ns)
        except OSError:
            stamp = ("missing",)
    data = catalog.DATASETS[config.dataset]
    return (config.model, image_size_of(config), data.channels, _classes(config),
            config.hidden_units, stamp)  # fmt: skip


def needs_measuring(config: TrainConfig) -> bool:
    """Whether `describe(config)` would build the model first (a torchvision:NAME model not
    measured yet at this image size; the user's own class, whose file runs, not yet measured
    as it is now): the form then calls it from a thread worker."""
    if catalog.is_own(config.model):
        return measure_key(config) not in _OWN_MEASURED
    return config.model.startswith(catalog.ZOO_PREFIX) and not is_measured(
        config.model, image_size_of(config)
    )


@dataclass(frozen=True)
class OwnSize:
    """The user's own class as built for a run's settings: its parameters and its activations
    per image (every leaf layer's output, kept for the backward pass), and a warning about it
    (`own.output_warning`: "" when none)."""

    params: int
    activations: int
    warning: str = ""


_OWN_MEASURED: dict[tuple, OwnSize] = {}
CHECK_TIMEOUT_S = 20  # the form's check of the user's class gives up after this long
# the checks running now, each with whose it is (`abandon_checks`: a form lets go of its own)
_CHECKS: dict[subprocess.Popen, object] = {}
_ABANDONED: set[subprocess.Popen] = set()


class CheckAbandoned(Exception):
    """`check_own` was let go by `abandon_checks`: no answer, and nothing to report."""


def own_sizes(config: TrainConfig) -> own_module.Sizes:
    """What the user's class is built for in a run of `config`."""
    from cnn_tui.training.models import own

    key = measure_key(config)
    return own.Sizes(key[2], key[3], key[1], config.hidden_units, config.dataset)


def measure_own_here(model: str, sizes: own_module.Sizes) -> OwnSize:
    """Build the user's class `model` for `sizes` in this process (its file runs: the form
    calls `check_own`, which runs this in a child process) and measure it with one blank image;
    a problem in the file is its one-line UsageError."""
    import torch

    from cnn_tui.training.models import own

    built = own.check_before_run(model, sizes)
    assert built is not None
    seen: list[int] = []
    handles = [
        module.register_forward_hook(
            lambda m, i, o: seen.append(o.numel()) if isinstance(o, torch.Tensor) else None
        )
        for module in built.modules()
        if not any(True for _ in module.children())
    ]
    try:
        built.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            built(torch.zeros(1, sizes.channels, sizes.image_size, sizes.image_size))
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in built.parameters())
    return OwnSize(params, sum(seen), own.warning_of(built) or "")


def check_own(config: TrainConfig, timeout: float | None = None, owner: object = None) -> OwnSize:
    """The user's class of `config` built and measured in a child process
    (`cnn_tui.training.models.own_check`), so a file that loops or sleeps at import never
    holds the app: the child is killed after `timeout` seconds (default `CHECK_TIMEOUT_S`, read
    at each call), or by `abandon_checks` (a newer check of the same `owner`, the form that
    asked closing). A problem is a one-line UsageError; the result is kept per `measure_key`
    (`measure_own` returns it at once)."""
    from cnn_tui.errors import UsageError

    timeout = CHECK_TIMEOUT_S if timeout is None else timeout
    key = measure_key(config)
    with _MEASURING:
        if key in _OWN_MEASURED:
            return _OWN_MEASURED[key]
    sizes = own_sizes(config)
    argv = [config.model, str(sizes.channels), str(sizes.classes), str(sizes.image_size),
            str(sizes.hidden_units), sizes.dataset]  # fmt: skip
    package_root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    child = subprocess.Popen(  # -P: the current folder is looked in last, as in training
        [sys.executable, "-P", "-m", "cnn_tui.training.models.own_check", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    _CHECKS[child] = owner
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        label = catalog.model_label(config.model)
        raise UsageError(
            f"{label}: still importing after {timeout:g} s (building it and one forward of a "
            "blank image take longer, or its file loops or waits at import): fix the file"
        ) from None
    finally:
        _CHECKS.pop(child, None)
    if child in _ABANDONED:
        _ABANDONED.discard(child)
        raise CheckAbandoned
    result = _last_json(out)
    if result is None:
        label = catalog.model_label(config.model)
        why = "stopped" if child.returncode and child.returncode < 0 else "ended"
        raise UsageError(
            f"{label}: the check {why} without an answer (exit status {child.returncode}): "
            "does its file exit or crash Python at import?"
        )
    if result.get("problem"):
        raise UsageError(str(result["problem"]))
    found = OwnSize(int(result["params"]), int(result["activations"]), str(result["warning"]))
    with _MEASURING:
        _OWN_MEASURED[key] = found
    return found


def _last_json(out: bytes) -> dict | None:
    """The child's answer: its last line that is a JSON object (the user's code may write to
    the same stream first)."""
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def abandon_checks(owner: object = None) -> None:
    """Kill the running `check_own` children of `owner` (None: every one); each waiting
    thread then raises `CheckAbandoned` at once."""
    for child, whose in list(_CHECKS.items()):
        if owner is not None and whose is not owner:
            continue
        _ABANDONED.add(child)
        with contextlib.suppress(OSError):
            child.kill()


def checked_own(config: TrainConfig) -> OwnSize | None:
    """What `check_own` found of the user's class of `config` as its file is now (None: not
    checked yet); nothing runs."""
    with _MEASURING:
        return _OWN_MEASURED.get(measure_key(config))


def measure_own(config: TrainConfig) -> OwnSize:
    """The user's class of `config` measured: what `check_own` found, else measured here."""
    with _MEASURING:
        if (key := measure_key(config)) in _OWN_MEASURED:
            return _OWN_MEASURED[key]
    found = measure_own_here(config.model, own_sizes(config))
    with _MEASURING:
        _OWN_MEASURED[key] = found
    return found


def describe(config: TrainConfig, cuda: bool) -> str | None:
    """One line for the form: parameters and training memory of `config`'s pretrained model,
    None for the small models. `cuda`: the run will use a GPU (mixed precision may apply).
    A torchvision:NAME model is measured first (`measure`, once per image size: imports torch;
    `needs_measuring` says when); a size it does not take raises a UsageError."""
    image_size = image_size_of(config)
    if catalog.is_own(config.model):
        return _describe_own(config, measure_own(config), cuda)
    if config.model.startswith(catalog.ZOO_PREFIX):
        size = measure(config.model, image_size)
    elif config.model in SIZES:
        size = SIZES[config.model]
    else:
        return None
    found = estimate(
        config.model,
        num_classes=_classes(config),
        image_size=image_size,
        batch_size=config.batch_size,
        finetune=config.resolved_finetune,
        optimizer=config.optimizer,
        momentum=config.momentum,
        half=cuda and config.amp and image_size >= catalog.AMP_MIN_IMAGE_SIZE,
        cached=config.cache_features and config.augment == "none",
        cuda=cuda,
        size=size,
    )
    how = ["mixed precision" if found.half else "fp32"] + ["features cached"] * found.cached
    if config.resolved_weights == "imagenet" and image_size != size.trained_size:
        how.append(f"weights trained at {size.trained_size} px")  # (the meta's: --image-size)
    return (
        f"{text.short_count(found.params)} params, {text.short_count(found.trainable)} trained · "
        f"≈{text.size(found.bytes)} {'GPU ' if cuda else ''}memory at batch "
        f"{config.batch_size}, {image_size} px ({', '.join(how)})"
    )


def _describe_own(config: TrainConfig, size: OwnSize, cuda: bool) -> str:
    """`describe`'s line for the user's own class: every parameter trains (fp32 weights, their
    gradients and the optimizer's state) and every layer's output is kept per image."""
    image_size = image_size_of(config)
    half = cuda and config.amp and image_size >= catalog.AMP_MIN_IMAGE_SIZE
    state = {"adam": 8, "adamw": 8}.get(config.optimizer, 4 if config.momentum > 0 else 0)
    kept = config.batch_size * size.activations * (2 if half else 4)
    total = (8 + state) * size.params + kept
    return (
        f"{text.short_count(size.params)} params, all trained · ≈{text.size(total)} "
        f"{'GPU ' if cuda else ''}memory at batch {config.batch_size}, {image_size} px "
        f"({'mixed precision' if half else 'fp32'})"
    )
