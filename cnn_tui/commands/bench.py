"""`cnn-tui bench`: images/s of the engine against the seed-style loop on this machine.

The flags become a `BenchOptions` (`options_from_args`), `cnn_tui.bench.measure.run_bench`
measures, and this module prints the report: a fixed-width table per mode, or JSON (`--json`,
`--json FILE`, `--json-file FILE`: the convention of `cnn_tui.commands.output`).

The flags that mean a `cnn-tui train` setting (--dataset, --finetune, --epochs, --limit,
--batch-size, --lr, --device, --amp, --channels-last) take their choices, parsing and limits from
`cnn_tui.training.config.FIELDS`, parsed after argparse as `cnn-tui train` does, so a bad value is
the same one-line usage error (exit 2). Bench keeps its own defaults where a benchmark wants other
ones (`cnn_tui.bench.options`). Building the parser imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from cnn_tui import text
from cnn_tui.bench import options as bench
from cnn_tui.commands import output
from cnn_tui.commands.count_flags import add_count, with_bounds
from cnn_tui.errors import UsageError
from cnn_tui.training.config import FIELDS, FINETUNES, parse_field

# the training settings bench's flags stand for, given as text and parsed by their Field
SETTING_FLAGS = ("epochs", "limit", "batch_size", "lr", "device")
# the mode switches, in the order a clash names them
MODE_FLAGS = {
    "whole_run": bench.WHOLE_RUN,
    "features": bench.FEATURES,
    "startup": bench.STARTUP,
    "tui": bench.TUI,
}
# the bounds of the counts (a benchmark is minutes, not days; `count_flags`)
MAX_BATCHES, MAX_WARMUP, MAX_REPEATS, MAX_WORKERS = 10_000, 1_000, 100, 256


# --- flags ------------------------------------------------------------------------------------


def model_list(value: str) -> list[bench.ModelSpec]:
    """argparse `type=` of --models: NAME[@SIZE],... (`bench.parse_model_list`)."""
    try:
        return bench.parse_model_list(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _setting_flag(group: argparse._ArgumentGroup, name: str, help: str) -> None:
    """A flag for training setting `name`, given as text (parsed by `options_from_args`)."""
    field = FIELDS[name]
    metavar = {int: "N", float: "X"}.get(field.kind, name.upper())
    help = with_bounds(help, field.bounds)
    group.add_argument(field.flag, dest=name, metavar=metavar, default=None, help=help)


def _switch(group: argparse._ArgumentGroup, name: str, help: str) -> None:
    """An on/off flag for the boolean training setting `name`, with its default."""
    default = FIELDS[name].default
    group.add_argument(
        FIELDS[name].flag,
        dest=name,
        action=argparse.BooleanOptionalAction,
        default=default,
        help=f"{help} (default: {'on' if default else 'off'})",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to measure")
    what.add_argument(
        "--dataset",
        choices=bench.BENCH_DATASETS,
        default=FIELDS["dataset"].default,
        help="images to train on (default: shapes, generated, works offline)",
    )
    what.add_argument(
        "--data-dir",
        metavar="DIR",
        type=output.path_argument,
        help="folder with the data set files (fashion-mnist, cifar10)",
    )
    what.add_argument(
        "--models",
        type=model_list,
        metavar="LIST",
        default=None,
        help=f"comma list of NAME[@SIZE] (default: {bench.DEFAULT_MODELS}; --quick: "
        f"{bench.QUICK_MODELS})",
    )
    what.add_argument(
        "--finetune",
        choices=FINETUNES,
        default=None,
        help="what trains in a pretrained model (default: all for speed runs; head for "
        "--whole-run, where the frozen-backbone feature cache applies)",
    )
    what.add_argument(
        "--whole-run",
        action="store_true",
        help="time whole runs instead: `cnn-tui train --no-ui` against the seed-style script, "
        "each a fresh process, start-up, validation and test pass included",
    )
    _setting_flag(what, "epochs", f"epochs of each --whole-run (default: {bench.DEFAULT_EPOCHS})")
    _setting_flag(
        what, "limit", "use at most this many training images (val and test shrink alike)"
    )
    what.add_argument(
        "--features",
        action="store_true",
        help="time the tools around training instead: a run on 1 and on 2 processes "
        "(--devices 2), a sweep of 2 runs against the same runs one by one, inspect, each a "
        "fresh process (the first of --models; default simple-cnn)",
    )
    what.add_argument(
        "--startup",
        action="store_true",
        help="time start-up instead: `cnn-tui --help`, the home screen painted, import torch, "
        "and `cnn-tui train --no-ui` to its first batch event with its timeline (each of "
        f"--models on --dataset; default {bench.STARTUP_MODELS}; and --preset)",
    )
    what.add_argument(
        "--preset",
        metavar="NAME",
        help="with --startup: time the start of this preset's trainer too (e.g. "
        "fast-fashion-mnist)",
    )
    what.add_argument(
        "--tui",
        action="store_true",
        help="measure the TUI instead: a run started from the form (the first of --models, "
        "--dataset, --epochs, --limit), the seconds from Start to the chart's first point and "
        "the share of a core the TUI takes following it and showing it finished",
    )
    what.add_argument(
        "--pairs",
        action="store_true",
        help="with --tui: what the TUI costs the trainer instead: the same run headless "
        "(`cnn-tui train --no-ui`) and from the form, alternated, --repeats pairs; each pair's "
        "training images/s compared",
    )
    how = parser.add_argument_group("settings")
    _setting_flag(
        how, "batch_size", "training batch (default: 128; 32 with --whole-run or --quick)"
    )
    _setting_flag(how, "lr", f"Adam learning rate (default: {FIELDS['lr'].default:g})")
    _setting_flag(how, "device", FIELDS["device"].help)
    _switch(how, "amp", f"engine: {FIELDS['amp'].help}")
    _switch(how, "channels_last", f"engine: {FIELDS['channels_last'].help}")
    add_count(
        how,
        "--workers",
        low=0,
        high=MAX_WORKERS,
        help="DataLoader worker processes of the seed-style loop (default: os.cpu_count())",
    )
    timing = parser.add_argument_group("timing")
    add_count(
        timing, "--batches", low=1, high=MAX_BATCHES, help="timed batches per repeat (default: 20)"
    )
    add_count(timing, "--warmup", low=0, high=MAX_WARMUP, help="untimed batches first (default: 3)")
    add_count(
        timing,
        "--repeats",
        low=1,
        high=MAX_REPEATS,
        help="timed repeats, median quoted (default: 3)",
    )
    timing.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run for CI: small models, few batches, one repeat less",
    )
    output.add_json_arguments(
        parser.add_argument_group("output"), "the results", file_after_json=True
    )


# --- flags -> options -------------------------------------------------------------------------


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The training-setting flags given, parsed and checked by their training setting's Field."""
    values = {name: getattr(args, name) for name in SETTING_FLAGS}
    return {name: parse_field(name, value) for name, value in values.items() if value is not None}


def _mode(args: argparse.Namespace) -> str:
    """The mode the switches ask for (speed without one); two of them are a usage error."""
    chosen = [flag for flag in MODE_FLAGS if getattr(args, flag)]
    if len(chosen) > 1:
        flags = ("--" + flag.replace("_", "-") for flag in chosen)
        raise UsageError(f"{' and '.join(flags)} are separate modes: pick one")
    return MODE_FLAGS[chosen[0]] if chosen else bench.SPEED


def options_from_args(args: argparse.Namespace) -> bench.BenchOptions:
    """The flags as a `BenchOptions`; what was not given takes the mode's default."""
    settings = _given_settings(args)
    return bench.bench_options(
        _mode(args),
        quick=args.quick,
        dataset=args.dataset,
        data_dir=args.data_dir,
        models=args.models,
        finetune=args.finetune,
        amp=args.amp,
        channels_last=args.channels_last,
        workers=args.workers,
        batches=args.batches,
        warmup=args.warmup,
        repeats=args.repeats,
        preset=args.preset,
        pairs=args.pairs,
        **settings,
    )


def note(message: str) -> None:
    """Progress on stderr, so stdout keeps only the table (or the JSON)."""
    print(f"bench: {text.one_line(message)}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Measure, print the table (or JSON), write the JSON file if one is named."""
    from cnn_tui.bench.measure import run_bench

    opts = options_from_args(args)
    target = output.json_target(args)  # a file is checked before the long work
    json_on_stdout = args.json == output.STDOUT
    report = run_bench(opts, note)
    if json_on_stdout:
        output.write_json(report, output.STDOUT)
    else:
        output.say(format_report(report))
    if target not in (None, output.STDOUT):
        output.write_json(report, target)
        if not json_on_stdout:
            output.say(f"written to {text.one_line(target)}")
    return 0


# --- the report as text -----------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return text.number(value, ",.2f")


def _seconds(value: float) -> str:
    """Seconds in a fixed-width column of seconds (`text.duration` would switch to minutes)."""
    return text.number(value, ".1f")


def _header_lines(report: dict[str, Any]) -> list[str]:
    env, cfg = report["environment"], report["settings"]
    load = env.get("load_average")
    return [
        f"device {env['device']} ({text.one_line(env['device_name'])}), torch {env['torch']}, "
        f"torchvision {env['torchvision']}, {env['torch_threads']} torch threads, {env['cpu_count']} CPUs"
        + (f", load average {text.number(load[0], '.2f')}" if load else ""),
        f"data {cfg['dataset']}, batch {cfg['batch_size']}, adam lr {cfg['lr']:g}, --amp "
        f"{'on' if cfg['amp'] else 'off'}, --channels-last {'on' if cfg['channels_last'] else 'off'}"
        f", seed-style loop with {cfg['workers']} DataLoader workers",
    ]


def engine_mode(result: dict[str, Any]) -> str:
    """How the engine ran: 'bf16+CL' (autocast and channels_last), 'CL', 'fp32' ..."""
    parts = [result["amp"]] if result.get("amp") else []
    if result.get("channels_last"):
        parts.append("CL")
    return "+".join(parts) or "fp32"


def format_speed(report: dict[str, Any]) -> str:
    """One row per model: train and eval images/s of both sides and their ratios."""
    cfg = report["settings"]
    lines = _header_lines(report)
    lines.append(
        f"images/s, median of {cfg['repeats']} repeats of {cfg['batches']} batches after "
        f"{cfg['warmup']} warm-up batches; × = engine / seed-style; engine in: fp32, CL "
        "(channels_last), bf16/float16 (autocast)"
    )
    width = max([12, *(len(row["model"]) for row in report["results"])])  # torchvision:NAME
    header = (
        f"{'model':<{width}} {'size':>4} {'engine in':<9} {'train engine':>12} {'train seed':>10} "
        f"{'×':>6}  {'eval engine':>11} {'eval seed':>9} {'×':>6}"
    )
    lines += [header, "-" * len(header)]
    for row in report["results"]:
        ours, theirs, times = row["engine"], row["reference"], row["ratio"]
        lines.append(
            f"{row['model']:<{width}} {row['image_size']:>4} {engine_mode(ours):<9} "
            f"{text.count(ours['train_images_per_s']):>12} "
            f"{text.count(theirs['train_images_per_s']):>10} {_ratio(times['train']):>6}  "
            f"{text.count(ours['eval_images_per_s']):>11} "
            f"{text.count(theirs['eval_images_per_s']):>9} {_ratio(times['eval']):>6}"
        )
    return "\n".join(lines)


def format_whole_run(report: dict[str, Any]) -> str:
    """One row per run: seconds, test accuracy and the seed-style loop's seconds / these."""
    cfg = report["settings"]
    lines = _header_lines(report)
    lines.append(
        f"whole runs of {cfg['epochs']} epoch(s), wall clock of a fresh process each, median of "
        f"{cfg['repeats']}; × = seed-style seconds / these seconds"
    )
    header = f"{'model':<14} {'run':<30} {'seconds':>8} {'test acc':>8} {'×':>6}"
    lines += [header, "-" * len(header)]
    for row in report["results"]:
        label = row["model"] + (f"@{row['image_size']}" if row["image_size"] else "")
        lines.append(
            f"{label:<14} {row['run']:<30} {_seconds(row['seconds']):>8} "
            f"{text.percent(row['test_accuracy']):>8} {_ratio(row['speedup']):>6}"
        )
    return "\n".join(lines)


def format_features(report: dict[str, Any]) -> str:
    """One row per feature command: seconds and how it compares."""
    cfg = report["settings"]
    lines = _header_lines(report)[:1]
    model = cfg["model"] + (f"@{cfg['image_size']}" if cfg["image_size"] else "")
    lines.append(
        f"{model} on {cfg['dataset']}, {cfg['epochs']} epoch(s), batch {cfg['batch_size']}"
        + (f", {cfg['limit']} training images" if cfg["limit"] else "")
        + f"; wall clock of a fresh process each, median of {cfg['repeats']}; × = the "
        "compared seconds / these"
    )
    header = f"{'what':<36} {'seconds':>8}  {'compared with':<22} {'×':>5}"
    lines += [header, "-" * len(header)]
    for row in report["results"]:
        lines.append(
            f"{row['feature']:<36} {_seconds(row['seconds']):>8}  "
            f"{row['compared_with'] or '':<22} "
            f"{_ratio(row['speedup']) if row['speedup'] else '':>5}"
        )
    return "\n".join(lines)


def format_startup(report: dict[str, Any]) -> str:
    """One line per start-up path, in seconds; then each trainer's start and its timeline."""
    env, res = report["environment"], report["results"]
    lines = [
        f"start-up, median of {report['settings']['repeats']} fresh processes; python "
        f"{env['python']}, {env['cpu_count']} CPUs"
        + _load_text(env)
        + (f"; cnn_tui's bytecode {text.one_line(env['bytecode'])}" if "bytecode" in env else ""),
    ]
    labels = (
        ("python_seconds", "python -c pass (the floor)"),
        ("help_seconds", "cnn-tui --help"),
        ("home_screen_seconds", "home screen painted (headless driver)"),
        ("home_screen_tmux_seconds", "home screen on a terminal (tmux pane)"),
        ("import_torch_only_seconds", "import torch (what a trainer loads)"),
        ("import_torch_seconds", "import torch, torchvision (for scale)"),
    )
    for key, label in labels:
        if key in res:
            lines.append(f"{label:<42} {text.number(res[key], '.2f'):>6} s")
    if res.get("import_torchvision_failed"):
        lines.append(
            "import torch, torchvision: failed (does torchvision match torch? "
            "`python -c 'import torchvision'` says why)"
        )
    lines.append(
        f"torch imported by the home screen: {'yes' if res['home_screen_imports_torch'] else 'no'}"
    )
    for row in res.get("trainers", []):
        lines += ["", f"{text.one_line(row['command'])} ({text.one_line(row['run'])})"]
        lines.append(
            f"{'start → first batch event':<42} "
            f"{text.number(row['start_to_first_batch_s'], '.2f'):>6} s"
        )
        lines.append(
            f"{'  the same with the timeline probe':<42} "
            f"{text.number(row['probe_start_to_first_batch_s'], '.2f'):>6} s   CPU s"
        )
        for phase in row["phases"]:
            lines.append(
                f"{'    ' + phase['phase']:<42} {text.number(phase['seconds'], '.2f'):>6} s "
                f"{text.number(phase['cpu_seconds'], '.2f'):>7}"
            )
    lines.append(
        "(the TUI's Start → first point on the chart: cnn-tui bench --tui)"
        if res.get("trainers")
        else ""
    )
    return "\n".join(lines).rstrip()


def _load_text(env: dict[str, Any]) -> str:
    """ ", load average 1.23" (the 1-minute figure; "1.05 → 1.23" with the one before)."""
    load, before = env.get("load_average"), env.get("load_average_before")
    if not load:
        return ""
    start = f"{text.number(before[0], '.2f')} → " if before else ""
    return f", load average {start}{text.number(load[0], '.2f')}"


def _run_text(run: dict[str, Any]) -> str:
    """ "simple-cnn on fashion-mnist, 5 epoch(s), batch 128": the run a TUI report measured."""
    return (
        f"{run['model']} on {run['dataset']}, {run['epochs']} epoch(s), batch {run['batch_size']}"
        + (f", {run['limit']} training images" if run.get("limit") else "")
    )


def format_tui(report: dict[str, Any]) -> str:
    """The TUI's own cost: seconds to the first chart point, shares of one core (with --pairs:
    `format_pairs`)."""
    env, cfg, res = report["environment"], report["settings"], report["results"]
    if cfg.get("pairs"):
        return format_pairs(report)
    lines = [
        f"TUI cost, median of {cfg['repeats']} run(s) started from the form ({cfg['terminal']}); "
        f"{_run_text(cfg['run'])}; {env['cpu_count']} CPUs" + _load_text(env),
    ]
    seconds = (
        ("first_point_s", "Start → first point on the loss chart"),
        ("first_batch_event_s", "Start → the trainer's first batch event"),
    )
    for key, label in seconds:
        lines.append(f"{label:<50} {text.number(res[key], '.2f'):>7} s")
    shares = (
        ("following_core_share", "TUI following the live run", res["following_seconds"]),
        ("finished_core_share", "TUI showing the finished run", cfg["finished_seconds"]),
    )
    for key, label, over in shares:
        label = f"{label} (share of one core)"
        lines.append(f"{label:<50} {text.percent(res[key], 2):>7}   over {text.duration(over)}")
    for tab, figures in res.get("following_tabs", {}).items():
        label = f"  the live run on its {tab} tab"
        lines.append(
            f"{label:<50} {text.percent(figures['core_share'], 2):>7}   "
            f"over {text.duration(figures['seconds'])}"
        )
    return "\n".join(lines)


def format_pairs(report: dict[str, Any]) -> str:
    """Each pair's training images/s headless and under the TUI, its ratio; the median."""
    env, cfg, res = report["environment"], report["settings"], report["results"]
    lines = [
        f"the trainer's training images/s, headless and started from the form ({cfg['terminal']}, "
        f"following the run on its {cfg['tabs']} tab), alternated; {_run_text(cfg['run'])}; "
        f"{env['cpu_count']} CPUs" + _load_text(env),
    ]
    header = (
        f"{'pair':>4} {'headless img/s':>14} {'TUI img/s':>10} {'TUI / headless':>14} {'load':>5}"
    )
    lines += [header, "-" * len(header)]
    for number, pair in enumerate(res["pairs"], 1):
        load = pair.get("load_average")
        lines.append(
            f"{number:>4} {text.count(pair['headless_images_per_s']):>14} "
            f"{text.count(pair['tui_images_per_s']):>10} {_ratio(pair['ratio']):>14} "
            f"{text.number(load[0], '.2f') if load else '':>5}"
        )
    cost = res["tui_cost"]
    verdict = (
        f"the TUI costs the trainer {text.percent(cost, 1)} of its throughput"
        if cost >= 0
        else f"the runs under the TUI were {text.percent(-cost, 1)} faster: machine noise"
    )
    lines.append(
        f"median of {len(res['pairs'])} pair(s): TUI / headless {_ratio(res['median_ratio'])}; "
        + verdict
    )
    return "\n".join(lines)


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    bench.SPEED: format_speed,
    bench.WHOLE_RUN: format_whole_run,
    bench.FEATURES: format_features,
    bench.STARTUP: format_startup,
    bench.TUI: format_tui,
}


def format_report(report: dict[str, Any]) -> str:
    """The report as the fixed-width text `cnn-tui bench` prints."""
    return FORMATS[report["mode"]](report)
