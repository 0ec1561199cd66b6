"""The edge of the package: one module per subcommand.

Each command module defines `add_arguments(parser)` (its flags) and `run(args) -> int`: it turns
the parsed flags into typed settings, calls the core, and prints what the command prints (through
`output`) or opens its screen (through `tui`). `COMMANDS` is the one registry of subcommands that
`cnn_tui.cli` builds its parser from and `cnn_tui.ui` reads to open a subcommand's screen.

Beside the subcommands: `output` (text, tables, the `--json` convention), `tui` (handing over to
the app), the flag builders shared by several commands (`train_flags`, `tool_flags`,
`lesson_flags`), the printed reports (`train_report`, `sweep_report`) and two command lines the
core starts as processes (`sweep_runner`, `reference_loop`).

Command modules import the core lazily, inside `run`: building the parser for `cnn-tui --help`
imports neither torch, numpy nor textual.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


def _models_text() -> str:
    """The models of `train` by kind, as the catalog lists them (`train --help`)."""
    from cnn_tui import catalog

    def names(kind: str) -> str:
        return ", ".join(name for name, model in catalog.MODELS.items() if model.kind == kind)

    return (
        f"a small CNN ({names(catalog.SMALL_CNN)}) or a fast network ({names(catalog.FAST)}) "
        f"from scratch, or a torchvision backbone ({names(catalog.BACKBONE)}) from scratch or "
        "fine-tuned from its ImageNet weights"
    )


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, the module that implements it and its help texts."""

    name: str
    module: str  # under cnn_tui.commands
    help: str  # one line in `cnn-tui --help`
    description: str  # the top of `cnn-tui NAME --help`
    no_ui_help: str  # what --no-ui does for this command
    screen: bool = True  # opens a screen unless --no-ui

    def load(self) -> ModuleType:
        return importlib.import_module(f"cnn_tui.commands.{self.module}")


_LESSON_NO_UI = "print the arrays, the steps and the result to stdout"

COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command(
            "conv",
            "conv",
            "step through a naive 2-D convolution, forward and backward",
            "Step through a naive convolution computed with plain nested loops. Opens the "
            "lesson screen; with --no-ui prints a trace of every step (or a summary).",
            _LESSON_NO_UI,
        ),
        Command(
            "pool",
            "pool",
            "step through naive max / average pooling, forward and backward",
            "Step through naive pooling computed with plain nested loops. Opens the lesson "
            "screen; with --no-ui prints a trace of every step (or a summary).",
            _LESSON_NO_UI,
        ),
        Command(
            "net",
            "net",
            "step through a whole tiny network: forward, loss, backward, SGD or Adam steps",
            "Step through a whole tiny network (conv, ReLU, max-pool, flatten, linear, softmax "
            "cross-entropy) on one image: forward, the loss, backward layer by layer, an SGD or "
            "Adam step and the loss after it, for --steps training steps with the loss of each "
            "drawn as a curve. Opens the lesson screen; with --no-ui prints a trace.",
            "print every layer's steps, the update and the loss after each training step, and "
            "the summary, to stdout",
        ),
        Command(
            "batchnorm",
            "batchnorm",
            "step through naive batch normalisation: mean, variance, normalise, backward",
            "Step through batch normalisation in training mode, computed with plain nested "
            "loops: each channel's mean and variance over the batch, the normalised x̂, "
            "y = γ·x̂ + β, the running statistics, and backward through γ, β, x̂, the variance "
            "and the mean. Opens the lesson screen; with --no-ui prints a trace.",
            _LESSON_NO_UI,
        ),
        Command(
            "dropout",
            "dropout",
            "step through naive dropout: the mask, the scaling, backward through the mask",
            "Step through dropout in training mode, computed with plain nested loops: the mask "
            "drawn from the seed, y = x·mask/(1 − p) and dx = dy·mask/(1 − p). Opens the "
            "lesson screen; with --no-ui prints a trace.",
            _LESSON_NO_UI,
        ),
        Command(
            "train",
            "train",
            "train a CNN (opens the training form; --no-ui trains headless)",
            f"Train {_models_text()}. Opens the training form filled from the flags; with "
            "--no-ui trains headless and writes a run directory.",
            "train in this process and print progress (for scripts, nohup, CI)",
        ),
        Command(
            "eval",
            "evaluate",
            "recompute the test metrics of a run from its checkpoint",
            "Recompute test accuracy, per-class metrics and the confusion matrix of a run.",
            "print the metrics instead of opening the results screen",
        ),
        Command(
            "runs",
            "runs",
            "list training runs",
            "List the runs under --runs-dir (of each folder, when it is given several times or "
            "as a glob) with their status and metrics.",
            "print the table instead of opening the runs screen",
        ),
        Command(
            "lr-find",
            "lr_find",
            "find a learning rate: the exponential range test (headless)",
            "The learning-rate range test (Smith 2015, as fastai's lr_find): train up to --steps "
            "batches of the run's settings while the learning rate grows exponentially from "
            "--start-lr to --end-lr, stop when the smoothed loss diverges, and suggest a learning "
            "rate. Prints the suggestion (and the curve on a terminal); nothing of a run is "
            "written or changed.",
            "lr-find always does (the training form's Find LR runs it in the TUI)",
            screen=False,
        ),
        Command(
            "sweep",
            "sweep",
            "train a grid of settings as runs and compare them (opens the sweep form)",
            "Train every combination of --grid KEY=V1,V2 on top of the train flags, one run at a "
            "time per device, and compare them in a table. Opens the training form in sweep "
            "mode; with --no-ui runs the queue here and prints the table at the end.",
            "run the queue in this process, print progress and the table",
        ),
        Command(
            "inspect",
            "inspect",
            "look inside a trained run: feature maps, filters, probabilities, Grad-CAM",
            "Run one image (a test image of the run, or a file) through a trained run's network "
            "and show every stage's feature maps, the first layer's filters, the class "
            "probabilities and Grad-CAM for the predicted and the true class. Opens the Inside "
            "screen; with --no-ui prints a report (--json FILE: probabilities, Grad-CAM maps "
            "and per-layer statistics for scripts).",
            "print a report (and write --json FILE) instead of opening the screen",
        ),
        Command(
            "predict",
            "predict",
            "a trained run's top-k classes for image files or folders (headless)",
            "Predict image files with a trained run, through the run's own preprocessing: top-k "
            "classes with probabilities (the image drawn on a terminal); a folder gives a table "
            "and a summary, with the accuracy when its sub-folders are named after classes.",
            "headless (the default for predict)",
            screen=False,
        ),
        Command(
            "export",
            "export",
            "export a trained run's model as TorchScript, torch.export or ONNX (headless)",
            "Write a run's model as one file: TorchScript, a torch.export .pt2 archive, or ONNX "
            "(needs pip install 'cnn-tui[onnx]'). The file is checked against the run's model "
            "on test images before it is written.",
            "headless (the default for export)",
            screen=False,
        ),
        Command(
            "bench",
            "bench",
            "measure training and evaluation speed on this machine",
            "Benchmark images/s of our engine against a seed-style DataLoader loop for each "
            "model, on the current device. Headless by default.",
            "headless (the default for bench)",
            screen=False,
        ),
    )
}
