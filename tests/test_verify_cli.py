"""`squeezerface verify` with the shipped detector and embedder: decisions, exit codes, JSON, typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_OK, main
from squeezerface.errors import MultipleFacesError, NoFaceError
from squeezerface.face import Face
from squeezerface.verify import FaceVerifier, choose_face

LM = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], np.float32)


def test_face_policy() -> None:
    small = Face((0, 0, 10, 10), LM, 0.9)
    big_corner = Face((0, 0, 60, 60), LM, 0.8)
    central = Face((80, 80, 120, 120), LM, 0.7)
    assert choose_face([small, big_corner, central], 200, 200, "largest", "x") is big_corner
    assert choose_face([small, big_corner, central], 200, 200, "central", "x") is central
    with pytest.raises(MultipleFacesError, match="3 faces found in x"):
        choose_face([small, big_corner, central], 200, 200, "error", "x")
    with pytest.raises(NoFaceError, match="no face found in y"):
        choose_face([], 200, 200, "largest", "y")


def test_grey_image_has_no_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((120, 100, 3), 128, np.uint8))
    assert main(["verify", str(grey), str(grey)]) == EXIT_BAD_INPUT
    assert "no face found in" in capsys.readouterr().err


def _lfw_photo(shared: Path, name: str, index: int = 1) -> Path:
    return shared / "lfw" / "images" / name / f"{name}_{index:04d}.jpg"


@pytest.mark.data
def test_verify_real_photos(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _lfw_photo(shared_data, "George_W_Bush", 7)
    b = _lfw_photo(shared_data, "Colin_Powell", 38)
    assert main(["verify", str(a), str(a), "--json"]) == EXIT_OK
    same = json.loads(capsys.readouterr().out)
    assert same["accepted"] and same["score"] > 0.99 and same["operating_point"] == "far_1e-03"
    assert same["threshold"] == pytest.approx(FaceVerifier().threshold(1e-3).value)
    # a threshold no two different people's photos reach: the decision and exit status follow it
    assert main(["verify", str(a), str(b), "--threshold", "0.999"]) == 1
    assert "different people" in capsys.readouterr().out
    # two faces side by side: an error under --policy error, the larger one otherwise
    pair = np.hstack([cv2.imread(str(a)), cv2.imread(str(b))])
    both = tmp_path / "both.jpg"
    cv2.imwrite(str(both), pair)
    assert main(["verify", str(both), str(a), "--policy", "error"]) == EXIT_BAD_INPUT
    assert "2 faces found" in capsys.readouterr().err


def test_operating_point_the_card_lacks_is_exit_2_before_any_image_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["verify", "missing_a.jpg", "missing_b.jpg", "--far", "0.5"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no operating point 'far_5e-01'" in err and "missing_a" not in err
    assert main(["verify", "missing_a.jpg", "missing_b.jpg", "--far", "strict"]) == EXIT_BAD_INPUT
    assert "not an operating point" in capsys.readouterr().err
