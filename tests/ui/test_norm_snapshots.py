"""Snapshot tests (pytest-textual-snapshot) of the batch-norm and dropout lesson screens, at 80×24
and 120×40: batch norm mid variance (forward), batch norm's dx (backward: the written cell and the
arrays it reads), dropout drawing its mask; the shipped examples (a constant channel's dx, p = 0.5
scaling by 2) with the status naming them, and a skip over dropped values (`z`).

Deterministic: the default examples, the replay paused, the checks switched off. Update with
`pytest tests/ui/test_norm_snapshots.py --snapshot-update` after a deliberate change, then look at
the SVGs under tests/ui/__snapshots__/test_norm_snapshots/.
"""

from __future__ import annotations

import pytest
from conftest import then_press

from cnn_tui.lessons.settings import LayerSettings
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.layers import LayerScreen

SIZES = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
MID_VARIANCE = ["p"] + ["right"] * 11  # σ², the 11th value of channel 0
BACKWARD_DX = ["b"] + ["p"] * 5 + ["right"] * 14  # dx, image 0, channel 1
MASK = ["right"] * 7  # the 7th draw of the mask


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def opener(op: str, example: str | None = None):
    async def open_layer(pilot) -> None:
        await pilot.app.push_screen(LayerScreen(LayerSettings(op, example=example)))
        await pilot.pause()

    return open_layer


@SIZES
def test_batchnorm_mid_variance(snap_compare, size) -> None:
    assert snap_compare(
        CnnTuiApp(), terminal_size=size, run_before=then_press(opener("batchnorm"), MID_VARIANCE)
    )


@SIZES
def test_batchnorm_backward_dx(snap_compare, size) -> None:
    assert snap_compare(
        CnnTuiApp(), terminal_size=size, run_before=then_press(opener("batchnorm"), BACKWARD_DX)
    )


@SIZES
def test_dropout_mask(snap_compare, size) -> None:
    assert snap_compare(
        CnnTuiApp(), terminal_size=size, run_before=then_press(opener("dropout"), MASK)
    )


@SIZES
def test_batchnorm_constant_channel_dx(snap_compare, size) -> None:
    press = [":", *"dx[n=1, c=1, 1,0]", "enter"]
    assert snap_compare(
        CnnTuiApp(),
        terminal_size=size,
        run_before=then_press(opener("batchnorm", "bn-constant-channel"), press),
    )


@SIZES
def test_dropout_half_skips_dropped_values(snap_compare, size) -> None:
    press = [":", "y", "enter", "z"]  # y's first value is kept; z passes the dropped ones
    assert snap_compare(
        CnnTuiApp(),
        terminal_size=size,
        run_before=then_press(opener("dropout", "dropout-half"), press),
    )
