"""`Gallery`: enrol, verify (1:1), identify (1:N), list and forget the people of one SQLite file.

Every write is one `BEGIN IMMEDIATE ... COMMIT` (all or nothing, even across a crash); searches run on a
cached `_TemplateIndex`, dropped on any write of this handle and rebuilt when `PRAGMA data_version` shows
another connection's. The handle checks before each use that its path still names the file it opened."""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface.crypto import template_aad
from squeezerface.errors import (
    GalleryError,
    GalleryReadOnlyError,
    ModelMismatchError,
    UnknownIdentityError,
)
from squeezerface.gallery.checks import (
    _check_aggregate,
    _check_name,
    _check_probe,
    _check_templates,
    _check_threshold,
)
from squeezerface.gallery.index import _TemplateIndex, _to_blob
from squeezerface.gallery.keys import _check_encryption, _cipher_for
from squeezerface.gallery.records import Aggregate, Candidate, IdentityInfo, ModelInfo, Verification
from squeezerface.gallery.rows import _ensure_model, _identity_id, _model_id, _read_identities, _read_model
from squeezerface.gallery.sqlite import (
    _commit_or_roll_back,
    _file_identity,
    _now,
    _open_checked,
    _retry_busy,
    _sql_errors,
)

DUPLICATE_COSINE = 0.999
"""Cosine at or above which a new template is taken for a photo already enrolled (`Gallery.duplicates`)."""


class Gallery:
    """Enrolled identities in one SQLite file: `enroll`, `verify` (1:1), `identify` (1:N), `identities`,
    `forget`. Use as a context manager, or call `close`.

    `model` is the embedding model of the caller. On a new gallery it is recorded; on an existing one it must
    match the recorded model (`ModelMismatchError` otherwise). Opening without a model is enough to list,
    search or forget, but writing templates needs one (here or per `enroll` call), so templates of an unknown
    model never get in. `create=False` refuses a missing file instead of creating an empty gallery.
    `aggregate` is the default way to score an identity with several templates: "mean" (cosine to the
    renormalised mean of its templates, robust to one poor photo) or "best" (highest cosine over templates,
    kinder to varied poses, but one bad template can make false accepts).

    `key` (32 bytes, or text: 64 hex digits or base64) or `key_file` (a path) turn on encryption at rest;
    when neither is given, $SQUEEZERFACE_GALLERY_KEY or $SQUEEZERFACE_GALLERY_KEY_FILE are used if set, and
    `key=False` ignores them (plaintext only). A new gallery opened with a key is created encrypted; an
    existing one must match: `GalleryKeyError` for an encrypted gallery without its key or with another
    key, and for a key given to a plaintext gallery (see `encrypt_gallery`). `timeout`: seconds to wait
    for another connection's write lock before `GalleryBusyError`. `readonly=True` opens the file without
    writing anything to it (list, identify, verify on a read-only file or mount); writes then raise
    `GalleryReadOnlyError`, as they do on a file this process may not write."""

    def __init__(
        self,
        path: str | Path,
        model: ModelInfo | None = None,
        *,
        aggregate: Aggregate = "mean",
        create: bool = True,
        timeout: float = 10.0,
        key: bytes | str | Literal[False] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.aggregate: Aggregate = _check_aggregate(aggregate)
        self.timeout = float(timeout)
        self._opened_with = model
        self._index: _TemplateIndex | None = None
        self._data_version: int | None = None
        self._cipher = _cipher_for(key, key_file)
        self._db: sqlite3.Connection | None = None
        self.readonly = bool(readonly)
        self._db, self._file = _open_checked(self.path, create, timeout, self._cipher, self.readonly)
        try:
            with _sql_errors(self.path):
                self._cipher = _check_encryption(self._db, self.path, self._cipher)
                self._model = _read_model(self._db, self.path)
            if self.readonly and model is not None and self._model is not None:
                if not self._model.compatible(model):
                    raise ModelMismatchError(self.path, self._model, model)
            elif model is not None and (self._model is None or not self._model.compatible(model)):
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

    @property
    def encrypted(self) -> bool:
        """Whether the templates are encrypted at rest (the gallery was opened with its key)."""
        return self._cipher is not None

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
            identity_id = _identity_id(db, name)
            if identity_id is None:
                identity_id = db.execute(
                    "INSERT INTO identities (name, created, updated) VALUES (?, ?, ?)", (name, now, now)
                ).lastrowid
            else:
                if replace:
                    db.execute("DELETE FROM templates WHERE identity_id = ?", (identity_id,))
                db.execute("UPDATE identities SET updated = ? WHERE id = ?", (now, identity_id))
            aad = template_aad(name, self._model.key) if self._cipher is not None else b""
            for vector in vectors:  # one row at a time: the transaction, not the batch, makes it atomic
                blob = _to_blob(vector)
                if self._cipher is not None:  # plaintext never reaches SQLite, so never the disk
                    blob = self._cipher.encrypt(blob, aad)
                db.execute(
                    "INSERT INTO templates (identity_id, model_id, embedding, created) VALUES (?, ?, ?, ?)",
                    (identity_id, model_id, blob, now),
                )
            info = _read_identities(db, self.path, identity_id)[0]
        return info

    def forget(self, name: str, vacuum: bool = False) -> int:
        """Delete a person and every template of theirs; returns how many templates went. Deleted bytes are
        zeroed (secure_delete) and the write-ahead log is checkpointed and truncated, so the templates are
        gone from disk, not merely unlinked. `vacuum=True` also rebuilds the file to drop the freed pages
        (slower; it rewrites the whole file)."""
        with self._transaction() as db:
            identity_id = _identity_id(db, name)
            if identity_id is None:
                raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
            removed = db.execute("DELETE FROM templates WHERE identity_id = ?", (identity_id,)).rowcount
            db.execute("DELETE FROM identities WHERE id = ?", (identity_id,))
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
            return _read_identities(db, self.path)

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

    def duplicates(
        self, embeddings: np.ndarray | Sequence[Sequence[float]], min_cosine: float = DUPLICATE_COSINE
    ) -> list[list[str]]:
        """For each embedding ((N, D) or one (D,)), the identities already holding a template of the same
        photo: cosine >= `min_cosine` to one of their templates. The face path is deterministic, so the
        same photo gives the same embedding (cosine 1.0) and a re-encoded copy one within 1e-3; two
        different photos of one person score far lower. Works on encrypted galleries, stores nothing."""
        index = self._search_index()
        vectors = np.atleast_2d(np.asarray(embeddings, np.float32))
        if not index.names or len(vectors) == 0:
            return [[] for _ in vectors]
        probes = np.stack([_check_probe(v, index.dim) for v in vectors])
        owner = np.repeat(np.arange(len(index.names)), index.counts)
        hits = probes @ index.matrix.T >= min_cosine
        return [sorted({index.names[owner[j]] for j in np.flatnonzero(row)}) for row in hits]

    # -- internals ------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise GalleryError(f"the gallery {self.path} is closed")
        self._check_same_file()
        return self._db

    def _check_same_file(self) -> None:
        """Raise if the path no longer names the file this handle has open (replaced by `encrypt_gallery`,
        or removed): writes would go to a file nobody opens again."""
        if _file_identity(self.path) != self._file:
            raise GalleryError(
                f"{self.path} was replaced or removed since this handle opened it (encrypted by "
                "`squeezerface encrypt`?): open the gallery again"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT. IMMEDIATE takes the write lock up front, so a concurrent writer waits
        (busy timeout) instead of failing halfway; any exception rolls back, and a crash is rolled back by
        SQLite when the file is next opened. The search cache is dropped either way."""
        db = self._connection()
        if self.readonly:
            raise GalleryReadOnlyError(
                f"{self.path} was opened read-only (readonly=True); nothing was written"
            )
        try:
            with _sql_errors(self.path):
                _retry_busy(lambda: db.execute("BEGIN IMMEDIATE"), self.path, self.timeout)
                with _commit_or_roll_back(db):
                    self._check_same_file()  # now under the write lock: the file cannot be swapped
                    yield db
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
                    "SELECT i.name, t.embedding, t.id FROM templates t JOIN identities i "
                    "ON i.id = t.identity_id ORDER BY t.identity_id, t.id"
                ).fetchall()
                self._index = _TemplateIndex.build(self._decrypted(rows), self._model, self.path)
                self._data_version = version
        return self._index

    def _decrypted(self, rows: list[tuple[str, bytes, int]]) -> list[tuple[str, bytes]]:
        """(name, template bytes) of each row; decrypted and authenticated when the gallery is encrypted."""
        if self._cipher is None or self._model is None:
            return [(name, blob) for name, blob, _ in rows]
        key, cipher, out = self._model.key, self._cipher, []
        for name, blob, row_id in rows:
            what = f"template {row_id} of {name!r} in {self.path}"
            out.append((name, cipher.decrypt(blob, template_aad(name, key), what)))
        return out

    def _position(self, index: _TemplateIndex, name: str) -> int:
        try:
            return index.position[name]
        except (KeyError, TypeError):
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}") from None
