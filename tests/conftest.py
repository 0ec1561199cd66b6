"""Shared pytest fixtures and settings for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root directory (holds pyproject.toml, assets/ and cnn_tui/)."""
    return REPO_ROOT


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread; on a busy 2-core box extra threads just spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
