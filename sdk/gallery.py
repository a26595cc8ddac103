"""Enrolment gallery: named identities with several face templates each, in one SQLite file the user names.

Why SQLite (stdlib, WAL mode): one file to back up or delete, readers that never block the writer, and real
transactions. An enrolment is one `BEGIN IMMEDIATE ... COMMIT`, so an exception or a crash halfway through
leaves the gallery exactly as it was, never half a person.

Templates are float32 unit vectors stored as little-endian BLOBs. Search loads them all once into one
float32 matrix and scores every template with one matrix product; the matrix is cached and dropped on any
write (this object's, or another connection's, seen through `PRAGMA data_version`).

A gallery belongs to one embedding model (name, version, embedding size): cosine scores between embeddings of
two models mean nothing, so opening or writing with another model raises `ModelMismatchError` instead of
returning confident nonsense. Precision variants of one model (fp32 / int8 ONNX, LiteRT) share its name and
version and are accepted; the file and SHA-256 that made each template are still recorded.

A file that is not a gallery (corrupt, not SQLite, another program's database, a schema version this code
does not read) raises `GalleryFormatError` and is left byte for byte as it was: never reset or overwritten.

`forget` deletes a person's rows with `PRAGMA secure_delete=ON` (freed space is zeroed) and then checkpoints
and truncates the write-ahead log, so no copy of the templates stays in either file; `vacuum=True` also
rebuilds the file without the freed pages.

Search sits behind `_TemplateIndex` (every template as rows of a matrix, grouped by identity). An approximate
index (FAISS) for galleries too large for exact search would offer the same two methods, built from the same
rows; nothing else here would change.
"""

from __future__ import annotations

import math
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any, Literal

import numpy as np

from squeezerface.errors import (
    GalleryError,
    GalleryFormatError,
    ModelMismatchError,
    TemplateError,
    UnknownIdentityError,
)

Aggregate = Literal["mean", "best"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "best")

SCHEMA_VERSION = 1
"""Stored as `PRAGMA user_version`; a gallery of another version is refused, never migrated silently."""

APPLICATION_ID = 0x53464731  # "SFG1"
"""`PRAGMA application_id`, in the SQLite header: a gallery is recognised before any table is read."""

FORMAT = "squeezerface-gallery"
_TEMPLATE_DTYPE = np.dtype("<f4")  # little-endian float32, whatever the machine
_TABLES = ("identities", "meta", "models", "templates")
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        embedding_size INTEGER NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        UNIQUE (name, version, embedding_size, file, sha256)
    )""",
    """CREATE TABLE identities (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )""",
    """CREATE TABLE templates (
        id INTEGER PRIMARY KEY,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        model_id INTEGER NOT NULL REFERENCES models(id),
        embedding BLOB NOT NULL,
        created TEXT NOT NULL
    )""",
    "CREATE INDEX templates_by_identity ON templates (identity_id)",
)


@dataclass(frozen=True)
class ModelInfo:
    """The embedding model that makes a gallery's templates. `name`, `version` and `embedding_size` decide
    whether two models' embeddings can be compared; `file` and `sha256` are provenance only, because the
    precision variants of one model (fp32, int8, LiteRT) share name and version and agree closely."""

    name: str
    version: str
    embedding_size: int
    file: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GalleryError(f"a model needs a name, got {self.name!r}")
        size = self.embedding_size
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise GalleryError(f"embedding_size must be a positive integer, got {size!r}")

    @classmethod
    def from_card(cls, card: Any) -> ModelInfo:
        """From a `ModelCard` (or anything with name, version, embedding_size and optionally file, sha256);
        duck-typed so the gallery does not import the model-card module."""
        return cls(
            name=str(card.name),
            version=str(card.version),
            embedding_size=int(card.embedding_size),
            file=str(getattr(card, "file", "") or ""),
            sha256=str(getattr(card, "sha256", "") or ""),
        )

    @property
    def key(self) -> tuple[str, str, int]:
        """What must be equal for two models' embeddings to be comparable."""
        return (self.name, self.version, int(self.embedding_size))

    def compatible(self, other: ModelInfo) -> bool:
        return self.key == other.key

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "embedding_size": int(self.embedding_size),
            "file": self.file,
            "sha256": self.sha256,
        }

    def __str__(self) -> str:
        return f"model {self.name} {self.version} ({self.embedding_size}-d)"


@dataclass(frozen=True)
class IdentityInfo:
    """One enrolled person: how many templates they have and when they were first and last enrolled (UTC)."""

    name: str
    templates: int
    created: datetime
    updated: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "templates": self.templates,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
        }


@dataclass(frozen=True)
class Candidate:
    """A 1:N search result: cosine score of the probe against one identity (aggregated over its templates)
    and whether it clears the reject threshold (accept when score > threshold, as `FaceVerifier` does)."""

    name: str
    score: float
    accepted: bool
    templates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "accepted": self.accepted,
            "templates": self.templates,
        }


@dataclass(frozen=True)
class Verification:
    """A 1:1 check of a probe against one enrolled identity: score, the threshold, and the decision."""

    name: str
    score: float
    threshold: float
    accepted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "threshold": self.threshold,
            "accepted": self.accepted,
        }


class Gallery:
    """Enrolled identities in one SQLite file: `enroll`, `verify` (1:1), `identify` (1:N), `identities`,
    `forget`. Use as a context manager, or call `close`.

    `model` is the embedding model of the caller. On a new gallery it is recorded; on an existing one it must
    match the recorded model (`ModelMismatchError` otherwise). Opening without a model is enough to list,
    search or forget, but writing templates needs one (here or per `enroll` call), so templates of an unknown
    model never get in. `create=False` refuses a missing file instead of creating an empty gallery.
    `aggregate` is the default way to score an identity with several templates: "mean" (cosine to the
    renormalised mean of its templates, robust to one poor photo) or "best" (highest cosine over templates,
    kinder to varied poses, but one bad template can make false accepts)."""

    def __init__(
        self,
        path: str | Path,
        model: ModelInfo | None = None,
        *,
        aggregate: Aggregate = "mean",
        create: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.aggregate: Aggregate = _check_aggregate(aggregate)
        self._opened_with = model
        self._index: _TemplateIndex | None = None
        self._data_version: int | None = None
        self._db: sqlite3.Connection | None = _connect(self.path, create, timeout)
        try:
            with _sql_errors(self.path):
                self._model = _read_model(self._db, self.path)
            if model is not None and (self._model is None or not self._model.compatible(model)):
                with self._transaction() as db:  # records it, re-checking under the write lock
                    self._model = _ensure_model(db, self.path, model)
        except BaseException:
            self.close()
            raise

    # -- life cycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). SQLite checkpoints the write-ahead log on the last close."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._index = None

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> ModelInfo | None:
        """The model recorded in the gallery (None while nothing was ever recorded)."""
        return self._model

    # -- writing --------------------------------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        embeddings: np.ndarray | Sequence[Sequence[float]],
        *,
        model: ModelInfo | None = None,
        replace: bool = False,
    ) -> IdentityInfo:
        """Add templates ((N, D) or one (D,) embedding) to `name`, creating the identity when it is new;
        `replace=True` drops the person's previous templates first. All or nothing: one transaction, so any
        failure (or a crash) leaves the gallery as it was. Templates are stored normalised to unit length.
        `model` defaults to the one the gallery was opened with."""
        name = _check_name(name)
        model = model or self._opened_with
        if model is None:
            raise GalleryError(
                f"say which model made these embeddings: open {self.path} with model=ModelInfo(...) "
                "or pass model= to enroll"
            )
        if self._model is not None and not self._model.compatible(model):
            raise ModelMismatchError(self.path, self._model, model)
        vectors = _check_templates(embeddings, model)
        now = _now()
        with self._transaction() as db:
            self._model = _ensure_model(db, self.path, model)  # another process may have recorded one
            model_id = _model_id(db, model)
            row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                identity_id = db.execute(
                    "INSERT INTO identities (name, created, updated) VALUES (?, ?, ?)", (name, now, now)
                ).lastrowid
            else:
                identity_id = row[0]
                if replace:
                    db.execute("DELETE FROM templates WHERE identity_id = ?", (identity_id,))
                db.execute("UPDATE identities SET updated = ? WHERE id = ?", (now, identity_id))
            for vector in vectors:  # one row at a time: the transaction, not the batch, makes it atomic
                db.execute(
                    "INSERT INTO templates (identity_id, model_id, embedding, created) VALUES (?, ?, ?, ?)",
                    (identity_id, model_id, _to_blob(vector), now),
                )
            info = _identity_info(db, identity_id, self.path)
        return info

    def forget(self, name: str, vacuum: bool = False) -> int:
        """Delete a person and every template of theirs; returns how many templates went. Deleted bytes are
        zeroed (secure_delete) and the write-ahead log is checkpointed and truncated, so the templates are
        gone from disk, not merely unlinked. `vacuum=True` also rebuilds the file to drop the freed pages
        (slower; it rewrites the whole file)."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
            removed = db.execute("DELETE FROM templates WHERE identity_id = ?", (row[0],)).rowcount
            db.execute("DELETE FROM identities WHERE id = ?", (row[0],))
        db = self._connection()
        with _sql_errors(self.path):
            if vacuum:
                db.execute("VACUUM")
            busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            warnings.warn(
                f"{self.path}: another connection is reading the gallery, so the write-ahead log could not "
                "be truncated; the forgotten templates leave it at the next checkpoint",
                stacklevel=2,
            )
        return int(removed)

    # -- reading --------------------------------------------------------------------------------------------

    def identities(self) -> list[IdentityInfo]:
        """Every enrolled person, by name."""
        db = self._connection()
        with _sql_errors(self.path):
            rows = db.execute(
                "SELECT i.name, COUNT(t.id), i.created, i.updated FROM identities i "
                "LEFT JOIN templates t ON t.identity_id = i.id GROUP BY i.id ORDER BY i.name"
            ).fetchall()
        return [_info_from_row(row, self.path) for row in rows]

    def templates(self, name: str) -> np.ndarray:
        """The (N, D) float32 templates of one person, in enrolment order."""
        index = self._search_index()
        i = self._position(index, name)
        start = index.starts[i]
        return index.matrix[start : start + index.counts[i]].copy()

    def __len__(self) -> int:
        db = self._connection()
        with _sql_errors(self.path):
            return int(db.execute("SELECT COUNT(*) FROM identities").fetchone()[0])

    def __contains__(self, name: object) -> bool:
        db = self._connection()
        with _sql_errors(self.path):
            return db.execute("SELECT 1 FROM identities WHERE name = ?", (name,)).fetchone() is not None

    def verify(
        self,
        name: str,
        embedding: np.ndarray | Sequence[float],
        threshold: float,
        *,
        aggregate: Aggregate | None = None,
    ) -> Verification:
        """1:1: is the probe `name`? Cosine of the probe (normalised) against the identity, aggregated over
        its templates; accepted when score > threshold."""
        threshold = _check_threshold(threshold)
        how = _check_aggregate(aggregate or self.aggregate)
        index = self._search_index()
        i = self._position(index, name)
        score = index.score_of(i, _check_probe(embedding, index.dim), how)
        return Verification(name, score, threshold, score > threshold)

    def identify(
        self,
        embedding: np.ndarray | Sequence[float],
        top_k: int = 5,
        threshold: float | None = None,
        *,
        aggregate: Aggregate | None = None,
    ) -> list[Candidate]:
        """1:N: the `top_k` identities most like the probe, best first (ties by name). Each is `accepted`
        when its score > `threshold`; with no threshold nothing is rejected (a pure ranking), so pass the
        model's calibrated threshold to get open-set answers ("nobody" = no accepted candidate)."""
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise GalleryError(f"top_k must be a positive integer, got {top_k!r}")
        limit = None if threshold is None else _check_threshold(threshold)
        how = _check_aggregate(aggregate or self.aggregate)
        index = self._search_index()
        probe = _check_probe(embedding, index.dim)
        if not index.names:
            return []
        scores = index.scores(probe, how)
        k = min(int(top_k), len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda i: (-float(scores[i]), index.names[i]))
        return [
            Candidate(
                name=index.names[i],
                score=float(scores[i]),
                accepted=limit is None or float(scores[i]) > limit,
                templates=int(index.counts[i]),
            )
            for i in ranked
        ]

    # -- internals ------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise GalleryError(f"the gallery {self.path} is closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT. IMMEDIATE takes the write lock up front, so a concurrent writer waits
        (busy timeout) instead of failing halfway; any exception rolls back, and a crash is rolled back by
        SQLite when the file is next opened. The search cache is dropped either way."""
        db = self._connection()
        try:
            with _sql_errors(self.path):
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
        finally:
            self._index = None

    def _search_index(self) -> _TemplateIndex:
        """The cached template matrix, rebuilt when anything wrote to the file since it was built."""
        db = self._connection()
        with _sql_errors(self.path):
            version = int(db.execute("PRAGMA data_version").fetchone()[0])
            if self._index is None or version != self._data_version:
                self._model = _read_model(db, self.path)
                rows = db.execute(
                    "SELECT i.name, t.embedding FROM templates t JOIN identities i ON i.id = t.identity_id "
                    "ORDER BY t.identity_id, t.id"
                ).fetchall()
                self._index = _TemplateIndex.build(rows, self._model, self.path)
                self._data_version = version
        return self._index

    def _position(self, index: _TemplateIndex, name: str) -> int:
        try:
            return index.position[name]
        except (KeyError, TypeError):
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}") from None


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
        if model is None:
            if rows:
                raise GalleryFormatError(f"{path} holds templates but records no model: the file is damaged")
            return cls([], np.zeros(0, np.intp), np.zeros((0, 0), np.float32))
        width = model.embedding_size * _TEMPLATE_DTYPE.itemsize
        if any(not isinstance(blob, bytes) or len(blob) != width for _, blob in rows):
            raise GalleryFormatError(
                f"{path} holds templates that are not {model.embedding_size} float32 values"
            )
        names = [name for name, _ in groupby(row[0] for row in rows)]
        counts = np.array([len(list(group)) for _, group in groupby(row[0] for row in rows)], np.intp)
        flat = np.frombuffer(b"".join(blob for _, blob in rows), _TEMPLATE_DTYPE)
        return cls(names, counts, flat.astype(np.float32).reshape(len(rows), model.embedding_size))

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


# -- opening ------------------------------------------------------------------------------------------------


def _connect(path: Path, create: bool, timeout: float) -> sqlite3.Connection:
    """A connection to a checked gallery, initialising a new or empty file. Nothing is written to a file
    before it is known to be a gallery or empty, so a foreign or corrupt file is left as it was."""
    if path.exists():
        if not path.is_file():
            raise GalleryFormatError(f"{path} is not a file")
    elif not create:
        raise GalleryError(f"no gallery at {path}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _sql_errors(path):
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        with _sql_errors(path):
            if _is_empty(db, path):
                db.execute("BEGIN IMMEDIATE")
                try:
                    if _is_empty(db, path):  # re-checked under the lock: another process may have won
                        _initialise(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            # Only now that it is ours: WAL (readers never block the writer), zeroed deletes, durable commits.
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        db.close()
        raise
    return db


def _is_empty(db: sqlite3.Connection, path: Path) -> bool:
    """True for an empty database (new or 0-byte file), False for a gallery of this schema; raises for
    anything else. Reads only."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    if app_id == 0 and version == 0 and not tables:
        return True
    if app_id != APPLICATION_ID:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise GalleryFormatError(
            f"{path} is a SQLite database but not a squeezerface gallery (tables: {shown or 'none'}); "
            "it was left as it is"
        )
    if version != SCHEMA_VERSION:
        by = "a newer" if version > SCHEMA_VERSION else "an older"
        raise GalleryFormatError(
            f"{path} is a gallery of schema version {version} (written by {by} squeezerface); this one reads "
            f"version {SCHEMA_VERSION}"
        )
    missing = sorted(set(_TABLES) - set(tables))
    row = None if "meta" in missing else db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    if missing or row is None or row[0] != FORMAT:
        what = f"tables missing: {', '.join(missing)}" if missing else "no format mark in its meta table"
        raise GalleryFormatError(f"{path} is a damaged gallery ({what})")
    return False


def _initialise(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("format", FORMAT), ("schema", str(SCHEMA_VERSION)), ("created", _now())],
    )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


_MODEL_KEYS = ("model_name", "model_version", "embedding_size", "model_file", "model_sha256")


def _read_model(db: sqlite3.Connection, path: Path) -> ModelInfo | None:
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'model_%' OR key = 'embedding_size'"))
    if "model_name" not in meta:
        return None
    try:
        return ModelInfo(
            name=meta["model_name"],
            version=meta["model_version"],
            embedding_size=int(meta["embedding_size"]),
            file=meta.get("model_file", ""),
            sha256=meta.get("model_sha256", ""),
        )
    except (KeyError, ValueError, GalleryError) as exc:
        raise GalleryFormatError(f"{path} records an unreadable model ({exc})") from exc


def _ensure_model(db: sqlite3.Connection, path: Path, model: ModelInfo) -> ModelInfo:
    """The gallery's model, recording `model` if there is none yet; inside a write transaction."""
    recorded = _read_model(db, path)
    if recorded is None:
        values = (model.name, model.version, str(int(model.embedding_size)), model.file, model.sha256)
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)", list(zip(_MODEL_KEYS, values, strict=True))
        )
        return model
    if not recorded.compatible(model):
        raise ModelMismatchError(path, recorded, model)
    return recorded


def _model_id(db: sqlite3.Connection, model: ModelInfo) -> int:
    values = (model.name, model.version, int(model.embedding_size), model.file, model.sha256)
    db.execute(
        "INSERT OR IGNORE INTO models (name, version, embedding_size, file, sha256) VALUES (?, ?, ?, ?, ?)",
        values,
    )
    row = db.execute(
        "SELECT id FROM models "
        "WHERE name = ? AND version = ? AND embedding_size = ? AND file = ? AND sha256 = ?",
        values,
    ).fetchone()
    return int(row[0])


def _identity_info(db: sqlite3.Connection, identity_id: int, path: Path) -> IdentityInfo:
    row = db.execute(
        "SELECT i.name, COUNT(t.id), i.created, i.updated FROM identities i "
        "LEFT JOIN templates t ON t.identity_id = i.id WHERE i.id = ? GROUP BY i.id",
        (identity_id,),
    ).fetchone()
    return _info_from_row(row, path)


def _info_from_row(row: tuple[Any, ...], path: Path) -> IdentityInfo:
    name, count, created, updated = row
    try:
        return IdentityInfo(
            name, int(count), datetime.fromisoformat(created), datetime.fromisoformat(updated)
        )
    except (TypeError, ValueError) as exc:
        raise GalleryFormatError(f"{path}: unreadable enrolment time for {name!r} ({exc})") from exc


# -- checks -------------------------------------------------------------------------------------------------


@contextmanager
def _sql_errors(path: Path) -> Iterator[None]:
    """SQLite errors as typed gallery errors: a corrupt or non-database file is a `GalleryFormatError`,
    anything else (locked, read-only, disk full) a `GalleryError` naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        corrupt = (code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)) or any(
            sign in text for sign in ("malformed", "not a database")
        )
        if corrupt:
            raise GalleryFormatError(
                f"{path} is corrupt or not a squeezerface gallery ({text}); it was left as it is"
            ) from exc
        raise GalleryError(f"{path}: {text}") from exc


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


def _to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=_TEMPLATE_DTYPE).tobytes()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
