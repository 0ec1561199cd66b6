"""`cnn-tui runs`: the runs under --runs-dir (each of them, when it is given several times or
as a glob), newest first (a table, or JSON).

The table's names are whole and its start times are those of the runs screen (`text.started`:
with seconds today), so two runs started minutes apart are told apart here as there."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from cnn_tui import catalog
from cnn_tui.commands import output, run_console, run_metrics, tui
from cnn_tui.errors import UsageError
from cnn_tui.fileio import json_text

if TYPE_CHECKING:
    from cnn_tui.training.runs.folders import RunFolders
    from cnn_tui.training.runs.store import RunInfo

HEADER = ("run", "model", "data set", "epochs", "best val", "test acc", "started", "status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    output.add_json_arguments(parser, "the list")
    run_metrics.add_arguments(parser)  # --metrics RUN_DIR [--csv FILE]
    run_console.add_arguments(parser)  # --console RUN [--follow] [--tail N]


def run(args: argparse.Namespace) -> int:
    if args.metrics:  # a report of one run: headless only
        return run_metrics.run(args)
    if args.csv:
        raise UsageError("--csv writes the points of --metrics RUN_DIR: give --metrics too")
    if run_console.wanted(args):
        return run_console.run(args)
    if args.no_ui:
        return run_headless(args)
    return tui.open_app("runs", args, runs_dir=args.run_folders)


def run_headless(args: argparse.Namespace) -> int:
    """`cnn-tui runs --no-ui`: the table (and the problems of damaged files), or the JSON list.
    Several run folders (`args.run_folders`): a "folder" column names each run's (its short
    label), newest first across them; a "host" column names the other machine a run was
    trained on. What was named but gave nothing goes to stderr, so stdout stays the list."""
    from cnn_tui.text import one_line
    from cnn_tui.training.runs import store as runs

    if args.json_file:
        output.check_output(args.json_file, "--json-file")
    folders = args.run_folders
    listing = runs.list_runs_in(folders.paths)
    for warning in folders.warnings:
        print(f"cnn-tui: warning: {one_line(warning)}", file=sys.stderr)
    for folder, why in listing.unreadable.items():
        print(f"cnn-tui: warning: cannot read {one_line(folder)}: {one_line(why)}", file=sys.stderr)
    infos = listing.runs
    listed = [info.to_dict() for info in infos]
    if args.json_file:
        output.write_json(listed, args.json_file)
    if args.json:
        output.say(json_text(listed))  # (unflushed: a reader gone early is no error)
        return 0
    if not infos:
        output.say(f"no runs in {folders.describe()}")
        return 0
    output.say(*output.table(*table_rows(infos, folders)))
    for info in infos:  # damaged files: what could be read is in the table
        output.say(*(f"{one_line(info.name)}: {one_line(problem)}" for problem in info.problems))
    return 0


def table_rows(
    infos: list[RunInfo], folders: RunFolders
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and the rows of the text table: HEADER, after "folder" when the runs come from
    several folders, and "host" (before "status") when a run was trained on another machine."""
    from cnn_tui.text import one_line, percent, started

    labels = folders.labels()
    several, hosts = folders.several, any(info.host for info in infos)
    header = (("folder",) * several) + HEADER[:-1] + (("host",) * hosts) + HEADER[-1:]
    now = time.time()
    rows = [
        (
            *((one_line(labels.get(info.folder, info.folder or "?")),) * several),
            one_line(info.name),
            one_line(catalog.model_label(info.model)),
            one_line(info.dataset),
            f"{info.epochs_done}/{info.epochs}",
            percent(info.best_val_acc),
            percent(info.test_acc),
            started(info.started, now),
            *((one_line(info.host or "-"),) * hosts),
            info.status_label,
        )
        for info in infos
    ]
    return header, rows
