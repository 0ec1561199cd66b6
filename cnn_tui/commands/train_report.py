"""What `cnn-tui train --no-ui` prints while it trains: the reporters of `trainer.TrainReporter`.

On a terminal a progress bar and one table row per epoch (`TerminalReporter`); plain lines when
stdout is a file or a pipe, one per epoch, no redraws (`PlainReporter`); only JSON lines with
`--json` (`JsonReporter`; the human notes then go to stderr). `--json-file FILE` keeps the same
JSON lines for FILE as well. When the terminal or the pipe goes away, output stops and the run
carries on to its end or its checkpoint (`streams.carry_on`): the reporter goes silent, and an
output that cannot be written never fails the run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from cnn_tui import catalog, text
from cnn_tui.commands.output import JsonLines
from cnn_tui.commands.streams import carry_on
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system.timeline import SystemTimeline
from cnn_tui.training.system.trainer_stats import scope_text

# what a finished run leaves, as its last lines list them
RESULT_FILES = (
    runs.SUMMARY_FILE,
    runs.CHECKPOINT_FILE,
    runs.EVENTS_FILE,
    runs.SAMPLES_FILE,
    runs.CONFIG_FILE,
    runs.OUTPUT_LOG,
)


# --- the lines --------------------------------------------------------------------------------

EPOCH_HEADER = (
    f"{'epoch':>9}  {'train loss':>10}  {'train acc':>9}  {'val loss':>9}  {'val acc':>8}  "
    f"{'lr':>8}  {'time':>7}  {'img/s':>8}"
)


def epoch_row(event: dict[str, Any]) -> str:
    """One row of the epoch table (the dashboard's epoch table shows the same cells)."""
    label = f"{event['epoch']}/{event['epochs']}"
    return (
        f"{label:>9}  {event['train_loss']:10.4f}  {text.percent(event['train_acc']):>9}  "
        f"{event['val_loss']:9.4f}  {text.percent(event['val_acc']):>8}  {event['lr']:8.2e}  "
        f"{text.duration(event['seconds']):>7}  {text.count(event['images_per_s']):>8}"
    )


def started_lines(event: dict[str, Any]) -> list[str]:
    """What the run_started event says: the device, the data, the model, the processes."""
    config = event["config"]
    params = event["parameters"]
    model = text.one_line(config["model"])
    if event.get("resumed") and catalog.is_own(config["model"]):  # it runs the run's copy
        name = text.one_line(catalog.parse_model(config["model"]).name)
        model = f"{name} from the run's copy {runs.MODEL_SOURCE_FILE} (trained as {model})"
    lines = [
        f"device: {text.one_line(event['device'])} ({text.one_line(event['device_name'])})"
        + (f", {event['amp']} autocast" if event.get("amp") else "")
        + (", channels_last" if event.get("channels_last") else ""),
        f"data: {text.one_line(config['dataset'])} — {event['n_train']} train / "
        f"{event['n_val']} val / {event['n_test']} test images, {len(event['classes'])} classes",
        f"model: {model} — {text.count(params['total'])} parameters "
        f"({text.count(params['trainable'])} trainable); {text.one_line(config['optimizer'])} lr "
        f"{config['lr']:g}, batch {config['batch_size']}, {event['batches_per_epoch']} batches "
        "per epoch",
    ]
    if event.get("world_size", 1) > 1:
        hosts = sorted({text.one_line(rank["host"]) for rank in event.get("ranks") or []})
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
        lines.append(f"skipped {len(skipped)} unreadable file(s): {text.some(skipped)}")
    return lines


def finished_lines(summary: dict[str, Any], run_dir: Path) -> list[str]:
    """The test metrics of a finished run and the files it left."""
    files = list(RESULT_FILES)
    weights = ""
    if summary.get("evaluated_with") == "best":  # early stopping: the best epoch's weights
        files.insert(2, runs.BEST_FILE)
        weights = f"; with epoch {summary.get('best_epoch')}'s weights ({runs.BEST_FILE})"
    if (run_dir / runs.MODEL_SOURCE_FILE).is_file():  # your own class: its code, kept
        files += [runs.MODEL_SOURCE_FILE, runs.MODEL_SOURCE_RECORD]
    return [
        f"test accuracy {text.percent(summary['test_accuracy'])}   macro F1 "
        f"{summary['macro_f1']:.4f}   (macro precision {summary['macro_precision']:.4f}, recall "
        f"{summary['macro_recall']:.4f}; best val acc {text.percent(summary['best_val_acc'])})"
        f"{weights}",
        f"files: {text.one_line(run_dir)}/ — {', '.join(files)}",
    ]


def system_lines(system: dict[str, Any] | None) -> list[str]:
    """What the trainer's "system" readings say over the run (`SystemTimeline.summary`): the
    host's CPU and RAM, the trainer's memory, each GPU's use; nothing without readings."""
    if system is None:
        return []

    def stat(name: str, key: str = "peak") -> Any:
        return (system.get(name) or {}).get(key)

    def fraction(percent: Any) -> Any:
        return percent / 100 if text.finite(percent) else None

    scope = system.get("trainer_scope")
    processes = system.get("trainer_processes") or 0
    lines = [
        f"system on {text.one_line(system.get('host') or '?')} ({system.get('readings')} "
        f"readings): CPU mean {text.percent(fraction(stat('cpu_percent', 'mean')), 0)} of "
        f"{text.count(system.get('cpu_count'))} cores · RAM peak "
        f"{text.size(stat('ram_used'))} of {text.size(system.get('ram_total'))} · trainer RSS "
        f"peak {text.size(stat('trainer_rss'))}"
        + (f" ({scope_text(str(scope), processes)})" if scope != "process" else "")
    ]
    for gpu in system.get("gpus") or []:
        util, memory = gpu.get("util_percent") or {}, gpu.get("memory_used_mb") or {}
        total = gpu.get("memory_total_mb")
        peak = memory.get("peak")
        lines.append(
            f"GPU{gpu.get('index')} {text.one_line(gpu.get('name') or '?')}: util mean "
            f"{text.percent(fraction(util.get('mean')), 0)} · memory peak "
            f"{text.size(peak * text.MIB if text.finite(peak) else None)} of "
            f"{text.size(total * text.MIB if text.finite(total) else None)} · "
            f"{text.number((gpu.get('temperature_c') or {}).get('peak'), '.0f')}°C peak · power "
            f"mean {text.number((gpu.get('power_w') or {}).get('mean'), '.0f')} W"
        )
    return lines


# --- the reporters ----------------------------------------------------------------------------


class JsonEvents:
    """The events as JSON lines (batch events throttled as in metrics.jsonl), on `out` and/or
    kept for `path` (`output.JsonLines`)."""

    def __init__(self, out: TextIO | None, path: str | None) -> None:
        self.lines = JsonLines(out, path)
        self.throttle = runs.BatchThrottle()

    def add(self, event: dict[str, Any]) -> None:
        record = self.throttle.add(event) if event["event"] == "batch" else event
        if record is not None:
            self.lines.write(record)

    def close(self) -> None:
        self.lines.close()


class PlainReporter:
    """Plain lines for logs: the run's setup, one line per epoch, the result. No redraws."""

    def __init__(self, out: TextIO, json_file: str | None = None) -> None:
        self.out = out
        self.header_done = False
        self.json = JsonEvents(None, json_file) if json_file else None
        self.system = SystemTimeline()  # the trainer's "system" readings, for the last lines

    def print(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def begin(self, run_dir: Path) -> None:
        carry_on(self.print, self.out)(f"run dir: {text.one_line(run_dir)}")

    def event(self, event: dict[str, Any]) -> None:
        if self.json is not None:
            self.json.add(event)
        if event["event"] == "system":  # (from the sampler's thread; EventLog's lock holds)
            self.system.add([event])
            return
        carry_on(self.show, self.out)(event)

    def show(self, event: dict[str, Any]) -> None:
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
            self.print(text.one_line(event["message"]))

    def note(self, line: str) -> None:
        carry_on(
            lambda: print(f"cnn-tui: {text.one_line(line)}", file=sys.stderr, flush=True),
            sys.stderr,
        )()

    def finished(self, summary: dict[str, Any], run_dir: Path) -> None:
        lines = finished_lines(summary, run_dir)
        lines[1:1] = system_lines(self.system.summary())  # (between the result and the files)
        for line in lines:
            carry_on(self.print, self.out)(line)

    def close(self) -> None:
        if self.json is not None:
            self.json.close()


class JsonReporter(PlainReporter):
    """The events as JSON lines on stdout (batch events throttled as in metrics.jsonl), and in
    `json_file` too; the human notes go to stderr."""

    def __init__(self, out: TextIO, json_file: str | None = None) -> None:
        super().__init__(out)
        self.json = JsonEvents(out, json_file)

    def begin(self, run_dir: Path) -> None:
        pass

    def event(self, event: dict[str, Any]) -> None:
        carry_on(self.json.add, self.out)(event)

    def finished(self, summary: dict[str, Any], run_dir: Path) -> None:
        pass


class TerminalReporter(PlainReporter):
    """On a terminal: a rich progress bar with ETA and throughput, a table row per epoch."""

    def __init__(self, out: TextIO, json_file: str | None = None) -> None:
        super().__init__(out, json_file)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(file=out, highlight=False)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[speed]}  ETA {task.fields[eta]}"),
            console=self.console,
            transient=True,
        )
        self.task = None

    def print(self, line: str = "") -> None:
        self._terminal_gone()
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _terminal_gone(self) -> bool:
        """Whether the terminal went away (a dropped SSH session: stdout now goes nowhere,
        `streams.silence`). The bar then ends, and a carriage return ends its last drawing, so
        that it is not left at the start of the next line of the run's output.log."""
        if self.out.isatty():
            return False
        if self.task is not None:
            carry_on(self.out.write, self.out)("\r")  # (its drawing that failed: not a line)
            self._end_bar()
        return True

    def _end_bar(self) -> None:
        """Stop the bar, removed first: its last drawing would stay in output.log (a terminal
        gets it erased by cursor moves, which a file does not replay)."""
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
            carry_on(self.progress.stop, self.out)()

    def show(self, event: dict[str, Any]) -> None:
        if event["event"] != "batch":
            super().show(event)
            return
        if self._terminal_gone():
            return
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
            speed=text.throughput(event.get("images_per_s")),
            eta=text.eta(event.get("eta_s")),
        )

    def close(self) -> None:
        self._end_bar()
        super().close()


def make_reporter(
    out: TextIO, *, json_stdout: bool = False, json_file: str | None = None
) -> PlainReporter:
    """JSON lines with `json_stdout`, a progress bar on a terminal, else plain lines."""
    if json_stdout:
        return JsonReporter(out, json_file)
    if out.isatty():
        return TerminalReporter(out, json_file)
    return PlainReporter(out, json_file)
