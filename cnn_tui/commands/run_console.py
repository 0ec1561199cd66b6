"""`cnn-tui runs --console RUN [--follow] [--tail N]`: a run's console output (its output.log),
as the dashboard's Console tab shows it.

RUN is a run folder, or a run's name as `cnn-tui runs` lists it (under --runs-dir, SWEEP/RUN for
a sweep's). Every line is printed as the dashboard's Console tab shows it
(`output_log.console_lines`: a progress bar as last drawn, no escape sequence from the file sent
to the terminal). `--follow` prints lines as they are written until the run is over (finished,
stopped, failed or interrupted; Ctrl+C stops following; a file cut by its size cap meanwhile is
followed on from its new end); `--tail N` starts at the last N lines.
A folder that is no run is a usage error (exit 2); a run without output.log (one trained before
every run kept it) says so on stderr and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_tui.commands import output
from cnn_tui.commands.count_flags import add_count
from cnn_tui.errors import UsageError

FOLLOW_POLL_S = 0.5
READ_BYTES = 1024 * 1024  # read at most this much at a time (the file is capped: output_log.py)
MAX_TAIL_LINES = 10_000_000  # more than a capped output.log holds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--console",
        metavar="RUN",
        type=output.path_argument,
        default=None,
        help="print RUN's console output (its output.log, as the Console tab shows it) and exit; "
        "RUN is a run folder or a name the list shows",
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="with --console: print lines as they are written, until the run is over",
    )
    add_count(
        parser,
        "--tail",
        low=0,
        high=MAX_TAIL_LINES,
        help="with --console: start at the last N lines",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether `cnn-tui runs` was asked for a run's console output (else its flags are refused)."""
    if args.console is not None:
        return True
    given = [
        flag for flag, on in (("--follow", args.follow), ("--tail", args.tail is not None)) if on
    ]
    if given:
        raise UsageError(f"{' and '.join(given)}: only with --console RUN")
    return False


def runs_dirs(args: argparse.Namespace) -> list[Path]:
    """The folders --runs-dir names: every one of them where the CLI resolved several
    (`args.run_folders`, given more than once or as a glob), else the one."""
    folders = getattr(args, "run_folders", None)
    if folders is not None:
        return [Path(path) for path in folders.paths]
    return [Path(getattr(args, "runs_dir", None) or "runs")]


def find_run(name: str, args: argparse.Namespace) -> Path:
    """The run folder `name` names: a folder, else a run under --runs-dir; a UsageError if none."""
    from cnn_tui.text import one_line
    from cnn_tui.training.runs import store

    candidates = [Path(name)] + [base / name for base in runs_dirs(args)]
    for path in candidates:
        if path.is_dir():
            if not store.is_run_dir(path):
                raise UsageError(
                    f"{one_line(path)} is not a run folder (no {store.CONFIG_FILE} with "
                    f"{store.STATUS_FILE} or {store.EVENTS_FILE}); cnn-tui runs lists the runs"
                )
            return path
    raise UsageError(f"{one_line(name)}: no such run folder (cnn-tui runs lists the runs)")


def run(args: argparse.Namespace) -> int:
    """Print the run's output; 0 (also for a run that kept none, said on stderr)."""
    from cnn_tui.text import one_line
    from cnn_tui.training.runs import output_log, store
    from cnn_tui.training.runs.state import OVER

    if args.json or args.json_file:
        raise UsageError("--console prints text: --json and --json-file go with the list")
    run_dir = find_run(args.console, args)
    where = one_line(output_log.output_path(run_dir))
    offset = 0 if args.tail is None else output_log.tail_offset(run_dir, args.tail)
    said_missing = False
    try:
        while True:
            over = args.follow and store.read_state(run_dir)[0] in OVER  # (before the read)
            read = output_log.read_output(
                run_dir, offset, most=READ_BYTES, final=not args.follow or over
            )
            if read.problem:
                raise UsageError(f"{one_line(run_dir)}: {read.problem}")
            if not read.exists and not said_missing:
                note = "nothing printed yet" if args.follow else "no console output was kept"
                print(f"cnn-tui: no {where}: {note}", file=sys.stderr, flush=True)
                said_missing = True
            if read.restarted:  # (cut by its size cap: what was printed is in its tail)
                note = "was cut to its head and tail (its size cap): following on from its end"
                print(f"cnn-tui: {where} {note}", file=sys.stderr, flush=True)
                offset = output_log.tail_offset(run_dir, 0)
                continue
            if read.lines:
                output.say(*read.lines)
                sys.stdout.flush()
            offset = read.offset
            if read.lines and offset < read.size:
                continue  # more to read now
            if not args.follow or over:
                return 0
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:  # Ctrl+C ends following: nothing failed
        return 0
