"""torchvision's model zoo: any classification model of its registry as `--model torchvision:NAME`.

The network is `torchvision.models.get_model(NAME, num_classes=K)`, unwrapped and unrenamed, so
its state_dict loads as-is into that call, and its K-class head is torchvision's own layer,
initialised as torchvision does. What the rest of cnn-tui needs to know about it is found in the
built model, the same way for every family (`find_layout`):

- the head: the last `nn.Linear` under the model's classifier / fc / head / heads attribute
  (SqueezeNet: the last Conv2d there, its 1×1 classifier), else the last Linear anywhere; the
  parameter-free dropout right before it belongs with it (`head_part`);
- the last stage: the last child holding a convolution (or a Linear: the transformers) of the
  feature extractor — `features`, `trunk_output` (RegNet), `layers` (MNASNet), `encoder.layers`
  (ViT), `blocks` (MaxViT), else the model itself (ResNet, ShuffleNet) without its head;
- `--finetune head` trains the head part and what runs after it, `last-block` the last stage and
  everything registered after it (final norms, a VGG's fully connected layers, the head), `all`
  everything.

The ImageNet weights are the registry's DEFAULT (`get_model_weights(NAME).DEFAULT`): their URL,
their normalisation (`transforms().mean/std`), the smallest input they take (`meta["min_size"]`)
and the size they were trained at (`transforms().crop_size`). Whether a model takes an image size
is tried on the meta device (`check_input_size`), with no memory and no arithmetic.
torchvision is imported inside the functions: `--help` and the TUI's start stay free of it.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnn_tui.catalog import MODELS_COMMAND, ZOO_EXCLUDED, ZOO_PREFIX
from cnn_tui.errors import UsageError

# where the stages of a family's feature extractor are, as torchvision names the attribute
EXTRACTORS = ("features", "trunk_output", "layers", "encoder.layers", "blocks")
HEAD_ATTRIBUTES = ("classifier", "fc", "head", "heads")


@functools.cache
def names() -> tuple[str, ...]:
    """The classification models of torchvision's registry that train here, sorted."""
    import torchvision

    found = torchvision.models.list_models(module=torchvision.models)
    return tuple(name for name in sorted(found) if name not in ZOO_EXCLUDED)


def check_name(name: str) -> None:
    """A UsageError in one line unless `name` is a model of torchvision's registry."""
    if name in names():
        return
    import torchvision

    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(ZOO_PREFIX + c for c in close)}? " if close else ""
    raise UsageError(
        f"--model {ZOO_PREFIX}{name}: torchvision {torchvision.__version__} has no such "
        f"classification model; {hint}{MODELS_COMMAND} lists them"
    )


def default_weights(name: str) -> Any:
    """The registry's DEFAULT ImageNet weights of `name` (a torchvision `WeightsEnum` member)."""
    import torchvision

    check_name(name)
    return torchvision.models.get_model_weights(name).DEFAULT


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the DEFAULT weights of `name` were trained with, from their transforms."""
    transforms = default_weights(name).transforms()
    return tuple(transforms.mean), tuple(transforms.std)


def min_image_size(name: str) -> int:
    """The smallest square input the DEFAULT weights' meta allows (ViT: 224, ConvNeXt: 32)."""
    return int(max(default_weights(name).meta.get("min_size", (1, 1))))


def trained_size(name: str) -> int:
    """The size the DEFAULT weights were trained and evaluated at (their transforms' crop)."""
    crop = default_weights(name).transforms().crop_size
    return int(crop[0] if isinstance(crop, (list, tuple)) else crop)


def check_before_run(model: str, image_size: int, what: str | None = None) -> None:
    """What can be checked of `--model torchvision:NAME` before a run folder is made, without
    building the model: the name, and `image_size` against its weights' meta (a UsageError
    that starts with `what`, by default "--model torchvision:NAME")."""
    if not model.startswith(ZOO_PREFIX):
        return
    name = model.removeprefix(ZOO_PREFIX)
    smallest = min_image_size(name)  # (checks the name)
    if image_size < smallest:
        raise UsageError(
            f"{what or '--model ' + model} needs images of at least {smallest} px (its weights' meta), got "
            f"{image_size} px: pass --image-size {smallest} or more"
        )


@dataclass(frozen=True)
class ZooEntry:
    """One row of `cnn-tui models`: a zoo model as its DEFAULT weights' meta describes it."""

    name: str
    params: int
    acc1: float | None  # ImageNet-1K top-1 accuracy of the DEFAULT weights, %
    gflops: float | None
    image_size: int  # trained at (crop size)
    min_image_size: int


def entries() -> list[ZooEntry]:
    """Every zoo model with its weights' meta (no model is built)."""
    rows = []
    for name in names():
        weights = default_weights(name)
        meta = weights.meta
        metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
        rows.append(
            ZooEntry(
                name=name,
                params=int(meta.get("num_params", 0)),
                acc1=metrics.get("acc@1"),
                gflops=meta.get("_ops"),
                image_size=trained_size(name),
                min_image_size=min_image_size(name),
            )
        )
    return rows


def model_rows(search: str = "") -> list[dict[str, Any]]:
    """One dict per model `--model` takes whose name holds `search` (any case): the short names
    (the catalogue's), then the zoo's `entries` (`cnn-tui models`, the form's model picker)."""
    from cnn_tui import catalog
    from cnn_tui.training.models import registry

    found: list[dict[str, Any]] = []
    for name, model in catalog.MODELS.items():
        # resnet18, resnet50, vgg16: their weights' meta (at 1000 classes, as for the zoo's)
        meta = registry._weights_enum(name).meta if model.pretrained else {}
        metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
        found.append(
            {
                "model": name,
                "kind": model.kind,
                "params": meta.get("num_params"),
                "acc1": metrics.get("acc@1"),
                "gflops": meta.get("_ops"),
                "image_size": model.native_image_size,
                "min_image_size": model.min_image_size,
            }
        )
    for entry in entries():
        found.append(
            {
                "model": ZOO_PREFIX + entry.name,
                "kind": "torchvision zoo",
                "params": entry.params,
                "acc1": entry.acc1,
                "gflops": entry.gflops,
                "image_size": entry.image_size,
                "min_image_size": entry.min_image_size,
            }
        )
    wanted = search.strip().lower()
    return [row for row in found if wanted in row["model"].lower()]


def build(name: str, num_classes: int) -> nn.Module:
    """`torchvision.models.get_model(name, num_classes=num_classes)`, randomly initialised."""
    import warnings

    import torchvision

    check_name(name)
    with warnings.catch_warnings():  # (googlenet-style "default init will change" notes)
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(name, num_classes=num_classes)


def check_input_size(model: nn.Module, name: str, in_channels: int, image_size: int) -> None:
    """A UsageError unless `model` maps a 3 × `image_size`² image to logits: tried on the meta
    device (shapes only), with the smallest size the weights' meta allows as the remedy."""
    smallest = min_image_size(name)
    state = {key: value.to("meta") for key, value in model.state_dict(keep_vars=True).items()}
    dummy = torch.empty(1, in_channels, image_size, image_size, device="meta")
    try:
        torch.func.functional_call(model.eval(), state, (dummy,))
    except Exception as exc:  # too small for a pooling layer, a fixed-size transformer, ...
        lines = str(exc).strip().splitlines()
        reason = (lines[0] if lines else type(exc).__name__)[:100]
        need = (
            f"pass --image-size {smallest} or more"
            if image_size < smallest
            else f"its weights were trained at {trained_size(name)} px: pass --image-size "
            f"{trained_size(name)}"
        )
        raise UsageError(
            f"{ZOO_PREFIX}{name} does not take {image_size}-px images ({reason}): {need}"
        ) from None
    finally:
        model.train()


@dataclass(frozen=True)
class Layout:
    """Where a zoo model's head and last stage are (module paths), found in the built model."""

    head: str  # the layer with K outputs
    head_part: tuple[str, ...]  # the dropout right before the head (if any), then the head
    last_stage: str
    after_stage: tuple[str, ...]  # the leaf modules registered after the last stage
    after_head: tuple[str, ...]  # the leaf modules registered after the head (SqueezeNet's pool)

    def trainable(self, finetune: str) -> tuple[str, ...]:
        """The modules that train with --finetune `finetune` ("" is every module)."""
        if finetune == "all":
            return ("",)
        if finetune == "head":
            return (*self.head_part, *self.after_head)
        return (self.last_stage, *self.after_stage)


def _has(module: nn.Module, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(m, kinds) for m in module.modules())


def _leaves(model: nn.Module) -> list[str]:
    return [key for key, m in model.named_modules() if key and not any(True for _ in m.children())]


def _find_head(model: nn.Module, name: str) -> str:
    named = dict(model.named_modules())
    present = [a for a in dict(model.named_children()) if a in HEAD_ATTRIBUTES]
    where = present[-1] if present else ""
    for kinds in ((nn.Linear,), (nn.Conv2d,)):
        found = [
            key
            for key, m in named.items()
            if isinstance(m, kinds) and (not where or key == where or key.startswith(where + "."))
        ]
        if found:
            return found[-1]
    raise UsageError(f"{ZOO_PREFIX}{name}: no classifier layer found (nn.Linear or a 1×1 conv)")


def _find_last_stage(model: nn.Module, head: str, name: str) -> str:
    named = dict(model.named_modules())
    container, prefix = model, ""
    for path in EXTRACTORS:
        if path in named and any(True for _ in named[path].children()):
            container, prefix = named[path], path + "."
            break
    head_root = head.split(".")[0]
    stages = [
        prefix + key
        for key, child in container.named_children()
        if (prefix or key != head_root) and _has(child, (nn.Conv2d, nn.Linear))
    ]
    if not stages:
        raise UsageError(f"{ZOO_PREFIX}{name}: no stage with a convolution found")
    return stages[-1]


def find_layout(model: nn.Module, name: str) -> Layout:
    """The head and last stage of zoo model `name` (see the module docstring)."""
    head = _find_head(model, name)
    stage = _find_last_stage(model, head, name)
    leaves = _leaves(model)
    parent, _, index = head.rpartition(".")
    part = [head]
    container = model.get_submodule(parent) if parent else model
    if isinstance(container, nn.Sequential) and index.isdigit():
        at = int(index) - 1
        while at >= 0 and isinstance(container[at], nn.Dropout):
            part.insert(0, f"{parent}.{at}")
            at -= 1
    stage_leaves = [key for key in leaves if key == stage or key.startswith(stage + ".")]
    last_of_stage = leaves.index(stage_leaves[-1]) if stage_leaves else leaves.index(stage)
    head_at = leaves.index(head)
    return Layout(
        head=head,
        head_part=tuple(part),
        last_stage=stage,
        after_stage=tuple(leaves[last_of_stage + 1 :]),
        after_head=tuple(leaves[head_at + 1 :]),
    )


# their blocks work on tokens (N, L, D) or channels-last maps: no stage has (C, H, W) maps
TOKEN_MODELS = ("VisionTransformer", "SwinTransformer")


def stage_names(model: nn.Module) -> list[str]:
    """The stages Inside shows for a torchvision model, in order: the children holding a
    convolution (and the pooling layers) of the model without its head, the feature extractor's
    (`EXTRACTORS`) replaced by its own children. None for the token-based transformers."""
    if type(model).__name__ in TOKEN_MODELS:
        return []
    named = dict(model.named_modules())
    extractor = next(
        (
            path
            for path in EXTRACTORS
            if path in named and any(True for _ in named[path].children())
        ),
        None,
    )
    pools = (nn.MaxPool2d, nn.AvgPool2d)

    def stages_of(module: nn.Module, prefix: str) -> list[str]:
        found = []
        for key, child in module.named_children():
            path = prefix + key
            if path == extractor:
                found += stages_of(child, path + ".")
            elif extractor and extractor.startswith(path + "."):
                found += stages_of(child, path + ".")
            elif not prefix and key in HEAD_ATTRIBUTES:
                continue
            elif isinstance(child, pools) or _has(child, (nn.Conv2d,)):
                found.append(path)
        return found

    return stages_of(model, "")


class _Stop(Exception):
    """Raised by the hook that caught the head's input: the rest of the forward is not run."""


class HeadInput(nn.Module):
    """The model up to its head: runs `model` and returns what the module `first` (the head
    part's first module) gets, stopping there. Shares the model's modules; not saved anywhere."""

    def __init__(self, model: nn.Module, first: str) -> None:
        super().__init__()
        self.model = model
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen: list[torch.Tensor] = []

        def grab(module: nn.Module, args: tuple) -> None:
            seen.append(args[0])
            raise _Stop

        handle = self.model.get_submodule(self.first).register_forward_pre_hook(grab)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        return seen[0]
