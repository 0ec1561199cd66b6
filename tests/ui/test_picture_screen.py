"""The picture lesson's drawing and screen: the half-block renderer (a pure function), the
colour scales, and `cnn-tui conv --image`'s screen driven with Textual's pilot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import press_quickly, text_of
from rich.color import Color
from train_ui_fixtures import run_async

from cnn_tui.lessons.kernels import KERNELS
from cnn_tui.lessons.picture import Picture, PictureLesson, PictureMarks
from cnn_tui.ui.app import CnnTuiApp
from cnn_tui.ui.key_footer import WrappingFooter
from cnn_tui.ui.lessons.half_blocks import (
    NEGATIVE,
    POSITIVE,
    ZERO,
    diverging_rgb,
    frame_mask,
    grey_rgb,
    half_block_lines,
    legend_rgb,
)
from cnn_tui.ui.lessons.picture import PicturePanel, PictureScreen, picture_panel
from cnn_tui.ui.lessons.step_panel import StepPanel, StepStatus

pytestmark = pytest.mark.usefixtures("no_checks")  # (conftest.py)


def rgb(*values):
    return Color.from_rgb(*values)


# --------------------------------------------------------------------------- the renderer


def test_half_blocks_pair_two_pixel_rows_per_line():
    image = np.array(
        [
            [[255, 0, 0], [0, 0, 0]],
            [[0, 255, 0], [10, 20, 30]],
            [[0, 0, 255], [255, 255, 255]],
        ],
        dtype=np.uint8,
    )
    lines = half_block_lines(image)
    assert [line.plain for line in lines] == ["▀▀", "▀▀"]
    styles = [[span.style for span in line.spans] for line in lines]
    assert (styles[0][0].color, styles[0][0].bgcolor) == (rgb(255, 0, 0), rgb(0, 255, 0))
    assert (styles[0][1].color, styles[0][1].bgcolor) == (rgb(0, 0, 0), rgb(10, 20, 30))
    # the odd last row: the upper half only, the terminal's own background below
    assert (styles[1][0].color, styles[1][0].bgcolor) == (rgb(0, 0, 255), None)
    assert styles[1][1].color == rgb(255, 255, 255)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        half_block_lines(np.zeros((2, 2), np.uint8))


def test_colour_scales():
    assert grey_rgb(np.array([[0.0, 0.5, 1.0, 2.0]])).tolist() == [
        [[0, 0, 0], [128, 128, 128], [255, 255, 255], [255, 255, 255]]
    ]
    scale = diverging_rgb(np.array([[-2.0, 0.0, 2.0, 9.0]]), limit=2.0)
    assert scale.tolist() == [[list(NEGATIVE), list(ZERO), list(POSITIVE), list(POSITIVE)]]
    assert diverging_rgb(np.array([[0.0]]), limit=0.0).tolist() == [[list(ZERO)]]
    legend = legend_rgb(3.0, 4)
    assert legend.shape == (4, 2, 3)
    assert legend[0, 0].tolist() == list(POSITIVE) and legend[-1, 1].tolist() == list(NEGATIVE)


def test_frame_mask_surrounds_the_rectangle_and_stops_at_the_edge():
    mask = frame_mask((5, 6), top=1, left=0, height=2, width=2)
    assert mask.astype(int).tolist() == [
        [1, 1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]


def synthetic_lesson(crop=(2, 3), size=(10, 12)) -> PictureLesson:
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    pixels = np.round(((rows * 7 + cols * 3) % 17) / 16, 2)
    kernel = np.array(KERNELS["sobel-x"].rows, dtype=np.float64)
    return PictureLesson(Picture(pixels, "synthetic.png"), kernel, "sobel-x", crop, (6, 6))


def test_the_panel_marks_the_crop_the_window_and_the_cell():
    lesson = synthetic_lesson()
    marks = PictureMarks(
        window=((2, 3), (2, 4)), pixel=(2, 4), cell=(2, 3), done=np.zeros((4, 4), bool)
    )
    group = picture_panel(lesson, marks, 100, [("a hint", 1)])
    lines = list(group.renderables)
    assert len(lines) == 5  # 10 pixel rows: 5 text rows, the facts beside them
    text = "\n".join(line.plain for line in lines)
    for fact in ("synthetic.png", "crop 6×6 at 2,3", "kernel sobel-x", "feature map 8×10"):
        assert fact in text
    # picture row 2 is the upper half of text row 1; column 4 is the pixel the step reads
    upper = lambda line, col: line.spans[col].style.color.triplet  # noqa: E731
    lower = lambda line, col: line.spans[col].style.bgcolor.triplet  # noqa: E731
    grey = round(lesson.picture.pixels[2, 4] * 255)
    assert upper(lines[1], 4) != (grey, grey, grey)  # tinted
    inside = lesson.picture.pixels[3, 5]  # in the crop, not in the window: its own grey
    assert lower(lines[1], 5) == (round(inside * 255),) * 3
    outside = lesson.picture.pixels[9, 11]  # outside the crop: dimmed
    assert lower(lines[4], 11).red < round(outside * 255) or outside == 0


# --------------------------------------------------------------------------- the screen


def panel_text(screen) -> str:
    return "\n".join(line.plain for line in screen.query_one(PicturePanel).content.renderables)


@run_async
async def test_keys_move_the_crop_change_the_kernel_and_toggle_the_board():
    app = CnnTuiApp("conv", synthetic_lesson())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PictureScreen)
        assert "crop 6×6 at 2,3" in panel_text(screen)
        await press_quickly(pilot, "d", "s", "s")
        assert screen.lesson.crop == (4, 4) and "crop 6×6 at 4,4" in panel_text(screen)
        assert np.array_equal(screen.example.x[0, 0], screen.lesson.picture.pixels[4:10, 4:10])
        await press_quickly(pilot, "s", "d", "d", "d", "d", "d", "d")  # stops at the picture's edge
        assert screen.lesson.crop == (4, 6)
        await press_quickly(pilot, "k")
        assert screen.lesson.kernel_name == "sobel-y"
        assert np.array_equal(screen.example.w[0, 0], np.array(KERNELS["sobel-y"].rows))
        await press_quickly(pilot, "K", "K")
        assert screen.lesson.kernel_name == "edge"
        await press_quickly(pilot, "right", "right")
        status = screen.query_one("#lesson-status", StepStatus)
        assert "step 2 / 160" in status.content.plain
        await press_quickly(
            pilot, "v"
        )  # a true convolution: the feature map's kernel is rotated too
        assert screen.lesson.flip and screen.example.flip
        assert "rotated 180°" in panel_text(screen)
        await press_quickly(pilot, "r")  # a new seed for dout: the crop and the kernel stay
        assert screen.example.seed == 1 and screen.lesson.seed == 1
        assert np.array_equal(screen.example.x[0, 0], screen.lesson.crop_pixels)
        assert screen.lesson.kernel_name == "edge"
        await press_quickly(pilot, "e")  # the edit form is off: the crop comes from the picture
        assert app.screen is screen
        scroll = screen.query_one(f"#{screen.scroll_id}")
        assert scroll.display and screen.query_one(PicturePanel).display
        await press_quickly(pilot, "i")
        assert scroll.display and not screen.query_one(PicturePanel).display


@run_async
async def test_at_80x24_the_picture_and_the_board_take_turns():
    app = CnnTuiApp("conv", synthetic_lesson(size=(28, 28)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        panel, scroll = screen.query_one(PicturePanel), screen.query_one(f"#{screen.scroll_id}")
        assert panel.display and not scroll.display
        assert panel.outer_size.height == 14
        assert "i: board" in panel_text(screen)
        await press_quickly(pilot, "i")
        assert scroll.display and not panel.display
        await press_quickly(pilot, "i")
        assert panel.display and not scroll.display
        assert screen.max_scroll_y == 0  # nothing pushed off the screen
        # backward, the dW phase: a taller step panel; the picture gives up rows around the
        # crop, when it must, instead of pushing the panel or the footer off the screen
        await press_quickly(pilot, "b", "p", "right_square_bracket")
        await pilot.pause()
        await pilot.pause()
        assert "dW" in screen.query_one("#lesson-status", StepStatus).content.plain
        assert panel.outer_size.height <= 14 and screen.max_scroll_y == 0
        footer = screen.query_one(WrappingFooter)
        assert footer.region.bottom <= 24 and panel.region.bottom <= footer.region.y


@run_async
async def test_at_120x40_step_0_says_what_the_crop_is_whole_naming_the_kernel_once():
    lesson = synthetic_lesson(size=(28, 28))
    lesson = dataclasses.replace(
        lesson, picture=Picture(lesson.picture.pixels, "fashion-mnist test #0 (Ankle boot)")
    )
    assert len(lesson.example().title + lesson.example().description) > 240  # the old cut
    app = CnnTuiApp("conv", lesson)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        text = " ".join(text_of(app.screen.query_one("#lesson-step", StepPanel)).split())
        assert "…" not in text and text.count("sobel-x") == 1
        assert "The feature map shows vertical edges" in text
        assert text.endswith(
            "its output is rows 2–5, columns 3–6 of the feature map. "
            "output size: OH = OW = ⌊(H + 2P − K)/S⌋ + 1 = ⌊(6 + 2·0 − 3)/1⌋ + 1 = 4"
        )


@run_async
async def test_a_hostile_file_name_is_shown_as_text(tmp_path):
    from PIL import Image

    from cnn_tui.lessons.picture import PictureSettings, build_picture_lesson

    path = tmp_path / "[bold red]x\x1b]0;pwned\x07.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="PNG")
    app = CnnTuiApp("conv", build_picture_lesson(PictureSettings(str(path))))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        text = panel_text(app.screen)
        assert "[bold red]x\\x1b]0;pwned\\x07.png" in text and "\x1b" not in text


@run_async
async def test_the_home_screen_opens_the_picture_lesson_without_a_file(monkeypatch, tmp_path):
    """`i` on the home screen: the built-in picture where Fashion-MNIST is not installed."""
    from cnn_tui.lessons import picture as pic
    from cnn_tui.ui.home import HomeScreen

    monkeypatch.setattr(pic, "fashion_mnist_folders", lambda: [str(tmp_path)])
    app = CnnTuiApp(runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await press_quickly(pilot, "i")
        await pilot.pause()
        assert isinstance(app.screen, PictureScreen)
        assert app.screen.lesson.picture.source.startswith("built-in test picture")
        await press_quickly(pilot, "escape")
        assert isinstance(app.screen, HomeScreen)
