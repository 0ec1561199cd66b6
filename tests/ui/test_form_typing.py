"""Typing into the training form: a key that changes no field's validity lays nothing out.

The form has ~160 widgets; a layout pass over them cost ~20 ms of CPU on two cores, and each
key used to cost two or more (the text field's own virtual size, then every reason beside the
fields redrawn whether it changed or not), so a long data path typed over SSH lagged. The tests
count the layout passes of the form's screen (its compositor's `reflow`) while typing, never
time them; and check that what a layout is still needed for happens: a reason that wraps when
a field turns invalid, the text field scrolled to its end.
"""

from __future__ import annotations

import pytest
from conftest import press_quickly, settle, text_of
from textual.widgets import Input, Static
from train_ui_fixtures import run_async

from cnn_tui.training.config import TrainConfig
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.training.form import TrainFormScreen

TYPED = "/srv/lectures/datasets/fashion-mnist"  # a data folder, 36 keys


def count_layouts(monkeypatch, screen) -> list[int]:
    """A counter of the screen's layout passes from now on (one element, updated)."""
    count = [0]
    reflow = screen._compositor.reflow

    def counted(*args, **kwargs):
        count[0] += 1
        return reflow(*args, **kwargs)

    monkeypatch.setattr(screen._compositor, "reflow", counted)
    return count


async def open_form(pilot, field: str) -> TrainFormScreen:
    """The form (Fashion-MNIST: the data folder applies), settled, typing going to `field`."""
    screen = TrainFormScreen(TrainConfig(dataset="fashion-mnist"))
    await pilot.app.push_screen(screen)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()  # the GPU list (a new device list lays out)
    await settle(pilot)
    screen.query_one(f"#field-{field}", Input).focus()
    await press_quickly(pilot, "end")  # (and the field scrolled into view)
    return screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@run_async
async def test_typing_into_a_valid_field_lays_out_nothing(tmp_path, monkeypatch, size) -> None:
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await open_form(pilot, "data_dir")
        field = screen.query_one("#field-data_dir", Input)
        layouts = count_layouts(monkeypatch, screen)
        await press_quickly(pilot, *TYPED)
        # every key arrived and was validated at once: Start would use this very folder
        assert field.value == TYPED
        assert screen.config is not None and screen.config.data_dir == TYPED
        summary = text_of(screen.query_one("#form-summary", Static))
        assert summary.startswith("✓ simple-cnn on fashion-mnist")
        assert text_of(screen.query_one("#reason-data_dir", Static)).startswith(
            "folder with the data"
        )
        # two or more passes a key before; none now (a quarter of the keys leaves room for a
        # pass from elsewhere, e.g. the cursor's blink never lays out, a notification does)
        assert layouts[0] <= len(TYPED) // 4, f"{layouts[0]} layouts for {len(TYPED)} keys"
        # the field scrolled with its text: its end is on screen beside the cursor
        assert TYPED[-12:] in field.render_line(0).text


@run_async
async def test_a_field_turning_invalid_shows_its_reason_whole(tmp_path, monkeypatch) -> None:
    """A reason that wraps (a refused value, 80×24) is laid out as its text grows, and the
    row goes back to one line when the field is valid again."""
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot, "lr")
        reason = screen.query_one("#reason-lr", Static)
        row = screen.query_one("#row-lr")
        assert reason.size.height == 1 and not row.has_class("-invalid")
        layouts = count_layouts(monkeypatch, screen)
        await press_quickly(pilot, *"e-3x")
        assert screen.config is None and row.has_class("-invalid")
        shown = text_of(reason)
        assert shown.startswith("✗ ") and "0.001e-3x" in shown
        assert reason.size.height == 1  # (it fits its line)
        assert layouts[0] >= 1  # (the field turned invalid: the row was laid out again)
        # still invalid, a longer refused value: the reason wraps, and shows whole
        await press_quickly(pilot, *"yzyzyzyzyzyz")
        assert "0.001e-3xyzyzyzyzyzyz" in text_of(reason)
        lines = len(reason.content.wrap(app.console, reason.content_region.width))
        assert reason.size.height == lines == 2
        await press_quickly(pilot, *["backspace"] * 13)
        assert screen.config is not None and screen.config.lr == 0.001e-3
        assert reason.size.height == 1 and not row.has_class("-invalid")
