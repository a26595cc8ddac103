"""SqueezerFaceNet behind the `FaceEmbedder` interface, so `squeezerface eval` and `calibrate` measure it.

It is a thin adapter over `FaceVerifier`, the runtime's one face path: the same face choice, fallback,
quality gate, alignment and embedding as `squeezerface verify`, `identify` and `enroll`, so thresholds set by
`calibrate` hold in the app. Faces come from a *locator*: `tinyface` (the shipped detector + landmark
refiner, no extra dependency; the default), a detector model file, or the name of another `FaceEmbedder`
used only for its `detect` (`dlib`: the teacher, whose landmarks aligned the training faces).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from squeezerface.align import template_face
from squeezerface.embedders.base import (
    BUILTIN_EMBEDDERS,
    FaceEmbedder,
    Fallback,
    PhotoEmbedding,
    SelectPolicy,
    build_embedder,
)
from squeezerface.errors import OptionError
from squeezerface.face import Face
from squeezerface.quality import QualityThresholds
from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER

if TYPE_CHECKING:
    from squeezerface.bench.yunet_peer import YuNetDetector

__all__ = ["DetectorLocator", "SqueezerFaceNetEmbedder", "template_face"]

LOCATORS = (
    "tinyface, a detector file (.onnx/.tflite), yunet or yunet:FILE (OpenCV's YuNet, the peer), or an "
    "embedder name used for its faces (dlib)"
)


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


def make_locator(locator: str, threads: int = 1) -> DetectorLocator | FaceEmbedder | YuNetDetector:
    """A locator by name; an unknown one is an OptionError naming what is accepted."""
    if locator == "tinyface":
        return DetectorLocator(threads=threads)
    if str(locator) == "yunet" or str(locator).startswith("yunet:"):
        from squeezerface.bench.yunet_peer import YuNetDetector

        return YuNetDetector(locator, threads=threads)
    if str(locator).endswith((".onnx", ".tflite")):
        return DetectorLocator(locator, threads)
    if locator not in BUILTIN_EMBEDDERS and ":" not in str(locator):
        raise OptionError("locator", f"unknown locator {locator!r}: use {LOCATORS}")
    return build_embedder(locator)


class SqueezerFaceNetEmbedder(FaceEmbedder):
    """The shipped pipeline (`FaceVerifier`) as an evaluation embedder."""

    name = "squeezerfacenet"
    legacy_cache_key = False  # its face path changed with 0.2: never reuse embeddings cached before

    def __init__(
        self, model: str | Path = DEFAULT_EMBEDDER, locator: str = "tinyface", threads: int = 1
    ) -> None:
        from squeezerface.verify import FaceVerifier

        self.locator = make_locator(locator, threads)
        # our detector itself, not its locator wrapper: the verifier then searches a photo exactly as
        # `verify` does (level by level, stopping once the subject is settled), so both pick the same face
        detector = self.locator.detector if isinstance(self.locator, DetectorLocator) else self.locator
        self.verifier = FaceVerifier(model, detector, threads, quality=None)
        self.model = self.verifier.embedder
        self.version = f"{self.model.card.version}+{self.model.card.sha256[:12]}"
        self.embedding_size = self.model.embedding_size

    def config(self) -> dict:
        return {"model": self.model.card.file, "locator": self.locator.fingerprint()}

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.locator.detect(image)

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        return template_face(box)

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return self.verifier.embed(image, faces=list(faces))

    def embed_photo(
        self,
        image: np.ndarray,
        policy: SelectPolicy = "largest",
        fallback: Fallback | None = None,
        with_flip: bool = False,
        quality: QualityThresholds | None = None,
    ) -> PhotoEmbedding:
        """Through `FaceVerifier.analyze`: the app's face choice, fallback and gate, byte for byte."""
        r = self.verifier.analyze(
            image, "<photo>", policy=policy, fallback=fallback, quality=quality, with_flip=with_flip
        )
        return PhotoEmbedding(r.embedding, r.face, len(r.faces), r.flipped)

    def default_threshold(self, far: float = 1e-3) -> tuple[float, str] | None:
        """The card's threshold at `far` (None when the card has none)."""
        card = self.model.card
        if card.calibration is None:
            return None
        t = self.verifier.threshold(far)
        return t.value, t.operating_point
