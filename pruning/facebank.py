"""Training faces for embedder v2, aligned by the very pipeline the runtime runs (never LFW).

Sources: utkface (no identities), celeba_wild (identities) and, when present, the Pins set (identities;
the 15 people who are also in LFW dropped, see `PINS_IN_LFW`). Every photo goes through the shipped
detector + landmark refiner (`squeezerface.detect.FaceDetector`) and the runtime's face choice
(`choose_face`, largest confident face), and is warped by the runtime's `align_face` onto a 128x128
canvas: the 112x112 template in the middle with an 8-pixel margin, room for alignment jitter at training
time. A photo where the runtime finds no face is left out and counted, as the app would refuse it.

Held out for model selection and threshold calibration: 40 celeba_wild identities (the same seeded choice
as the first embedder's, `data.validation_identities`) and 15 Pins identities. Teacher targets are not
stored: the trainer computes them online on the augmented view the student sees.

Output folder: `faces.npy` (N, 128, 128, 3) uint8, `identity.npy` (N,) int64 (-1 unlabeled; Pins
identities numbered from `PINS_BASE`), `split.npy` (N,) int8 (0 train, 1 held out), `manifest.json`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pruning.data import CANVAS, MARGIN, Photo, training_photos, validation_identities
from squeezerface._progress import progress
from squeezerface.align import ALIGNED_SIZE, align_face
from squeezerface.datasets import read_identity_folders

PINS_BASE = 1_000_000
"""Pins identity numbers start here, far from celeba_wild's (< 10,200)."""
PINS_IN_LFW = (
    "Adriana Lima",
    "Avril Lavigne",
    "Ben Affleck",
    "Bill Gates",
    "Christian Bale",
    "Dwayne Johnson",
    "Emma Watson",
    "Gwyneth Paltrow",
    "Johnny Depp",
    "Keanu Reeves",
    "Leonardo DiCaprio",
    "Morgan Freeman",
    "Robert De Niro",
    "Robert Downey Jr",
    "Tom Cruise",
)
"""People of the Pins set who are also in LFW: never used, so LFW stays a test set."""


def pins_name(folder: str) -> str:
    """`pins_Robert Downey Jr` -> `Robert Downey Jr` (folder names of the Pins release)."""
    return folder.removeprefix("pins_").replace("_", " ").strip()


def pins_photos(root: Path) -> list[Photo]:
    """Pins photos of the identities not in LFW, numbered PINS_BASE + rank of the name."""
    lfw = {n.lower() for n in PINS_IN_LFW}
    images = [li for li in read_identity_folders(root) if pins_name(str(li.identity)).lower() not in lfw]
    names = sorted({pins_name(str(li.identity)) for li in images})
    number = {n: PINS_BASE + i for i, n in enumerate(names)}
    return [Photo(li.path, number[pins_name(str(li.identity))], "pins") for li in images]


@dataclass(frozen=True)
class Aligned:
    index: int
    canvas: np.ndarray | None  # None: no face (and no fallback asked for)
    faces: int


_DETECTOR = None


def _init_worker(threads: int) -> None:
    global _DETECTOR  # one detector per worker process, built once (spawned workers share nothing)
    from squeezerface.detect import FaceDetector

    _DETECTOR = FaceDetector().prepare(threads)


def _align_one(item: tuple[int, str, int, bool]) -> Aligned:
    from squeezerface.embedders.base import Fallback
    from squeezerface.embedders.squeezerfacenet import template_face
    from squeezerface.errors import SqueezerfaceError
    from squeezerface.imageio import load_image
    from squeezerface.verify import choose_face

    index, path, margin, fallback = item
    try:
        image = load_image(path)
    except SqueezerfaceError:
        return Aligned(index, None, 0)
    faces = _DETECTOR.detect(image)
    if faces:
        face = choose_face(faces, image.shape[0], image.shape[1], "largest", path)
    elif fallback:
        face = template_face(Fallback().box(*image.shape[:2]))
    else:
        return Aligned(index, None, 0)
    return Aligned(index, align_face(image, face.landmarks, ALIGNED_SIZE, margin), len(faces))


def align_photos(
    paths: Sequence[str | Path], *, margin: int, fallback: bool, workers: int = 2, show_progress: bool = True
) -> Iterator[Aligned]:
    """Each photo's subject face aligned by the runtime's detector + refiner (in any order; see `index`).

    `fallback=True` aligns a photo without a detected face on the template in a centred box (the
    evaluation convention of `Fallback`); `faces` is then 0."""
    jobs = [(i, str(p), margin, fallback) for i, p in enumerate(paths)]
    with mp.get_context("spawn").Pool(workers, _init_worker, (1,)) as pool:
        yield from progress(
            pool.imap_unordered(_align_one, jobs, chunksize=32), len(jobs), "aligning", show_progress
        )


def held_out(photos: Sequence[Photo], celeba_val: int, pins_val: int, seed: int) -> set[int]:
    """Identities held out: `celeba_val` celeba_wild ones and `pins_val` Pins ones (seeded)."""
    celeba = [p.identity for p in photos if p.source == "celeba_wild"]
    pins = [p.identity for p in photos if p.source == "pins"]
    out = validation_identities(celeba, celeba_val, seed) if celeba else set()
    return out | (validation_identities(pins, pins_val, seed) if pins else set())


def prepare(
    data_root: Path,
    out_dir: Path,
    pins: Path | None,
    *,
    workers: int = 2,
    celeba_val: int = 40,
    pins_val: int = 15,
    seed: int = 0,
    limit: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Align every usable photo; write the folder described in the module docstring; return the manifest."""
    start = time.monotonic()
    photos = training_photos(data_root) + (pins_photos(pins) if pins else [])
    if limit is not None:
        photos = [photos[i] for i in np.random.default_rng(seed).permutation(len(photos))[:limit]]
    out_dir.mkdir(parents=True, exist_ok=True)
    canvases = np.lib.format.open_memmap(
        out_dir / "faces.tmp.npy", mode="w+", dtype=np.uint8, shape=(len(photos), CANVAS, CANVAS, 3)
    )
    found = np.zeros(len(photos), bool)
    several = 0
    for r in align_photos(
        [p.path for p in photos], margin=MARGIN, fallback=False, workers=workers, show_progress=show_progress
    ):
        if r.canvas is not None:
            canvases[r.index], found[r.index] = r.canvas, True
            several += r.faces > 1
    kept = np.flatnonzero(found)
    faces = np.lib.format.open_memmap(
        out_dir / "faces.npy", mode="w+", dtype=np.uint8, shape=(len(kept), CANVAS, CANVAS, 3)
    )
    for lo in range(0, len(kept), 4096):
        faces[lo : lo + 4096] = canvases[kept[lo : lo + 4096]]
    faces.flush()
    del faces, canvases
    (out_dir / "faces.tmp.npy").unlink()
    kept_photos = [photos[i] for i in kept]
    val = held_out(photos, celeba_val, pins_val, seed)
    identity = np.array([p.identity for p in kept_photos], np.int64)
    split = np.array([1 if p.identity in val else 0 for p in kept_photos], np.int8)
    np.save(out_dir / "identity.npy", identity)
    np.save(out_dir / "split.npy", split)
    sources = ("utkface", "celeba_wild", "pins")
    manifest = {
        "aligned_by": "squeezerface.detect.FaceDetector (shipped detector + refiner), choose_face 'largest'",
        "data_root": str(data_root),
        "pins": str(pins) if pins else None,
        "photos": {s: sum(p.source == s for p in photos) for s in sources},
        "kept": {s: sum(p.source == s for p in kept_photos) for s in sources},
        "no_face": len(photos) - len(kept),
        "several_faces": int(several),
        "identities": {s: len({p.identity for p in kept_photos if p.source == s}) for s in sources[1:]},
        "held_out_identities": sorted(val),
        "train": int((split == 0).sum()),
        "held_out": int((split == 1).sum()),
        "seed": seed,
        "canvas": CANVAS,
        "margin": MARGIN,
        "paths": [str(p.path) for p in kept_photos],
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.facebank",
        description="Align utkface + celeba_wild (+ Pins) with the runtime's detector + refiner onto 128x128 "
        "canvases for embedder training. LFW is never read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="utkface/, celeba_wild/")
    parser.add_argument(
        "--pins",
        type=Path,
        default=None,
        help="the Pins set's folder of pins_<Name>/ folders (see README, Data); omit to go without",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/facebank"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="a seeded sample of this many photos (smoke)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    manifest = prepare(
        args.data,
        args.out,
        args.pins,
        workers=args.workers,
        seed=args.seed,
        limit=args.limit,
        show_progress=not args.quiet,
    )
    print(
        json.dumps({k: v for k, v in manifest.items() if k not in ("paths", "held_out_identities")}, indent=1)
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
