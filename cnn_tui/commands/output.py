"""Everything a command prints: lines of text, aligned tables and JSON.

The `--json` convention, the same in every command:
- `--json` prints JSON on stdout instead of the text (train and sweep: one JSON object per line,
  as events happen; the others: one document at the end);
- `--json-file FILE` writes the same JSON to FILE (atomically) and keeps the text on stdout
  (train and sweep: their JSON lines, `JsonLines`, written when the command ends);
- the commands whose `--json` used to take a FILE (`inspect`, `lr-find`, `bench`) still accept
  `--json FILE` for it (`-` is stdout).
All JSON goes through `cnn_tui.fileio.json_text`: a number that is not finite (NaN, ±inf) is
written as `null`, never as the bare `NaN` that strict JSON readers refuse.
Every FILE is checked before the work (`check_output`): a regular file or a new path, never a
device, FIFO, socket or symbolic link, never a file a run or a sweep keeps (its checkpoint, its
config.toml, ...); `-` is stdout and `/dev/null` discards the JSON.
Text from files and folders goes through `cnn_tui.text.one_line` before it is printed (`table`
does it for every cell); a flag or argument naming a file or folder is read by `path_argument`,
which refuses control characters.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from cnn_tui.commands import streams
from cnn_tui.fileio import atomic_write_text, json_text
from cnn_tui.text import control_character, one_line

STDOUT = "-"


def chooses_output(action: argparse.Action) -> argparse.Action:
    """Mark `action` as a flag that chooses where files are written (`--runs-dir`, `--run-dir`,
    `--json-file`, `-o`): a write under its path that fails names it (`cli.flag_for`)."""
    action.chooses_output = True  # type: ignore[attr-defined]
    return action


def path_argument(value: str) -> str:
    """The argparse `type` of every flag and argument that names a file or folder (`--run-dir`,
    `--json-file`, a run folder...): one holding a control character (a newline, ESC, C1, a
    bidirectional control) is refused, exit 2, before it is used, echoed or made a folder."""
    bad = control_character(value)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"'{one_line(value)}' holds a control character ({bad}); name a path without one"
        )
    return value


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
        json_flag = parser.add_argument(
            "--json",
            action=FileFlag,
            nargs="?",
            const=STDOUT,
            default=None,
            metavar="FILE",
            type=path_argument,
            help=f"print {what} as JSON on stdout (--json FILE: write it to FILE)",
        )
        chooses_output(json_flag)
    else:
        parser.add_argument(
            "--json",
            action="store_const",
            const=STDOUT,
            default=None,
            help=f"print {what} as JSON on stdout instead of text",
        )
    json_file = parser.add_argument(
        "--json-file",
        metavar="FILE",
        type=path_argument,
        default=None,
        help=f"also write {what} as JSON to FILE (written whole, atomically)",
    )
    chooses_output(json_file)


def json_target(args: argparse.Namespace) -> str | None:
    """Where the command's JSON goes: `STDOUT`, a file path, or None (text only). A file is
    checked before the command's work, so a long job does not end with its result unwritten."""
    target = getattr(args, "json_file", None) or getattr(args, "json", None)
    if target is None or target == STDOUT:
        return target
    typed = getattr(args, "json_flag", None) or "--json"  # (lr-find: -o)
    flag = "--json-file" if getattr(args, "json_file", None) else typed
    check_output(target, flag)
    return str(target)


def check_output(path: str, flag: str, run_dir: str | None = None) -> None:
    """Check the FILE of an output flag before the command's work (`store.check_output_file`:
    a regular file or a new path, never a file a run or a sweep keeps, nor one the run in
    `run_dir` that the command trains will keep)."""
    from cnn_tui.training.runs.store import check_output_file

    check_output_file(path, flag, run_dir)


def json_on_stdout(args: argparse.Namespace) -> bool:
    """Whether the command's stdout carries JSON (`--json`, `--json -`, `--json-file -`)."""
    targets = (getattr(args, "json", None), getattr(args, "json_file", None))
    return any(target is True or target == STDOUT for target in targets)


@contextlib.contextmanager
def user_prints_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """While the user's own model code runs (imported, built, trained, run) in a command whose
    stdout carries JSON: what it prints goes to stderr, so the JSON printed after stays JSON."""
    if not json_on_stdout(args):
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def write_json(data: Any, target: str, out: TextIO | None = None) -> None:
    """`data` as one JSON document to stdout (`target` is `STDOUT`) or atomically to a file."""
    text = json_text(data)
    if target == STDOUT:
        print(text, file=out or sys.stdout, flush=True)
    else:
        atomic_write_text(Path(target), text + "\n")


class JsonLines:
    """JSON objects one per line, as they come (the events of train and sweep): printed on `out`
    (`--json`), and kept for `path` (`--json-file`), which `close` writes whole, atomically. Once
    `out` is gone (a closed pipe), the lines are no longer printed and the command goes on."""

    def __init__(self, out: TextIO | None, path: str | None) -> None:
        self.out = out
        self.path = path
        self.lines: list[str] = []

    def write(self, record: Any) -> None:
        line = json_text(record)
        if self.path is not None:
            self.lines.append(line)
        if self.out is not None:
            try:
                print(line, file=self.out, flush=True)
            except OSError:
                streams.silence(self.out)
                self.out = None

    def close(self) -> None:
        if self.path == STDOUT:  # `--json-file -`: stdout, at the end
            say(*self.lines)
        elif self.path is not None:
            atomic_write_text(Path(self.path), "".join(line + "\n" for line in self.lines))


def table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()
) -> list[str]:
    """Rows of cells as aligned lines (two spaces between columns); columns numbered in `right`
    are right-aligned (numbers). Every cell is written through `one_line`: a name holding a
    newline or an escape sequence neither breaks the table nor reaches the terminal."""
    lines = [list(map(one_line, header)), *[list(map(one_line, row)) for row in rows]]
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
