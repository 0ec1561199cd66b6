"""`cnn-tui models`: every network `--model` takes — the short names, then torchvision's zoo.

The rows are `training.models.zoo.model_rows`: the short names from the catalogue, then the zoo
from torchvision's registry and each model's DEFAULT weights' meta (parameters, ImageNet top-1,
GFLOPS, the size the weights were trained at and the smallest they take), with no model built.
`--search TEXT` keeps the names holding TEXT; `--json` prints the rows for scripts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cnn_tui.commands import output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--search", metavar="TEXT", default="", help="only the models whose name holds TEXT"
    )
    output.add_json_arguments(parser, "the models")


def run(args: argparse.Namespace) -> int:
    from cnn_tui import text
    from cnn_tui.catalog import ZOO_EXCLUDED, ZOO_PREFIX
    from cnn_tui.training.models.zoo import model_rows

    found = model_rows(args.search)
    target = output.json_target(args)
    if target is not None:
        output.write_json({"models": found}, target)
    if target == output.STDOUT:
        return 0

    def cell(value: Any, shown: Callable[[Any], str]) -> str:
        return "" if value is None else shown(value)

    if found:
        output.say(
            *output.table(
                ("model", "kind", "params", "ImageNet top-1", "GFLOPS", "trained at", "min size"),
                [
                    (
                        row["model"],
                        row["kind"],
                        cell(row["params"], text.short_count),
                        cell(row["acc1"], lambda acc: f"{acc:.1f}%"),
                        cell(row["gflops"], lambda gflops: f"{gflops:.2f}"),
                        cell(row["image_size"], lambda size: f"{size} px"),
                        f"{row['min_image_size']} px",
                    )
                    for row in found
                ],
                right=(2, 3, 4, 5, 6),
            )
        )
    else:
        output.say(f"no model name holds {text.one_line(args.search)!r}")
    wanted = args.search.strip().lower()
    for name in ZOO_EXCLUDED:  # in torchvision's registry, but not trainable here
        if wanted in name:
            output.say(f"({ZOO_PREFIX}{name} is left out: {ZOO_EXCLUDED[name]})")
    return 0
