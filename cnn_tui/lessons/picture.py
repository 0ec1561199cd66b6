"""The picture lesson: a real picture, its feature map for one kernel, and a crop stepped through.

`cnn-tui conv --image FILE|fashion-mnist:INDEX|builtin:edges --kernel sobel-x` (CNN Explainer's
best-loved view, in the terminal). This module is its UI-free core:

- `load_picture(spec)`: the picture as grey levels in [0, 1] (grey / 255, two decimals, so the
  lesson's arithmetic can be followed by hand). A file is read with Pillow, its size checked
  before it is decoded (MAX_PIXELS) and pictures larger than MAX_SIDE downscaled; Fashion-MNIST
  images are read from the IDX files where the training loaders find them
  (`catalog.fashion_mnist_folders`), one image at a time with a small bounded reader
  (`read_idx_item`: the header checked, only the one image's bytes read; no pickle, no torch);
- `feature_map(...)`: the convolution of the whole picture, computed with numpy (the same sum
  as `naive.conv2d_forward`, checked against it and PyTorch by the tests);
- `PictureLesson`: picture, kernel (a named one from `kernels.KERNELS` or the user's), crop and
  settings; `example()` is the crop as an ordinary conv lesson example, so the lesson screen and
  the trace step through it with the naive loops, and `region` says which cells of the feature
  map the crop's output is.

Every problem (a missing or damaged file, a huge picture, an index past the end, a crop outside
the picture) is a `UsageError` of one line.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.catalog import DATASETS, FASHION_MNIST_FILES, fashion_mnist_folders
from cnn_tui.errors import UsageError
from cnn_tui.fileio import input_problem, is_regular_file
from cnn_tui.lessons.examples import LessonExample, build_example
from cnn_tui.lessons.kernels import DEFAULT_KERNEL, KERNELS, parse_kernel_values
from cnn_tui.lessons.settings import CONV_MODES, LIMITS, SETTINGS
from cnn_tui.text import one_line

Pair = tuple[int, int]

MAX_SIDE = 28  # larger pictures are downscaled to this (a 28×28 picture: 28 columns × 14 rows)
MAX_PIXELS = 40_000_000  # larger files are refused before they are decoded
DEFAULT_CROP = 6  # the crop the lesson steps through, when --height/--width are not given
MAX_IDX_SIDE = 1024  # an IDX image larger than this is not one of a data set's small images
FASHION_PREFIX = "fashion-mnist:"
BUILTIN_PREFIX = "builtin:"
TEST_PICTURE = "builtin:edges"  # `builtin_picture`: drawn here, no file needed
INSTALL_HINT = "install Debian's dataset-fashion-mnist or pass --image FILE"
_SPLITS = {"test": ("test_x", "test_y"), "train": ("train_x", "train_y")}


# --------------------------------------------------------------------------- the picture


@dataclass(frozen=True, eq=False)
class Picture:
    """A grey picture: (H, W) levels in [0, 1], where it came from and what was changed."""

    pixels: np.ndarray
    source: str  # one safe line: "shirt.png" or "fashion-mnist test #12 (Ankle boot)"
    notes: tuple[str, ...] = ()  # "downscaled from 640×480", "colour made grey", ...

    @property
    def size(self) -> Pair:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def grey_levels(image: np.ndarray) -> np.ndarray:
    """uint8 grey values as the lesson's numbers: value / 255, rounded to two decimals."""
    return np.round(np.asarray(image, dtype=np.float64) / 255.0, 2)


def load_picture(spec: str, folders: list[str] | None = None) -> Picture:
    """The picture `--image` names: an image file, `fashion-mnist:INDEX` (the test set;
    `fashion-mnist:train:INDEX` the training set) looked for in `folders` (default: where the
    training loaders look, `catalog.fashion_mnist_folders`), or the built-in test picture
    (`TEST_PICTURE`)."""
    if spec.startswith(FASHION_PREFIX):
        return fashion_mnist_picture(spec[len(FASHION_PREFIX) :], folders)
    if spec.startswith(BUILTIN_PREFIX):
        if spec != TEST_PICTURE:
            raise UsageError(
                f"--image {one_line(spec)}: the built-in picture is {TEST_PICTURE} (a file of "
                "that name: give it as ./NAME)"
            )
        return builtin_picture()
    return read_picture_file(spec)


def builtin_picture() -> Picture:
    """A 20×20 test picture drawn here, so the lesson opens with no file and no data set: a dark
    background (0.1), a grey bar (0.5) above a bright square (0.9) whose top-left corner is
    where the default (centred) crop lies, so a vertical and a horizontal edge meet in it and a
    Sobel kernel shows both."""
    pixels = np.full((20, 20), 0.1)
    pixels[3:6, 3:17] = 0.5  # a bar: two weaker horizontal edges, two short vertical ones
    pixels[10:17, 10:17] = 0.9  # the square: its left and top edges run through the crop
    return Picture(pixels, "built-in test picture (a square and a bar)")


def default_picture_spec(folders: list[str] | None = None) -> str:
    """The picture the home screen's picture lesson opens: the first image of Fashion-MNIST's
    test set when the data is installed, else the built-in test picture."""
    looked = folders if folders is not None else fashion_mnist_folders()
    stem = FASHION_MNIST_FILES["test_x"]
    if any(_idx_path(Path(folder), stem) is not None for folder in looked):
        return f"{FASHION_PREFIX}0"
    return TEST_PICTURE


def read_picture_file(path_text: str | os.PathLike[str]) -> Picture:
    """An image file Pillow reads, as grey levels; larger than MAX_SIDE: downscaled."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path_text)
    name = one_line(path)
    problem = input_problem(path)  # before opening: a FIFO would wait for ever
    if problem is not None:
        raise UsageError(f"--image {name}: {problem}")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():  # refused below in one line instead of a warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UsageError(_too_large(name, f"{width}×{height} pixels"))
                if image.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                    notes.append("colour made grey")
                if "A" in image.mode or "transparency" in image.info:
                    notes.append("transparency dropped")
                image.draft("L", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
                grey = _grey(ImageOps.exif_transpose(image))  # a phone's photo stands upright
    except UsageError:
        raise
    except UnidentifiedImageError:
        raise UsageError(
            f"--image {name}: not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP, ...)"
        ) from None
    except Image.DecompressionBombError:
        raise UsageError(_too_large(name, "too many pixels")) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        reason = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise UsageError(
            f"--image {name}: damaged or truncated ({reason[:80] or type(exc).__name__})"
        ) from None
    if max(width, height) > MAX_SIDE:
        scale = MAX_SIDE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = grey.resize(size, Image.Resampling.LANCZOS)
        notes.append(f"downscaled from {width}×{height}")
    return Picture(grey_levels(np.asarray(grey)), one_line(path.name), tuple(notes))


def _grey(image: Any) -> Any:
    """A Pillow image as 8-bit grey ("L"). 16-bit and float pictures are scaled from their own
    range (16 bits: /65535; float: [0, 1], or [0, 255] when larger), which Pillow's "L"
    conversion would clip instead."""
    from PIL import Image

    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image.convert("L")
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    if image.mode == "F":
        scale = 1.0 if top <= 1.0 else 255.0
    else:
        scale = 65535.0 if image.mode.startswith("I;16") or top > 255 else 255.0
    levels = np.clip(np.nan_to_num(values / scale, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return Image.fromarray(np.round(levels * 255).astype(np.uint8))


def _too_large(name: str, what: str) -> str:
    return (
        f"--image {name}: too large ({what}; the limit is {MAX_PIXELS:,} pixels): "
        f"pass a smaller picture (it is shown at most {MAX_SIDE}×{MAX_SIDE} anyway)"
    )


# --------------------------------------------------------------------------- Fashion-MNIST


def read_idx_item(path: str | os.PathLike[str], index: int, item_ndim: int) -> tuple[Any, int]:
    """Item `index` of an IDX file of unsigned bytes (gzipped when the name ends in .gz): an
    (H, W) uint8 array for images (item_ndim 2), an int for labels (item_ndim 0), and the number
    of items in the file. Reads the header and that one item only; UsageError for anything else
    than the expected IDX file, or an index past its end."""
    path = Path(path)
    name = one_line(path)
    problem = input_problem(path)
    if problem is not None:
        raise UsageError(f"data file {name}: {problem}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            # two zero bytes, type 0x08 (unsigned byte), the number of dimensions, then one
            # big-endian uint32 per dimension; then the data, item after item
            magic = handle.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
                raise UsageError(f"{name} is not an IDX file of unsigned bytes (bad magic number)")
            ndim = magic[3]
            if ndim != item_ndim + 1:
                what = "images (N, H, W)" if item_ndim == 2 else "labels (N,)"
                raise UsageError(f"{name} holds {ndim}-D data, expected {what}")
            header = handle.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise UsageError(f"{name} is truncated (incomplete IDX header)")
            count, *shape = struct.unpack(f">{ndim}I", header)
            if any(not 1 <= side <= MAX_IDX_SIDE for side in shape):
                raise UsageError(f"{name} holds {'×'.join(map(str, shape))} images: not a data set")
            if not 0 <= index < count:
                raise IndexError(count)
            size = math.prod(shape)
            handle.seek(4 + 4 * ndim + index * size)  # gzip: inflates up to there, bounded
            data = handle.read(size)
    except (UsageError, IndexError):
        raise
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # gzip.BadGzipFile: an OSError
        raise UsageError(f"{name} is not readable ({one_line(exc)[:80]})") from None
    if len(data) != size:
        raise UsageError(f"{name} is truncated: the header says {count:,} items, it has fewer")
    item = np.frombuffer(data, dtype=np.uint8)
    return (item.reshape(shape) if item_ndim else int(item[0])), count


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if is_regular_file(candidate):
            return candidate
    return None


def fashion_mnist_picture(text: str, folders: list[str] | None = None) -> Picture:
    """Image INDEX of Fashion-MNIST's test set ("INDEX" or "test:INDEX") or training set
    ("train:INDEX"), with its class in the source."""
    spec = f"{FASHION_PREFIX}{one_line(text)}"
    match = re.fullmatch(r"(?:(test|train):)?(\d{1,12})", text.strip())
    if match is None:
        raise UsageError(
            f"--image {spec}: write fashion-mnist:INDEX (the test set) or "
            "fashion-mnist:train:INDEX, e.g. fashion-mnist:0"
        )
    split, index = match.group(1) or "test", int(match.group(2))
    x_key, y_key = _SPLITS[split]
    looked = folders if folders is not None else fashion_mnist_folders()
    found = None
    for folder in looked:
        x_path = _idx_path(Path(folder), FASHION_MNIST_FILES[x_key])
        if x_path is not None:
            found = x_path, _idx_path(Path(folder), FASHION_MNIST_FILES[y_key])
            break
    if found is None:
        raise UsageError(
            f"Fashion-MNIST is not installed (no {FASHION_MNIST_FILES[x_key]}(.gz) in "
            f"{', '.join(looked)}): {INSTALL_HINT}"
        )
    x_path, y_path = found
    try:
        image, count = read_idx_item(x_path, index, item_ndim=2)
    except IndexError as exc:
        count = exc.args[0]
        raise UsageError(
            f"--image {spec}: the {split} set has {count:,} images (0 to {count - 1:,})"
        ) from None
    source = f"fashion-mnist {split} #{index}"
    if y_path is not None:
        try:
            label, _ = read_idx_item(y_path, index, item_ndim=0)
        except IndexError:
            raise UsageError(
                f"{one_line(y_path)} has fewer labels than {x_path.name} images"
            ) from None
        classes = DATASETS["fashion-mnist"].classes
        source += f" ({classes[label]})" if label < len(classes) else f" (label {label})"
    notes: list[str] = []
    if max(image.shape) > MAX_SIDE:
        from PIL import Image

        height, width = image.shape
        scale = MAX_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
        notes.append(f"downscaled from {width}×{height}")
    return Picture(grey_levels(image), source, tuple(notes))


# --------------------------------------------------------------------------- the feature map


def span(kernel: Pair, dilation: Pair) -> Pair:
    """The rows and columns one window of the kernel covers: D·(K − 1) + 1."""
    return dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1


def feature_map(
    pixels: np.ndarray,
    kernel: np.ndarray,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    flip: bool = False,
) -> np.ndarray:
    """The convolution of the whole (H, W) picture with the (KH, KW) kernel, no padding, bias 0:
    out[i, j] = Σ_ki Σ_kj x[i·S + ki·D, j·S + kj·D] · w[ki, kj] (w rotated by 180° when `flip`),
    as `naive.conv2d_forward` computes it, summed one kernel tap at a time over all cells."""
    w = np.asarray(kernel, dtype=np.float64)
    w = w[::-1, ::-1] if flip else w
    x = np.asarray(pixels, dtype=np.float64)
    (kh, kw), (sh, sw), (dh, dw) = w.shape, stride, dilation
    reach = span((kh, kw), dilation)
    out_h, out_w = (x.shape[0] - reach[0]) // sh + 1, (x.shape[1] - reach[1]) // sw + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel {kh}×{kw} spans more than the picture {x.shape}")
    out = np.zeros((out_h, out_w))
    for ki in range(kh):
        for kj in range(kw):
            window = x[
                ki * dh : ki * dh + sh * (out_h - 1) + 1 : sh,
                kj * dw : kj * dw + sw * (out_w - 1) + 1 : sw,
            ]
            out += w[ki, kj] * window
    return out


# --------------------------------------------------------------------------- the lesson


@dataclass(frozen=True)
class PictureSettings:
    """What `cnn-tui conv --image` asks for (None: the default or, for the conv settings, not
    given). `values` are conv lesson settings by `settings.SETTINGS` name: height and width are
    the crop's size; stride, dilation, conv_mode and seed work as in the conv lesson; the
    others (the input's channels, the filters, padding, ...) are refused, the picture fixes
    them."""

    image: str
    kernel: str | None = None  # a name of kernels.KERNELS
    kernel_values: str | None = None  # the user's own kernel as text
    crop: str | None = None  # "ROW,COL": the crop's top-left pixel
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    backward: bool = False
    summary: bool = False


# the conv settings that work on a picture (height / width: the crop's size)
PICTURE_SETTINGS = ("height", "width", "stride", "dilation", "conv_mode", "seed")


@dataclass(frozen=True, eq=False)
class PictureLesson:
    """A picture, a kernel, a crop of the picture and the settings of its convolution."""

    picture: Picture
    kernel: np.ndarray  # (KH, KW)
    kernel_name: str  # a name of kernels.KERNELS, or "your kernel"
    crop: Pair  # the crop's top-left pixel (row, column)
    crop_size: Pair
    stride: Pair = (1, 1)
    dilation: Pair = (1, 1)
    flip: bool = False  # a true convolution: the kernel rotated by 180°
    seed: int = 0  # the lesson's upstream gradient (backward pass)

    @cached_property
    def feature_map(self) -> np.ndarray:
        """The convolution of the whole picture (no padding, bias 0)."""
        return feature_map(self.picture.pixels, self.kernel, self.stride, self.dilation, self.flip)

    @property
    def crop_pixels(self) -> np.ndarray:
        (row, col), (height, width) = self.crop, self.crop_size
        return self.picture.pixels[row : row + height, col : col + width]

    @property
    def output_size(self) -> Pair:
        """The crop's output: (crop − span) // stride + 1 on each axis."""
        reach = span(self.kernel.shape, self.dilation)
        return (
            (self.crop_size[0] - reach[0]) // self.stride[0] + 1,
            (self.crop_size[1] - reach[1]) // self.stride[1] + 1,
        )

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The feature map's cells the crop's output is: (row, col, rows, cols). The crop
        starts on a multiple of the stride, so its windows are windows of the whole picture."""
        return (
            self.crop[0] // self.stride[0],
            self.crop[1] // self.stride[1],
            *self.output_size,
        )

    @property
    def conv_mode(self) -> str:
        return CONV_MODES[1] if self.flip else CONV_MODES[0]

    @property
    def kernel_what(self) -> str:
        named = KERNELS.get(self.kernel_name)
        return named.what if named is not None else "your own kernel (--kernel-values)"

    def params(self) -> dict[str, Any]:
        """The conv lesson's settings (`build_example` keywords) of the crop's example."""
        return {
            "height": self.crop_size[0],
            "width": self.crop_size[1],
            "kernel": (int(self.kernel.shape[0]), int(self.kernel.shape[1])),
            "stride": self.stride,
            "dilation": self.dilation,
            "padding": (0, 0),
            "conv_mode": self.conv_mode,
            "seed": self.seed,
        }

    def example(self) -> LessonExample:
        """The crop as a conv lesson example: x the crop, w the kernel, b 0, dout drawn from the
        seed. Its output is `feature_map[region]` (the tests check it)."""
        example = build_example("conv", **self.params())
        row, col, rows, cols = self.region
        (top, left), (height, width) = self.crop, self.crop_size
        # the title names the kernel: say what it shows (a named one), not its name again
        shows = (
            f"The feature map shows {self.kernel_what}.\n" if self.kernel_name in KERNELS else ""
        )
        description = shows + (
            f"The crop is rows {top}–{top + height - 1}, columns {left}–{left + width - 1} of "
            f"the {_size(self.picture.size)} picture; its output is rows {row}–{row + rows - 1}, "
            f"columns {col}–{col + cols - 1} of the feature map."
        )
        return dataclasses.replace(
            example,
            name="picture",
            title=f"{self.kernel_name} on a {_size(self.crop_size)} crop of {self.picture.source}",
            description=description,
            x=self.crop_pixels[None, None].copy(),
            w=self.kernel[None, None].copy(),
            b=np.zeros(1),
        )

    def crop_limits(self) -> Pair:
        """The largest top-left row and column the crop may start at."""
        return (
            self.picture.size[0] - self.crop_size[0],
            self.picture.size[1] - self.crop_size[1],
        )

    def moved(self, rows: int, cols: int) -> PictureLesson:
        """The crop moved by `rows` and `cols` strides, kept inside the picture."""
        (sh, sw), (high_r, high_c) = self.stride, self.crop_limits()
        row = min(max(self.crop[0] + rows * sh, 0), high_r - high_r % sh)
        col = min(max(self.crop[1] + cols * sw, 0), high_c - high_c % sw)
        return dataclasses.replace(self, crop=(row, col))

    def with_kernel(self, name: str) -> PictureLesson:
        """The lesson with the named kernel (UsageError when it does not fit the crop)."""
        kernel = np.array(KERNELS[name].rows, dtype=np.float64)
        _check_fits(kernel.shape, self.dilation, self.crop_size, self.picture.size)
        return dataclasses.replace(self, kernel=kernel, kernel_name=name)

    def with_options(self, *, flip: bool | None = None, seed: int | None = None) -> PictureLesson:
        return dataclasses.replace(
            self,
            flip=self.flip if flip is None else flip,
            seed=self.seed if seed is None else seed,
        )

    def region_difference(self) -> float:
        """Largest |crop's output (the naive loops) − feature map's region|: 0 up to rounding."""
        out, _ = self.example().forward()
        row, col, rows, cols = self.region
        return float(
            np.max(np.abs(out[0, 0] - self.feature_map[row : row + rows, col : col + cols]))
        )

    def header_lines(self) -> list[str]:
        """What the trace says before the crop's steps: the picture, kernel, map and crop."""
        picture, fmap = self.picture, self.feature_map
        notes = f" ({', '.join(picture.notes)})" if picture.notes else ""
        row, col, rows, cols = self.region
        (top, left), (height, width) = self.crop, self.crop_size
        settings = f"stride {_pair(self.stride)}"
        if self.dilation != (1, 1):
            settings += f", dilation {_pair(self.dilation)}"
        rows_text = "; ".join(" ".join(_num(v) for v in r) for r in self.kernel.tolist())
        return [
            f"picture: {picture.source}, {_size(picture.size)} grey levels in [0, 1] "
            f"(grey / 255, two decimals){notes}",
            f"kernel: {self.kernel_name} [{rows_text}]: {self.kernel_what}",
            f"feature map: the kernel over the whole picture ({settings}, no padding, bias 0) → "
            f"{_size(fmap.shape)}, values {_num(fmap.min())} to {_num(fmap.max())}",
            f"crop: rows {top}–{top + height - 1}, columns {left}–{left + width - 1} "
            f"({_size(self.crop_size)}) → out {_size((rows, cols))} = feature map rows "
            f"{row}–{row + rows - 1}, columns {col}–{col + cols - 1} "
            f"(the naive loops below give those cells: max |Δ| {self.region_difference():.1e})",
        ]


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(int(side)) for side in shape)


def _pair(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _check_fits(kernel: Pair, dilation: Pair, crop: Pair, picture: Pair) -> None:
    reach = span(kernel, dilation)
    if reach[0] > picture[0] or reach[1] > picture[1]:
        raise UsageError(
            f"kernel {_size(kernel)} spans {_size(reach)}, more than the {_size(picture)} "
            "picture: use a smaller kernel or dilation"
        )
    if reach[0] > crop[0] or reach[1] > crop[1]:
        raise UsageError(
            f"kernel {_size(kernel)} spans {_size(reach)}, more than the {_size(crop)} crop: "
            f"make the crop larger (--height/--width at least {reach[0]}/{reach[1]})"
        )


_CROP_RE = re.compile(r"^\s*(\d{1,6})\s*[,x×]\s*(\d{1,6})\s*$")


def parse_crop(text: str) -> Pair:
    """ "ROW,COL" (the crop's top-left pixel) as a pair; UsageError otherwise."""
    match = _CROP_RE.match(text)
    if match is None:
        raise UsageError(
            f"--crop must be ROW,COL like 10,8 (the top-left pixel), got {one_line(text)!r}"
        )
    return int(match.group(1)), int(match.group(2))


def build_picture_lesson(
    settings: PictureSettings, folders: list[str] | None = None
) -> PictureLesson:
    """The lesson the settings ask for: the picture loaded, the kernel, the crop checked."""
    values = settings.values
    refused = [SETTINGS[name].flag_name for name in values if name not in PICTURE_SETTINGS]
    if refused:
        flags = ", ".join(f"--{flag}" for flag in refused)
        raise UsageError(
            f"{flags} cannot be combined with --image: the picture is one grey channel, one "
            "filter, and the crop lies inside the picture (no padding); drop it"
        )
    if settings.kernel is not None and settings.kernel_values is not None:
        raise UsageError("--kernel and --kernel-values cannot be combined: give one of them")
    if settings.kernel_values is not None:
        try:
            rows = parse_kernel_values(settings.kernel_values, LIMITS.max_kernel)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        kernel, kernel_name = np.array(rows, dtype=np.float64), "your kernel"
    else:
        kernel_name = settings.kernel or DEFAULT_KERNEL
        if kernel_name not in KERNELS:
            raise UsageError(
                f"with --image, --kernel names a kernel ({', '.join(KERNELS)}), got "
                f"{one_line(kernel_name)!r}; or give your own with --kernel-values"
            )
        kernel = np.array(KERNELS[kernel_name].rows, dtype=np.float64)
    try:
        stride = SETTINGS["stride"].parse(values.get("stride", 1))
        dilation = SETTINGS["dilation"].parse(values.get("dilation", 1))
        flip = SETTINGS["conv_mode"].parse(values.get("conv_mode", CONV_MODES[0])) == CONV_MODES[1]
        seed = SETTINGS["seed"].parse(values.get("seed", 0))
        height = SETTINGS["height"].parse(values["height"]) if "height" in values else None
        width = SETTINGS["width"].parse(values["width"]) if "width" in values else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    picture = load_picture(settings.image, folders)
    reach = span(kernel.shape, dilation)
    default = (
        min(max(DEFAULT_CROP, reach[0]), picture.size[0], LIMITS.max_size),
        min(max(DEFAULT_CROP, reach[1]), picture.size[1], LIMITS.max_size),
    )
    crop_size = (height or default[0], width or default[1])
    if crop_size[0] > picture.size[0] or crop_size[1] > picture.size[1]:
        raise UsageError(
            f"the crop {_size(crop_size)} (--height/--width) is larger than the "
            f"{_size(picture.size)} picture: use a smaller crop"
        )
    _check_fits(kernel.shape, dilation, crop_size, picture.size)
    high = (picture.size[0] - crop_size[0], picture.size[1] - crop_size[1])
    if settings.crop is None:  # centred, on a multiple of the stride
        crop = (
            high[0] // 2 - (high[0] // 2) % stride[0],
            high[1] // 2 - (high[1] // 2) % stride[1],
        )
    else:
        crop = parse_crop(settings.crop)
        if crop[0] > high[0] or crop[1] > high[1]:
            raise UsageError(
                f"--crop {crop[0]},{crop[1]}: a {_size(crop_size)} crop of the "
                f"{_size(picture.size)} picture starts at rows 0–{high[0]} and columns "
                f"0–{high[1]}"
            )
        if crop[0] % stride[0] or crop[1] % stride[1]:
            raise UsageError(
                f"--crop {crop[0]},{crop[1]}: with stride {_pair(stride)} the crop starts on a "
                "multiple of the stride (so its windows are the whole picture's windows)"
            )
    lesson = PictureLesson(
        picture, kernel, kernel_name, crop, crop_size, stride, dilation, flip, seed
    )
    lesson.example()  # the conv lesson's own checks (steps per phase)
    return lesson


# --------------------------------------------------------------------------- where a step is


@dataclass(frozen=True, eq=False)
class PictureMarks:
    """Where the lesson's current step is on the picture and on the feature map."""

    window: tuple[Pair, ...] = ()  # the picture pixels of the current output cell's window
    pixel: Pair | None = None  # the picture pixel the step reads (or whose gradient it writes)
    cell: Pair | None = None  # the feature-map cell the step computes (or takes dout from)
    done: np.ndarray | None = None  # (rows, cols) of the region: True where out is computed


def step_marks(lesson: PictureLesson, replay: Any, forward: bool) -> PictureMarks:
    """The marks of `replay`'s current step (a `replay.Replay` of `lesson.example()`): the
    output cell from the cell written (`out`) or the dout read, the pixel from the x_pad read or
    the dx_pad written. `done`: forward, the region's cells computed so far; else all."""
    row0, col0, rows, cols = lesson.region
    top, left = lesson.crop
    if forward:
        done = ~np.isnan(np.asarray(replay.values("out"), dtype=np.float64)[0, 0])
    else:
        done = np.ones((rows, cols), dtype=bool)
    event = replay.current
    if event is None:
        return PictureMarks(done=done)
    refs = [(event.target, event.target_index)] + [(o.name, o.index) for o in event.operands]
    out_cell = pixel = None
    for name, index in refs:
        if name in ("out", "dout") and out_cell is None and len(index) == 4:
            out_cell = (int(index[2]), int(index[3]))
        if name in ("x_pad", "dx_pad") and pixel is None and len(index) == 4:
            pixel = (top + int(index[2]), left + int(index[3]))
    if out_cell is None:
        return PictureMarks(pixel=pixel, done=done)
    (i, j), (sh, sw), (dh, dw) = out_cell, lesson.stride, lesson.dilation
    kh, kw = lesson.kernel.shape
    window = tuple(
        (top + i * sh + ki * dh, left + j * sw + kj * dw) for ki in range(kh) for kj in range(kw)
    )
    return PictureMarks(window, pixel, (row0 + i, col0 + j), done)
