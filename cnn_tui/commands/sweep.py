"""`cnn-tui sweep`: a grid of training settings as runs, or a search, compared in a table.

The flags are the train flags (the base settings) plus --grid, --sort, --show, --stop and
--detach, or --search optuna with --space, --trials, --pruner, --storage and --study (a search:
`training/runs/search.py`). They become a checked `sweeps.SweepPlan` or `search.SearchPlan` (a
new sweep), a sweep folder to show, stop or resume, or the sweep screen's `SweepSettings`;
`sweeps.run_queue` trains the runs and `sweep_report` prints how it goes. Rerunning a search with
the same --run-dir resumes it. Exit codes (--no-ui): 0 every run finished, 1 some failed,
2 usage error, 130 stopped. Every bad flag is one line, exit 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui import catalog
from cnn_tui.commands import output, train_flags, tui
from cnn_tui.commands.count_flags import add_count
from cnn_tui.errors import UsageError
from cnn_tui.fileio import json_text
from cnn_tui.text import one_line
from cnn_tui.training.config import FIELDS, layer_settings
from cnn_tui.training.runs import search, sweeps
from cnn_tui.training.runs.state import BUSY, RunState, label
from cnn_tui.training.runs.store import trainer_host

if TYPE_CHECKING:
    from cnn_tui.ui.training.sweep import SweepSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130
SOURCES = ("preset", "config", "run_dir")  # flags of a new sweep besides the settings
# the flags of a search besides --search (refused without it)
SEARCH_FLAGS = ("space", "trials", "pruner", "prune_startup", "prune_warmup", "storage", "study")


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
    group = parser.add_argument_group(
        "the search (instead of a grid; needs the extra 'search': pip install 'cnn-tui[search]')"
    )
    group.add_argument(
        "--search",
        choices=search.SAMPLERS,
        default=None,
        help="search the space with Optuna's TPE sampler (seeded from --seed) and median pruner",
    )
    group.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="KEY=SPEC",
        help="a setting to search: log:LOW:HIGH, float:LOW:HIGH[:STEP], int:LOW:HIGH[:STEP] or "
        "V1,V2,... (e.g. lr=log:1e-4:1e-1 batch-size=32,64,128)",
    )
    add_count(
        group,
        "--trials",
        low=1,
        high=search.MAX_TRIALS,
        default=None,
        help=f"how many trials the study runs in all (default {search.DEFAULT_TRIALS})",
    )
    group.add_argument(
        "--pruner",
        choices=search.PRUNERS,
        default=None,
        help="median: stop a trial whose val acc is below the median of the complete trials at "
        "the same epoch (default); none: every trial trains to its end",
    )
    add_count(
        group,
        "--prune-startup",
        low=0,
        high=search.MAX_TRIALS,
        default=None,
        help=f"complete trials before any is pruned (default {search.DEFAULT_STARTUP_TRIALS})",
    )
    add_count(
        group,
        "--prune-warmup",
        low=0,
        high=10_000,
        default=None,
        metavar="EPOCHS",
        help=f"epochs a trial trains before it may be pruned (default {search.DEFAULT_WARMUP_EPOCHS})",
    )
    group.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="the study's database (default: sqlite:///SWEEP_DIR/study.db); several processes or "
        "machines with the same --storage and --study share one study",
    )
    group.add_argument(
        "--study",
        metavar="NAME",
        default=None,
        help="the study's name in --storage (default: the sweep folder's name)",
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
        extra += [
            name
            for name in ("search", *SEARCH_FLAGS)
            if getattr(args, name, None) and name != "storage"
        ]
        if extra:
            raise UsageError(
                f"--{flag} reads an existing sweep; settings such as --{extra[0].replace('_', '-')} "
                "do not apply"
            )


def check_search_flags(args: argparse.Namespace) -> None:
    """--grid and --search exclude each other; the search's flags need --search."""
    if getattr(args, "search", None):
        if getattr(args, "grid", None):
            raise UsageError(
                "--grid and --search exclude each other: a search takes its settings from "
                "--space KEY=SPEC"
            )
        return
    given = [name for name in SEARCH_FLAGS if getattr(args, name, None) not in (None, [])]
    if given and not getattr(args, "resume", None):
        raise UsageError(f"--{given[0].replace('_', '-')} belongs to a search: add --search optuna")


def search_options(args: argparse.Namespace) -> dict[str, object]:
    """The search's pruner and storage options from the flags (defaults where not given)."""
    options: dict[str, object] = {
        "pruner": args.pruner or "median",
        "startup_trials": search.DEFAULT_STARTUP_TRIALS,
        "warmup_epochs": search.DEFAULT_WARMUP_EPOCHS,
        "storage": args.storage or None,
        "study": args.study or None,
    }
    for flag, key in (("prune_startup", "startup_trials"), ("prune_warmup", "warmup_epochs")):
        if getattr(args, flag) is not None:  # (bounded by argparse: `add_count`)
            options[key] = getattr(args, flag)
    if options["pruner"] == "none" and (args.prune_startup is not None or args.prune_warmup):
        raise UsageError(
            "--prune-startup and --prune-warmup set the median pruner; not --pruner none"
        )
    if args.study is not None and not args.study.strip():
        raise UsageError("--study needs a name")
    if args.study is not None:
        options["study"] = args.study.strip()
        from cnn_tui.text import control_character

        if control_character(args.study) is not None:
            raise UsageError("--study must not hold control characters")
    if args.storage is not None and "://" not in args.storage:
        raise UsageError(
            f"--storage {one_line(args.storage)}: expected a database URL such as "
            "sqlite:///path/study.db or postgresql://user@host/db"
        )
    return options


def plan_from_args(args: argparse.Namespace) -> sweeps.SweepPlan | search.SearchPlan:
    """The plan of `cnn-tui sweep [train flags] --grid ...` (or `--search optuna --space ...`);
    UsageError before anything is written.

    A setting may come from the preset or config file and be varied by the grid (the grid wins
    there), but not be given both as a flag and in the grid: that is refused as ambiguous.
    """
    check_search_flags(args)
    if args.search:
        search.load_optuna()  # missing: one line naming the extra, before anything is written
        space = search.parse_space(args.space or [])
        grid: dict = dict(space)  # (for the checks below: the keys varied)
    else:
        grid = sweeps.parse_grid(args.grid or [])
    flags = train_flags.given_flags(args)
    device_spec = str(flags.pop("device", "") or "")
    both = [name for name in grid if name in flags]
    if both:
        name = both[0]
        what = "--space" if args.search else "--grid"
        raise UsageError(
            f"{FIELDS[name].flag} is given both as a flag and in {what} {name.replace('_', '-')}="
            f"...; keep one (the flag for one value, {what} for several)"
        )
    base = layer_settings(preset=args.preset, config_file=args.config, flags=flags)
    if not device_spec:
        device_spec = base.device
    if args.search:
        trials = search.DEFAULT_TRIALS if args.trials is None else args.trials
        options = search_options(args)
        if args.run_dir and not same_search_dir(args.run_dir):
            sweeps.check_new_sweep_dir(Path(args.run_dir))
        plan = search.make_search_plan(base, space, trials, device_spec, args.sort, **options)
        if plan.storage:
            search.check_storage(plan.storage)
        check_models(plan)
        return plan
    if args.run_dir:
        sweeps.check_new_sweep_dir(Path(args.run_dir))
    sweep_plan = sweeps.make_plan(base, grid, device_spec, args.sort)
    check_models(sweep_plan)
    return sweep_plan


def check_models(plan: sweeps.SweepPlan | search.SearchPlan) -> None:
    """Every model the sweep would build that may not take its settings (`model_checks`: each
    distinct build of its runs, or of the search's choices and range ends), checked before a
    sweep folder is made: your own class as `train` checks one (its file runs, the class is
    built, one dry forward); a torchvision model's name and image size against its weights'
    meta, as `train` checks one, then the model built on the meta device (no weights, no
    arithmetic: `sizes.measure`). One line naming the runs it stops, exit 2."""
    from cnn_tui.commands.train import check_own_model

    for check in plan.model_checks():
        config = check.config
        try:
            if catalog.is_own(config.model):
                check_own_model(config)
            else:
                from cnn_tui.training.models import sizes, zoo

                size = sizes.image_size_of(config)
                zoo.check_before_run(config.model, size, what=config.model)
                sizes.measure(config.model, size)
        except UsageError as exc:
            raise UsageError(check.problem(str(exc))) from None


def same_search_dir(run_dir: str) -> bool:
    """Whether --run-dir names a search's sweep folder already (the same command run again: it
    resumes, once `resume_same_search` found the same search there)."""
    return (Path(run_dir) / sweeps.SWEEP_FILE).is_file()


def resume_same_search(plan: search.SearchPlan, run_dir: str) -> Path:
    """The sweep folder of the same search run again (--run-dir): its manifest must hold this
    search (space, pruner, study, base settings), else one line says what differs. --trials
    may change: the search then runs until the study holds that many."""
    sweep_dir = Path(run_dir)
    manifest = sweeps.check_resumable(sweep_dir)
    if not search.is_search(manifest):
        raise UsageError(f"--run-dir {sweep_dir} holds a grid sweep; give a new folder")
    fresh = search.manifest_search(plan, sweep_dir)
    kept = manifest["search"]
    same = ("storage", "trials")
    differs = [key for key in fresh if key not in same and fresh[key] != kept.get(key)]
    if manifest["base"] != plan.base.to_dict():
        differs.insert(0, "base settings")
    if differs:
        raise UsageError(
            f"--run-dir {sweep_dir} holds another search ({differs[0]} differs); give a new "
            f"folder, or continue that one with --resume {sweep_dir}"
        )
    if kept.get("trials") != plan.trials:
        search.set_trials(sweep_dir, manifest, plan.trials)
    return sweep_dir


def resume_devices(args: argparse.Namespace, manifest: dict) -> list[str]:
    """--resume takes --device, --sort (and a search's --storage) only; the devices default to
    the manifest's."""
    other = [name for name in train_flags.given_flags(args) if name != "device"]
    other += [flag for flag in SOURCES if getattr(args, flag, None)]
    other += ["grid"] if getattr(args, "grid", None) else []
    other += [
        name
        for name in ("search", *SEARCH_FLAGS)
        if name != "storage" and getattr(args, name, None) not in (None, [])
    ]
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise UsageError(
            f"--resume continues the sweep with its own settings and grid; only --device and "
            f"--sort (and a search's --storage) may be given with it (got {flags})"
        )
    if getattr(args, "storage", None) and not search.is_search(manifest):
        raise UsageError("--storage belongs to a search; this sweep is a grid")
    return sweeps.resume_devices(manifest, getattr(args, "device", None))


def sweep_settings(args: argparse.Namespace) -> SweepSettings:
    """What the TUI opens, checked before it opens (bad flags: one line, exit 2, no screen): the
    sweep screen of --show or --resume, else the sweep form filled from the flags."""
    from cnn_tui.commands.train import form_texts
    from cnn_tui.ui.training.sweep import SweepSettings

    show, resume = getattr(args, "show", None), getattr(args, "resume", None)
    sort, storage = getattr(args, "sort", None), getattr(args, "storage", None)
    if show:
        sweeps.read_manifest(show)
        return SweepSettings(show=show, sort=sort)
    if resume:
        manifest = sweeps.check_resumable(resume)
        resume_devices(args, manifest)
        sweeps.check_trusted(resume, manifest, args.trust_model_code)
        if search.is_search(manifest):
            search.load_optuna()
            search.storage_url(Path(resume), manifest["search"], storage)
        return SweepSettings(
            resume=resume,
            sort=sort,
            texts=form_texts(args),
            search_options={"storage": storage},
            trust_model_code=args.trust_model_code,
        )
    check_search_flags(args)
    common: dict[str, Any] = {
        "preset": getattr(args, "preset", None),
        "config_file": getattr(args, "config", None),
        "texts": form_texts(args),
        "start": bool(getattr(args, "start", False)),
        "run_dir": getattr(args, "run_dir", None),
        "sort": sort,
    }
    if getattr(args, "search", None):
        search.load_optuna()
        specs = tuple(args.space or [])
        search.parse_space(list(specs))
        trials = search.DEFAULT_TRIALS if args.trials is None else args.trials
        if not 1 <= trials <= search.MAX_TRIALS:
            raise UsageError(f"--trials must be 1 to {search.MAX_TRIALS}, got {trials}")
        return SweepSettings(
            **common,
            search=True,
            space=specs,
            trials=trials,
            search_options=search_options(args),
        )
    grid = sweeps.parse_grid(getattr(args, "grid", None) or [])
    sweeps.check_grid_size(grid)
    return SweepSettings(**common, grid=grid)


# --- `cnn-tui sweep --no-ui` ------------------------------------------------------------------


def show(args: argparse.Namespace) -> int:
    """`--show SWEEP_DIR`: the sweep's table (or the table as one JSON document)."""
    from cnn_tui.commands.sweep_report import format_table, grid_text, study_lines, table_json

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
    output.say(f"sweep {one_line(sweep_dir)} ({shown}) — {grid_text(manifest)}")
    output.say(*format_table(rows, sweeps.table_keys(manifest), sort))
    output.say(sweeps.summary_line(rows))
    output.say(*study_lines(sweep_dir, manifest))
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
    from cnn_tui.training.loop.trainer import stop_on_signals

    if args.json_file:
        output.check_output(args.json_file, "--json-file", args.resume or args.run_dir)
    if args.show:
        return show(args)
    if args.stop:
        return stop(args.stop)
    storage = args.storage
    trust = True  # a sweep of this command: its model is the one the user named
    if args.resume:
        sweep_dir = Path(args.resume)
        manifest = sweeps.check_resumable(sweep_dir)
        devices = resume_devices(args, manifest)
        sweeps.check_trusted(sweep_dir, manifest, args.trust_model_code)
        trust = args.trust_model_code
    else:
        plan = plan_from_args(args)
        devices = plan.devices
        if isinstance(plan, sweeps.SweepPlan):
            sweep_dir = sweeps.create_sweep(plan, args.runs_dir, args.run_dir)
        elif args.run_dir and same_search_dir(args.run_dir):
            sweep_dir = resume_same_search(plan, args.run_dir)  # the same command again
        else:
            sweep_dir = search.create_search(plan, args.runs_dir, args.run_dir)
    manifest = sweeps.read_manifest(sweep_dir)
    if search.is_search(manifest):  # Optuna and the storage, checked before the queue starts
        search.load_optuna()
        search.storage_url(sweep_dir, manifest["search"], storage)
    total = sweeps.planned_runs(manifest)
    if args.detach:
        pid = sweeps.launch_sweep(sweep_dir, devices, args.sort, storage, trust)
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
        state = sweeps.run_queue(
            sweep_dir,
            devices,
            reporter,
            stopping,
            sort=args.sort,
            storage=storage,
            trust_model_code=trust,
        )
    if state == sweeps.SweepState.STOPPED:
        return EXIT_STOPPED
    manifest = sweeps.read_manifest(sweep_dir)
    retried = {entry["index"] for entry in manifest["runs"] if entry.get("retried")}
    rows = sweeps.sweep_rows(sweep_dir, manifest)
    failed = any(row["status"] == RunState.FAILED and row["index"] not in retried for row in rows)
    return EXIT_FAILED if failed else EXIT_OK
