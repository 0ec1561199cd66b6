"""The picture lesson's core: the IDX reader, picture files, named kernels, the feature map
(against PyTorch) and the crop's naive steps (against the feature map)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnn_tui.catalog import DATASETS, FASHION_MNIST_FILES, FASHION_MNIST_SYSTEM_DIR
from cnn_tui.errors import UsageError
from cnn_tui.lessons import picture as pic
from cnn_tui.lessons.kernels import KERNELS, parse_kernel_values
from cnn_tui.lessons.naive import collect_steps, conv2d_forward
from cnn_tui.lessons.op_replay import OpReplay
from cnn_tui.lessons.picture import (
    Picture,
    PictureSettings,
    build_picture_lesson,
    feature_map,
    read_idx_item,
    step_marks,
)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file of unsigned bytes in the real format (gzipped when the name ends in .gz)."""
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def fashion_folder(tmp_path: Path, n: int = 5, gz: bool = True) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / (FASHION_MNIST_FILES["test_x"] + suffix), images)
    write_idx(tmp_path / (FASHION_MNIST_FILES["test_y"] + suffix), labels)
    return tmp_path, images


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_reader_reads_one_item_of_a_real_format_file(tmp_path, name):
    images = np.arange(4 * 3 * 5, dtype=np.uint8).reshape(4, 3, 5)
    path = write_idx(tmp_path / name, images)
    for index in range(4):
        item, count = read_idx_item(path, index, item_ndim=2)
        assert count == 4 and np.array_equal(item, images[index])
    labels = write_idx(tmp_path / "labels", np.array([7, 1, 9], dtype=np.uint8))
    assert read_idx_item(labels, 2, item_ndim=0) == (9, 3)


def test_idx_reader_refuses_what_is_not_the_expected_file(tmp_path):
    images = write_idx(tmp_path / "x", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(IndexError):
        read_idx_item(images, 2, item_ndim=2)
    with pytest.raises(UsageError, match="expected labels"):
        read_idx_item(images, 0, item_ndim=0)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)  # type 0x0D: floats
    with pytest.raises(UsageError, match="bad magic number"):
        read_idx_item(bad, 0, item_ndim=2)
    short = tmp_path / "short"
    short.write_bytes(images.read_bytes()[:-3])
    with pytest.raises(UsageError, match="truncated"):
        read_idx_item(short, 1, item_ndim=2)
    header = tmp_path / "header"
    header.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(UsageError, match="incomplete IDX header"):
        read_idx_item(header, 0, item_ndim=2)
    huge = tmp_path / "huge"
    huge.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 1, 100_000, 100_000))
    with pytest.raises(UsageError, match="not a data set"):
        read_idx_item(huge, 0, item_ndim=2)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(UsageError, match="not readable"):
        read_idx_item(broken, 0, item_ndim=2)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_picture_from_a_folder(tmp_path, gz):
    folder, images = fashion_folder(tmp_path, gz=gz)
    picture = pic.load_picture("fashion-mnist:3", folders=[str(tmp_path / "nothing"), str(folder)])
    assert picture.source == "fashion-mnist test #3 (Dress)"
    assert np.array_equal(picture.pixels, np.round(images[3] / 255, 2))
    assert pic.load_picture("fashion-mnist:test:0", [str(folder)]).source.endswith("(T-shirt/top)")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fashion-mnist:99999999", "the test set has 5 images (0 to 4)"),
        ("fashion-mnist:-1", "write fashion-mnist:INDEX"),
        ("fashion-mnist:train:0", "Fashion-MNIST is not installed"),
        ("fashion-mnist:x", "write fashion-mnist:INDEX"),
    ],
)
def test_fashion_mnist_bad_specs(tmp_path, spec, message):
    folder, _ = fashion_folder(tmp_path)
    with pytest.raises(UsageError, match="^.*$") as raised:
        pic.load_picture(spec, [str(folder)])
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_fashion_mnist_not_installed_says_what_to_do(tmp_path):
    with pytest.raises(UsageError) as raised:
        pic.load_picture("fashion-mnist:0", [str(tmp_path)])
    assert "install Debian's dataset-fashion-mnist or pass --image FILE" in str(raised.value)


@pytest.mark.skipif(
    not (Path(FASHION_MNIST_SYSTEM_DIR) / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_the_real_debian_files_agree_with_the_training_loader():
    from cnn_tui.training.data.datasets import read_idx

    everything = read_idx(Path(FASHION_MNIST_SYSTEM_DIR) / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(Path(FASHION_MNIST_SYSTEM_DIR) / "t10k-labels-idx1-ubyte.gz")
    for index in (0, 1234, len(everything) - 1):
        picture = pic.load_picture(f"fashion-mnist:{index}")
        assert np.array_equal(picture.pixels, np.round(everything[index] / 255, 2))
        label = DATASETS["fashion-mnist"].classes[labels[index]]
        assert picture.source == f"fashion-mnist test #{index} ({label})"


# --------------------------------------------------------------------------- picture files


def test_png_is_read_as_grey_levels(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, 4:] = (255, 255, 255)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "two-halves.png")
    picture = pic.load_picture(str(tmp_path / "two-halves.png"))
    assert picture.size == (6, 8) and picture.source == "two-halves.png"
    assert picture.notes == ("colour made grey",)
    assert np.all(picture.pixels[:, 4:] == 1.0) and np.all(picture.pixels[1:, :4] == 0.0)
    assert picture.pixels[0, 0] == round(76 / 255, 2)  # Pillow's L = 0.299·R (ITU-R 601-2)


def test_16_bit_and_float_pictures_are_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert pic.load_picture(str(tmp_path / "deep.png")).pixels.tolist() == [[0, 0.25, 0.5, 1]]
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert pic.load_picture(str(tmp_path / "f.tif")).pixels.tolist() == [[0, 0.5, 1]]


def test_a_photo_stands_as_its_exif_orientation_says(tmp_path):
    image = Image.fromarray(np.tile(np.arange(20, dtype=np.uint8) * 10, (10, 1)))  # 10×20
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    image.save(tmp_path / "phone.png", exif=exif)
    assert pic.load_picture(str(tmp_path / "phone.png")).size == (20, 10)


def test_a_large_picture_is_downscaled_and_says_so(tmp_path):
    Image.fromarray(np.full((60, 120), 128, np.uint8)).save(tmp_path / "wide.png")
    picture = pic.load_picture(str(tmp_path / "wide.png"))
    assert picture.size == (14, 28)
    assert picture.notes == ("downscaled from 120×60",)
    assert np.allclose(picture.pixels, 0.5, atol=0.01)


def truncated_png(path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:600])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello"), "not an image Pillow can read"),
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a folder, not a file"),
        (truncated_png, "damaged or truncated"),
    ],
)
def test_bad_picture_files_are_one_line_errors(tmp_path, make, message):
    path = tmp_path / "picture.png"
    make(path)
    with pytest.raises(UsageError) as raised:
        pic.load_picture(str(path))
    text = str(raised.value)
    assert text.startswith(f"--image {path}") and message in text and "\n" not in text


def test_a_huge_picture_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(pic, "MAX_PIXELS", 1000)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(UsageError, match=r"too large \(40×40 pixels; the limit is 1,000"):
        pic.load_picture(str(tmp_path / "big.png"))
    assert decoded == []


def test_a_picture_name_with_control_characters_is_escaped(tmp_path):
    path = tmp_path / "evil\x1b[2J.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path, format="PNG")
    assert pic.load_picture(str(path)).source == "evil\\x1b[2J.png"


# --------------------------------------------------------------------------- kernels


def test_named_kernels():
    sobel_x = np.array(KERNELS["sobel-x"].rows)
    assert np.array_equal(np.array(KERNELS["sobel-y"].rows), sobel_x.T)
    assert np.array_equal(sobel_x, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    for name in ("blur", "box-blur", "sharpen", "identity"):
        assert np.isclose(np.sum(KERNELS[name].rows), 1.0), name  # keep flat areas as they are
    assert np.sum(KERNELS["edge"].rows) == 0  # flat areas give 0
    assert all(kernel.size == (3, 3) and kernel.what for kernel in KERNELS.values())


def test_kernel_values_text():
    assert parse_kernel_values("-1,0,1; -2 0 2 / −1, 0, 1", 16) == (
        (-1, 0, 1),
        (-2, 0, 2),
        (-1, 0, 1),
    )
    for text, message in [
        ("1,2;3", "every row needs as many numbers"),
        ("1,x", "not a number in row 1"),
        ("", "no numbers"),
        ("1,nan", "finite"),
        (";".join(["1"] * 17), "at most 16×16"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_kernel_values(text, 16)


# --------------------------------------------------------------------------- feature map


@pytest.mark.parametrize(
    ("stride", "dilation", "flip"),
    [((1, 1), (1, 1), False), ((2, 1), (1, 2), False), ((1, 1), (2, 2), True)],
)
@pytest.mark.parametrize("kernel", ["sobel-x", "blur", "emboss"])
def test_feature_map_equals_torch_conv2d(kernel, stride, dilation, flip):
    pixels = np.round(np.random.default_rng(1).random((28, 23)), 2)
    w = np.array(KERNELS[kernel].rows, dtype=np.float64)
    ours = feature_map(pixels, w, stride, dilation, flip)
    weight = torch.from_numpy(w[::-1, ::-1].copy() if flip else w)[None, None]
    theirs = F.conv2d(
        torch.from_numpy(pixels)[None, None], weight, stride=stride, dilation=dilation
    )
    assert ours.shape == tuple(theirs.shape[2:])
    assert np.allclose(ours, theirs[0, 0].numpy(), atol=1e-12)


def synthetic(size: tuple[int, int] = (20, 24)) -> Picture:
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    return Picture(np.round(((rows * 7 + cols * 3) % 17) / 16, 2), "synthetic")


@pytest.mark.parametrize(
    ("values", "crop"),
    [
        ({}, None),
        ({"stride": 2, "height": 8, "width": 7}, "4,10"),
        ({"dilation": 2, "height": 7, "width": 7, "conv_mode": "convolution"}, "0,17"),
    ],
)
def test_the_crops_naive_steps_are_the_feature_maps_region(monkeypatch, values, crop):
    monkeypatch.setattr(pic, "load_picture", lambda spec, folders=None: synthetic())
    lesson = build_picture_lesson(PictureSettings("x.png", "sobel-y", crop=crop, values=values))
    example = lesson.example()
    (out, _), events = collect_steps(
        conv2d_forward, example.x, example.w, example.b, example.stride, example.padding,
        dilation=example.dilation, flip=example.flip,
    )  # fmt: skip
    row, col, rows, cols = lesson.region
    assert out.shape == (1, 1, rows, cols)
    assert np.allclose(
        out[0, 0], lesson.feature_map[row : row + rows, col : col + cols], atol=1e-12
    )
    assert lesson.region_difference() < 1e-12
    # every product of the steps reads the picture pixel the feature map's sum reads
    (top, left), (sh, sw), (dh, dw) = lesson.crop, lesson.stride, lesson.dilation
    for event in (e for e in events if e.kind == "mac"):
        _, _, i, j = event.target_index
        x_read = next(o for o in event.operands if o.name == "x_pad")
        ki, kj = event.loop("ki"), event.loop("kj")
        assert (x_read.index[2], x_read.index[3]) == (i * sh + ki * dh, j * sw + kj * dw)
        assert x_read.value == lesson.picture.pixels[top + x_read.index[2], left + x_read.index[3]]


def test_default_crop_is_centred_and_moves_inside_the_picture(monkeypatch):
    monkeypatch.setattr(pic, "load_picture", lambda spec, folders=None: synthetic())
    lesson = build_picture_lesson(PictureSettings("x.png"))
    assert lesson.crop_size == (6, 6) and lesson.crop == (7, 9) and lesson.kernel_name == "sobel-x"
    assert lesson.moved(-100, 100).crop == (0, 18)
    strided = build_picture_lesson(PictureSettings("x.png", values={"stride": 2}))
    assert strided.crop == (6, 8) and strided.moved(1, -1).crop == (8, 6)
    assert strided.moved(100, 100).crop == (14, 18)


def test_step_marks_follow_the_forward_and_backward_steps(monkeypatch):
    monkeypatch.setattr(pic, "load_picture", lambda spec, folders=None: synthetic())
    lesson = build_picture_lesson(PictureSettings("x.png", crop="2,3"))
    model = OpReplay(lesson.example())
    start = step_marks(lesson, model.replay, forward=True)
    assert start.cell is None and not start.done.any()
    model.seek(12)  # out[0,1]: its bias step, then its first product
    marks = step_marks(lesson, model.replay, forward=True)
    assert marks.cell == (2, 4) and marks.pixel == (2, 4)
    assert marks.window == tuple((2 + ki, 4 + kj) for ki in range(3) for kj in range(3))
    assert marks.done.sum() == 2 and marks.done[0, 0] and marks.done[0, 1]
    model.toggle_backward()
    model.next_cell()
    backward = step_marks(lesson, model.replay, forward=False)
    assert backward.done.all() and backward.cell is not None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (PictureSettings("x.png", crop="30,2"), "--crop 30,2: a 6×6 crop of the 20×24 picture"),
        (PictureSettings("x.png", crop="1,1", values={"stride": 2}), "multiple of the stride"),
        (PictureSettings("x.png", crop="a,b"), "--crop must be ROW,COL"),
        (PictureSettings("x.png", values={"padding": (1, 1)}), "--padding cannot be combined"),
        (PictureSettings("x.png", values={"channels": 2}), "--channels cannot be combined"),
        (PictureSettings("x.png", "blur", "1,2"), "cannot be combined"),
        (PictureSettings("x.png", "blurry"), "--kernel names a kernel"),
        (PictureSettings("x.png", values={"height": 2}), "more than the 2×6 crop"),
        (
            PictureSettings("x.png", kernel_values="1;2;3;4;5;6;7;8;9;1;2;3;4;5;6;7;8;9"),
            "at most 16×16",
        ),
        (
            PictureSettings(
                "x.png", kernel_values=";".join(["1"] * 7), values={"height": 6, "width": 6}
            ),
            "kernel 7×1 spans 7×1, more than the 6×6 crop",
        ),
    ],
)
def test_bad_settings_are_one_line_usage_errors(monkeypatch, settings, message):
    monkeypatch.setattr(pic, "load_picture", lambda spec, folders=None: synthetic())
    with pytest.raises(UsageError) as raised:
        build_picture_lesson(settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_crop_larger_than_the_picture(monkeypatch):
    monkeypatch.setattr(pic, "load_picture", lambda spec, folders=None: synthetic((5, 9)))
    with pytest.raises(UsageError, match="the crop 8×8 .* is larger than the 5×9 picture"):
        build_picture_lesson(PictureSettings("x.png", values={"height": 8, "width": 8}))
    small = build_picture_lesson(PictureSettings("x.png"))
    assert small.crop_size == (5, 6)  # the default crop shrinks to the picture
    tall = build_picture_lesson(PictureSettings("x.png", kernel_values="1;1;1;1;1"))
    assert tall.crop_size == (5, 6) and tall.output_size == (1, 6)


def test_the_docs_list_every_named_kernel():
    page = (Path(__file__).resolve().parents[2] / "docs" / "lessons" / "picture.md").read_text()
    for name in KERNELS:
        assert f"| `{name}`" in page, name


# --------------------------------------------------------------------------- the built-in picture


def test_the_built_in_picture_needs_no_file_and_its_crop_has_both_edges(tmp_path):
    picture = pic.load_picture(pic.TEST_PICTURE)
    assert picture.size == (20, 20) and set(np.unique(picture.pixels)) == {0.1, 0.5, 0.9}
    # the default (centred) crop sees a vertical and a horizontal edge
    for kernel in ("sobel-x", "sobel-y"):
        lesson = build_picture_lesson(PictureSettings(pic.TEST_PICTURE, kernel))
        out, _ = lesson.example().forward()
        assert np.abs(out).max() > 1.0 and lesson.region_difference() < 1e-12
    import argparse

    from cnn_tui.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    # --image's help names it (a literal there: --help imports no numpy, so not this module)
    assert pic.TEST_PICTURE in commands.choices["conv"].format_help()
    with pytest.raises(UsageError, match="the built-in picture is builtin:edges"):
        pic.load_picture("builtin:cat")
    # the home screen's picture: Fashion-MNIST's first test image when installed, else this one
    assert pic.default_picture_spec([str(tmp_path)]) == pic.TEST_PICTURE
    (tmp_path / "data").mkdir()
    folder, _ = fashion_folder(tmp_path / "data")
    assert pic.default_picture_spec([str(folder)]) == "fashion-mnist:0"
