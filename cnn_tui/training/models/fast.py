"""Networks designed for accuracy per second, behind the fast presets (registered in `registry`).

Both follow airbench (KellerJordan/cifar10-airbench): few, wide-enough conv layers; each block
convolves, then max-pools, and only then applies BatchNorm and the activation, so those run on a
quarter of the pixels; the whole net is kept in channels_last layout, which is what oneDNN on the CPU
and cuDNN's tensor cores want. At evaluation (model.eval()) the logits are averaged over the image and
its mirror image (flip test-time augmentation) — training sees flipped images too (`--augment flip`).

- `fast-cnn`: for small grey images on a CPU (Fashion-MNIST in under a minute on two cores):
  three conv-pool-BN-ReLU blocks of 16, 48 and 96 filters, a fourth conv (96) at 3x3 px, then one
  linear layer.

Both start from airbench's data-dependent whitening of the first conv (`init_from_data`, called by
the engine with training images before the optimizer is built): its filters are the principal
directions of the images' k×k patches, each in both signs, scaled by 1/sqrt(variance), and stay
frozen. The next layers then see decorrelated patches of unit variance from the first step on
(fast-cnn on Fashion-MNIST, 5 epochs: 92.7 % -> 93.2 %, README "Fast presets").
- `airbench-cnn`: for CIFAR-10 on a GPU: airbench94's layout — a 2×2 whitening conv (24 filters),
  three blocks of two 3×3 convs (64, 256, 256 filters) with GELU, global max-pooling and a linear
  layer whose output is scaled down (airbench's 1/9), which keeps early logits small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnn_tui import catalog
from cnn_tui.errors import UsageError
from cnn_tui.training.models.layers import Flatten

FAST_CNN_WIDTHS = (16, 48, 96, 96)
WHITEN_IMAGES = 5000  # training images whose patches give the whitening filters
WHITEN_EPS = 5e-4  # added to each patch variance (airbench's value)
AIRBENCH_WIDTHS = (64, 256, 256)
AIRBENCH_WHITEN = 24
AIRBENCH_LOGIT_SCALE = 1 / 9


@torch.no_grad()
def whiten_(conv: nn.Conv2d, images: torch.Tensor, eps: float = WHITEN_EPS) -> None:
    """Set `conv`'s filters to whiten the k×k patches of `images` (normalised, N×C×H×W).

    With d = C·k·k patch values and 2m filters (m ≤ d), filters i and m + i are +v_i / sqrt(λ_i +
    eps) and its negative, for the m largest eigenpairs (λ_i, v_i) of the patch covariance; filters
    beyond 2d keep their initial values. The weight is then frozen; a bias stays trainable.
    """
    k = conv.kernel_size
    d = images.shape[1] * k[0] * k[1]
    covariance = torch.zeros(d, d, dtype=torch.float64, device=images.device)
    count = 0
    for chunk in images.split(500):  # (the patches of all 5,000 at once: 140 MB)
        patches = F.unfold(chunk.float().contiguous(), k).transpose(1, 2).reshape(-1, d)
        covariance += (patches.T @ patches).double()  # uncentred, as airbench's
        count += len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance / count)  # ascending
    m = min(conv.out_channels // 2, d)
    top = eigenvectors[:, -m:].T / torch.sqrt(eigenvalues[-m:].clamp_min(0) + eps)[:, None]
    filters = torch.cat([top, -top]).to(conv.weight.dtype).reshape(2 * m, *conv.weight.shape[1:])
    conv.weight[: 2 * m] = filters
    conv.weight.requires_grad_(False)


class FlipAveraged(nn.Module):
    """Base class: in eval mode, logits = mean of f(x) and f(x mirrored left-right); the first
    layer of `features` is a conv that `init_from_data` whitens."""

    flip_tta = True
    init_images = WHITEN_IMAGES  # how many training images `init_from_data` wants
    features: nn.Sequential

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def init_from_data(self, images: torch.Tensor) -> None:
        """Whiten the first conv on these normalised training images (and freeze it)."""
        whiten_(self.features[0], images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.training or not self.flip_tta:
            return self.logits(x)
        return 0.5 * (self.logits(x) + self.logits(x.flip(3)))


def _check_size(name: str, image_size: int) -> None:
    smallest = catalog.MODELS[name].min_image_size
    if image_size < smallest:
        raise UsageError(f"--image-size {image_size} is too small for {name} (at least {smallest})")


def _conv_pool_norm(in_channels: int, out_channels: int, activation: type[nn.Module]) -> list:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.MaxPool2d(kernel_size=2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True) if activation is nn.ReLU else activation(),
    ]


class FastCNN(FlipAveraged):
    """Three conv-pool-BN-ReLU blocks (28 -> 14 -> 7 -> 3 px), one more conv at 3 px, Linear.

    The first conv sees every pixel but has few filters (its 28x28 output is the costliest tensor to
    move around); most multiply-adds happen at 14 and 7 px. About 4.2 M multiply-adds per 28x28 image.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: tuple[int, int, int, int] = FAST_CNN_WIDTHS,
    ):
        super().__init__()
        _check_size("fast-cnn", image_size)
        side = image_size // 8
        layers: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *widths[:2]), widths[:3], strict=True):
            layers += _conv_pool_norm(c_in, c_out, nn.ReLU)
        layers += [
            nn.Conv2d(widths[2], widths[3], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(widths[3]),
            nn.ReLU(inplace=True),
        ]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(Flatten(), nn.Linear(widths[3] * side * side, num_classes))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AirbenchCNN(FlipAveraged):
    """airbench94's network (with its whitening init; without Lookahead)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: tuple[int, int, int] = AIRBENCH_WIDTHS,
    ):
        super().__init__()
        _check_size("airbench-cnn", image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, AIRBENCH_WHITEN, kernel_size=2, padding=0, bias=True),
            nn.GELU(),
        ]
        c_in = AIRBENCH_WHITEN
        for c_out in widths:
            layers += _conv_pool_norm(c_in, c_out, nn.GELU)
            layers += [
                nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.GELU(),
            ]
            c_in = c_out
        layers += [nn.AdaptiveMaxPool2d(1), Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], num_classes, bias=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * AIRBENCH_LOGIT_SCALE


def _channels_last(model: nn.Module) -> nn.Module:
    return model.to(memory_format=torch.channels_last)


MODELS = {
    "fast-cnn": lambda c, k, s, h: _channels_last(FastCNN(c, k, s)),
    "airbench-cnn": lambda c, k, s, h: _channels_last(AirbenchCNN(c, k, s)),
}
