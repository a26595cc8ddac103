"""`squeezerface enroll / identify / list / forget` with the shipped detector and embedder: decisions, exit
codes, JSON, all-or-nothing enrolment."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_DIFFERENT, EXIT_OK, main


def _lfw_photo(shared: Path, name: str, index: int) -> Path:
    return shared / "lfw" / "images" / name / f"{name}_{index:04d}.jpg"


def _listed(db: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["list", "--db", str(db), "--json"]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


@pytest.mark.data
def test_enrol_identify_list_forget_real_photos(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "staff.sqlite"
    bush = [_lfw_photo(shared_data, "George_W_Bush", i) for i in (7, 16, 65)]
    powell = _lfw_photo(shared_data, "Colin_Powell", 38)

    assert main(["enroll", "--db", str(db), "George_W_Bush", str(bush[0]), str(bush[1])]) == EXIT_OK
    assert "enrolled George_W_Bush: 2 photo(s) added, 2 template(s)" in capsys.readouterr().out

    # a third photo of him, at the card's threshold for FAR 1e-3
    assert main(["identify", "--db", str(db), str(bush[2]), "--json"]) == EXIT_OK
    found = json.loads(capsys.readouterr().out)
    assert found["identified"] == "George_W_Bush" and found["operating_point"] == "far_1e-03"
    assert found["candidates"][0]["accepted"] and found["candidates"][0]["templates"] == 2
    assert found["candidates"][0]["score"] > found["threshold"]

    # someone else, against a threshold nobody reaches: nobody, exit 1
    assert main(["identify", "--db", str(db), str(powell), "--threshold", "0.99"]) == EXIT_DIFFERENT
    out = capsys.readouterr().out
    assert out.startswith("nobody recognised: threshold 0.9900 (explicit)") and "rejected" in out

    # all or nothing: one unreadable photo and no Powell template is written
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    assert main(["enroll", "--db", str(db), "Colin_Powell", str(powell), str(text)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "notes.txt" in err and "nothing enrolled: 1 of 2 photo(s) failed" in err
    listed = _listed(db, capsys)
    assert [(p["name"], p["templates"]) for p in listed["identities"]] == [("George_W_Bush", 2)]
    assert listed["model"]["name"] == "mobilefacenet-taylor-900k" and listed["model"]["embedding_size"] == 128

    assert main(["forget", "--db", str(db), "George_W_Bush", "--vacuum"]) == EXIT_OK
    assert "forgot George_W_Bush: 2 template(s) deleted, file vacuumed" in capsys.readouterr().out
    assert _listed(db, capsys)["identities"] == []
    # an empty gallery recognises nobody
    assert main(["identify", "--db", str(db), str(bush[2])]) == EXIT_DIFFERENT
    assert "nobody recognised" in capsys.readouterr().out


def test_failed_enrolment_creates_no_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "new.sqlite"
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((120, 100, 3), 128, np.uint8))
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    assert main(["enroll", "--db", str(db), "ada", str(grey), str(text)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no face found in" in err and "cannot decode image" in err and "2 of 2 photo(s) failed" in err
    assert not db.exists()


def test_commands_on_missing_or_foreign_files_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sqlite"
    assert main(["list", "--db", str(missing)]) == EXIT_BAD_INPUT
    assert "no gallery at" in capsys.readouterr().err
    assert main(["forget", "--db", str(missing), "ada"]) == EXIT_BAD_INPUT
    assert main(["identify", "--db", str(missing), "photo.jpg"]) == EXIT_BAD_INPUT
    assert "no gallery at" in capsys.readouterr().err
    assert not missing.exists()
    foreign = tmp_path / "photo.jpg"
    foreign.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 8)
    before = foreign.read_bytes()
    assert main(["enroll", "--db", str(foreign), "ada", "a.jpg"]) == EXIT_BAD_INPUT
    assert "not a squeezerface gallery" in capsys.readouterr().err
    assert foreign.read_bytes() == before


def test_empty_gallery_list_and_unknown_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from squeezerface.gallery import Gallery

    db = tmp_path / "empty.sqlite"
    Gallery(db).close()
    assert main(["list", "--db", str(db)]) == EXIT_OK
    assert "0 identities" in capsys.readouterr().out
    assert main(["forget", "--db", str(db), "ada"]) == EXIT_BAD_INPUT
    assert "no identity named 'ada'" in capsys.readouterr().err


def test_identify_far_and_threshold_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["identify", "--db", "g.sqlite", "a.jpg", "--far", "1e-3", "--threshold", "0.5"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
