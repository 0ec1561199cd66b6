"""What `cnn-tui sweep` prints: the queue's progress (`Reporter`, or `JsonReporter`'s JSON lines)
and the comparison table (`format_table`, `table_json`).

The queue runner (`sweeps.run_queue`) calls a reporter as runs start, finish epochs and end; the
table's cells are `sweeps.table_cells`, which the sweep screen shows too. A reporter whose output
went away (a closed pipe) goes silent and the sweep goes on (`streams.carry_on`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TextIO

from cnn_tui import text
from cnn_tui.commands.output import JsonLines, table
from cnn_tui.commands.streams import carry_on
from cnn_tui.errors import UsageError
from cnn_tui.training.runs import search, sweeps
from cnn_tui.training.runs.state import RunState
from cnn_tui.training.runs.sweeps import ActiveRun, SweepState


def grid_text(manifest: dict[str, Any]) -> str:
    """ "grid: epochs = 20, 50; lr = 0.01, 0.001", or a search's space, trials and pruner:
    "search: lr log 0.0001..0.1; batch-size 32, 64, 128 (20 trials, TPE seed 0, median pruner)" """
    if search.is_search(manifest):
        found = manifest["search"]
        try:
            space = search.space_text(search.space_from_manifest(found))
        except UsageError as exc:
            space = text.one_line(exc)
        pruner = "median pruner" if found.get("pruner") != "none" else "no pruner"
        seed = manifest["base"].get("seed", 0)
        trials = sweeps.planned_runs(manifest)
        return f"search: {space} ({trials} trials, TPE seed {text.one_line(seed)}, {pruner})"
    return "grid: " + "; ".join(
        f"{text.one_line(key)} = {', '.join(sweeps.format_value(v) for v in values)}"
        for key, values in manifest["grid"].items()
    )


def study_lines(sweep_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """A search's study in a few lines: its trials by state and the parameter importances
    (from search.json); none for a grid."""
    if not search.is_search(manifest):
        return []
    report = search.read_study_report(sweep_dir)
    if report is None:
        return ["study: no trial has ended yet"]
    counts = ", ".join(f"{n} {text.one_line(state)}" for state, n in report["trials"].items())
    lines = [
        f"study {text.one_line(report['study'])} in {text.one_line(report['storage'])}: "
        f"{sum(report['trials'].values())} trials ({counts or 'none'})"
    ]
    found = report["importances"]
    if found:
        ranked = sorted(found.items(), key=lambda item: -item[1])
        parts = [f"{text.one_line(key).replace('_', '-')} {value:.2f}" for key, value in ranked]
        lines.append(
            f"parameter importances ({search.IMPORTANCE_METHOD}, of 1): " + ", ".join(parts)
        )
    elif report["importances_note"]:
        lines.append(text.one_line(report["importances_note"]))
    return lines


def format_table(
    rows: list[dict[str, Any]], keys: list[str], sort: str = sweeps.DEFAULT_SORT
) -> list[str]:
    """The comparison table as text lines, sorted by `sort`, the best run marked '*'."""
    best = sweeps.best_run(rows, sort)
    header = ["", *sweeps.table_header(keys)]
    body = [
        [
            "*" if best is not None and row["index"] == best["index"] else "",
            *sweeps.table_cells(row, keys),
        ]
        for row in sweeps.sort_rows(rows, sort)
    ]
    left = {0, 2, len(header) - 1}  # the mark, the run's name and its status: left-aligned
    lines = table(header, body, right=[i for i in range(len(header)) if i not in left])
    title = sweeps.SORT_FIELDS[sort][2]
    if best is not None:
        lines.append(
            f"sorted by {title}; * best: {text.one_line(best['run'])} ({title} "
            f"{sweeps.format_metric(best, sort)})"
        )
    else:
        lines.append(f"sorted by {title}; no run has a {title} yet")
    return lines


def table_json(
    sweep_dir: Path,
    manifest: dict[str, Any],
    rows: list[dict[str, Any]],
    sort: str,
    state: SweepState,
) -> dict[str, Any]:
    """The table as JSON: the sweep's state, its grid, the best run and the rows, sorted."""
    best = sweeps.best_run(rows, sort)
    table = {
        "sweep_dir": str(sweep_dir),
        "status": state,
        "sort": sort,
        "grid": manifest["grid"],
        "best": None if best is None else best["run"],
        "table": sweeps.sort_rows(rows, sort),
    }
    if search.is_search(manifest):  # the search, and its study as search.json has it
        table["search"] = manifest["search"]
        table["study"] = search.read_study_report(sweep_dir)
    return table


class Reporter:
    """What the queue runner tells: plain lines (one per run start, epoch and end), the table at
    the end. With `json_file`, the JSON lines of `JsonReporter` are kept for that file as well."""

    def __init__(self, out: TextIO, total: int, json_file: str | None = None) -> None:
        self.out = out
        self.total = total
        self.json = JsonLines(None, json_file) if json_file else None

    def print(self, line: str = "") -> None:
        """A line on `out`; once `out` is gone (a closed pipe), nothing: the sweep goes on."""
        carry_on(lambda: print(line, file=self.out, flush=True), self.out)()

    def emit(self, kind: str, **fields: Any) -> None:
        if self.json is not None:
            self.json.write({"event": kind, "time": time.time(), **fields})

    def _tag(self, entry: dict[str, Any]) -> str:
        return f"[{entry['index']}/{self.total}] {text.one_line(entry['dir'])}"

    def sweep_started(
        self,
        sweep_dir: Path,
        manifest: dict[str, Any],
        devices: list[str],
        queue: list[dict[str, Any]],
    ) -> None:
        self.emit(
            "sweep_started",
            sweep_dir=str(sweep_dir),
            runs=self.total,
            to_run=[entry["dir"] for entry in queue],
            devices=list(devices),
            grid=manifest["grid"],
            **({"search": manifest["search"]} if search.is_search(manifest) else {}),
        )
        self.show_started(sweep_dir, manifest, devices, queue)

    def show_started(
        self,
        sweep_dir: Path,
        manifest: dict[str, Any],
        devices: list[str],
        queue: list[dict[str, Any]],
    ) -> None:
        each = "one run at a time" if len(devices) == 1 else "one run per device in parallel"
        self.print(f"sweep dir: {text.one_line(sweep_dir)}")
        if search.is_search(manifest):
            self.print(f"{grid_text(manifest)}; on {', '.join(devices)}, {each}")
            return
        self.print(
            f"{self.total} runs ({grid_text(manifest)}), {len(queue)} to train on "
            f"{', '.join(devices)}, {each}"
        )

    def note(self, line: str) -> None:
        """Something the runner did before it started (a search's interrupted trials)."""
        self.emit("note", message=line)
        self.show(text.one_line(line))

    def run_started(self, active: ActiveRun) -> None:
        self.emit(
            "run_started",
            run=active.entry["dir"],
            index=active.entry["index"],
            overrides=active.entry["overrides"],
            device=active.device,
            resumed=active.resumed,
            pid=active.pid,
        )
        how = "resumed" if active.resumed else "started"
        overrides = sweeps.describe(active.entry["overrides"])
        self.show(f"{self._tag(active.entry)} ({overrides}) {how} on {active.device}")

    def epoch(self, active: ActiveRun, event: dict[str, Any]) -> None:
        fields = {k: v for k, v in event.items() if k not in ("event", "time")}
        self.emit("epoch", run=active.entry["dir"], index=active.entry["index"], **fields)
        val_loss = event.get("val_loss")
        loss = f", val loss {val_loss:.4f}" if text.finite(val_loss) else ""
        self.show(
            f"{self._tag(active.entry)} epoch {event.get('epoch')}/{event.get('epochs')}: val acc "
            f"{text.percent(event.get('val_acc'))}{loss}"
        )

    def run_ended(self, active: ActiveRun, row: dict[str, Any]) -> None:
        self.emit("run_ended", **row)
        state = row["status"]
        if state == RunState.FINISHED:
            self.show(
                f"{self._tag(active.entry)} {state}: best val {text.percent(row['best_val_acc'])}"
                f", test {text.percent(row['test_acc'])}, macro F1 "
                f"{text.number(row.get('macro_f1'), '.4f')}, {text.duration(row['seconds'])}"
            )
        else:
            message = (row.get("message") or "").splitlines()
            tag = self._tag(active.entry)
            self.show(f"{tag} {state}" + (f": {text.one_line(message[0])}" if message else ""))

    def sweep_ended(
        self,
        state: SweepState,
        sweep_dir: Path,
        manifest: dict[str, Any],
        rows: list[dict[str, Any]],
        sort: str,
    ) -> None:
        self.emit(f"sweep_{state}", **table_json(sweep_dir, manifest, rows, sort, state))
        if self.json is not None:
            self.json.close()
        self.show()
        for line in format_table(rows, sweeps.table_keys(manifest), sort):
            self.show(line)
        for line in study_lines(sweep_dir, manifest):
            self.show(line)
        self.show(f"sweep {state}: {sweeps.summary_line(rows)}")
        left = search.is_search(manifest) or any(row["status"] in sweeps.TO_RUN for row in rows)
        if state != SweepState.FINISHED and left:
            self.show(f"continue with: cnn-tui sweep --no-ui --resume {text.one_line(sweep_dir)}")

    def show(self, line: str = "") -> None:
        """A line of the plain report (none in JSON mode)."""
        self.print(line)


class JsonReporter(Reporter):
    """JSON lines on stdout (and in `json_file`): sweep_started, run_started, epoch, run_ended,
    then the table as the last line."""

    def __init__(self, out: TextIO, total: int, json_file: str | None = None) -> None:
        super().__init__(out, total)
        self.json = JsonLines(out, json_file)

    def show_started(self, *args: Any) -> None:
        pass

    def show(self, line: str = "") -> None:
        pass


def make_reporter(
    out: TextIO, total: int, *, json_stdout: bool = False, json_file: str | None = None
) -> Reporter:
    if json_stdout:
        return JsonReporter(out, total, json_file)
    return Reporter(out, total, json_file)
