"""Printed-text backdrops for the detector's training canvases, rendered rather than collected.

The scene photos the detector trains against (pruning/detector/backgrounds.py) hold no print, yet a camera
sees pages, signs, labels and screens all the time, and a line of large letters has what a small face detector
keys on: dark blobs in a row over a light band. On the real-size benchmark the detector fired on a printed
page (score 0.78). Pages are therefore drawn here, with the fonts matplotlib ships (DejaVu, STIX, Computer
Modern; no download, no font of the system): lines of pseudo-words at one size per block, dark on light or
light on dark, some in colour, slightly turned, then blurred, noised and JPEG-compressed as a photo of a page
would be. The words are random letters: a detector sees glyph shapes, not meaning.

    python -m pruning.detector.printed --out runs/detector/printed --count 3000

Mining and training draw them beside the scene photos with `--backgrounds
runs/detector/backgrounds,runs/detector/printed` (the fourth round, not shipped), and so does a second set of
tuning frames (`benchmarks/realsize.py build --split train --backdrops ... --backdrop-grey 0.2`). They hold no
face.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from squeezerface._progress import progress

LETTERS = "etaoinshrdlucmfwypvbgkjqxz"
FREQUENCIES = np.array([12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.2, 2.4,
                        2.0, 1.9, 1.0, 1.5, 2.0, 0.8, 0.2, 0.1, 0.2, 0.1])  # fmt: skip
"""English letter frequencies (per cent), so the glyph mix looks like prose."""
PUNCTUATION = ",.;:!?-'\""


@dataclass(frozen=True)
class PageStyle:
    size: int = 320
    font_px: tuple[int, int] = (8, 72)  # glyph height range (one size per block)
    dark_on_light: float = 0.75
    colour: float = 0.3  # probability of coloured ink and paper instead of greys
    max_turn: float = 8.0  # degrees
    blur: float = 0.5
    noise: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)


def font_files() -> list[Path]:
    """The TrueType fonts matplotlib ships that draw Latin text (not its symbol and size-variant fonts).
    The package is found, not imported: importing it makes a config folder under $HOME."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the printed pages take matplotlib's fonts: pip install matplotlib")
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    symbol_only = ("Siz", "NonUni", "Display", "LastResort", "cmex", "cmsy", "cmmi")
    keep = sorted(p for p in folder.glob("*.ttf") if not any(tag in p.name for tag in symbol_only))
    if not keep:
        raise FileNotFoundError(f"no fonts under {folder}: is matplotlib installed?")
    return keep


def words(rng: np.random.Generator, count: int) -> str:
    """`count` pseudo-words with English letter frequencies, capitals, digits and punctuation."""
    p = FREQUENCIES / FREQUENCIES.sum()
    out = []
    for _ in range(count):
        if rng.random() < 0.08:
            word = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
        else:
            word = "".join(rng.choice(list(LETTERS), int(rng.integers(1, 11)), p=p))
            word = word.capitalize() if rng.random() < 0.15 else word.upper() if rng.random() < 0.05 else word
        if rng.random() < 0.12:
            word += str(rng.choice(list(PUNCTUATION)))
        out.append(word)
    return " ".join(out)


def _inks(rng: np.random.Generator, style: PageStyle) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(paper, ink) RGB colours with a contrast a page photo has."""
    light, dark = int(rng.integers(170, 256)), int(rng.integers(0, 90))
    paper, ink = (light, dark) if rng.random() < style.dark_on_light else (dark, light)
    if rng.random() < style.colour:
        tint = rng.uniform(0.5, 1.0, 3)
        return tuple(int(paper * t) for t in tint), tuple(int(ink * t) for t in rng.uniform(0.3, 1.0, 3))
    return (paper,) * 3, (ink,) * 3


def render_page(
    rng: np.random.Generator, fonts: Sequence[Path], style: PageStyle = PageStyle()
) -> np.ndarray:
    """One `style.size` square RGB page: 1-3 blocks of text lines, each block one font and size."""
    from PIL import Image, ImageDraw, ImageFont

    paper, ink = _inks(rng, style)
    big = style.size * 2  # drawn larger, turned, then cropped to the middle: no empty corners
    page = Image.new("RGB", (big, big), paper)
    draw = ImageDraw.Draw(page)
    y = int(rng.integers(big // 8, big // 4))  # the crop is the middle half: start just above it
    while y < big - (big - style.size) // 2:
        height = int(np.exp(rng.uniform(np.log(style.font_px[0]), np.log(style.font_px[1]))))
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), height)
        gap = height * rng.uniform(1.1, 1.8)
        x0 = int(rng.integers(-height * 3, style.size // 3))
        for _ in range(int(rng.integers(2, 12))):
            draw.text((x0, y), words(rng, max(2, big // max(height * 3, 1))), fill=ink, font=font)
            y += int(gap)
            if y >= big:
                break
        y += int(height * rng.uniform(0.5, 2.0))
    return _photographed(np.asarray(page), rng, style)


def _photographed(page: np.ndarray, rng: np.random.Generator, style: PageStyle) -> np.ndarray:
    """Turn, crop to `style.size`, blur, add sensor noise and JPEG-compress a rendered page."""
    big, size = page.shape[0], style.size
    turn = cv2.getRotationMatrix2D(
        (big / 2, big / 2), float(rng.uniform(-style.max_turn, style.max_turn)), 1.0
    )
    turned = cv2.warpAffine(page, turn, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    start = (big - size) // 2
    out = turned[start : start + size, start : start + size].astype(np.float32)
    if rng.random() < style.blur:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 2.0)))
    if rng.random() < style.noise:
        out = out + rng.normal(0.0, rng.uniform(2.0, 12.0), out.shape)
    image = np.clip(out, 0, 255).astype(np.uint8)
    quality = int(rng.integers(*style.jpeg_quality))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else image


def write_pages(out: Path, count: int, seed: int = 0, show_progress: bool = True) -> int:
    """Render `count` pages (page k from seed [seed, k], so a rerun is identical) as JPEGs under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    fonts = font_files()
    for k in progress(range(count), count, "printed pages", show_progress):
        page = render_page(np.random.default_rng([seed, k]), fonts)
        cv2.imwrite(str(out / f"page_{k:05d}.jpg"), cv2.cvtColor(page, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])  # fmt: skip
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.printed",
        description="Render printed-text pages as face-free backdrops for detector training (see this "
        "module's docstring for why).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/detector/printed"))
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    write_pages(args.out, args.count, args.seed, not args.quiet)
    print(f"{args.count} printed pages under {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
