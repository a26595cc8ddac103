"""Which key a gallery is opened with, and whether it fits the gallery: an encrypted gallery needs its own
key, and a plaintext one takes none, so that templates are never written in the clear by mistake."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from squeezerface.crypto import ENV_KEY, ENV_KEY_FILE, SCHEMES, TemplateCipher, resolve_key
from squeezerface.errors import GalleryFormatError, GalleryKeyError


def _cipher_for(key: object, key_file: str | os.PathLike[str] | None) -> TemplateCipher | None:
    """The template cipher for the configured key (arguments, else the environment), or None."""
    if key is False:
        if key_file is not None:
            raise GalleryKeyError("key=False (no encryption) and a key file contradict each other")
        return None
    if key is not None and not isinstance(key, bytes | bytearray | str):
        raise GalleryKeyError(f"key must be bytes, text or False, got {type(key).__name__}")
    raw = resolve_key(key, key_file)  # type: ignore[arg-type]
    return None if raw is None else TemplateCipher(raw)


def _check_encryption(
    db: sqlite3.Connection, path: Path, cipher: TemplateCipher | None
) -> TemplateCipher | None:
    """The gallery's encryption and the configured key go together, or GalleryKeyError. Returns the cipher
    for the scheme the gallery records (a gallery encrypted before HKDF keeps its HMAC-derived keys)."""
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('encryption', 'key_check')"))
    scheme = meta.get("encryption")
    if scheme is None:
        if cipher is not None:
            raise GalleryKeyError(
                f"{path} is not encrypted, but a gallery key is configured: encrypt it first "
                f"(squeezerface encrypt --db {path}), or open it without a key (unset ${ENV_KEY} and "
                f"${ENV_KEY_FILE}) to use it unencrypted"
            )
        return None
    if scheme not in SCHEMES:
        raise GalleryFormatError(f"{path} is encrypted with {scheme!r}, which this squeezerface cannot read")
    if cipher is None:
        raise GalleryKeyError(
            f"{path} is encrypted: give its key (key= or key_file=, or ${ENV_KEY} or ${ENV_KEY_FILE})"
        )
    cipher = cipher.for_scheme(scheme)
    if not cipher.matches(meta.get("key_check", "")):
        raise GalleryKeyError(f"wrong key for {path}: it was encrypted with another key")
    return cipher
