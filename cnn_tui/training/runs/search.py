"""A search instead of a grid: `cnn-tui sweep --search optuna --trials N --space KEY=SPEC ...`.

Optuna (the optional extra `search`) proposes each trial's settings with its TPE sampler, seeded
from the base settings' `seed`; its median pruner stops a trial whose validation accuracy falls
below the median of the finished trials at the same epoch. Each trial is an ordinary run of the
sweep folder, trained by its own `cnn-tui train --no-ui` process as a grid's runs are, one per
device in parallel, so the comparison table, the overlay, `--show`, `--stop` and `--resume` are
the grid's (`sweeps`); the sweep folder holds the study besides:

    runs/sweep-YYYYmmdd-HHMMSS-search-lr-batch-size/
      sweep.json    the manifest: base settings, "grid": {}, "search" (the space, trials, seed,
                    pruner, the study's name and storage), and a run entry per trial ("trial":
                    its number in the study), added as the study asks for trials
      study.db      the study: Optuna's RDB storage in SQLite (`sqlite:///SWEEP/study.db`)
      trial-000-lr-0.00312-batch-size-64/  one run folder per trial (numbers to 3 digits)

The search space (`parse_space`), one `--space KEY=SPEC` per setting:

    lr=log:1e-4:1e-1          log-uniform between two numbers (a whole-number setting too)
    weight_decay=float:0:0.01 uniform; float:LOW:HIGH:STEP on a grid of STEP
    epochs=int:5:20           whole numbers; int:LOW:HIGH:STEP
    batch_size=32,64,128      one of these values (any setting: optimizer=sgd,adam)

How pruning reaches a trial: the trainer knows nothing of Optuna. The queue runner already reads
each trial's metrics.jsonl as it grows (to report its epochs); for each epoch event it calls
`trial.report(val_acc, epoch)` and `trial.should_prune()` on the trial it asked the study for,
and when the pruner says so it stops the trainer with the ordinary stop (SIGTERM: the batch
ends, a checkpoint is saved, status "stopped"), then, once the trainer is gone, writes "pruned"
and the reason into the run's status.json and tells the study the trial was pruned. One process
speaks to the study (any storage works, the trainer needs no database driver), a pruned run is
a stopped run with a checkpoint (`cnn-tui train --resume` trains it on by hand), and the lag is
one poll (0.5 s) plus a batch.

Resuming: rerunning the command with the same `--run-dir` or `--resume SWEEP` keeps every
finished, pruned and failed trial. A trial the runner left in progress (a stop, a kill, a crashed
machine) is first waited for (its trainer may still run: refused as for a grid), then settled:
a run that finished in the meantime is told to the study with its result; any other is marked
failed in the study and in its run folder ("interrupted, retried as a new trial") and its
settings are enqueued to be tried again. The search runs until the study holds `trials` trials
that are complete, pruned or failed (not counting retried ones), in progress or waiting.

Several processes or machines share one study through `--storage URL` (any SQLAlchemy URL
Optuna's RDBStorage takes: sqlite for processes on one machine, postgresql / mysql for several)
and the same `--study NAME`: each runs its own sweep folder (its runs, its lock) and asks the
shared study for trials; `--trials` is the study's total. A joining process must search the same
space (kept in the study's user attributes). sweep.json keeps the storage URL without its
password, so `--resume` of such a search takes `--storage` again.

Optuna is imported only here, and only when a search runs (`load_optuna`); without it, one line
names the extra to install.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import atomic_write_text, json_text, json_value
from cnn_tui.text import finite, one_line, percent
from cnn_tui.training import loggers
from cnn_tui.training.config import FIELDS, ConfigError, TrainConfig, coerce_field, parse_field
from cnn_tui.training.runs import store as runs
from cnn_tui.training.runs import sweeps
from cnn_tui.training.runs.state import BUSY, RunState
from cnn_tui.training.runs.sweeps import ActiveRun, SweepReporter, SweepState

SAMPLERS = ("optuna",)  # --search: the library that proposes the trials (its TPE sampler)
PRUNERS = ("median", "none")
DEFAULT_TRIALS = 20
MAX_TRIALS = 1000
DEFAULT_STARTUP_TRIALS = 5  # MedianPruner: trials that finish before any is pruned
DEFAULT_WARMUP_EPOCHS = 1  # MedianPruner: epochs a trial trains before it may be pruned
STUDY_FILE = runs.STUDY_FILE  # "study.db"
REPORT_FILE = runs.SEARCH_REPORT_FILE  # "search.json" (`write_study_report`)
IMPORTANCE_METHOD = "PED-ANOVA"  # Optuna's PedAnovaImportanceEvaluator
METRIC = "val_acc"  # the objective: the best validation accuracy of the trial, maximised
SPACE_ATTR = "cnn_tui_space"  # the study's user attribute holding the space it searches
RETRIED_ATTR = "cnn_tui_retried"  # a failed trial whose settings were enqueued again
INSTALL_HINT = "pip install 'cnn-tui[search]'"
KINDS = ("log", "float", "int")  # KEY=KIND:LOW:HIGH; KEY=V1,V2,... is the categorical kind
NOT_SEARCHED = ("device", "devices", "seed")  # placed by the sweep / seeds the sampler


def load_optuna() -> Any:
    """The optuna module, its chatter silenced; UsageError naming the extra when it is missing."""
    try:
        import optuna
    except ImportError:
        raise UsageError(
            f"--search optuna needs Optuna, the optional extra 'search': {INSTALL_HINT}"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- the space --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One setting of the search space: `kind` log, float, int (LOW..HIGH, `step` or None) or
    choice (`choices`, each a checked value of the setting)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high, "step": self.step}

    @classmethod
    def from_dict(cls, name: str, data: Any) -> Dimension:
        """A dimension from sweep.json, checked again as a flag would be (a file is untrusted)."""
        if not isinstance(data, dict):
            raise UsageError(f"{sweeps.SWEEP_FILE}: the space of {one_line(name)} is damaged")
        if data.get("kind") == "choice":
            choices = data.get("choices")
            if not isinstance(choices, list):
                raise UsageError(f"{sweeps.SWEEP_FILE}: the space of {one_line(name)} is damaged")
            return _checked(name, "choice", choices=tuple(choices))
        return _checked(name, data.get("kind"), data.get("low"), data.get("high"), data.get("step"))

    def distribution(self, optuna: Any) -> Any:
        """The Optuna distribution of this dimension."""
        dists = optuna.distributions
        if self.kind == "choice":
            return dists.CategoricalDistribution(list(self.choices))
        log = self.kind == "log"
        if FIELDS[self.name].kind is int:
            step = int(self.step) if self.step else 1
            return dists.IntDistribution(int(self.low), int(self.high), log=log, step=step)
        return dists.FloatDistribution(self.low, self.high, log=log, step=self.step)

    def text(self) -> str:
        """ "log 0.0001..0.1", "int 5..20 step 5", "32, 64, 128" """
        if self.kind == "choice":
            return ", ".join(sweeps.format_value(value) for value in self.choices)
        step = f" step {sweeps.format_value(self.step)}" if self.step else ""
        low, high = sweeps.format_value(self.low), sweeps.format_value(self.high)
        return f"{self.kind} {low}..{high}{step}"


def _check_number(field: Any, where: str) -> None:
    """A range needs a number setting."""
    if field.kind not in (int, float):
        raise UsageError(
            f"{where}: {field.flag} is not a number; list its values instead "
            f"({field.name}=V1,V2,...)"
        )


def _checked(
    name: str,
    kind: Any,
    low: Any = None,
    high: Any = None,
    step: Any = None,
    choices: tuple[Any, ...] = (),
    spec: str = "",
) -> Dimension:
    """A dimension whose bounds, step or values are checked against the setting's own rules."""
    where = f"--space {spec}" if spec else f"{sweeps.SWEEP_FILE}: the space of {one_line(name)}"
    field = FIELDS.get(name)
    if field is None or name in NOT_SEARCHED or getattr(field, "items", ()):
        raise UsageError(f"{where}: {one_line(name)} cannot be searched")
    if kind == "choice":
        values = sweeps.distinct_values(choices, lambda value: coerce_field(name, value), where)
        if len(values) < 2:
            raise UsageError(
                f"{where}: a choice needs two values or more (one value: give it as {field.flag})"
            )
        return Dimension(name, "choice", choices=tuple(values))
    if kind not in KINDS:
        raise UsageError(f"{where}: unknown kind {one_line(str(kind))!r}")
    _check_number(field, where)
    if kind == "float" and field.kind is int:
        raise UsageError(f"{where}: {field.flag} is a whole number; use int:LOW:HIGH")
    if kind == "int" and field.kind is float:
        raise UsageError(f"{where}: {field.flag} is a number with decimals; use float:LOW:HIGH")
    try:
        low, high = coerce_field(name, low), coerce_field(name, high)
        if step is not None:
            step = coerce_field(name, step) if field.kind is int else float(step)
    except (ConfigError, TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from None
    if low is None or high is None or not low < high:
        raise UsageError(f"{where}: LOW must be below HIGH")
    if kind == "log" and low <= 0:
        raise UsageError(f"{where}: a log scale needs LOW above 0")
    if step is not None:
        if kind == "log":
            raise UsageError(f"{where}: a log scale takes no step")
        if not finite(step) or not 0 < step <= (high - low):
            raise UsageError(f"{where}: STEP must be above 0 and at most HIGH - LOW")
    return Dimension(name, kind, low, high, step)


def parse_dimension(spec: str) -> Dimension:
    """One `--space KEY=SPEC`: log:LOW:HIGH, float:LOW:HIGH[:STEP], int:LOW:HIGH[:STEP] or
    V1,V2,... (each value parsed as its flag). UsageError: one line naming the spec."""
    key_text, sep, value_text = spec.partition("=")
    example = "(e.g. lr=log:1e-4:1e-1, batch_size=32,64,128)"
    if not sep or not key_text.strip() or not value_text.strip():
        raise UsageError(f"--space {spec!r}: expected KEY=KIND:LOW:HIGH or KEY=V1,V2 {example}")
    name = sweeps.grid_key(key_text)
    if name not in FIELDS:
        names = ", ".join(n.replace("_", "-") for n in FIELDS if n not in NOT_SEARCHED)
        raise UsageError(f"--space {spec}: unknown setting {key_text.strip()!r}; one of {names}")
    if name in NOT_SEARCHED:
        why = "seeds the sampler" if name == "seed" else "is placed by the sweep"
        raise UsageError(f"--space {spec}: {name} cannot be searched (it {why})")
    if getattr(FIELDS[name], "items", ()):  # a list setting (--log a,b): every trial gets it
        raise UsageError(
            f"--space {spec}: {FIELDS[name].flag} is not a hyperparameter to search: give it to "
            "the sweep, and every trial gets it"
        )
    head, colon, rest = value_text.partition(":")
    if colon and head.strip().lower() in KINDS:
        kind = head.strip().lower()
        _check_number(FIELDS[name], f"--space {spec}")
        parts = [part.strip() for part in rest.split(":")]
        if len(parts) not in (2, 3) or (kind == "log" and len(parts) != 2):
            shape = "log:LOW:HIGH" if kind == "log" else f"{kind}:LOW:HIGH[:STEP]"
            raise UsageError(f"--space {spec}: expected {name}={shape}")
        try:
            numbers = [parse_field(name, part) for part in parts[:2]]
            step = parse_field(name, parts[2]) if len(parts) == 3 else None
        except ConfigError as exc:
            raise UsageError(f"--space {spec}: {exc}") from None
        return _checked(name, kind, *numbers, step, spec=spec)
    if colon and name != "model":  # (a model may hold colons: torchvision:NAME, file.py:Class)
        raise UsageError(
            f"--space {spec}: unknown kind {head.strip()!r}; one of {', '.join(KINDS)}, or a "
            "list V1,V2,..."
        )
    values = []
    for text in value_text.split(","):
        if not text.strip():
            raise UsageError(f"--space {spec}: an empty value in the list")
        try:
            values.append(parse_field(name, text))
        except ConfigError as exc:
            raise UsageError(f"--space {spec}: {exc}") from None
    return _checked(name, "choice", choices=tuple(values), spec=spec)


def choice(name: str, values: list[Any]) -> Dimension:
    """A choice among a setting's values already parsed (a form field's comma list)."""
    return _checked(name, "choice", choices=tuple(values), spec=f"{name}=...")


def parse_space(specs: list[str]) -> dict[str, Dimension]:
    """Every `--space`, in order; a setting given twice is refused."""
    space: dict[str, Dimension] = {}
    for spec in specs:
        dimension = parse_dimension(spec)
        if dimension.name in space:
            raise UsageError(
                f"--space {spec}: {dimension.name.replace('_', '-')} is already in the space"
            )
        space[dimension.name] = dimension
    return space


def space_from_manifest(search: dict[str, Any]) -> dict[str, Dimension]:
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        raise UsageError(f"{sweeps.SWEEP_FILE}: the search has no space")
    return {str(name): Dimension.from_dict(str(name), data) for name, data in space.items()}


def space_text(space: dict[str, Dimension]) -> str:
    """ "lr log 0.0001..0.1; batch-size 32, 64, 128" """
    return "; ".join(f"{name.replace('_', '-')} {dim.text()}" for name, dim in space.items())


# --- the plan and the manifest ----------------------------------------------------------------


@dataclass(frozen=True)
class SearchPlan:
    """A checked search, not written yet."""

    base: TrainConfig
    space: dict[str, Dimension]
    trials: int
    device_spec: str
    devices: list[str]
    sort: str
    pruner: str = "median"
    startup_trials: int = DEFAULT_STARTUP_TRIALS
    warmup_epochs: int = DEFAULT_WARMUP_EPOCHS
    storage: str | None = None  # None: the sweep folder's own study.db
    study: str | None = None  # None: the sweep folder's name

    def model_checks(self) -> list[sweeps.ModelCheck]:
        """The models the trials may build that are checked before the search starts (your own
        classes, torchvision's models), once per distinct build: every combination of the
        space's choices (and each end of a range) among the settings a model is built from
        (`sweeps.BUILD_SETTINGS`), as `make_search_plan` checks the corners of the space."""
        ends = [
            [(name, value) for value in (dimension.choices or (dimension.low, dimension.high))]
            for name, dimension in self.space.items()
            if name in sweeps.BUILD_SETTINGS
        ]
        variations = [dict(combination) for combination in itertools.product(*ends)]
        return sweeps.model_checks(self.base, variations, "trials")


def make_search_plan(
    base: TrainConfig,
    space: dict[str, Dimension],
    trials: int,
    device_spec: str = "auto",
    sort: str | None = None,
    *,
    devices: list[str] | None = None,
    **options: Any,
) -> SearchPlan:
    """Check the space against the base settings: its corners (LOW and HIGH of each range, the
    values of each choice) must make valid runs with the base settings."""
    if not space:
        raise UsageError("a search needs a space: --space KEY=SPEC (e.g. --space lr=log:1e-4:1e-1)")
    if not 1 <= trials <= MAX_TRIALS:
        raise UsageError(f"--trials must be 1 to {MAX_TRIALS}, got {trials}")
    loggers.check_installed(base.loggers)  # (as a grid's: before the first trial starts)
    for name, dimension in space.items():
        values = dimension.choices or (dimension.low, dimension.high)
        for value in values:
            try:
                TrainConfig.from_mapping({name: value}, base=base)
            except ConfigError as exc:
                shown = sweeps.format_value(value)
                raise UsageError(
                    f"--space {name}: {shown} with the other settings: {exc}"
                ) from None
    if devices is None:
        devices = sweeps.resolve_devices(device_spec)
    return SearchPlan(base, space, trials, device_spec, devices, sort or sweeps.DEFAULT_SORT,
                      **options)  # fmt: skip


def public_url(url: str) -> str:
    """A storage URL without its password (what sweep.json and messages show)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read: keep only its scheme
        return url.partition("://")[0] + "://..."


def manifest_search(plan: SearchPlan, sweep_dir: Path) -> dict[str, Any]:
    """sweep.json's "search": what the study searches and where it is kept."""
    return {
        "library": "optuna",
        "sampler": "tpe",
        "trials": plan.trials,
        "space": {name: dim.to_dict() for name, dim in plan.space.items()},
        "metric": METRIC,
        "direction": "maximize",
        "pruner": plan.pruner,
        "startup_trials": plan.startup_trials,
        "warmup_epochs": plan.warmup_epochs,
        "storage": None if plan.storage is None else public_url(plan.storage),
        "study": plan.study or sweep_dir.name,
    }


def create_search(
    plan: SearchPlan, runs_dir: str | os.PathLike[str] = "runs", sweep_dir: str | None = None
) -> Path:
    """Make the sweep folder of a search and write its manifest (no trial yet)."""
    if sweep_dir:
        path = Path(sweep_dir)
        sweeps.check_new_sweep_dir(path)
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = sweeps.new_sweep_dir(runs_dir, {"search": [], **plan.space})
    manifest = {
        "version": 1,
        "created": time.time(),
        "base": plan.base.to_dict(),
        "grid": {},
        "device": plan.device_spec,
        "sort": plan.sort,
        "runs": [],
        "search": manifest_search(plan, path),
    }
    atomic_write_text(path / sweeps.SWEEP_FILE, json_text(manifest, indent=1) + "\n")
    return path


def set_trials(sweep_dir: Path, manifest: dict[str, Any], trials: int) -> None:
    """A search run again with another --trials: the study now runs to that many."""
    manifest["search"]["trials"] = trials
    _write_manifest(sweep_dir, manifest)


def is_search(manifest: dict[str, Any]) -> bool:
    return isinstance(manifest.get("search"), dict)


def storage_url(sweep_dir: Path, search: dict[str, Any], given: str | None = None) -> str:
    """The study's storage: the sweep folder's own study.db, or the URL given again with
    `--storage` (sweep.json keeps it without its password, so a resume needs it)."""
    kept = search.get("storage")
    if kept is None:
        if given:
            raise UsageError(
                f"this search keeps its study in {sweep_dir / STUDY_FILE}; --storage does not apply"
            )
        return f"sqlite:///{(sweep_dir / STUDY_FILE).resolve()}"
    if not given:
        raise UsageError(
            f"this search's study is in {one_line(kept)}: give --storage URL again to resume it"
        )
    if public_url(given) != kept:
        raise UsageError(
            f"--storage {public_url(given)} is not this search's storage ({one_line(kept)})"
        )
    return given


def _storage(optuna: Any, url: str, attempts: int = 5) -> Any:
    """Optuna's RDBStorage at `url`. Two processes opening a new database at once race to
    create its tables (one gets "table already exists"); the loser tries again, and finds them."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # several processes on one file: wait for its lock
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a bad URL, a missing driver, a server away
            if attempt == attempts - 1 or not _creation_race(exc):
                raise UsageError(
                    f"cannot open the study storage {public_url(url)}: {one_line(exc)}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _creation_race(exc: Exception) -> bool:
    """An error of two processes creating the same database's tables at once."""
    text = str(exc).lower()
    return any(part in text for part in ("already exists", "unique constraint", "locked"))


def check_storage(url: str) -> None:
    """Open a --storage database once (its tables made if new), before anything is written:
    a bad URL, a missing driver or a server away is one line."""
    _storage(load_optuna(), url)


def open_study(
    sweep_dir: Path,
    manifest: dict[str, Any],
    storage: str | None = None,
    *,
    pruner: Any = None,
) -> Any:
    """The search's study, created on first use (or joined: same name and storage), with the
    TPE sampler seeded from the base seed plus the trials the study holds already (a resumed or
    joining process does not replay the first one's random start) and the median pruner."""
    optuna = load_optuna()
    search = manifest["search"]
    space = space_from_manifest(search)
    url = storage_url(sweep_dir, search, storage)
    name = str(search.get("study") or sweep_dir.name)
    rdb = _storage(optuna, url)
    if pruner is None:
        pruner = make_pruner(optuna, search)
    seed = int(manifest["base"].get("seed") or 0)
    try:
        existing = optuna.load_study(study_name=name, storage=rdb)
        seed += len(existing.get_trials(deepcopy=False))
    except KeyError:
        pass
    sampler = optuna.samplers.TPESampler(seed=seed % 2**32)
    study = optuna.create_study(
        study_name=name,
        storage=rdb,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    mine = {key: dim.to_dict() for key, dim in space.items()}
    theirs = study.user_attrs.get(SPACE_ATTR)
    if theirs is None:
        study.set_user_attr(SPACE_ATTR, mine)
    elif theirs != mine:
        raise UsageError(
            f"study {one_line(name)} in {public_url(url)} searches another space; give this "
            "search its own --study name"
        )
    return study


def make_pruner(optuna: Any, search: dict[str, Any]) -> Any:
    if search.get("pruner") == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(search.get("startup_trials", DEFAULT_STARTUP_TRIALS)),
        n_warmup_steps=int(search.get("warmup_epochs", DEFAULT_WARMUP_EPOCHS)),
    )


# --- the study's trials -----------------------------------------------------------------------


def _counted(trial: Any, TrialState: Any) -> bool:
    """A trial that counts towards --trials: one started (in progress or over), but not a
    failed one that was retried (its retry counts). A waiting (enqueued) trial is not started:
    the next `ask` picks it up."""
    if trial.state == TrialState.WAITING:
        return False
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(RETRIED_ATTR))


def trials_left(study: Any, total: int) -> int:
    """How many more trials this process may start: `total` less the study's started trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return max(0, total - sum(1 for trial in trials if _counted(trial, TrialState)))


def trial_counts(study: Any) -> dict[str, int]:
    """{"complete": 3, "pruned": 1, ...} over the study (every process's trials)."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    return counts


def importances(study: Any) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances over the complete trials (`IMPORTANCE_METHOD`, what
    `get_param_importances` uses by default since Optuna 4.x; fANOVA would need scikit-learn),
    most important first, or None and why not (fewer than two complete trials)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None, f"parameter importances need two complete trials ({len(complete)} so far)"
    try:
        with warnings.catch_warnings():  # (few trials: "importances will be equal", experimental)
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return None, f"no parameter importances: {one_line(exc)}"
    return {str(key): float(value) for key, value in found.items()}, ""


def prune_reason(study: Any, trial_number: int, epoch: int, value: float) -> str:
    """Why a trial was pruned at `epoch`, in the median pruner's terms."""
    from optuna.trial import TrialState

    others = [
        trial.intermediate_values[epoch]
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if epoch in trial.intermediate_values and trial.number != trial_number
    ]
    where = f"pruned at epoch {epoch}: val acc {percent(value)}"
    if not others:
        return f"{where}, stopped by the pruner"
    median = statistics.median(others)
    return (
        f"{where} below the median {percent(median)} of {len(others)} complete "
        f"trial{'s' * (len(others) != 1)} at that epoch"
    )


# --- the study's report: SWEEP/search.json ----------------------------------------------------


def write_study_report(sweep_dir: Path, study: Any, url: str) -> dict[str, Any]:
    """search.json: the study's trials by state, its best trial and the parameter importances,
    rewritten (atomically) whenever a trial ends, so the table, `--show` and the sweep screen
    show them without Optuna or the database."""
    from optuna.trial import TrialState

    found, note = importances(study)
    best = None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        top = max(complete, key=lambda trial: trial.value)
        best = {"trial": top.number, "value": top.value, "params": _params(top)}
    report = {
        "study": study.study_name,
        "storage": public_url(url),
        "trials": trial_counts(study),
        "best": best,
        "importances": found,
        "importance_method": IMPORTANCE_METHOD,
        "importances_note": note,
        "updated": time.time(),
    }
    atomic_write_text(sweep_dir / REPORT_FILE, json_text(report, indent=1) + "\n")
    return report


def read_study_report(sweep_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """search.json, its fields checked (a file is untrusted: anything odd reads as missing)."""
    from cnn_tui.fileio import is_regular_file

    path = Path(sweep_dir) / REPORT_FILE
    if not is_regular_file(path):
        return None
    try:
        data = json_value(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    trials = data.get("trials") if isinstance(data.get("trials"), dict) else {}
    found = data.get("importances")
    if isinstance(found, dict):
        found = {str(key): float(value) for key, value in found.items() if finite(value)}
    else:
        found = None
    return {
        "study": str(data.get("study") or ""),
        "storage": str(data.get("storage") or ""),
        "trials": {str(k): int(v) for k, v in trials.items() if isinstance(v, int) and v >= 0},
        "importances": found,
        "importances_note": str(data.get("importances_note") or ""),
    }


# --- the queue runner of a search -------------------------------------------------------------


@dataclass
class TrialRun:
    """A trial being trained: its run, its Optuna trial, and the prune decision once made."""

    run: ActiveRun
    trial: Any  # optuna.trial.Trial
    pruned: str = ""  # the reason, once the pruner stopped it


def _write_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(sweep_dir / sweeps.SWEEP_FILE, json_text(manifest, indent=1) + "\n")


def _params(trial: Any) -> dict[str, Any]:
    return {str(key): value for key, value in trial.params.items()}


def _new_entry(manifest: dict[str, Any], trial: Any) -> dict[str, Any]:
    overrides = _params(trial)
    index = len(manifest["runs"]) + 1
    # the folder's name rounds numbers to 3 digits (the table and config.toml keep them whole)
    short = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in overrides.items()}
    folder = "-".join([f"trial-{trial.number:03d}", *sweeps.value_slugs(short)])
    return {"index": index, "dir": folder, "overrides": overrides, "trial": trial.number}


def _tell(study: Any, trial: Any, **kwargs: Any) -> None:
    """`study.tell`, once: a trial already finished (another process settled it) is left."""
    try:
        study.tell(trial, **kwargs)
    except (RuntimeError, ValueError):
        pass


def _value(row: dict[str, Any]) -> float | None:
    value = runs.number_or_none(row.get("best_val_acc"))
    return value if value is not None and math.isfinite(value) else None


def _settle_ended(study: Any, trial: Any, row: dict[str, Any]) -> None:
    """Tell the study how a trial's run ended: complete (its best val acc), or failed."""
    from optuna.trial import TrialState

    value = _value(row)
    if row["status"] == RunState.FINISHED and value is not None:
        _tell(study, trial, values=value)
    elif row["status"] == RunState.PRUNED:
        _tell(study, trial, state=TrialState.PRUNED)
    else:
        _tell(study, trial, state=TrialState.FAIL)


def _report_epochs(trial: Any, run_dir: Path, known: set[int]) -> None:
    """Report a run's epochs (from its metrics.jsonl) that the trial has not heard of yet."""
    events, _ = runs.read_all_events(run_dir)
    for event in events:
        epoch, value = event.get("epoch"), runs.number_or_none(event.get("val_acc"))
        if event.get("event") == "epoch" and isinstance(epoch, int) and value is not None:
            if not math.isfinite(value):
                continue
            if epoch not in known:
                trial.report(value, epoch)
                known.add(epoch)


def recover(study: Any, sweep_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Settle the trials of this sweep folder that a previous runner left in progress (its trainer
    is gone: `run_search` refuses while one still trains). A run that finished meanwhile is told
    with its result; any other is marked failed, in the study and in its run folder, and its
    settings are enqueued to be tried again. Returns what was done, one line per trial."""
    import optuna
    from optuna.trial import TrialState

    notes = []
    rows = {row["index"]: row for row in sweeps.sweep_rows(sweep_dir, manifest)}
    by_number = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    for entry in manifest["runs"]:
        frozen = by_number.get(entry.get("trial"))
        if frozen is None or frozen.state != TrialState.RUNNING:
            continue
        row, run_dir = rows[entry["index"]], sweeps.run_path(sweep_dir, entry)
        trial = optuna.trial.Trial(study, frozen._trial_id)  # noqa: SLF001 - ask/tell by id
        if row["status"] in (RunState.FINISHED, RunState.PRUNED):
            _report_epochs(trial, run_dir, set(frozen.intermediate_values))
            _settle_ended(study, trial, row)
            notes.append(f"trial {frozen.number} ({entry['dir']}) {row['status']} meanwhile")
            continue
        trial.set_user_attr(RETRIED_ATTR, True)
        _tell(study, trial, state=TrialState.FAIL)
        study.enqueue_trial(dict(frozen.params), skip_if_exists=False)
        message = (
            f"interrupted with its sweep; trial {frozen.number} failed, retried as a new trial"
        )
        status = runs.read_status(run_dir) or {}
        if row["status"] != RunState.PENDING or status:
            run_dir.mkdir(parents=True, exist_ok=True)
            runs.write_status(
                run_dir,
                RunState.FAILED,
                message=message,
                epoch=int(status.get("epoch") or 0),
                epochs=int(status.get("epochs") or 0),
            )
        entry["retried"] = True
        notes.append(f"trial {frozen.number} ({entry['dir']}) was interrupted: retried")
    if notes:
        _write_manifest(sweep_dir, manifest)
    return notes


def run_search(
    sweep_dir: str | os.PathLike[str],
    devices: list[str],
    reporter: SweepReporter,
    stop: threading.Event,
    *,
    sort: str | None = None,
    storage: str | None = None,
    poll_s: float = 0.5,
    pruner: Any = None,
) -> SweepState:
    """Ask the study for trials and train them, one per device at a time, until the study holds
    `trials` trials or `stop` is set (the runs in progress then stop with a checkpoint and are
    retried on resume). `pruner` replaces the manifest's (tests). Returns finished or stopped."""
    from optuna.trial import TrialState

    from cnn_tui.training.runs import launcher

    sweep_dir = Path(sweep_dir)
    manifest = sweeps.read_manifest(sweep_dir)
    search = manifest["search"]
    space = space_from_manifest(search)
    base = sweeps.base_config(manifest)
    total = int(search.get("trials") or 0)
    sort = sort or manifest.get("sort") or sweeps.DEFAULT_SORT
    lock = sweeps.SweepLock(sweep_dir)
    started = False
    active: dict[str, TrialRun] = {}
    try:
        busy = [row for row in sweeps.sweep_rows(sweep_dir, manifest) if row["status"] in BUSY]
        if busy:
            raise UsageError(
                f"run {busy[0]['run']} of sweep {sweep_dir} is still training; wait for it or "
                "stop it first"
            )
        study = open_study(sweep_dir, manifest, storage, pruner=pruner)
        url = storage_url(sweep_dir, search, storage)
        optuna = load_optuna()
        distributions = {name: dim.distribution(optuna) for name, dim in space.items()}
        recovered = recover(study, sweep_dir, manifest)

        def status(state: SweepState, message: str) -> None:
            runs.write_status(sweep_dir, state, message=message, devices=devices, runs_total=total)

        left = trials_left(study, total)
        status(
            SweepState.RUNNING, f"searching: {left} of {total} trials left on {', '.join(devices)}"
        )
        started = True
        reporter.sweep_started(sweep_dir, manifest, devices, [])
        for note in recovered:
            reporter.note(note)
        forwarded = False
        while True:
            if not stop.is_set():
                for device in devices:
                    while device not in active and trials_left(study, total) > 0:
                        trial = study.ask(distributions)
                        entry = _new_entry(manifest, trial)
                        manifest["runs"].append(entry)
                        _write_manifest(sweep_dir, manifest)
                        try:
                            run = sweeps.start_run(sweep_dir, base, entry, device)
                        except (OSError, UsageError) as exc:
                            sweeps.start_failed(sweep_dir, entry, device, exc, reporter, manifest)
                            _tell(study, trial, state=TrialState.FAIL)
                            continue
                        active[device] = TrialRun(run, trial)
                        reporter.run_started(run)
            elif not forwarded:
                for item in active.values():
                    launcher.stop_run(item.run.run_dir, item.run.pid)
                forwarded = True
            for device, item in list(active.items()):
                run = item.run
                code = launcher.child_exit_code(run.pid)
                events, run.offset = runs.read_events(run.run_dir, run.offset)
                for event in events:
                    if event.get("event") == "epoch":
                        reporter.epoch(run, event)
                        _report(study, item, event, code is None and not stop.is_set())
                if code is None:
                    continue
                _trial_ended(study, item, code, stop.is_set())
                del active[device]
                row = _row(sweep_dir, manifest, run.entry)
                write_study_report(sweep_dir, study, url)
                reporter.run_ended(run, row)
                status(SweepState.RUNNING, f"{total - trials_left(study, total)} of {total} trials")
            if not active and (stop.is_set() or trials_left(study, total) == 0):
                break
            time.sleep(poll_s)
        rows = sweeps.sweep_rows(sweep_dir, manifest)
        left = trials_left(study, total) or any(r["status"] in sweeps.TO_RUN for r in rows)
        state = SweepState.STOPPED if stop.is_set() and left else SweepState.FINISHED
        write_study_report(sweep_dir, study, url)
        status(state, sweeps.summary_line(rows))
        reporter.sweep_ended(state, sweep_dir, manifest, rows, sort)
        return state
    except BaseException as exc:
        lost = _storage_error(exc)
        if started:
            state = SweepState.STOPPED if isinstance(exc, KeyboardInterrupt) else SweepState.FAILED
            message = lost or f"the queue runner ended: {exc!r}"
            runs.write_status(sweep_dir, state, message=message)
        if lost:  # the trials cannot report any more: stopped with a checkpoint, retried later
            for item in active.values():
                launcher.stop_run(item.run.run_dir, item.run.pid)
            raise RunError(f"{lost}; resume the search once it is back") from None
        raise
    finally:
        lock.release()


def _storage_error(exc: BaseException) -> str:
    """Why the study's database failed mid-search ("" for any other error)."""
    try:
        import optuna
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # (no Optuna: the UsageError that says so goes on)
        return ""
    if isinstance(exc, (SQLAlchemyError, optuna.exceptions.StorageInternalError)):
        return f"the study's storage failed: {one_line(exc)}"
    return ""


def _row(sweep_dir: Path, manifest: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in sweeps.sweep_rows(sweep_dir, manifest) if r["index"] == entry["index"])


def _report(study: Any, item: TrialRun, event: dict[str, Any], running: bool) -> None:
    """An epoch of a trial to the study; the pruner's verdict stops its trainer."""
    from cnn_tui.training.runs import launcher

    epoch, value = event.get("epoch"), runs.number_or_none(event.get("val_acc"))
    if not isinstance(epoch, int) or value is None or not math.isfinite(value):
        return
    try:
        item.trial.report(value, epoch)
    except (RuntimeError, ValueError):  # the trial is over already
        return
    last = epoch >= int(event.get("epochs") or 0)  # the run ends by itself now
    if item.pruned or not running or last or not item.trial.should_prune():
        return
    item.pruned = prune_reason(study, item.trial.number, epoch, value)
    launcher.stop_run(item.run.run_dir, item.run.pid)


def _trial_ended(study: Any, item: TrialRun, code: int, stopping: bool) -> None:
    """After a trial's trainer exited: a pruned one is marked so in its folder; the study is told
    how it ended. A run stopped with the sweep stays in progress in the study (retried on
    resume), as a killed runner leaves it."""
    from cnn_tui.training.runs import launcher

    run = item.run
    status = runs.read_status(run.run_dir) or {}
    state = runs.effective_status(status)
    if item.pruned and state in (RunState.STOPPED, RunState.INTERRUPTED):
        trainer = launcher.child_identity(run.pid)
        runs.write_status(
            run.run_dir,
            RunState.PRUNED,
            message=item.pruned,
            epoch=int(status.get("epoch") or 0),
            epochs=int(status.get("epochs") or 0),
            process=trainer,
            best_val_acc=status.get("best_val_acc"),
        )
    else:
        sweeps.ended(run, code, stopping)
        if stopping and runs.effective_status(runs.read_status(run.run_dir)) != RunState.FINISHED:
            return  # left in progress: settled by `recover` when the search resumes
    row = {"status": runs.effective_status(runs.read_status(run.run_dir))}
    summary = runs.read_summary(run.run_dir) or {}
    row["best_val_acc"] = summary.get("best_val_acc")
    _settle_ended(study, item.trial, row)
