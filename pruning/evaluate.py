"""LFW View 2 accuracy of a torch student, aligned by the teacher's landmarks (report only, never tuning).

The faces come from the teacher's evaluation cache (`squeezerface eval --embedder dlib` fills it; a cold
cache is filled here), so every student is measured on exactly the photos, landmarks and no-face fallbacks
that the teacher's own LFW figure used, and only the embedding differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pruning.data import TEACHER
from pruning.train import embed_faces
from squeezerface._progress import progress
from squeezerface.align import align_face
from squeezerface.batch import embed_files
from squeezerface.cache import default_cache_path
from squeezerface.datasets import PairList, read_pairs
from squeezerface.evaluation import evaluation_folds, score_pairs
from squeezerface.imageio import load_image
from squeezerface.metrics import verification_report


@dataclass(frozen=True)
class AlignedPairs:
    pairs: PairList
    paths: list[Path]
    faces: np.ndarray  # (N, 112, 112, 3) uint8, aligned by the teacher's landmarks
    no_face: int


def aligned_lfw(lfw_dir: Path, cache_path: Path | None = None, show_progress: bool = True) -> AlignedPairs:
    """Every LFW View 2 photo aligned to 112x112 with the teacher's landmarks (fallback where no face)."""
    pairs = read_pairs(lfw_dir / "images", lfw_dir / "pairs.txt")
    paths = pairs.unique_paths()
    batch = embed_files(
        paths,
        TEACHER,
        cache_path=cache_path or default_cache_path(),
        show_progress=show_progress,
    )
    faces = np.stack(
        [
            align_face(load_image(p), batch.items[p].face.landmarks)
            for p in progress(paths, len(paths), "aligning LFW", show_progress)
        ]
    )
    no_face = sum(not batch.items[p].face.detected for p in paths)
    return AlignedPairs(pairs=pairs, paths=paths, faces=faces, no_face=no_face)


def runtime_aligned_lfw(lfw_dir: Path, cache: Path | None = None, workers: int = 2) -> AlignedPairs:
    """Every LFW View 2 photo aligned by the runtime's own detector + refiner (largest confident face; a
    centred template box where none is found), as `squeezerface verify` sees it. Cached in `cache` (.npz)."""
    from pruning.facebank import align_photos

    pairs = read_pairs(lfw_dir / "images", lfw_dir / "pairs.txt")
    paths = pairs.unique_paths()
    if cache is not None and cache.exists():
        stored = np.load(cache)
        return AlignedPairs(pairs, paths, stored["faces"], int(stored["no_face"]))
    faces = np.zeros((len(paths), 112, 112, 3), np.uint8)
    no_face = 0
    for r in align_photos(paths, margin=0, fallback=True, workers=workers):
        faces[r.index] = r.canvas
        no_face += r.faces == 0
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, faces=faces, no_face=no_face)
    return AlignedPairs(pairs, paths, faces, no_face)


def lfw_report(model: torch.nn.Module, lfw: AlignedPairs, flip_average: bool = False) -> dict:
    """10-fold accuracy, EER, TAR@FAR of `model` on the aligned LFW pairs."""
    emb = embed_faces(model, lfw.faces, flip_average=flip_average)
    scores = score_pairs(lfw.pairs, dict(zip(lfw.paths, emb, strict=True)))
    report = verification_report(scores, lfw.pairs.labels(), evaluation_folds(lfw.pairs)).to_dict()
    report["no_face_count"] = lfw.no_face
    report["flip_average"] = flip_average
    return report
