"""Templates as stored (little-endian float32 BLOBs) and as searched (`_TemplateIndex`, one float32 matrix).

Search sits behind `_TemplateIndex` (every template as rows of a matrix, grouped by identity). An approximate
index (FAISS) for galleries too large for exact search would offer the same two methods, built from the same
rows; nothing else in the gallery would change."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np

from squeezerface.errors import GalleryFormatError
from squeezerface.gallery.records import Aggregate, ModelInfo

_TEMPLATE_DTYPE = np.dtype("<f4")  # little-endian float32, whatever the machine


def _to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=_TEMPLATE_DTYPE).tobytes()


def _template_width(model: ModelInfo | None, templates: int, path: Path) -> int:
    """Bytes of one stored template of `model` (0 without a model). Templates without a recorded model
    cannot be read, so a file that holds some is damaged: `GalleryFormatError`."""
    if model is None:
        if templates:
            raise GalleryFormatError(f"{path} holds templates but records no model: the file is damaged")
        return 0
    return model.embedding_size * _TEMPLATE_DTYPE.itemsize


class _TemplateIndex:
    """Exact search: every template as a row of one (T, D) float32 matrix, rows grouped by identity, and the
    renormalised mean template of each identity. An approximate index (FAISS) would offer the same
    `scores` and `score_of`, built from the same rows."""

    def __init__(self, names: list[str], counts: np.ndarray, matrix: np.ndarray) -> None:
        self.names = names
        self.position = {name: i for i, name in enumerate(names)}
        self.counts = counts
        self.matrix = matrix
        self.dim = matrix.shape[1]
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp) if names else counts
        sums = np.add.reduceat(matrix, self.starts, axis=0) if names else matrix
        self.means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), np.float32(1e-12))

    @classmethod
    def build(cls, rows: list[tuple[str, bytes]], model: ModelInfo | None, path: Path) -> _TemplateIndex:
        width = _template_width(model, len(rows), path)
        if model is None:
            return cls([], np.zeros(0, np.intp), np.zeros((0, 0), np.float32))
        if any(not isinstance(blob, bytes) or len(blob) != width for _, blob in rows):
            raise GalleryFormatError(
                f"{path} holds templates that are not {model.embedding_size} float32 values"
            )
        groups = [(name, len(list(group))) for name, group in groupby(name for name, _ in rows)]
        names = [name for name, _ in groups]
        counts = np.array([count for _, count in groups], np.intp)
        flat = np.frombuffer(b"".join(blob for _, blob in rows), _TEMPLATE_DTYPE)
        matrix = flat.astype(np.float32).reshape(len(rows), model.embedding_size)
        with np.errstate(all="ignore"):  # templates are stored finite and of unit length: damage shows
            norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
        damaged = ~(np.isfinite(matrix).all(axis=1) & (np.abs(norms - 1.0) < 1e-3))
        if damaged.any():
            raise GalleryFormatError(
                f"{path} holds {int(damaged.sum())} damaged template(s) (not finite unit vectors); "
                "it was left as it is"
            )
        return cls(names, counts, matrix)

    def scores(self, probe: np.ndarray, aggregate: Aggregate) -> np.ndarray:
        """(I,) score of the probe against every identity."""
        if aggregate == "mean":
            return self.means @ probe
        return np.maximum.reduceat(self.matrix @ probe, self.starts)

    def score_of(self, i: int, probe: np.ndarray, aggregate: Aggregate) -> float:
        if aggregate == "mean":
            return float(self.means[i] @ probe)
        start = self.starts[i]
        return float((self.matrix[start : start + self.counts[i]] @ probe).max())
