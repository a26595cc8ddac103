"""Calibrate a model's decision thresholds on a user's own labelled faces and write a new card.

Thresholds shipped in a card were set on celeba_wild identities the model never trained on; a deployment
whose cameras, ages or ethnicities differ should recalibrate on its own data. Two layouts are accepted:
an LFW-style pairs file over `ROOT/NAME/NAME_NNNN.jpg`, or identity folders `ROOT/ID/*.jpg`, where every
pair of photos is used (genuine when the folders match).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface.embedders.base import EmbedderSpec, Fallback
from squeezerface.errors import ImageDecodeError
from squeezerface.modelcard import DEFAULT_FARS, ModelCard, calibrate, load_card
from squeezerface.shipped import DEFAULT_EMBEDDER, model_path


@dataclass(frozen=True)
class CalibrationRun:
    card: ModelCard
    scores: np.ndarray
    labels: np.ndarray
    no_face: int


def all_pairs(embeddings: np.ndarray, identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and same-identity labels of every unordered pair of (unit) embeddings."""
    i, j = np.triu_indices(len(embeddings), k=1)
    scores = np.einsum("ij,ij->i", embeddings[i], embeddings[j]).astype(np.float64)
    return scores, identity[i] == identity[j]


def _embedder_spec(model: str | Path, locator: str) -> EmbedderSpec:
    return EmbedderSpec("squeezerfacenet", (("model", str(model_path(str(model)))), ("locator", locator)))


def calibrate_on_folder(
    root: Path,
    pairs_file: Path | None = None,
    *,
    model: str | Path = DEFAULT_EMBEDDER,
    locator: str = "tinyface",
    fars: tuple[float, ...] = DEFAULT_FARS,
    cache_path: Path | None = None,
    workers: int = 1,
    show_progress: bool = True,
) -> CalibrationRun:
    """Embed the photos (through the model's own file and card), score the pairs, set the thresholds.

    Photos where no face is detected are embedded through the documented centred-box fallback and
    counted in `no_face`, as in `squeezerface eval`."""
    from squeezerface.batch import embed_files
    from squeezerface.datasets import read_identity_folders, read_pairs
    from squeezerface.evaluation import score_pairs

    spec = _embedder_spec(model, locator)
    embedder = spec.build()
    if pairs_file is not None:
        pairs = read_pairs(root, pairs_file)
        paths = pairs.unique_paths()
        identities = None
        source = f"{len(pairs)} pairs of {pairs_file}"
    else:
        images = read_identity_folders(root)
        paths = [im.path for im in images]
        identities = np.array([im.identity for im in images])
        source = f"all pairs of {len(images)} photos of {len(set(identities))} identities in {root}"
    batch = embed_files(
        paths,
        spec,
        embedder=embedder,
        cache_path=cache_path,
        workers=workers,
        fallback=Fallback(),
        show_progress=show_progress,
    )
    if batch.failures:
        shown = "; ".join(f"{p}: {why}" for p, why in list(batch.failures.items())[:5])
        raise ImageDecodeError(f"{len(batch.failures)} photo(s)", f"could not be embedded: {shown}")
    if identities is None:
        scores = score_pairs(pairs, {p: item.embedding for p, item in batch.items.items()})
        labels = pairs.labels()
    else:
        scores, labels = all_pairs(np.stack([batch.items[p].embedding for p in paths]), identities)
    card = load_card(embedder.model.path).with_calibration(calibrate(scores, labels, source, fars))
    no_face = sum(not item.face.detected for item in batch.items.values())
    return CalibrationRun(card=card, scores=scores, labels=labels, no_face=no_face)
