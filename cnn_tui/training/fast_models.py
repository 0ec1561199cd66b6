"""Networks designed for accuracy per second, behind the fast presets (registered in models.py).

Both follow airbench (KellerJordan/cifar10-airbench): few, wide-enough conv layers; each block
convolves, then max-pools, and only then applies BatchNorm and the activation, so those run on a
quarter of the pixels; the whole net is kept in channels_last layout, which is what oneDNN on the CPU
and cuDNN's tensor cores want. At evaluation (model.eval()) the logits are averaged over the image and
its mirror image (flip test-time augmentation) — training sees flipped images too (`--augment flip`).

- `fast-cnn`: for small grey images on a CPU (Fashion-MNIST in under a minute on two cores):
  three conv-pool-BN-ReLU blocks of 16, 48 and 96 filters, a fourth conv (96) at 3x3 px, then one
  linear layer.
- `airbench-cnn`: for CIFAR-10 on a GPU: airbench94's layout — a 2×2 "whitening" conv (24 filters),
  three blocks of two 3×3 convs (64, 256, 256 filters) with GELU, global max-pooling and a linear
  layer whose output is scaled down (airbench's 1/9), which keeps early logits small.
"""

from __future__ import annotations

import torch
from torch import nn

FAST_CNN_WIDTHS = (16, 48, 96, 96)
AIRBENCH_WIDTHS = (64, 256, 256)
AIRBENCH_WHITEN = 24
AIRBENCH_LOGIT_SCALE = 1 / 9


class FlipAveraged(nn.Module):
    """Base class: in eval mode, logits = mean of f(x) and f(x mirrored left-right)."""

    flip_tta = True

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.training or not self.flip_tta:
            return self.logits(x)
        return 0.5 * (self.logits(x) + self.logits(x.flip(3)))


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
        side = image_size // 8
        if side < 1:
            from cnn_tui.errors import UsageError

            raise UsageError(f"--image-size {image_size} is too small for fast-cnn (at least 8)")
        layers: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *widths[:2]), widths[:3], strict=True):
            layers += _conv_pool_norm(c_in, c_out, nn.ReLU)
        layers += [
            nn.Conv2d(widths[2], widths[3], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(widths[3]),
            nn.ReLU(inplace=True),
        ]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[3] * side * side, num_classes)
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AirbenchCNN(FlipAveraged):
    """airbench94's network without its data-dependent whitening init and Lookahead."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: tuple[int, int, int] = AIRBENCH_WIDTHS,
    ):
        super().__init__()
        if image_size < 16:
            from cnn_tui.errors import UsageError

            raise UsageError(
                f"--image-size {image_size} is too small for airbench-cnn (at least 16)"
            )
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
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
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
