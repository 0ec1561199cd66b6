"""`cnn-tui sweep`: a grid of training settings as runs, compared in a table.

The flags are the train flags (the base settings) plus --grid, --sort, --show, --stop and
--detach. They become a checked `sweeps.SweepPlan` (a new sweep), a sweep folder to show, stop or
resume, or the sweep screen's `SweepSettings`; `sweeps.run_queue` trains the runs and
`sweep_report` prints how it goes. Exit codes (--no-ui): 0 every run finished, 1 some failed,
2 usage error, 130 stopped. Every bad flag is one line, exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_tui.commands import output, train_flags, tui
from cnn_tui.errors import UsageError
from cnn_tui.fileio import json_text
from cnn_tui.text import one_line
from cnn_tui.training.config import FIELDS, layer_settings
from cnn_tui.training.runs import sweeps
from cnn_tui.training.runs.state import BUSY, RunState, label
from cnn_tui.training.runs.store import trainer_host

if TYPE_CHECKING:
    from cnn_tui.ui.training.sweep import SweepSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130
SOURCES = ("preset", "config", "run_dir")  # flags of a new sweep besides the settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`cnn-tui sweep`: the train flags (the base settings) plus the grid and sweep options."""
    train_flags.add_arguments(parser)
    helps = {
        "run_dir": "where to write the sweep (default: a new runs/sweep-... folder)",
        "resume": "continue a stopped sweep: finished runs are kept, stopped ones resume, "
        "pending ones start",
        "start": "start the sweep at once (TUI; skips the form)",
        "json": "print JSON lines only, the table last (--no-ui)",
        "json_file": "also write those JSON lines to FILE (written whole when the queue ends)",
        "device": "auto (every GPU, else the CPU), cpu, cuda:N or a list such as cuda:0,cuda:1: "
        "one run at a time per device",
    }
    for action in parser._actions:  # argparse has no public way to reword a help text
        if action.dest in helps:
            action.help = helps[action.dest]
    sweep = parser.add_argument_group("the sweep")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2[,...]",
        help=f"a setting and its values; several --grid flags make their product (at most "
        f"{sweeps.MAX_RUNS} runs)",
    )
    sweep.add_argument(
        "--sort",
        choices=sweeps.SORT_KEYS,
        default=None,
        help=f"order of the comparison table (default: {sweeps.DEFAULT_SORT}, the best first)",
    )
    sweep.add_argument(
        "--show",
        metavar="SWEEP_DIR",
        type=output.path_argument,
        help="show the table of an existing sweep",
    )
    sweep.add_argument(
        "--stop",
        metavar="SWEEP_DIR",
        type=output.path_argument,
        help="stop a sweep running in the background and exit",
    )
    sweep.add_argument(
        "--detach",
        action="store_true",
        help="--no-ui: run the queue in the background (survives logging out) and return",
    )


def run(args: argparse.Namespace) -> int:
    for flag in ("show", "stop", "resume"):
        if getattr(args, flag):
            check_exclusive(args, flag)
    if args.no_ui or args.stop:  # sweep --stop is headless only
        return run_headless(args)
    # a bad grid or sweep folder: one line, exit 2, before the app
    return tui.open_app("sweep", sweep_settings(args), runs_dir=args.run_folders)


# --- flags -> typed settings ------------------------------------------------------------------


def check_exclusive(args: argparse.Namespace, flag: str) -> None:
    """--show, --stop and --resume each name an existing sweep: one of them at a time, and
    --show / --stop without settings."""
    others = [
        name for name in ("show", "resume", "stop") if name != flag and getattr(args, name, None)
    ]
    if others:
        raise UsageError(f"--{flag} cannot be combined with --{others[0]}")
    if flag in ("show", "stop"):
        extra = list(train_flags.given_flags(args)) + (["grid"] if args.grid else [])
        extra += [name for name in SOURCES if getattr(args, name, None)]
        if extra:
            raise UsageError(
                f"--{flag} reads an existing sweep; settings such as --{extra[0].replace('_', '-')} "
                "do not apply"
            )


def plan_from_args(args: argparse.Namespace) -> sweeps.SweepPlan:
    """The plan of `cnn-tui sweep [train flags] --grid ...`; UsageError before anything is written.

    A setting may come from the preset or config file and be varied by the grid (the grid wins
    there), but not be given both as a flag and in the grid: that is refused as ambiguous.
    """
    grid = sweeps.parse_grid(args.grid or [])
    flags = train_flags.given_flags(args)
    device_spec = str(flags.pop("device", "") or "")
    both = [name for name in grid if name in flags]
    if both:
        name = both[0]
        raise UsageError(
            f"{FIELDS[name].flag} is given both as a flag and in --grid {name.replace('_', '-')}="
            f"...; keep one (the flag for one value, the grid for several)"
        )
    base = layer_settings(preset=args.preset, config_file=args.config, flags=flags)
    if not device_spec:
        device_spec = base.device
    if args.run_dir:
        sweeps.check_new_sweep_dir(Path(args.run_dir))
    return sweeps.make_plan(base, grid, device_spec, args.sort)


def resume_devices(args: argparse.Namespace, manifest: dict) -> list[str]:
    """--resume takes --device and --sort only; the devices default to the manifest's."""
    other = [name for name in train_flags.given_flags(args) if name != "device"]
    other += [flag for flag in SOURCES if getattr(args, flag, None)]
    other += ["grid"] if getattr(args, "grid", None) else []
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise UsageError(
            f"--resume continues the sweep with its own settings and grid; only --device and "
            f"--sort may be given with it (got {flags})"
        )
    return sweeps.resume_devices(manifest, getattr(args, "device", None))


def sweep_settings(args: argparse.Namespace) -> SweepSettings:
    """What the TUI opens, checked before it opens (bad flags: one line, exit 2, no screen): the
    sweep screen of --show or --resume, else the sweep form filled from the flags."""
    from cnn_tui.commands.train import form_texts
    from cnn_tui.ui.training.sweep import SweepSettings

    show, resume = getattr(args, "show", None), getattr(args, "resume", None)
    sort = getattr(args, "sort", None)
    if show:
        sweeps.read_manifest(show)
        return SweepSettings(show=show, sort=sort)
    if resume:
        resume_devices(args, sweeps.check_resumable(resume))
        return SweepSettings(resume=resume, sort=sort, texts=form_texts(args))
    grid = sweeps.parse_grid(getattr(args, "grid", None) or [])
    sweeps.check_grid_size(grid)
    return SweepSettings(
        preset=getattr(args, "preset", None),
        config_file=getattr(args, "config", None),
        texts=form_texts(args),
        start=bool(getattr(args, "start", False)),
        run_dir=getattr(args, "run_dir", None),
        grid=grid,
        sort=sort,
    )


# --- `cnn-tui sweep --no-ui` ------------------------------------------------------------------


def show(args: argparse.Namespace) -> int:
    """`--show SWEEP_DIR`: the sweep's table (or the table as one JSON document)."""
    from cnn_tui.commands.sweep_report import format_table, grid_text, table_json

    sweep_dir = Path(args.show)
    manifest = sweeps.read_manifest(sweep_dir)
    sort = args.sort or manifest.get("sort") or sweeps.DEFAULT_SORT
    rows = sweeps.sweep_rows(sweep_dir, manifest)
    state, status = sweeps.sweep_state(sweep_dir)
    table = table_json(sweep_dir, manifest, rows, sort, state)
    if args.json_file:
        output.write_json(table, args.json_file)
    if args.json:
        output.say(json_text(table))  # (unflushed: a reader gone early is no error)
        return EXIT_OK
    shown = label(RunState(state), host=trainer_host(status)) if state in BUSY else state
    output.say(f"sweep {one_line(sweep_dir)} ({shown}) — grid: {grid_text(manifest)}")
    output.say(*format_table(rows, list(manifest["grid"]), sort))
    output.say(sweeps.summary_line(rows))
    return EXIT_OK


def stop(sweep_dir: str) -> int:
    """`--stop SWEEP_DIR`: SIGTERM to its queue runner (its runs checkpoint and stop), once its
    identity is checked; a runner on another machine is left alone (exit 1, saying so)."""
    sweeps.read_manifest(sweep_dir)
    answer = sweeps.stop_sweep(sweep_dir)
    if answer:
        output.say(
            f"asked sweep {one_line(sweep_dir)} to stop: its runs save a checkpoint and stop"
        )
        return EXIT_OK
    output.say(f"sweep {one_line(sweep_dir)} {answer.reason}")
    return EXIT_FAILED if answer.host else EXIT_OK


def run_headless(args: argparse.Namespace) -> int:
    """`cnn-tui sweep --no-ui`: 0 every run finished, 1 some failed, 130 stopped."""
    from cnn_tui.commands import sweep_report
    from cnn_tui.fileio import check_output_path
    from cnn_tui.training.loop.trainer import stop_on_signals

    if args.json_file:
        check_output_path(args.json_file, "--json-file")
    if args.show:
        return show(args)
    if args.stop:
        return stop(args.stop)
    if args.resume:
        sweep_dir = Path(args.resume)
        devices = resume_devices(args, sweeps.check_resumable(sweep_dir))
    else:
        plan = plan_from_args(args)
        sweep_dir = sweeps.create_sweep(plan, args.runs_dir, args.run_dir)
        devices = plan.devices
    total = len(sweeps.read_manifest(sweep_dir)["runs"])
    if args.detach:
        pid = sweeps.launch_sweep(sweep_dir, devices, args.sort)
        where = one_line(sweep_dir)
        output.say(
            f"sweep dir: {where}",
            f"the queue runs in the background (pid {pid}, output in {where}/output.log)",
            f"table: cnn-tui sweep --show {where} --no-ui; stop: cnn-tui sweep --stop {where}",
        )
        return EXIT_OK
    reporter = sweep_report.make_reporter(
        sys.stdout, total, json_stdout=bool(args.json), json_file=args.json_file
    )
    stopping = threading.Event()
    with stop_on_signals(stopping, lambda text: print(f"cnn-tui: {text}", file=sys.stderr)):
        state = sweeps.run_queue(sweep_dir, devices, reporter, stopping, sort=args.sort)
    if state == sweeps.SweepState.STOPPED:
        return EXIT_STOPPED
    failed = any(row["status"] == RunState.FAILED for row in sweeps.sweep_rows(sweep_dir))
    return EXIT_FAILED if failed else EXIT_OK
