"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""Real face data lives beside the checkout (../shared/data), never inside it; users do not have it."""


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder, or a skip that says where it was looked for."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found: looked for {SHARED_DATA} (real face data is not in the repo)")
    return SHARED_DATA
