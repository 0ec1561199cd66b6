"""Data-parallel training over several processes: torch.distributed with DistributedDataParallel,
started by torchrun (`torch.distributed.run`); NCCL between GPUs, gloo on the CPU.

How `cnn-tui train --no-ui --devices N` becomes N processes:

- The **launcher** (the command itself, one per node: `trainer.train`) checks the settings, picks
  the run directory and runs torchrun in its own process (`launch_ranks`, `launch`:
  torch.distributed.run's own `parse_args` / `run` on the command line `torchrun_argv` builds),
  which starts N **ranks** (`trainer.run_rank`): copies of
  `python -m cnn_tui train --no-ui ...`, each with RANK, WORLD_SIZE and LOCAL_RANK set
  (`World.from_env`). Signals to the launcher (Ctrl+C, SIGTERM from `cnn-tui`'s Stop, SIGHUP)
  reach every rank through torchrun, once.
- **Rank 0 alone** resolves the run (settings, lock, checkpoint) and writes the run directory; the
  other ranks get what they need from it through the process group (`World.from_main`).
- **Batches**: every rank walks the one seeded batch order of a one-process run and takes a
  contiguous slice of each batch (`World.shard`); its loss is the slice's *sum* × N / B (B the
  images of the whole batch), so DistributedDataParallel's mean of the N gradients is exactly one
  process's mean over the B images, whatever the slices' sizes (a last partial batch included).
- **Agreement**: each batch the ranks add [loss, correct, stop] in one all_reduce, so a stop (a
  signal to any rank) or a diverged loss ends every rank at the same batch; work that can fail on
  one rank alone (loading the data) runs through `World.everywhere`, which fails every rank with
  the message of the one that failed.
- **A rank that dies** leaves its message in torchrun's error file (`record_failure`); the ranks
  that lose contact with it (`PeerLost`) stop without writing, and the launcher, once torchrun has
  ended, marks the run failed with that rank's message (`launched_exit`, `failure_message`).

torch is imported inside the functions: the launcher's argument checks stay cheap.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cnn_tui.errors import RunError, UsageError
from cnn_tui.training.runs.state import RunState

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnn_tui.training.config import TrainConfig
    from cnn_tui.training.system.processes import ProcessId

T = TypeVar("T")

LAUNCHER_PID_ENV = "CNN_TUI_LAUNCHER_PID"  # set by the launcher: the pid status.json names
LAUNCHER_STARTED_ENV = "CNN_TUI_LAUNCHER_STARTED"  # ... and its start time (processes.py)
SHUTDOWN_TIMEOUT_S = 120  # torchrun's wait for the ranks to checkpoint after a signal, then SIGKILL
# a trainer's exit codes (a launcher's and each rank's): finished, failed, usage error, stopped
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130

# How close N processes end to one process (a model without BatchNorm or dropout, the same
# --batch-size), per precision: the largest difference of any weight, as a fraction of how far
# that weight's tensor moved during the run. fp32: only the order of the additions differs
# (measured 3.5e-6; 1.5e-8 absolute). bf16 autocast: each process's weight gradients leave their
# kernels rounded to bf16 (8 significant bits) before the all-reduce adds them, where one process
# rounds the whole batch's sum once; that 2^-8 difference then moves weights and activations across
# bf16 rounding steps, and the runs drift apart about as far as one bf16 run ends from one fp32
# run (measured 0.13-0.28 over 5 seeds). Checked by tests/training/test_distributed.py, quoted in
# docs/several-gpus.md.
WEIGHT_AGREEMENT = {"fp32": 1e-4, "bf16": 0.5}


class PeerLost(RunError):
    """A collective failed: another rank is gone. The launcher reports why; this rank only ends."""


class Reported(RunError):
    """Another rank failed and rank 0 records it; this rank ends with `exit_code`, silently."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class World:
    """Which of how many processes this one is. `World()` is a one-process run: every method is
    then a no-op or returns its input, so the engine has one code path."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run directory and prints."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls) -> World | None:
        """The world torchrun started this process in (None: not started by torchrun)."""
        try:
            size = int(os.environ["WORLD_SIZE"])
            rank = int(os.environ["RANK"])
            local_rank = int(os.environ.get("LOCAL_RANK", rank))
            local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        except (KeyError, ValueError):
            return None
        return cls(rank, size, local_rank, local_size)

    # --- sharding -----------------------------------------------------------------------------

    def span(self, n: int) -> tuple[int, int]:
        """[start, stop) of this rank's contiguous share of n items (as `tensor_split` splits)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a batch's indices."""
        if not self.parallel:
            return index
        start, stop = self.span(len(index))
        return index[start:stop]

    # --- collectives --------------------------------------------------------------------------

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Add `tensor` over the ranks, in place; returns it."""
        if self.parallel:
            import torch.distributed as dist

            _collective(dist.all_reduce, tensor)
        return tensor

    def any(self, flag: bool) -> bool:
        """Whether `flag` is set on any rank (every rank gets the same answer)."""
        if not self.parallel:
            return flag
        import torch

        return bool(self.sum_(torch.tensor([float(flag)], device=_collective_device())).item())

    def gather(self, value: T) -> list[T]:
        """`value` of every rank, in rank order, on every rank."""
        if not self.parallel:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.size
        _collective(dist.all_gather_object, values, value)
        return values

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank (the others pass anything)."""
        if not self.parallel:
            return value
        import torch.distributed as dist

        box = [value if self.main else None]
        _collective(dist.broadcast_object_list, box, 0)
        return box[0]

    def sync_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers into every rank's copy of `module` (BatchNorm's running
        statistics drift apart when each rank normalises its own slice)."""
        if not self.parallel:
            return
        import torch.distributed as dist

        for tensor in [*module.parameters(), *module.buffers()]:
            _collective(dist.broadcast, tensor.data, 0)

    def from_main(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0 (reading the run directory), its result on every rank. When it
        raises, rank 0 re-raises it and the others end quietly (`Reported`)."""
        if not self.parallel:
            return work()
        outcome: tuple[str, Any] = ("ok", None)
        error: BaseException | None = None
        if self.main:
            try:
                outcome = ("ok", work())
            except Exception as exc:
                error, outcome = exc, _failure(exc)
        outcome = self.broadcast(outcome)
        if error is not None:
            raise error
        return _unwrap(outcome, "rank 0")

    def everywhere(self, work: Callable[[], T]) -> T:
        """`work()` on every rank; when it raises on any, every rank fails with the message of
        the first that did (rank 0 raises it, naming the rank, so that it is recorded)."""
        if not self.parallel:
            return work()
        try:
            result, outcome = work(), ("ok", None)
        except Exception as exc:
            result, outcome, error = None, _failure(exc), exc
        else:
            error = None
        outcomes = self.gather(outcome)
        for rank, (state, detail) in enumerate(outcomes):
            if state == "ok":
                continue
            if rank == self.rank and error is not None and self.main:
                raise error
            return _unwrap((state, detail), f"rank {rank}", raise_here=self.main)
        return result  # type: ignore[return-value]


def _failure(exc: BaseException) -> tuple[str, Any]:
    kind = "usage" if isinstance(exc, UsageError) else "run"
    return kind, str(exc) or type(exc).__name__


def _unwrap(outcome: tuple[str, Any], where: str, *, raise_here: bool = False) -> Any:
    """The value of an ("ok", value) outcome; for a failure, the error this rank raises: the
    message itself on rank 0 (`raise_here`: it records it), else a quiet `Reported`."""
    state, detail = outcome
    if state == "ok":
        return detail
    if raise_here:
        if state == "usage":
            raise UsageError(f"{where}: {detail}")
        raise RunError(f"{where}: {detail}")
    raise Reported(f"{where}: {detail}", EXIT_USAGE if state == "usage" else 1)


def _collective_device() -> torch.device:
    """Where collectives' small tensors live: the GPU under NCCL, else the CPU."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# what gloo and NCCL say when the process at the other end of a collective is gone
_PEER_LOSS_HINTS = ("connection closed by peer", "connection reset", "broken pipe", "timed out")


def is_peer_loss(exc: BaseException) -> bool:
    """Whether `exc`, raised inside a collective (DDP's gradient all-reduce included), means
    another rank is gone rather than a bug here."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError | ConnectionError) and any(
        hint in text for hint in _PEER_LOSS_HINTS
    )


def _collective(function: Callable[..., Any], *args: Any) -> None:
    """Run a collective; another rank gone (its socket closed, a timeout) is `PeerLost`."""
    try:
        function(*args)
    except (RuntimeError, ConnectionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PeerLost(f"lost contact with another process of the run ({reason})") from None


# --- a rank's life ---------------------------------------------------------------------------


def rank_device(device_spec: str, world: World) -> torch.device:
    """The device of this rank for `--device device_spec`: on CUDA the GPU of its local rank."""
    import torch

    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(device_spec)
    if world.parallel and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


@contextmanager
def process_group(world: World, device_spec: str) -> Iterator[None]:
    """Join the run's process group (NCCL on GPUs, gloo on the CPU) for the block's duration."""
    import torch.distributed as dist

    device = rank_device(device_spec, world)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    try:
        yield
    finally:
        try:
            dist.destroy_process_group()
        except (RuntimeError, ValueError):  # a peer already gone: nothing left to tear down
            pass


def wrap_model(net: nn.Module, device: torch.device) -> nn.Module:
    """`net` under DistributedDataParallel (its gradients averaged over the ranks in backward)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids)


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """BatchNorm layers as SyncBatchNorm (their state_dict keys stay the same)."""
    from torch import nn

    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def describe(world: World) -> dict[str, Any]:
    """What run_started says about the processes: how many, their backend, and the rank and
    identity (pid, host, start time) of each."""
    backend = None
    if world.parallel:
        import torch.distributed as dist

        backend = dist.get_backend()
    from cnn_tui.training.system.processes import this_process

    me = {"rank": world.rank, **this_process().fields()}  # pid, host, pid_started
    return {"world_size": world.size, "backend": backend, "ranks": world.gather(me)}


def status_pid() -> int:
    """The pid status.json names: the launcher's (what Stop signals, and whose life says whether
    the run is alive), or this process's when there is no launcher."""
    return status_process().pid


def status_process() -> ProcessId:
    """The process status.json names (`status_pid`), with its host and start time: rank 0 runs
    on the launcher's machine, which told it its identity."""
    from cnn_tui.training.system import processes

    try:
        pid = int(os.environ[LAUNCHER_PID_ENV])
        started = float(os.environ[LAUNCHER_STARTED_ENV])
    except (KeyError, ValueError):
        return processes.this_process()
    return processes.ProcessId(pid, processes.this_host(), started)


def has_launcher() -> bool:
    return LAUNCHER_PID_ENV in os.environ


def record_failure(exc: BaseException) -> None:
    """Leave this rank's message in torchrun's error file, where the launcher reads it."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    message = (
        f"{exc}" if isinstance(exc, (RunError, UsageError)) else f"{type(exc).__name__}: {exc}"
    )
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"message": message, "timestamp": int(time.time())}, handle)
    except OSError:
        pass


class SilentLog:
    """The event log of a rank other than 0: events go nowhere (rank 0 writes metrics.jsonl)."""

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"event": kind, "time": time.time(), **fields}

    def batch_due(self, last_of_epoch: bool = False) -> bool:
        return False  # (nothing is written: nothing to measure for it)

    def close(self) -> None:
        pass


# --- the launcher ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Nodes:
    """The multi-node flags, passed through to torchrun (one node: all defaults)."""

    count: int = 1
    rank: int = 0
    endpoint: str | None = None

    def check(self) -> None:
        if self.count < 1:
            raise UsageError(f"--nnodes must be at least 1, got {self.count}")
        if self.count == 1:
            if self.rank or self.endpoint:
                raise UsageError("--node-rank and --rdzv-endpoint need --nnodes 2 or more")
            return
        if not 0 <= self.rank < self.count:
            raise UsageError(
                f"--node-rank must be 0 to {self.count - 1} for --nnodes {self.count}, "
                f"got {self.rank}"
            )
        host, _, port = (self.endpoint or "").rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(
                f"--nnodes {self.count} needs --rdzv-endpoint HOST:PORT, the address of node 0 "
                "(the same on every node), e.g. --rdzv-endpoint gpu1:29500"
            )


def processes_per_node(config: TrainConfig) -> int:
    """How many ranks `--devices` asks for on this node; a request this machine cannot meet is a
    UsageError. One process never involves torchrun."""
    import torch

    from cnn_tui.training.system.devices import resolve_device

    device = resolve_device(config.device)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if config.devices == "all":
        if device.type != "cuda":
            raise UsageError(
                "--devices all means every GPU, and this run is on the CPU "
                f"(--device {config.device}): give a number of processes, e.g. --devices 2"
            )
        count = gpus
    else:
        count = int(config.devices)
    if count > 1 and config.device.startswith("cuda:"):
        raise UsageError(
            f"--device {config.device} names one GPU, and --devices {config.devices} asks for "
            f"{count}: use --device cuda (GPUs 0 to {count - 1}; choose others with "
            "CUDA_VISIBLE_DEVICES)"
        )
    if device.type == "cuda" and count > gpus:
        raise UsageError(
            f"--devices {count}: this machine has {gpus} GPU{'s' * (gpus != 1)}; pass "
            f"--devices {gpus} or less (or --devices all)"
        )
    if count > 1 and config.sync_bn and device.type != "cuda":
        raise UsageError(
            "--sync-bn needs GPUs (SyncBatchNorm has no CPU implementation): leave it off on the "
            "CPU, where each process normalises its own slice of the batch"
        )
    return count


def check_batch(config: TrainConfig, world_size: int) -> None:
    """Each rank needs at least 2 images of every batch (BatchNorm normalises its slice)."""
    if config.batch_size < 2 * world_size:
        raise UsageError(
            f"--batch-size {config.batch_size} is too small for {world_size} processes: each "
            f"takes a slice of every batch, so pass --batch-size {2 * world_size} or more"
        )


def torchrun_argv(nproc: int, nodes: Nodes, child_args: list[str]) -> list[str]:
    """torchrun's command line (after `torchrun` / `python -m torch.distributed.run`) that
    starts `nproc` ranks of `python -m cnn_tui CHILD_ARGS` on this node."""
    argv = [f"--nproc-per-node={nproc}"]
    if nodes.count > 1:  # static rendezvous: node 0 holds rank 0, which writes the run dir
        argv += [
            f"--nnodes={nodes.count}",
            f"--node-rank={nodes.rank}",
            f"--rdzv-endpoint={nodes.endpoint}",
        ]
    else:
        argv.append("--standalone")  # a free local port: runs side by side do not collide
    argv += ["--max-restarts=0", f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}"]
    # "--": the rank's flags are never read as torchrun's own (Python 3.11's argparse takes
    # `--log=csv` for an abbreviation of its --log-dir, --logs-specs ... and refuses it)
    return [*argv, "--module", "--", "cnn_tui", *child_args]


def torchrun_command(argv: list[str]) -> list[str]:
    """The same as a command to type (what the launcher runs in-process)."""
    return [sys.executable, "-m", "torch.distributed.run", *argv]


@dataclass(frozen=True)
class RankFailure:
    rank: int
    exit_code: int
    pid: int
    host: str
    message: str


def launch(argv: list[str], nproc: int) -> list[RankFailure] | None:
    """Run torchrun with `argv` in this process until every rank has ended; the ranks that
    failed (empty: all ended with 0; None: a signal ended it). A signal to this process is passed
    on to the ranks by torchrun, which then waits for them (up to SHUTDOWN_TIMEOUT_S) to
    checkpoint."""
    import logging
    import signal

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from cnn_tui.training.system.processes import this_process

    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
    os.environ[LAUNCHER_STARTED_ENV] = repr(this_process().started)
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores (torchrun would pick 1, and say so)
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    for name in list(logging.root.manager.loggerDict):  # each has its own level (LOGLEVEL)
        if name.startswith("torch.distributed.elastic"):  # its notes, said once ourselves
            logging.getLogger(name).setLevel(logging.CRITICAL)
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        torchrun.run(torchrun.parse_args(argv))
    except ChildFailedError as exc:
        return [
            RankFailure(rank, f.exitcode, f.pid, _host(f), _rank_message(f))
            for rank, f in sorted(exc.failures.items())
        ]
    except SignalException:
        return None  # the ranks had the signal too: they stopped (status.json says how)
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    return []


def _host(failure: Any) -> str:
    """The machine a failed rank ran on (torch's ProcessFailure has no host name field in every
    version; one node: this machine, left unnamed)."""
    return str(getattr(failure, "hostname", "") or "")


def _rank_message(failure: Any) -> str:
    """What a rank left in its error file; "" when it left none (torchrun then fills in a
    generic "To enable traceback see: ..." or "Signal N received": not the rank's words)."""
    data = getattr(failure, "error_file_data", None)
    if not isinstance(data, dict) or data.get("message") in (None, "", "<NONE>"):
        return ""
    return _failure_text(failure.message)


def _failure_text(message: Any) -> str:
    if isinstance(message, dict):  # torchrun's own format: {"message": ..., "extraInfo": ...}
        message = message.get("message", "")
    return str(message or "").strip()


def failure_message(failures: list[RankFailure]) -> str:
    """One line on why a run's ranks failed: the rank that left a message, else one a signal
    killed, else the first."""
    if not failures:
        return ""
    named = [f for f in failures if f.message]
    # torchrun ends the survivors of a dead rank with SIGTERM: the rank killed otherwise is the cause
    killed = sorted(
        (f for f in failures if f.exit_code < 0), key=lambda f: f.exit_code == -signal.SIGTERM
    )
    culprit = (named or killed or failures)[0]
    where = f"rank {culprit.rank} (pid {culprit.pid}{', ' + culprit.host if culprit.host else ''})"
    if culprit in named:
        return f"{where} failed: {culprit.message}"
    if culprit.exit_code < 0:
        try:
            name = signal.Signals(-culprit.exit_code).name
        except ValueError:
            name = f"signal {-culprit.exit_code}"
        return f"{where} was killed by {name}; the run stopped with it"
    return f"{where} exited with code {culprit.exit_code} without a message; see its output"


def launch_ranks(
    run_dir: Path,
    processes: int,
    nodes: Nodes,
    child_args: list[str],
    note: Callable[[str], None],
) -> int:
    """The launcher: torchrun starts `processes` ranks of `python -m cnn_tui CHILD_ARGS` here
    (`note` is told the command); returns the run's exit code once every rank has ended."""
    argv = torchrun_argv(processes, nodes, child_args)
    where = f"{processes} processes"
    if nodes.count > 1:
        where += f" here, {processes * nodes.count} on {nodes.count} machines"
    note(f"training on {where} (torchrun): {shlex.join(torchrun_command(argv))}")
    return launched_exit(run_dir, launch(argv, processes), nodes)


def launched_exit(run_dir: Path, failures: list[RankFailure] | None, nodes: Nodes) -> int:
    """The exit code of a launched run (`failures`: None when a signal stopped it), from the
    status.json that rank 0 wrote for this launcher; when rank 0 could not write the end (another
    rank died, rank 0 was killed), the launcher marks the run failed with the message of the rank
    that failed (and raises it as RunError)."""
    from cnn_tui.training.runs import store as runs
    from cnn_tui.training.system.processes import ProcessId, this_process

    status = runs.read_status(run_dir) if nodes.rank == 0 else None
    mine = this_process().same_as(ProcessId.from_record(status))
    state = status.get("status") if status and mine else None
    ended = {
        RunState.FINISHED: EXIT_OK,
        RunState.STOPPED: EXIT_STOPPED,
        RunState.FAILED: EXIT_FAILED,
    }
    if state in ended:
        return ended[state]
    if failures is None:  # a signal, before the run had started or after it ended
        return EXIT_STOPPED
    if not failures:
        return EXIT_OK  # (on a machine other than node 0, which writes nothing)
    if state is None and any(f.exit_code == EXIT_USAGE for f in failures):
        return EXIT_USAGE  # rank 0 printed why, before the run started
    message = failure_message(failures)
    if state == RunState.RUNNING:
        assert status is not None
        _mark_failed(run_dir, status, message)
    raise RunError(message)


def _mark_failed(run_dir: Path, status: dict[str, Any], message: str) -> None:
    """Mark the run failed, as its trainer would have: the ranks are gone, so take the lock."""
    from cnn_tui.training.runs import store as runs

    try:
        with runs.lock_run(run_dir):
            epoch, epochs = status.get("epoch", 0), status.get("epochs", 0)
            runs.write_status(run_dir, RunState.FAILED, message=message, epoch=epoch, epochs=epochs)
            log = runs.EventLog(run_dir)
            try:
                log.emit(
                    "failed", message=message, epoch=epoch + 1 if isinstance(epoch, int) else 1
                )
            finally:
                log.close()
    except (UsageError, OSError):  # another trainer holds it now, or the disk is full: leave it
        pass
