"""Snapshot tests of the picture lesson (`cnn-tui conv --image`) at 80×24 and 120×40.

The picture is synthetic (drawn here, written as a PNG and read back the way the command reads
it), so the snapshots do not depend on installed data. Checks are off and the replay is paused.
Update with `pytest tests/ui/test_picture_snapshots.py --snapshot-update` after a deliberate
change, then look at the SVGs under tests/ui/__snapshots__/test_picture_snapshots/.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import then_press
from PIL import Image

from cnn_tui.lessons.picture import PictureSettings, build_picture_lesson
from cnn_tui.ui.app import CnnTuiApp

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


@pytest.fixture
def synthetic_png(tmp_path):
    """A 28×28 picture: a bright disc on a dark gradient (edges in every direction)."""
    rows, cols = np.mgrid[0:28, 0:28]
    disc = (rows - 13.5) ** 2 + (cols - 12.0) ** 2 < 8.5**2
    grey = np.where(disc, 220, cols * 4).astype(np.uint8)
    path = tmp_path / "synthetic.png"
    Image.fromarray(grey).save(path)
    return path


async def started(pilot) -> None:
    await pilot.pause()


def app_for(path, **settings) -> CnnTuiApp:
    return CnnTuiApp("conv", build_picture_lesson(PictureSettings(str(path), **settings)))


def test_picture_80x24(snap_compare, synthetic_png) -> None:
    """A projector: the picture and the feature map with the step, the step panel below."""
    keys = ["right_square_bracket"] * 5 + ["right"] * 4
    app = app_for(synthetic_png, kernel="sobel-x", crop="3,4")
    assert snap_compare(app, terminal_size=(80, 24), run_before=then_press(started, keys))


def test_picture_80x24_board(snap_compare, synthetic_png) -> None:
    """`i` at 80×24: the board of the crop instead of the picture."""
    keys = ["right_square_bracket"] * 5 + ["right"] * 4 + ["i"]
    app = app_for(synthetic_png, kernel="sobel-x", crop="3,4")
    assert snap_compare(app, terminal_size=(80, 24), run_before=then_press(started, keys))


def test_picture_120x40(snap_compare, synthetic_png) -> None:
    """Both at once; the crop moved twice and the kernel changed with the keys."""
    keys = ["s", "d", "k"] + ["right_square_bracket"] * 2 + ["right"] * 3
    app = app_for(synthetic_png, kernel="edge", crop="8,2", values={"height": 7, "width": 7})
    assert snap_compare(app, terminal_size=(120, 40), run_before=then_press(started, keys))
