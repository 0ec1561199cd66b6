"""Lesson files in the lesson screens: Save as… from the conv/pool and net edit forms, the example
picker with the user's examples, and the status line naming the example ("edited", "seed N").

Each test has its own XDG_CONFIG_HOME (tests/conftest.py): the saves land in a temporary folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import press_quickly, text_of
from textual.widgets import Input, Select, TextArea
from train_ui_fixtures import run_async

from cnn_tui.fileio import toml_text
from cnn_tui.lessons import examples, layer_lesson, library, network
from cnn_tui.lessons.settings import LayerSettings
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.lessons.form import LessonFormScreen
from cnn_tui.ui.lessons.layer_form import LayerFormScreen
from cnn_tui.ui.lessons.layers import LayerScreen
from cnn_tui.ui.lessons.net_form import NetFormScreen
from cnn_tui.ui.lessons.network import NetworkScreen
from cnn_tui.ui.lessons.save_dialog import SaveLessonScreen
from cnn_tui.ui.lessons.screen import LessonScreen
from cnn_tui.ui.lessons.step_panel import StepStatus

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def status(screen) -> str:
    return text_of(screen.query_one(StepStatus))


def full_status(screen) -> str:
    """The status line with every part (a narrow terminal drops the last ones)."""
    return screen.query_one(StepStatus).full_text


def options(form) -> list[str]:
    select = form.query_one("#form-example", Select)
    return [str(getattr(prompt, "plain", prompt)) for prompt, _ in select._options]


async def save_as(pilot, name: str, title: str = "") -> SaveLessonScreen:
    """Press F2 in the form, type the name (and a title), press enter."""
    await press_quickly(pilot, "f2")
    dialog = pilot.app.screen
    assert isinstance(dialog, SaveLessonScreen)
    dialog.query_one("#save-name", Input).value = name
    if title:
        dialog.query_one("#save-title", Input).value = title
    await pilot.pause()
    await press_quickly(pilot, "enter")
    await pilot.pause()
    return dialog


@run_async
async def test_save_as_writes_the_board_and_the_lesson_shows_it_by_name() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv", {"seed": 4, "padding": 1})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert "seed 4" in status(screen) and screen.example_label == "seed 4"
        await press_quickly(pilot, "e")
        form = app.screen
        assert isinstance(form, LessonFormScreen)
        form.query_one("#form-array", Select).value = "w"
        await pilot.pause()
        form.query_one("#form-values", TextArea).load_text("1, 0, -1\n2, 0, -2\n1, 0, -1\n")
        await press_quickly(pilot, "ctrl+s")
        assert screen.example_label == "edited" and "edited" in status(screen)
        board = screen.example
        await press_quickly(pilot, "e")
        await save_as(pilot, "sobel-x", "Sobel, by hand")
        assert app.screen is screen  # saved, applied, the form closed
        assert screen.example.name == "sobel-x" and screen.example_label == "example sobel-x"
        assert "example sobel-x" in status(screen) and "edited" not in status(screen)
        for key in ("x", "w", "b", "dout"):
            np.testing.assert_array_equal(getattr(screen.example, key), getattr(board, key))
        assert screen.example.padding == (1, 1)
    # a new session opens the file by its name: the same board
    again = examples.build_example("conv", example="sobel-x")
    assert again.title == "Sobel, by hand"
    for key in ("x", "w", "b", "dout"):
        np.testing.assert_array_equal(getattr(again, key), getattr(board, key))


@run_async
async def test_save_as_refuses_bad_names_and_asks_before_replacing() -> None:
    library.save_lesson(
        "taken", examples.example_file_values(examples.build_example("pool"), "old", "")
    )
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("pool", {"seed": 1})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "e")
        form = app.screen
        dialog = await save_as(pilot, "../up")
        assert app.screen is dialog
        assert "is not a usable name" in text_of(dialog.query_one("#save-error"))
        dialog.query_one("#save-name", Input).value = "max-4x4"
        await press_quickly(pilot, "enter")
        assert "name of a shipped example" in text_of(dialog.query_one("#save-error"))
        dialog.query_one("#save-name", Input).value = "taken"
        await press_quickly(pilot, "enter")
        assert "taken.toml exists: press Save again to replace it" in text_of(
            dialog.query_one("#save-error")
        )
        assert examples.build_example("pool", example="taken").title == "old"  # not yet
        await press_quickly(pilot, "enter")  # again: replace it
        assert app.screen is screen
        assert examples.build_example("pool", example="taken").title == "taken"
        np.testing.assert_array_equal(screen.example.x, examples.build_example("pool", seed=1).x)
        assert form not in app.screen_stack


@run_async
async def test_a_form_with_a_bad_value_does_not_save() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv")
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "e")
        form = app.screen
        form.query_one("#form-height", Input).value = "99"
        await press_quickly(pilot, "f2")
        assert app.screen is form
        assert "height must be between 1 and 16" in text_of(form.query_one("#error-height"))
        assert not library.user_lessons_dir().exists()


@run_async
async def test_the_picker_lists_your_examples_and_opens_them() -> None:
    base = examples.build_example("conv", seed=3)
    library.save_lesson("mine", examples.example_file_values(base, "My own", ""))
    library.save_lesson(
        "pooled", examples.example_file_values(examples.build_example("pool"), "P", "")
    )
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv")
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "e")
        form = app.screen
        shown = options(form)
        assert "mine (yours): My own" in shown and "edge-detect: Vertical edge detector" in shown
        assert not any("pooled" in option for option in shown)  # a pool example
        form.query_one("#form-example", Select).value = "mine"
        await pilot.pause()
        await press_quickly(pilot, "ctrl+s")
        assert screen.example.name == "mine" and "example mine" in status(screen)
        np.testing.assert_array_equal(screen.example.w, base.w)


@run_async
async def test_a_file_opened_by_its_path_is_in_the_picker(tmp_path) -> None:
    path = tmp_path / "week3.toml"
    path.write_text(
        toml_text(examples.example_file_values(examples.build_example("conv"), "W3", ""))
    )
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LessonScreen("conv", {"example": str(path)})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert "example week3.toml" in status(screen)
        await press_quickly(pilot, "e")
        form = app.screen
        assert "week3.toml (file): W3" in options(form)
        assert form.query_one("#form-example", Select).value == str(path)
        await press_quickly(pilot, "ctrl+s")  # applying keeps the file
        assert screen.example.name == "week3.toml"


@run_async
async def test_the_net_form_saves_and_its_status_names_the_example() -> None:
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = NetworkScreen({"example": "net-horizontal-edge"})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert screen.example_label == "net-horizontal-edge"
        await press_quickly(pilot, "e")
        form = app.screen
        assert isinstance(form, NetFormScreen)
        form.query_one("#form-lr", Input).value = "0.05"
        form.query_one("#form-array", Select).value = "b2"
        await pilot.pause()
        form.query_one("#form-values", TextArea).load_text("0.5, -0.5\n")
        await press_quickly(pilot, "ctrl+s")
        assert screen.example_label == "net-horizontal-edge (edited)"
        assert "net-horizontal-edge (edited)" in full_status(screen)
        board = screen.example
        await press_quickly(pilot, "e")
        await save_as(pilot, "my-net")
        assert app.screen is screen and screen.example_label == "my-net"
        assert screen.example.lr == 0.05 and screen.example.b2.tolist() == [0.5, -0.5]
        await press_quickly(pilot, "e")
        assert "my-net (yours): A horizontal edge (6x6, 2 classes)" in options(app.screen)
    again = network.build_net_example("my-net")
    for key in network.EDITABLE:
        np.testing.assert_array_equal(getattr(again, key), getattr(board, key))
    assert (again.label, again.lr, again.class_names) == (board.label, 0.05, board.class_names)


# --------------------------------------------------------------------------- batch norm, dropout


@run_async
async def test_the_layer_forms_save_the_lesson_and_it_opens_by_name() -> None:
    """A random batch-norm lesson with ε changed, saved with F2: the file holds every array (the
    seed draws nothing), the lesson shows it by name, and the picker lists it as yours."""
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LayerScreen(LayerSettings("batchnorm", {"seed": 3}), run_checks=False)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert status(screen).endswith("seed 3")
        assert screen.model.step_lines()[1:] == ["", ""]  # random values: no title to show
        before = screen.example
        await press_quickly(pilot, "e")
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        form.query_one("#form-eps", Input).value = "0.01"
        await save_as(pilot, "my-bn", "my batch")
        await pilot.pause()
        assert app.screen is screen
        assert screen.example.name == "my-bn" and status(screen).endswith("my-bn")
        assert screen.example.eps == 0.01
        for name in ("x", "dy", "gamma", "beta"):
            assert np.array_equal(getattr(screen.example, name), getattr(before, name))
        saved = library.user_lessons_dir() / "my-bn.toml"
        data = library.read_lesson(str(saved), "batchnorm", layer_lesson.file_keys("batchnorm"))
        assert data.title == "my batch" and "seed" not in data.data
        assert set(data.data) == {"op", "title", "description", "eps", "momentum", "x", "gamma",
                                  "beta", "dout"}  # fmt: skip
        # the picker lists it; its sizes are greyed out: the arrays fix them
        await press_quickly(pilot, "e")
        form = app.screen
        assert "my-bn (yours): my batch" in options(form)
        assert form.query_one("#form-example", Select).value == "my-bn"
        assert form.query_one("#form-batch", Input).disabled
        assert not form.query_one("#form-eps", Input).disabled
        form.query_one("#form-example", Select).value = "random"
        await pilot.pause()
        assert not form.query_one("#form-batch", Input).disabled
        await press_quickly(pilot, "escape")


@run_async
async def test_the_dropout_picker_opens_the_shipped_example_and_a_new_seed_redraws_the_mask() -> (
    None
):
    app = CnnTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LayerScreen(LayerSettings("dropout"), run_checks=False)
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "e")
        form = app.screen
        assert "dropout-half: p = 0.5: half dropped, the rest doubled" in options(form)
        form.query_one("#form-example", Select).value = "dropout-half"
        await pilot.pause()
        assert form.query_one("#form-height", Input).value == "4"
        form.query_one("#form-p", Input).value = "0.25"  # a free setting: the mask is u ≥ p
        await press_quickly(pilot, "ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        example = screen.example
        assert (example.name, example.p, example.seeded) == ("dropout-half", 0.25, False)
        assert "p = 0.25 · dropout-half" in status(screen)
        # before the first step the step panel says what the example is about, once
        panel = text_of(screen.query_one("#layer-step"))
        assert "dropout-half: p = 0.5: half dropped, the rest doubled" in panel
        assert "x is 1 everywhere. The mask keeps u ≥ p" in panel
        assert np.array_equal(example.mask, (example.u >= 0.25).astype(float))
        u = example.u.copy()
        await press_quickly(pilot, "r")  # the file's x stays; the seed draws dy and u
        assert screen.example.name == "dropout-half" and screen.example.seed == 1
        assert np.array_equal(screen.example.x, example.x) and not np.array_equal(
            screen.example.u, u
        )
        assert status(screen).endswith("dropout-half, seed 1")
        # the form keeps what the seed drew: applying it unchanged shows the same numbers
        await press_quickly(pilot, "e", "ctrl+s")
        await pilot.pause()
        assert app.screen is screen and status(screen).endswith("dropout-half, seed 1")
        assert not np.array_equal(screen.example.u, u)


@run_async
async def test_the_save_toast_fits_80_columns_with_the_whole_command() -> None:
    """Finding 13h: the toast read `saved as lecture1: cnn-tui …`, the command cut; now its
    lines fit the toast's 40 columns at 80×24 and the command to open it again is whole."""
    app = CnnTuiApp()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LessonScreen("conv", {"seed": 4})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        await press_quickly(pilot, "e")
        await save_as(pilot, "lecture1")
        assert app.screen is screen
        toast = list(app._notifications)[-1]
        assert toast.title == "Saved as lecture1"
        lines = toast.message.splitlines()
        assert lines[-1] == "cnn-tui conv --example lecture1"
        # a toast is at most half the screen, less its border and padding
        assert all(len(line) <= 80 // 2 - 4 for line in [toast.title, *lines])
