"""The `Face` record: what a detector found, in the coordinates of the image it was given."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from squeezerface.quality import FaceQuality

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""Order of the 5 landmarks. "left"/"right" are as seen in the image (left_eye has the smaller x in an
upright frontal face), the convention of the ArcFace/insightface 112x112 template."""


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    box: (x1, y1, x2, y2) in pixels of the source image.
    landmarks: (5, 2) float32 array of (x, y), in `LANDMARK_NAMES` order.
    score: detector confidence (detector-specific scale; 1.0 for a face assumed without detection).
    detected: False when the face was not found by the detector but assumed by a documented fallback.
    quality: size, sharpness and pose measurements (`squeezerface.quality.FaceQuality`), or None when not
        assessed (`FaceVerifier.detect` fills it in; a bare detector does not).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float = 1.0
    detected: bool = True
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    quality: FaceQuality | None = None

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float32)
        if lm.shape != (5, 2):
            raise ValueError(f"Face.landmarks must have shape (5, 2), got {lm.shape}")
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))

    def mirrored(self, image_width: int) -> Face:
        """This face in the horizontally flipped image: coordinates reflected, left/right points swapped."""
        x1, y1, x2, y2 = self.box
        lm = self.landmarks.copy()
        lm[:, 0] = image_width - 1 - lm[:, 0]
        lm = lm[[1, 0, 2, 4, 3]]
        box = (image_width - 1 - x2, y1, image_width - 1 - x1, y2)
        quality = None if self.quality is None else self.quality.mirrored()
        return Face(box=box, landmarks=lm, score=self.score, detected=self.detected, quality=quality)

    def scaled(self, factor: float) -> Face:
        """This face in the same photo scaled by `factor` (box and landmarks multiplied; quality kept)."""
        x1, y1, x2, y2 = self.box
        box = (x1 * factor, y1 * factor, x2 * factor, y2 * factor)
        return replace(self, box=box, landmarks=self.landmarks * np.float32(factor))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)
