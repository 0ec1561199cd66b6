"""A trainer's life: one run trained in this process, or by torchrun ranks launched from here.

`train(request, reporter, rank_args)` is `cnn-tui train --no-ui` once its flags are typed
settings (`TrainRequest`). Every usage error is raised before anything is written; the trainer
then holds its run directory's lock (`runs.lock_run`) for its whole life, so a second trainer on
the same folder is refused, and meanwhile keeps what it prints in the run's output.log
(`output_log.keep_output`). SIGINT, SIGTERM or SIGHUP (a dropped SSH session; not under nohup)
stop at the next batch boundary with a checkpoint (`EXIT_STOPPED`); a second Ctrl+C aborts at once.

`--devices N` (loop/distributed.py): this process becomes the launcher of N ranks started by
torchrun (`distributed.launch_ranks`); each rank runs `run_rank`, rank 0 as the trainer above
(lock, files, reports), the others silently.

Nothing here prints: what happens goes to a `TrainReporter` (the command's output), the engine's
events as they come. `evaluate_saved` is `cnn-tui eval`'s recomputation of a run's test metrics.
No textual import, and torch only inside the functions: scripts and CI never load the TUI.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cnn_tui import catalog
from cnn_tui.errors import RunError, UsageError
from cnn_tui.training import loggers
from cnn_tui.training.config import FIELDS, TrainConfig
from cnn_tui.training.loop import distributed
from cnn_tui.training.loop.distributed import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, Nodes, World
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs.state import BUSY, RunState
from cnn_tui.training.runs.store import check_new_run_dir
from cnn_tui.training.system import background_import

RESUMABLE = ("epochs", "device", "devices", "log")  # the settings a resumed run may change


@dataclass(frozen=True)
class TrainRequest:
    """What one `cnn-tui train --no-ui` asks for, as typed settings.

    A new run: `config` (layered and checked), written to `run_dir` or, when that is None, to a
    new folder under `runs_dir`. A resumed run: `resume` (its folder) and `changes` (settings to
    change, typed; only those in RESUMABLE may differ from the run's own). `nodes`: the machines
    of a data-parallel run."""

    config: TrainConfig | None = None
    run_dir: Path | None = None
    resume: Path | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    runs_dir: Path = Path("runs")
    nodes: Nodes = field(default_factory=Nodes)
    # --trust-model-code: a resumed run of the user's own class may run its copy of the code
    trust_model_code: bool = False

    @property
    def device(self) -> str:
        """The device asked for (a rank joins its process group on it before the run is read)."""
        if self.resume is not None or self.config is None:
            return str(self.changes.get("device") or "auto")
        return self.config.device


class TrainReporter(Protocol):
    """Where a trainer's news goes: the command prints it, the core never does."""

    def begin(self, run_dir: Path) -> None:
        """The run directory is chosen and held; training starts."""

    def event(self, event: dict[str, Any]) -> None:
        """An event of the engine (run_started, batch, epoch, stopped, ...), as it happens."""

    def note(self, text: str) -> None:
        """A remark beside the run's output (a signal received, the launcher's command)."""

    def finished(self, summary: dict[str, Any], run_dir: Path) -> None:
        """The run finished; `summary` is what summary.json holds."""

    def close(self) -> None:
        """Training is over (finished, stopped or failed)."""


class SilentReporter:
    """What a rank other than 0 reports: nothing (rank 0 speaks for the run)."""

    def begin(self, run_dir: Path) -> None:
        pass

    def event(self, event: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def finished(self, summary: dict[str, Any], run_dir: Path) -> None:
        pass

    def close(self) -> None:
        pass


# --- the run's settings and directory ---------------------------------------------------------


def resumable_flags() -> str:
    """ "--epochs, --device, --devices and --log": the flags --resume takes, in words."""
    flags = [FIELDS[name].flag for name in RESUMABLE]
    return ", ".join(flags[:-1]) + " and " + flags[-1]


def resume_config(run_dir: Path, changes: Mapping[str, Any]) -> TrainConfig:
    """The settings of the run to resume (its config.toml) with `changes` applied. A change of a
    setting outside RESUMABLE (one that differs from the run's own) is a UsageError, and so is a
    run that is still training."""
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such run directory")
    config = runs.read_config(run_dir)
    if not runs.is_run_dir(run_dir):  # a config.toml of the user's own is no run to write into
        raise UsageError(
            f"--resume {run_dir} is not a run folder (it has no {runs.STATUS_FILE} or "
            f"{runs.EVENTS_FILE} beside its {runs.CONFIG_FILE}): start a new run with "
            "--config instead"
        )
    other = [n for n, v in changes.items() if n not in RESUMABLE and getattr(config, n) != v]
    if other:
        flags = ", ".join(FIELDS[name].flag for name in other)
        raise UsageError(
            f"--resume continues {run_dir} with its own settings; only {resumable_flags()} may "
            f"be given with it (got {flags})"
        )
    if changes:
        config = config.replace(**changes)
    status = runs.read_status(run_dir)
    if runs.effective_status(status) in BUSY:
        raise UsageError(
            f"run {run_dir} is still running ({runs.trainer_text(status)}); stop it first"
        )
    return config


def plan_run(
    request: TrainRequest, *, new_dir: bool, node_rank: int = 0
) -> tuple[TrainConfig, Path | None, bool]:
    """(settings, run directory, resuming?) of `request`, every usage error raised before
    anything is written; the run directory is None for a new folder not made yet (`new_dir`:
    make it). On a machine other than node 0 (`node_rank`) the run directory is not read."""
    from cnn_tui.training.system.devices import resolve_device

    run_dir: Path | None
    if request.resume is not None and node_rank > 0:  # rank 0 (on node 0) reads the run
        config, run_dir = TrainConfig.from_mapping(request.changes), request.resume
    elif request.resume is not None:
        config, run_dir = resume_config(request.resume, request.changes), request.resume
        if catalog.is_own(config.model):  # refused before anything is written (or run)
            from cnn_tui.training.models import own

            own.check_resume(run_dir, config, trusted=request.trust_model_code)
    else:
        assert request.config is not None, "a new run needs its settings"
        config, run_dir = request.config, request.run_dir
        if run_dir is not None and node_rank == 0:
            check_new_run_dir(run_dir)
    resolve_device(config.device)  # a bad --device is a usage error before anything is written
    loggers.check_installed(config.loggers)  # --log tensorboard without the package, likewise
    if run_dir is None and new_dir:
        run_dir = runs.new_run_dir(request.runs_dir, config)
    return config, run_dir, request.resume is not None


def check_nodes(request: TrainRequest) -> None:
    """The machines of a data-parallel run: node 0 writes the run directory, which every machine
    must therefore name the same."""
    nodes = request.nodes
    nodes.check()
    if nodes.count > 1 and request.run_dir is None and request.resume is None:
        raise UsageError(
            f"--nnodes {nodes.count} needs --run-dir DIR (the same on every machine; node 0 "
            "writes it) or --resume RUN_DIR"
        )


@contextmanager
def holding_run(run_dir: Path, request: TrainRequest) -> Iterator[None]:
    """The trainer's hold on its run directory: the lock, for its whole life, and its console
    output kept in the run's output.log (`output_log.keep_output`) meanwhile."""
    from cnn_tui.training.runs.output_log import keep_output

    with runs.lock_run(run_dir):  # one trainer per run directory, for its whole life
        if request.resume is None and request.run_dir is not None:
            check_new_run_dir(run_dir, locked=True)  # again: a trainer may have started since
        runs.remove_temp_files(run_dir)  # left by a trainer killed mid-write
        with keep_output(run_dir, resume=request.resume is not None):
            yield


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


# --- training ---------------------------------------------------------------------------------


def train(
    request: TrainRequest,
    reporter: TrainReporter,
    rank_args: Callable[[TrainConfig, Path], list[str]],
    started: float | None = None,
) -> int:
    """Train `request` in this process: EXIT_OK finished, EXIT_STOPPED stopped (a failure
    raises RunError, a bad request UsageError). `started`: when the command began (unix
    seconds), where the run's wall time starts. With `--devices N`, launch N processes that train
    together and return as the run ended; `rank_args(config, run_dir)` is the `cnn-tui` command
    line each of them is started with."""
    world = World.from_env()
    if world is not None and world.parallel:  # a rank that torchrun started
        return run_rank(request, world, reporter, started)
    check_nodes(request)
    config, run_dir, resume = plan_run(request, new_dir=False, node_rank=request.nodes.rank)
    if world is None:  # (a run that torchrun started as one process trains as one)
        processes = distributed.processes_per_node(config)
        if processes > 1 or request.nodes.count > 1:
            nodes = request.nodes
            distributed.check_batch(config, processes * nodes.count)
            from cnn_tui.training.models import own

            own.drop_kept()  # (the ranks build your own class themselves)
            if run_dir is None:
                run_dir = runs.new_run_dir(request.runs_dir, config)
            child_args = rank_args(config, run_dir)
            return distributed.launch_ranks(run_dir, processes, nodes, child_args, reporter.note)
    # the optimizer's slow import, on a thread while the run folder is made and the engine loads
    # (no torch module is imported here meanwhile: `background_import`)
    background_import.start("torch._dynamo")
    try:
        if run_dir is None:
            run_dir = runs.new_run_dir(request.runs_dir, config)
        with holding_run(run_dir, request):
            return train_here(
                config, run_dir, resume, reporter, started=started, trust=request.trust_model_code
            )
    finally:
        background_import.wait()  # (ended before the engine waited for it: not left running)


def train_here(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    reporter: TrainReporter,
    world: World | None = None,
    started: float | None = None,
    trust: bool = False,
) -> int:
    """Train the run in this process (one rank of it with `world`), telling `reporter`;
    `trust`: --trust-model-code (a resumed run of the user's own class runs its copy)."""
    from cnn_tui.training.loggers.events import RunLoggers
    from cnn_tui.training.loop import engine

    epochs_total = config.epochs
    # --log: only the process that writes the run logs it (rank 0), fed the same events
    writes = world is None or world.main
    run_loggers = RunLoggers(config.loggers if writes else (), run_dir, reporter.note)

    def on_event(event: dict[str, Any]) -> None:
        run_loggers.event(event)  # (never raises: a failing logger is dropped with a warning)
        if event["event"] == "batch":
            event = {**event, "epochs": epochs_total}  # for the progress bar's label
        reporter.event(event)

    reporter.begin(run_dir)
    for warning in config.warnings().values():  # stderr, and so the run's output.log
        reporter.note(f"warning: {warning}")
    stop = threading.Event()
    try:
        with stop_on_signals(stop, reporter.note):
            summary = engine.train(
                config,
                run_dir,
                on_event=on_event,
                stop=stop,
                resume=resume,
                world=world,
                started=started,
                trust_model_code=trust,
            )
    finally:
        run_loggers.close()
        reporter.close()
    if summary["status"] == RunState.STOPPED:
        return EXIT_STOPPED
    reporter.finished(summary, run_dir)
    return EXIT_OK


def run_rank(
    request: TrainRequest, world: World, reporter: TrainReporter, started: float | None = None
) -> int:
    """One rank of a data-parallel run: rank 0 resolves the run and trains it as a one-process
    trainer would (lock, files, `reporter`); the others train along, silently."""
    try:
        with ExitStack() as hold, distributed.process_group(world, request.device):

            def plan() -> tuple[dict[str, Any], str, bool]:
                config, run_dir, resume = plan_run(request, new_dir=True)
                assert run_dir is not None
                distributed.check_batch(config, world.size)
                hold.enter_context(holding_run(run_dir, request))
                return config.to_dict(), str(run_dir), resume

            values, run_dir, resume = world.from_main(plan)
            config = TrainConfig.from_mapping(values)
            speaker = reporter if world.main else SilentReporter()
            trust = request.trust_model_code
            return train_here(config, Path(run_dir), resume, speaker, world, started, trust)
    except distributed.Reported as exc:  # rank 0 reports it
        return exc.exit_code
    except distributed.PeerLost:
        if world.main and not distributed.has_launcher():
            raise
        return EXIT_FAILED  # the launcher reports the rank that failed
    except BaseException as exc:
        distributed.record_failure(exc)
        raise


# --- evaluation -------------------------------------------------------------------------------


def evaluate_saved(
    run_dir: Path, device: str = "auto", trust_model_code: bool = False
) -> dict[str, Any]:
    """Recompute a run's test metrics from its checkpoint and save them as eval.json; returns the
    report (with the seconds it took). A folder that is no run, or has no checkpoint yet, is a
    UsageError before torch loads; so is a run of the user's own class without
    `trust_model_code` (--trust-model-code: `own.run_source`)."""
    run_dir = runs.check_evaluable(run_dir)
    from cnn_tui.training.loop import engine

    started = time.perf_counter()
    report = engine.evaluate_run(run_dir, device, trust_model_code)
    report["seconds"] = time.perf_counter() - started
    try:
        runs.write_eval(run_dir, report)
    except OSError as exc:  # eval.json is a folder, the run dir is read-only, the disk is full
        raise RunError(
            f"cannot write {run_dir / runs.EVAL_FILE} ({exc.strerror or exc}): the metrics were "
            "computed but not saved; make the run directory writable"
        ) from None
    return report
