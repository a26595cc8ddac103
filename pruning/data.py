"""Training data for distillation: the teacher's targets and the aligned faces they belong to.

`prepare` runs the dlib teacher once over the training photos (utkface + celeba_wild; never LFW), keeping
only photos where it detects a face, and stores for each: the face aligned by the teacher's 5 landmarks
onto a 128x128 canvas (the 112x112 template centred with an 8-pixel margin, room for crop/scale jitter),
the teacher's 128-d embedding of the photo and of its mirror image (exact targets for flip
augmentation), the identity (celeba_wild) or -1 (utkface), and the split. Everything lands in one folder
of .npy files plus a JSON manifest, memory-mapped at training time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface._progress import progress
from squeezerface.align import ALIGNED_SIZE, align_face
from squeezerface.batch import embed_files
from squeezerface.cache import default_cache_path
from squeezerface.datasets import read_flat_folder, read_identity_folders
from squeezerface.embedders.base import EmbedderSpec, Fallback
from squeezerface.imageio import load_image

CANVAS = 128
MARGIN = (CANVAS - ALIGNED_SIZE) // 2
TEACHER = EmbedderSpec("dlib")


def align_to_canvas(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The runtime's alignment (same template and warp), with MARGIN pixels of context on every side."""
    return align_face(image, landmarks, ALIGNED_SIZE, MARGIN)


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: int  # celeba_wild identity number, -1 for unlabeled utkface
    source: str


def training_photos(data_root: Path, utkface: int | None = None, seed: int = 0) -> list[Photo]:
    """Every photo of celeba_wild and of utkface, or a seeded sample of `utkface` of the latter (calibration
    sets need celeba_wild's identities whole but only a few hundred unlabeled faces). LFW is not touched."""
    unlabeled = read_flat_folder(data_root / "utkface")
    if utkface is not None and utkface < len(unlabeled):
        picks = np.random.default_rng(seed).permutation(len(unlabeled))[:utkface]
        unlabeled = [unlabeled[i] for i in sorted(picks)]
    photos = [Photo(p, -1, "utkface") for p in unlabeled]
    photos += [
        Photo(li.path, int(li.identity), "celeba_wild")
        for li in read_identity_folders(data_root / "celeba_wild")
    ]
    return photos


def validation_identities(identities: Sequence[int], count: int, seed: int) -> set[int]:
    """Held-out celeba_wild identities for model selection, chosen by a seeded permutation."""
    ids = np.array(sorted(set(identities)))
    rng = np.random.default_rng(seed)
    return {int(i) for i in rng.permutation(ids)[:count]}


def sample_photos(photos: Sequence[Photo], limit: int, seed: int) -> list[Photo]:
    """A deterministic sample for smoke runs: about half from celeba_wild identities, up to 6 photos each (so
    validation has genuine and impostor pairs in every fold), the rest random utkface photos."""
    rng = np.random.default_rng(seed)
    by_id: dict[int, list[Photo]] = {}
    for p in photos:
        if p.identity >= 0:
            by_id.setdefault(p.identity, []).append(p)
    chosen: list[Photo] = []
    for identity in rng.permutation(sorted(by_id)):
        if len(chosen) >= limit // 2:
            break
        chosen += by_id[int(identity)][: min(6, limit // 2 - len(chosen))]
    unlabeled = [p for p in photos if p.identity < 0]
    picks = rng.permutation(len(unlabeled))[: limit - len(chosen)]
    return chosen + [unlabeled[i] for i in sorted(picks)]


def prepare(
    data_root: Path,
    out_dir: Path,
    *,
    cache_path: Path | None,
    workers: int = 2,
    val_identities: int = 40,
    seed: int = 0,
    limit: int | None = None,
    utkface: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Teacher targets + aligned canvases for every usable training photo; returns the manifest."""
    start = time.monotonic()
    photos = training_photos(data_root, utkface, seed)
    if limit is not None:
        photos = sample_photos(photos, limit, seed)
    spec = TEACHER
    teacher = spec.build()
    fingerprint = teacher.fingerprint()
    batch = embed_files(
        [p.path for p in photos],
        spec,
        embedder=teacher,
        cache_path=cache_path,
        workers=workers,
        fallback=Fallback(enabled=False),
        show_progress=show_progress,
        with_flip=True,
    )
    kept = [p for p in photos if p.path in batch.items]
    val_ids = validation_identities([p.identity for p in photos if p.identity >= 0], val_identities, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = np.lib.format.open_memmap(
        out_dir / "faces.npy", mode="w+", dtype=np.uint8, shape=(len(kept), CANVAS, CANVAS, 3)
    )
    targets = np.zeros((len(kept), 128), np.float32)
    targets_flip = np.zeros((len(kept), 128), np.float32)
    for i, photo in enumerate(progress(kept, len(kept), "aligning", show_progress)):
        item = batch.items[photo.path]
        faces[i] = align_to_canvas(load_image(photo.path), item.face.landmarks)
        targets[i] = item.embedding
        targets_flip[i] = item.flipped
    faces.flush()
    del faces
    identity = np.array([p.identity for p in kept], np.int64)
    split = np.array([1 if p.identity in val_ids else 0 for p in kept], np.int8)  # 0 train, 1 validation
    np.save(out_dir / "targets.npy", targets)
    np.save(out_dir / "targets_flip.npy", targets_flip)
    np.save(out_dir / "identity.npy", identity)
    np.save(out_dir / "split.npy", split)
    manifest = {
        "teacher": fingerprint,
        "data_root": str(data_root),
        "photos": len(photos),
        "kept": len(kept),
        "no_face_or_unreadable": len(batch.failures) + len(batch.refused),
        "by_source": {s: sum(p.source == s for p in kept) for s in ("utkface", "celeba_wild")},
        "validation_identities": sorted(val_ids),
        "train": int((split == 0).sum()),
        "validation": int((split == 1).sum()),
        "seed": seed,
        "canvas": CANVAS,
        "margin": MARGIN,
        "paths": [str(p.path.relative_to(data_root)) for p in kept],
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.data",
        description="Run the dlib teacher over utkface + celeba_wild (never LFW) and write aligned faces and "
        "distillation targets for training. Cached by content hash: a rerun only does what is missing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data"), help="folder with utkface/, celeba_wild/"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/faces"), help="output folder")
    parser.add_argument(
        "--cache", type=Path, default=None, help="teacher embedding cache (default: user cache)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--val-identities", type=int, default=40, help="celeba_wild identities held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only this many photos (smoke tests)")
    parser.add_argument(
        "--utkface", type=int, default=None, help="a seeded sample of this many utkface photos (default: all)"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    manifest = prepare(
        args.data,
        args.out,
        cache_path=args.cache or default_cache_path(),
        workers=args.workers,
        val_identities=args.val_identities,
        seed=args.seed,
        limit=args.limit,
        utkface=args.utkface,
        show_progress=not args.quiet,
    )
    summary = {k: v for k, v in manifest.items() if k not in ("paths", "validation_identities")}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
