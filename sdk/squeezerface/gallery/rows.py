"""The gallery's records in its tables: the model recorded in `meta` (one per gallery, checked on every
write), the `models` rows that say which file made each template, and the enrolled identities."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from squeezerface.errors import GalleryError, GalleryFormatError, ModelMismatchError
from squeezerface.gallery.records import IdentityInfo, ModelInfo

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


def _identity_id(db: sqlite3.Connection, name: str) -> int | None:
    """The row id of the identity called `name`, or None."""
    row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def _read_identities(
    db: sqlite3.Connection, path: Path, identity_id: int | None = None
) -> list[IdentityInfo]:
    """Enrolled people with their template counts, by name: every one, or the one with `identity_id`."""
    where, params = ("WHERE i.id = ? ", (identity_id,)) if identity_id is not None else ("", ())
    rows = db.execute(
        "SELECT i.name, COUNT(t.id), i.created, i.updated FROM identities i "
        f"LEFT JOIN templates t ON t.identity_id = i.id {where}GROUP BY i.id ORDER BY i.name",
        params,
    ).fetchall()
    return [_info_from_row(row, path) for row in rows]


def _info_from_row(row: tuple[Any, ...], path: Path) -> IdentityInfo:
    name, count, created, updated = row
    try:
        return IdentityInfo(
            name, int(count), datetime.fromisoformat(created), datetime.fromisoformat(updated)
        )
    except (TypeError, ValueError) as exc:
        raise GalleryFormatError(f"{path}: unreadable enrolment time for {name!r} ({exc})") from exc
