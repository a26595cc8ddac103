"""On-disk cache of per-photo embeddings, keyed by the photo's content hash and the embedder's fingerprint.

Content hashes (not paths) make the cache survive moved or renamed datasets and make a changed file miss.
One SQLite file (stdlib, WAL) holds everything; each batch of results is one transaction, so an
interrupted run keeps all that it had finished and a re-run only computes the rest.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface.face import Face

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    embedding BLOB NOT NULL,
    face TEXT NOT NULL,
    faces_found INTEGER NOT NULL,
    flipped BLOB,
    PRIMARY KEY (fingerprint, sha256)
)
"""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/squeezerface` (~/.cache/squeezerface by default): the only place under the user's
    home the runtime writes to, and only when a cache is used (evaluation, a zipped install's models)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "squeezerface"


def default_cache_path() -> Path:
    """`$SQUEEZERFACE_CACHE`, else `$XDG_CACHE_HOME/squeezerface/embeddings.sqlite` (~/.cache by default)."""
    explicit = os.environ.get("SQUEEZERFACE_CACHE")
    if explicit:
        return Path(explicit)
    return cache_root() / "embeddings.sqlite"


@dataclass(frozen=True)
class CachedEmbedding:
    """One photo's embedding and the face it came from."""

    embedding: np.ndarray
    face: Face
    faces_found: int
    flipped: np.ndarray | None = None


def face_to_json(face: Face) -> str:
    return json.dumps(
        {
            "box": [float(v) for v in face.box],
            "landmarks": face.landmarks.astype(float).round(3).tolist(),
            "score": float(face.score),
            "detected": bool(face.detected),
        }
    )


def face_from_json(text: str) -> Face:
    d = json.loads(text)
    return Face(
        box=tuple(d["box"]), landmarks=np.array(d["landmarks"]), score=d["score"], detected=d["detected"]
    )


class EmbeddingCache:
    """Read and write cached embeddings for one embedder fingerprint."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(embeddings)")}
        if "flipped" not in columns:  # caches written before flip targets existed
            self._db.execute("ALTER TABLE embeddings ADD COLUMN flipped BLOB")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, hashes: Sequence[str]) -> dict[str, CachedEmbedding]:
        """Cached entries among `hashes` (absent ones are simply missing from the result)."""
        out: dict[str, CachedEmbedding] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT sha256, embedding, face, faces_found, flipped FROM embeddings "
                f"WHERE fingerprint = ? AND sha256 IN ({marks})",
                [self.fingerprint, *chunk],
            )
            for sha, blob, face, found, flipped in rows:
                out[sha] = CachedEmbedding(
                    embedding=np.frombuffer(blob, dtype=np.float32).copy(),
                    face=face_from_json(face),
                    faces_found=int(found),
                    flipped=None if flipped is None else np.frombuffer(flipped, dtype=np.float32).copy(),
                )
        return out

    def put_many(self, items: Iterable[tuple[str, CachedEmbedding]]) -> None:
        """Store entries in one transaction."""
        rows = [
            (
                self.fingerprint,
                sha,
                np.ascontiguousarray(item.embedding, dtype=np.float32).tobytes(),
                face_to_json(item.face),
                int(item.faces_found),
                None if item.flipped is None else np.ascontiguousarray(item.flipped, np.float32).tobytes(),
            )
            for sha, item in items
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings "
                "(fingerprint, sha256, embedding, face, faces_found, flipped) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def __len__(self) -> int:
        (n,) = self._db.execute(
            "SELECT COUNT(*) FROM embeddings WHERE fingerprint = ?", [self.fingerprint]
        ).fetchone()
        return int(n)
