"""The `--no-ui` side of `cnn-tui train`, `cnn-tui eval` and `cnn-tui runs`.

Training prints a progress bar and one table row per epoch on a terminal, plain lines (one per
epoch, no redraws) when stdout is a file or a pipe, and only JSON lines with `--json`. Ctrl+C,
SIGTERM or SIGHUP (a dropped SSH session; not under nohup) stops at the next batch boundary with a
checkpoint (exit code 130); a second Ctrl+C aborts at once. Exit codes: 0 finished, 1 failed, 2
usage error, 130 stopped. A trainer holds its run directory's lock (`runs.lock_run`) for its whole
life: a second one on the same folder is refused. When the terminal or the pipe goes away, output
stops and the run carries on to its checkpoint.

`--devices N` (several processes, training/distributed.py): this command becomes the launcher of
N ranks started by torchrun (`_launch_ranks`); each rank runs `run_train` again (`_run_rank`),
rank 0 as the trainer above (lock, files, output), the others silently.

No textual import here: scripts and CI never load the TUI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.config import FIELDS, TrainConfig
from cnn_tui.training.runs import store as runs

EXIT_OK, EXIT_FAILED, EXIT_STOPPED = 0, 1, 130
RESUME_FLAGS_ALLOWED = ("epochs", "device", "devices")  # what --resume lets you change

# what a finished run leaves, as its last lines list them
_RESULT_FILES = (
    runs.SUMMARY_FILE,
    runs.CHECKPOINT_FILE,
    runs.EVENTS_FILE,
    runs.SAMPLES_FILE,
    runs.CONFIG_FILE,
)


# --- config and run directory -----------------------------------------------------------------


def _given_fields(args: argparse.Namespace) -> list[str]:
    return [name for name in FIELDS if getattr(args, name, None) is not None]


def resume_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    """The config of the run to resume (its config.toml), with --epochs / --device applied."""
    from cnn_tui.training.config import parse_field

    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such run directory")
    other = [f for f in _given_fields(args) if f not in RESUME_FLAGS_ALLOWED]
    other += [flag for flag in ("preset", "config", "run_dir") if getattr(args, flag, None)]
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise UsageError(
            f"--resume continues {run_dir} with its own settings; only --epochs and --device "
            f"(and --devices) may be given with it (got {flags})"
        )
    config = runs.read_config(run_dir)
    changes = {name: parse_field(name, getattr(args, name)) for name in _given_fields(args)}
    if changes:
        config = config.replace(**changes)
    status = runs.read_status(run_dir)
    if runs.effective_status(status) == "running":
        raise UsageError(f"run {run_dir} is still running (pid {status.get('pid')}); stop it first")
    return config, run_dir


check_new_run_dir = runs.check_new_run_dir  # (where it was defined first)


# --- signals ----------------------------------------------------------------------------------


def stop_signals() -> list[signal.Signals]:
    """SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped SSH session), but not a SIGHUP
    that is ignored (`nohup`): such a run is meant to outlive its terminal."""
    signals = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signals.append(signal.SIGHUP)
    return signals


@contextmanager
def stop_on_signals(stop: threading.Event, note: Callable[[str], None]) -> Iterator[None]:
    """`stop_signals` set `stop` (finish the batch, checkpoint); a second SIGINT aborts."""

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        note(f"{name}: stopping after this batch and saving a checkpoint (Ctrl+C again: abort)")

    previous = {sig: signal.signal(sig, handle) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- progress output --------------------------------------------------------------------------


def mute_output() -> None:
    """The terminal or the pipe is gone (a dropped SSH session, a closed pipe): point stdout and
    stderr at /dev/null, so that the run carries on to its checkpoint instead of failing on a
    print (and Python's exit does not fail flushing them)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError, AttributeError):  # (no real file behind it)
                pass
    finally:
        os.close(devnull)


def quietly(function: Callable[..., Any]) -> Callable[..., None]:
    """`function` (which prints), muting the output instead of failing when it is gone."""

    def call(*args: Any) -> None:
        try:
            function(*args)
        except OSError:
            mute_output()

    return call


def _pct(value: float | None) -> str:
    return "   -   " if value is None else f"{value * 100:6.2f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


EPOCH_HEADER = (
    f"{'epoch':>9}  {'train loss':>10}  {'train acc':>9}  {'val loss':>9}  {'val acc':>8}  "
    f"{'lr':>8}  {'time':>7}  {'img/s':>8}"
)


def epoch_row(event: dict[str, Any]) -> str:
    epochs = event["epochs"]
    label = f"{event['epoch']}/{epochs}"
    return (
        f"{label:>9}  {event['train_loss']:10.4f}  {_pct(event['train_acc']):>9}  "
        f"{event['val_loss']:9.4f}  {_pct(event['val_acc']):>8}  {event['lr']:8.2e}  "
        f"{_duration(event['seconds']):>7}  {event['images_per_s']:8.0f}"
    )


def started_lines(event: dict[str, Any]) -> list[str]:
    config = event["config"]
    params = event["parameters"]
    extras = [name for name in ("amp", "channels_last") if event.get(name)]
    lines = [
        f"device: {event['device']} ({event['device_name']})"
        + (f", {event['amp']} autocast" if event.get("amp") else "")
        + (", channels_last" if "channels_last" in extras else ""),
        f"data: {config['dataset']} — {event['n_train']} train / {event['n_val']} val / "
        f"{event['n_test']} test images, {len(event['classes'])} classes",
        f"model: {config['model']} — {params['total']:,} parameters ({params['trainable']:,} "
        f"trainable); {config['optimizer']} lr {config['lr']:g}, batch {config['batch_size']}, "
        f"{event['batches_per_epoch']} batches per epoch",
    ]
    if event.get("world_size", 1) > 1:
        hosts = sorted({rank["host"] for rank in event.get("ranks") or []})
        lines.append(
            f"data-parallel: {event['world_size']} processes ({event.get('backend')}) on "
            f"{', '.join(hosts)}; each takes a slice of every batch of {config['batch_size']}"
        )
    if event.get("resumed"):
        where = f"epoch {event['start_epoch']}"
        if event.get("start_batch"):
            where += f", batch {event['start_batch'] + 1}"
        lines.append(f"resuming at {where}")
    skipped = event.get("skipped") or []
    if skipped:
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        lines.append(f"skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:10])}{more}")
    return lines


def finished_lines(summary: dict[str, Any], run_dir: Path) -> list[str]:
    files = list(_RESULT_FILES)
    weights = ""
    if summary.get("evaluated_with") == "best":  # early stopping: the best epoch's weights
        files.insert(2, runs.BEST_FILE)
        weights = f"; with epoch {summary.get('best_epoch')}'s weights ({runs.BEST_FILE})"
    return [
        f"test accuracy {summary['test_accuracy'] * 100:.2f}%   macro F1 {summary['macro_f1']:.4f}"
        f"   (macro precision {summary['macro_precision']:.4f}, recall "
        f"{summary['macro_recall']:.4f}; best val acc {_pct(summary['best_val_acc']).strip()})"
        f"{weights}",
        f"files: {run_dir}/ — {', '.join(files)}",
    ]


class PlainReporter:
    """Plain lines for logs: the run's setup, one line per epoch, the result. No redraws."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.header_done = False

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "run_started":
            for line in started_lines(event):
                self.print(line)
        elif kind == "epoch":
            if not self.header_done:
                self.print(EPOCH_HEADER)
                self.header_done = True
            self.print(epoch_row(event))
        elif kind in ("stopped", "early_stop"):
            self.print(event["message"])

    def close(self) -> None:
        pass


class JsonReporter:
    """The events as JSON lines, batch events throttled as in metrics.jsonl."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.throttle = runs.BatchThrottle()

    def print(self, text: str = "") -> None:  # human notes go to stderr in --json mode
        print(text, file=sys.stderr, flush=True)

    def __call__(self, event: dict[str, Any]) -> None:
        record = self.throttle.add(event) if event["event"] == "batch" else event
        if record is not None:
            print(json.dumps(record), file=self.out, flush=True)

    def close(self) -> None:
        pass


class TerminalReporter(PlainReporter):
    """On a terminal: a rich progress bar with ETA and throughput, a table row per epoch."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(file=out, highlight=False)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]}  {task.fields[speed]} img/s  ETA {task.fields[eta]}"
            ),
            console=self.console,
            transient=True,
        )
        self.task = None

    def print(self, text: str = "") -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "batch":
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task(
                    "train", total=event["batches"], epoch="", loss="", speed="", eta=""
                )
            self.progress.update(
                self.task,
                completed=event["batch"],
                total=event["batches"],
                epoch=f"{event['epoch']}/{event.get('epochs', '?')}",
                loss=f"{event['loss']:.4f}",
                speed=f"{event['images_per_s']:,.0f}",
                eta=_duration(event["eta_s"]),
            )
            return
        super().__call__(event)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


class SilentReporter(JsonReporter):
    """What a rank other than 0 reports: nothing (rank 0 speaks for the run)."""

    def __init__(self) -> None:
        pass

    def print(self, text: str = "") -> None:
        pass

    def __call__(self, event: dict[str, Any]) -> None:
        pass


def make_reporter(args: argparse.Namespace, out: TextIO) -> PlainReporter | JsonReporter:
    if getattr(args, "json", False):
        return JsonReporter(out)
    if out.isatty():
        return TerminalReporter(out)
    return PlainReporter(out)


# --- subcommands ------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    """`cnn-tui train --no-ui`: train in this process; exit 0 finished, 1 failed, 130 stopped.
    With `--devices N`, launch N processes that train together (and exit as the run ended)."""
    from cnn_tui.training.loop import distributed

    world = distributed.World.from_env()
    if world is not None and world.parallel:  # a rank that torchrun started
        return _run_rank(args, world)
    nodes = _nodes(args)
    config, run_dir, resume = _train_plan(args, new_dir=False, nodes=nodes)
    if world is None:  # (a run that torchrun started as one process trains as one)
        processes = distributed.processes_per_node(config)
        if processes > 1 or nodes.count > 1:
            return _launch_ranks(args, config, run_dir, resume, processes, nodes)
    if run_dir is None:
        run_dir = runs.new_run_dir(getattr(args, "runs_dir", "runs"), config)
    with _holding_run(args, run_dir, resume):
        return _train(args, config, run_dir, resume)


def _train_plan(
    args: argparse.Namespace, *, new_dir: bool, nodes: Any = None
) -> tuple[TrainConfig, Path | None, bool]:
    """(settings, run directory, resuming?) of `cnn-tui train --no-ui`, all usage errors raised
    before anything is written; the run directory is None for a new folder not made yet
    (`new_dir`: make it). On a machine other than node 0 the run directory is not read."""
    from cnn_tui.commands.train_flags import config_from_args, given_flags
    from cnn_tui.training.system.devices import resolve_device

    resume = bool(getattr(args, "resume", None))
    run_dir: Path | None
    if resume and nodes is not None and nodes.rank > 0:  # rank 0 (on node 0) reads the run
        config, run_dir = TrainConfig.from_mapping(given_flags(args)), Path(args.resume)
    elif resume:
        config, run_dir = resume_config(args)
    else:
        config = config_from_args(args)
        run_dir = Path(args.run_dir) if getattr(args, "run_dir", None) else None
        if run_dir is not None and (nodes is None or nodes.rank == 0):
            check_new_run_dir(run_dir)
    resolve_device(config.device)  # a bad --device is a usage error before anything is written
    if run_dir is None and new_dir:
        run_dir = runs.new_run_dir(getattr(args, "runs_dir", "runs"), config)
    return config, run_dir, resume


@contextmanager
def _holding_run(args: argparse.Namespace, run_dir: Path, resume: bool) -> Iterator[None]:
    """The trainer's hold on its run directory: the lock, for its whole life."""
    with runs.lock_run(run_dir):  # one trainer per run directory, for its whole life
        if not resume and getattr(args, "run_dir", None):
            check_new_run_dir(run_dir)  # again: a trainer may have started since the check
        runs.remove_temp_files(run_dir)  # left by a trainer killed mid-write
        yield


def _train(
    args: argparse.Namespace,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    world: Any = None,
) -> int:
    from cnn_tui.training.loop import engine

    main = world is None or world.main
    reporter = make_reporter(args, sys.stdout) if main else SilentReporter()
    epochs_total = config.epochs
    report = quietly(reporter)

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "batch":
            event = {**event, "epochs": epochs_total}  # for the progress bar label only
        report(event)

    say = quietly(reporter.print)
    if not isinstance(reporter, JsonReporter):
        say(f"run dir: {run_dir}")
    stop = threading.Event()
    try:
        note = quietly(lambda text: print(f"cnn-tui: {text}", file=sys.stderr))
        with stop_on_signals(stop, note if main else lambda text: None):
            summary = engine.train(
                config, run_dir, on_event=on_event, stop=stop, resume=resume, world=world
            )
    finally:
        quietly(reporter.close)()
    if summary["status"] == "stopped":
        return EXIT_STOPPED
    if not isinstance(reporter, JsonReporter):
        for line in finished_lines(summary, run_dir):
            say(line)
    return EXIT_OK


# --- several processes (--devices N) ---------------------------------------------------------


def _nodes(args: argparse.Namespace) -> Any:
    from cnn_tui.training.loop.distributed import Nodes

    nodes = Nodes(
        getattr(args, "nnodes", 1) or 1,
        getattr(args, "node_rank", 0) or 0,
        getattr(args, "rdzv_endpoint", None),
    )
    nodes.check()
    if nodes.count > 1 and not (getattr(args, "run_dir", None) or getattr(args, "resume", None)):
        raise UsageError(
            f"--nnodes {nodes.count} needs --run-dir DIR (the same on every machine; node 0 "
            "writes it) or --resume RUN_DIR"
        )
    return nodes


def _rank_args(args: argparse.Namespace, config: TrainConfig, run_dir: Path, resume: bool):
    """The `cnn-tui` command line of each rank: the run's settings given in full (or --resume
    with what may change), so that every rank, on any machine, trains the same run."""
    from cnn_tui.commands.train_flags import config_flags, given_flags

    output = ["--json"] if getattr(args, "json", False) else []
    if resume:
        changes = [f"--{name.replace('_', '-')}={text}" for name, text in given_flags(args).items()]
        where = ["--resume", str(run_dir), *changes, f"--device={config.device}"]
    else:
        where = ["--run-dir", str(run_dir), *config_flags(config)]
    return ["train", "--no-ui", *output, *where]


def _launch_ranks(
    args: argparse.Namespace,
    config: TrainConfig,
    run_dir: Path | None,
    resume: bool,
    processes: int,
    nodes: Any,
) -> int:
    """The launcher: torchrun starts `processes` ranks here; the exit code is the run's."""
    import shlex

    from cnn_tui.training.loop import distributed

    distributed.check_batch(config, processes * nodes.count)
    if run_dir is None:
        run_dir = runs.new_run_dir(getattr(args, "runs_dir", "runs"), config)
    argv = distributed.torchrun_argv(processes, nodes, _rank_args(args, config, run_dir, resume))
    where = f"{processes} processes"
    if nodes.count > 1:
        where += f" here, {processes * nodes.count} on {nodes.count} machines"
    command = shlex.join(distributed.torchrun_command(argv))
    print(f"cnn-tui: training on {where} (torchrun): {command}", file=sys.stderr, flush=True)
    failures = distributed.launch(argv, processes)
    return _launched_exit(run_dir, failures, nodes)


def _launched_exit(run_dir: Path, failures: list[Any] | None, nodes: Any) -> int:
    """The exit code of a launched run (`failures`: None when a signal stopped it), from the
    status.json that rank 0 wrote for this launcher; when rank 0 could not write the end (another
    rank died, rank 0 was killed), the launcher marks the run failed with the message of the rank
    that failed."""
    from cnn_tui.training.loop import distributed

    status = runs.read_status(run_dir) if nodes.rank == 0 else None
    state = status.get("status") if status and status.get("pid") == os.getpid() else None
    ended = {"finished": EXIT_OK, "stopped": EXIT_STOPPED, "failed": EXIT_FAILED}
    if state in ended:
        return ended[state]
    if failures is None:  # a signal, before the run had started or after it ended
        return EXIT_STOPPED
    if not failures:
        return EXIT_OK  # (on a machine other than node 0, which writes nothing)
    if state is None and any(f.exit_code == distributed.EXIT_USAGE for f in failures):
        return distributed.EXIT_USAGE  # rank 0 printed why, before the run started
    message = distributed.failure_message(failures)
    if state == "running":
        _record_failure(run_dir, status, message)
    raise RunError(message)


def _record_failure(run_dir: Path, status: dict[str, Any], message: str) -> None:
    """Mark the run failed, as its trainer would have: the ranks are gone, so take the lock."""
    try:
        with runs.lock_run(run_dir):
            epoch, epochs = status.get("epoch", 0), status.get("epochs", 0)
            runs.write_status(run_dir, "failed", message=message, epoch=epoch, epochs=epochs)
            log = runs.EventLog(run_dir)
            try:
                log.emit(
                    "failed", message=message, epoch=epoch + 1 if isinstance(epoch, int) else 1
                )
            finally:
                log.close()
    except (UsageError, OSError):  # another trainer holds it now, or the disk is full: leave it
        pass


def _run_rank(args: argparse.Namespace, world: Any) -> int:
    """One rank of a data-parallel run: rank 0 resolves the run and trains it as a one-process
    trainer would (lock, files, output); the others train along, silently."""
    from contextlib import ExitStack

    from cnn_tui.training.loop import distributed

    try:
        with ExitStack() as hold, distributed.process_group(world, args.device or "auto"):

            def plan() -> tuple[dict[str, Any], str, bool]:
                config, run_dir, resume = _train_plan(args, new_dir=True)
                assert run_dir is not None
                distributed.check_batch(config, world.size)
                hold.enter_context(_holding_run(args, run_dir, resume))
                return config.to_dict(), str(run_dir), resume

            values, run_dir, resume = world.from_main(plan)
            config = TrainConfig.from_mapping(values)
            return _train(args, config, Path(run_dir), resume, world)
    except distributed.Reported as exc:  # rank 0 reports it
        return exc.exit_code
    except distributed.PeerLost:
        if world.main and not distributed.has_launcher():
            raise
        return EXIT_FAILED  # the launcher reports the rank that failed
    except BaseException as exc:
        distributed.record_failure(exc)
        raise


def run_eval(args: argparse.Namespace) -> int:
    """`cnn-tui eval RUN --no-ui`: recompute the test metrics from the checkpoint; writes eval.json."""
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    runs.read_config(run_dir)  # usage errors before loading torch
    if not (run_dir / runs.CHECKPOINT_FILE).is_file():
        raise UsageError(
            f"{run_dir / runs.CHECKPOINT_FILE} does not exist: the run saved no checkpoint yet; "
            f"continue it with: cnn-tui train --no-ui --resume {run_dir}"
        )
    from cnn_tui.training.loop import engine, metrics

    started = time.perf_counter()
    report = engine.evaluate_run(run_dir, getattr(args, "device", "auto") or "auto")
    report["seconds"] = time.perf_counter() - started
    try:
        runs.write_eval(run_dir, report)
    except OSError as exc:  # eval.json is a folder, the run dir is read-only, the disk is full
        raise RunError(
            f"cannot write {run_dir / runs.EVAL_FILE} ({exc.strerror or exc}): the metrics were "
            "computed but not saved; make the run directory writable"
        ) from None
    if getattr(args, "json", False):
        print(json.dumps(report))
        return EXIT_OK
    where = f"epoch {report['checkpoint_epoch']}"
    if report["checkpoint_batch"]:
        where = f"epoch {report['checkpoint_epoch'] + 1}, batch {report['checkpoint_batch']}"
    weights = ""
    if report.get("weights") == runs.BEST_FILE:
        weights = (
            f"; the weights of its best epoch, {report['weights_epoch']} ({runs.BEST_FILE}: "
            "early stopping)"
        )
    print(f"run {run_dir} — checkpoint after {where}{weights}, {report['n_test']} test images")
    print(metrics.format_report(report))
    print(f"test loss {report['test_loss']:.4f}; written to {run_dir / runs.EVAL_FILE}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    """`cnn-tui runs --no-ui`: the runs under --runs-dir, newest first."""
    runs_dir = Path(getattr(args, "runs_dir", "runs"))
    infos = runs.list_runs(runs_dir)
    if getattr(args, "json", False):
        print(json.dumps([info.to_dict() for info in infos]))
        return EXIT_OK
    if not infos:
        print(f"no runs in {runs_dir}")
        return EXIT_OK
    rows = [
        (
            info.name,
            info.model,
            info.dataset,
            f"{info.epochs_done}/{info.epochs}",
            _pct(info.best_val_acc).strip(),
            _pct(info.test_acc).strip(),
            info.status_label,
        )
        for info in infos
    ]
    header = ("run", "model", "data set", "epochs", "best val", "test acc", "status")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    for info in infos:  # damaged files: what could be read is in the table
        for problem in info.problems:
            print(f"{info.name}: {problem}")
    return EXIT_OK
