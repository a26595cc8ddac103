"""Model cards: preprocessing from the input spec, thresholds at operating points, loading and checking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from squeezerface.errors import CalibrationError, ModelFileError
from squeezerface.imageio import sha256_file
from squeezerface.modelcard import (
    InputSpec,
    ModelCard,
    calibrate,
    card_path,
    load_card,
    point_name,
    save_card,
)


def _scores(n_gen: int = 2000, n_imp: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(0.7, 0.1, n_gen), rng.normal(0.1, 0.1, n_imp)])
    return s, np.concatenate([np.ones(n_gen, bool), np.zeros(n_imp, bool)])


def test_prepare_normalises_and_lays_out() -> None:
    faces = np.zeros((2, 112, 112, 3), np.uint8)
    faces[..., 0] = 255
    nchw = InputSpec().prepare(faces)
    assert nchw.shape == (2, 3, 112, 112) and nchw.dtype == np.float32
    assert nchw[0, 0, 0, 0] == pytest.approx((255 - 127.5) / 128)
    assert nchw[0, 1, 0, 0] == pytest.approx(-127.5 / 128)
    nhwc = InputSpec(layout="NHWC").prepare(faces[0])  # one face without a batch axis
    assert nhwc.shape == (1, 112, 112, 3)
    bgr = InputSpec(channel_order="BGR", layout="NHWC").prepare(faces)
    assert bgr[0, 0, 0, 2] == pytest.approx((255 - 127.5) / 128)


@pytest.mark.parametrize(
    ("faces", "error"),
    [
        (np.zeros((1, 100, 112, 3), np.uint8), ValueError),
        (np.zeros((1, 112, 112, 4), np.uint8), ValueError),
        (np.zeros((1, 112, 112, 3), np.float32), TypeError),
    ],
)
def test_prepare_rejects_wrong_faces(faces: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        InputSpec().prepare(faces)


def test_thresholds_hold_their_far_on_the_calibration_pairs() -> None:
    s, lab = _scores()
    cal = calibrate(s, lab, "synthetic")
    assert [p.name for p in cal.points] == ["far_1e-02", "far_1e-03", "far_1e-04", "eer"]
    for p in cal.points[:-1]:
        assert p.target_far is not None
        realised = np.mean(s[~lab] > p.threshold)
        assert realised <= p.target_far and realised == pytest.approx(p.far)
        assert p.tar == pytest.approx(np.mean(s[lab] > p.threshold))
        assert (p.genuine_pairs, p.impostor_pairs) == (2000, 20000)
    thresholds = [p.threshold for p in cal.points[:-1]]
    assert thresholds == sorted(thresholds)  # a stricter FAR needs a higher threshold
    eer = cal.point("eer")
    assert abs(eer.far - (1 - eer.tar)) < 0.01


def test_far_the_data_cannot_support_is_named_not_guessed() -> None:
    s, lab = _scores(n_imp=5000)
    cal = calibrate(s, lab, "synthetic")
    assert "far_1e-04" not in [p.name for p in cal.points]
    assert cal.unsupported == ("far_1e-04 (needs 10000 impostor pairs)",)


def test_too_few_pairs_is_a_typed_error() -> None:
    with pytest.raises(CalibrationError, match="at least 10"):
        calibrate(np.array([0.1, 0.9]), np.array([False, True]), "tiny")


@pytest.mark.parametrize("name", ["far_1e-3", "1e-3", 0.001, "FAR_1E-03", "far1e-3"])
def test_operating_point_names_are_forgiving(name: str | float) -> None:
    assert point_name(name) == "far_1e-03"


def test_unknown_point_is_a_key_error() -> None:
    cal = calibrate(*_scores(), "synthetic")
    with pytest.raises(KeyError, match="eer"):
        cal.point("far_0.5")
    with pytest.raises(KeyError):
        point_name("strict")


def _card(model: Path) -> ModelCard:
    return ModelCard(
        name="m",
        version="1",
        file=model.name,
        format="onnx",
        precision="fp32",
        sha256=sha256_file(model),
        size_bytes=model.stat().st_size,
        params=1,
        mflops=1.0,
        embedding_size=128,
        input=InputSpec(),
        licence="research use only",
        calibration=calibrate(*_scores(), "synthetic"),
    )


def test_card_round_trips_and_checks_the_file(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really a model")
    card = _card(model)
    save_card(card, card_path(model))
    assert card_path(model).name == "m.onnx.json"
    loaded = load_card(model)
    assert loaded == card
    assert loaded.threshold("far_1e-3") == card.calibration.point("far_1e-03").threshold
    model.write_bytes(b"another file")
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_card(model)
    assert load_card(model, check_sha256=False).name == "m"


def test_missing_unreadable_and_future_cards(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="no model card"):
        load_card(model)
    card_path(model).write_text("{not json")
    with pytest.raises(ModelFileError, match="unreadable"):
        load_card(model)
    d = _card(model).to_dict()
    d["schema"] = 99
    card_path(model).write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match="schema"):
        load_card(model)


def test_card_without_calibration_says_how_to_get_one(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    card = _card(model).with_calibration(None)  # type: ignore[arg-type]
    with pytest.raises(ModelFileError, match="squeezerface calibrate"):
        card.threshold()
