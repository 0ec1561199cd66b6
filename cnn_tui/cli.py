"""Command line entry point: `cnn-tui [SUBCOMMAND] [--no-ui] ...`.

Parsing stays light (no torch, no textual at import time) so `--help` is instant; each
subcommand imports what it needs when it runs. Every subcommand takes `--no-ui`, which runs the
same core engine headless.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnn_tui import __version__
from cnn_tui.errors import RunError, UsageError, disk_full, path_error

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_no_ui(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--no-ui", action="store_true", help=f"run headless: {what}")


def _add_lesson_arguments(parser: argparse.ArgumentParser, op: str) -> None:
    """Flags that set the example of a conv or pool lesson (shared by the TUI and the trace)."""
    from cnn_tui.lessons import args as lesson_args

    lesson_args.add_arguments(parser, op)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnn-tui",
        description=(
            "Learn and run convolutional networks in the terminal. With no subcommand, opens the "
            "home screen: step-through conv/pool lessons and training."
        ),
        epilog="Run 'cnn-tui SUBCOMMAND --help' for the options of each subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"cnn-tui {__version__}")
    parser.add_argument(
        "--runs-dir", default="runs", help="where training runs are stored (default: ./runs)"
    )
    _add_no_ui(parser, "print a short overview of the subcommands and exit")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    conv = sub.add_parser(
        "conv",
        help="step through a naive 2-D convolution, forward and backward",
        description=(
            "Step through a naive convolution computed with plain nested loops. Opens the "
            "lesson screen; with --no-ui prints a trace of every step (or a summary)."
        ),
    )
    _add_lesson_arguments(conv, "conv")
    _add_no_ui(conv, "print the arrays, the steps and the result to stdout")

    pool = sub.add_parser(
        "pool",
        help="step through naive max / average pooling, forward and backward",
        description=(
            "Step through naive pooling computed with plain nested loops. Opens the lesson "
            "screen; with --no-ui prints a trace of every step (or a summary)."
        ),
    )
    _add_lesson_arguments(pool, "pool")
    _add_no_ui(pool, "print the arrays, the steps and the result to stdout")

    net = sub.add_parser(
        "net",
        help="step through a whole tiny network: forward, loss, backward, one SGD step",
        description=(
            "Step through a whole tiny network (conv, ReLU, max-pool, flatten, linear, softmax "
            "cross-entropy) on one image: forward, the loss, backward layer by layer, one SGD "
            "step and the loss after it. Opens the lesson screen; with --no-ui prints a trace."
        ),
    )
    from cnn_tui.lessons import args as lesson_args

    lesson_args.add_net_arguments(net)
    _add_no_ui(net, "print every layer's steps, the update and the loss after it to stdout")

    train = sub.add_parser(
        "train",
        help="train a CNN (opens the training form; --no-ui trains headless)",
        description=(
            "Train a small CNN from scratch or fine-tune ResNet18. Opens the training form "
            "filled from the flags; with --no-ui trains headless and writes a run directory."
        ),
    )
    from cnn_tui.training import args as train_args
    from cnn_tui.training import tool_args

    train_args.add_arguments(train, node_flags=True)
    _add_no_ui(train, "train in this process and print progress (for scripts, nohup, CI)")

    evaluate = sub.add_parser(
        "eval",
        help="recompute the test metrics of a run from its checkpoint",
        description="Recompute test accuracy, per-class metrics and the confusion matrix of a run.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to evaluate")
    tool_args.add_device_argument(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_no_ui(evaluate, "print the metrics instead of opening the results screen")

    runs = sub.add_parser(
        "runs",
        help="list training runs",
        description="List the runs under --runs-dir with their status and metrics.",
    )
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    _add_no_ui(runs, "print the table instead of opening the runs screen")

    lr_find = sub.add_parser(
        "lr-find",
        help="find a learning rate: the exponential range test (headless)",
        description=(
            "The learning-rate range test (Smith 2015, as fastai's lr_find): train up to --steps "
            "batches of the run's settings while the learning rate grows exponentially from "
            "--start-lr to --end-lr, stop when the smoothed loss diverges, and suggest a learning "
            "rate. Prints the suggestion (and the curve on a terminal); nothing of a run is "
            "written or changed."
        ),
    )
    from cnn_tui.training.tools import lr_find as lr_find_args

    lr_find_args.add_arguments(lr_find)
    _add_no_ui(lr_find, "lr-find always does (the training form's Find LR runs it in the TUI)")

    sweep = sub.add_parser(
        "sweep",
        help="train a grid of settings as runs and compare them (opens the sweep form)",
        description=(
            "Train every combination of --grid KEY=V1,V2 on top of the train flags, one run at a "
            "time per device, and compare them in a table. Opens the training form in sweep "
            "mode; with --no-ui runs the queue here and prints the table at the end."
        ),
    )
    from cnn_tui.training.runs import sweeps

    sweeps.add_arguments(sweep)
    _add_no_ui(sweep, "run the queue in this process, print progress and the table")

    inspect = sub.add_parser(
        "inspect",
        help="look inside a trained run: feature maps, filters, probabilities, Grad-CAM",
        description=(
            "Run one image (a test image of the run, or a file) through a trained run's network "
            "and show every stage's feature maps, the first layer's filters, the class "
            "probabilities and Grad-CAM for the predicted and the true class. Opens the Inside "
            "screen; with --no-ui prints a report (--json FILE: probabilities, Grad-CAM maps "
            "and per-layer statistics for scripts)."
        ),
    )
    tool_args.add_inspect_arguments(inspect)
    _add_no_ui(inspect, "print a report (and write --json FILE) instead of opening the screen")

    predict = sub.add_parser(
        "predict",
        help="a trained run's top-k classes for image files or folders (headless)",
        description=(
            "Predict image files with a trained run, through the run's own preprocessing: top-k "
            "classes with probabilities (the image drawn on a terminal); a folder gives a table "
            "and a summary, with the accuracy when its sub-folders are named after classes."
        ),
    )
    tool_args.add_predict_arguments(predict)
    _add_no_ui(predict, "headless (the default for predict)")

    export = sub.add_parser(
        "export",
        help="export a trained run's model as TorchScript, torch.export or ONNX (headless)",
        description=(
            "Write a run's model as one file: TorchScript, a torch.export .pt2 archive, or ONNX "
            "(needs pip install 'cnn-tui[onnx]'). The file is checked against the run's model "
            "on test images before it is written."
        ),
    )
    from cnn_tui.training.tools import export as export_args

    export_args.add_arguments(export)
    _add_no_ui(export, "headless (the default for export)")

    bench = sub.add_parser(
        "bench",
        help="measure training and evaluation speed on this machine",
        description=(
            "Benchmark images/s of our engine against a seed-style DataLoader loop for each "
            "model, on the current device. Headless by default."
        ),
    )
    from cnn_tui.bench import args as bench_args

    bench_args.add_arguments(bench)
    _add_no_ui(bench, "headless (the default for bench)")
    return parser


def one_line(message: object) -> str:
    """An error message as one line: control characters (a newline in a path) are escaped."""
    text = str(message)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except UsageError as exc:
        print(f"cnn-tui: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"cnn-tui: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # outside the training loop (which says so itself)
        full = disk_full(exc)
        if full is not None:
            print(f"cnn-tui: {one_line(full)}", file=sys.stderr)
            return 1
        bad_path = path_error(exc)  # a --json, -o or --runs-dir path that cannot be written
        if bad_path is None:
            raise
        print(f"cnn-tui: error: {one_line(bad_path)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnn-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> NoReturn:
    """The `cnn-tui` script and `python -m cnn_tui`: `main`, then exit.

    Once torch is loaded, a normal interpreter exit spends about a second tearing down its
    modules (simple-cnn's one-epoch run: 1.05 of 9.3 s). Every file a command writes is complete
    by the time `main` returns (atomic writes, flushed event lines), so after flushing stdout and
    stderr the process ends at once (`os._exit`) instead. Without torch, or under a profiler,
    a debugger or coverage (which write their results at exit), it exits as usual.
    """
    code = main()
    if "torch" not in sys.modules or sys.getprofile() or sys.gettrace():
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the terminal or the pipe has gone away
            pass
    os._exit(code)


# subcommand -> (module, function) of its headless handler; imported only when it runs
_HEADLESS = {
    "conv": ("cnn_tui.lessons.trace", "run_trace"),
    "pool": ("cnn_tui.lessons.trace", "run_trace"),
    "net": ("cnn_tui.lessons.net_trace", "run_net_trace"),
    "train": ("cnn_tui.training.headless", "run_train"),
    "eval": ("cnn_tui.training.headless", "run_eval"),
    "runs": ("cnn_tui.training.headless", "run_list"),
    "sweep": ("cnn_tui.training.runs.sweeps", "run_sweep"),
    "lr-find": ("cnn_tui.training.tools.lr_find", "run_lr_find"),
    "bench": ("cnn_tui.bench.measure", "run_bench"),
    "inspect": ("cnn_tui.training.tools.inspect", "run_inspect"),
    "predict": ("cnn_tui.training.tools.predict", "run_predict"),
    "export": ("cnn_tui.training.tools.export", "run_export"),
}


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command is None and args.no_ui:
        parser.print_help()
        return 0
    # bench, lr-find, predict and export are headless only; so is sweep --stop
    headless_only = args.command in ("bench", "lr-find", "predict", "export") or getattr(
        args, "stop", None
    )
    if headless_only or (args.command is not None and args.no_ui):
        import importlib

        module_name, function_name = _HEADLESS[args.command]
        handler = getattr(importlib.import_module(module_name), function_name)
        return handler(args)
    from cnn_tui.ui.app import run_app

    return run_app(args)
