"""The test's confusion matrix and per-class table for loggers that show text or pictures:
a Markdown table (TensorBoard's text tab renders it) and an RGB picture (numpy, drawn with
Pillow, which comes with torchvision): a heat map of each true class's row shares (green: right, red: mistaken), the counts
written in the cells that have room, the classes named beside the rows and numbered above the
columns. The counts are `metrics.classification_report`'s; the share is `normalize_confusion`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnn_tui.training.loop.metrics import normalize_confusion

if TYPE_CHECKING:
    import numpy as np

MAX_PICTURE = 720  # pixels of the matrix itself, at most (cells shrink for many classes)
MAX_CELL, MIN_CELL = 48, 4
MAX_NAME = 24  # characters of a class name shown


def _cell_text(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_matrix(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The counts as a Markdown table: a row per true class, a column per predicted one."""
    header = ["true \\ predicted", *(_cell_text(name) for name in classes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in zip(classes, confusion, strict=False):
        lines.append("| " + " | ".join([f"**{_cell_text(name)}**", *map(str, row)]) + " |")
    return "\n".join(lines)


def markdown_per_class(rows: Sequence[dict[str, Any]]) -> str:
    """The per-class precision, recall, F1 and support as a Markdown table."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for row in rows:
        scores = [row.get(key) for key in ("precision", "recall", "f1")]
        shown = [f"{value:.4f}" if isinstance(value, int | float) else "" for value in scores]
        lines.append(
            f"| {_cell_text(row.get('class', ''))} | "
            + " | ".join(shown)
            + f" | {row.get('support', '')} |"
        )
    return "\n".join(lines)


def picture(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> np.ndarray:
    """The confusion matrix drawn as an RGB picture, (H, W, 3) uint8."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    counts = np.asarray(confusion, dtype=np.int64)
    k = max(1, counts.shape[0])
    shares = normalize_confusion(counts) if counts.size else np.zeros((k, k))
    cell = max(MIN_CELL, min(MAX_CELL, MAX_PICTURE // k))
    font = ImageFont.load_default(size=max(8, min(14, cell // 3)))
    names = [f"{i} {str(name)[:MAX_NAME]}" for i, name in enumerate(classes)]
    left = 8 + max((int(font.getlength(name)) for name in names), default=0)
    top = 8 + (font.size if cell >= 12 else 0) * 2
    size = (left + k * cell + 8, top + k * cell + 8)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    if cell >= 12:
        draw.text((left, 4), "predicted class", fill="black", font=font)
    for i in range(k):
        y = top + i * cell
        draw.text((4, y + (cell - font.size) // 2), names[i], fill="black", font=font)
        if cell >= 12:
            number = str(i)
            x = left + i * cell + (cell - font.getlength(number)) / 2
            draw.text((x, top - font.size - 2), number, fill="black", font=font)
        for j in range(k):
            share = float(shares[i, j]) if counts.size else 0.0
            shade = int(round(255 * (1.0 - share)))
            colour = (255, shade, shade) if i != j else (shade, 200 + shade // 5, shade)
            x = left + j * cell
            edge = (220, 220, 220) if cell >= 12 else None  # (small cells: the colour alone)
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline=edge)
            text = str(int(counts[i, j])) if counts.size else ""
            if cell >= 24 and font.getlength(text) < cell - 2:
                width = font.getlength(text)
                at = (x + (cell - width) / 2, y + (cell - font.size) / 2)
                draw.text(at, text, fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)
