"""Snapshot tests (pytest-textual-snapshot) of the step-through lesson screens.

Deterministic by construction: fixed seeds, the replay paused (no play timer), and the checks
panel switched off so no PyTorch worker races the snapshot. Update with
`pytest tests/ui/test_lesson_snapshots.py --snapshot-update` after a deliberate change, then look
at the SVGs under tests/__snapshots__/test_lesson_snapshots/.
"""

from __future__ import annotations

import pytest
from conftest import press_quickly

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.screen import LessonScreen

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def lesson(op: str, params: dict, keys: list[str] | None = None):
    """Open the lesson, then press `keys` (a long walk quickly: conftest.press_quickly)."""

    async def run_before(pilot) -> None:
        await pilot.app.push_screen(LessonScreen(op, params))
        await pilot.pause()
        await press_quickly(pilot, *(keys or []))

    return run_before


def test_conv_forward_midway(snap_compare) -> None:
    """Two channels, padding 1: the window, the kernel cell and the channel sum on screen."""
    keys = ["right_square_bracket"] * 6 + ["right"] * 13
    run_before = lesson("conv", {"channels": 2, "padding": 1, "seed": 3}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)


def test_conv_backward_dw(snap_compare) -> None:
    keys = ["p", "p"] + ["right_square_bracket"] * 2 + ["right"] * 7
    run_before = lesson("conv", {"padding": 1, "filters": 2, "seed": 3}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)


def test_max_pool_routing(snap_compare) -> None:
    """Overlapping 3×3 windows, stride 1: the gradient goes to each window's max."""
    keys = ["b"] + ["right"] * 6
    params = {"height": 5, "width": 5, "kernel": 3, "stride": 1, "seed": 2}
    run_before = lesson("pool", params, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)


def test_conv_forward_80x24(snap_compare) -> None:
    keys = ["right_square_bracket"] * 4 + ["right"] * 5
    run_before = lesson("conv", {"channels": 2, "filters": 2, "padding": 1, "seed": 5}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_edit_form_80x24(snap_compare) -> None:
    run_before = lesson("pool", {}, ["e"])
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_conv_backward_dw_80x24(snap_compare) -> None:
    """At 80×24 both operands of the step (x_pad and dout) are on screen, under the rule."""
    keys = ["p", "p"] + ["right_square_bracket"] * 2 + ["right"] * 2
    run_before = lesson("conv", {"padding": 1, "filters": 2, "seed": 3}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_conv_transposed_view_dilated(snap_compare) -> None:
    """dX as a transposed convolution with dilation 2 and padding same: the padded dout,
    the rotated kernel."""
    keys = ["t"] + ["right_square_bracket"] * 8 + ["right"] * 3
    params = {"height": 7, "width": 7, "dilation": 2, "padding": "same", "seed": 2}
    run_before = lesson("conv", params, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)


# The projector cases (issue 24): at 80×24 the cell written, its window, the kernel and the
# array accumulated are all on the board, each grid with its title and indices.
BIG = {"height": 8, "width": 8, "padding": 1}


def test_big_input_forward_midway_80x24(snap_compare) -> None:
    """Cell 50 of 64: out[6,1] and its window x_pad[6..8, 1..3] in view, rows cropped."""
    keys = ["right_square_bracket"] * 50
    run_before = lesson("conv", BIG, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_big_input_backward_dx_late_80x24(snap_compare) -> None:
    """dx_pad[2,8] += w[0,2]·dout[2,6]: the forward output, read by no backward step, is off
    the board."""
    keys = ["b", "p", "p"] + ["right"] * 201
    run_before = lesson("conv", BIG, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_transposed_view_rotated_kernel_80x24(snap_compare) -> None:
    """The transposed view with stride 2: "w rotated 180°" with its own highlight, and the
    rows and columns no window reaches named in the panel."""
    keys = ["t"] + ["right_square_bracket"] * 4 + ["right"] * 4
    run_before = lesson("conv", {**BIG, "stride": 2, "padding": 0}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_true_convolution_80x24(snap_compare) -> None:
    """A true convolution: the kernel entry multiplied is marked in w and in w rotated 180°,
    where it lines up with the window."""
    keys = ["right_square_bracket"] * 20 + ["right"] * 4
    run_before = lesson("conv", {**BIG, "conv_mode": "convolution"}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_max_pool_backward_80x24(snap_compare) -> None:
    keys = ["b"] + ["right"] * 9
    run_before = lesson("pool", {"height": 8, "width": 8, "seed": 1}, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)


def test_several_filters_backward_dx_120x40(snap_compare) -> None:
    """Two channels and two filters, dX late, at 120×40."""
    keys = ["b", "p", "p"] + ["right"] * 300
    params = {"height": 8, "width": 8, "padding": 1, "channels": 2, "filters": 2}
    run_before = lesson("conv", params, keys)
    assert snap_compare(CnnTuiApp(), terminal_size=(120, 40), run_before=run_before)


def test_help_page_notation_80x24(snap_compare) -> None:
    """`?`: the notation beside the lecture's above the keys, on a projector's 80×24."""
    run_before = lesson("conv", {}, ["question_mark"])
    assert snap_compare(CnnTuiApp(), terminal_size=(80, 24), run_before=run_before)
