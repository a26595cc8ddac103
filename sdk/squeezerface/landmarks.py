"""Landmark refinement: a second look at each detected face for more exact 5 points.

The detector predicts landmarks from a coarse feature map shared with its score and box heads, at whatever
scale the face has in a 160-pixel letterbox; its points are good enough to find the face, not to align it
as precisely as the embedder deserves. The refiner (like MTCNN's O-Net or a two-stage landmark cascade)
cuts the face out of the full-resolution image with the detector's points, in the embedder's own template
geometry at `CROP` pixels, and regresses the offsets of the 5 points from their template positions. The
crop and the decoding are pure functions here; the training code (`pruning.detector.refine`)
uses the same ones, so the network sees at deployment exactly the crops it was trained on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from squeezerface.align import alignment_matrix, template
from squeezerface.backends import Backend, open_backend
from squeezerface.face import Face
from squeezerface.modelcard import ModelCard, load_model
from squeezerface.shipped import DEFAULT_REFINER, model_path

CROP = 64
"""Side of the refiner's input: the 112x112 alignment template scaled to 64 pixels."""
OFFSET_UNIT = 8.0
"""The network's outputs are point offsets from the template in units of 8 crop pixels (values near +-1)."""


def crop_matrix(landmarks: np.ndarray, size: int = CROP) -> np.ndarray:
    """2x3 matrix from image coordinates to a `size` crop: the points' similarity fit to the template."""
    return alignment_matrix(landmarks, size)


def crop_face(image: np.ndarray, landmarks: np.ndarray, size: int = CROP) -> tuple[np.ndarray, np.ndarray]:
    """The refiner's input cut from an RGB image by rough 5 points, and the 2x3 matrix from image to crop.

    Cut at twice the size with bilinear warping, then halved by pixel-area averaging: most faces are
    larger than the crop, and a plain bilinear warp down by 2-4x aliases (the crop would then depend on
    where the face happens to sit on the pixel grid)."""
    import cv2

    big = crop_matrix(landmarks, 2 * size)
    crop = cv2.resize(
        cv2.warpAffine(
            image, big, (2 * size, 2 * size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ),
        (size, size),
        interpolation=cv2.INTER_AREA,
    )
    # Halving by area: output pixel i averages input pixels 2i and 2i+1, so x_out = (x_in - 0.5) / 2.
    return crop, np.vstack([big[0] / 2, big[1] / 2]) - np.array([[0, 0, 0.25], [0, 0, 0.25]])


def points_from_output(raw: np.ndarray, matrix: np.ndarray, size: int = CROP) -> np.ndarray:
    """Network output (10,) -> the 5 points in image coordinates (undoing the crop's similarity)."""
    crop_points = template(size) + np.asarray(raw, np.float64).reshape(5, 2) * OFFSET_UNIT
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return (crop_points @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)


class LandmarkRefiner:
    """Refines a detected face's 5 landmarks on a crop of the full-resolution image.

    Life cycle as the other models: construct (reads the card, checks SHA-256), `prepare(threads)`, then
    `get(image, face) -> Face` (the same face with refined landmarks). `passes` > 1 re-crops with the
    refined points and refines again."""

    def __init__(self, model: str | Path = DEFAULT_REFINER, passes: int = 1, verify: bool = True) -> None:
        self.path = model_path(str(model))
        self.card: ModelCard
        self.card, self._content = load_model(self.path, verify=verify)  # bytes checked: the engine's
        self.passes = passes
        self.backend: Backend | None = None

    def prepare(self, threads: int = 1) -> LandmarkRefiner:
        if self.backend is None:
            self.backend = open_backend(self.path, threads=threads, content=self._content)
            self._content = None  # the engine holds the model now
            self._spec = replace(self.card.input, layout=self.backend.layout)
        return self

    def refine(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Refined (5, 2) points of one face of an RGB uint8 image, from rough ones."""
        self.prepare()
        assert self.backend is not None
        size = self.card.input.size[0]
        points = np.asarray(landmarks, np.float32)
        for _ in range(self.passes):
            crop, matrix = crop_face(image, points, size)
            raw = self.backend.run(self._spec.prepare(crop[None]))[0]
            points = points_from_output(raw, matrix, size)
        return points

    def get(self, image: np.ndarray, face: Face) -> Face:
        return replace(face, landmarks=self.refine(image, face.landmarks))
