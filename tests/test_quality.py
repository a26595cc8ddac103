"""The quality gate's pure functions: size, pose and sharpness measurements, reasons, thresholds, errors."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import cv2
import numpy as np
import pytest

from squeezerface.align import ARCFACE_TEMPLATE_112
from squeezerface.errors import LowQualityError, SqueezerfaceError
from squeezerface.face import Face
from squeezerface.quality import (
    NOSE_DEPTH_RATIO,
    FaceQuality,
    QualityThresholds,
    assess,
    box_side,
    inter_ocular_distance,
    roll_degrees,
    sharpness,
    yaw_degrees,
)

BOX = (0.0, 0.0, 112.0, 112.0)
TEMPLATE_IOD = float(np.hypot(*(ARCFACE_TEMPLATE_112[1] - ARCFACE_TEMPLATE_112[0])))


def _rotated(landmarks: np.ndarray, degrees: float, centre: tuple[float, float] = (56.0, 56.0)) -> np.ndarray:
    """Landmarks rotated clockwise on screen (y down) by `degrees` about `centre`."""
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    c = np.array(centre)
    return ((landmarks - c) @ rot.T + c).astype(np.float32)


def _turned(yaw: float) -> np.ndarray:
    """The template with the nose moved along the eye line as a head turned by `yaw` degrees would."""
    lm = ARCFACE_TEMPLATE_112.copy()
    eyes_mid = (lm[0] + lm[1]) / 2
    lm[2, 0] = eyes_mid[0] + NOSE_DEPTH_RATIO * math.tan(math.radians(yaw)) * TEMPLATE_IOD
    return lm


def _sharp_face() -> np.ndarray:
    """A synthetic 112x112 RGB 'face': skin-toned disc, dark eyes, nostrils, mouth, and fine texture."""
    rng = np.random.default_rng(0)
    img = np.full((112, 112, 3), (60, 70, 80), np.uint8)
    cv2.ellipse(img, (56, 60), (40, 52), 0, 0, 360, (200, 160, 140), -1)
    for x, y in ARCFACE_TEMPLATE_112[:2]:
        cv2.circle(img, (round(x), round(y)), 6, (30, 20, 20), -1)
        cv2.circle(img, (round(x) + 2, round(y) - 2), 1, (255, 255, 255), -1)
    cv2.line(img, (53, 74), (59, 74), (90, 60, 60), 2)
    cv2.line(img, (42, 92), (70, 92), (120, 40, 50), 3)
    noise = rng.integers(-12, 13, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------- geometry


def test_frontal_template_face_passes_with_no_reasons() -> None:
    q = assess(ARCFACE_TEMPLATE_112, BOX, _sharp_face())
    assert q.ok and q.reasons == ()
    assert q.iod == pytest.approx(TEMPLATE_IOD)
    assert abs(q.yaw) < 1.0 and abs(q.roll) < 1.0
    assert q.face_size == 112.0 and q.sharpness is not None and q.sharpness > 100


@pytest.mark.parametrize("angle", [-170.0, -60.0, -30.0, -5.0, 0.0, 12.5, 44.0, 90.0, 135.0])
def test_roll_is_the_eye_line_angle_and_leaves_size_and_yaw_alone(angle: float) -> None:
    lm = _rotated(ARCFACE_TEMPLATE_112, angle)
    base = roll_degrees(ARCFACE_TEMPLATE_112)
    assert roll_degrees(lm) == pytest.approx(base + angle, abs=1e-3)
    assert inter_ocular_distance(lm) == pytest.approx(TEMPLATE_IOD, rel=1e-5)
    assert yaw_degrees(lm) == pytest.approx(yaw_degrees(ARCFACE_TEMPLATE_112), abs=1e-3)


def test_roll_beyond_the_limit_is_a_pose_reason_and_upside_down_fails() -> None:
    assert assess(_rotated(ARCFACE_TEMPLATE_112, 30), BOX).ok
    tilted = assess(_rotated(ARCFACE_TEMPLATE_112, 60), BOX)
    assert not tilted.ok and len(tilted.reasons) == 1
    assert tilted.reasons[0].startswith("pose too far off: roll +60")
    upside_down = assess(_rotated(ARCFACE_TEMPLATE_112, 180), BOX)
    assert abs(upside_down.roll) > 170 and "roll" in upside_down.reasons[0]


@pytest.mark.parametrize("yaw", [-60.0, -30.0, -10.0, 0.0, 20.0, 44.0, 70.0])
def test_yaw_proxy_inverts_the_nose_offset(yaw: float) -> None:
    assert yaw_degrees(_turned(yaw)) == pytest.approx(yaw, abs=0.5)  # the template's nose is 0.2 deg off


def test_yaw_is_measured_along_the_eye_line_whatever_the_roll() -> None:
    lm = _rotated(_turned(30.0), 35.0)
    assert yaw_degrees(lm) == pytest.approx(30.0, abs=0.5)
    assert roll_degrees(lm) == pytest.approx(35.0, abs=0.5)


def test_yaw_beyond_the_limit_fails_with_its_sign() -> None:
    assert assess(_turned(40), BOX).ok
    right = assess(_turned(60), BOX)
    left = assess(_turned(-60), BOX)
    assert right.yaw > 0 > left.yaw
    assert right.reasons == ("pose too far off: yaw +60 degrees, at most ±45 allowed",)
    assert left.reasons[0].startswith("pose too far off: yaw -60")


def test_coincident_eyes_do_not_divide_by_zero() -> None:
    lm = np.zeros((5, 2), np.float32)
    q = assess(lm, BOX)
    assert q.iod == 0.0 and q.yaw == 0.0
    assert any("too small" in r for r in q.reasons)


def test_small_face_fails_on_eye_distance_and_box_side() -> None:
    small = ARCFACE_TEMPLATE_112 * 0.4  # eyes 14 px apart
    q = assess(small, (0.0, 0.0, 45.0, 30.0))
    assert q.iod == pytest.approx(0.4 * TEMPLATE_IOD, rel=1e-5)
    assert q.face_size == 30.0
    assert q.reasons == (
        "face too small: eyes 14.1 px apart, need at least 20 px",
        "face too small: box side 30.0 px, need at least 32 px",
    )
    assert box_side((10.0, 10.0, 5.0, 50.0)) == 0.0  # an inverted box has no size


# --------------------------------------------------------------------------------------------- sharpness


def test_blurred_face_fails_sharp_face_passes() -> None:
    sharp = _sharp_face()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    assert sharpness(sharp) > 4 * QualityThresholds().min_sharpness
    assert sharpness(blurred) < QualityThresholds().min_sharpness
    q = assess(ARCFACE_TEMPLATE_112, BOX, blurred)
    assert len(q.reasons) == 1 and q.reasons[0].startswith("face too blurred: sharpness ")
    assert assess(ARCFACE_TEMPLATE_112, BOX).sharpness is None  # no crop, no sharpness check


def test_sharpness_is_the_variance_of_opencvs_laplacian() -> None:
    face = _sharp_face()
    grey = face.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=1)[1:-1, 1:-1]
    assert sharpness(face) == pytest.approx(float(lap.var()), rel=1e-9)
    assert sharpness(grey) == pytest.approx(sharpness(face), rel=1e-9)
    assert sharpness(np.full((112, 112, 3), 77, np.uint8)) == 0.0


@pytest.mark.parametrize("shape", [(112, 112, 4), (2, 50), (112,)])
def test_sharpness_rejects_what_is_not_a_crop(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        sharpness(np.zeros(shape, np.uint8))


# --------------------------------------------------------------------------------------------- thresholds


def test_every_failed_check_is_listed_at_once() -> None:
    lm = _rotated(_turned(65.0) * 0.3, 70.0, centre=(0.0, 0.0))
    q = assess(lm, (0.0, 0.0, 20.0, 20.0), cv2.GaussianBlur(_sharp_face(), (0, 0), 4.0))
    kinds = [r.split(":")[0] + ":" + r.split(":")[1].split()[0] for r in q.reasons]
    assert kinds == [
        "face too small:eyes",
        "face too small:box",
        "face too blurred:sharpness",
        "pose too far off:yaw",
        "pose too far off:roll",
    ]
    assert not q.ok


def test_thresholds_are_configurable() -> None:
    small = ARCFACE_TEMPLATE_112 * 0.4
    box = (0.0, 0.0, 45.0, 45.0)
    assert not assess(small, box).ok
    assert assess(small, box, thresholds=QualityThresholds(min_iod=10.0)).ok
    assert not assess(ARCFACE_TEMPLATE_112, BOX, thresholds=QualityThresholds(min_face_size=200.0)).ok
    assert not assess(_turned(20), BOX, thresholds=QualityThresholds(max_yaw=10.0)).ok
    assert assess(_turned(60), BOX, thresholds=QualityThresholds(max_yaw=90.0)).ok
    blurred = cv2.GaussianBlur(_sharp_face(), (0, 0), 3.0)
    assert assess(ARCFACE_TEMPLATE_112, BOX, blurred, QualityThresholds(min_sharpness=0.0)).ok


@pytest.mark.parametrize("field", ["min_iod", "min_face_size", "min_sharpness", "max_yaw", "max_roll"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_bad_thresholds_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        QualityThresholds(**{field: value})


def test_records_are_frozen_and_serialisable() -> None:
    q = assess(ARCFACE_TEMPLATE_112 * 0.4, BOX)
    with pytest.raises(FrozenInstanceError):
        q.iod = 50.0  # type: ignore[misc]
    d = q.to_dict()
    assert d["ok"] is False and d["reasons"] == list(q.reasons) and d["sharpness"] is None
    with pytest.raises(FrozenInstanceError):
        QualityThresholds().min_iod = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- Face, errors


def test_face_quality_field_defaults_to_none_and_mirrors() -> None:
    face = Face(BOX, _rotated(_turned(20.0), 10.0), 0.9)
    assert face.quality is None and face.mirrored(112).quality is None
    q = assess(face.landmarks, face.box, _sharp_face())
    assessed = Face(face.box, face.landmarks, face.score, quality=q)
    flipped = assessed.mirrored(112)
    assert flipped.quality is not None
    assert flipped.quality.yaw == pytest.approx(-q.yaw) and flipped.quality.roll == pytest.approx(-q.roll)
    assert flipped.quality.iod == q.iod and flipped.quality.sharpness == q.sharpness
    # the mirrored quality is what measuring the mirrored landmarks gives
    again = assess(flipped.landmarks, flipped.box)
    assert again.yaw == pytest.approx(flipped.quality.yaw, abs=1e-3)
    assert again.roll == pytest.approx(flipped.quality.roll, abs=1e-3)


def test_low_quality_error_lists_the_reasons() -> None:
    q = assess(_turned(70.0) * 0.3, (0.0, 0.0, 20.0, 20.0))
    err = LowQualityError("photo.jpg", q)
    assert isinstance(err, SqueezerfaceError)
    assert err.quality is q and err.reasons == q.reasons and err.source == "photo.jpg"
    text = str(err)
    assert text.startswith("face in photo.jpg fails the quality gate: face too small: eyes")
    for reason in q.reasons:
        assert reason in text
    assert "quality=None" in text  # says how to turn the gate off


def test_face_quality_ok_property() -> None:
    assert FaceQuality(40.0, 90.0, 100.0, 0.0, 0.0).ok
    assert not FaceQuality(40.0, 90.0, 100.0, 0.0, 0.0, ("face too blurred: x",)).ok
