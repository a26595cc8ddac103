"""Answers a script can read, messages in the CLI's terms (issue 14, "Why"): each test failed before.

- `--json` errors were plain text on stderr with nothing on stdout;
- `-O foo=bar`, `-O locator=nosuch`, `--embedder nosuch` ended in a traceback;
- `--threshold 5` was accepted; `models --json | head` ended in a BrokenPipeError traceback;
- messages gave Python hints (`FaceVerifier(quality=...)`, `policy 'largest'`, `raise max_pixels`);
- a read-only gallery could not be listed ("attempt to write a readonly database");
- the same photo could be enrolled three times, and under two names, without a word.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_OK, main
from squeezerface.errors import (
    GalleryReadOnlyError,
    ImageTooLargeError,
    LowQualityError,
    MultipleFacesError,
)
from squeezerface.gallery import Gallery, ModelInfo
from squeezerface.quality import FaceQuality

MODEL = ModelInfo("m", "1", 4)


def _json_error(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # ONE object on stdout
    error = json.loads(out[0])["error"]
    assert set(error) == {"type", "message", "path"}
    return error


def test_json_error_is_one_object_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jpg"
    assert main(["verify", str(missing), str(missing), "--json"]) == EXIT_BAD_INPUT
    error = _json_error(capsys)
    assert error["type"] == "ImageDecodeError" and error["path"] == str(missing)
    assert main(["list", "--db", str(tmp_path / "none.sqlite"), "--json"]) == EXIT_BAD_INPUT
    error = _json_error(capsys)
    assert error["type"] == "GalleryError" and error["path"] == str(tmp_path / "none.sqlite")


def test_threshold_outside_cosine_range_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["verify", "a.jpg", "b.jpg", "--threshold", "5", "--json"])
    assert done.value.code == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert "[-1, 1]" in captured.err
    assert json.loads(captured.out)["error"]["type"] == "UsageError"
    with pytest.raises(SystemExit):
        main(["identify", "--db", "g.sqlite", "a.jpg", "--top-k", "0"])
    assert "at least 1" in capsys.readouterr().err


def _tiny_pairs(tmp_path: Path) -> list[str]:
    root = tmp_path / "r"
    for name in ("A", "B"):
        (root / name).mkdir(parents=True)
        for i in (1, 2):
            cv2.imwrite(str(root / name / f"{name}_{i:04d}.png"), np.full((64, 64, 3), 100 * i, np.uint8))
    for p in root.rglob("*.png"):
        p.rename(p.with_suffix(".jpg"))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nA 1 2\nA 1 B 2\n")
    return ["eval", "--root", str(root), "--pairs", str(pairs), "--out", str(tmp_path / "o"), "--quiet"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["-O", "foo=bar"], ["-O foo=bar", "no option 'foo'", "locator"]),
        (["-O", "locator=nosuch"], ["-O locator=nosuch", "unknown locator", "tinyface"]),
        (["--embedder", "nosuch"], ["unknown embedder 'nosuch'", "squeezerfacenet"]),
    ],
)
def test_bad_eval_options_are_typed_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: list[str]
) -> None:
    assert main([*_tiny_pairs(tmp_path), "--no-cache", *extra, "--json"]) == EXIT_BAD_INPUT
    error = _json_error(capsys)
    assert all(w in error["message"] for w in words), error
    assert error["type"] in ("OptionError", "UnknownEmbedderError")


def test_broken_pipe_ends_quietly() -> None:
    exe = Path(sys.executable).with_name("squeezerface")
    if not exe.exists():
        pytest.skip("the squeezerface console script is not installed in this environment")
    run = subprocess.run(
        f"'{exe}' models --json | head -c 10", shell=True, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr
    assert run.stdout.startswith("{")


def test_messages_name_the_cli_options() -> None:
    many = MultipleFacesError("a.jpg", 2)
    assert "policy=" in str(many) and "--policy" in many.cli_message()
    poor = LowQualityError(
        "a.jpg", FaceQuality(iod=3.0, face_size=9.0, sharpness=1.0, yaw=0, roll=0, reasons=("x",))
    )
    assert "--no-quality-gate" in poor.cli_message() and "FaceVerifier(" not in poor.cli_message()
    big = ImageTooLargeError("a.png", f"over the cap ({ImageTooLargeError.api_hint})")
    assert "--max-pixels" in big.cli_message() and "raise max_pixels" in str(big)


def test_max_pixels_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((40, 40, 3), np.uint8))
    assert main(["verify", str(big), str(big), "--max-pixels", "100", "--json"]) == EXIT_BAD_INPUT
    error = _json_error(capsys)
    assert error["type"] == "ImageTooLargeError" and "--max-pixels" in error["message"]


def _gallery(path: Path) -> None:
    with Gallery(path, MODEL) as g:
        g.enroll("ada", np.eye(4, dtype=np.float32)[:2])


def test_read_only_handle_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "g.sqlite"
    _gallery(db)
    with Gallery(db, readonly=True) as g:
        assert [p.name for p in g.identities()] == ["ada"]
        assert g.identify(np.eye(4, dtype=np.float32)[0])[0].name == "ada"
        with pytest.raises(GalleryReadOnlyError, match="read-only"):
            g.forget("ada")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write any file")
def test_read_only_file_lists_and_a_write_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "g.sqlite"
    _gallery(db)
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        assert main(["list", "--db", str(db), "--json"]) == EXIT_OK
        assert json.loads(capsys.readouterr().out)["identities"][0]["name"] == "ada"
        assert main(["forget", "--db", str(db), "ada"]) == EXIT_BAD_INPUT
        assert "no permission to write" in capsys.readouterr().err
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)


def test_duplicates_are_found_under_any_name(tmp_path: Path) -> None:
    db = tmp_path / "g.sqlite"
    _gallery(db)
    with Gallery(db, MODEL) as g:
        probe = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0.99, 0.01, 0, 0]], np.float32)
        assert g.duplicates(probe) == [["ada"], [], ["ada"]]


@pytest.mark.data
def test_same_photo_enrolled_twice_is_reported(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "a.jpg"
    shutil.copyfile(shared_data / "lfw" / "images" / "Colin_Powell" / "Colin_Powell_0038.jpg", photo)
    db = str(tmp_path / "g.sqlite")
    assert main(["enroll", "--db", db, "Colin", str(photo)]) == EXIT_OK
    capsys.readouterr()
    assert main(["enroll", "--db", db, "Colin", str(photo)]) == EXIT_BAD_INPUT
    assert "already enrolled as Colin" in capsys.readouterr().err
    assert main(["enroll", "--db", db, "Someone_Else", str(photo)]) == EXIT_BAD_INPUT
    assert "already enrolled as Colin" in capsys.readouterr().err
    assert main(["enroll", "--db", db, "Colin", str(photo), str(photo)]) == EXIT_BAD_INPUT
    assert "same photo as" in capsys.readouterr().err
    assert main(["enroll", "--db", db, "Colin", str(photo), "--allow-duplicate"]) == EXIT_OK
    assert "warning:" in capsys.readouterr().err


@pytest.mark.data
def test_verify_json_reports_faces_found_and_the_one_used(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = shared_data / "lfw" / "images" / "George_W_Bush" / "George_W_Bush_0007.jpg"
    b = shared_data / "lfw" / "images" / "Colin_Powell" / "Colin_Powell_0038.jpg"
    both = tmp_path / "both.jpg"
    cv2.imwrite(str(both), np.hstack([cv2.imread(str(a)), cv2.imread(str(b))]))
    main(["verify", str(both), str(a), "--json"])
    out = json.loads(capsys.readouterr().out)
    first = out["images"][0]
    assert first["faces_found"] == 2 and first["used"] in (0, 1) and not first["fallback"]
    assert len(first["face"]["box"]) == 4 and 0 < first["face"]["score"] <= 1
    assert first["face"]["quality"]["ok"] in (True, False) and "accepted" in out
