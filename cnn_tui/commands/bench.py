"""`cnn-tui bench`: images/s of the engine against the seed-style loop on this machine."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnn_tui.bench import args as bench_args

    bench_args.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnn_tui.bench.measure import run_bench

    return run_bench(args)
