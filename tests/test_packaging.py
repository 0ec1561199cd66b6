"""The wheel: it ships the assets (presets, lesson examples) and finds them once installed, and
carries the version written once in cnn_tui/__init__.py."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(repo_root), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 and "hatchling" in proc.stderr and "No matching" in proc.stderr:
        pytest.skip("pip cannot fetch the build backend (hatchling) here")
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("cnn_tui-*.whl")
    return path


def test_wheel_ships_every_asset_and_no_tests(wheel: Path, repo_root: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "cnn_tui/assets/" + p.relative_to(repo_root / "assets").as_posix()
        for p in (repo_root / "assets").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped <= names, sorted(shipped - names)
    lessons = [n for n in names if n.startswith("cnn_tui/assets/lessons/") and n.endswith(".toml")]
    presets = [n for n in names if n.startswith("cnn_tui/assets/presets/") and n.endswith(".toml")]
    assert len(lessons) >= 3, "the lesson examples are missing from the wheel"
    assert presets, "the training presets (assets/presets/*.toml) are missing from the wheel"
    assert not [n for n in names if n.startswith(("tests/", ".venv/")) or "__pycache__" in n]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "cnn-tui = cnn_tui.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_package_finds_its_assets(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The unpacked wheel goes first on sys.path, ahead of this checkout's editable install.
    script = f"""
import sys
sys.path.insert(0, {str(site)!r})
import cnn_tui, cnn_tui.assets
from cnn_tui.lessons import examples
root = {str(site)!r}
assert cnn_tui.__file__.startswith(root), cnn_tui.__file__
assert str(cnn_tui.assets.assets_dir()).startswith(root), cnn_tui.assets.assets_dir()
names = [info.name for info in examples.list_examples()]
assert {{"edge-detect", "basic-5x5", "multi-channel"}} <= set(names), names
from cnn_tui.cli import main
sys.exit(main(["conv", "--no-ui", "--example", "edge-detect"]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "example: edge-detect" in proc.stdout


def test_the_version_is_written_once(wheel: Path, repo_root: Path) -> None:
    import cnn_tui

    with open(repo_root / "pyproject.toml", "rb") as handle:
        pyproject = tomllib.load(handle)
    assert "version" not in pyproject["project"], "the version belongs in cnn_tui/__init__.py"
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "cnn_tui/__init__.py"
    archive = zipfile.ZipFile(wheel)
    metadata = archive.read(
        next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    )
    assert f"\nVersion: {cnn_tui.__version__}\n" in metadata.decode()
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_tui", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"cnn-tui {cnn_tui.__version__}\n"
