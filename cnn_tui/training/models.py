"""The networks to train, by name: three small CNNs from the seeds and torchvision's ResNet18.

`MODELS` is a plain dict name -> builder; `build_model` adds start weights and freezing. Every
model takes the data set's channels, image size and number of classes:

- `simple-cnn`: the lecture notes' SimpleCNN (two 3×3 convs, one max-pool, one linear layer).
- `the3-cnn`: THE3 task 2's three conv layers with max-pooling, then two fully connected layers.
- `custom-cnn`: the lecture notes' VGG-style CustomCNN (4 conv blocks with BatchNorm and dropout).
- `resnet18`: torchvision's ResNet18 with a new Linear(512, K) head, from ImageNet weights, a
  state_dict file or scratch; `finetune` freezes everything but the head, or but layer4 + head.

The ResNet is torchvision's own module, unwrapped and unrenamed, so its state_dict loads as-is into
`torchvision.models.resnet18(num_classes=K)`. One-channel images are repeated to three channels by
a forward pre-hook (hooks are not part of the state_dict).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import FINETUNES

WEIGHTS_HELP = "imagenet, none, or a path to a state_dict file"
# torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url; torchvision itself is imported only when a
# resnet18 is built: importing it costs ~1.2 s (and ~0.4 s at exit) of every run's start-up
IMAGENET_WEIGHTS_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation the ImageNet weights were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
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
            nn.ReLU(),
            _conv3x3(hidden_units, hidden_units),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        flat = _flat_size(self.conv_block_1, in_channels, image_size, "simple-cnn")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv_block_1(x))


class The3CNN(nn.Module):
    """THE3 task 2: three conv3x3-ReLU-maxpool2 layers (16, 32, 64 filters), then FC 128 -> K."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, 16), (16, 32), (32, 64)):
            layers += [_conv3x3(c_in, c_out), nn.ReLU(), nn.MaxPool2d(kernel_size=2)]
        self.features = nn.Sequential(*layers)
        flat = _flat_size(self.features, in_channels, image_size, "the3-cnn")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _vgg_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        _conv3x3(in_channels, out_channels),
        nn.ReLU(),
        nn.BatchNorm2d(out_channels),
        _conv3x3(out_channels, out_channels),
        nn.ReLU(),
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
            nn.Flatten(),
            nn.Linear(flat, 512),  # 256 * 2 * 2 at 32 px, 256 * 1 * 1 at 28 px
            nn.ReLU(),
            nn.BatchNorm1d(512),
            nn.Dropout(p=0.5),
            nn.Linear(512, 1024),
            nn.ReLU(),
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
    """Forward pre-hook: a one-channel batch is repeated to the three channels ResNet expects."""
    x = args[0]
    if x.shape[1] == 1:
        return (x.expand(-1, 3, -1, -1), *args[1:])
    return None


def _resnet18(in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    if in_channels not in (1, 3):
        raise UsageError(f"resnet18 takes 1- or 3-channel images, got {in_channels} channels")
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    if in_channels == 1:
        model.register_forward_pre_hook(_gray_to_rgb)
    return model


Builder = Callable[..., nn.Module]  # (in_channels, num_classes, image_size, hidden_units) -> model

MODELS: dict[str, Builder] = {
    "simple-cnn": lambda c, k, s, h: SimpleCNN(c, h, k, s),
    "the3-cnn": lambda c, k, s, h: The3CNN(c, k, s),
    "custom-cnn": lambda c, k, s, h: CustomCNN(c, k, s),
    "resnet18": lambda c, k, s, h: _resnet18(c, k, s),
}


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    hidden_units: int = 10,
    weights: str = "none",
    finetune: str = "all",
) -> nn.Module:
    """A freshly built model `name` for (in_channels, image_size, image_size) inputs, K classes.

    `weights` (resnet18 only; the small CNNs start from scratch): "imagenet", "none" or a
    state_dict path; "auto" means imagenet for resnet18. `finetune` (resnet18 only; the small CNNs
    always train whole): "head", "layer4" or "all" — the rest is frozen (requires_grad=False).
    """
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    if finetune not in FINETUNES:
        raise UsageError(f"unknown --finetune {finetune!r}; valid values: {', '.join(FINETUNES)}")
    weights = (weights or "none").strip()
    if weights == "auto":
        weights = "imagenet" if name == "resnet18" else "none"
    if name != "resnet18" and weights != "none":
        raise UsageError(f"--weights applies to resnet18 only; --model {name} starts from scratch")
    if in_channels < 1 or num_classes < 1 or image_size < 1 or hidden_units < 1:
        raise UsageError(
            f"model sizes must be positive: in_channels={in_channels}, num_classes={num_classes}, "
            f"image_size={image_size}, hidden_units={hidden_units}"
        )
    model = MODELS[name](in_channels, num_classes, image_size, hidden_units)
    if name == "resnet18":
        if weights == "imagenet":
            _load_backbone(model, _imagenet_state_dict(), "the ImageNet weights")
        elif weights != "none":
            _load_backbone(model, _read_state_dict(weights), weights)
        _freeze(model, finetune)
    return model


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for resnet18, from torch hub's cache or downloaded once."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torch hub's urlopen has no timeout of its own
    try:
        return torch.hub.load_state_dict_from_url(
            IMAGENET_WEIGHTS_URL,
            map_location="cpu",
            progress=False,
            check_hash=True,
            weights_only=True,
        )
    except Exception as exc:  # no network, a timeout, a bad checksum: the remedy is the same
        reason = str(exc).strip() or type(exc).__name__
        reason = reason.removeprefix("<urlopen error ").removesuffix(">")[:160]
        raise RunError(
            f"could not download the ImageNet weights for resnet18 ({reason}): connect to "
            "the internet once, or pass --weights none or --weights PATH to a state_dict file"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _read_state_dict(path_text: str) -> dict[str, torch.Tensor]:
    """A state_dict from a file: a bare one, or our checkpoint dict with a "model" entry."""
    path = Path(os.path.expanduser(path_text))
    if not path.is_file():
        raise UsageError(f"--weights {path_text}: no such file (expected {WEIGHTS_HELP})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or pickled code we refuse to run
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--weights {path_text} is not a readable state_dict file ({reason[:160]})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"--weights {path_text} does not hold a state_dict (names -> tensors)")
    prefix = "module."  # saved from DataParallel / DistributedDataParallel
    if state and all(key.startswith(prefix) for key in state):
        state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load everything but the head; the head too when its shape matches (K classes)."""
    own = model.state_dict()
    head_keys = {key for key in own if key.startswith("fc.")}
    keep_head = all(key in state and state[key].shape == own[key].shape for key in head_keys)
    wanted = {key: value for key, value in state.items() if keep_head or not key.startswith("fc.")}
    missing = sorted(set(own) - set(wanted) - (set() if keep_head else head_keys))
    unexpected = sorted(set(wanted) - set(own))
    wrong_shape = sorted(
        key for key in set(wanted) & set(own) if wanted[key].shape != own[key].shape
    )
    if missing or unexpected or wrong_shape:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong_shape),
        ):
            if keys:
                more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
                problems.append(f"{label}: {', '.join(keys[:3])}{more}")
        raise UsageError(f"--weights {source} does not fit resnet18 ({'; '.join(problems)})")
    model.load_state_dict(wanted, strict=False)


def _freeze(model: nn.Module, finetune: str) -> None:
    trainable_prefixes = {"head": ("fc.",), "layer4": ("layer4.", "fc."), "all": ("",)}[finetune]
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(trainable_prefixes))


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should get (frozen ones left out)."""
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameter values."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def set_train_mode(model: nn.Module, training: bool) -> None:
    """model.train(training), except that BatchNorm layers whose parameters are frozen stay in
    eval mode: their running statistics must not drift while the rest of the model trains."""
    model.train(training)
    if not training:
        return
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def backbone_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """For a resnet18 whose layers are all frozen but the head: (feature extractor, head).

    The extractor shares the model's modules (conv1 ... avgpool, then flatten) and maps a batch to
    (N, 512) features; head(features) equals model(batch). None for any other model or finetune.
    """
    torchvision = sys.modules.get("torchvision")  # not imported: no resnet18 was built
    if torchvision is None or not isinstance(model, torchvision.models.ResNet):
        return None
    frozen = all(
        not p.requires_grad for n, p in model.named_parameters() if not n.startswith("fc.")
    )
    if not frozen:
        return None
    backbone = nn.Sequential(
        model.conv1,
        model.bn1,
        model.relu,
        model.maxpool,
        model.layer1,
        model.layer2,
        model.layer3,
        model.layer4,
        model.avgpool,
        nn.Flatten(1),
    )
    backbone.register_forward_pre_hook(_gray_to_rgb)
    return backbone, model.fc


# --- fast presets: airbench-style networks, defined in cnn_tui/training/fast_models.py ----------
from cnn_tui.training import fast_models  # noqa: E402  (after MODELS: it only adds entries)

MODELS.update(fast_models.MODELS)
