"""Locate the files under `assets/` both in a source checkout and in an installed wheel.

The wheel ships `assets/` as `cnn_tui/assets/` (see pyproject.toml); an editable install or a
plain checkout finds it beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The directory holding presets, lesson examples and other shipped data files."""
    for candidate in (_PACKAGE_DIR / "assets", _PACKAGE_DIR.parent / "assets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("cnn-tui's assets/ directory is missing; reinstall the package")


def asset_path(*parts: str) -> Path:
    """Path of one shipped file, e.g. `asset_path("presets", "the3-task2.toml")`."""
    return assets_dir().joinpath(*parts)
