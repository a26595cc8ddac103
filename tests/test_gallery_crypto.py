"""Templates encrypted at rest: key configuration, wrong or missing keys, no plaintext on disk, templates
bound to their identity and model, in-place encryption of a plaintext gallery (safe, checked, old bytes
overwritten), the `encrypt` command, and the optional `cryptography` dependency."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_MISSING_DEPENDENCY, EXIT_OK, main
from squeezerface.crypto import (
    ENV_KEY,
    ENV_KEY_FILE,
    generate_key,
    parse_key,
    resolve_key,
    template_aad,
    write_key_file,
)
from squeezerface.errors import (
    CryptoUnavailableError,
    EmbedderUnavailableError,
    GalleryBusyError,
    GalleryError,
    GalleryFormatError,
    GalleryKeyError,
    TemplateIntegrityError,
)
from squeezerface.gallery import Gallery, ModelInfo, encrypt_gallery
from squeezerface.gallery import encrypt as encrypt_module

pytest.importorskip("cryptography", reason="encrypted galleries need the crypto extra")

D = 16
MODEL = ModelInfo("toy", "1.0", D, file="toy-int8.onnx", sha256="ab" * 32)


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)


@pytest.fixture
def key() -> bytes:
    return generate_key()


def people(n: int = 3, shots: int = 3, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, shots, D))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return {f"person_{i}": x[i].astype(np.float32) for i in range(n)}


def on_disk(path: Path) -> bytes:
    """The gallery file and whatever SQLite keeps beside it (log, shared memory, journal)."""
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal", "-shm", "-journal")
        if Path(f"{path}{suffix}").exists()
    )


def leaks(data: bytes, templates: dict[str, np.ndarray]) -> list[str]:
    """Templates any 8 consecutive bytes of which (two float32 values) appear in `data`."""
    found = []
    for name, rows in templates.items():
        for row in rows:
            blob = row.astype("<f4").tobytes()
            if any(blob[i : i + 8] in data for i in range(0, len(blob) - 8, 4)):
                found.append(name)
    return found


# ------------------------------------------------------------------------------------------------ keys


def test_key_formats_and_sources(tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key)):
        assert parse_key(text) == key
    assert parse_key(key) == key
    secret = "not a key but a secret passphrase"
    for bad in ("", "short", secret, key[:31], base64.b64encode(key[:31]).decode()):
        with pytest.raises(GalleryKeyError) as info:
            parse_key(bad)
        assert secret not in str(info.value)

    file = write_key_file(tmp_path / "k.key", key)
    assert (file.stat().st_mode & 0o777) == 0o600
    assert resolve_key(key_file=file) == key
    with pytest.raises(GalleryKeyError, match="never overwritten"):
        write_key_file(file)
    raw = tmp_path / "raw.key"
    raw.write_bytes(key)
    raw.chmod(0o600)
    assert resolve_key(key_file=raw) == key
    raw.chmod(0o644)
    with pytest.warns(UserWarning, match="can be read by other users"):
        assert resolve_key(key_file=raw) == key
    with pytest.raises(GalleryKeyError, match="no key file"):
        resolve_key(key_file=tmp_path / "missing.key")
    with pytest.raises(GalleryKeyError, match="not both"):
        resolve_key(key, file)

    assert resolve_key() is None
    monkeypatch.setenv(ENV_KEY, key.hex())
    assert resolve_key() == key
    monkeypatch.setenv(ENV_KEY_FILE, str(file))
    with pytest.raises(GalleryKeyError, match="both"):
        resolve_key()
    monkeypatch.delenv(ENV_KEY)
    assert resolve_key() == key


def test_encrypted_gallery_round_trip_and_key_checks(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    data = people()
    with Gallery(path, MODEL, key=key) as g:
        assert g.encrypted
        for name, templates in data.items():
            g.enroll(name, templates)
        probe = data["person_1"][0]
        best = g.identify(probe, top_k=3)
    with Gallery(path, MODEL, key=base64.b64encode(key).decode()) as g:  # the same key, as text
        assert [c.to_dict() for c in g.identify(probe, top_k=3)] == [c.to_dict() for c in best]
        assert best[0].name == "person_1"
        np.testing.assert_array_equal(g.templates("person_2"), data["person_2"])
        assert g.verify("person_0", data["person_0"][1], threshold=0.5).accepted

    before = path.read_bytes()
    with pytest.raises(GalleryKeyError, match="is encrypted: give its key"):
        Gallery(path, MODEL)
    with pytest.raises(GalleryKeyError, match="is encrypted"):
        Gallery(path, key=False)
    with pytest.raises(GalleryKeyError, match="wrong key"):
        Gallery(path, MODEL, key=generate_key())
    assert path.read_bytes() == before  # refusing never writes

    plain = tmp_path / "plain.sqlite"
    with Gallery(plain, MODEL) as g:
        g.enroll("ada", data["person_0"])
    with pytest.raises(GalleryKeyError, match=r"not encrypted.*squeezerface encrypt"):
        Gallery(plain, MODEL, key=key)
    with pytest.raises(GalleryKeyError, match="contradict"):
        Gallery(plain, key=False, key_file=tmp_path / "k")


def test_key_from_the_environment(tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.sqlite"
    monkeypatch.setenv(ENV_KEY, key.hex())
    with Gallery(path, MODEL) as g:
        assert g.encrypted
        g.enroll("ada", people()["person_0"])
    monkeypatch.delenv(ENV_KEY)
    with pytest.raises(GalleryKeyError):
        Gallery(path)
    monkeypatch.setenv(ENV_KEY_FILE, str(write_key_file(tmp_path / "k.key", key)))
    with Gallery(path) as g:
        assert [p.name for p in g.identities()] == ["ada"]


def test_plaintext_templates_never_touch_disk(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    data = people(n=4, shots=3)
    with Gallery(path, MODEL, key=key) as g:
        for name, templates in data.items():
            g.enroll(name, templates)
        assert leaks(on_disk(path), data) == []  # the log too, while the connection is open
        db = sqlite3.connect(path)
        sealed = [row[0] for row in db.execute("SELECT embedding FROM templates WHERE identity_id = 2")]
        db.close()
        assert len(sealed) == 3 and all(blob in on_disk(path) for blob in sealed)
        g.forget("person_1")  # forgetting removes the ciphertext too (secure_delete, log truncated)
        assert not any(blob in on_disk(path) for blob in sealed) and b"person_1" not in on_disk(path)
        g.forget("person_2", vacuum=True)
        g.enroll("person_0", data["person_0"], replace=True)
        assert leaks(on_disk(path), data) == []
    assert leaks(on_disk(path), data) == []
    # the test can see a leak: the same enrolments without a key are found
    plain = tmp_path / "plain.sqlite"
    with Gallery(plain, MODEL) as g:
        g.enroll("person_3", data["person_3"])
        assert leaks(on_disk(plain), data) == ["person_3"] * 3


def test_templates_are_bound_to_their_identity_and_model(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    data = people()
    with Gallery(path, MODEL, key=key) as g:
        for name, templates in data.items():
            g.enroll(name, templates)

    def tamper(sql: str, *args: object) -> Path:
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}.sqlite"
        copy.write_bytes(path.read_bytes())
        db = sqlite3.connect(copy)
        with db:
            db.execute(sql, args)
        db.close()
        return copy

    moved = tamper(
        "UPDATE templates SET identity_id = (SELECT id FROM identities WHERE name = 'person_0') "
        "WHERE id = (SELECT MAX(id) FROM templates)"
    )
    db = sqlite3.connect(path)
    blob = bytearray(db.execute("SELECT embedding FROM templates WHERE id = 1").fetchone()[0])
    db.close()
    blob[21] ^= 0x10  # one bit of the ciphertext
    flipped = tamper("UPDATE templates SET embedding = ? WHERE id = 1", bytes(blob))
    renamed = tamper("UPDATE identities SET name = 'mallory' WHERE name = 'person_2'")
    other_model = tamper("UPDATE meta SET value = '2.0' WHERE key = 'model_version'")
    for copy in (moved, flipped, renamed, other_model):
        with Gallery(copy, key=key) as g, pytest.raises(TemplateIntegrityError, match="fails authentication"):
            g.identify(data["person_0"][0])
    with Gallery(path, key=key) as g:  # the original is fine
        assert g.identify(data["person_2"][0])[0].name == "person_2"
    assert issubclass(TemplateIntegrityError, GalleryFormatError)


def test_aad_is_unambiguous() -> None:
    a = template_aad("a,b", ("m", "1", 8))
    b = template_aad("a", ("b,m", "1", 8))
    assert a != b and template_aad("x", ("m", "1", 8)) != template_aad("x", ("m", "1", 9))


# --------------------------------------------------------------------------------------- encrypt in place


def _plain_gallery(path: Path) -> dict[str, np.ndarray]:
    data = people(n=5, shots=3)
    with Gallery(path, MODEL) as g:
        for name, templates in data.items():
            g.enroll(name, templates)
        g.forget("person_4")
    del data["person_4"]
    return data


def test_encrypt_in_place(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    data = _plain_gallery(path)
    with Gallery(path, MODEL) as g:
        before = g.identities()
        scores = [c.to_dict() for c in g.identify(data["person_1"][0], top_k=4)]
    os.link(path, tmp_path / "old-inode")  # keeps the old file's inode reachable, to look at its bytes
    assert leaks(on_disk(path), data)

    done = encrypt_gallery(path, key)
    assert (done.identities, done.templates, done.plaintext_overwritten) == (4, 12, True)
    old = (tmp_path / "old-inode").read_bytes()
    assert old and old == bytes(len(old))  # the plaintext file was overwritten with zeros
    (tmp_path / "old-inode").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.sqlite"]  # no temporary file left
    assert leaks(on_disk(path), data) == []
    with Gallery(path, MODEL, key=key) as g:
        assert g.identities() == before  # names, counts and enrolment times kept
        assert [c.to_dict() for c in g.identify(data["person_1"][0], top_k=4)] == scores
        for name, templates in data.items():
            np.testing.assert_array_equal(g.templates(name), templates)
        g.enroll("new", people(seed=9)["person_0"])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    with pytest.raises(GalleryKeyError, match="already encrypted"):
        encrypt_gallery(path, key)


def test_encrypt_refuses_and_leaves_the_original(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    _plain_gallery(path)
    original = path.read_bytes()
    with pytest.raises(GalleryKeyError, match="no key"):
        encrypt_gallery(path)
    with Gallery(path, MODEL, timeout=0.2), pytest.raises(GalleryBusyError, match="open in another program"):
        encrypt_gallery(path, key, timeout=0.2)  # in use: never swapped under another connection
    with pytest.raises(GalleryError, match="no gallery"):
        encrypt_gallery(tmp_path / "missing.sqlite", key)
    foreign = tmp_path / "foreign.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(GalleryFormatError):
        encrypt_gallery(foreign, key)
    with Gallery(path, MODEL) as g:
        assert len(g) == 4
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.sqlite", "g.sqlite"]
    assert len(path.read_bytes()) == len(original)


def test_encrypt_that_fails_its_check_keeps_the_plaintext(
    tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.sqlite"
    data = _plain_gallery(path)

    def mismatch(*args: object) -> None:
        raise GalleryError("the encrypted copy does not match the original; the original was kept")

    monkeypatch.setattr(encrypt_module, "_check_copy", mismatch)
    with pytest.raises(GalleryError, match="original was kept"):
        encrypt_gallery(path, key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.sqlite"]
    with Gallery(path, MODEL) as g:
        for name, templates in data.items():
            np.testing.assert_array_equal(g.templates(name), templates)


def test_a_crash_during_encryption_keeps_the_plaintext(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "g.sqlite"
    data = _plain_gallery(path)
    script = textwrap.dedent(
        f"""
        import os
        from squeezerface.gallery import encrypt

        def die(*args):
            os._exit(9)  # the copy is written, not yet swapped in: as a power cut

        encrypt._check_copy = die
        encrypt.encrypt_gallery({str(path)!r}, bytes.fromhex({key.hex()!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    with Gallery(path, MODEL) as g:
        for name, templates in data.items():
            np.testing.assert_array_equal(g.templates(name), templates)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".g.sqlite.encrypting-")]
    assert leftovers and not leaks(b"".join(p.read_bytes() for p in leftovers), data)  # ciphertext only
    encrypt_gallery(path, key)  # and encrypting again works
    with Gallery(path, MODEL, key=key) as g:
        assert len(g) == 4


def test_a_handle_notices_its_file_was_replaced(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    _plain_gallery(path)
    with Gallery(path, MODEL) as g:
        backup = tmp_path / "backup.sqlite"
        backup.write_bytes(path.read_bytes())
        os.replace(backup, path)
        with pytest.raises(GalleryError, match="replaced or removed"):
            g.enroll("lost", people(seed=3)["person_0"])
        with pytest.raises(GalleryError, match="replaced or removed"):
            g.identify(people()["person_0"][0])


def test_busy_gallery_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    _plain_gallery(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with Gallery(path, MODEL, timeout=0.3) as g:
            with pytest.raises(GalleryBusyError, match="busy"):
                g.enroll("late", people(seed=5)["person_0"])
            assert "late" not in g and len(g.identify(people()["person_0"][0])) == 4  # reads still work
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


# ------------------------------------------------------------------------------------------------- CLI


def test_encrypt_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.sqlite"
    _plain_gallery(path)
    keyfile = tmp_path / "g.key"
    assert main(["encrypt", "--db", str(path), "--key-file", str(keyfile), "--new-key"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "encrypted" in out and "4 identities, 12 template(s)" in out and "overwritten" in out
    assert (keyfile.stat().st_mode & 0o777) == 0o600
    assert main(["list", "--db", str(path)]) == EXIT_BAD_INPUT
    assert "is encrypted: give its key" in capsys.readouterr().err
    monkeypatch.setenv(ENV_KEY_FILE, str(keyfile))
    assert main(["list", "--db", str(path)]) == EXIT_OK
    assert "4 identities" in capsys.readouterr().out
    assert main(["forget", "--db", str(path), "person_0", "--vacuum"]) == EXIT_OK
    assert main(["encrypt", "--db", str(path)]) == EXIT_BAD_INPUT
    assert "already encrypted" in capsys.readouterr().err
    assert main(["encrypt", "--db", str(path), "--key-file", str(keyfile), "--new-key"]) == EXIT_BAD_INPUT
    assert "never overwritten" in capsys.readouterr().err
    monkeypatch.delenv(ENV_KEY_FILE)
    other = tmp_path / "other.sqlite"
    _plain_gallery(other)
    assert main(["encrypt", "--db", str(other)]) == EXIT_BAD_INPUT
    assert "no key" in capsys.readouterr().err
    assert main(["encrypt", "--db", str(other), "--new-key"]) == EXIT_BAD_INPUT
    assert main(
        ["encrypt", "--db", str(tmp_path / "none.sqlite"), "--key-file", str(tmp_path / "n.key"), "--new-key"]
    ) == (EXIT_BAD_INPUT)
    assert not (tmp_path / "n.key").exists()  # a key that encrypted nothing is not left behind


_NO_CRYPTOGRAPHY = textwrap.dedent(
    """
    import sys
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        del sys.modules[name]
    sys.modules["cryptography"] = None  # import cryptography -> ImportError
    import numpy as np
    from squeezerface.cli import main
    from squeezerface.errors import CryptoUnavailableError
    from squeezerface.gallery import Gallery, ModelInfo

    path, key = sys.argv[1], "ab" * 32
    with Gallery(path, ModelInfo("toy", "1.0", 4)) as g:  # plaintext galleries need no cryptography
        g.enroll("ada", np.eye(4)[:2])
    try:
        Gallery(path, key=key)
    except CryptoUnavailableError as exc:
        assert "squeezerface[crypto]" in str(exc), exc
    else:
        raise AssertionError("no CryptoUnavailableError")
    import os
    os.environ["SQUEEZERFACE_GALLERY_KEY"] = key
    sys.exit(main(["encrypt", "--db", path]))
    """
)


def test_missing_cryptography_is_a_typed_error_and_exit_3(tmp_path: Path) -> None:
    assert issubclass(CryptoUnavailableError, EmbedderUnavailableError)
    done = subprocess.run(
        [sys.executable, "-c", _NO_CRYPTOGRAPHY, str(tmp_path / "g.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_MISSING_DEPENDENCY, done.stderr
    assert "pip install 'squeezerface[crypto]'" in done.stderr


# ------------------------------------------------------------------------------ key derivation, migration


def test_new_galleries_derive_their_keys_by_hkdf(tmp_path: Path, key: bytes) -> None:
    """The AES key and the key check value are HKDF-SHA256 outputs under distinct labels, recomputed here
    with `cryptography`'s HKDF independently of squeezerface.crypto."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)

    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL, key=key) as g:
        g.enroll("ada", people(1, 1)["person_0"][0])
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    blob = db.execute("SELECT embedding FROM templates").fetchone()[0]
    db.close()
    assert meta["encryption"] == "aes-256-gcm-v2"
    assert meta["key_check"] == hkdf(b"squeezerface gallery key check v2").hex()
    aead = AESGCM(hkdf(b"squeezerface gallery template encryption v2"))
    plain = aead.decrypt(blob[1:13], blob[13:], template_aad("ada", MODEL.key))
    np.testing.assert_allclose(np.frombuffer(plain, "<f4"), people(1, 1)["person_0"][0], atol=1e-6)


def _as_v1(path: Path, key: bytes) -> None:
    """Rewrite an HKDF gallery exactly as squeezerface wrote galleries before HKDF: both keys derived as
    HMAC-SHA256(key, label), scheme `aes-256-gcm-v1`."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from squeezerface.crypto import TemplateCipher

    new = TemplateCipher(key)
    old = AESGCM(hmac.new(key, b"squeezerface gallery template encryption v1", hashlib.sha256).digest())
    check = hmac.new(key, b"squeezerface gallery key check v1", hashlib.sha256).hexdigest()
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT t.id, i.name, t.embedding FROM templates t JOIN identities i ON i.id = t.identity_id"
    ).fetchall()
    for row_id, name, blob in rows:
        aad = template_aad(name, MODEL.key)
        nonce = os.urandom(12)
        sealed = b"\x01" + nonce + old.encrypt(nonce, new.decrypt(blob, aad), aad)
        db.execute("UPDATE templates SET embedding = ? WHERE id = ?", (sealed, row_id))
    db.execute("UPDATE meta SET value = 'aes-256-gcm-v1' WHERE key = 'encryption'")
    db.execute("UPDATE meta SET value = ? WHERE key = 'key_check'", (check,))
    db.commit()
    db.close()


def test_a_gallery_encrypted_before_hkdf_keeps_working(tmp_path: Path, key: bytes) -> None:
    """Migration: the scheme a gallery records is its version; an `aes-256-gcm-v1` gallery (HMAC-derived
    keys) opens with its key, is searched, takes new enrolments under its own scheme, and refuses other
    keys; new galleries are created with the HKDF scheme."""
    path = tmp_path / "old.sqlite"
    faces = people()
    with Gallery(path, MODEL, key=key) as g:
        for name, shots in faces.items():
            g.enroll(name, shots[:2])
    _as_v1(path, key)
    with Gallery(path, MODEL, key=key) as g:
        assert g.identify(faces["person_1"][2])[0].name == "person_1"
        g.enroll("late", faces["person_2"][2])
    with Gallery(path, MODEL, key=key) as g:
        assert g.identify(faces["person_2"][2])[0].name in ("late", "person_2")
        assert sorted(i.name for i in g.identities()) == ["late", "person_0", "person_1", "person_2"]
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta"))["encryption"] == "aes-256-gcm-v1"
    db.close()
    with pytest.raises(GalleryKeyError, match="wrong key"):
        Gallery(path, MODEL, key=generate_key())
