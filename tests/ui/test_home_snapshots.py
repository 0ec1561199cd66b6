"""Snapshot tests (pytest-textual-snapshot) of the home screen at 80×24 and 120×40: every lesson
and training entry with its key, nothing cut at a projector's size.

Deterministic: an empty runs folder (no "runs in progress" banner). Update with
`pytest tests/ui/test_home_snapshots.py --snapshot-update` after a deliberate change, then look
at the SVGs under tests/ui/__snapshots__/test_home_snapshots/.
"""

from __future__ import annotations

import pytest

from cnn_tui.ui.app import CnnTuiApp

SIZES = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])


@SIZES
def test_home(snap_compare, size, tmp_path) -> None:
    assert snap_compare(CnnTuiApp(runs_dir=tmp_path), terminal_size=size)
