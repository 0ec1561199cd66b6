"""The epoch table: one row per epoch, the best validation accuracy marked with a star (and,
with early stopping, the epoch whose weights are kept with ◆)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from cnn_tui import text

COLUMNS = (
    ("epoch", "epoch"),
    ("train_loss", "train loss"),
    ("train_acc", "train acc"),
    ("val_loss", "val loss"),
    ("val_acc", "val acc"),
    ("lr", "lr"),
    ("seconds", "time"),
    ("images_per_s", "img/s"),
    ("gpu_mem_mb", "GPU mem"),
)
GPU_COLUMN = "gpu_mem_mb"


def _cell(key: str, event: dict[str, Any]) -> str:
    value = event.get(key)
    if key == "epoch":
        return text.one_line(f"{value}/{event.get('epochs', '?')}")  # (numbers, from a file)
    if key in ("train_acc", "val_acc"):
        return text.percent(value)
    if key == "lr":
        return text.number(value, ".2e")
    if key == "seconds":
        return text.duration(value)
    if key == "images_per_s":  # (the column says img/s)
        return text.count(value)
    if key == "gpu_mem_mb":  # the peak of torch.cuda.max_memory_allocated, in MiB
        return text.size(value * text.MIB) if text.finite(value) else text.UNKNOWN
    return text.number(value)


class EpochTable(DataTable):
    """Rows of the `epoch` events of a run; `set_epochs` rebuilds only when something changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._shown: list[tuple[Any, ...]] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            if key != GPU_COLUMN:  # added with the first epoch that has a GPU reading
                self.add_column(Text(label, justify="right"), key=key)

    @property
    def keys(self) -> list[str]:
        """The columns shown, in order (GPU mem only for a run on a GPU)."""
        return [str(key.value) for key in self.columns]

    def set_epochs(self, epochs: list[dict[str, Any]], kept: int | None = None) -> None:
        """Show these epochs; rebuilt only when a row changed (once per epoch: a few rows).

        `kept` is the epoch whose weights early stopping keeps (best.pt): its number is marked ◆.
        A run on the CPU has no GPU mem column (a column of dashes that, at 80 columns, was
        the one cut off at the edge).
        """
        if GPU_COLUMN not in self.keys and any(text.finite(e.get(GPU_COLUMN)) for e in epochs):
            self.add_column(Text(dict(COLUMNS)[GPU_COLUMN], justify="right"), key=GPU_COLUMN)
            self._shown = []
        keys = self.keys
        rows = [tuple(_cell(key, e) for key in keys) for e in epochs]
        if kept is not None:
            rows = [
                (f"◆ {row[0]}", *row[1:]) if e.get("epoch") == kept else row
                for row, e in zip(rows, epochs, strict=True)
            ]
        if rows == self._shown:
            return
        self.clear()
        best = _best_index(epochs)
        for index, row in enumerate(rows):
            self.add_row(*self._styled(row, index == best), key=str(index))
        self._shown = rows
        self.move_cursor(row=len(rows) - 1)

    @staticmethod
    def _styled(row: tuple[str, ...], best: bool) -> list[Text]:
        cells = [Text(value, justify="right") for value in row]
        if best:
            val_acc = [key for key, _ in COLUMNS].index("val_acc")  # (before GPU mem)
            cells[val_acc] = Text(f"★ {row[val_acc]}", style="bold", justify="right")
        return cells


def _best_index(epochs: list[dict[str, Any]]) -> int | None:
    best, best_value = None, None
    for index, event in enumerate(epochs):
        value = event.get("val_acc")
        if isinstance(value, (int, float)) and (best_value is None or value > best_value):
            best, best_value = index, value
    return best
