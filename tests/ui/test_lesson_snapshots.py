"""Snapshot tests (pytest-textual-snapshot) of the step-through lesson screens.

Deterministic by construction: fixed seeds, the replay paused (no play timer), and the checks
panel switched off so no PyTorch worker races the snapshot. Update with
`pytest tests/ui/test_lesson_snapshots.py --snapshot-update` after a deliberate change, then look
at the SVGs under tests/__snapshots__/test_lesson_snapshots/.
"""

from __future__ import annotations

import pytest

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.screen import LessonScreen


@pytest.fixture(autouse=True)
def no_checks(monkeypatch):
    monkeypatch.setattr(LessonScreen, "run_checks_default", False)


def lesson(op: str, params: dict):
    async def run_before(pilot) -> None:
        await pilot.app.push_screen(LessonScreen(op, params))
        await pilot.pause()

    return run_before


def test_conv_forward_midway(snap_compare) -> None:
    """Two channels, padding 1: the window, the kernel cell and the channel sum on screen."""
    keys = ["right_square_bracket"] * 6 + ["right"] * 13
    run_before = lesson("conv", {"channels": 2, "padding": 1, "seed": 3})
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(120, 40), run_before=run_before)


def test_conv_backward_dw(snap_compare) -> None:
    keys = ["p", "p"] + ["right_square_bracket"] * 2 + ["right"] * 7
    run_before = lesson("conv", {"padding": 1, "filters": 2, "seed": 3})
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(120, 40), run_before=run_before)


def test_max_pool_routing(snap_compare) -> None:
    """Overlapping 3×3 windows, stride 1: the gradient goes to each window's max."""
    keys = ["b"] + ["right"] * 6
    params = {"height": 5, "width": 5, "kernel": 3, "stride": 1, "seed": 2}
    run_before = lesson("pool", params)
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(120, 40), run_before=run_before)


def test_conv_forward_80x24(snap_compare) -> None:
    keys = ["right_square_bracket"] * 4 + ["right"] * 5
    run_before = lesson("conv", {"channels": 2, "filters": 2, "padding": 1, "seed": 5})
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(80, 24), run_before=run_before)


def test_edit_form_80x24(snap_compare) -> None:
    run_before = lesson("pool", {})
    assert snap_compare(CnnTuiApp(), press=["e"], terminal_size=(80, 24), run_before=run_before)


def test_conv_backward_dw_80x24(snap_compare) -> None:
    """At 80×24 both operands of the step (x_pad and dout) are on screen, under the rule."""
    keys = ["p", "p"] + ["right_square_bracket"] * 2 + ["right"] * 2
    run_before = lesson("conv", {"padding": 1, "filters": 2, "seed": 3})
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(80, 24), run_before=run_before)


def test_conv_transposed_view_dilated(snap_compare) -> None:
    """dX as a transposed convolution with dilation 2 and padding same: the padded dout,
    the rotated kernel."""
    keys = ["t"] + ["right_square_bracket"] * 8 + ["right"] * 3
    params = {"height": 7, "width": 7, "dilation": 2, "padding": "same", "seed": 2}
    run_before = lesson("conv", params)
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(120, 40), run_before=run_before)


def test_help_page_notation_80x24(snap_compare) -> None:
    """`?`: the notation beside the lecture's above the keys, on a projector's 80×24."""
    run_before = lesson("conv", {})
    keys = ["question_mark"]
    assert snap_compare(CnnTuiApp(), press=keys, terminal_size=(80, 24), run_before=run_before)
