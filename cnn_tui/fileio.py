"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

A crash or a full disk mid-write leaves the previous file intact, never a half-written one. A
write that fails with an OSError (a full disk) raises it naming the target, even when the writer
(such as `torch.save`) turned it into an error of its own. A process killed mid-write leaves its
temporary file (`.NAME.XXXX.tmp`) behind; `temp_files` finds those. The file gets the mode
`open()` would give it: the one it had, or for a new file 0o666 less the umask (a temporary file
starts at 0o600, which would keep a run folder on a shared server from its group).

`json_text` is the one way cnn-tui turns data into JSON (run files, `--json` output): a number
that is not finite (NaN, ±Infinity) becomes `null`, so no file or output holds the bare `NaN`
that strict JSON readers refuse. `toml_text` writes the small TOML files the program saves
(lesson examples: strings, numbers, nested lists of numbers) and `read_toml_file` reads one
from a stranger: a regular file, size-capped, UTF-8, any parse failure one UsageError naming it.

The other half is where files may be read and written, the same rules everywhere:
- `confined`: a path read from a file (a sweep's run folders) stays inside that file's folder;
- `check_input_file`: a file a command opens is a regular file (a FIFO would wait for ever, a
  device never end), checked before it is opened, with words for what it is instead;
- `check_output_path` (and `atomic_write` itself, the last guard): an output goes only to a
  regular file or a new path, never over a device, FIFO, socket or symbolic link; `-` is stdout
  and the null device (`/dev/null`) takes an output to discard it;
- `open_own_file`: a file the program appends to or locks in its own folders (metrics.jsonl,
  output.log, lock) is opened without following a symbolic link and only if regular.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cnn_tui.errors import UsageError

STDOUT = "-"  # an output flag's value that means: print it on stdout


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
    write with FileNotFoundError naming the target, instead of being made again. The target must be
    a regular file or a new path: a symbolic link, a device, a FIFO or a socket is never renamed
    over (UsageError); the null device gets the bytes directly (discarded)."""
    target = Path(path)
    if is_null_device(target):
        with open(os.devnull, "wb") as handle:
            write(handle)
        return
    _check_replaceable(target, "cannot write")
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
        _check_replaceable(target, "cannot write")  # (again: it may have changed meanwhile)
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


def json_value(text: str | bytes) -> Any:
    """The JSON value of `text` from a file from anyone; ValueError for anything that is not
    JSON, arrays nested too deep for the parser (a RecursionError) included."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_text(values: dict[str, Any]) -> str:
    """`values` (bare keys, in order) as a TOML document `tomllib` reads back equal: strings,
    bools, ints, finite floats and lists of them, nested. A float that is a whole number is written
    as an int (`1` not `1.0`: arrays of numbers read as in the shipped lesson files); a list of
    lists is written one inner list per line. None values are left out. ValueError for a key that
    is not bare, a number that is not finite, or a value of another type."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        if not _BARE_KEY.match(key):
            raise ValueError(f"TOML key {key!r} is not a bare key")
        lines.append(f"{key} = {_toml_value(value, 0)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any, depth: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML cannot hold the number {value!r} here")
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        items = [_toml_value(item, depth + 1) for item in value]
        if not any(isinstance(item, list | tuple) for item in value):
            return "[" + ", ".join(items) + "]"
        indent = "    " * (depth + 1)
        return "[\n" + "".join(f"{indent}{item},\n" for item in items) + "    " * depth + "]"
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _toml_value(tolist(), depth)
    raise ValueError(f"TOML cannot hold a {type(value).__name__}")


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate cannot be written as UTF-8
            out.append("\\ufffd")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def read_toml_file(
    path: str | os.PathLike[str], what: str, max_bytes: int, hint: str = ""
) -> dict[str, Any]:
    """The TOML document in `path`, a file from anyone: a regular file (`check_input_file`),
    at most `max_bytes`, UTF-8 and valid TOML, else one UsageError `WHAT PATH ...` saying why
    (a number too long to convert or arrays nested too deep included)."""
    check_input_file(path, what, hint)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # at most: a growing file must not fill memory
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UsageError(
            f"{what} {path} is over {max_bytes >> 10} KiB: is it the right file?"
            + (f" {hint}" if hint else "")
        )
    try:
        # (utf-8-sig: a byte-order mark, as older Windows editors write, is no reason to refuse)
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path} is not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, arrays nested too deep
        reason = str(exc).split(";")[0][:100] or type(exc).__name__
        raise UsageError(f"{what} {path} is not a usable TOML file ({reason})") from None


def check_output_path(path: str | os.PathLike[str], flag: str) -> Path:
    """The file a command will write its output to (`--json FILE`, `-o FILE`), checked before the
    command's work, so a long benchmark does not end with its results unwritten: a usage error
    naming `flag` when it is a folder, a symbolic link, a device, a FIFO or a socket, or when its
    folder is missing or not writable. `-` (stdout, which the caller prints to) and the null
    device (the output is discarded) are returned as they are."""
    target = Path(path)
    if str(path) == STDOUT or is_null_device(target):
        return target
    if target.is_dir() and not target.is_symlink():
        raise UsageError(f"{flag} {target} is a folder: give a file name")
    _check_replaceable(target, flag)
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {target}: the folder {folder} is not writable by you")
    return target


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _check_replaceable(target: Path, flag: str) -> None:
    """A UsageError unless `target` is missing or a regular file (not followed if a link)."""
    try:
        mode = target.lstat().st_mode
    except OSError:  # missing (or its folder is): a new file; the write says what else is wrong
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):  # (a folder: the rename fails, naming it)
        return
    if target == Path("/dev/stdout") or target == Path("/proc/self/fd/1"):
        hint = "give - to print on stdout"
    elif stat.S_ISLNK(mode):
        hint = "give the file it points to, or another name"
    else:
        hint = f"give a file name ({os.devnull} discards the output, - prints it on stdout)"
    raise UsageError(f"{flag} {target} is {_kind(mode)}, not a regular file: {hint}")


def is_null_device(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is the null device itself (not a link to it): an output there is discarded."""
    try:
        found, null = os.lstat(path), os.stat(os.devnull)
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(found.st_mode) and os.path.samestat(found, null)


def input_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be opened as an input file, in words ("no such file", "is a folder, not
    a file", "is a named pipe (FIFO), not a file"), or None when it is a regular file (a symbolic
    link to one is fine). Only `stat`: a FIFO is never opened (that would wait for a writer)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "no such file"
    except PermissionError:
        return "permission denied (make it readable, or give another file)"
    except (OSError, ValueError) as exc:  # a symlink loop, a name too long, a NUL byte
        return getattr(exc, "strerror", None) or str(exc)
    if stat.S_ISREG(mode):
        return None
    return f"is {_kind(mode)}, not a file"


def check_input_file(path: str | os.PathLike[str], what: str, hint: str = "") -> Path:
    """`path` if it names a regular file, checked before it is opened: else a UsageError
    `WHAT PATH is a folder, not a file` (`input_problem`), then `hint` (what to do)."""
    problem = input_problem(path)
    if problem is None:
        return Path(path)
    separator = " " if problem.startswith("is ") else ": "
    raise UsageError(f"{what} {path}{separator}{problem}" + (f"; {hint}" if hint else ""))


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a regular file (following links), so a reader may open it without
    waiting for ever (a FIFO) or reading without end (a device)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_own_file(path: str | os.PathLike[str], flags: int, mode: int = 0o644) -> int:
    """`os.open` for a file the program writes in its own folders (an append-only log, a lock):
    never through a symbolic link (a stranger's run folder could point one at the user's files)
    and never a FIFO or device (UsageError, before anything is written). Returns the fd."""
    target = Path(path)
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC
    try:
        fd = os.open(target, flags | extra, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UsageError(
            f"{target} is a symbolic link: the program writes this file itself and never through "
            "a link; remove the link"
        ) from None
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise UsageError(
                f"{target} is {_kind(kind)}, not a regular file: the program writes this file "
                "itself; remove it"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def confined(folder: str | os.PathLike[str], relative: object, what: str) -> Path:
    """`folder / relative` for a path read from a file in `folder` (a sweep's run folders),
    refused (UsageError naming `what`) unless it stays inside `folder`: not absolute, no `..` out
    of it, no symbolic link out of it (resolved, as the file system would), not `folder` itself."""
    text = relative if isinstance(relative, str) else None
    base = Path(folder)
    if not text or "\x00" in text:
        raise UsageError(f"{what} {relative!r} is not a folder name{_CONFINED_HINT}")
    if Path(text).is_absolute():
        raise UsageError(f"{what} {text!r} is an absolute path{_CONFINED_HINT}")
    try:
        root = base.resolve()
        resolved = (base / text).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop
        raise UsageError(f"{what} {text!r} cannot be resolved{_CONFINED_HINT}") from None
    if resolved == root or not resolved.is_relative_to(root):
        raise UsageError(f"{what} {text!r} leads outside {base}{_CONFINED_HINT}")
    return base / text


_CONFINED_HINT = (
    ": a path read from a file must stay inside its folder; refused (is the file damaged, or "
    "from someone else?)"
)


def temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that `atomic_write(path, ...)` calls killed mid-write left behind."""
    target = Path(path)
    return sorted(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))
