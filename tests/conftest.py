"""Shared pytest fixtures and settings for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root directory (holds pyproject.toml, assets/ and cnn_tui/)."""
    return REPO_ROOT
