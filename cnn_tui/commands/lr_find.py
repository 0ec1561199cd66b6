"""`cnn-tui lr-find`: the learning-rate range test, headless.

The train flags (`train_flags`, without the run's own) become a `TrainConfig`; the test's flags
(`--steps`, `--start-lr`, `--end-lr`) are checked here and passed to the core's
`tools.lr_find.range_test`. Printed: a progress bar and the plot on a terminal, then one line with
the suggestion; the curve as JSON with `--json` (stdout), `-o FILE`, `--json FILE` or
`--json-file FILE` (then "curve written to FILE" on stderr).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from cnn_tui import text
from cnn_tui.commands import output

if TYPE_CHECKING:
    from cnn_tui.training.tools.lr_find import Curve


def _positive_lr(value: str) -> float:
    from cnn_tui.training.tools.lr_find import MAX_LR

    try:
        lr = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise argparse.ArgumentTypeError(
            f"expected a learning rate in (0, {MAX_LR:g}], got {value}"
        )
    return lr


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.commands import train_flags
    from cnn_tui.commands.count_flags import add_count
    from cnn_tui.training.tools import lr_find

    test = parser.add_argument_group("the range test")
    add_count(
        test,
        "--steps",
        low=lr_find.MIN_STEPS,
        high=lr_find.MAX_STEPS,
        help=f"batches to train at most (default: {lr_find.CPU_STEPS} on the CPU, "
        f"{lr_find.GPU_STEPS} on a GPU)",
    )
    test.add_argument(
        "--start-lr",
        type=_positive_lr,
        default=lr_find.START_LR,
        metavar="LR",
        help=f"learning rate of the first batch (default: {lr_find.START_LR:g})",
    )
    test.add_argument(
        "--end-lr",
        type=_positive_lr,
        default=lr_find.END_LR,
        metavar="LR",
        help=f"learning rate of the last batch (default: {lr_find.END_LR:g})",
    )
    what = "the curve (lrs, losses, smoothed, the suggestions)"
    output.add_json_arguments(test, what, file_after_json=True)
    written = test.add_argument(
        "-o",
        "--output",
        dest="json",
        action=output.FileFlag,
        metavar="FILE",
        type=output.path_argument,
        help="write the curve as JSON to FILE (the same as --json FILE)",
    )
    output.chooses_output(written)
    train_flags.add_arguments(parser, run_flags=False)


def run(args: argparse.Namespace) -> int:
    """The range test, the suggestion (a line; the plot on a terminal) and the JSON asked for."""
    from cnn_tui.commands.train_flags import config_from_args
    from cnn_tui.errors import RunError
    from cnn_tui.training.tools import lr_find

    lr_find.check_range(args.start_lr, args.end_lr, args.steps)
    config = config_from_args(args)
    target = output.json_target(args)
    tty = sys.stdout.isatty()
    progress = _TerminalProgress() if tty else None
    try:
        curve = lr_find.range_test(
            config,
            steps=args.steps,
            start_lr=args.start_lr,
            end_lr=args.end_lr,
            on_step=progress.step if progress else None,
        )
    finally:
        if progress is not None:
            progress.close()
    if target is not None:
        output.write_json(curve.to_dict(), target)
    line = summary_line(curve)
    if target != output.STDOUT and tty and curve.lrs:
        import shutil

        width, height = shutil.get_terminal_size((100, 30))
        print(lr_find.plot_text(curve, min(width, 120), max(12, min(height - 4, 24))))
    if curve.suggestion is None:
        raise RunError(line)
    if target == output.STDOUT:
        return 0
    print(line, flush=True)
    if target is not None:
        print(f"curve written to {text.one_line(target)}", file=sys.stderr)
    return 0


def summary_line(curve: Curve) -> str:
    """One line: the suggestion, which rule gave it, the other one, and how the test ended."""
    from cnn_tui.training.tools.lr_find import RULES

    suggestion = curve.suggestion
    ended = f"{len(curve.lrs)} of {curve.steps} steps"
    if curve.stopped != "steps":
        ended += f", {curve.message}"
    if suggestion is None:
        return f"no suggestion: too few steps with a finite loss ({ended}); lower --start-lr"
    other = suggestion.other_lr
    other_text = text.number(other, ".2e") if other is not None else "none (the loss never falls)"
    return (
        f"suggested lr {text.number(suggestion.lr, '.2e')} ({RULES[suggestion.rule]}; "
        f"{RULES[suggestion.other_rule]}: {other_text}; lowest smoothed loss "
        f"{text.number(suggestion.minimum_loss, '.4f')} at lr "
        f"{text.number(suggestion.minimum_lr, '.2e')}) — {ended}"
    )


class _TerminalProgress:
    """A transient progress bar while the test trains (a terminal only)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]lr-find"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("lr {task.fields[lr]}  loss {task.fields[loss]}"),
            transient=True,
        )
        self.task = None

    def step(self, step: int, steps: int, lr: float, loss: float, smoothed: float) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("lr", total=steps, lr="", loss="")
        self.progress.update(
            self.task,
            completed=step,
            lr=text.number(lr, ".2e"),
            loss=text.number(smoothed, ".4f"),
        )

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
