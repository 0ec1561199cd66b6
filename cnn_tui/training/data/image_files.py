"""Image files from the user for a trained run: read, fit to the run's input, draw in a terminal.

`read_image(path, channels, size)` turns any image Pillow reads into the uint8 (C, H, W) array a
run's data set is made of: grey or RGB as the run's data set is, centre-cropped to a square and
resized bilinearly (what the imagefolder loader does at training time). Each conversion that
changes the picture is returned as a short note (RGBA's transparency dropped, colour made grey,
resized from 640×480), so a prediction on an unusual file says what the network really saw. A
file that is not a readable image raises `ImageFileError` with the reason in a few words.

`terminal_lines(image)` draws an image with half blocks (two pixel rows per text row, 24-bit
colour escapes) for `cnn-tui predict` on a terminal; no graphics protocol is needed, so it works
over SSH and in tmux.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cnn_tui.fileio import input_problem

# what a folder walk offers to Pillow (anything else in the folder is left alone)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
MAX_PIXELS = 64_000_000  # larger files are refused (a decompression bomb, or not meant for this)
REASON_WIDTH = 80  # Pillow's reason for a damaged file is cut to this, at a word


class ImageFileError(Exception):
    """A file that cannot be used as an image; the message is the reason, in words."""


def read_image(
    path: str | os.PathLike[str], channels: int, size: tuple[int, int]
) -> tuple[np.ndarray, list[str]]:
    """The image at `path` as uint8 (channels, H, W) for a run whose images are `size` (H, W),
    and notes on what was changed to get there."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    notes: list[str] = []
    problem = input_problem(path)  # before opening: a FIFO would wait for ever, a device never end
    if problem is not None:
        raise ImageFileError(f"it {problem}" if problem.startswith("is ") else problem)
    try:
        with _quiet_about_size(), Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageFileError(
                    f"too large: {image.width}×{image.height} pixels, over the limit of "
                    f"{MAX_PIXELS:,} pixels (a decompression bomb, or not meant for this)"
                )
            mode, original = image.mode, (image.width, image.height)
            transparent = "A" in mode or "transparency" in image.info
            image.draft("RGB", (size[1], size[0]))  # JPEG: decode at a reduced scale
            picture = image.convert("RGB" if channels == 3 else "L")
    except ImageFileError:
        raise
    except IsADirectoryError:
        raise ImageFileError("it is a folder") from None
    except FileNotFoundError:
        raise ImageFileError("no such file") from None
    except PermissionError:
        raise ImageFileError("not readable (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageFileError("not an image Pillow can read") from None
    except Image.DecompressionBombError:  # (Pillow's own limit, met before the size is known)
        raise ImageFileError(
            f"too large: over the limit of {MAX_PIXELS:,} pixels (a decompression bomb, or not "
            "meant for this)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = textwrap.shorten(reason, REASON_WIDTH, placeholder=" ...")  # (whole words)
        raise ImageFileError(f"damaged or truncated ({reason})") from None
    if transparent:
        notes.append("transparency dropped")
    grey = mode in GREY_MODES
    if channels == 3 and grey:
        notes.append("grey repeated to RGB")
    elif channels == 1 and not grey:
        notes.append("colour made grey")
    if original != (size[1], size[0]):
        crop = "" if original[0] * size[0] == original[1] * size[1] else ", centre crop"
        notes.append(f"resized from {original[0]}×{original[1]}{crop}")
        picture = ImageOps.fit(picture, (size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(picture, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), notes


@contextlib.contextmanager
def _quiet_about_size() -> Iterator[None]:
    """Pillow's warning about a large image silenced: `read_image` refuses those itself, in one
    line (MAX_PIXELS is below Pillow's limit), instead of a warning on stderr beside it."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def images_in(folder: Path) -> list[Path]:
    """The image files under `folder` (all levels down, hidden ones left out), sorted. A FIFO,
    device or socket with an image's name is listed too, so that `read_image` says why it is
    skipped (without opening it)."""
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.exists()
        and not path.is_dir()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def terminal_lines(image: np.ndarray, width: int = 32) -> list[str]:
    """An image (C, H, W) uint8 as lines of '▀' with 24-bit colours: each text row shows two
    pixel rows (foreground = upper, background = lower), scaled to at most `width` columns."""
    from PIL import Image

    rgb = np.asarray(image)
    rgb = np.repeat(rgb, 3, axis=0) if rgb.shape[0] == 1 else rgb[:3]
    picture = Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0)))
    if picture.width != width:
        height = max(2, round(picture.height * width / picture.width))
        picture = picture.resize((width, height), Image.Resampling.NEAREST)
    pixels = np.asarray(picture)
    if len(pixels) % 2:
        pixels = np.concatenate([pixels, pixels[-1:]])
    lines = []
    for top, bottom in zip(pixels[0::2], pixels[1::2], strict=True):
        cells = (
            f"\x1b[38;2;{a[0]};{a[1]};{a[2]}m\x1b[48;2;{b[0]};{b[1]};{b[2]}m▀"
            for a, b in zip(top, bottom, strict=True)
        )
        lines.append("".join(cells) + "\x1b[0m")
    return lines
