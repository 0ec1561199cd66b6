"""The named kernels of the picture lesson (`cnn-tui conv --image ... --kernel NAME`), and the
user's own kernel written as text (`--kernel-values "-1,0,1; -2,0,2; -1,0,1"`).

Each kernel is written once here, with a line saying what it responds to; the flags' help, the
trace, the screen and the docs read it from `KERNELS`. The classic image-processing filters,
written as cross-correlation kernels (what PyTorch's conv2d and CNN Explainer apply). Only the
standard library: the CLI imports this module to build its parser.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

KernelRows = tuple[tuple[float, ...], ...]

MAX_KERNEL_VALUE = 1000.0  # larger |values| only make the picture's numbers unreadable


@dataclass(frozen=True)
class NamedKernel:
    """One classic filter: its name (the flag's value), what it does, and its rows."""

    name: str
    what: str  # one line: what the feature map shows
    rows: KernelRows

    @property
    def size(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])


# fmt: off
KERNELS: dict[str, NamedKernel] = {
    kernel.name: kernel
    for kernel in (
        NamedKernel("edge", "outlines: every edge, any direction (a Laplacian: 8·centre − neighbours)",
                    ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1))),
        NamedKernel("sobel-x", "vertical edges: positive where it gets brighter to the right",
                    ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))),
        NamedKernel("sobel-y", "horizontal edges: positive where it gets brighter downwards",
                    ((-1, -2, -1), (0, 0, 0), (1, 2, 1))),
        NamedKernel("blur", "a Gaussian blur: each pixel averaged with its neighbours (weights /16)",
                    ((0.0625, 0.125, 0.0625), (0.125, 0.25, 0.125), (0.0625, 0.125, 0.0625))),
        NamedKernel("box-blur", "a box blur: the mean of the 3×3 window",
                    ((1 / 9,) * 3,) * 3),
        NamedKernel("sharpen", "sharpened: the centre boosted against its four neighbours",
                    ((0, -1, 0), (-1, 5, -1), (0, -1, 0))),
        NamedKernel("emboss", "embossed: bright above-left edges, dark below-right ones",
                    ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))),
        NamedKernel("identity", "the picture itself: only the centre weight is 1",
                    ((0, 0, 0), (0, 1, 0), (0, 0, 0))),
    )
}
# fmt: on
DEFAULT_KERNEL = "sobel-x"
KERNEL_NAMES: tuple[str, ...] = tuple(KERNELS)

_ROW_SPLIT = re.compile(r"[;/\n]")
_NUMBER_SPLIT = re.compile(r"[,\s]+")


def parse_kernel_values(text: str, max_size: int) -> KernelRows:
    """The user's kernel from text: rows separated by ";" (or "/", or new lines), numbers by
    commas or spaces: "-1,0,1; -2,0,2; -1,0,1". At most `max_size` rows and columns, finite
    numbers of at most MAX_KERNEL_VALUE in size. ValueError with a one-line reason."""
    rows: list[tuple[float, ...]] = []
    for raw in _ROW_SPLIT.split(text.replace("−", "-")):
        parts = [part for part in _NUMBER_SPLIT.split(raw.strip()) if part]
        if not parts:
            continue
        try:
            row = tuple(float(part) for part in parts)
        except ValueError:
            raise ValueError(
                f"kernel values: not a number in row {len(rows) + 1} ({raw.strip()[:40]!r}); "
                'write rows separated by ";", e.g. "-1,0,1; -2,0,2; -1,0,1"'
            ) from None
        if not all(math.isfinite(v) and abs(v) <= MAX_KERNEL_VALUE for v in row):
            raise ValueError(
                f"kernel values must be finite numbers of at most {MAX_KERNEL_VALUE:g} in size"
            )
        rows.append(row)
    if not rows:
        raise ValueError('kernel values: no numbers; e.g. "-1,0,1; -2,0,2; -1,0,1"')
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(
            f"kernel values: every row needs as many numbers (got rows of {sorted(widths)})"
        )
    if len(rows) > max_size or len(rows[0]) > max_size:
        raise ValueError(
            f"kernel values: at most {max_size}×{max_size}, got {len(rows)}×{len(rows[0])}"
        )
    return tuple(rows)
