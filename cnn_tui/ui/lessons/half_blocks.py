"""Pictures drawn with half blocks: two pixel rows per text row, no graphics protocol needed.

Each text cell is '▀' with the upper pixel as its foreground colour and the lower pixel as its
background, so a 28×28 picture takes 28 columns × 14 rows and works in any colour terminal, over
SSH, in tmux and in snapshot tests (`cnn_tui.training.data.image_files.terminal_lines` draws the
same with raw escapes for `cnn-tui predict`; these are Rich texts for widgets). Beside the
renderer: the colour scales of the picture lesson (`grey_rgb` for a picture's grey levels,
`diverging_rgb` for a feature map's signed values, `legend_rgb` for its scale) and the marks it
paints over them (`dim`, `tint`). All pure functions of numpy arrays.
"""

from __future__ import annotations

import functools

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
# the diverging scale: negative values blue, zero near the terminal's black, positive orange
NEGATIVE = (70, 150, 255)
ZERO = (28, 28, 28)
POSITIVE = (255, 150, 40)


@functools.lru_cache(maxsize=4096)
def _style(upper: tuple[int, int, int], lower: tuple[int, int, int] | None) -> Style:
    """One half-block cell's style (cached: a redraw while playing reuses nearly all of them)."""
    bgcolor = None if lower is None else Color.from_rgb(*lower)
    return Style(color=Color.from_rgb(*upper), bgcolor=bgcolor)


def half_block_lines(rgb: np.ndarray) -> list[Text]:
    """An (H, W, 3) uint8 image as ⌈H/2⌉ lines of W '▀': foreground the upper pixel of the
    pair, background the lower one. An odd last row has no background (the terminal's own)."""
    pixels = np.asarray(rgb, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {pixels.shape}")
    rows = [tuple(map(tuple, row)) for row in pixels.tolist()]
    lines = []
    for top in range(0, len(rows), 2):
        line = Text(no_wrap=True, overflow="crop")
        lower = rows[top + 1] if top + 1 < len(rows) else (None,) * len(rows[top])
        for upper_rgb, lower_rgb in zip(rows[top], lower, strict=True):
            line.append(UPPER_HALF, _style(upper_rgb, lower_rgb))
        lines.append(line)
    return lines


def grey_rgb(levels: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] (clipped) as an (H, W, 3) uint8 image."""
    grey = np.round(np.clip(np.asarray(levels, dtype=np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def diverging_rgb(values: np.ndarray, limit: float) -> np.ndarray:
    """Signed values as an (H, W, 3) uint8 image: 0 near black, −limit full blue, +limit full
    orange, linear in between (clipped beyond ±limit; limit 0: everything is 0's colour)."""
    v = np.asarray(values, dtype=np.float64)
    t = np.clip(v / limit, -1.0, 1.0) if limit > 0 else np.zeros_like(v)
    zero, neg, pos = (np.array(c, dtype=np.float64) for c in (ZERO, NEGATIVE, POSITIVE))
    end = np.where((t < 0)[..., None], neg, pos)
    rgb = zero + np.abs(t)[..., None] * (end - zero)
    return np.round(rgb).astype(np.uint8)


def legend_rgb(limit: float, rows: int) -> np.ndarray:
    """The diverging scale from +limit (top) to −limit (bottom) as a (rows, 2, 3) image."""
    values = np.linspace(limit, -limit, max(rows, 2))
    return diverging_rgb(np.repeat(values[:, None], 2, axis=1), limit)


def dim(rgb: np.ndarray, mask: np.ndarray, factor: float = 0.45) -> np.ndarray:
    """The pixels where `mask` is True darkened to `factor` of their brightness."""
    out = np.asarray(rgb, dtype=np.float64).copy()
    out[mask] *= factor
    return np.round(out).astype(np.uint8)


def tint(
    rgb: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], amount: float
) -> np.ndarray:
    """The pixels where `mask` is True blended with `colour` (amount 0: unchanged, 1: colour)."""
    out = np.asarray(rgb, dtype=np.float64).copy()
    out[mask] = (1 - amount) * out[mask] + amount * np.array(colour, dtype=np.float64)
    return np.round(out).astype(np.uint8)


def frame_mask(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    """The pixels just outside the rectangle (top, left, height, width) of an image of `shape`:
    a one-pixel frame around it, cut where it meets the image's edge."""
    mask = np.zeros(shape, dtype=bool)
    r0, c0 = max(top - 1, 0), max(left - 1, 0)
    mask[r0 : top + height + 1, c0 : left + width + 1] = True
    mask[top : top + height, left : left + width] = False
    return mask
