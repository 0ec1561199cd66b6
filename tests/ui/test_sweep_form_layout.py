"""The sweep form's layout at 80×24: the grid row's value (several KEY=V1,V2) and its hint
don't run into each other, and the form's message is shown whole, wrapped, not cut."""

from __future__ import annotations

from textual.widgets import Input, Static
from train_ui_fixtures import run_async

from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.training.sweep import PLACEHOLDERS, SweepFormScreen


@run_async
async def test_at_80x24_the_grid_row_and_the_message_are_whole(tmp_path):
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = SweepFormScreen()
        await app.push_screen(screen)
        await pilot.pause()
        await pilot.pause()
        grid = screen.query_one("#sweep-grid", Input)
        hint = screen.query_one("#reason-sweep-grid", Static)
        # the value across the row (the placeholder whole), its hint below, under the value
        assert grid.region.width >= len(PLACEHOLDERS["grid"]) + 10
        assert hint.region.y == grid.region.bottom and hint.region.right <= 80
        assert str(hint.render()).startswith("drop-downs and check boxes")
        assert hint.content_region.x == grid.region.x
        # the message (why Start waits) wraps above the footer instead of being cut
        summary = screen.query_one("#form-summary", Static)
        text = str(summary.render())
        assert text.startswith("✗ type several values") and text.endswith("in the grid row")
        assert summary.region.height * summary.content_region.width >= len(text)
        assert summary.region.height >= 2
        assert summary.region.bottom <= screen.query_one(WrappingFooter).region.y
