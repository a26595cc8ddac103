"""SqueezerFaceNet behind the `FaceEmbedder` interface, so `squeezerface eval` and `calibrate` can measure it.

Embedding comes from a shipped (or given) model file through `FaceEmbeddingModel`; faces and landmarks come
from a *locator*, any other `FaceEmbedder` used only for its `detect`/`locate`. Until the runtime has its
own detector that locator is the dlib teacher (the `teacher` extra), which is also how the LFW figures in
the model cards were aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import FaceEmbedder, build_embedder
from squeezerface.face import Face
from squeezerface.shipped import DEFAULT_EMBEDDER


class SqueezerFaceNetEmbedder(FaceEmbedder):
    name = "squeezerfacenet"

    def __init__(self, model: str | Path = DEFAULT_EMBEDDER, locator: str = "dlib", threads: int = 1) -> None:
        self.model = FaceEmbeddingModel(model).prepare(threads)
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
