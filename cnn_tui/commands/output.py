"""Everything a command prints: lines of text, aligned tables and JSON.

The `--json` convention, the same in every command:
- `--json` prints JSON on stdout instead of the text (train and sweep: one JSON object per line,
  as events happen; the others: one document at the end);
- `--json-file FILE` writes the same JSON to FILE (atomically) and keeps the text on stdout
  (train and sweep: their JSON lines, `JsonLines`, written when the command ends);
- the commands whose `--json` used to take a FILE (`inspect`, `lr-find`, `bench`) still accept
  `--json FILE` for it (`-` is stdout).
Every FILE is checked before the work (`fileio.check_output_path`): a regular file or a new path,
never a device, FIFO, socket or symbolic link; `-` is stdout and `/dev/null` discards the JSON.
Text from files and folders goes through `cnn_tui.text.one_line` before it is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from cnn_tui.fileio import atomic_write_text, check_output_path

STDOUT = "-"


class FileFlag(argparse._StoreAction):
    """Stores an output flag's value and which spelling gave it (`args.DEST_flag`: "-o" or
    "--json"), so that a message about the file names the flag the user typed."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_flag", option_string)


def add_json_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    what: str,
    *,
    file_after_json: bool = False,
) -> None:
    """`--json` and `--json-file FILE` for a command printing `what` (e.g. "the list").

    `file_after_json` keeps the older spelling `--json FILE` of commands that had it."""
    if file_after_json:
        parser.add_argument(
            "--json",
            action=FileFlag,
            nargs="?",
            const=STDOUT,
            default=None,
            metavar="FILE",
            help=f"print {what} as JSON on stdout (--json FILE: write it to FILE)",
        )
    else:
        parser.add_argument(
            "--json",
            action="store_const",
            const=STDOUT,
            default=None,
            help=f"print {what} as JSON on stdout instead of text",
        )
    parser.add_argument(
        "--json-file",
        metavar="FILE",
        default=None,
        help=f"also write {what} as JSON to FILE (written whole, atomically)",
    )


def json_target(args: argparse.Namespace) -> str | None:
    """Where the command's JSON goes: `STDOUT`, a file path, or None (text only). A file is
    checked before the command's work, so a long job does not end with its result unwritten."""
    target = getattr(args, "json_file", None) or getattr(args, "json", None)
    if target is None or target == STDOUT:
        return target
    typed = getattr(args, "json_flag", None) or "--json"  # (lr-find: -o)
    flag = "--json-file" if getattr(args, "json_file", None) else typed
    check_output_path(target, flag)
    return str(target)


def write_json(data: Any, target: str, out: TextIO | None = None) -> None:
    """`data` as one JSON document to stdout (`target` is `STDOUT`) or atomically to a file."""
    text = json.dumps(data)
    if target == STDOUT:
        print(text, file=out or sys.stdout, flush=True)
    else:
        atomic_write_text(Path(target), text + "\n")


class JsonLines:
    """JSON objects one per line, as they come (the events of train and sweep): printed on `out`
    (`--json`), and kept for `path` (`--json-file`), which `close` writes whole, atomically."""

    def __init__(self, out: TextIO | None, path: str | None) -> None:
        self.out = out
        self.path = path
        self.lines: list[str] = []

    def write(self, record: Any) -> None:
        line = json.dumps(record)
        if self.path is not None:
            self.lines.append(line)
        if self.out is not None:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.path == STDOUT:  # `--json-file -`: stdout, at the end
            say(*self.lines)
        elif self.path is not None:
            atomic_write_text(Path(self.path), "".join(line + "\n" for line in self.lines))


def table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()
) -> list[str]:
    """Rows of cells as aligned lines (two spaces between columns); columns numbered in `right`
    are right-aligned (numbers)."""
    lines = [list(map(str, header)), *[list(map(str, row)) for row in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]


def say(*lines: str, out: TextIO | None = None) -> None:
    """Print lines of text to stdout (or `out`)."""
    stream = out or sys.stdout
    for line in lines:
        print(line, file=stream)
