"""Encryption of gallery templates at rest: AES-256-GCM, one random 96-bit nonce per template.

Face templates are biometric data: whoever copies a plaintext gallery can match those people anywhere. When
a key is configured, `squeezerface.gallery.Gallery` hands SQLite only ciphertext, so no plaintext template
ever reaches the gallery file, its write-ahead log or SQLite's temporary files.

The key: 32 random bytes, given (first match wins)
- to `Gallery(path, model, key=...)` as bytes, 64 hex digits or base64 text, or `key_file=PATH`;
- else in the environment: `SQUEEZERFACE_GALLERY_KEY` (hex or base64) or `SQUEEZERFACE_GALLERY_KEY_FILE`
  (a path). Setting both is an error, not a guess.
A key file holds the key as hex or base64 text (one line) or as exactly 32 raw bytes; make one with
`write_key_file` (or `squeezerface encrypt --new-key`), which creates it readable by its owner only. A key
file that others can read is used, with a warning.

What is stored: each template as `0x01 | nonce (12 bytes) | ciphertext | tag (16 bytes)`. The associated
data (authenticated, not stored) is the identity's name and the embedding model (name, version, size), so
a template moved to another person or model fails authentication (`TemplateIntegrityError`) instead of
silently matching them. The gallery records its scheme (`encryption`) and a key check value, so a wrong key
is refused at open with `GalleryKeyError`, before any template is read. The AES key and the check value are
two keys derived from the configured key by HKDF-SHA256 (RFC 5869, `cryptography`'s HKDF) with distinct
`info` labels, so the stored check value says nothing about the AES key (scheme `aes-256-gcm-v2`).

Galleries encrypted before HKDF (scheme `aes-256-gcm-v1`: both keys were HMAC-SHA256(key, label)) keep
working: the scheme a gallery records decides the derivation, so they are read and written as they were
(the scheme is the version field; a new gallery is always created with `SCHEME`).

Not encrypted: identity names, enrolment times, template counts and the model's name (the gallery needs
them to work without decrypting everything). Decrypted templates live in the process's memory while a
gallery is searched (this module cannot stop the operating system from swapping it out: use encrypted
swap or full-disk encryption). Random nonces are safe for about 2**32 templates per key.

`cryptography` is an optional dependency (`pip install 'squeezerface[crypto]'`): it is imported only when a
key is used, and its absence then raises `CryptoUnavailableError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

from squeezerface.errors import CryptoUnavailableError, GalleryKeyError, TemplateIntegrityError

ENV_KEY = "SQUEEZERFACE_GALLERY_KEY"
"""Environment variable holding the gallery key as 64 hex digits or base64."""

ENV_KEY_FILE = "SQUEEZERFACE_GALLERY_KEY_FILE"
"""Environment variable holding the path of a key file."""

SCHEME = "aes-256-gcm-v2"
"""What a gallery encrypted now records as its `encryption`: per-purpose keys by HKDF-SHA256."""

SCHEME_V1 = "aes-256-gcm-v1"
"""Galleries encrypted before HKDF: per-purpose keys by HMAC-SHA256(key, label). Read and written as they
were, so that galleries made by earlier versions keep working."""

SCHEMES = (SCHEME, SCHEME_V1)
"""Every scheme this squeezerface reads; a gallery recording another is refused."""

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_BLOB_VERSION = b"\x01"
_LABELS = {  # scheme -> (label of the AES key, label of the key check value)
    SCHEME_V1: (b"squeezerface gallery template encryption v1", b"squeezerface gallery key check v1"),
    SCHEME: (b"squeezerface gallery template encryption v2", b"squeezerface gallery key check v2"),
}
_MAX_KEY_FILE = 4096


def parse_key(value: bytes | bytearray | str, what: str = "the gallery key") -> bytes:
    """32 key bytes from raw bytes or from text holding 64 hex digits or base64 (standard or URL-safe).
    Raises GalleryKeyError (never quoting the value) for anything else."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if len(raw) == KEY_BYTES:
            return raw
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise GalleryKeyError(
                f"{what} is {len(raw)} bytes: a key is {KEY_BYTES} random bytes, or text (64 hex digits or "
                "base64)"
            ) from None
    elif isinstance(value, str):
        text = value
    else:
        raise GalleryKeyError(f"{what} must be bytes or text, got {type(value).__name__}")
    text = text.strip()
    decoded: bytes | None = None
    if len(text) == 2 * KEY_BYTES:
        try:
            decoded = bytes.fromhex(text)
        except ValueError:
            decoded = None
    if decoded is None:
        padded = (text + "=" * (-len(text) % 4)).encode("ascii", "replace")
        for altchars in (None, b"-_"):  # standard or URL-safe base64
            try:
                decoded = base64.b64decode(padded, altchars=altchars, validate=True)
            except (binascii.Error, ValueError):
                decoded = None
                continue
            if len(decoded) == KEY_BYTES:
                break
    if decoded is None or len(decoded) != KEY_BYTES:
        raise GalleryKeyError(
            f"{what} is not a {KEY_BYTES}-byte key written as 64 hex digits or base64 "
            f"(make one with squeezerface.crypto.generate_key or `squeezerface encrypt --new-key`)"
        )
    return decoded


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key in a key file (hex or base64 text, or 32 raw bytes). Warns when others may read the file."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise GalleryKeyError(f"key file {p} is not a regular file")
        if st.st_size > _MAX_KEY_FILE:
            raise GalleryKeyError(f"key file {p} is {st.st_size} bytes: too large to be a key file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise GalleryKeyError(f"no key file at {p}") from None
    except OSError as exc:
        raise GalleryKeyError(f"cannot read key file {p} ({exc.strerror or exc})") from None
    if os.name == "posix" and st.st_mode & 0o077:
        warnings.warn(
            f"key file {p} can be read by other users (mode {stat.S_IMODE(st.st_mode):o}): chmod 600 it",
            stacklevel=3,
        )
    return parse_key(data, f"the key in {p}")


def resolve_key(
    key: bytes | bytearray | str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes | None:
    """The configured key: `key` or `key_file` when given, else $SQUEEZERFACE_GALLERY_KEY or
    $SQUEEZERFACE_GALLERY_KEY_FILE, else None (no encryption)."""
    if key is not None and key_file is not None:
        raise GalleryKeyError("give the gallery key or a key file, not both")
    if key is not None:
        return parse_key(key)
    if key_file is not None:
        return read_key_file(key_file)
    env = os.environ if environ is None else environ
    text, file = env.get(ENV_KEY) or None, env.get(ENV_KEY_FILE) or None
    if text is not None and file is not None:
        raise GalleryKeyError(f"both {ENV_KEY} and {ENV_KEY_FILE} are set: set one")
    if text is not None:
        return parse_key(text, f"${ENV_KEY}")
    if file is not None:
        return read_key_file(file)
    return None


def generate_key() -> bytes:
    """32 bytes from the operating system's random source."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str | os.PathLike[str], key: bytes | None = None) -> Path:
    """Write `key` (a new random one by default) as base64 to a new file readable by its owner only
    (mode 600); an existing file is never overwritten (GalleryKeyError)."""
    p = Path(path)
    raw = parse_key(key) if key is not None else generate_key()
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GalleryKeyError(
            f"{p} exists: a key file is never overwritten (a lost key loses the gallery)"
        ) from None
    except OSError as exc:
        raise GalleryKeyError(f"cannot create key file {p} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(raw) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return p


def derive_key(key: bytes, label: bytes, scheme: str = SCHEME) -> bytes:
    """32 bytes for one purpose (`label`) from the gallery key: HKDF-SHA256 (no salt: the key is already
    uniformly random; `info` = the label) for `SCHEME`, HMAC-SHA256(key, label) for `SCHEME_V1`."""
    if scheme == SCHEME_V1:
        return hmac.new(key, label, hashlib.sha256).digest()
    if scheme != SCHEME:
        raise ValueError(f"unknown encryption scheme {scheme!r}")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(key)


def key_check_value(key: bytes, scheme: str = SCHEME) -> str:
    """Hex of the key-check key derived from `key`: stored in an encrypted gallery to recognise the right
    key at open (a PRF output under its own label: it reveals nothing about the key or the AES key)."""
    return derive_key(key, _LABELS[scheme][1], scheme).hex()


def template_aad(identity: str, model_key: tuple[str, str, int]) -> bytes:
    """Associated data of a template: the identity's name and the model (name, version, embedding size),
    unambiguously encoded."""
    name, version, size = model_key
    return json.dumps(["squeezerface-template-v1", identity, name, version, int(size)]).encode("utf-8")


class TemplateCipher:
    """AES-256-GCM for templates under one gallery key. Construct with the 32 key bytes; `scheme` (the one a
    gallery records) decides how the AES key and the check value are derived from them."""

    def __init__(self, key: bytes, scheme: str = SCHEME) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise CryptoUnavailableError(
                "a gallery key is configured, and encrypted galleries need the cryptography package: "
                "pip install 'squeezerface[crypto]'",
                extra="crypto",
            ) from exc
        key = parse_key(key)
        if scheme not in SCHEMES:
            raise ValueError(f"unknown encryption scheme {scheme!r}")
        self.scheme = scheme
        self._key = key
        self._aead = AESGCM(derive_key(key, _LABELS[scheme][0], scheme))
        self._invalid_tag = InvalidTag
        self.check_value = key_check_value(key, scheme)

    def for_scheme(self, scheme: str) -> TemplateCipher:
        """This key under another scheme (the one a gallery being opened records)."""
        return self if scheme == self.scheme else TemplateCipher(self._key, scheme)

    def matches(self, check_value: str) -> bool:
        """Whether a gallery's stored check value is this key's (constant-time)."""
        return hmac.compare_digest(self.check_value.encode("ascii"), str(check_value).encode("ascii"))

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return _BLOB_VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes, what: str = "a template") -> bytes:
        """The plaintext of `blob`; TemplateIntegrityError when it was changed or belongs elsewhere."""
        if (
            not isinstance(blob, bytes)
            or len(blob) < 1 + NONCE_BYTES + TAG_BYTES
            or blob[:1] != _BLOB_VERSION
        ):
            raise TemplateIntegrityError(f"{what} is not an encrypted template of this squeezerface")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except self._invalid_tag:
            raise TemplateIntegrityError(
                f"{what} fails authentication: its bytes were changed, or it was moved from another "
                "identity or model"
            ) from None
