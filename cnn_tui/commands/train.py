"""`cnn-tui train`: the training form, or (--no-ui) a run trained in this process.

The flags become a `trainer.TrainRequest` (the settings layered from --preset, --config and the
flags, the run directory, --resume and what it changes, the machines of a data-parallel run);
`trainer.train` runs it and tells a reporter of `train_report` what happens. Exit codes: 0
finished, 1 failed, 2 usage error, 3 the run folder was deleted while training
(`store.RunFolderGone`), 130 stopped. With --devices N this process launches N ranks,
each a `cnn-tui train --no-ui` started with the command line `rank_args` writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui import catalog
from cnn_tui.commands import train_flags, tui
from cnn_tui.errors import UsageError

if TYPE_CHECKING:
    from cnn_tui.training.config import TrainConfig
    from cnn_tui.training.loop.trainer import TrainRequest
    from cnn_tui.ui.training.form import TrainFormSettings

# flags that --resume refuses: the run has its own settings
NOT_WITH_RESUME = ("preset", "config", "run_dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train_flags.add_arguments(parser, node_flags=True)


def run(args: argparse.Namespace) -> int:
    if not args.no_ui:
        if args.resume:  # a run of your own class: refused untrusted before the app opens
            from cnn_tui.training.models import own

            own.check_run(args.resume, trusted=args.trust_model_code)
        return tui.open_app("train", form_settings(args), runs_dir=args.run_folders)
    return run_headless(args)


def form_texts(args: argparse.Namespace) -> dict[str, str]:
    """The settings given as flags, as typed (on/off for the switches): the form shows a bad one
    beside its field instead of refusing to open."""
    return {
        name: value if isinstance(value, str) else ("on" if value else "off")
        for name, value in train_flags.given_flags(args).items()
    }


def form_settings(args: argparse.Namespace) -> TrainFormSettings:
    """What the training form opens with: the settings' sources and texts, the run to start."""
    from cnn_tui.ui.training.form import TrainFormSettings

    return TrainFormSettings(
        preset=args.preset,
        config_file=args.config,
        texts=form_texts(args),
        start=args.start,
        run_dir=args.run_dir,
        resume=args.resume,
        trust_model_code=args.trust_model_code,
    )


def request_from_args(args: argparse.Namespace) -> TrainRequest:
    """The typed request of `cnn-tui train --no-ui`; a bad flag is a UsageError."""
    from cnn_tui.training.loop import trainer
    from cnn_tui.training.loop.distributed import Nodes
    from cnn_tui.training.loop.trainer import TrainRequest

    nnodes = 1 if args.nnodes is None else args.nnodes  # (0 is refused, not read as 1)
    nodes = Nodes(nnodes, args.node_rank or 0, args.rdzv_endpoint)
    runs_dir = Path(args.runs_dir)
    if args.resume:
        other = [name for name in NOT_WITH_RESUME if getattr(args, name)]
        if other:
            flags = ", ".join("--" + name.replace("_", "-") for name in other)
            raise UsageError(
                f"--resume continues {args.resume} with its own settings; only "
                f"{trainer.resumable_flags()} may be given with it (got {flags})"
            )
        changes = train_flags.given_settings(args)
        return TrainRequest(
            resume=Path(args.resume),
            changes=changes,
            runs_dir=runs_dir,
            nodes=nodes,
            trust_model_code=args.trust_model_code,
        )
    run_dir = Path(args.run_dir) if args.run_dir else None
    config = train_flags.config_from_args(args)
    if config.model.startswith(catalog.ZOO_PREFIX):  # a bad name: before a run folder is made
        from cnn_tui.training.models import zoo

        size = config.image_size or catalog.DATASETS[config.dataset].image_size
        zoo.check_before_run(config.model, size)
    if catalog.is_own(config.model):  # its file, class and a dry forward: before a run folder
        named_in_file = getattr(args, "model", None) is None and getattr(args, "config", None)
        what = f"{args.config}: model" if named_in_file else "--model"
        check_own_model(config, what, keep=True)  # (built once: the run takes the model)
    return TrainRequest(config=config, run_dir=run_dir, runs_dir=runs_dir, nodes=nodes)


def check_own_model(config: TrainConfig, what: str = "--model", keep: bool = False) -> None:
    """--model FILE.py:Class / module:Class checked before anything is written: the file runs,
    the class is built for the data set and one dry forward gives (N, K) logits; a forward that
    seems to return probabilities is a warning on stderr (training goes on). `keep`: the run
    trains in this process next and takes the model built here (`own.check_before_run`)."""
    from cnn_tui.training.models import own

    sizes = own.sizes_for(config)
    if sizes is None:  # an image folder not there yet: its loader says so, one line too
        return
    seed = config.seed if keep else None
    model = own.check_before_run(config.model, sizes, what, seed)  # (`what`: where it was named)
    if model is not None and (warning := own.warning_of(model)):
        print(f"cnn-tui: warning: {warning}", file=sys.stderr)  # (one_line'd by `own`)


def rank_args(
    request: TrainRequest, output: list[str], config: TrainConfig, run_dir: Path
) -> list[str]:
    """The `cnn-tui` command line of each rank: the run's settings given in full (or --resume
    with what may change), so that every rank, on any machine, trains the same run."""
    if request.resume is not None:
        changes: dict[str, Any] = {**request.changes, "device": config.device}
        trust = ["--trust-model-code"] if request.trust_model_code else []
        where = ["--resume", str(run_dir), *trust, *train_flags.setting_flags(changes)]
    else:
        where = ["--run-dir", str(run_dir), *train_flags.config_flags(config)]
    return ["train", "--no-ui", *output, *where]


def run_headless(args: argparse.Namespace) -> int:
    """`cnn-tui train --no-ui`: 0 finished, 1 failed (raised), 130 stopped."""
    import functools
    import time

    started = time.time()  # the run's wall time includes loading torch (imported below)

    from cnn_tui.commands import output as output_module
    from cnn_tui.commands import train_report
    from cnn_tui.training.loop import trainer
    from cnn_tui.training.runs.output_log import teeing

    if args.json_file:
        run_dir = args.resume or args.run_dir
        output_module.check_output(args.json_file, "--json-file", run_dir)
    with output_module.user_prints_to_stderr(args):  # (--model's file runs: `check_own_model`)
        request = request_from_args(args)
    output = (["--json"] if args.json else []) + (
        [f"--json-file={args.json_file}"] if args.json_file else []
    )
    rank = functools.partial(rank_args, request, output)
    # stdout and stderr teed before the reporter takes stdout: once the trainer holds its run,
    # what they print goes into its output.log as well (output_log.keep_output)
    with teeing():
        reporter = train_report.make_reporter(
            sys.stdout, json_stdout=bool(args.json), json_file=args.json_file
        )
        with output_module.user_prints_to_stderr(args):  # (the reporter holds stdout)
            return trainer.train(request, reporter, rank, started=started)
