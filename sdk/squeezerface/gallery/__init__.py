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

With a key (`key=`, `key_file=`, or $SQUEEZERFACE_GALLERY_KEY / $SQUEEZERFACE_GALLERY_KEY_FILE), templates
are encrypted at rest with AES-256-GCM (`squeezerface.crypto`): SQLite only ever sees ciphertext, so no
plaintext template reaches the file, its write-ahead log or SQLite's temporary files. An encrypted gallery
opened without its key, or with a wrong one, raises `GalleryKeyError` at open; a key given for a plaintext
gallery too (encrypt it first: `encrypt_gallery`, or `squeezerface encrypt --db F`), so templates are never
written in the clear by mistake. Names, times and counts stay readable.

Concurrency: any number of processes may open one gallery; writes are serialised by SQLite's write lock
(waited for up to `timeout` seconds, then `GalleryBusyError`), reads never block. A handle notices when its
file was replaced or removed under it (as `encrypt_gallery` does) and raises instead of writing to a file
nobody will read.

Limits of deletion: overwriting (secure_delete, WAL truncation, the overwrite of a replaced plaintext file)
works on the file's blocks as the filesystem maps them. Copy-on-write and journaling filesystems (btrfs,
ZFS, APFS, ext4 with data=journal), SSD wear levelling, snapshots and backups may keep older copies that no
program can reach; against those, configure the key before the first enrolment (then only ciphertext was
ever written) and use full-disk encryption.

Search sits behind `_TemplateIndex` (`index.py`); an approximate index (FAISS) for galleries too large for
exact search would offer the same two methods, and nothing else would change.

Modules: `records` (ModelInfo and the result records), `checks` (arguments), `index` (templates as stored
and searched), `sqlite` (schema, opening, transactions, errors), `keys` (the key fits the gallery), `rows`
(model and identity rows), `store` (`Gallery`), `encrypt` (`encrypt_gallery`).
"""

from squeezerface.gallery.encrypt import encrypt_gallery
from squeezerface.gallery.records import (
    AGGREGATES,
    Aggregate,
    Candidate,
    EncryptionResult,
    IdentityInfo,
    ModelInfo,
    Verification,
)
from squeezerface.gallery.sqlite import APPLICATION_ID, FORMAT, SCHEMA_VERSION
from squeezerface.gallery.store import Gallery

__all__ = [
    "AGGREGATES",
    "APPLICATION_ID",
    "FORMAT",
    "SCHEMA_VERSION",
    "Aggregate",
    "Candidate",
    "EncryptionResult",
    "Gallery",
    "IdentityInfo",
    "ModelInfo",
    "Verification",
    "encrypt_gallery",
]
