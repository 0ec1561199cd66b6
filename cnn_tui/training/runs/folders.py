"""The run folders: what `--runs-dir` (repeatable, or a glob) names, resolved once.

`cnn-tui --runs-dir A --runs-dir B` and `cnn-tui runs --runs-dir '/shared/*/runs'` (a quoted glob,
expanded here, not by the shell) list the runs of several folders at once; new runs (the form's
Start, `train`, `sweep`) go into the first folder. `resolve_run_folders` turns the flag's values
into a `RunFolders`, the one definition of "the run folders" that the runs list, the home screen's
banner, the form and the headless commands share:

- a value that names an existing path is taken as it is (a folder called `runs[1]` is no glob);
  one that does not exist and holds `*`, `?` or `[` is a glob: its folders, sorted; `~` is the
  home folder in both;
- an empty value is a usage error (not the current folder); a path that exists but is not a
  folder is a usage error; a missing folder is none: the first
  is made when a run starts in it, another one is listed as empty, with a warning;
- a glob that matches no folder is a usage error when nothing else names a folder, a warning
  when something does;
- the same folder named twice (the same real path: `runs` and `./runs`, a link) counts once;
- at most `MAX_FOLDERS` folders: a glob that matches more is a usage error (and the glob stops
  being read there), so `--runs-dir '/*/*'` cannot make every listing read thousands of folders.

`folder_labels` names each folder shortly for the runs list (the shortest distinguishing end of
its path, without the end they all share: `/a/proj-a/runs`, `/b/proj-b/runs` -> proj-a, proj-b).
UI-free, argparse-free; the messages name the flag (`--runs-dir`) since that is what the user
typed.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnn_tui.errors import UsageError
from cnn_tui.text import one_line

DEFAULT = "runs"
FLAG = "--runs-dir"
MAX_FOLDERS = 32  # folders listed at once (each is read every two seconds by the runs list)
GLOB_CHARACTERS = re.compile(r"[*?[]")


@dataclass(frozen=True)
class RunFolders:
    """The folders whose runs are listed, first the one new runs go into, and the warnings
    about what was named but gave nothing (shown by the runs list and the headless commands)."""

    paths: tuple[Path, ...] = (Path(DEFAULT),)
    warnings: tuple[str, ...] = ()

    @property
    def new_runs(self) -> Path:
        """Where new runs (and sweeps) go: the first folder."""
        return self.paths[0]

    @property
    def several(self) -> bool:
        return len(self.paths) > 1

    @classmethod
    def of(cls, value: RunFolders | str | os.PathLike[str] | None) -> RunFolders:
        """`value` as RunFolders: one folder given as a path (the app built by a test, a
        command that knows one folder), or already resolved."""
        if isinstance(value, RunFolders):
            return value
        return cls((Path(DEFAULT if value is None else value),))

    def labels(self) -> dict[Path, str]:
        """Each folder's short name (`folder_labels`)."""
        return dict(zip(self.paths, folder_labels(self.paths), strict=True))

    def describe(self) -> str:
        """ "runs" for one folder, "3 folders" for several (text from the command line: shown
        through one_line)."""
        if not self.several:
            return one_line(self.new_runs)
        return f"{len(self.paths)} folders"


def _is_glob(spec: str) -> bool:
    return GLOB_CHARACTERS.search(spec) is not None and not os.path.lexists(spec)


def _glob_folders(pattern: str, limit: int) -> list[Path]:
    """The folders `pattern` matches, sorted; a UsageError past `limit` (read no further)."""
    found = []
    for match in glob.iglob(pattern):
        if os.path.isdir(match):
            found.append(Path(match))
            if len(found) > limit:
                raise UsageError(
                    f"{FLAG} '{one_line(pattern)}' matches more than {limit} folders: at most "
                    f"{MAX_FOLDERS} run folders are listed at once; name fewer"
                )
    return sorted(found)


def resolve_run_folders(specs: Sequence[str] | None, *, limit: int = MAX_FOLDERS) -> RunFolders:
    """The folders the values of `--runs-dir` name, in order, each once (see the module's text);
    none given: ./runs. A UsageError (exit 2) for a path that is not a folder, a glob that matches
    nothing when nothing else does, more than `limit` folders."""
    specs = list(specs or [DEFAULT])
    folders: list[Path] = []
    seen: set[str] = set()
    warnings: list[str] = []
    unmatched: list[str] = []
    missing: list[Path] = []

    def add(path: Path) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        if folders and not path.exists():  # (the first is made when a run starts in it)
            missing.append(path)
        folders.append(path)
        if len(folders) > limit:
            raise UsageError(
                f"{FLAG} names more than {limit} folders: at most {limit} run folders are "
                "listed at once; name fewer"
            )

    for spec in specs:
        if not spec.strip():  # (`--runs-dir ''`, an unset variable: not the current folder)
            raise UsageError(f"{FLAG} is empty: name the folder that holds the runs")
        expanded = os.path.expanduser(spec)
        if _is_glob(expanded):
            matches = _glob_folders(expanded, limit)
            if not matches:
                unmatched.append(spec)
            for match in matches:
                add(match)
            continue
        path = Path(expanded)
        if os.path.lexists(path) and not path.is_dir():
            raise UsageError(
                f"{FLAG} {one_line(spec)} is not a folder: name the folder that holds the runs"
            )
        add(path)
    if not folders:
        names = ", ".join(f"'{one_line(spec)}'" for spec in unmatched)
        raise UsageError(f"{FLAG} {names} matches no folder: check the pattern")
    warnings += [f"{FLAG} '{one_line(spec)}' matches no folder" for spec in unmatched]
    warnings += [
        f"{FLAG} {one_line(path)}: no such folder (no runs listed from it)" for path in missing
    ]
    return RunFolders(tuple(folders), tuple(warnings))


def folder_labels(folders: Sequence[Path]) -> list[str]:
    """A short name for each folder, different for different folders: the end of its absolute
    path that no other folder's path ends with, after dropping the end all of them share
    (`/a/proj-a/runs`, `/b/proj-b/runs` -> "proj-a", "proj-b"; `runs`, `old/runs` (in /home/u)
    -> "u", "old"); a label is never the bare name "runs", which every run folder may have, but
    takes its parent (`a/runs`, `doesnotexist` -> "a/runs", "doesnotexist"). One folder: its name. Text from the command line and the file system: shown
    through one_line."""
    parts = [Path(os.path.abspath(folder)).parts for folder in folders]
    if len(parts) == 1:
        return [parts[0][-1] if len(parts[0]) > 1 else parts[0][0]]
    shared = 0  # trailing parts every path has (never the whole of a path)
    while all(len(p) > shared + 1 for p in parts) and len({p[-1 - shared] for p in parts}) == 1:
        shared += 1
    trimmed = [p[: len(p) - shared] for p in parts]
    labels = []
    for index, own in enumerate(trimmed):
        others = [other for at, other in enumerate(trimmed) if at != index]
        least = 2 if own[-1] == DEFAULT and len(own) > 2 else 1  # ("runs" alone tells nothing)
        length = next(
            (n for n in range(least, len(own)) if all(other[-n:] != own[-n:] for other in others)),
            len(own),
        )
        labels.append(os.path.join(*own[-length:]))
    return labels
