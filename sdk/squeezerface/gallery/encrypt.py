"""`encrypt_gallery`: a plaintext gallery encrypted in place, through a checked encrypted copy that
atomically replaces the original, whose bytes are then overwritten (best effort: the limits of deletion
are in the `squeezerface.gallery` doc)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezerface.crypto import ENV_KEY, ENV_KEY_FILE, TemplateCipher, resolve_key, template_aad
from squeezerface.errors import GalleryBusyError, GalleryError, GalleryFormatError, GalleryKeyError
from squeezerface.gallery.index import _template_width, _to_blob
from squeezerface.gallery.records import EncryptionResult, ModelInfo
from squeezerface.gallery.rows import _read_model
from squeezerface.gallery.sqlite import (
    _connect,
    _file_identity,
    _is_busy,
    _open_checked,
    _rollback,
    _sql_errors,
)
from squeezerface.gallery.store import Gallery


def encrypt_gallery(
    path: str | Path,
    key: bytes | str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 10.0,
) -> EncryptionResult:
    """Encrypt a plaintext gallery in place, safely: nothing in the original changes until an encrypted copy
    is complete, durable and checked.

    1. The gallery is checked (a squeezerface gallery, `PRAGMA integrity_check` ok, not encrypted yet) and
       locked exclusively; it must not be open anywhere else (`GalleryBusyError` otherwise: close every
       program using it and run again).
    2. An encrypted copy is written to a temporary file in the same folder (same ids, names, times,
       models), fsynced, and opened again with the key to check that it decrypts to exactly the same
       templates of the same people.
    3. The copy atomically replaces the original (`os.replace`, then the folder is fsynced), so a crash
       leaves either the old plaintext gallery or the new encrypted one, never a mix (a crash before this
       point may leave a `.NAME.encrypting-*` file of ciphertext beside it, safe to delete).
    4. The old file's bytes are overwritten with zeros and fsynced before it is released (best effort:
       see the `squeezerface.gallery` doc for what a filesystem may keep; the old write-ahead log was
       only truncated).

    The key: `key`/`key_file`, else $SQUEEZERFACE_GALLERY_KEY / $SQUEEZERFACE_GALLERY_KEY_FILE."""
    path = Path(path)
    raw = resolve_key(key, key_file)
    if raw is None:
        raise GalleryKeyError(
            f"no key to encrypt {path} with: give key= or key_file=, or set ${ENV_KEY} or ${ENV_KEY_FILE}"
        )
    cipher = TemplateCipher(raw)
    db, identity = _open_checked(path, False, timeout, None)
    old_fd: int | None = None
    tmp: Path | None = None
    try:
        plain = _read_locked(db, path, identity)
        old_fd = os.open(path, os.O_RDWR)  # closed last: closing it drops this process's SQLite locks

        tmp = _new_temp_beside(path)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        _write_copy(tmp, timeout, cipher, plain)
        _fsync_file(tmp)
        _check_copy(tmp, raw, timeout, plain.people, plain.rows, plain.names)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
        overwritten = _overwrite(old_fd, path)
    except BaseException:
        if tmp is not None:
            _remove_copy(tmp)
        raise
    finally:
        with suppress(sqlite3.Error):
            _rollback(db)
        db.close()
        if old_fd is not None:
            os.close(old_fd)
    return EncryptionResult(path, len(plain.people), len(plain.rows), overwritten)


@dataclass(frozen=True)
class _Plaintext:
    """Every row of the locked plaintext gallery, read once: what the encrypted copy is written from and
    checked against."""

    model: ModelInfo | None
    meta: list[tuple[Any, ...]]
    models: list[tuple[Any, ...]]
    people: list[tuple[Any, ...]]
    rows: list[tuple[Any, ...]]
    names: dict[int, str]


def _read_locked(db: sqlite3.Connection, path: Path, identity: tuple[int, int] | None) -> _Plaintext:
    """Check the plaintext gallery, lock it exclusively and read all of it: nothing may change between
    this read and the copy replacing the file, and a damaged or already encrypted gallery is refused
    before anything is written."""
    with _sql_errors(path):
        if db.execute("SELECT 1 FROM meta WHERE key = 'encryption'").fetchone() is not None:
            raise GalleryKeyError(f"{path} is already encrypted")
        _lock_exclusively(db, path, identity)
        check = db.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise GalleryFormatError(f"{path} fails its integrity check ({check[:3]}); it was not encrypted")
        model = _read_model(db, path)
        meta = db.execute(
            "SELECT key, value FROM meta WHERE key NOT IN ('encryption', 'key_check')"
        ).fetchall()
        models = db.execute("SELECT id, name, version, embedding_size, file, sha256 FROM models").fetchall()
        people = db.execute("SELECT id, name, created, updated FROM identities ORDER BY id").fetchall()
        rows = db.execute(
            "SELECT id, identity_id, model_id, embedding, created FROM templates ORDER BY id"
        ).fetchall()
    names = {row[0]: row[1] for row in people}
    width = _template_width(model, len(rows), path)
    if any(r[1] not in names or not isinstance(r[3], bytes) or len(r[3]) != width for r in rows):
        raise GalleryFormatError(f"{path} holds damaged templates; it was not encrypted")
    return _Plaintext(model, meta, models, people, rows, names)


def _lock_exclusively(db: sqlite3.Connection, path: Path, identity: tuple[int, int] | None) -> None:
    """Prove that no other program has the gallery open (leaving WAL mode needs every other connection
    closed), then hold an exclusive lock on the very file that was checked, so nobody reads or writes
    until the copy has replaced it."""
    try:
        mode = db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
        mode = "wal"
    if str(mode).lower() != "delete":
        raise GalleryBusyError(f"{path} is open in another program: close it and encrypt again")
    db.execute("BEGIN EXCLUSIVE")  # nobody reads or writes until the copy has replaced it
    if _file_identity(path) != identity:
        raise GalleryError(f"{path} was replaced while it was being opened: run encrypt again")


def _new_temp_beside(path: Path) -> Path:
    """An empty, uniquely named file in the gallery's own folder, so that `os.replace` onto the gallery
    is an atomic rename on one filesystem."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.encrypting-", dir=path.parent)
    os.close(handle)
    return Path(name)


def _write_copy(tmp: Path, timeout: float, cipher: TemplateCipher, plain: _Plaintext) -> None:
    """Write the encrypted copy in one transaction: the same ids, names, times and models, every template
    sealed with its person's name and model as associated data."""
    model, names = plain.model, plain.names
    copy = _connect(tmp, True, timeout, cipher)
    try:
        with _sql_errors(tmp):
            copy.execute("BEGIN IMMEDIATE")
            copy.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", plain.meta)
            copy.executemany(
                "INSERT INTO models (id, name, version, embedding_size, file, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                plain.models,
            )
            copy.executemany(
                "INSERT INTO identities (id, name, created, updated) VALUES (?, ?, ?, ?)", plain.people
            )
            for row_id, person, model_id, blob, created in plain.rows:
                assert model is not None
                sealed = cipher.encrypt(blob, template_aad(names[person], model.key))
                copy.execute(
                    "INSERT INTO templates (id, identity_id, model_id, embedding, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (row_id, person, model_id, sealed, created),
                )
            copy.execute("COMMIT")
    finally:
        copy.close()  # the last connection: SQLite checkpoints and removes the copy's log


def _remove_copy(tmp: Path) -> None:
    """Delete an unfinished encrypted copy and SQLite's files beside it, so a failed run leaves only the
    untouched original."""
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)


def _check_copy(
    tmp: Path,
    key: bytes,
    timeout: float,
    people: list[tuple[Any, ...]],
    rows: list[tuple[Any, ...]],
    names: dict[int, str],
) -> None:
    """The encrypted copy opens with the key, passes its integrity check and decrypts to exactly the
    original templates of the same people, in the same order."""
    with Gallery(tmp, create=False, key=key, timeout=timeout) as check:
        db = check._connection()
        with _sql_errors(tmp):
            ok = db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        listed = [(p.name, p.created.isoformat(), p.updated.isoformat()) for p in check.identities()]
        expected = sorted((name, created, updated) for _, name, created, updated in people)
        by_person: dict[str, list[bytes]] = {}
        for _, person, _, blob, _ in rows:
            by_person.setdefault(names[person], []).append(blob)
        same = ok and sorted(listed) == expected
        for name, blobs in by_person.items():
            if not same:
                break
            same = _to_blob(check.templates(name)) == b"".join(blobs)
    if not same:
        raise GalleryError(f"the encrypted copy {tmp} does not match the original; the original was kept")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _overwrite(fd: int, path: Path) -> bool:
    """Overwrite a file's bytes with zeros through an open descriptor and fsync them; False (with a
    warning) when that failed."""
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(size, 1 << 20))
        os.lseek(fd, 0, os.SEEK_SET)
        written = 0
        while written < size:
            written += os.write(fd, zeros[: size - written])
        os.fsync(fd)
        return True
    except OSError as exc:
        warnings.warn(f"could not overwrite the old plaintext copy of {path}: {exc}", stacklevel=3)
        return False
