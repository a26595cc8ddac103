"""Rendered print as detector backdrops: pages of text with glyphs on them, in a photo's contrast, the same
for the same seed, written where the backdrop pool draws them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("matplotlib") is None:  # found, not imported: its import writes under $HOME
    pytest.skip("the printed pages take matplotlib's fonts", allow_module_level=True)
pytest.importorskip("PIL")

from pruning.detector.backgrounds import BackgroundPool
from pruning.detector.printed import PageStyle, font_files, main, render_page, words


def test_fonts_are_text_fonts_shipped_with_matplotlib() -> None:
    fonts = font_files()
    assert len(fonts) >= 5
    assert all("mpl-data" in str(p) and "Siz" not in p.name and "NonUni" not in p.name for p in fonts)


def test_words_look_like_prose() -> None:
    text = words(np.random.default_rng(0), 200)
    assert len(text.split()) == 200
    letters = [c for c in text.lower() if c.isalpha()]
    assert letters.count("e") > letters.count("z") + 10  # English frequencies, not uniform letters


def test_a_page_has_print_on_it_and_is_a_function_of_the_seed() -> None:
    fonts = font_files()
    pages = [render_page(np.random.default_rng([0, k]), fonts, PageStyle(size=128)) for k in range(8)]
    assert all(p.shape == (128, 128, 3) and p.dtype == np.uint8 for p in pages)
    assert np.array_equal(pages[2], render_page(np.random.default_rng([0, 2]), fonts, PageStyle(size=128)))
    # glyph edges: strong local contrast on most pages (a blank sheet has none)
    edged = [float(np.abs(np.diff(p.mean(axis=2), axis=1)).max()) > 40 for p in pages]
    assert sum(edged) >= 6


def test_the_command_writes_pages_the_pool_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "backgrounds" / "printed"
    assert main(["--out", str(out), "--count", "3", "--quiet"]) == 0
    assert "3 printed pages" in capsys.readouterr().out
    assert len(BackgroundPool(tmp_path / "backgrounds")) == 3
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--count", "0"])
    assert stop.value.code == 2
