"""Face quality: is a detected face good enough to embed? Pure functions of the 5 landmarks, the box and
the aligned crop, so the gate can be tested without any model and tuned per deployment.

What is measured, and why each can make a verification meaningless:

- size: the inter-ocular distance (IOD, pixels of the source image) and the shorter side of the face box.
  The 112x112 template puts the eyes 35 px apart; a face with eyes 10 px apart is blown up 3.5x and the
  embedder sees interpolation, not a face.
- sharpness: the variance of the Laplacian of the aligned 112x112 grey face (Pech-Pacheco et al. 2000).
  Motion blur, defocus and heavy upscaling all remove the high frequencies it measures. It is measured on
  the aligned crop, so it does not depend on the photo's resolution or on how much background it shows.
- pose: a yaw proxy from how far the nose tip sits from the eyes' midpoint along the eye line, and the roll
  (the eye line's angle). Alignment undoes roll, but a face on its side is a sign of a sideways photo; a
  strongly turned face hides half of itself and its 5 landmarks are guesses.

`assess` turns the measurements into a `FaceQuality` with the reasons it fails `QualityThresholds`;
`FaceVerifier` raises `LowQualityError` (squeezerface.errors) for a chosen face that fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from squeezerface.errors import LowQualityError

__all__ = [
    "NOSE_DEPTH_RATIO",
    "FaceQuality",
    "LowQualityError",
    "QualityThresholds",
    "assess",
    "box_side",
    "inter_ocular_distance",
    "roll_degrees",
    "sharpness",
    "yaw_degrees",
]

NOSE_DEPTH_RATIO = 0.5
"""Depth of the nose tip in front of the eyes, as a fraction of the inter-ocular distance (anthropometric
average: pupils ~63 mm apart, nose tip ~30 mm in front of them). Turning the head by yaw y moves the
projected nose tip off the eyes' midpoint by depth * sin(y) while the projected IOD shrinks to IOD * cos(y),
so offset / IOD = NOSE_DEPTH_RATIO * tan(y), which `yaw_degrees` inverts. A proxy: people differ, and the
landmarks of a strongly turned face are themselves uncertain."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the quality gate. A face fails when any measurement is beyond its limit; set a limit to
    0 (minimums) or 180 (angles) to switch that check off.

    Defaults, from first principles rather than any benchmark: eyes at least 20 px apart (the template's
    35 px upscaled less than 1.8x) and a box side of at least 32 px; sharpness (variance of the Laplacian of
    the aligned grey face) at least 25, well below what sharp aligned faces give and above what a
    Gaussian blur of a couple of pixels leaves; yaw within 45 degrees (beyond it the far eye
    and mouth corner are hidden) and roll within 45 degrees (further is a sideways or upside-down photo,
    usually one whose EXIF orientation was lost)."""

    min_iod: float = 20.0
    min_face_size: float = 32.0
    min_sharpness: float = 25.0
    max_yaw: float = 45.0
    max_roll: float = 45.0

    def __post_init__(self) -> None:
        for name in ("min_iod", "min_face_size", "min_sharpness", "max_yaw", "max_roll"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"QualityThresholds.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class FaceQuality:
    """The measurements of one face and the reasons it fails the thresholds it was assessed against.

    iod: inter-ocular distance, pixels of the source image. face_size: shorter side of the box, pixels.
    sharpness: variance of the Laplacian of the aligned grey face (None when no crop was measured).
    yaw: degrees, > 0 when the nose tip lies right of the eyes' midpoint in the image. roll: degrees of the
    eye line from horizontal, > 0 clockwise on screen (y points down). reasons: empty when the face passes.
    """

    iod: float
    face_size: float
    sharpness: float | None
    yaw: float
    roll: float
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def mirrored(self) -> FaceQuality:
        """The same face in the horizontally flipped image: sizes and sharpness kept, angles negated."""
        return replace(self, yaw=-self.yaw, roll=-self.roll)

    def to_dict(self) -> dict:
        return {
            "iod": self.iod,
            "face_size": self.face_size,
            "sharpness": self.sharpness,
            "yaw": self.yaw,
            "roll": self.roll,
            "reasons": list(self.reasons),
            "ok": self.ok,
        }


def _points(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {lm.shape}")
    return lm


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the two eye landmarks, in the landmarks' pixels."""
    lm = _points(landmarks)
    return float(np.hypot(*(lm[1] - lm[0])))


def roll_degrees(landmarks: np.ndarray) -> float:
    """Angle of the eye line (left eye to right eye) from the image's horizontal, in (-180, 180]."""
    lm = _points(landmarks)
    dx, dy = lm[1] - lm[0]
    return float(math.degrees(math.atan2(dy, dx)))


def yaw_degrees(landmarks: np.ndarray, nose_depth: float = NOSE_DEPTH_RATIO) -> float:
    """Yaw proxy in (-90, 90): the nose tip's offset from the eyes' midpoint along the eye line, relative to
    the inter-ocular distance, read through `NOSE_DEPTH_RATIO` (see there). 0 for coincident eyes."""
    lm = _points(landmarks)
    eye_line = lm[1] - lm[0]
    iod = float(np.hypot(*eye_line))
    if iod <= 0.0:
        return 0.0
    offset = float(np.dot(lm[2] - (lm[0] + lm[1]) / 2.0, eye_line / iod)) / iod
    return float(math.degrees(math.atan(offset / nose_depth)))


def box_side(box: tuple[float, float, float, float]) -> float:
    """Shorter side of an (x1, y1, x2, y2) box (0 for an empty one)."""
    x1, y1, x2, y2 = box
    return float(max(min(x2 - x1, y2 - y1), 0.0))


def sharpness(aligned: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a face crop's grey levels (0-255 scale; interior pixels).

    aligned: HxWx3 RGB or HxW grey, any numeric dtype on the 0-255 scale. Equal to the variance of
    `cv2.Laplacian(grey, cv2.CV_64F, ksize=1)` over the interior, without needing OpenCV."""
    x = np.asarray(aligned, dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 3:
        grey = x @ np.array([0.299, 0.587, 0.114])
    elif x.ndim == 2:
        grey = x
    else:
        raise ValueError(f"expected an HxWx3 RGB or HxW grey crop, got shape {x.shape}")
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        raise ValueError(f"crop too small to measure sharpness: {grey.shape}")
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(lap.var())


def assess(
    landmarks: np.ndarray,
    box: tuple[float, float, float, float],
    aligned: np.ndarray | None = None,
    thresholds: QualityThresholds | None = None,
) -> FaceQuality:
    """Measure one face and list every threshold it fails (all of them, not only the first).

    landmarks and box are in pixels of the source image (as in `Face`); aligned is the face's 112x112 crop
    (sharpness is not checked without one)."""
    limits = thresholds or QualityThresholds()
    iod = inter_ocular_distance(landmarks)
    side = box_side(box)
    sharp = None if aligned is None else sharpness(aligned)
    yaw = yaw_degrees(landmarks)
    roll = roll_degrees(landmarks)
    reasons = []
    if iod < limits.min_iod:
        reasons.append(f"face too small: eyes {iod:.1f} px apart, need at least {limits.min_iod:g} px")
    if side < limits.min_face_size:
        reasons.append(f"face too small: box side {side:.1f} px, need at least {limits.min_face_size:g} px")
    if sharp is not None and sharp < limits.min_sharpness:
        reasons.append(f"face too blurred: sharpness {sharp:.1f}, need at least {limits.min_sharpness:g}")
    if abs(yaw) > limits.max_yaw:
        reasons.append(f"pose too far off: yaw {yaw:+.0f} degrees, at most ±{limits.max_yaw:g} allowed")
    if abs(roll) > limits.max_roll:
        reasons.append(f"pose too far off: roll {roll:+.0f} degrees, at most ±{limits.max_roll:g} allowed")
    return FaceQuality(iod=iod, face_size=side, sharpness=sharp, yaw=yaw, roll=roll, reasons=tuple(reasons))
