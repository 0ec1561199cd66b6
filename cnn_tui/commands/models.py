"""`cnn-tui models`: every network `--model` takes — the short names, then torchvision's zoo.

The short names come from the catalogue (torch-free); the zoo's rows from torchvision's registry
and each model's DEFAULT weights' meta (`training.models.zoo.entries`: parameters, ImageNet top-1,
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


def rows(search: str = "") -> list[dict[str, Any]]:
    """One dict per model `--model` takes whose name holds `search` (case-insensitive)."""
    from cnn_tui import catalog
    from cnn_tui.training.models import zoo

    wanted = search.strip().lower()
    found: list[dict[str, Any]] = [
        {"model": name, "kind": model.kind, "params": None, "acc1": None, "gflops": None,
         "image_size": model.native_image_size, "min_image_size": model.min_image_size}
        for name, model in catalog.MODELS.items()
    ]  # fmt: skip
    for entry in zoo.entries():
        found.append(
            {
                "model": catalog.ZOO_PREFIX + entry.name,
                "kind": catalog.BACKBONE,
                "params": entry.params,
                "acc1": entry.acc1,
                "gflops": entry.gflops,
                "image_size": entry.image_size,
                "min_image_size": entry.min_image_size,
            }
        )
    return [row for row in found if wanted in row["model"].lower()]


def run(args: argparse.Namespace) -> int:
    from cnn_tui import text

    found = rows(args.search)
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
