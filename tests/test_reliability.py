"""Reliability, CI-sized: 8 processes enrolling and identifying at once, kill -9 mid-enrolment, corrupted
gallery files, the fuzz harness's watchdog (it must see crashes, segfaults, hangs and memory blow-ups),
tampered model files of every shipped kind, and a runtime that opens no network connection. The long runs
are `benchmarks/reliability.py` (figures in benchmarks/results/reliability.json)."""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from squeezerface import detect, embed, landmarks
from squeezerface.bench import fuzz, gallery_stress
from squeezerface.detect import FaceDetector
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.errors import ModelFileError
from squeezerface.landmarks import LandmarkRefiner
from squeezerface.modelcard import card_path, load_card
from squeezerface.shipped import model_path, shipped_models
from squeezerface.verify import FaceVerifier

KEY = base64.b64encode(bytes(range(32))).decode()
HAS_CRYPTO = importlib.util.find_spec("cryptography") is not None


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQUEEZERFACE_GALLERY_KEY", raising=False)
    monkeypatch.delenv("SQUEEZERFACE_GALLERY_KEY_FILE", raising=False)


def _crypto() -> None:
    pytest.importorskip("cryptography", reason="encrypted galleries need the crypto extra")


# ------------------------------------------------------------------------------------------------ gallery


@pytest.mark.slow
def test_eight_processes_enrol_and_identify_at_once(tmp_path: Path) -> None:
    result = gallery_stress.run_concurrent(tmp_path, writers=8, enrolments=10, templates=3)
    assert result["writer_stats"] == {"enrolled": 80, "identified": 80}, result
    assert result["records_expected"] == 240
    assert (result["records_lost"], result["records_duplicated"], result["records_corrupt"]) == (0, 0, 0)
    assert result["unexpected_identities"] == 0 and result["integrity_check"] == "ok"
    assert result["exit_codes"] == [0] * 8


@pytest.mark.slow
def test_concurrent_writers_on_an_encrypted_gallery(tmp_path: Path) -> None:
    _crypto()
    result = gallery_stress.run_concurrent(tmp_path, writers=4, enrolments=5, templates=2, key=KEY)
    assert result["writer_stats"] == {"enrolled": 20, "identified": 20}, result
    assert (result["records_lost"], result["records_duplicated"], result["records_corrupt"]) == (0, 0, 0)
    assert result["integrity_check"] == "ok"


@pytest.mark.slow
def test_kill_9_mid_enrolment_leaves_whole_people(tmp_path: Path) -> None:
    rounds = [gallery_stress.run_kill9(tmp_path, 3, templates=4, seed=1)]
    if HAS_CRYPTO:
        rounds.append(gallery_stress.run_kill9(tmp_path, 2, templates=4, key=KEY, seed=2))
    for result in rounds:
        assert result["failures"] == [], result["failures"]
        assert result["integrity_failures"] == 0
        assert result["partial_enrolments"] == 0
        assert result["committed_lost"] == 0 and result["forgotten_resurrected"] == 0
        assert result["open_failures"] == 0
        assert result["enrolments_committed"] > 0  # the kills did land in the middle of work


def test_corrupted_gallery_files_fail_typed_and_untouched(tmp_path: Path) -> None:
    modes = [None, KEY] if HAS_CRYPTO else [None]
    for key in modes:
        result = gallery_stress.run_corrupt_files(tmp_path, 40, seed=3, key=key)
        assert result["crashes"] == 0 and result["changed_after_error"] == 0, result["failures"]
        assert sum(result["outcomes"].values()) == 40


# ------------------------------------------------------------------------------------------- fuzz harness


@pytest.mark.slow
def test_fuzz_harness_sees_every_kind_of_failure() -> None:
    """No case that finishes may be called a hang on a loaded machine: the watchdog's budget leaves out the
    time a worker waits for a CPU (a 4 s wall-clock budget, then even 60 s, once turned `selftest_alloc`, a
    1 GB allocation, into a "hang" at nice 19 beside a training job). The hang case sleeps for an hour: a
    real hang at any load, caught after the 20 s budget."""
    cases = fuzz.recipes(30, seed=5, selftest=True)
    result = fuzz.run_fuzz(cases, workers=2, case_timeout=20, rss_cap_mb=700, address_space_mb=4096)
    flagged = {f["recipe"]["kind"]: f["outcome"] for f in result["failures"]}
    assert flagged == {
        "selftest_raise": "crash",
        "selftest_segfault": "died",
        "selftest_hang": "hang",
        "selftest_alloc": "memory_over_cap",
    }, result["failures"]
    assert result["fuzz_cases"] == 34 and sum(result["outcomes"].values()) == 34
    assert result["crashes"] == 2 and result["hangs"] == 1 and result["memory_over_cap"] == 1
    assert result["typed_errors"] + result["accepted"] == 30  # every real case: an answer or a typed error


# ------------------------------------------------------------------------------------------------ models


def _kind(name: str) -> str:
    card = load_card(model_path(name), verify=False)
    if card.embedding_size:
        return "embedder"
    return "detector" if "detection" in card.training else "refiner"


def _copy(name: str, folder: Path, tamper: bool) -> Path:
    """A copy of a shipped model and its card in `folder`, with one byte of the model changed."""
    src = model_path(name)
    dst = folder / name
    shutil.copyfile(src, dst)
    shutil.copyfile(card_path(src), card_path(dst))
    if tamper:
        data = bytearray(dst.read_bytes())
        data[len(data) // 2] ^= 0x01
        dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("name", shipped_models())
def test_a_tampered_model_file_is_refused_before_it_is_opened(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    for module in (embed, detect, landmarks):  # where each model class opens its engine
        real = module.open_backend
        monkeypatch.setattr(
            module,
            "open_backend",
            lambda path, threads=1, real=real, **kw: opened.append(path) or real(path, threads, **kw),
        )
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    kind = _kind(name)
    good, bad = _copy(name, tmp_path / "good", tamper=False), _copy(name, tmp_path / "bad", tamper=True)
    build = {
        "embedder": lambda p: FaceEmbeddingModel(p),
        "detector": lambda p: FaceDetector(p, refiner=None),
        "refiner": lambda p: LandmarkRefiner(p),
    }[kind]
    build(good)  # the untampered copy loads: the copy itself is not the problem
    with pytest.raises(ModelFileError, match="does not match its card"):
        load_card(bad)
    with pytest.raises(ModelFileError, match="does not match its card"):
        build(bad)
    if kind == "embedder" and bad.suffix == ".onnx":
        with pytest.raises(ModelFileError, match="does not match its card"):
            FaceVerifier(embedder=bad)
    if kind == "detector" and bad.suffix == ".onnx":
        with pytest.raises(ModelFileError, match="does not match its card"):
            FaceVerifier(detector=bad)
    if kind == "refiner":  # a detector whose card names a tampered refiner beside it is refused too
        users = [
            d
            for d in shipped_models()
            if _kind(d) == "detector"
            and load_card(model_path(d), verify=False).training["detection"].get("refiner") == name
        ]
        assert users, f"no shipped detector uses {name}"
        _copy(users[0], tmp_path / "bad", tamper=False)
        with pytest.raises(ModelFileError, match="does not match its card"):
            FaceDetector(tmp_path / "bad" / users[0])
    assert bad not in opened and all(p.parent != tmp_path / "bad" for p in opened)


# ------------------------------------------------------------------------------------------------ offline

_OFFLINE = textwrap.dedent(
    """
    import sys

    attempts = []

    def no_network(event, args):
        if event.startswith("socket."):
            attempts.append(event)
            raise OSError(f"network access attempted: {event}")

    sys.addaudithook(no_network)

    import numpy as np
    from squeezerface.cli import main
    from squeezerface.gallery import Gallery, ModelInfo, encrypt_gallery
    from squeezerface.verify import FaceVerifier

    photo, folder, key = sys.argv[1], sys.argv[2], sys.argv[3]
    verifier = FaceVerifier()
    model = ModelInfo.from_card(verifier.embedder.card)
    if photo != "-":
        a = verifier.embed_one(photo)
        faces = verifier.detect(photo)
        b = verifier.embed(photo, faces=faces[:1])[0]
    else:
        a = verifier.embed(np.full((2, 112, 112, 3), 128, np.uint8))[0]
        b = verifier.embed(np.zeros((1, 112, 112, 3), np.uint8))[0]
    with Gallery(f"{folder}/plain.sqlite", model) as g:
        g.enroll("a", np.stack([a, b]))
        assert g.identify(a)[0].name == "a"
    encrypt_gallery(f"{folder}/plain.sqlite", key)
    with Gallery(f"{folder}/plain.sqlite", model, key=key) as g:
        g.enroll("b", b)
        assert g.identify(a)[0].name == "a"
        g.forget("b", vacuum=True)
    assert main(["list", "--db", f"{folder}/plain.sqlite"]) == 2  # no key: refused, still offline
    assert attempts == [], attempts
    print("OK")
    """
)


def test_the_runtime_opens_no_network_connection(tmp_path: Path) -> None:
    """Python-level socket use is refused by an audit hook; under strace (when installed) no network system
    call at all may appear, which also covers native code (onnxruntime, OpenCV)."""
    _crypto()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
    photo = shared / "George_W_Bush" / "George_W_Bush_0007.jpg"
    command = [sys.executable, "-c", _OFFLINE, str(photo) if photo.is_file() else "-", str(tmp_path), KEY]
    strace = shutil.which("strace")
    trace = tmp_path / "network.trace"
    if strace:
        probe = subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            command = [strace, "-f", "-qq", "-e", "trace=%network", "-o", str(trace), *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUEEZERFACE_GALLERY_KEY")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "OK"
    if trace.exists():
        calls = [line for line in trace.read_text().splitlines() if line.strip()]
        assert calls == [], calls[:10]


def test_non_utf8_text_and_damaged_templates_are_format_errors(tmp_path: Path) -> None:
    """Found by corrupting gallery files: text that is not UTF-8 in the schema or a name escaped as a
    UnicodeDecodeError, and templates overwritten with NaN or zeros scored as NaN without a word."""
    import sqlite3

    import numpy as np

    from squeezerface.errors import GalleryFormatError
    from squeezerface.gallery import Gallery

    good = tmp_path / "good.sqlite"
    with Gallery(good, gallery_stress._model(), key=False) as g:
        for i in range(3):
            g.enroll(f"p{i}", gallery_stress.person_templates(f"p{i}", 2))
    nan = np.full(gallery_stress.TOY_MODEL[2], np.nan, "<f4").tobytes()
    damage = {
        "schema": [
            "PRAGMA writable_schema=ON",
            "UPDATE sqlite_master SET name = CAST(x'ff6d657461' AS TEXT) WHERE name = 'meta'",
        ],
        "name": ["UPDATE identities SET name = CAST(x'fffe' AS TEXT) WHERE name = 'p1'"],
        "zeros": [
            f"UPDATE templates SET embedding = zeroblob({4 * gallery_stress.TOY_MODEL[2]}) WHERE id = 2"
        ],
        "nan": [f"UPDATE templates SET embedding = x'{nan.hex()}' WHERE id = 3"],
    }
    for what, statements in damage.items():
        path = tmp_path / f"{what}.sqlite"
        path.write_bytes(good.read_bytes())
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()
        before = path.read_bytes()
        expected = "UTF-8" if what in ("schema", "name") else "damaged template"
        with (  # opening or reading, whichever notices
            pytest.raises(GalleryFormatError, match=expected),
            Gallery(path, gallery_stress._model(), key=False, create=False) as g,
        ):
            g.identities()
            g.identify(gallery_stress.person_templates("p0", 1)[0])
        assert path.read_bytes() == before, what


@pytest.mark.slow
def test_processes_creating_one_new_gallery_at_once(tmp_path: Path) -> None:
    """Found by the benchmark: a process opening a gallery that another was creating could read the header
    before the commit and the tables after it, and call a fresh gallery a foreign database."""
    result = gallery_stress.run_open_race(tmp_path, processes=8, rounds=12)
    assert result["failures"] == [] and result["open_failures"] == 0 and result["broken_files"] == 0
