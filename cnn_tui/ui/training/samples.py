"""Sample test images with their true and predicted labels, drawn with half-block pixels.

rich-pixels' half-cell renderer draws two image rows per text row with '▀' and a foreground and
background colour: it works in any terminal with colour and needs no graphics protocol (sixel,
kitty), so it also behaves over SSH, in tmux and in snapshot tests. samples.npz (written and read by
`cnn_tui.training.runs.store`) stores the worst mistakes first (most confident wrong answers), then some
correct predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from rich.console import Group
from rich.text import Text
from rich_pixels import Pixels
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from cnn_tui import text

LABEL_WIDTH = 18  # a card is at least this wide, so labels stay readable under small images
MAX_SAMPLES = 48


def to_pil(image: np.ndarray) -> Image.Image:
    """A (C, H, W) uint8 array (C = 1 or 3) as an RGB PIL image."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


class SampleCard(Static):
    """One image and its labels; a mistake is marked ✗ (and coloured), a correct answer ✓."""

    def __init__(
        self, image: np.ndarray, true: str, pred: str, confidence: float, pixels: int
    ) -> None:
        super().__init__(classes="sample-card")
        self.true, self.pred = true, pred
        picture = to_pil(image)
        if picture.width > pixels or picture.height > pixels:
            picture.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
        self.confidence = confidence
        self._pixels = Pixels.from_image(picture)
        self._width = max(picture.width, LABEL_WIDTH)
        self.styles.width = self._width
        self.styles.height = (picture.height + 1) // 2 + 2

    def render(self) -> Group:
        wrong = self.true != self.pred
        colour = self.app.theme_variables["error" if wrong else "success"]
        percent = f" {text.confidence(self.confidence, digits=0)}"  # (whole: a card is narrow)
        true_line = Text(text.clip(f"true {self.true}", self._width), style="" if wrong else "dim")
        pred_line = Text.assemble(
            ("✗ " if wrong else "✓ ", f"bold {colour}"),
            (text.clip(self.pred, self._width - 2 - len(percent)), "bold" if wrong else ""),
            (percent, "dim"),
        )
        return Group(self._pixels, true_line, pred_line)


class SampleGrid(Vertical):
    """Cards for the samples of a run; columns follow the width, `z` switches the image size."""

    large: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.samples: dict[str, np.ndarray] | None = None
        self.class_names: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("no sample predictions", id="samples-caption")
        yield Grid(id="samples-grid")

    def show(self, samples: dict[str, Any] | None, class_names: list[str]) -> None:
        self.samples = samples
        self.class_names = [text.one_line(name) for name in class_names]  # (a stranger's folders)
        self._rebuild()

    def watch_large(self) -> None:
        if self.is_mounted:
            self._rebuild()

    def action_toggle_zoom(self) -> None:
        self.large = not self.large

    def on_resize(self) -> None:
        self._fit_columns()

    def _pixels(self) -> int:
        return 32 if self.large else 16

    def _fit_columns(self) -> None:
        grid = self.query_one("#samples-grid", Grid)
        card_width = max(self._pixels(), LABEL_WIDTH) + 1
        grid.styles.grid_size_columns = max(1, (self.size.width - 1) // card_width)

    def _label_of(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def _rebuild(self) -> None:
        grid = self.query_one("#samples-grid", Grid)
        grid.remove_children()
        caption = self.query_one("#samples-caption", Static)
        samples = self.samples
        if not samples or "images" not in samples or len(samples["images"]) == 0:
            caption.update("no sample predictions (samples.npz) for this run")
            return
        images = samples["images"][:MAX_SAMPLES]
        true = samples.get("true", np.zeros(len(images), dtype=int))
        pred = samples.get("pred", true)
        confidence = samples.get("confidence", np.ones(len(images)))
        mistakes = int(np.sum(true[: len(images)] != pred[: len(images)]))
        caption.update(
            f"[b]Sample test predictions[/b] [dim]worst mistakes first · {mistakes} of "
            f"{len(images)} shown are wrong (✗) · z: image size[/dim]"
        )
        pixels = self._pixels()
        grid.mount_all(
            SampleCard(
                images[i],
                self._label_of(int(true[i])),
                self._label_of(int(pred[i])),
                float(confidence[i]),
                pixels,
            )
            for i in range(len(images))
        )
        self._fit_columns()
