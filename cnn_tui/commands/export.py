"""`cnn-tui export RUN`: the run's model as TorchScript, torch.export or ONNX, headless.

The flags become an `ExportRequest`; what the core (`tools.export.export`) wrote is printed as one
line, or as JSON with `--json` (the file, its size, the check and the metadata stored in it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnn_tui import text
from cnn_tui.commands import output, tool_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.training.tools.export import FORMATS  # (torch loads only when export runs)

    parser.add_argument(
        "run_dir", metavar="RUN", type=output.path_argument, help="the run directory to export"
    )
    parser.add_argument("--format", required=True, choices=tuple(FORMATS), help="the file format")
    written = parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=output.path_argument,
        help="where to write it (default: ./RUN_NAME + suffix)",
    )
    output.chooses_output(written)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    tool_flags.add_trust_argument(parser)
    output.add_json_arguments(parser, "what was written")


def run(args: argparse.Namespace) -> int:
    from cnn_tui.training.tools.export import ExportRequest, export

    request = ExportRequest(
        Path(args.run_dir),
        args.format,
        output=Path(args.output) if args.output else None,
        force=args.force,
        trust_model_code=args.trust_model_code,
    )
    target = output.json_target(args)
    result = export(request)
    if target is not None:
        output.write_json(result, target)
    if target != output.STDOUT:
        output.say(summary_line(result))
    return 0


def _values(values: list[float]) -> str:
    return "(" + ", ".join(text.number(v, ".3f") for v in values) + ")"


def summary_line(result: dict[str, Any]) -> str:
    """What was written, how to feed it and how well it agrees with the run's model."""
    channels, height, width = result["input"]
    return (
        f"wrote {text.one_line(result['file'])} ({text.size(result['bytes'])}, "
        f"{result['format']}): input (N, {channels}, {height}, {width}) normalised with mean "
        f"{_values(result['mean'])} std {_values(result['std'])}; checked on "
        f"{text.count(result['checked_images'])} test images (largest difference "
        f"{text.number(result['max_relative_difference'], '.1g')})"
    )
