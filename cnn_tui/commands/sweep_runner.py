"""`python -m cnn_tui.commands.sweep_runner SWEEP_DIR --devices D1,D2 [--sort KEY] [--storage
URL]`: the queue
runner of a sweep started in the background (`sweeps.launch_sweep`, its own session; its output
goes to SWEEP_DIR/output.log). SIGTERM stops the runs in progress with a checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from cnn_tui.commands.sweep import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from cnn_tui.commands.sweep_report import Reporter
from cnn_tui.errors import RunError, UsageError
from cnn_tui.text import one_line
from cnn_tui.training.loop.trainer import stop_on_signals
from cnn_tui.training.runs import sweeps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {sweeps.RUNNER_MODULE}")
    parser.add_argument("sweep_dir")
    parser.add_argument("--devices", required=True)
    parser.add_argument("--sort", choices=sweeps.SORT_KEYS)
    parser.add_argument("--storage")  # a search's study storage URL (default: its study.db)
    parser.add_argument("--trust-model-code", action="store_true")  # (checked by its launcher)
    args = parser.parse_args(argv)
    try:
        manifest = sweeps.read_manifest(args.sweep_dir)
        reporter = Reporter(sys.stdout, sweeps.planned_runs(manifest))
        stop = threading.Event()
        with stop_on_signals(stop, lambda text: print(f"sweep runner: {text}", flush=True)):
            state = sweeps.run_queue(
                args.sweep_dir,
                args.devices.split(","),
                reporter,
                stop,
                sort=args.sort,
                storage=args.storage,
                trust_model_code=args.trust_model_code,
            )
    except UsageError as exc:
        print(f"cnn-tui sweep: error: {one_line(exc)}", flush=True)
        return EXIT_USAGE
    except RunError as exc:  # (a search whose study's database failed)
        print(f"cnn-tui sweep: {one_line(exc)}", flush=True)
        return exc.exit_code
    return EXIT_STOPPED if state == sweeps.SweepState.STOPPED else EXIT_OK


if __name__ == "__main__":
    from cnn_tui.commands import streams

    streams.install()  # its output log in any encoding (as `cli.run`)
    sys.exit(main())
