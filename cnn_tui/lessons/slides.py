"""Slides from a lesson: what `--export-frames DIR` writes, planned without Textual.

A lecturer exports the steps of one phase of a lesson (forward, dw, dx, dw1, …: the names the
go-to prompt takes) as numbered SVG screenshots, `0001-dw.svg`, `0002-dw.svg`, …, with
`index.txt` (one line per frame: file, step, the step's formula) and `frames.json` (the same for
scripts) beside them. Here: the typed request (`FrameExport`, with its limits), the folder
check (`check_folder`: made if missing; one holding anything else is refused, and `force`
replaces only an earlier export's files, so nothing else is ever written over), the plan
(`plan_frames`: which steps, refused before anything is written when there are more than
`max_frames`) and the index. `cnn_tui.ui.lessons.frames` runs the screen and takes the shots.
Nothing here imports Textual or numpy (the command line imports it to read its flags).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui.errors import UsageError
from cnn_tui.fileio import atomic_write_text, json_text
from cnn_tui.text import one_line

if TYPE_CHECKING:
    from cnn_tui.lessons.navigation import GotoTarget

FLAG = "--export-frames"
DEFAULT_SIZE = (120, 40)
MIN_SIZE, MAX_SIZE = (60, 20), (400, 200)  # columns, rows: a readable board to a large slide
DEFAULT_MAX_FRAMES = 300
INDEX, MANIFEST = "index.txt", "frames.json"
_OWN_FILE = re.compile(r"\d{4,}-[\w.-]+\.svg")  # a frame, as `plan_frames` names them


@dataclass(frozen=True)
class FrameExport:
    """What `--export-frames` asks for: where, which phase, how many, how large."""

    folder: Path
    phase: str | None = None  # a phase name as the go-to prompt takes it; None: the first
    every: int = 1  # every K-th step (and the phase's last step)
    max_frames: int = DEFAULT_MAX_FRAMES
    size: tuple[int, int] = DEFAULT_SIZE  # columns, rows
    force: bool = False  # replace the frames of an earlier export in the folder


@dataclass(frozen=True)
class FramePlan:
    """The frames to take: the phase, its first step (`target`) and the positions to shoot."""

    phase: str
    target: GotoTarget
    positions: list[int]
    old_files: set[str]  # an earlier export's files in the folder (`force`)

    def file_name(self, number: int) -> str:
        slug = re.sub(r"[^a-z0-9_.-]+", "-", self.phase.casefold()).strip("-.") or "phase"
        return f"{number:04d}-{slug}.svg"


@dataclass(frozen=True)
class Frame:
    """One written frame: its file, the step it shows and that step's text."""

    file: str
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
    return FramePlan(phase, target, positions, old_files)


def frame_positions(target: GotoTarget, every: int) -> list[int]:
    """The positions of the frames: every `every`-th step of the phase, and its last."""
    last = target.position + target.steps - 1
    positions = list(range(target.position, last + 1, max(every, 1)))
    if positions[-1] != last:
        positions.append(last)
    return positions


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
        *(f"{frame.file}  step {frame.phase_step}  {frame.formula}" for frame in frames),
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
            {"file": f.file, "phase_step": f.phase_step, "status": f.status, "formula": f.formula}
            for f in frames
        ],
    }
    atomic_write_text(export.folder / MANIFEST, json_text(manifest, indent=2) + "\n")
