"""The enrolment gallery (pure numpy + SQLite, no models): enrol, identify, verify, forget, reopen; model
checks; typed errors for bad embeddings and for files that are not galleries (left untouched); atomic
enrolment, including a real crash; secure deletion."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from squeezerface import gallery as gallery_module
from squeezerface.errors import (
    GalleryError,
    GalleryFormatError,
    ModelMismatchError,
    SqueezerfaceError,
    TemplateError,
    UnknownIdentityError,
)
from squeezerface.gallery import Gallery, ModelInfo

D = 16
MODEL = ModelInfo("toy", "1.0", D, file="toy-int8.onnx", sha256="ab" * 32)
OTHER = ModelInfo("other", "2.0", D)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def people(rng: np.random.Generator, n: int = 3, shots: int = 3) -> dict[str, np.ndarray]:
    """Synthetic identities: a random centre each, templates scattered a little around it."""
    centres = unit(rng.normal(size=(n, D)))
    return {
        f"person_{i}": unit(centres[i] + 0.15 * rng.normal(size=(shots, D))).astype(np.float32)
        for i in range(n)
    }


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, committed and closed on exit (the gallery is not involved)."""
    db = sqlite3.connect(path)
    try:
        with db:
            yield db
    finally:
        db.close()


def template_rows(path: Path) -> int:
    with raw(path) as db:
        return db.execute("SELECT COUNT(*) FROM templates").fetchone()[0]


def test_enrol_identify_verify_and_reopen(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    data = people(rng)
    with Gallery(path, MODEL) as g:
        for name, templates in data.items():
            info = g.enroll(name, templates)
            assert (info.name, info.templates) == (name, 3)
        probe = unit(data["person_1"].mean(0) + 0.05 * rng.normal(size=D))
        found = g.identify(probe, top_k=2, threshold=0.5)
        assert [c.name for c in found][:1] == ["person_1"] and found[0].accepted
        assert len(found) == 2 and found[0].score > found[1].score and found[0].templates == 3
        assert g.verify("person_1", probe, 0.5).accepted
        assert not g.verify("person_0", probe, 0.5).accepted
        assert len(g) == 3 and "person_2" in g and "nobody" not in g
    with Gallery(path, MODEL) as again:  # everything survives a close
        assert [p.name for p in again.identities()] == sorted(data)
        assert again.identify(probe, top_k=1)[0].name == "person_1"
        np.testing.assert_allclose(again.templates("person_0"), data["person_0"], atol=1e-6)
        assert again.model == MODEL


def test_more_templates_replace_and_times(tmp_path: Path, rng: np.random.Generator) -> None:
    with Gallery(tmp_path / "g.sqlite", MODEL) as g:
        first = g.enroll("ada", unit(rng.normal(size=(2, D))))
        more = g.enroll("ada", unit(rng.normal(size=D)))  # one (D,) embedding is one template
        assert more.templates == 3 and more.created == first.created and more.updated >= first.updated
        assert more.created.tzinfo is not None
        replaced = g.enroll("ada", unit(rng.normal(size=(1, D))), replace=True)
        assert replaced.templates == 1
        (listed,) = g.identities()
        assert listed.to_dict()["templates"] == 1 and listed.to_dict()["created"].endswith("+00:00")


def test_templates_are_unit_little_endian_float32_blobs(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL) as g:
        g.enroll("ada", np.full((2, D), 3.0))  # stored normalised
    with raw(path) as db:
        blobs = [row[0] for row in db.execute("SELECT embedding FROM templates")]
    assert all(isinstance(b, bytes) and len(b) == 4 * D for b in blobs)
    vec = np.frombuffer(blobs[0], "<f4")
    np.testing.assert_allclose(vec, np.full(D, 0.25), rtol=1e-6)


def test_aggregation_mean_and_best(tmp_path: Path) -> None:
    e = np.eye(D, dtype=np.float32)
    with Gallery(tmp_path / "g.sqlite", MODEL) as g:
        g.enroll("two_poses", e[:2])  # orthogonal templates
        g.enroll("between", unit(e[0] + 0.9 * e[1]))
        probe = e[0]
        # mean: cosine to the renormalised mean (e0 + e1)/sqrt(2); best: the closest template
        assert g.verify("two_poses", probe, 0.9).score == pytest.approx(1 / np.sqrt(2), abs=1e-6)
        assert g.verify("two_poses", probe, 0.9, aggregate="best").score == pytest.approx(1.0)
        assert g.identify(probe, top_k=1)[0].name == "between"
        assert g.identify(probe, top_k=1, aggregate="best")[0].name == "two_poses"
    with Gallery(tmp_path / "g.sqlite", aggregate="best") as best_by_default:
        assert best_by_default.identify(probe, top_k=1)[0].name == "two_poses"
    with pytest.raises(GalleryError, match="aggregate must be one of mean, best"):
        Gallery(tmp_path / "g.sqlite", aggregate="median")  # type: ignore[arg-type]


def test_identify_ranking_thresholds_and_bad_arguments(tmp_path: Path, rng: np.random.Generator) -> None:
    with Gallery(tmp_path / "g.sqlite", MODEL) as g:
        assert g.identify(unit(rng.normal(size=D))) == []  # empty gallery: nobody
        for name, templates in people(rng, n=6).items():
            g.enroll(name, templates)
        probe = unit(rng.normal(size=D))
        ranked = g.identify(probe, top_k=10)
        assert len(ranked) == 6 and all(c.accepted for c in ranked)  # no threshold: nothing rejected
        assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
        assert g.identify(probe, top_k=3) == ranked[:3]
        assert not any(c.accepted for c in g.identify(probe, threshold=1.0))
        with pytest.raises(GalleryError, match="top_k must be a positive integer"):
            g.identify(probe, top_k=0)
        with pytest.raises(GalleryError, match="threshold must be finite"):
            g.identify(probe, threshold=float("nan"))
        with pytest.raises(UnknownIdentityError, match="no identity named 'nobody'") as err:
            g.verify("nobody", probe, 0.5)
        assert isinstance(err.value, KeyError) and str(err.value).startswith("no identity")


def test_search_cache_follows_writes_of_other_connections(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    data = people(rng, n=2)
    with Gallery(path, MODEL) as reader, Gallery(path, MODEL) as writer:
        reader.enroll("person_0", data["person_0"])
        probe = data["person_1"][0]
        assert [c.name for c in reader.identify(probe)] == ["person_0"]
        writer.enroll("person_1", data["person_1"])  # another connection's commit
        assert reader.identify(probe)[0].name == "person_1"
        writer.forget("person_1")
        assert [c.name for c in reader.identify(probe)] == ["person_0"]


def test_model_mismatch_on_open_and_on_write(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL) as g:
        g.enroll("ada", unit(rng.normal(size=(2, D))))
    with pytest.raises(
        ModelMismatchError, match=r"holds templates of model toy 1\.0 .* not of model other 2\.0"
    ):
        Gallery(path, OTHER)
    with Gallery(path) as no_model:  # opening without a model is enough to read
        assert no_model.model == MODEL and len(no_model.identify(unit(rng.normal(size=D)))) == 1
        with pytest.raises(ModelMismatchError):
            no_model.enroll("bob", unit(rng.normal(size=D)), model=OTHER)
        with pytest.raises(GalleryError, match="say which model made these embeddings"):
            no_model.enroll("bob", unit(rng.normal(size=D)))
    # a precision variant of the same model (other file and hash) is the same model, recorded per template
    variant = ModelInfo("toy", "1.0", D, file="toy-fp32.onnx", sha256="cd" * 32)
    with Gallery(path, variant) as g:
        g.enroll("bob", unit(rng.normal(size=D)))
    with raw(path) as db:
        files = db.execute(
            "SELECT m.file FROM templates t JOIN models m ON m.id = t.model_id ORDER BY t.id"
        ).fetchall()
    assert [f for (f,) in files] == ["toy-int8.onnx", "toy-int8.onnx", "toy-fp32.onnx"]
    assert template_rows(path) == 3


def test_first_model_wins_between_two_handles(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path) as a, Gallery(path) as b:  # neither knows a model yet
        assert a.model is None
        a.enroll("ada", unit(rng.normal(size=D)), model=MODEL)
        with pytest.raises(ModelMismatchError):
            b.enroll("bob", unit(rng.normal(size=D)), model=OTHER)
    assert template_rows(path) == 1


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (np.ones((2, D + 1)), "embeddings of size 17 cannot be templates of model toy"),
        (np.ones((0, D)), r"shape \(N, 16\) with N >= 1"),
        (np.ones((1, 2, D)), r"shape \(N, 16\)"),
        (np.array([[np.nan] * D, [1.0] * D]), "1 of 2 embeddings hold NaN or infinite values"),
        (np.full((1, D), np.inf), "NaN or infinite"),
        (np.full((1, D), 1e300), "NaN or infinite"),  # finite float64, infinite float32
        (np.zeros((1, D)), "all zero"),
        (np.array([["a"] * D]), "must hold real numbers"),
    ],
)
def test_bad_templates_are_typed_errors_and_write_nothing(
    tmp_path: Path, embeddings: np.ndarray, message: str
) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL) as g:
        with pytest.raises(TemplateError, match=message) as err:
            g.enroll("ada", embeddings)
        assert isinstance(err.value, ValueError) and isinstance(err.value, SqueezerfaceError)
        assert len(g) == 0
    assert template_rows(path) == 0


def test_bad_probes_and_names(tmp_path: Path) -> None:
    with Gallery(tmp_path / "g.sqlite", MODEL) as g:
        g.enroll("ada", np.eye(D)[0])
        with pytest.raises(TemplateError, match="expected one embedding of size 16"):
            g.identify(np.ones(D - 1))
        with pytest.raises(TemplateError, match="NaN"):
            g.verify("ada", np.full(D, np.nan), 0.5)
        for name in ("", "   ", None):
            with pytest.raises(GalleryError, match="non-empty string"):
                g.enroll(name, np.eye(D)[0])  # type: ignore[arg-type]
    with pytest.raises(GalleryError, match="embedding_size must be a positive integer"):
        ModelInfo("toy", "1", 0)


def test_closed_gallery_and_missing_file(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "g.sqlite", MODEL)
    g.close()
    g.close()  # idempotent
    with pytest.raises(GalleryError, match="is closed"):
        g.identities()
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(GalleryError, match="no gallery at"):
        Gallery(missing, create=False)
    assert not missing.exists()


def test_wal_mode_and_schema_marks(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL):
        pass
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == gallery_module.SCHEMA_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == gallery_module.APPLICATION_ID
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["format"] == "squeezerface-gallery" and meta["model_name"] == "toy"
    assert meta["embedding_size"] == str(D)


def _unchanged_after(path: Path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(GalleryFormatError, match=match):
        Gallery(path, MODEL)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-journal").exists()


def test_random_bytes_are_a_typed_error_and_left_alone(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(rng.bytes(10_000))
    _unchanged_after(path, "corrupt or not a squeezerface gallery")


def test_a_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "contacts.sqlite"
    with raw(path) as db:
        db.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        db.execute("INSERT INTO contacts VALUES ('ada', '555')")
    _unchanged_after(path, "not a squeezerface gallery \\(tables: contacts\\)")
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL


def test_an_empty_file_becomes_a_gallery(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    path.touch()  # e.g. from mktemp: nothing to lose
    with Gallery(path, MODEL) as g:
        assert g.identities() == []


def test_other_schema_versions_and_damaged_files(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL) as g:
        for name, templates in people(rng, n=40, shots=4).items():
            g.enroll(name, templates)
    good = path.read_bytes()
    with raw(path) as db:
        db.execute("PRAGMA user_version = 99")
    _unchanged_after(path, "schema version 99 \\(written by a newer squeezerface\\)")
    # garbage over every page but the first (header and schema): noticed on open or on the first read
    page = int.from_bytes(good[16:18], "big")
    assert len(good) > 3 * page
    path.write_bytes(good[:page] + rng.bytes(len(good) - page))
    with pytest.raises(GalleryFormatError, match="corrupt"), Gallery(path, MODEL) as g:
        g.identify(unit(rng.normal(size=D)))


def test_forget_deletes_every_trace(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "g.sqlite"
    data = people(rng, n=3, shots=4)
    with Gallery(path, MODEL) as g:
        for name, templates in data.items():
            g.enroll(name, templates)
        secret = [t.astype("<f4").tobytes() for t in data["person_1"]]
        on_disk = path.read_bytes() + (
            Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b""
        )
        assert all(s in on_disk for s in secret)  # the check below means something
        assert g.forget("person_1") == 4
        assert "person_1" not in g
        assert {c.name for c in g.identify(data["person_1"][0], top_k=5)} == {"person_0", "person_2"}
        with raw(path) as db:  # a second connection sees no row of that person
            assert db.execute("SELECT COUNT(*) FROM identities WHERE name = 'person_1'").fetchone()[0] == 0
            assert db.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 8
        for file in (path, Path(f"{path}-wal")):  # nor any byte of theirs, in the file or its log
            content = file.read_bytes() if file.exists() else b""
            assert not any(s in content for s in secret), file
            assert b"person_1" not in content
        with pytest.raises(UnknownIdentityError, match="no identity named 'person_1'"):
            g.forget("person_1")
        g.enroll("crowd", unit(rng.normal(size=(500, D))))  # enough pages for the vacuum to shrink
        with raw(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the crowd moves from the log into the file
        size = path.stat().st_size
        assert g.forget("crowd", vacuum=True) == 500
        assert path.stat().st_size < size
        assert [p.name for p in g.identities()] == ["person_0", "person_2"]


class _FailsOnSecondTemplate:
    """A connection that dies after the first template row of an enrolment was written."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.inserts = 0

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("INSERT INTO templates"):
            self.inserts += 1
            if self.inserts == 2:
                raise RuntimeError("simulated failure mid-enrolment")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_a_failed_enrolment_leaves_no_trace(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.sqlite"
    data = people(rng, n=2)
    with Gallery(path, MODEL) as g:
        g.enroll("person_0", data["person_0"])
        before = g.identities()
        failing = _FailsOnSecondTemplate(g._db)  # type: ignore[arg-type]
        monkeypatch.setattr(g, "_db", failing)
        for name in ("person_1", "person_0"):  # a new person, and more templates for a known one
            failing.inserts = 0
            with pytest.raises(RuntimeError, match="simulated failure"):
                g.enroll(name, data["person_1"])
            assert failing.inserts == 2  # it did fail halfway
        monkeypatch.undo()
        assert g.identities() == before
    with raw(path) as db:
        assert db.execute("SELECT name FROM identities").fetchall() == [("person_0",)]
        assert db.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 3


def test_a_crash_mid_enrolment_leaves_no_half_person(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    with Gallery(path, MODEL) as g:
        g.enroll("ada", np.eye(D)[:2])
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np
        from squeezerface.gallery import Gallery, ModelInfo, store

        real, calls = store._to_blob, []

        def dying(vector):
            calls.append(1)
            if len(calls) == 2:  # the first template row is already written
                os._exit(3)  # no rollback, no close: as a power cut or a kill -9
            return real(vector)

        store._to_blob = dying
        g = Gallery({str(path)!r}, ModelInfo("toy", "1.0", {D}))
        g.enroll("bob", np.eye({D})[2:5])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    with Gallery(path, MODEL) as g:
        assert [(p.name, p.templates) for p in g.identities()] == [("ada", 2)]
    assert template_rows(path) == 2
