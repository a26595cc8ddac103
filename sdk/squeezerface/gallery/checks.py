"""Checks of what callers pass to the gallery (names, aggregates, thresholds, embeddings), each raising a
typed error that says what was wrong, before anything is read or written. Embeddings come back as float32
unit vectors, the form in which templates are stored and searched."""

from __future__ import annotations

import math

import numpy as np

from squeezerface.errors import GalleryError, TemplateError
from squeezerface.gallery.records import AGGREGATES, Aggregate, ModelInfo


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise GalleryError(f"an identity name must be a non-empty string, got {name!r}")
    return name


def _check_aggregate(aggregate: object) -> Aggregate:
    if aggregate not in AGGREGATES:
        raise GalleryError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    return aggregate  # type: ignore[return-value]


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise GalleryError(f"threshold must be a number, got {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value):
        raise GalleryError(f"threshold must be finite, got {value}")
    return value


def _unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    """Finite, non-zero rows scaled to unit length, as float32 (checked before and after the cast, since a
    finite float64 can overflow float32)."""
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TemplateError(f"{what} must hold real numbers, got dtype {x.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(np.float32)
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    if bad.any():
        raise TemplateError(f"{int(bad.sum())} of {len(x)} {what} hold NaN or infinite values")
    norms = np.linalg.norm(y.astype(np.float64), axis=1)
    if (norms < 1e-6).any():
        raise TemplateError(f"{int((norms < 1e-6).sum())} of {len(x)} {what} are all zero")
    return (y / norms[:, None]).astype(np.float32)


def _check_templates(embeddings: object, model: ModelInfo) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim == 1:
        x = x[None]
    size = model.embedding_size
    if x.ndim != 2 or x.shape[0] == 0:
        raise TemplateError(f"expected embeddings of shape (N, {size}) with N >= 1, got shape {x.shape}")
    if x.shape[1] != size:
        raise TemplateError(f"embeddings of size {x.shape[1]} cannot be templates of {model}")
    return _unit_rows(x, "embeddings")


def _check_probe(embedding: object, size: int) -> np.ndarray:
    x = np.asarray(embedding)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or (size and x.shape[0] != size):
        raise TemplateError(f"expected one embedding of size {size or 'D'}, got shape {x.shape}")
    return _unit_rows(x[None], "probe embeddings")[0]
