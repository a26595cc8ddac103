"""Calibrate a model's decision thresholds on a user's own labelled faces and write a new card.

Thresholds shipped in a card were set on celeba_wild identities the model never trained on; a deployment
whose cameras, ages or ethnicities differ should recalibrate on its own data. Two layouts are accepted:
an LFW-style pairs file over `ROOT/NAME/NAME_NNNN.jpg`, or identity folders `ROOT/ID/*.jpg`, where every
pair of photos is used (genuine when the folders match), across any number of roots (e.g. the celeba_wild
validation identities and a held-out Pins folder). Photos go through the app's face path with its quality
gate, so the thresholds hold for what the app scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from squeezerface.embedders.base import EmbedderSpec, Fallback, SelectPolicy
from squeezerface.errors import DatasetError, ImageDecodeError
from squeezerface.modelcard import DEFAULT_FARS, ModelCard, calibrate, load_card
from squeezerface.quality import QualityThresholds
from squeezerface.shipped import DEFAULT_EMBEDDER, model_path

DEFAULT_QUALITY = QualityThresholds()
"""The app's quality gate (as `squeezerface.verify.DEFAULT_QUALITY`)."""


@dataclass(frozen=True)
class CalibrationRun:
    """A calibrated card and what it was calibrated on: the pair scores and labels, how many photos used
    the no-face fallback, and the photos the face path refused (path -> reason; left out, as the app
    refuses them)."""

    card: ModelCard
    scores: np.ndarray
    labels: np.ndarray
    no_face: int
    refused: dict[Path, str] = field(default_factory=dict)
    photos: int = 0
    identities: int = 0


def all_pairs(embeddings: np.ndarray, identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and same-identity labels of every unordered pair of (unit) embeddings. One Gram
    matrix (N x N), not N^2/2 gathered rows: 3,499 faces of 512-d would otherwise need 2 x 11.7 GB."""
    i, j = np.triu_indices(len(embeddings), k=1)
    gram = np.asarray(embeddings, dtype=np.float32) @ np.asarray(embeddings, dtype=np.float32).T
    scores = gram[i, j].astype(np.float64)
    return scores, identity[i] == identity[j]


def _embedder_spec(model: str | Path, locator: str) -> EmbedderSpec:
    return EmbedderSpec("squeezerfacenet", (("model", str(model_path(str(model)))), ("locator", locator)))


def _labelled_photos(roots: Sequence[Path]) -> tuple[list[Path], np.ndarray, str]:
    """Photos of every identity folder of every root; identities of different roots are kept apart (the
    same folder name in two datasets is not assumed to be one person)."""
    from squeezerface.datasets import read_identity_folders

    paths: list[Path] = []
    labels: list[str] = []
    for k, root in enumerate(roots):
        for im in read_identity_folders(root):
            paths.append(im.path)
            labels.append(f"{k}:{im.identity}" if len(roots) > 1 else im.identity)
    identities = np.array(labels)
    where = ", ".join(str(r) for r in roots)
    return paths, identities, f"all pairs of {len(paths)} photos of {len(set(labels))} identities in {where}"


def calibrate_on_folders(
    roots: Sequence[Path],
    pairs_file: Path | None = None,
    *,
    model: str | Path = DEFAULT_EMBEDDER,
    locator: str = "tinyface",
    fars: tuple[float, ...] = DEFAULT_FARS,
    cache_path: Path | None = None,
    workers: int = 1,
    show_progress: bool = True,
    fallback: Fallback | None = None,
    quality: QualityThresholds | None = DEFAULT_QUALITY,
    policy: SelectPolicy = "largest",
) -> CalibrationRun:
    """Embed the photos of every root through the app's face path (`FaceVerifier`: largest confident
    face, quality gate on, no fallback), score the pairs, set the thresholds.

    Thresholds hold only for the pipeline that set them, so by default a photo the app would refuse (no
    face, a face failing the gate) is refused here too: listed in `refused` and left out of every pair.
    `fallback` embeds no-face photos through a centred box instead (counted in `no_face`). With
    `pairs_file`, `roots` must be one folder; without, every pair of photos of all roots is used."""
    from squeezerface.batch import embed_files
    from squeezerface.datasets import read_pairs
    from squeezerface.evaluation import score_pairs

    roots = [Path(r) for r in roots]
    if not roots:
        raise DatasetError("calibrate needs at least one photo folder")
    spec = _embedder_spec(model, locator)
    embedder = spec.build()
    if pairs_file is not None:
        if len(roots) != 1:
            raise DatasetError("a pairs file names photos of one folder: give one root with --pairs")
        pairs = read_pairs(roots[0], pairs_file)
        paths, identities = pairs.unique_paths(), None
        source = f"{len(pairs)} pairs of {pairs_file}"
    else:
        paths, identities, source = _labelled_photos(roots)
    batch = embed_files(
        paths,
        spec,
        embedder=embedder,
        cache_path=cache_path,
        workers=workers,
        policy=policy,
        fallback=fallback or Fallback(enabled=False),
        quality=quality,
        show_progress=show_progress,
    )
    if batch.failures:
        shown = "; ".join(f"{p}: {why}" for p, why in list(batch.failures.items())[:5])
        raise ImageDecodeError(f"{len(batch.failures)} photo(s)", f"could not be embedded: {shown}")
    if identities is None:
        kept = tuple(p for p in pairs.pairs if p.path1 in batch.items and p.path2 in batch.items)
        scored = replace(pairs, pairs=kept)
        scores = score_pairs(scored, {p: item.embedding for p, item in batch.items.items()})
        labels = scored.labels()
    else:
        keep = [i for i, p in enumerate(paths) if p in batch.items]
        vectors = np.stack([batch.items[paths[i]].embedding for i in keep])
        scores, labels = all_pairs(vectors, identities[keep])
    if batch.refused:
        source += f"; {len(batch.refused)} photo(s) the app refuses left out"
    model_path = embedder.model.path  # type: ignore[attr-defined]
    card = load_card(model_path).with_calibration(calibrate(scores, labels, source, fars))
    no_face = sum(not item.face.detected for item in batch.items.values())
    n_ids = len(set(identities.tolist())) if identities is not None else 0
    return CalibrationRun(card, scores, labels, no_face, dict(batch.refused), len(batch.items), n_ids)


def calibrate_on_folder(root: Path, pairs_file: Path | None = None, **options: Any) -> CalibrationRun:
    """`calibrate_on_folders` on one folder."""
    return calibrate_on_folders([root], pairs_file, **options)
