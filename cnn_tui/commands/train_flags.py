"""Flags of `cnn-tui train`, generated from `cnn_tui.training.config.FIELDS` (one source of truth).

Precedence when building the config: defaults < `--preset` < `--config FILE` < explicit flags,
layered by `config.layer_settings` (the training form layers the same way), cross-field rules last.
Flag values are parsed by `config.parse_field`, so a bad value gives the same one-line message
as a bad form field or config-file entry.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnn_tui.commands import output, tool_flags
from cnn_tui.commands.count_flags import add_count, with_bounds
from cnn_tui.training.config import FIELDS, ConfigError, TrainConfig, layer_settings, parse_field

MAX_NODES = 1024  # machines of one data-parallel run (--nnodes)


def add_arguments(
    parser: argparse.ArgumentParser, *, run_flags: bool = True, node_flags: bool = False
) -> None:
    """The training settings' flags, --preset and --config; with `run_flags` also those of a run
    (--run-dir, --resume, --json, --json-file, --start), which `cnn-tui lr-find` (no run) leaves
    out; with
    `node_flags` the multi-node flags of data-parallel training (`cnn-tui train` only)."""
    source = parser.add_argument_group("where the settings come from")
    source.add_argument("--preset", metavar="NAME", help="start from a preset (see README)")
    source.add_argument(
        "--config",
        metavar="FILE.toml",
        type=output.path_argument,
        help='read settings from a TOML file (preset = "NAME" in it starts from that preset, '
        "unless --preset is given); flags override it",
    )
    if run_flags:
        _add_run_flags(source)
    _add_setting_flags(parser)
    if node_flags:
        _add_node_flags(parser)


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    """Passed through to torchrun when --devices trains on several machines (README: Several
    GPUs); they are not settings of the run, so they live outside TrainConfig."""
    nodes = parser.add_argument_group("several machines (data-parallel, with --devices)")
    add_count(
        nodes,
        "--nnodes",
        low=1,
        high=MAX_NODES,
        default=1,
        metavar="M",
        help="machines taking part (default: 1)",
    )
    add_count(
        nodes,
        "--node-rank",
        low=0,
        high=MAX_NODES - 1,
        default=0,
        metavar="K",
        bounds="0 to M-1",
        help="this machine's number; node 0 writes the run directory (default: 0)",
    )
    nodes.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="where the machines meet: node 0's address and a free port, the same on every node",
    )


def _add_run_flags(source: argparse._ArgumentGroup) -> None:
    run_dir = source.add_argument(
        "--run-dir",
        metavar="DIR",
        type=output.path_argument,
        help="where to write the run (default: a new folder under ./runs)",
    )
    output.chooses_output(run_dir)
    source.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=output.path_argument,
        help="continue a stopped run from its last checkpoint",
    )
    tool_flags.add_trust_argument(source)
    output.add_json_arguments(source, "the events of --no-ui, one per line,")
    source.add_argument(
        "--start", action="store_true", help="start training at once (TUI; skips the form)"
    )


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    settings = parser.add_argument_group("training settings")
    for field in FIELDS.values():
        if field.kind is bool:
            settings.add_argument(
                field.flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{field.help} (default: {'on' if field.default else 'off'})",
            )
            continue
        if field.items:  # a comma list, or the flag repeated (given_flags joins them)
            settings.add_argument(
                field.flag,
                dest=field.name,
                action="append",
                metavar="{" + ",".join(field.items) + "}",
                default=None,
                help=f"{field.help} (default: none)",
            )
            continue
        if field.choices:
            metavar = "{" + ",".join(field.choices) + "}"
        else:
            metavar = {int: "N", float: "X"}.get(field.kind, field.name.upper())
        default = "" if field.default is None else f" (default: {field.default})"
        help = with_bounds(field.help + default, field.bounds)
        settings.add_argument(field.flag, dest=field.name, metavar=metavar, default=None, help=help)


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings given on the command line: name -> text as typed (bool: on/off; a
    repeated flag's values joined with commas)."""
    values = {name: getattr(args, name, None) for name in FIELDS}
    return {
        name: ",".join(value) if isinstance(value, list) else value
        for name, value in values.items()
        if value is not None
    }


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings given on the command line, parsed: name -> typed value."""
    return {
        name: parse_field(name, value) if isinstance(value, str) else value
        for name, value in given_flags(args).items()
    }


def config_flags(config: TrainConfig) -> list[str]:
    """The command line that gives every setting of `config` (what the ranks of a data-parallel
    run are started with: `config_from_args` on it rebuilds `config`)."""
    return setting_flags(config.to_dict())


def setting_flags(values: dict[str, Any]) -> list[str]:
    """The flags that give these settings (name -> typed value; None: left out)."""
    flags: list[str] = []
    for name, value in values.items():
        field = FIELDS[name]
        if value is None:
            continue
        if field.kind is bool:
            flags.append(field.flag if value else "--no-" + field.flag[2:])
        else:
            text = repr(value) if isinstance(value, float) else str(value)
            flags.append(f"{field.flag}={text}")  # (= keeps a value that starts with "-" a value)
    return flags


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build and validate the TrainConfig from --preset, --config and the explicit flags."""
    config = layer_settings(
        preset=getattr(args, "preset", None),
        config_file=getattr(args, "config", None),
        flags=given_flags(args),
    )
    config.check()  # the rules between fields, once all layers are in
    return config


def field_type(name: str):
    """An argparse `type=` for a flag of another program that means setting `name` (same parse
    and limits as `cnn-tui train`), e.g. `python -m cnn_tui.commands.reference_loop --lr`."""

    def parse(text: str) -> Any:
        try:
            return parse_field(name, text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name  # argparse names the type in "invalid <name> value" messages
    return parse
