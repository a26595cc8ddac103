"""The one interface every face embedder implements: the dlib teacher now, our own models later.

The detector/landmark step is explicit: `detect` finds faces, `locate` puts landmarks on a face whose box is
assumed (the documented no-face fallback), `embed` turns faces into L2-normalised vectors. `embed_photo`
composes them with a selection policy and a fallback, so that evaluation never silently drops a photo.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from squeezerface.face import Face

SelectPolicy = Literal["central", "largest"]


class FaceEmbedder(ABC):
    """A face embedder with its own detection and landmark step.

    Implementations load their models in `__init__` (once per process) and keep no other state, so one
    instance may serve many images and worker processes can rebuild it from `EmbedderSpec`.
    """

    name: str
    version: str
    embedding_size: int

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, with 5 landmarks each (possibly empty)."""

    @abstractmethod
    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        """Landmarks for a face assumed to fill `box` (used when `detect` finds nothing)."""

    @abstractmethod
    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(len(faces), embedding_size) float32 array of unit vectors, one per face."""

    def config(self) -> dict:
        """Settings that change the output; part of the cache key."""
        return {}

    def fingerprint(self) -> str:
        """Identifies this embedder's output exactly: name, version and config."""
        cfg = ",".join(f"{k}={v}" for k, v in sorted(self.config().items()))
        return f"{self.name}@{self.version}[{cfg}]"


@dataclass(frozen=True)
class Fallback:
    """What to do when the detector finds no face: assume one in a centred box.

    Cropped benchmark sets (LFW, CelebA crops) are centred on their subject, so a centred square covering
    `box_fraction` of the shorter side is where the face is; the embedder's own landmark step then places
    the 5 points inside it. `enabled=False` turns a no-face photo into an error instead.
    """

    enabled: bool = True
    box_fraction: float = 0.5

    def box(self, height: int, width: int) -> tuple[float, float, float, float]:
        side = self.box_fraction * min(height, width)
        cx, cy = width / 2.0, height / 2.0
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


@dataclass(frozen=True)
class PhotoEmbedding:
    """The embedding of the one face chosen in a photo, and how it was found."""

    embedding: np.ndarray
    face: Face
    faces_found: int
    flipped: np.ndarray | None = None
    """Embedding of the horizontally mirrored photo's face (exact targets for flip augmentation)."""

    @property
    def used_fallback(self) -> bool:
        return not self.face.detected


def select_face(faces: Sequence[Face], height: int, width: int, policy: SelectPolicy = "central") -> Face:
    """Pick the subject among several faces: nearest the image centre, or the largest."""
    if not faces:
        raise ValueError("no faces to select from")
    if policy == "largest":
        return max(faces, key=lambda f: f.area)
    if policy == "central":
        cx, cy = width / 2.0, height / 2.0

        def dist(f: Face) -> float:
            return ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2

        return min(faces, key=dist)
    raise ValueError(f"unknown face selection policy {policy!r}; use 'central' or 'largest'")


def embed_photo(
    embedder: FaceEmbedder,
    image: np.ndarray,
    policy: SelectPolicy = "central",
    fallback: Fallback | None = None,
    with_flip: bool = False,
) -> PhotoEmbedding:
    """Detect, select one face, embed it; use `fallback` when nothing is detected.

    `with_flip` also embeds the mirrored photo's face (same face, mirrored landmarks), for distillation
    targets of flipped training images and for flip-averaged evaluation.
    """
    from squeezerface.errors import NoFaceError

    fallback = fallback or Fallback()
    h, w = image.shape[:2]
    faces = embedder.detect(image)
    if faces:
        face = select_face(faces, h, w, policy)
    elif fallback.enabled:
        face = embedder.locate(image, fallback.box(h, w))
    else:
        raise NoFaceError("no face found in the image (fallback disabled)")
    vector = embedder.embed(image, [face])[0]
    flipped = None
    if with_flip:
        mirror = np.ascontiguousarray(image[:, ::-1])
        flipped = embedder.embed(mirror, [face.mirrored(w)])[0]
    return PhotoEmbedding(embedding=vector, face=face, faces_found=len(faces), flipped=flipped)


@dataclass(frozen=True)
class EmbedderSpec:
    """A picklable recipe for an embedder, so worker processes can build their own copy.

    `name` is a built-in name (see `BUILTIN_EMBEDDERS`) or `package.module:factory` for a user's own.
    """

    name: str
    options: tuple[tuple[str, object], ...] = ()

    def build(self) -> FaceEmbedder:
        return build_embedder(self.name, **dict(self.options))


BUILTIN_EMBEDDERS: dict[str, str] = {
    "dlib": "squeezerface.embedders.dlib_resnet:DlibResNetEmbedder",
    "squeezerfacenet": "squeezerface.embedders.squeezerfacenet:SqueezerFaceNetEmbedder",
}


def build_embedder(name: str, **options: object) -> FaceEmbedder:
    """Instantiate an embedder by built-in name or `module:factory` path."""
    target = BUILTIN_EMBEDDERS.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(BUILTIN_EMBEDDERS))
        raise ValueError(f"unknown embedder {name!r}: use one of {known} or 'package.module:factory'")
    module_name, attr = target.split(":", 1)
    module = importlib.import_module(module_name)
    factory = getattr(module, attr)
    embedder = factory(**options)
    if not isinstance(embedder, FaceEmbedder):
        raise TypeError(f"{target} returned {type(embedder).__name__}, not a FaceEmbedder")
    return embedder


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
