"""SqueezerFaceNet behind the `FaceEmbedder` interface, so `squeezerface eval` and `calibrate` can measure it.

Embedding comes from a shipped (or given) model file through `FaceEmbeddingModel`. Faces and landmarks come
from a *locator*: `tinyface` (the shipped detector, no extra dependency; the default), a detector model
file, or the name of another `FaceEmbedder` used only for its `detect`/`locate` (`dlib`: the teacher,
whose landmarks aligned the training faces and the model cards' LFW figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from squeezerface.align import ARCFACE_TEMPLATE_112
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import FaceEmbedder, build_embedder
from squeezerface.face import Face
from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER


def template_face(box: tuple[float, float, float, float]) -> Face:
    """A face assumed to fill `box`, with the alignment template's 5 points scaled into it (no detection)."""
    x1, y1, x2, y2 = box
    side = min(x2 - x1, y2 - y1)
    x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    landmarks = ARCFACE_TEMPLATE_112 / 112.0 * side + np.array([x0, y0], np.float32)
    return Face(box=box, landmarks=landmarks, score=1.0, detected=False)


class DetectorLocator:
    """The runtime detector as a locator; `locate` falls back to the template in the assumed box."""

    def __init__(self, model: str | Path = DEFAULT_DETECTOR, threads: int = 1) -> None:
        from squeezerface.detect import FaceDetector

        self.detector = FaceDetector(model).prepare(threads)

    def fingerprint(self) -> str:
        d = self.detector
        return f"{d.card.file}@{d.card.sha256[:12]}[size={d.input_size},score={d.score_threshold}]"

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        return template_face(box)


class SqueezerFaceNetEmbedder(FaceEmbedder):
    name = "squeezerfacenet"

    def __init__(
        self, model: str | Path = DEFAULT_EMBEDDER, locator: str = "tinyface", threads: int = 1
    ) -> None:
        self.model = FaceEmbeddingModel(model).prepare(threads)
        if locator == "tinyface":
            self.locator: FaceEmbedder | DetectorLocator = DetectorLocator(threads=threads)
        elif str(locator).endswith((".onnx", ".tflite")):
            self.locator = DetectorLocator(locator, threads)
        else:
            self.locator = build_embedder(locator)
        self.version = f"{self.model.card.version}+{self.model.card.sha256[:12]}"
        self.embedding_size = self.model.embedding_size

    def config(self) -> dict:
        return {"model": self.model.card.file, "locator": self.locator.fingerprint()}

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.locator.detect(image)

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        return self.locator.locate(image, box)

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.embedding_size), np.float32)
        return self.model.get_feat(np.stack([self.model.align(image, f) for f in faces]))
