"""Snapshot tests (pytest-textual-snapshot) of the network lesson screen, at 80×24 and 120×40,
mid forward (the conv layer filling z1), mid backward (max-pool routing the gradient), an Adam
training run mid update, and a step appended with `o` at its "after" stage.

Deterministic: the default example, the replay paused, the checks switched off. Update with
`pytest tests/ui/test_net_snapshots.py --snapshot-update` after a deliberate change, then look at
the SVGs under tests/__snapshots__/test_net_snapshots/.
"""

from __future__ import annotations

import pytest
from conftest import then_press

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.network import NetworkScreen

MID_FORWARD = ["right_square_bracket"] * 5 + ["right"] * 4  # conv, the 6th output cell
MID_BACKWARD = ["b"] + ["p"] * 5 + ["right"] * 3  # max-pool backward, the 3rd route


pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


async def open_net(pilot) -> None:
    await pilot.app.push_screen(NetworkScreen())
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_network_mid_forward(snap_compare, size) -> None:
    run_before = then_press(open_net, MID_FORWARD)
    assert snap_compare(CnnTuiApp(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_network_mid_backward(snap_compare, size) -> None:
    run_before = then_press(open_net, MID_BACKWARD)
    assert snap_compare(CnnTuiApp(), terminal_size=size, run_before=run_before)


async def open_adam_run(pilot) -> None:
    await pilot.app.push_screen(NetworkScreen({"steps": 3, "optimizer": "adam"}))
    await pilot.pause()


# step 2 of an Adam run: its update, the third weight of w2's bias-corrected step
MID_ADAM = ["b", "b", "b", "b", "b"] + ["p"] * 14 + ["right"] * 4


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_network_adam_training_run(snap_compare, size) -> None:
    run_before = then_press(open_adam_run, MID_ADAM)
    assert snap_compare(CnnTuiApp(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_network_one_more_step_after(snap_compare, size) -> None:
    press = ["o", "b", "b", "b"]  # step 2, appended, at its "after": the curve's second drop
    run_before = then_press(open_net, press)
    assert snap_compare(CnnTuiApp(), terminal_size=size, run_before=run_before)
