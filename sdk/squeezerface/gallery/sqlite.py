"""The gallery file on the SQLite side: its schema and header marks, opening and checking a file before
anything is written to it, transactions, waiting out busy moments, and SQLite errors as typed gallery errors.

A file that is not a gallery (corrupt, not SQLite, another program's database, a schema version this code
does not read) raises `GalleryFormatError` and is left byte for byte as it was: never reset or overwritten."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from squeezerface.crypto import TemplateCipher
from squeezerface.errors import GalleryBusyError, GalleryError, GalleryFormatError, GalleryReadOnlyError

SCHEMA_VERSION = 1
"""Stored as `PRAGMA user_version`; a gallery of another version is refused, never migrated silently."""

APPLICATION_ID = 0x53464731  # "SFG1"
"""`PRAGMA application_id`, in the SQLite header: a gallery is recognised before any table is read."""

FORMAT = "squeezerface-gallery"
_TABLES = ("identities", "meta", "models", "templates")
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 8, 11, 26

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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# -- opening -------------------------------------------------------------------------------------------------


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file a path names now, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _open_checked(
    path: Path, create: bool, timeout: float, cipher: TemplateCipher | None, readonly: bool = False
) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
    """`_connect`, made safe against the file being swapped while it opens (`encrypt_gallery` replaces the
    file under an exclusive lock, then overwrites the old one): opened again when the path named another
    file before the connection than after it. Returns the connection and the file's identity."""
    for attempt in range(3):
        before = _file_identity(path)
        try:
            db = _connect_readonly(path, timeout) if readonly else _connect(path, create, timeout, cipher)
        except GalleryFormatError:
            if attempt < 2 and before is not None and _file_identity(path) != before:
                continue  # read the old file while it was being overwritten: try the new one
            raise
        after = _file_identity(path)
        if before is None or after == before or attempt == 2:
            return db, after
        db.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _connect(
    path: Path, create: bool, timeout: float, cipher: TemplateCipher | None = None
) -> sqlite3.Connection:
    """A connection to a checked gallery, initialising a new or empty file (encrypted when there is a
    cipher). Nothing is written to a file before it is known to be a gallery or empty, so a foreign or
    corrupt file is left as it was. Busy moments (other processes creating or opening the same file) are
    retried for up to `timeout` seconds."""
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
            _retry_busy(lambda: _prepare(db, path, cipher), path, timeout)
    except BaseException:
        db.close()
        raise
    return db


def _connect_readonly(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection (commands that only read: list, identify): nothing is written, not even the
    journal mode, so a gallery on a read-only file, folder or mount opens. When SQLite cannot set up its
    shared-memory file beside a read-only WAL gallery, the file is opened as immutable (nobody can write
    it there anyway)."""
    if not path.exists():
        raise GalleryError(f"no gallery at {path}")
    if not path.is_file():
        raise GalleryFormatError(f"{path} is not a file")
    uri = path.resolve().as_uri()
    last: sqlite3.Error | None = None
    for mode in ("?mode=ro", "?mode=ro&immutable=1"):
        db = sqlite3.connect(uri + mode, uri=True, timeout=timeout, isolation_level=None)
        try:
            with _sql_errors(path):
                _retry_busy(lambda: _is_empty_now(db, path), path, timeout)  # noqa: B023
            return db
        except GalleryFormatError:
            db.close()
            raise
        except GalleryError as exc:
            db.close()
            last = exc.__cause__ if isinstance(exc.__cause__, sqlite3.Error) else None
            if mode.endswith("immutable=1"):
                raise
    raise GalleryError(f"{path}: {last}")  # pragma: no cover


def _prepare(db: sqlite3.Connection, path: Path, cipher: TemplateCipher | None) -> None:
    if _is_empty_now(db, path):
        db.execute("BEGIN IMMEDIATE")
        with _commit_or_roll_back(db):
            if _is_empty(db, path):  # re-checked under the lock: another process may have won
                _initialise(db, cipher)
    # Only now that it is ours: WAL (readers never block the writer), zeroed deletes, durable commits.
    db.execute("PRAGMA journal_mode=WAL").fetchone()
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA foreign_keys=ON")


def _is_empty_now(db: sqlite3.Connection, path: Path) -> bool:
    """`_is_empty` in one read transaction. Its three reads (application id, schema version, tables) must
    see one snapshot: read one by one, they could straddle another process's creation of the gallery and
    see the tables of a gallery whose header was not yet marked, a foreign database."""
    db.execute("BEGIN")
    try:
        return _is_empty(db, path)
    finally:
        _rollback(db)


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


def _initialise(db: sqlite3.Connection, cipher: TemplateCipher | None = None) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("format", FORMAT), ("schema", str(SCHEMA_VERSION)), ("created", _now())],
    )
    if cipher is not None:
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("encryption", cipher.scheme), ("key_check", cipher.check_value)],
        )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# -- transactions and errors ---------------------------------------------------------------------------------


def _rollback(db: sqlite3.Connection) -> None:
    """End the open transaction, if any, without its changes."""
    if db.in_transaction:
        db.execute("ROLLBACK")


@contextmanager
def _commit_or_roll_back(db: sqlite3.Connection) -> Iterator[None]:
    """COMMIT the transaction begun on `db` when the block ends, ROLLBACK on any exception: a write is
    all or nothing."""
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise


def _retry_busy(step: Any, path: Path, timeout: float) -> Any:
    """Run `step` (a SQLite call), retrying with jittered back-off while the database is busy. SQLite's
    busy handler already waits inside most calls; this covers the cases where SQLite reports busy without
    waiting (a journal-mode change, WAL recovery by another connection), up to `timeout` seconds."""
    deadline = time.monotonic() + max(0.0, timeout)
    pause = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())) * (0.5 + random.random()))
        pause = min(pause * 2, 0.2)


def _is_read_only(exc: sqlite3.Error, path: Path) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if (code is not None and code & 0xFF == _SQLITE_READONLY) or "readonly database" in str(exc):
        return True
    # "unable to open database file" for a write beside a gallery in a folder we may not write
    return "unable to open" in str(exc) and path.exists() and not os.access(path.parent, os.W_OK)


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc)


@contextmanager
def _sql_errors(path: Path) -> Iterator[None]:
    """SQLite errors as typed gallery errors: a corrupt or non-database file is a `GalleryFormatError`,
    anything else (locked, read-only, disk full) a `GalleryError` naming the file."""
    try:
        yield
    except UnicodeDecodeError as exc:  # sqlite3 decodes text columns (names, the schema) as UTF-8
        raise GalleryFormatError(
            f"{path} is corrupt: it holds text that is not UTF-8 ({exc.reason}); it was left as it is"
        ) from exc
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        corrupt = (code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)) or any(
            sign in text
            for sign in (
                "malformed",
                "not a database",
                "Could not decode to UTF-8",
                "no such column",
                "no such table",
            )
        )  # a missing column or table: the file's schema is damaged (this module's queries are fixed)
        if corrupt:
            raise GalleryFormatError(
                f"{path} is corrupt or not a squeezerface gallery ({text}); it was left as it is"
            ) from exc
        if _is_read_only(exc, path):
            raise GalleryReadOnlyError(
                f"no permission to write {path} (a read-only file, folder or mount); nothing was written"
            ) from exc
        if _is_busy(exc):
            raise GalleryBusyError(
                f"{path} is busy: another connection held its lock past the timeout ({text}); nothing was "
                "written, try again"
            ) from exc
        raise GalleryError(f"{path}: {text}") from exc
