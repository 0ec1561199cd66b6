"""Snapshot tests of go to (`:`) and the zero-product skip (`z`) on the lesson screens, at a
projector's 80×24: the prompt with a query it explains, and the status line after a skip.
Deterministic as the other lesson snapshots (fixed seeds, paused, the checks off). Update with
`pytest tests/ui/test_goto_snapshots.py --snapshot-update`, then look at the SVGs under
tests/ui/__snapshots__/test_goto_snapshots/.
"""

from __future__ import annotations

import pytest
from conftest import then_press

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.screen import LessonScreen

ISSUE_EXAMPLE = {"height": 8, "width": 8, "padding": 1}


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def conv_lesson(params: dict):
    async def run_before(pilot) -> None:
        await pilot.app.push_screen(LessonScreen("conv", params))
        await pilot.pause()

    return run_before


def test_goto_prompt_explains_a_cell_out_of_range_80x24(snap_compare) -> None:
    keys = ["colon", "9", "comma", "9", "enter"]
    run_before = then_press(conv_lesson(ISSUE_EXAMPLE), keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_goto_a_cell_then_skip_zeros_120x40(snap_compare) -> None:
    """`:` 7,0 goes to out[7,0]'s bias; `z` passes over its window's padded zeros."""
    keys = ["colon", "7", "comma", "0", "enter", "z"]
    run_before = then_press(conv_lesson(ISSUE_EXAMPLE), keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)
