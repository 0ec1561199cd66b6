"""`cnn-tui models`: every network `--model` takes — the short names, then torchvision's zoo.

The rows are `training.models.zoo.model_rows`: the short names from the catalogue, then the zoo
from torchvision's registry and each model's DEFAULT weights' meta (parameters, ImageNet top-1,
GFLOPS, the size the weights were trained at and the smallest they take), with no model built.
`--search TEXT` keeps the names holding TEXT; `--json` prints the rows for scripts.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnn_tui.commands import output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--search", metavar="TEXT", default="", help="only the models whose name holds TEXT"
    )
    output.add_json_arguments(parser, "the models")


def run(args: argparse.Namespace) -> int:
    from cnn_tui import text
    from cnn_tui.training.models.zoo import model_rows

    found = model_rows(args.search)
    target = output.json_target(args)
    if target is not None:
        output.write_json({"models": found}, target)
    if target == output.STDOUT:
        return 0
    if not found:
        output.say(f"no model name holds {text.one_line(args.search)!r}")
        return 0

    def maybe(value: Any, shown: str) -> str:
        return shown if value is not None else ""

    table = output.table(
        ("model", "kind", "params", "ImageNet top-1", "GFLOPS", "trained at", "min size"),
        [
            (
                row["model"],
                row["kind"],
                maybe(row["params"], text.short_count(row["params"])),
                maybe(row["acc1"], f"{row['acc1']:.1f}%"),
                maybe(row["gflops"], f"{row['gflops']:.2f}"),
                maybe(row["image_size"], f"{row['image_size']} px"),
                f"{row['min_image_size']} px",
            )
            for row in found
        ],
        right=(2, 3, 4, 5, 6),
    )
    output.say(*table)
    return 0
