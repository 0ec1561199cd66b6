"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

A crash or a full disk mid-write leaves the previous file intact, never a half-written one. A
write that fails with an OSError (a full disk) raises it naming the target, even when the writer
(such as `torch.save`) turned it into an error of its own. A process killed mid-write leaves its
temporary file (`.NAME.XXXX.tmp`) behind; `temp_files` finds those. The file gets the mode
`open()` would give it: the one it had, or for a new file 0o666 less the umask (a temporary file
starts at 0o600, which would keep a run folder on a shared server from its group).

`json_text` is the one way cnn-tui turns data into JSON (run files, `--json` output): a number
that is not finite (NaN, ±Infinity) becomes `null`, so no file or output holds the bare `NaN`
that strict JSON readers refuse.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cnn_tui.errors import UsageError


class _Recording:
    """The temporary file as `write` sees it: remembers the OSError of a failed write."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def umask() -> int:
    """This process's umask, read without changing it where Linux shows it (else set and reset)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """The permission bits `target` keeps when it is written again, or a new file's."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call `write(fileobj)` on a temporary file in the target's folder and rename it into place.

    The folder must exist: one that is gone (a run folder deleted under its trainer) fails the
    write with FileNotFoundError naming the target, instead of being made again."""
    target = Path(path)
    mode = _mode_for(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # name the target, not the temporary file it could not make
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    handle = os.fdopen(fd, "wb")
    recording = _Recording(handle)
    try:
        try:
            write(recording)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):  # closes the file even if it cannot be flushed
                handle.close()
            raise
        handle.close()
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        error = recording.error or (exc if isinstance(exc, OSError) else None)
        if error is None or not isinstance(exc, Exception):
            raise
        raise OSError(error.errno, error.strerror or str(error), str(target)) from exc


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def finite_json(value: Any) -> Any:
    """`value` with every float that is not finite (NaN, ±inf) replaced by None, in nested dicts,
    lists and tuples; numpy and torch scalars and arrays become plain Python values first."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    if isinstance(value, str | int | type(None)):  # (bool is an int)
        return value
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return finite_json(tolist())
    return value  # anything else: json.dumps says it cannot write it, as it would


def json_text(data: Any, *, indent: int | None = None) -> str:
    """`data` as JSON text in which a number that is not finite is `null` (`finite_json`);
    `allow_nan=False` makes a NaN that slipped through an error, never invalid JSON."""
    return json.dumps(finite_json(data), indent=indent, allow_nan=False)


def check_output_path(path: str | os.PathLike[str], flag: str) -> Path:
    """The file a command will write its output to (`--json FILE`, `-o FILE`), checked before the
    command's work: a usage error naming `flag` when it is a folder or its folder is missing or
    not writable, so a long benchmark does not end with its results unwritten."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"{flag} {target} is a folder: give a file name")
    if not folder.is_dir():
        raise UsageError(f"{flag} {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {target}: the folder {folder} is not writable by you")
    return target


def temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that `atomic_write(path, ...)` calls killed mid-write left behind."""
    target = Path(path)
    return sorted(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))
