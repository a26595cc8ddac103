"""Real face-free backgrounds for the detector's training canvases.

A detector trained on synthetic textures alone fired on real backgrounds (fur, coffee, brick, gravel) with
scores up to 0.85, and a pyramid shows it each photo at several scales, so every false look multiplies.
Training canvases therefore sit on real photographs most of the time: scene photos (buildings, forest,
glacier, mountain, sea) of the Intel Image Classification set, 150x150 each. Its "street" class is left
out: people walk in it, and a face there, enlarged with its crop, would be taught as background. A fourth
round (not shipped) and a second set of tuning frames added rendered pages of print
(pruning/detector/printed.py) and grey draws. Never the scikit-image samples: the real-size benchmark
(benchmarks/realsize.py) places its faces on those.

Bring them in once (the search tool's `fetch` of github:luangtatipsy/intel-image-classification gives a git
mirror), then:

    python -m pruning.detector.backgrounds \
        --mirror /work/.mirror/luangtatipsy+intel-image-classification/repo --out runs/detector/backgrounds

A canvas is drawn as one photo cropped and enlarged (its textures larger than they were shot) or as a 2x2
mosaic of four photos (smaller), so the network sees real clutter across the scales a pyramid shows it.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

SUBTREE = "datasets/seg_train"
"""The part of the mirror taken: the training split's scene classes but LEFT_OUT."""
LEFT_OUT = ("street",)
SUFFIXES = (".jpg", ".jpeg", ".png")


def folders(roots: Path | str | Sequence[Path | str]) -> list[Path]:
    """Backdrop folders from one path, a comma-separated string of them, or a sequence."""
    if isinstance(roots, (str, Path)):
        roots = [r for r in str(roots).split(",") if r]
    return [Path(r) for r in roots]


class BackgroundPool:
    """Every image below one or more folders, drawn as training backdrops, a `grey` share of draws in
    greyscale: the scene photos are all in colour, but cameras see grey too (black-and-white prints, night
    and infrared modes, scans). Paths only are held (workers copy the pool), each draw decodes what it
    uses."""

    def __init__(self, roots: Path | str | Sequence[Path | str], grey: float = 0.0) -> None:
        self.grey = grey
        missing = [str(r) for r in folders(roots) if not r.is_dir()]
        if missing:  # one mistyped folder among several would otherwise drop its backdrops silently
            raise FileNotFoundError(
                f"no backdrop folder {', '.join(missing)}: see pruning/detector/backgrounds.py"
            )
        self.paths = sorted(p for r in folders(roots) for p in r.rglob("*") if p.suffix.lower() in SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(
                f"no background images under {roots}: see pruning/detector/backgrounds.py"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rng: np.random.Generator) -> np.ndarray:
        """One of the images, drawn at random, as RGB (grey in all three channels a `grey` share of draws)."""
        image = cv2.imread(str(self.paths[int(rng.integers(len(self.paths)))]), cv2.IMREAD_COLOR)
        if image is None:  # an unreadable file: a flat grey backdrop instead of a crash mid-epoch
            return np.full((64, 64, 3), 127, np.uint8)
        if self.grey > 0 and rng.random() < self.grey:
            return np.repeat(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """A `size` x `size` RGB backdrop: half the time one photo's random crop (40-100 % of its short
        side, flipped at random), else a 2x2 mosaic of four such crops."""
        if rng.random() < 0.5:
            return crop_resize(self.read(rng), size, rng)
        half = size // 2
        tiles = [crop_resize(self.read(rng), half, rng) for _ in range(4)]
        mosaic = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
        return cv2.resize(mosaic, (size, size)) if mosaic.shape[0] != size else mosaic

    def mosaic(self, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
        """A `width` x `height` frame tiled with backdrops, each tile 1/1 to 1/4 of the short side, so the
        textures keep a photo's scale at any frame size (the training split of the real-size frames)."""
        cell = max(32, int(min(width, height) / rng.integers(1, 5)))
        rows, cols = -(-height // cell), -(-width // cell)
        tiles = [[crop_resize(self.read(rng), cell, rng) for _ in range(cols)] for _ in range(rows)]
        canvas = np.concatenate([np.concatenate(row, 1) for row in tiles], 0)
        return np.ascontiguousarray(canvas[:height, :width])


def crop_resize(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of 40-100 % of `image`'s short side, resized to `size`, flipped at random."""
    h, w = image.shape[:2]
    side = max(8, int(min(h, w) * rng.uniform(0.4, 1.0)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = image[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    out = cv2.resize(crop, (size, size), interpolation=interp)
    return np.ascontiguousarray(out[:, ::-1]) if rng.random() < 0.5 else out


def extract(mirror: Path, out: Path, subtree: str = SUBTREE, rev: str = "HEAD") -> int:
    """Write the images of `subtree` at `rev` of a bare git mirror under `out`; returns how many."""
    archive = subprocess.run(
        ["git", "-C", str(mirror), "archive", "--format=tar", rev, subtree], check=True, capture_output=True
    ).stdout
    count = 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            relative = Path(member.name).relative_to(subtree)
            if relative.suffix.lower() not in SUFFIXES or relative.parts[0] in LEFT_OUT:
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            data = tar.extractfile(member)
            if data is not None:
                target.write_bytes(data.read())
                count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.backgrounds",
        description="Unpack the face-free scene photos that detector training draws its backdrops from "
        "(see this module's docstring for where the mirror comes from).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--mirror", type=Path, required=True, help="git mirror fetched by the search tool")
    parser.add_argument("--out", type=Path, default=Path("runs/detector/backgrounds"))
    parser.add_argument("--rev", default="HEAD")
    args = parser.parse_args(argv)
    count = extract(args.mirror, args.out, rev=args.rev)
    print(f"{count} background images under {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
