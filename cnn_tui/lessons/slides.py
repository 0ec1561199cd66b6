"""Slides from a lesson: what `--export-frames DIR` writes, planned without Textual.

A lecturer exports the steps of one phase of a lesson (forward, dw, dx, dw1, …: the names the
go-to prompt takes) as numbered SVG screenshots, with `index.txt` (one line per frame: file,
step, the step's formula) and `frames.json` (the same for scripts) beside them.

One numbering: a frame's file is numbered by the step its own status line counts from the start
(`0060-dw.svg` shows `step 60 / 171`: conv and pool count the steps of the pass on screen; the
network, batchnorm and dropout lessons count the whole lesson, `all 543 / 900`), and the index
gives that count, then the step within the exported phase (`dW step 51 of 81`). The SVG is made
portable (`portable_svg`): spaces kept and a monospace font every renderer has, so the grid's
columns stay under their indices in librsvg, LibreOffice or Inkscape, not only in a browser. Here: the typed request (`FrameExport`, with its limits), the folder
check (`check_folder`: made if missing; one holding anything else is refused, and `force`
replaces only an earlier export's files, so nothing else is ever written over), the plan
(`plan_frames`: which steps, refused before anything is written when there are more than
`max_frames`) and the index. `cnn_tui.ui.lessons.frames` runs the screen and takes the shots.
Nothing here imports Textual or numpy (the command line imports it to read its flags).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui.errors import RunError, UsageError
from cnn_tui.fileio import atomic_write_text, json_text
from cnn_tui.text import one_line

if TYPE_CHECKING:
    from cnn_tui.lessons.navigation import GotoTarget

FLAG = "--export-frames"
DEFAULT_SIZE = (120, 40)
MIN_SIZE, MAX_SIZE = (60, 20), (400, 200)  # columns, rows: a readable board to a large slide
DEFAULT_MAX_FRAMES = 300
INDEX, MANIFEST = "index.txt", "frames.json"
_OWN_FILE = re.compile(r"\d{4,}-[\w.-]+\.(svg|png)")  # a frame, as `plan_frames` names them
FORMATS = ("svg", "png")  # --frame-format; png through librsvg's rsvg-convert
CONVERTER = "rsvg-convert"
CONVERT_TIMEOUT = 120  # seconds for one frame
# the running count of a status line part: conv/pool's pass ("step 60 / 171"), the staged
# lessons' whole lesson ("all 543 / 900"; their "step K / T" restarts in every stage)
_COUNTER = re.compile(r"(all|step) (\d+) / (\d+)")
# monospace fonts a renderer without the web font ("Fira Code", fetched from a CDN) has
FONT_FALLBACK = '"Fira Code", "DejaVu Sans Mono", "Menlo", "Consolas", "Liberation Mono", monospace'


@dataclass(frozen=True)
class FrameExport:
    """What `--export-frames` asks for: where, which phase, how many, how large."""

    folder: Path
    phase: str | None = None  # a phase name as the go-to prompt takes it; None: the first
    every: int = 1  # every K-th step (and the phase's last step)
    max_frames: int = DEFAULT_MAX_FRAMES
    size: tuple[int, int] = DEFAULT_SIZE  # columns, rows
    force: bool = False  # replace the frames of an earlier export in the folder
    format: str = "svg"  # "svg" | "png" (each SVG converted by `rsvg-convert`)


@dataclass(frozen=True)
class FramePlan:
    """The frames to take: the phase, its first step (`target`) and the positions to shoot."""

    phase: str
    target: GotoTarget
    positions: list[int]
    old_files: set[str]  # an earlier export's files in the folder (`force`)
    format: str = "svg"  # the frames' file type (`FrameExport.format`)

    def file_name(self, number: int) -> str:
        """The frame of the step its status line counts as `number` (`0060-dw.svg`): as wide
        as the export's largest number, at least 4 digits, so the files sort in step order."""
        slug = re.sub(r"[^a-z0-9_.-]+", "-", self.phase.casefold()).strip("-.") or "phase"
        width = max(4, len(str(self.positions[-1])))
        return f"{number:0{width}d}-{slug}.{self.format}"


@dataclass(frozen=True)
class Frame:
    """One written frame: its file, the step it shows and that step's text."""

    file: str
    step: int  # the status line's running count (the file's number)
    counter: str  # that count as the status line writes it: "step 60 / 171", "all 543 / 900"
    phase_step: int  # 1.. within the phase
    status: str  # the status line (its "step K / TOTAL" as the screen counts)
    formula: str  # the step's formula and its numbers, as the step panel writes them


def parse_size(text: str) -> tuple[int, int]:
    """`COLSxROWS` (e.g. 80x24) as (columns, rows); ValueError saying the form and limits."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    (low_c, low_r), (high_c, high_r) = MIN_SIZE, MAX_SIZE
    limits = f"columns {low_c} to {high_c}, rows {low_r} to {high_r}"
    if match is None:
        raise ValueError(f"give COLSxROWS, e.g. 120x40 or 80x24 ({limits}), not {text!r}")
    columns, rows = int(match.group(1)), int(match.group(2))
    if not (low_c <= columns <= high_c and low_r <= rows <= high_r):
        raise ValueError(f"{columns}x{rows} is out of range: {limits}")
    return columns, rows


def check_folder(folder: Path, force: bool) -> set[str]:
    """A usage error unless `folder` is missing (it will be made), empty, or (with `force`)
    holds only an earlier export's files; returns those files."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{FLAG} {folder} is a file, not a folder: give a folder for the frames")
    if not folder.exists():
        parent = next((p for p in folder.absolute().parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"{FLAG} {folder}: cannot make it ({parent} is not writable by you)")
        return set()
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{FLAG} {folder} is not writable by you: give another folder")
    present = {entry.name for entry in folder.iterdir()}
    if not present:
        return set()
    if not force:
        raise UsageError(
            f"{FLAG} {folder} is not empty: give a new or empty folder (or --force to replace "
            "an earlier export's frames there)"
        )
    others = sorted(name for name in present if not _own(name))
    if others:
        raise UsageError(
            f"{FLAG} {folder} holds {one_line(others[0])}, which no export wrote: --force only "
            "replaces an earlier export's frames; give another folder"
        )
    return present


def _own(name: str) -> bool:
    return name in (INDEX, MANIFEST) or _OWN_FILE.fullmatch(name) is not None


def plan_frames(model: Any, view: Mapping[str, int], export: FrameExport) -> FramePlan:
    """Which steps of `model` (a lesson model: `goto_names`, `resolve_goto`) to shoot; a usage
    error, before anything is written, for a folder that is not free, a phase the lesson lacks
    or more frames than `export.max_frames`."""
    from cnn_tui.lessons.navigation import GotoError

    if export.format == "png" and shutil.which(CONVERTER) is None:
        raise UsageError(
            f"--frame-format png needs {CONVERTER} (librsvg: Debian's librsvg2-bin, Homebrew's "
            "librsvg) on the PATH: install it, or leave --frame-format out for SVG frames"
        )
    old_files = check_folder(export.folder, export.force)
    names = model.goto_names()
    phase = export.phase or names[0]
    try:
        target = model.resolve_goto(phase, view)
    except GotoError as exc:
        raise UsageError(f"--phase {one_line(phase)}: {one_line(exc)}") from None
    if not target.steps:
        raise UsageError(f"--phase {one_line(phase)}: name a phase ({', '.join(names)})")
    positions = frame_positions(target, export.every)
    if len(positions) > export.max_frames:
        every = next(
            k for k in range(export.every, target.steps + 1)
            if len(frame_positions(target, k)) <= export.max_frames
        )  # fmt: skip
        raise UsageError(
            f"--phase {one_line(phase)} has {target.steps} steps: {len(positions)} frames, more "
            f"than --max-frames {export.max_frames}; give --every {every} (or a larger "
            "--max-frames)"
        )
    return FramePlan(phase, target, positions, old_files, export.format)


def frame_positions(target: GotoTarget, every: int) -> list[int]:
    """The positions of the frames: every `every`-th step of the phase, and its last."""
    last = target.position + target.steps - 1
    positions = list(range(target.position, last + 1, max(every, 1)))
    if positions[-1] != last:
        positions.append(last)
    return positions


def status_counter(parts: Sequence[str], position: int) -> str:
    """The part of a lesson's status line (`status_parts`) that counts `position`, the step
    the frame shows: "all 543 / 900" where the lesson has one, else "step 60 / 171"."""
    found = {m.group(1): m for part in parts if (m := _COUNTER.fullmatch(part))}
    match = found.get("all") or found.get("step")
    if match is not None and int(match.group(2)) == position:
        return match.group(0)
    raise ValueError(f"no part of the status line counts step {position}: {list(parts)}")


def portable_svg(svg: str) -> str:
    """A screenshot that lines up outside a browser. Textual's SVG writes each run of text with
    its spaces (as no-break spaces) and the web font "Fira Code": librsvg, and office suites
    after it, drop a run's leading spaces and substitute a proportional font, so a grid's
    columns slide away from their index row. Here: `xml:space="preserve"` on the root (SVG's
    own switch to keep every space, which librsvg honours), `white-space: pre` for CSS
    renderers, and a fallback list of monospace fonts ending in the generic `monospace`."""
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    return re.sub(
        r"font-family: Fira Code, monospace;",
        f"font-family: {FONT_FALLBACK};\n        white-space: pre;",
        svg,
    )


def frame_bytes(svg: str, file_format: str) -> bytes:
    """A frame's file: the (portable) SVG itself, or a PNG `rsvg-convert` renders from it.
    RunError (exit 1), with the converter's message, when it fails."""
    if file_format == "svg":
        return svg.encode("utf-8")
    try:
        done = subprocess.run(
            [CONVERTER, "--format", "png"], input=svg.encode("utf-8"), capture_output=True,
            timeout=CONVERT_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunError(f"{CONVERTER} could not convert a frame: {one_line(exc)}") from None
    if done.returncode != 0 or not done.stdout:
        message = one_line(done.stderr.decode("utf-8", "replace")) or f"exit {done.returncode}"
        raise RunError(f"{CONVERTER} could not convert a frame: {message}")
    return done.stdout


def finish(export: FrameExport, plan: FramePlan, command: str, frames: Sequence[Frame]) -> None:
    """After the frames: remove an earlier, longer export's frames, write the index files."""
    written = {frame.file for frame in frames} | {INDEX, MANIFEST}
    for name in plan.old_files - written:
        (export.folder / name).unlink(missing_ok=True)
    label = plan.target.label or plan.phase
    columns, rows = export.size
    lines = [
        f"# cnn-tui {command} {FLAG}: {label}, {len(frames)} frames of its "
        f"{plan.target.steps} steps, {columns}x{rows}",
        *(
            f"{frame.file}  {frame.counter}  ({plan.phase} step {frame.phase_step} of "
            f"{plan.target.steps})  {frame.formula}"
            for frame in frames
        ),
    ]
    atomic_write_text(export.folder / INDEX, "\n".join(lines) + "\n")
    manifest = {
        "command": command,
        "phase": plan.phase,
        "label": label,
        "steps": plan.target.steps,
        "every": export.every,
        "size": [columns, rows],
        "frames": [
            {
                "file": f.file,
                "step": f.step,
                "counter": f.counter,
                "phase_step": f.phase_step,
                "status": f.status,
                "formula": f.formula,
            }
            for f in frames
        ],
    }
    atomic_write_text(export.folder / MANIFEST, json_text(manifest, indent=2) + "\n")
