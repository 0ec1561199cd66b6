"""`python -m cnn_tui.commands.reference_loop`: one whole seed-style training run as its own
process (the loop itself is `cnn_tui.bench.reference_loop`).

`cnn-tui bench --whole-run` starts it next to `cnn-tui train --no-ui` and times both. Its flags
mean the `cnn-tui train` settings of the same name (choices, parsing and limits from
`config.FIELDS`), with the seed's own defaults (`cnn_tui.bench.options.SEED_DEFAULTS`). It prints
one JSON line per epoch on stderr and one with the result on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from cnn_tui.bench.options import SEED_SETTINGS, SeedRunOptions
from cnn_tui.commands.bench import MAX_WORKERS
from cnn_tui.commands.count_flags import add_count, with_bounds
from cnn_tui.commands.train_flags import field_type
from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import json_text
from cnn_tui.text import one_line
from cnn_tui.training.config import FIELDS

PROG = "python -m cnn_tui.commands.reference_loop"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="One whole seed-style training run (DataLoader + ToTensor + plain loop).",
    )
    defaults = SeedRunOptions()
    for name in SEED_SETTINGS:
        field = FIELDS[name]
        if field.choices:
            metavar = "{" + ",".join(field.choices) + "}"
        else:
            metavar = {int: "N", float: "X"}.get(field.kind, name.upper())
        parser.add_argument(
            field.flag,
            dest=name,
            type=field_type(name),
            default=getattr(defaults, name),
            metavar=metavar,
            help=with_bounds(field.help, field.bounds),
        )
    add_count(
        parser, "--workers", low=0, high=MAX_WORKERS, help="DataLoader workers (default: cpu count)"
    )
    return parser


def _print_epoch(record: dict) -> None:
    print(json_text({"event": "epoch", **record}), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Train like the lecture notes; print one JSON line with the result and the timings."""
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    given = {name: getattr(args, name) for name in SEED_SETTINGS}
    options = SeedRunOptions(workers=args.workers, **given)
    from cnn_tui.bench import reference_loop  # torch: after the flags are checked

    try:
        prepared = reference_loop.prepare(options)
    except (UsageError, RunError) as exc:
        print(f"reference_loop: {one_line(exc)}", file=sys.stderr)
        return 2
    result = reference_loop.run(prepared, on_epoch=_print_epoch)
    finished = {"event": "finished", **result, "seconds_in_process": time.perf_counter() - started}
    print(json_text(finished), flush=True)
    return 0


if __name__ == "__main__":
    from cnn_tui.commands import streams

    streams.install()  # its output log in any encoding (as `cli.run`)
    sys.exit(main())
