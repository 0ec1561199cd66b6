"""Slides: the steps of one phase of a lesson screen saved as SVG screenshots (`--export-frames`).

The lesson screen runs headless (Textual's `App.run_test` at a fixed size: no terminal needed,
so it works in CI) exactly as it would on screen. `cnn_tui.lessons.slides` plans the frames (the
phase by the name the go-to prompt takes, every K-th step, the folder checked, the cap); here
the screen goes to each step (`SteppingScreen.go_to`) and the app's own screenshot
(`App.export_screenshot`, what `save_screenshot` writes) is written atomically. The PyTorch and
gradient checks finish first, so every frame's check line shows their verdict.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cnn_tui.fileio import atomic_write
from cnn_tui.lessons.navigation import GotoTarget
from cnn_tui.lessons.slides import (
    Frame,
    FrameExport,
    FramePlan,
    finish,
    frame_bytes,
    plan_frames,
    portable_svg,
    status_counter,
)
from cnn_tui.ui.lessons.stepping import SteppingScreen


def export_frames(screen: SteppingScreen, export: FrameExport, command: str) -> list[Frame]:
    """Write the frames `export` asks for of the lesson `screen` (built, not yet shown) and their
    index; UsageError, before anything is written, for a request that cannot be met."""
    plan = plan_frames(screen.model, screen.view, export)
    export.folder.mkdir(parents=True, exist_ok=True)
    frames = asyncio.run(_shoot(screen, export, plan, command))
    finish(export, plan, command, frames)
    return frames


async def _shoot(
    screen: SteppingScreen, export: FrameExport, plan: FramePlan, command: str
) -> list[Frame]:
    from cnn_tui.ui.app import CnnTuiApp

    app = CnnTuiApp()
    frames: list[Frame] = []
    first = plan.target.position
    async with app.run_test(size=export.size) as pilot:
        await app.push_screen(screen)
        await _settle(pilot, screen)
        for position in plan.positions:
            screen.go_to(GotoTarget(position, plan.target.mode))
            await pilot.pause()  # the board scrolls to the step after a refresh
            await pilot.pause()
            parts = screen.model.status_parts(screen.speed)
            counter = status_counter(parts, position)  # the number the frame itself shows
            name = plan.file_name(position)
            svg = app.export_screenshot(title=f"cnn-tui {command} · {name}")
            data = frame_bytes(portable_svg(svg), plan.format)
            atomic_write(export.folder / name, lambda handle, data=data: handle.write(data))
            lines = screen.model.step_lines()
            formula = "   ".join(line for line in lines[:2] if line)
            status = " │ ".join(parts)
            frames.append(Frame(name, position, counter, position - first + 1, status, formula))
    return frames


async def _settle(pilot: Any, screen: SteppingScreen) -> None:
    """Wait until the lesson screen is up and its checks are done."""
    for _ in range(200):
        await pilot.pause()
        if pilot.app.screen is screen:
            break
    else:
        raise RuntimeError("the lesson screen did not open")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
