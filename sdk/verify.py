"""Face verification in one object: detect, align, embed, compare, decide, with the shipped models.

`FaceVerifier` composes the detector and the embedder (each a small model class on a backend, as in
insightface's `FaceAnalysis`), loads them once, and turns the embedder card's calibrated thresholds into
decisions at a named operating point. Results are plain records (`Match`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface.detect import FaceDetector
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import select_face
from squeezerface.errors import MultipleFacesError, NoFaceError
from squeezerface.face import Face
from squeezerface.imageio import ImageSource, load_image
from squeezerface.modelcard import point_name
from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER

FacePolicy = Literal["largest", "central", "error"]


@dataclass(frozen=True)
class Match:
    """A comparison of two faces: cosine score, the threshold it was held against, and the decision."""

    score: float
    threshold: float
    same: bool
    operating_point: str  # "far_1e-03", "eer" or "explicit"
    model: str

    def to_dict(self) -> dict:
        return asdict(self)


def choose_face(faces: list[Face], height: int, width: int, policy: FacePolicy, source: str) -> Face:
    """The subject of a photo: the largest face, the most central, or an error when there are several."""
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    if len(faces) > 1 and policy == "error":
        raise MultipleFacesError(source, len(faces))
    return select_face(faces, height, width, "central" if policy == "central" else "largest")


class FaceVerifier:
    """Shipped detector + embedder (or model files of your own), loaded once; `verify(a, b) -> Match`."""

    def __init__(
        self,
        embedder: str | Path = DEFAULT_EMBEDDER,
        detector: str | Path = DEFAULT_DETECTOR,
        threads: int = 1,
        policy: FacePolicy = "largest",
    ) -> None:
        self.embedder = FaceEmbeddingModel(embedder).prepare(threads)
        self.detector = FaceDetector(detector).prepare(threads)
        self.policy: FacePolicy = policy

    def detect(self, image: ImageSource) -> list[Face]:
        return self.detector.detect(load_image(image))

    def embed(self, image: ImageSource, source: str = "the image") -> np.ndarray:
        """Unit embedding of the one face the policy picks in an image."""
        rgb = load_image(image)
        face = choose_face(self.detector.detect(rgb), rgb.shape[0], rgb.shape[1], self.policy, source)
        return self.embedder.get(rgb, face)

    def threshold(self, far: float | str = 1e-3) -> tuple[float, str]:
        name = point_name(far)
        return self.embedder.card.threshold(name), name

    def compare(
        self, a: np.ndarray, b: np.ndarray, far: float | str = 1e-3, threshold: float | None = None
    ) -> Match:
        score = float(np.dot(a, b))
        if threshold is None:
            threshold, point = self.threshold(far)
        else:
            point = "explicit"
        return Match(score, float(threshold), score > threshold, point, self.embedder.card.file)

    def verify(
        self,
        image_a: ImageSource,
        image_b: ImageSource,
        far: float | str = 1e-3,
        threshold: float | None = None,
    ) -> Match:
        """Same person or not, at the card's threshold for `far` (or an explicit cosine `threshold`)."""
        if threshold is None:
            self.threshold(far)  # an operating point the card lacks fails before any image work
        a = self.embed(image_a, _name(image_a))
        b = self.embed(image_b, _name(image_b))
        return self.compare(a, b, far, threshold)


def _name(source: ImageSource) -> str:
    return str(source) if isinstance(source, str | Path) else f"<{type(source).__name__}>"
