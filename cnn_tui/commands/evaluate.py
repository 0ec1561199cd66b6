"""`cnn-tui eval RUN`: recompute a run's test metrics from its checkpoint (eval.json is written).

Headless, it prints the per-class metrics and the confusion matrix, or the report as one JSON
document (`--json`, `--json-file FILE`); else the results screen recomputes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnn_tui.commands import output, tui
from cnn_tui.fileio import json_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import tool_flags as tool_args

    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        type=output.path_argument,
        help="the run directory to evaluate",
    )
    tool_args.add_device_argument(parser)
    tool_args.add_trust_argument(parser)
    output.add_json_arguments(parser, "the report")


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.runs.store import check_evaluable

    run_dir = Path(args.run_dir)
    device = args.device or "auto"
    if args.no_ui:
        return run_headless(args, run_dir, device)
    from cnn_tui.ui.training.results import EvalSettings

    check_evaluable(run_dir)  # no such run / no checkpoint: one line, exit 2, no app
    check_trusted(run_dir, args.trust_model_code)
    settings = EvalSettings(run_dir, device, trust_model_code=args.trust_model_code)
    return tui.open_app("eval", settings, runs_dir=args.run_folders)


def check_trusted(run_dir: Path, trusted: bool) -> None:
    """A run of the user's own class without --trust-model-code (or with a changed copy): one
    line, exit 2, before torch (or the app) loads."""
    from cnn_tui.training.models import own

    own.check_run(run_dir, trusted=trusted)


def run_headless(args: argparse.Namespace, run_dir: Path, device: str) -> int:
    """`cnn-tui eval RUN --no-ui`: the report printed (and written to --json-file)."""
    from cnn_tui.training.loop.trainer import evaluate_saved

    if args.json_file:
        output.check_output(args.json_file, "--json-file")
    with output.user_prints_to_stderr(args):  # (your own model's code may print)
        report = evaluate_saved(run_dir, device, trust_model_code=args.trust_model_code)
    if args.json_file:
        output.write_json(report, args.json_file)
    if args.json:
        output.say(json_text(report))  # (unflushed: a reader gone early is no error)
    else:
        output.say(*report_lines(report, run_dir))
    return 0


def report_lines(report: dict[str, Any], run_dir: Path) -> list[str]:
    from cnn_tui.text import one_line
    from cnn_tui.training.loop import metrics
    from cnn_tui.training.runs import store as runs

    where = f"epoch {report['checkpoint_epoch']}"
    if report["checkpoint_batch"]:
        where = f"epoch {report['checkpoint_epoch'] + 1}, batch {report['checkpoint_batch']}"
    weights = ""
    if report.get("weights") == runs.BEST_FILE:
        weights = (
            f"; the weights of its best epoch, {report['weights_epoch']} ({runs.BEST_FILE}: "
            "early stopping)"
        )
    if report.get("diverged_epoch"):  # its last finite weights
        weights += f" (the run diverged at epoch {report['diverged_epoch']})"
    return [
        f"run {one_line(run_dir)} — checkpoint after {where}{weights}, {report['n_test']} test "
        "images",
        metrics.format_report(report),
        f"test loss {report['test_loss']:.4f}; written to {one_line(run_dir / runs.EVAL_FILE)}",
    ]
