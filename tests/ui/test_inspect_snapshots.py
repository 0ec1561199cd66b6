"""Snapshots of the Inside view (`cnn-tui inspect RUN`) at 120×40 and 80×24.

The run is written with seeded weights (inspect_fixtures), so the maps are the same bits on every
machine; each snapshot waits until the view has inspected its image and ordered the test split.
"""

from __future__ import annotations

import pytest
from conftest import wait_until
from inspect_fixtures import write_model_run

from cnn_tui.training.tools.inspect import InspectRequest
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.inside import InsideView


@pytest.fixture
def app(tmp_path) -> CnnTuiApp:
    run_dir = write_model_run(tmp_path / "20251122-101500-simple-cnn-shapes", hidden_units=6)
    return CnnTuiApp("inspect", InspectRequest(run_dir, device="cpu"))


def settled(keys: tuple[str, ...] = ()):
    async def run_before(pilot) -> None:
        view = pilot.app.screen.query_one(InsideView)
        await wait_until(
            pilot,
            lambda: (
                view.inspection is not None and view.wrong is not None and not pilot.app.workers
            ),
            30,
        )
        await pilot.press(*keys)
        await pilot.pause()
        # the footer's keys are enabled once the run is loaded: on a busy machine the footer may
        # not have redrawn yet, so ask for it and let it land
        pilot.app.screen.refresh_bindings()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        await pilot.pause()

    return run_before


def test_inside_120x40(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled(("down", "c")))


def test_inside_80x24(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled())
