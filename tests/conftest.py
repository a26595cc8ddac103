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


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs with HOME, XDG_CACHE_HOME and the embedding cache in a fresh temporary folder.

    Why: tests used to write the user's real `~/.cache/squeezerface/embeddings.sqlite` (two test runs on
    one machine wrote it at once) and could pass on a warm cache that a new machine does not have. Child
    processes the tests start inherit the same environment."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("SQUEEZERFACE_CACHE", str(home / ".cache" / "squeezerface" / "embeddings.sqlite"))
    return home
