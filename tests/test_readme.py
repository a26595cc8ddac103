"""README.md is a page for users: under 12 KB, and every relative link in it and in docs/*.md points to a
file or folder that exists in the repository (the details live in docs/, the figures in benchmarks/results/),
and a link to a heading of a Markdown page names a heading that page has."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
"""Inline Markdown links and images: [text](target) and ![alt](target "title")."""
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:|^//", re.I)


def links(text: str) -> list[str]:
    """Link targets of a Markdown text, leaving out code spans and fenced blocks."""
    return [m.group(1) for m in LINK.finditer(CODE.sub("", text))]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower().replace("`", "")).replace(" ", "-") for h in headings}


def test_readme_is_under_12_kb() -> None:
    size = len(README.read_bytes())
    assert size < 12 * 1024, f"README.md is {size} bytes: move details into docs/"


def test_readme_links_to_the_docs_pages() -> None:
    targets = {unquote(t.split("#", 1)[0]) for t in links(README.read_text())}
    for page in PAGES[1:]:
        linked = any((README.parent / t).resolve() == page for t in targets if t)
        linked = linked or any(page.name in links(p.read_text()) for p in PAGES[1:])
        assert linked, f"docs/{page.name} is linked from nowhere"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page: Path) -> None:
    missing = []
    for target in links(page.read_text()):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = unquote(target).partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            missing.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            missing.append(f"{target} (no such heading)")
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_reader() -> None:
    sample = 'see [a](docs/a.md), ![b](x.png "t"), [c](https://x.org), [d](#top) and `[e](not.md)`'
    assert links(sample) == ["docs/a.md", "x.png", "https://x.org", "#top"]
    assert links("```\n[f](in_a_block.md)\n```\n[g](g.md)") == ["g.md"]
