"""`cnn-tui runs`: the runs under --runs-dir, newest first (a table, or JSON).

The table's names are whole and its start times are those of the runs screen (`text.started`:
with seconds today), so two runs started minutes apart are told apart here as there."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cnn_tui.commands import output, tui
from cnn_tui.fileio import json_text

HEADER = ("run", "model", "data set", "epochs", "best val", "test acc", "started", "status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    output.add_json_arguments(parser, "the list")
    from cnn_tui.commands import run_console  # --console RUN: a run's console output

    run_console.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.commands import run_console

    if run_console.wanted(args):
        return run_console.run(args)
    if args.no_ui:
        return run_headless(args)
    return tui.open_app("runs", args, runs_dir=args.runs_dir)


def run_headless(args: argparse.Namespace) -> int:
    """`cnn-tui runs --no-ui`: the table (and the problems of damaged files), or the JSON list."""
    from cnn_tui.fileio import check_output_path
    from cnn_tui.text import one_line, percent, started
    from cnn_tui.training.runs import store as runs

    if args.json_file:
        check_output_path(args.json_file, "--json-file")
    runs_dir = Path(args.runs_dir)
    infos = runs.list_runs(runs_dir)
    listed = [info.to_dict() for info in infos]
    if args.json_file:
        output.write_json(listed, args.json_file)
    if args.json:
        output.say(json_text(listed))  # (unflushed: a reader gone early is no error)
        return 0
    if not infos:
        output.say(f"no runs in {one_line(runs_dir)}")
        return 0
    now = time.time()
    rows = [
        (
            one_line(info.name),
            one_line(info.model),
            one_line(info.dataset),
            f"{info.epochs_done}/{info.epochs}",
            percent(info.best_val_acc),
            percent(info.test_acc),
            started(info.started, now),
            info.status_label,
        )
        for info in infos
    ]
    output.say(*output.table(HEADER, rows))
    for info in infos:  # damaged files: what could be read is in the table
        output.say(*(f"{one_line(info.name)}: {one_line(problem)}" for problem in info.problems))
    return 0
