"""Flags of `cnn-tui train`, generated from `cnn_tui.training.config.FIELDS` (one source of truth).

Precedence when building the config: defaults < `--preset` < `--config FILE` < explicit flags.
Flag values are parsed by `config.parse_field`, so a bad value gives the same one-line message
as a bad form field or config-file entry.
"""

from __future__ import annotations

import argparse

from cnn_tui.training.config import FIELDS, TrainConfig, load_config_file, load_preset, parse_field


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where the settings come from")
    source.add_argument("--preset", metavar="NAME", help="start from a preset (see README)")
    source.add_argument(
        "--config", metavar="FILE.toml", help="read settings from a TOML file; flags override it"
    )
    source.add_argument(
        "--run-dir",
        metavar="DIR",
        help="where to write the run (default: a new folder under ./runs)",
    )
    source.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint"
    )
    source.add_argument("--json", action="store_true", help="print JSON lines only (--no-ui)")
    source.add_argument(
        "--start", action="store_true", help="start training at once (TUI; skips the form)"
    )
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
        if field.choices:
            metavar = "{" + ",".join(field.choices) + "}"
        else:
            metavar = {int: "N", float: "X"}.get(field.kind, field.name.upper())
        default = "" if field.default is None else f" (default: {field.default})"
        settings.add_argument(
            field.flag, dest=field.name, metavar=metavar, default=None, help=field.help + default
        )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build and validate the TrainConfig from --preset, --config and the explicit flags."""
    config = TrainConfig()
    # the rules between fields are checked once all layers are in: a preset may leave --data-dir
    # to the command line
    if getattr(args, "preset", None):
        config = load_preset(args.preset, base=config, check=False)
    if getattr(args, "config", None):
        config = load_config_file(args.config, base=config, check=False)
    flags = {}
    for name, field in FIELDS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        flags[name] = value if field.kind is bool else parse_field(name, value)
    config = TrainConfig.from_mapping(flags, base=config, check=False)
    config.check()
    return config
