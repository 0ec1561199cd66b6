"""`--log csv`: the run's numbers as CSV files in RUN/csv/, one per kind of event.

    batch.csv            step, time, epoch, batch, loss, smoothed_loss, lr, images_per_s, ...
    epoch.csv            step, time, epoch, train_loss, train_acc, val_loss, val_acc, lr, ...
    system.csv           step, time, cpu_percent, ram_used, gpus/0/util_percent, ...
    test.csv             step, time, loss, accuracy, macro_precision, macro_recall, macro_f1
    confusion_matrix.csv true class per row, predicted per column, counts (the header: classes)
    per_class.csv        class, precision, recall, f1, support

Like Lightning's CSVLogger, every number an event carries gets a column (named as in
metrics.jsonl; nested ones "gpus/0/util_percent"), and a file whose events bring a new number
is rewritten with the wider header (atomically), old rows left empty there. Each row is one
`write` flushed at once, so a killed trainer leaves at most a row cut short at the end, which
the next session removes; a resumed run appends, after dropping the rows past the step it
continues from (what a killed session wrote after its last checkpoint, as TensorBoard's
`purge_step` does). The tables of the test are written atomically. Standard library only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

from cnn_tui.fileio import atomic_write_text, is_regular_file, open_own_file, temp_files
from cnn_tui.training.loggers.base import (
    INDEX_KEYS,
    Evaluated,
    RunLogger,
    RunStart,
    Scalars,
    own_folder,
)

FOLDER = "csv"
CONFUSION_FILE = "confusion_matrix.csv"
PER_CLASS_FILE = "per_class.csv"
FIRST_COLUMNS = ("step", "time", *INDEX_KEYS)
PER_CLASS_COLUMNS = ("class", "precision", "recall", "f1", "support")


def _row_text(row: list[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _table_text(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class CsvFile:
    """One CSV file of the run that grows by rows (and columns): appended, never read back
    during the session except to widen its header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.fd: int | None = None
        if is_regular_file(path):
            self._repair()
            header = self._read()[0] if path.stat().st_size else []
            self.columns = list(header)

    def _read(self) -> list[list[str]]:
        with self.path.open(newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle)) or [[]]

    def _repair(self) -> None:
        """Cut a last row short by a killed trainer (no newline at the end)."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            atomic_write_text(self.path, data[: data.rfind(b"\n") + 1].decode("utf-8", "replace"))

    def drop_after(self, step: int) -> None:
        """Drop the rows past global step `step` (written by a session after its checkpoint)."""
        if not self.columns or "step" not in self.columns:
            return
        header, *rows = self._read()
        at = header.index("step")
        kept = [row for row in rows if not _past(row, at, step)]
        if len(kept) < len(rows):
            self._close_fd()
            atomic_write_text(self.path, _table_text([header, *kept]))

    def add(self, values: dict[str, object]) -> None:
        """Append one row (`values` by column name); a new name widens the header first. A new
        file's columns: the place (FIRST_COLUMNS) first, then the numbers in the event's order."""
        if not self.columns:
            self.columns = [name for name in FIRST_COLUMNS if name in values]
        new = [name for name in values if name not in self.columns]
        if new or not is_regular_file(self.path):
            self._widen(new)
        self._append(_row_text([_cell(values.get(name)) for name in self.columns]))

    def _widen(self, new: list[str]) -> None:
        """Rewrite the file (atomically) with `new` columns added, its rows padded to them."""
        rows = self._read()[1:] if is_regular_file(self.path) else []
        self.columns += new
        width = len(self.columns)
        rows = [row + [""] * (width - len(row)) for row in rows]
        self._close_fd()
        atomic_write_text(self.path, _table_text([self.columns, *rows]))

    def _append(self, text: str) -> None:
        if self.fd is None:
            self.fd = open_own_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        data = text.encode("utf-8")
        while data:  # (one write in practice: a row is far below the pipe/file atomic size)
            data = data[os.write(self.fd, data) :]

    def _close_fd(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def close(self) -> None:
        self._close_fd()


def _past(row: list[str], at: int, step: int) -> bool:
    try:
        return float(row[at]) > step
    except (IndexError, ValueError):
        return False


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # 3 rather than 3.0 for counts (batch, support, bytes)
    return value


class Logger(RunLogger):
    """Writes RUN/csv/: a file per group of scalars, the test's tables."""

    name = "csv"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.folder = run_dir / FOLDER
        self.files: dict[str, CsvFile] = {}

    def start(self, run: RunStart) -> None:
        own_folder(self.folder)
        for name in (CONFUSION_FILE, PER_CLASS_FILE, *(p.name for p in self.folder.glob("*.csv"))):
            for stale in temp_files(self.folder / name):  # an atomic write a kill cut short
                with contextlib.suppress(OSError):
                    stale.unlink()
        if run.resumed:
            for path in sorted(self.folder.glob("*.csv")):
                if path.name not in (CONFUSION_FILE, PER_CLASS_FILE):
                    self._file(path.stem).drop_after(run.step)

    def _file(self, group: str) -> CsvFile:
        if group not in self.files:
            self.files[group] = CsvFile(self.folder / f"{group}.csv")
        return self.files[group]

    def log_scalars(self, scalars: Scalars) -> None:
        row: dict[str, object] = {"step": scalars.step, "time": scalars.time}
        row.update(scalars.index)
        row.update(scalars.values)
        self._file(scalars.group).add(row)

    def log_test(self, result: Evaluated) -> None:
        classes = list(result.classes)
        matrix = [[name, *row] for name, row in zip(classes, result.confusion, strict=False)]
        atomic_write_text(
            self.folder / CONFUSION_FILE, _table_text([["true \\ predicted", *classes], *matrix])
        )
        rows = [[row.get(column, "") for column in PER_CLASS_COLUMNS] for row in result.per_class]
        atomic_write_text(self.folder / PER_CLASS_FILE, _table_text([PER_CLASS_COLUMNS, *rows]))

    def close(self) -> None:
        for file in self.files.values():
            file.close()

    def where(self) -> str:
        return f"CSV files in {self.folder}"
