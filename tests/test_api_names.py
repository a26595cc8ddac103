"""API (issue 16 item 4) and thresholds that hold (issue 14 item 5): each test failed before.

- `threshold()` returned a bare tuple; the decision was `same` in `Match` but `accepted` in `Candidate`;
- `ModelFileError`, `GalleryError`, `FaceDetector`, `ModelInfo` were not importable from `squeezerface`;
- `calibrate` took one root; reports did not show the FAR measured at the card's default threshold.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import squeezerface
from squeezerface.evaluation import _default_threshold_lines, far_at_threshold
from squeezerface.thresholds import _labelled_photos
from squeezerface.verify import Match, Threshold


@pytest.mark.parametrize(
    "name",
    [
        "ModelFileError",
        "GalleryError",
        "FaceDetector",
        "ModelInfo",
        "Threshold",
        "FaceResult",
        "OptionError",
        "GalleryReadOnlyError",
        "ImageTooLargeError",
        "OperatingPointError",
        "Candidate",
        "Verification",
    ],
)
def test_names_users_are_told_to_use_are_top_level(name: str) -> None:
    assert getattr(squeezerface, name).__name__ == name
    assert name in squeezerface.__all__


def test_one_decision_field_and_old_name_warns() -> None:
    from squeezerface.gallery import Candidate, Verification

    fields = {"accepted"}
    for record in (Match, Candidate, Verification):
        assert fields <= set(record.__dataclass_fields__), record
    match = Match(0.8, 0.5, True, "far_1e-03", "m.onnx")
    with pytest.warns(DeprecationWarning, match="accepted"):
        assert match.same is True
    assert match.to_dict()["accepted"] is True


def test_threshold_is_a_record_and_tuple_use_warns() -> None:
    t = Threshold(0.42, "far_1e-03", 1e-3, 8e-4, 12_000, 900)
    assert Threshold.__doc__ and "accept" in Threshold.__doc__
    with pytest.warns(DeprecationWarning):
        value, point = t
    assert (value, point) == (0.42, "far_1e-03")
    with pytest.warns(DeprecationWarning):
        assert t[0] == 0.42
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert t.value == 0.42 and t.to_dict()["nominal_far"] == 1e-3


def test_far_measured_at_the_default_threshold_beside_the_nominal() -> None:
    labels = np.array([True] * 10 + [False] * 1000)
    scores = np.concatenate([np.full(10, 0.9), np.linspace(-0.5, 0.6, 1000)])
    d = far_at_threshold(scores, labels, 0.5, "far_1e-03")
    expected = int((scores[~labels] > 0.5).sum())
    assert d["false_accepts"] == expected and d["impostor_pairs"] == 1000 and d["genuine_pairs"] == 10
    assert d["measured_far"] == pytest.approx(expected / 1000) and d["nominal_far"] == 1e-3
    assert d["far_ratio"] == pytest.approx(expected / 1000 / 1e-3)
    lines = _default_threshold_lines({"far_at_default_threshold": d})
    assert f"{expected} of 1000 impostor pairs" in lines[0] and "nominal 0.001" in lines[0]


def test_calibrate_takes_several_roots_and_keeps_their_identities_apart(tmp_path: Path) -> None:
    for root in ("celeba", "pins"):
        for ident in ("1", "2"):
            folder = tmp_path / root / ident
            folder.mkdir(parents=True)
            for i in range(2):
                cv2.imwrite(str(folder / f"{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
    paths, identities, source = _labelled_photos([tmp_path / "celeba", tmp_path / "pins"])
    assert len(paths) == 8 and len(set(identities.tolist())) == 4  # "1" of celeba is not "1" of pins
    assert "celeba" in source and "pins" in source
    from squeezerface.cli import build_parser

    args = build_parser().parse_args(["calibrate", "--root", "a", "--root", "b", "--out", "c.json"])
    assert args.root == [Path("a"), Path("b")] and args.fallback_box == 0.0 and not args.no_quality_gate


def test_check_sha256_replaces_verify_keyword() -> None:
    """`verify=` meant "check SHA-256" in four places while `FaceVerifier.verify` decides faces."""
    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.modelcard import load_card
    from squeezerface.shipped import DEFAULT_EMBEDDER, model_path

    path = model_path(DEFAULT_EMBEDDER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_card(path, check_sha256=False).file == Path(path).name
        FaceEmbeddingModel(DEFAULT_EMBEDDER, check_sha256=True)
        squeezerface.FaceVerifier()  # the package's own classes raise no warning
    with pytest.warns(DeprecationWarning, match="check_sha256"):
        load_card(path, verify=False)
    with pytest.warns(DeprecationWarning, match="check_sha256"):
        FaceEmbeddingModel(DEFAULT_EMBEDDER, verify=False)
