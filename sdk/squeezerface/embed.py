"""The face embedding model: aligned 112x112 faces in, unit vectors out, on ONNX or LiteRT.

Life cycle as insightface's model classes: construct (reads the card, checks the file's SHA-256),
`prepare` (opens the engine with a thread count), then `get(image, face)` for one detected face or
`get_feat(aligned)` for a batch already aligned. Preprocessing comes from the card, so an NHWC TFLite file
and an NCHW ONNX file are used the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from squeezerface.align import align_face
from squeezerface.backends import Backend, open_backend
from squeezerface.errors import ModelFileError
from squeezerface.face import Face
from squeezerface.modelcard import ModelCard, load_model
from squeezerface.shipped import DEFAULT_EMBEDDER, model_path


class FaceEmbeddingModel:
    """A face embedder described by a model card (see `squeezerface.modelcard`)."""

    def __init__(
        self, model: str | Path = DEFAULT_EMBEDDER, check_sha256: bool = True, *, verify: bool | None = None
    ) -> None:
        """`check_sha256`: check the file against its card's SHA-256 (`verify=`: its old name, deprecated)."""
        if verify is not None:
            warnings.warn(
                "FaceEmbeddingModel(verify=...) is deprecated: use check_sha256=",
                DeprecationWarning,
                stacklevel=2,
            )
            check_sha256 = verify
        self.path = model_path(str(model))
        self.card: ModelCard
        self.card, self._content = load_model(self.path, check_sha256)  # bytes checked: the engine's
        self.backend: Backend | None = None

    @property
    def embedding_size(self) -> int:
        return self.card.embedding_size

    def prepare(self, threads: int = 1) -> FaceEmbeddingModel:
        """Open the inference engine (once; later calls only change nothing). Returns self for chaining."""
        if self.backend is None:
            self.backend = open_backend(self.path, threads=threads, content=self._content)
            self._content = None  # the engine holds the model now
            if self.backend.layout != self.card.input.layout:
                found = self.backend.layout
                raise ModelFileError(
                    f"{self.path}: card says {self.card.input.layout} input, file takes {found}"
                )
        return self

    def get_feat(self, faces: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB aligned faces -> (N, embedding_size) float32 unit vectors."""
        self.prepare()
        assert self.backend is not None
        faces = np.asarray(faces)
        if faces.ndim == 3:
            faces = faces[None]
        out = [
            self.backend.run(self.card.input.prepare(faces[i : i + batch]))
            for i in range(0, len(faces), batch)
        ]
        emb = np.concatenate(out) if out else np.zeros((0, self.embedding_size), np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The 112x112 face this model expects, cut from an RGB uint8 image by the face's 5 landmarks."""
        return align_face(image, face.landmarks, self.card.input.size[0])

    def get(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Embedding of one detected face of an RGB uint8 image."""
        return self.get_feat(self.align(image, face))[0]
