"""The networks to train, by name: small CNNs from the seeds, torchvision backbones, fast networks.

`MODELS` is a plain dict name -> builder, one per model of the catalogue (`cnn_tui.catalog.MODELS`:
the names, kinds and sizes); `build_model` adds start weights and freezing. Every model takes the
data set's channels, image size and number of classes:

- `simple-cnn`: the lecture notes' SimpleCNN (two 3×3 convs, one max-pool, one linear layer).
- `the3-cnn`: THE3 task 2's three conv layers with max-pooling, then two fully connected layers.
- `custom-cnn`: the lecture notes' VGG-style CustomCNN (4 conv blocks with BatchNorm and dropout).
- `resnet18`, `resnet50`, `vgg16`: torchvision's networks with a new K-class head, from ImageNet
  weights, a state_dict file or scratch (`PRETRAINED`, one table for the three).
- `fast-cnn`, `airbench-cnn`: airbench-style networks behind the fast presets (`models.fast`).
- `torchvision:NAME`: any classification model of torchvision's registry, its head and last stage
  found in the built model (`models.zoo`), from the registry's DEFAULT ImageNet weights, a
  state_dict file or scratch.
- `path/to/file.py:Class`, `package.module:Class`: the user's own `nn.Module` class, built with
  the keywords its `__init__` takes and checked by a dry forward (`models.own`).

The pretrained backbones are torchvision's own modules, unwrapped and unrenamed, so a state_dict
loads as-is into `torchvision.models.<name>(num_classes=K)`. One-channel images are repeated to
three channels by a forward pre-hook (hooks are not part of the state_dict). torchvision itself is
imported only when such a model is built: importing it costs ~1.2 s (and ~0.4 s at exit) of every
run's start-up, so its weight enums (URLs, normalisation) are looked up by name, then.
"""

from __future__ import annotations

import os
import pickle
import re
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnn_tui import catalog
from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import input_problem
from cnn_tui.text import some
from cnn_tui.training.config import FINETUNE_PARTS
from cnn_tui.training.models import fast as fast_models
from cnn_tui.training.models import own, zoo
from cnn_tui.training.models.layers import Flatten

WEIGHTS_HELP = "imagenet, none, or a path to a state_dict file"
DOWNLOAD_TIMEOUT_S = 30.0


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


def _flat_size(features: nn.Module, in_channels: int, image_size: int, model: str) -> int:
    """Number of values `features` makes from one image: sizes not divisible by 2^k just floor."""
    features.eval()  # a dummy batch must not touch BatchNorm's running statistics
    try:
        with torch.no_grad():
            shape = features(torch.zeros(1, in_channels, image_size, image_size)).shape
    except RuntimeError:  # a pooling layer got less than 2×2 pixels
        shape = (1, 0, 0, 0)
    features.train()
    if min(shape[1:]) < 1:
        raise UsageError(f"--image-size {image_size} is too small for {model}")
    return shape[1] * shape[2] * shape[3]


class SimpleCNN(nn.Module):
    """Lecture notes: conv3x3-ReLU-conv3x3-ReLU-maxpool2, then one linear layer."""

    def __init__(self, in_channels: int, hidden_units: int, num_classes: int, image_size: int):
        super().__init__()
        self.conv_block_1 = nn.Sequential(
            _conv3x3(in_channels, hidden_units),
            nn.ReLU(inplace=True),
            _conv3x3(hidden_units, hidden_units),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
        )
        flat = _flat_size(self.conv_block_1, in_channels, image_size, "simple-cnn")
        self.classifier = nn.Sequential(Flatten(), nn.Linear(flat, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv_block_1(x))


class The3CNN(nn.Module):
    """THE3 task 2: three conv3x3-ReLU-maxpool2 layers (16, 32, 64 filters), then FC 128 -> K."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, 16), (16, 32), (32, 64)):
            layers += [_conv3x3(c_in, c_out), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=2)]
        self.features = nn.Sequential(*layers)
        flat = _flat_size(self.features, in_channels, image_size, "the3-cnn")
        self.classifier = nn.Sequential(
            Flatten(), nn.Linear(flat, 128), nn.ReLU(inplace=True), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _vgg_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        _conv3x3(in_channels, out_channels),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(out_channels),
        _conv3x3(out_channels, out_channels),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(out_channels),
        nn.MaxPool2d(kernel_size=2),
        nn.Dropout(p=0.25),
    )


class CustomCNN(nn.Module):
    """Lecture notes: VGG-style, 4 blocks (32, 64, 128, 256 channels) and a 512-1024-K classifier."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        self.conv_block_1 = _vgg_block(in_channels, 32)
        self.conv_block_2 = _vgg_block(32, 64)
        self.conv_block_3 = _vgg_block(64, 128)
        self.conv_block_4 = _vgg_block(128, 256)
        blocks = (self.conv_block_1, self.conv_block_2, self.conv_block_3, self.conv_block_4)
        flat = _flat_size(nn.Sequential(*blocks), in_channels, image_size, "custom-cnn")
        self.classifier = nn.Sequential(
            Flatten(),
            nn.Linear(flat, 512),  # 256 * 2 * 2 at 32 px, 256 * 1 * 1 at 28 px
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(512),
            nn.Dropout(p=0.5),
            nn.Linear(512, 1024),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(1024),
            nn.Dropout(p=0.5),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_block_1(x)
        x = self.conv_block_2(x)
        x = self.conv_block_3(x)
        x = self.conv_block_4(x)
        return self.classifier(x)


def _gray_to_rgb(module: nn.Module, args: tuple) -> tuple | None:
    """Forward pre-hook: a one-channel batch is repeated to the three channels ImageNet nets expect."""
    x = args[0]
    if x.shape[1] == 1:
        return (x.expand(-1, 3, -1, -1), *args[1:])
    return None


class DropoutLinear(nn.Linear):
    """Dropout(p), then this Linear layer: the lecture's `Sequential(Dropout(0.2), Linear(2048, K))`
    head of ResNet-50 as one layer whose state_dict is a plain Linear's (`fc.weight`, `fc.bias`),
    so a checkpoint still loads as-is into `torchvision.models.resnet50(num_classes=K)` (there
    without the dropout, which has no weights). Not in place, unlike the lecture's
    `Dropout(inplace=True)`: the input may be a batch of cached backbone features."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.0,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.dropout(x, self.p, self.training), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.p}"


# in `Pretrained.backbone`: torch.flatten(x, 1), as torchvision's forward does
FLATTEN = "flatten"
_RESNET_BACKBONE = (
    "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", FLATTEN,
)  # fmt: skip


@dataclass(frozen=True)
class Pretrained:
    """One torchvision backbone: how it is built, its ImageNet weights, its head and its blocks.

    The network is `torchvision.models.<name>(num_classes=K)`, so its head layer already has K
    outputs, initialised as torchvision does. `trainable` names, per --finetune, the modules that
    train; they are also the ones that run in training mode (BatchNorm statistics, dropout), the
    frozen rest is a fixed function of the image. With `head` that rest is `backbone` (the
    modules, in order, that map an image to the head's `features` inputs), which the feature cache
    runs once per image.
    """

    weights: str  # the ImageNet weights: "<enum>.<member>" in torchvision.models ("": DEFAULT)
    features: int  # inputs of the head layer
    head: str  # the layer that gets K outputs: its weights are never loaded from another shape
    trainable: dict[str, tuple[str, ...]]  # --finetune head / last-block -> modules that train
    # the modules from the image to the head's inputs; None: the model run up to its head
    # (`zoo.HeadInput`, a torchvision:NAME model)
    backbone: tuple[str, ...] | None
    last_block: str  # the last block in words, for messages
    head_dropout: float = 0.0  # dropout before the head layer (a `DropoutLinear` head)


PRETRAINED: dict[str, Pretrained] = {
    # seeds 000, 002, 003: Linear(512, K) replaces fc
    "resnet18": Pretrained(
        weights="ResNet18_Weights.IMAGENET1K_V1",
        features=512,
        head="fc",
        trainable={"head": ("fc",), "last-block": ("layer4", "fc")},
        backbone=_RESNET_BACKBONE,
        last_block="layer4",
    ),
    # lecture notes (seed 004): every layer frozen, fc = Dropout(0.2) + Linear(2048, K); the notes
    # load ResNet50_Weights.DEFAULT, which is IMAGENET1K_V2 (torchvision >= 0.13, the version that
    # brought the weight enums), trained with the same 224-px ImageNet mean and std as V1
    "resnet50": Pretrained(
        weights="ResNet50_Weights.IMAGENET1K_V2",
        features=2048,
        head="fc",
        trainable={"head": ("fc",), "last-block": ("layer4", "fc")},
        backbone=_RESNET_BACKBONE,
        last_block="layer4",
        head_dropout=0.2,
    ),
    # seed 003: all layers frozen but the last fully connected one, classifier[6] = Linear(4096, K).
    # The head keeps the dropout in front of it (classifier[5]); last-block is the whole classifier
    # (fc6, fc7 and the head: 120M of the 134M weights), the conv layers stay frozen.
    "vgg16": Pretrained(
        weights="VGG16_Weights.IMAGENET1K_V1",
        features=4096,
        head="classifier.6",
        trainable={"head": ("classifier.5", "classifier.6"), "last-block": ("classifier",)},
        backbone=("features", "avgpool", FLATTEN, *(f"classifier.{i}" for i in range(5))),
        last_block="the fully connected classifier",
    ),
}
# (name, trainable modules, its Pretrained) on a built backbone
_PRETRAINED_ATTRIBUTE = "_cnn_tui_pretrained"


def _zoo_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """torchvision's `name` (a zoo model) with a K-class head, its layout found and kept."""
    if in_channels not in (1, 3):
        raise UsageError(
            f"{catalog.ZOO_PREFIX}{name} takes 1- or 3-channel images, got {in_channels} channels"
        )
    model = zoo.build(name, num_classes)
    zoo.check_input_size(model, name, 3, image_size)
    layout = zoo.find_layout(model, name)
    head = model.get_submodule(layout.head)
    spec = Pretrained(
        weights="",
        features=head.in_features if isinstance(head, nn.Linear) else head.in_channels,
        head=layout.head,
        trainable={"head": layout.trainable("head"), "last-block": layout.trainable("last-block")},
        backbone=None,
        last_block=layout.last_stage,
    )
    setattr(model, _PRETRAINED_ATTRIBUTE, (catalog.ZOO_PREFIX + name, None, spec))
    if in_channels == 1:
        model.register_forward_pre_hook(_gray_to_rgb)
    return model


def pretrained_spec(name: str, model: nn.Module | None = None) -> Pretrained:
    """The Pretrained description of model `name`: the table's, or (torchvision:NAME) the one
    found in the built `model`."""
    if name in PRETRAINED:
        return PRETRAINED[name]
    if model is None or not hasattr(model, _PRETRAINED_ATTRIBUTE):
        raise ValueError(f"{name} is no pretrained model built here")
    return getattr(model, _PRETRAINED_ATTRIBUTE)[2]


def _pretrained(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """torchvision's `name` with a K-class head (weights and freezing: `build_model`)."""
    if in_channels not in (1, 3):
        raise UsageError(f"{name} takes 1- or 3-channel images, got {in_channels} channels")
    smallest = catalog.MODELS[name].min_image_size
    if image_size < smallest:
        raise UsageError(
            f"{name} needs images of at least {smallest} px, got {image_size} px: pass "
            f"--image-size {smallest} or more"
        )
    import torchvision

    spec = PRETRAINED[name]
    model = getattr(torchvision.models, name)(num_classes=num_classes)
    if spec.head_dropout:
        # the same Linear, its very parameters and all: nothing drawn from the random generator
        old = model.get_submodule(spec.head)
        head = DropoutLinear(old.in_features, old.out_features, p=spec.head_dropout, device="meta")
        head.weight, head.bias = old.weight, old.bias
        model.set_submodule(spec.head, head)
    if in_channels == 1:
        model.register_forward_pre_hook(_gray_to_rgb)
    return model


Builder = Callable[..., nn.Module]  # (in_channels, num_classes, image_size, hidden_units) -> model

_OWN_MODELS: dict[str, Builder] = {
    "simple-cnn": lambda c, k, s, h: SimpleCNN(c, h, k, s),
    "the3-cnn": lambda c, k, s, h: The3CNN(c, k, s),
    "custom-cnn": lambda c, k, s, h: CustomCNN(c, k, s),
    **fast_models.MODELS,  # fast-cnn, airbench-cnn
}


def _builder(model: catalog.Model) -> Builder:
    if model.pretrained:
        return lambda c, k, s, h: _pretrained(model.name, c, k, s)
    return _OWN_MODELS[model.name]


# every model of the catalogue, in its order (a model without a builder fails here, at import)
MODELS: dict[str, Builder] = {name: _builder(model) for name, model in catalog.MODELS.items()}


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    hidden_units: int = 10,
    weights: str = "none",
    finetune: str = "all",
    source: own.Source | None = None,
    dataset: str = "",
) -> nn.Module:
    """A freshly built model `name` for (in_channels, image_size, image_size) inputs, K classes.

    `name` is a short name of `MODELS`, `torchvision:NAME` or the user's own class
    (`catalog.parse_model`). The user's class runs `source`'s code (a run's checked copy:
    `own.run_source`), by default its file's as it is now; `dataset` names the images in its
    messages.
    `weights` (pretrained models only; the small CNNs start from scratch): "imagenet", "none" or
    a state_dict path; "auto" means imagenet for a pretrained model. `finetune` (pretrained models
    only; the small CNNs always train whole): "head", "last-block" ("layer4" for a ResNet) or "all"
    — the rest is frozen (requires_grad=False) and stays in eval mode (`set_train_mode`).
    """
    try:
        spec = catalog.parse_model(name)
    except ValueError as exc:
        raise UsageError(f"--model {name!r}: {exc}") from None
    if finetune not in FINETUNE_PARTS:  # (callers resolve auto: `TrainConfig.resolved_finetune`)
        raise UsageError(
            f"unknown --finetune {finetune!r}; valid values: {', '.join(FINETUNE_PARTS)}"
        )
    weights = (weights or "none").strip()
    if weights == "auto":
        weights = "imagenet" if spec.pretrained else "none"
    if not spec.pretrained and weights != "none":
        raise UsageError(
            f"--weights applies to pretrained models only ({', '.join(PRETRAINED)}, "
            f"{catalog.ZOO_PREFIX}NAME); --model {name} starts from scratch"
        )
    if in_channels < 1 or num_classes < 1 or image_size < 1 or hidden_units < 1:
        raise UsageError(
            f"model sizes must be positive: in_channels={in_channels}, num_classes={num_classes}, "
            f"image_size={image_size}, hidden_units={hidden_units}"
        )
    name = spec.text
    if spec.own:
        sizes = own.Sizes(in_channels, num_classes, image_size, hidden_units, dataset)
        return own.build(source or own.read_source(name), sizes)
    if spec.zoo:
        model = _zoo_model(spec.name, in_channels, num_classes, image_size)
        trainable: tuple[str, ...] | None = trainable_modules(name, finetune, model)
    else:
        trainable = trainable_modules(name, finetune) if name in PRETRAINED else None
        model = MODELS[name](in_channels, num_classes, image_size, hidden_units)
    if trainable is not None:
        if weights == "imagenet":
            _load_backbone(model, name, _imagenet_state_dict(name), "the ImageNet weights")
        elif weights != "none":
            _load_backbone(model, name, _read_state_dict(weights), weights)
        _freeze(model, name, trainable)
    return model


def trainable_modules(name: str, finetune: str, model: nn.Module | None = None) -> tuple[str, ...]:
    """The modules of pretrained model `name` that train with `finetune` ("" is all of them);
    a torchvision:NAME model's are found in the built `model`."""
    spec = pretrained_spec(name, model)
    if finetune == "all":
        return ("",)
    if finetune == "layer4":  # ResNet's name of its last block, kept from the first version
        if "layer4" not in spec.trainable["last-block"]:
            raise UsageError(
                f"--finetune layer4 is a ResNet block; {name} has none: use --finetune "
                f"last-block ({spec.last_block} + head)"
            )
        finetune = "last-block"
    return spec.trainable[finetune]


def _weights_enum(name: str) -> object:
    if name.startswith(catalog.ZOO_PREFIX):
        return zoo.default_weights(name.removeprefix(catalog.ZOO_PREFIX))
    import torchvision

    enum_name, member = PRETRAINED[name].weights.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def imagenet_weights_url(name: str) -> str:
    """Where torchvision keeps the ImageNet weights of `name` (the file name ends in its hash)."""
    return _weights_enum(name).url


def weights_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the ImageNet weights of `name` were trained with, from torchvision's meta."""
    transforms = _weights_enum(name).transforms()
    return tuple(transforms.mean), tuple(transforms.std)


def _imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for `name`, from torch hub's cache or downloaded once.

    A torchvision:NAME model's come through `get_model(NAME, weights=DEFAULT)`, which also
    applies a family's own fixes to old files (DenseNet's renamed keys)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torch hub's urlopen has no timeout of its own
    try:
        if name.startswith(catalog.ZOO_PREFIX):
            import torchvision

            zoo_name = name.removeprefix(catalog.ZOO_PREFIX)
            url = imagenet_weights_url(name)  # (looked up here: a test may point it elsewhere)
            weights = zoo.default_weights(zoo_name)
            if url != weights.url:
                return torch.hub.load_state_dict_from_url(
                    url, map_location="cpu", progress=False, check_hash=True, weights_only=True
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return torchvision.models.get_model(zoo_name, weights=weights).state_dict()
        return torch.hub.load_state_dict_from_url(
            imagenet_weights_url(name),
            map_location="cpu",
            progress=False,
            check_hash=True,  # the file name's hash prefix must match the file's SHA-256
            weights_only=True,
        )
    except Exception as exc:  # no network, a timeout, a bad checksum: the remedy is the same
        reason = str(exc).strip() or type(exc).__name__
        reason = reason.removeprefix("<urlopen error ").removesuffix(">")[:160]
        raise RunError(
            f"could not download the ImageNet weights for {name} ({reason}): connect to "
            "the internet once, or pass --weights none or --weights PATH to a state_dict file"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


class TorchFileError(Exception):
    """A file `torch_load` could not or would not read; the message is the reason, in words."""


def torch_load(path: str | os.PathLike[str]) -> object:
    """`torch.load(path, weights_only=True)` to the CPU: tensors and plain values only, so a file
    from someone else never runs code. Raises TorchFileError with a short reason (torch's own
    messages run to many lines) and keeps torch's warnings (old pickle protocols) off stderr."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except IsADirectoryError:
        raise TorchFileError("it is a folder") from None
    except Exception as exc:  # truncated, not a torch file, or pickled code we refuse to run
        text = str(exc)
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        if refused:
            reason = f"it asks for {refused.group(1)}, which holds code, not weights; not run"
        elif isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
            reason = "not a PyTorch file of tensors"
        elif (
            isinstance(exc, EOFError)
            or "central directory" in text
            or "PytorchStreamReader" in text
        ):
            reason = "truncated or damaged: not a complete PyTorch zip file"
        else:
            lines = text.strip().splitlines()
            reason = (lines[0] if lines else type(exc).__name__)[:120]
        raise TorchFileError(reason) from None


def tensor_misfit(saved: torch.Tensor, wanted: torch.Tensor) -> str | None:
    """Why the weights `saved` (from a file) cannot go where the model has `wanted`, or None.

    `load_state_dict` casts what it copies: complex weights would lose their imaginary part
    (with a warning), whole numbers or true/false would become weights, and a meta tensor has
    no values. Where the model holds a float, a file must hold a dense float with values (half
    or bfloat16 is fine); a count buffer (`num_batches_tracked`) takes what torch copies."""
    if not wanted.is_floating_point():
        return None
    if saved.is_meta:
        return "a tensor without values (meta)"
    if saved.layout != torch.strided:
        return str(saved.layout).removeprefix("torch.")
    if not saved.is_floating_point():
        return str(saved.dtype).removeprefix("torch.")
    return None


def _read_state_dict(path_text: str) -> dict[str, torch.Tensor]:
    """A state_dict from a file: a bare one, or our checkpoint dict with a "model" entry."""
    path = Path(os.path.expanduser(path_text))
    problem = input_problem(path)  # not opened unless a regular file: a FIFO would hang
    if problem is not None:
        separator = " " if problem.startswith("is ") else ": "
        raise UsageError(f"--weights {path_text}{separator}{problem} (expected {WEIGHTS_HELP})")
    try:
        state = torch_load(path)
    except TorchFileError as exc:
        raise UsageError(
            f"--weights {path_text} is not a readable state_dict file ({exc}): pass a file "
            "saved with torch.save(model.state_dict(), PATH)"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UsageError(f"--weights {path_text} does not hold a state_dict (names -> tensors)")
    prefix = "module."  # saved from DataParallel / DistributedDataParallel
    if state and all(key.startswith(prefix) for key in state):
        state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether module or parameter `name` is one of the modules `prefixes` or inside one."""
    return any(not p or name == p or name.startswith(p + ".") for p in prefixes)


def _load_backbone(
    model: nn.Module, name: str, state: dict[str, torch.Tensor], source: str
) -> None:
    """Load everything but the head; the head too when its shape matches (K classes)."""
    own = model.state_dict()
    head = (pretrained_spec(name, model).head,)
    head_keys = {key for key in own if _under(key, head)}
    keep_head = all(key in state and state[key].shape == own[key].shape for key in head_keys)
    wanted = {key: value for key, value in state.items() if keep_head or not _under(key, head)}
    missing = sorted(set(own) - set(wanted) - (set() if keep_head else head_keys))
    unexpected = sorted(set(wanted) - set(own))
    wrong_shape = sorted(
        key for key in set(wanted) & set(own) if wanted[key].shape != own[key].shape
    )
    wrong_type = sorted(
        f"{key} ({misfit})"
        for key in set(wanted) & set(own)
        if (misfit := tensor_misfit(wanted[key], own[key])) is not None
    )
    if missing or unexpected or wrong_shape or wrong_type:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong_shape),
            ("not float weights", wrong_type),
        ):
            if keys:  # (the file's key names, escaped: `text.some`)
                problems.append(f"{label}: {some(keys, shown=3)}")
        raise UsageError(f"--weights {source} does not fit {name} ({'; '.join(problems)})")
    model.load_state_dict(wanted, strict=False)


def _freeze(model: nn.Module, name: str, trainable: tuple[str, ...]) -> None:
    spec = pretrained_spec(name, model)
    for key, parameter in model.named_parameters():
        parameter.requires_grad_(_under(key, trainable))
    # a plain attribute: not a module, parameter or buffer, so not in the state_dict
    setattr(model, _PRETRAINED_ATTRIBUTE, (name, trainable, spec))


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should get (frozen ones left out)."""
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter values."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def set_train_mode(model: nn.Module, training: bool) -> None:
    """model.train(training), except that the frozen parts stay in eval mode: BatchNorm layers
    whose parameters are frozen keep their running statistics, and in a pretrained model every
    layer outside the modules that train (`trainable_modules`) runs as in inference, dropout off,
    so the frozen part is a fixed function of the image (what the feature cache computes once)."""
    model.train(training)
    if not training:
        return
    trainable = getattr(model, _PRETRAINED_ATTRIBUTE, (None, None, None))[1]
    for key, module in model.named_modules():
        if trainable is not None and not _under(key, trainable):
            if not any(True for _ in module.children()):  # a layer, not a container
                module.eval()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """For a pretrained model whose layers are all frozen but the head: (feature extractor, head).

    Both share the model's modules: the extractor (`Pretrained.backbone`, e.g. conv1 ... avgpool,
    then flatten; a torchvision:NAME model run up to its head, `zoo.HeadInput`) maps a batch to
    (N, features) — 512 for resnet18, 2048 for resnet50, 4096 for vgg16 — and head(features)
    equals model(batch); the head is `fc`, or vgg16's classifier[5:] (dropout, then the last
    Linear), or a zoo model's head part (its dropout and Linear). None for any other model or
    finetune, and for a zoo model whose head is not a Linear that ends the network (SqueezeNet).
    """
    name, trainable, spec = getattr(model, _PRETRAINED_ATTRIBUTE, (None, None, None))
    if name is None:
        return None
    head_modules = spec.trainable["head"]
    frozen = all(
        _under(key, head_modules) == p.requires_grad for key, p in model.named_parameters()
    )
    if trainable != head_modules or not frozen:
        return None
    heads = [model.get_submodule(part) for part in head_modules]
    if spec.backbone is None:
        if not isinstance(heads[-1], nn.Linear) or head_modules[-1] != spec.head:
            return None  # something runs after the head layer (SqueezeNet's pooling)
        backbone: nn.Module = zoo.HeadInput(model, head_modules[0])
    else:
        backbone = nn.Sequential(
            *(
                nn.Flatten(1) if part == FLATTEN else model.get_submodule(part)
                for part in spec.backbone
            )
        )
        backbone.register_forward_pre_hook(_gray_to_rgb)
    return backbone, heads[0] if len(heads) == 1 else nn.Sequential(*heads)


def feature_size(model: nn.Module) -> int:
    """Inputs of a pretrained model's head layer (what `backbone_and_head`'s extractor makes)."""
    return getattr(model, _PRETRAINED_ATTRIBUTE)[2].features
