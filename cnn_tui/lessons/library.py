"""Lesson files: where they are, how one is found and read, how one is saved.

Every lesson example is a TOML file with an `op` (conv, pool, net, ...: the command that opens
it), a `title`, a `description`, its arrays and its settings (the schema of each op: the
docstrings of `cnn_tui.lessons.examples` and `cnn_tui.lessons.network`, and
docs/lessons/examples.md). They come from two folders and from anywhere:

- the shipped examples, `assets/lessons/NAME.toml`;
- the user's own, `user_lessons_dir()`: `$XDG_CONFIG_HOME/cnn-tui/lessons/NAME.toml` (default
  `~/.config/cnn-tui/lessons/`), where the edit forms save (`save_lesson`);
- a path given to `--example` (it holds a `/` or ends in `.toml`): a lecture's own folder.

`--example NAME` looks for a shipped example first, then the user's: a shipped name always means
the shipped example (so the docs and a colleague's `--example edge-detect` mean one thing), and
saving under a shipped name is refused. A user file with a shipped name is listed as hidden.

A file is from a stranger: `read_lesson` reads it with `fileio.read_toml_file` (a regular file,
at most `MAX_LESSON_BYTES`), refuses keys its op does not have (`check_keys`), a value of the
wrong type (`number_array`, `text_value`, ...), and makes its title and description safe to
print (`cnn_tui.text.one_line`). Each error is one `UsageError` line naming the file and the key.
Nothing here knows an op's arrays: `examples` (conv, pool), `network` (net) and `layer_lesson`
(batchnorm, dropout) build them with the same functions (`number_array`, `to_4d`, ...), each with
its own keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.assets import assets_dir
from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text, is_regular_file, read_toml_file, toml_text
from cnn_tui.lessons.notation import LESSONS
from cnn_tui.text import control_character, lines, one_line

__all__ = [
    "MAX_LESSON_BYTES",
    "LessonFile",
    "LessonInfo",
    "check_keys",
    "check_name",
    "example_label",
    "fewest_axes",
    "find_lesson",
    "is_path",
    "list_lessons",
    "number_array",
    "read_lesson",
    "save_lesson",
    "to_4d",
    "user_lessons_dir",
]

MAX_LESSON_BYTES = 256 * 1024  # the largest lesson's arrays take a few KiB as text
MAX_TITLE = 120  # characters
MAX_DESCRIPTION = 2000
RESERVED_NAMES = ("random",)  # the edit form's "random, from the seed"
_NAME_RE = re.compile(r"^\w[\w.-]{0,63}$")
TEXT_KEYS = ("op", "title", "description")  # every lesson file's keys besides its op's own


def user_lessons_dir() -> Path:
    """The user's lessons folder: `$XDG_CONFIG_HOME/cnn-tui/lessons`, or
    `~/.config/cnn-tui/lessons` when XDG_CONFIG_HOME is unset or not an absolute path (as the
    XDG spec says). It may not exist yet: `save_lesson` makes it."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:  # no HOME and no password entry
            raise UsageError(
                "cannot find your home folder for the lessons folder: set XDG_CONFIG_HOME"
            ) from None
    return Path(base) / "cnn-tui" / "lessons"


def shipped_lessons_dir() -> Path:
    return assets_dir() / "lessons"


def is_path(spec: str) -> bool:
    """Whether `--example SPEC` names a file (it holds a path separator or ends in .toml)
    rather than an example by name."""
    return "/" in spec or os.sep in spec or spec.lower().endswith(".toml")


def check_name(name: str) -> str:
    """`name` if it is a usable example name (a file stem in the lessons folder: letters, digits,
    `_`, `-` and `.`, 64 at most, starting with a letter or digit; not `random`), else a
    UsageError saying what a name may hold."""
    if not _NAME_RE.match(name) or ".." in name or name.lower() in RESERVED_NAMES:
        shown = one_line(name)
        reason = "is reserved" if name.lower() in RESERVED_NAMES else "is not a usable name"
        raise UsageError(
            f"'{shown}' {reason}: a name holds letters, digits, '-', '_' and '.' (at most 64, "
            "starting with a letter or digit; not 'random')"
        )
    return name


@dataclass(frozen=True)
class LessonInfo:
    """One lesson file as a listing shows it. `problem` says why it cannot be opened by name (a
    broken file, a shipped name, a name --example cannot take); "" when it can."""

    name: str
    op: str
    title: str
    description: str
    source: str  # "shipped" | "yours" | "file" (a path given to --example)
    path: Path
    problem: str = ""


@dataclass(frozen=True)
class LessonFile:
    """A lesson file found and read: `data` is its TOML, checked against its op's keys."""

    name: str  # the example's name (a path's file name, e.g. "week3.toml"), safe to print
    source: str  # "shipped" | "yours" | "file"
    path: Path
    data: dict[str, Any]
    title: str  # safe to print (one line)
    description: str  # safe to print (its lines each made safe)

    @property
    def where(self) -> str:
        """The file as messages name it."""
        return f"lesson file {one_line(self.path)}"


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(path for path in folder.glob("*.toml") if is_regular_file(path))
    except OSError:  # a folder we may not read
        return []


def _user_folder() -> Path | None:
    try:
        return user_lessons_dir()
    except UsageError:
        return None


def list_lessons(op: str | None = None) -> list[LessonInfo]:
    """The shipped examples, then the user's (sorted by name), of `op` (every op: None). A user
    file that cannot be read is listed with its problem, whatever its op, so a listing says
    why an example is missing."""
    shipped = _files(shipped_lessons_dir())
    found = [_info(path, "shipped") for path in shipped]
    folder = _user_folder()
    names = {path.stem for path in shipped}
    for path in _files(folder) if folder is not None else []:
        info = _info(path, "yours")
        if path.stem in names:
            info = _replace(info, "hidden by the shipped example of that name: rename the file")
        elif info.problem == "":
            try:
                check_name(path.stem)
            except UsageError:
                info = _replace(info, "--example cannot take this name: rename the file")
        found.append(info)
    return [info for info in found if op is None or info.op == op or info.op == ""]


def _replace(info: LessonInfo, problem: str) -> LessonInfo:
    return LessonInfo(
        info.name, info.op, info.title, info.description, info.source, info.path, problem
    )


def _info(path: Path, source: str) -> LessonInfo:
    name = one_line(path.stem)
    try:
        data = read_toml_file(path, "lesson file", MAX_LESSON_BYTES)
        op = data.get("op")
        if not isinstance(op, str):
            raise UsageError("it has no op")
        title, description = _texts(data, path, name)
    except UsageError as exc:
        reason = str(exc).removeprefix(f"lesson file {path}").lstrip(": ") or str(exc)
        return LessonInfo(name, "", name, "", source, path, f"broken: {one_line(reason)}")
    return LessonInfo(name, one_line(op), title, description, source, path)


def find_lesson(spec: str, op: str | None, command: str | None = None) -> Path:
    """The file `--example SPEC` of `cnn-tui {command}` means: a path as it is (checked when
    read), else the shipped example of that name, else the user's. An unknown name is a
    UsageError listing the examples of `op` (of every op: None)."""
    if is_path(spec):
        return Path(spec).expanduser()
    bad = control_character(spec)
    for folder in (shipped_lessons_dir(), _user_folder()):
        if bad is None and folder is not None and _NAME_RE.match(spec) and ".." not in spec:
            path = folder / f"{spec}.toml"
            if os.path.lexists(path):
                return path
    usable = [info for info in list_lessons(op) if info.op and not info.problem]
    shipped = ", ".join(info.name for info in usable if info.source == "shipped")
    yours = ", ".join(info.name for info in usable if info.source == "yours")
    kind = f"{op} example" if op else "lesson example"
    listing = f"cnn-tui {command or op} --list-examples; " if command or op else ""
    raise UsageError(
        f"no {kind} named '{one_line(spec)}'; the {kind}s are: {shipped or 'none'}"
        + (f"; yours: {yours}" if yours else "")
        + f" ({listing}a file of your own: give its path, ./NAME.toml)"
    )


def read_lesson(
    spec: str, op: str, keys: Collection[str], command: str | None = None
) -> LessonFile:
    """The lesson file `--example SPEC` names (`find_lesson`), read and checked: its op must be
    `op` ("my.toml is a pool example; open it with cnn-tui pool") and its keys among
    `TEXT_KEYS` and `keys`. UsageError (one line naming the file and the key) otherwise."""
    path = find_lesson(spec, op, command)
    shipped = path.parent == shipped_lessons_dir()
    source = "file" if is_path(spec) else "shipped" if shipped else "yours"
    hint = "reinstall cnn-tui" if source == "shipped" else ""
    data = read_toml_file(path, "lesson file", MAX_LESSON_BYTES, hint)
    where = f"lesson file {one_line(path)}"
    found = data.get("op")
    if found != op:
        if not isinstance(found, str) or not found:
            raise UsageError(f'{where} has no op = "{op}" line: the key op names its lesson')
        if found not in LESSONS:  # (never advise a command that does not exist)
            raise UsageError(
                f"{where}: op must be one of {', '.join(LESSONS)}, got '{one_line(found)}'"
            )
        raise UsageError(
            f"{where} is a {one_line(found)} example; open it with cnn-tui {one_line(found)}"
        )
    check_keys(data, (*TEXT_KEYS, *keys), where)
    name = one_line(path.name if source == "file" else path.stem)
    title, description = _texts(data, path, name)
    return LessonFile(name, source, path, data, title, description)


def _texts(data: Mapping[str, Any], path: Path, name: str) -> tuple[str, str]:
    where = f"lesson file {one_line(path)}"
    title = text_value(data, "title", where, MAX_TITLE, default=name)
    description = text_value(data, "description", where, MAX_DESCRIPTION, default="")
    return one_line(title.strip()) or name, "\n".join(lines(description.strip()))


def check_keys(data: Mapping[str, Any], keys: Collection[str], where: str) -> None:
    """A UsageError naming the first key of `data` not in `keys` (a typo, another op's key)."""
    unknown = [key for key in data if key not in keys]
    if unknown:
        known = ", ".join(sorted(keys))
        raise UsageError(f"{where}: unknown key '{one_line(unknown[0])}' (the keys are {known})")


def text_value(data: Mapping[str, Any], key: str, where: str, limit: int, default: str = "") -> str:
    """The string under `key` (its default when missing), at most `limit` characters."""
    value = data.get(key, default)
    if not isinstance(value, str):
        raise UsageError(f"{where}: {key} must be a string in quotes, got {_kind(value)}")
    if len(value) > limit:
        raise UsageError(f"{where}: {key} is longer than {limit} characters")
    return value


def int_value(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{where}: {key} must be a whole number, got {_kind(value)}")
    return value


def float_value(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where}: {key} must be a number, got {_kind(value)}")
    return float(value)


def number_array(
    data: Mapping[str, Any], key: str, where: str, max_abs: float, max_ndim: int = 4
) -> np.ndarray:
    """The array under `key`: nested lists of numbers (no strings, no true/false), rectangular,
    1 to `max_ndim` axes, every value finite and at most `max_abs` in size."""
    if key not in data:
        raise UsageError(f"{where} has no {key} array")
    value = data[key]
    try:
        _shape(value, max_ndim)
    except ValueError as exc:
        raise UsageError(f"{where}: {key} {exc}") from None
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(np.abs(array) > max_abs):
        raise UsageError(f"{where}: {key}: values must be finite and at most {max_abs:g} in size")
    return array


def to_4d(array: np.ndarray, key: str, where: str, leading: str) -> np.ndarray:
    """A file's (H, W), (C, H, W) or (N, C, H, W) array as 4-D (its leading axes of size 1 may
    be left out); `leading` names the shapes it may have, for the error."""
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise UsageError(f"{where}: {key} must be 2-D to 4-D ({leading}), got {array.ndim}-D")


def fewest_axes(array: np.ndarray, keep: int) -> list[Any]:
    """An array for a file: leading axes of size 1 dropped (as `to_4d` adds them back), at least
    `keep` axes, as nested lists of floats."""
    while array.ndim > keep and array.shape[0] == 1:
        array = array[0]
    return np.asarray(array, dtype=np.float64).tolist()


def _shape(value: Any, depth: int) -> tuple[int, ...]:
    if isinstance(value, list):
        if depth == 0:
            raise ValueError("has too many axes")
        if not value:
            raise ValueError("holds an empty list")
        shapes = {_shape(item, depth - 1) for item in value}
        if len(shapes) > 1:
            raise ValueError("is not rectangular: its rows differ in length")
        return (len(value), *shapes.pop())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must hold numbers, found {_kind(value)}")
    return ()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"the text '{one_line(value)[:40]}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def example_label(name: str, seed: int, *, edited: bool, seeded: bool = False) -> str:
    """What the status line calls an example: its name, "NAME (edited)" once the edit form
    changed its values, "seed N" for one drawn at random ("edited" once changed). `seeded`: a
    named example whose upstream gradient was drawn from the seed says so ("NAME, seed N")."""
    if name == "random":
        return "edited" if edited else f"seed {seed}"
    if edited:
        return f"{name} (edited)"
    return f"{name}, seed {seed}" if seeded else name


def save_lesson(name: str, values: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Write `values` (an op's keys, `op` first) as `NAME.toml` in the user's lessons folder,
    atomically, making the folder. UsageError for a bad or shipped name; FileExistsError when
    the file exists and `overwrite` is False (the form asks first)."""
    check_name(name)
    if os.path.lexists(shipped_lessons_dir() / f"{name}.toml"):
        raise UsageError(
            f"'{name}' is the name of a shipped example: choose another name (yours would be "
            "hidden by it)"
        )
    folder = user_lessons_dir()
    path = folder / f"{name}.toml"
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(str(path))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, toml_text(values))
    return path
