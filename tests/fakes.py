"""A tiny deterministic embedder for testing the evaluation plumbing without model weights.

Its "identity" is the image's mean colour: photos of one synthetic person share a base colour.
A photo whose top-left 8x8 corner is black has "no face" (so the fallback path is exercised).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from squeezerface.embedders.base import FaceEmbedder, l2_normalize
from squeezerface.face import Face


def _landmarks_in(box: Sequence[float]) -> np.ndarray:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    rel = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    return np.column_stack([x1 + rel[:, 0] * w, y1 + rel[:, 1] * h])


class ColourEmbedder(FaceEmbedder):
    name = "colour"
    version = "test"
    embedding_size = 3

    def __init__(self, bias: float = 0.0) -> None:
        self.bias = float(bias)

    def config(self) -> dict:
        return {"bias": self.bias}

    def detect(self, image: np.ndarray) -> list[Face]:
        if image[:8, :8].mean() < 10:
            return []
        h, w = image.shape[:2]
        box = (w * 0.2, h * 0.2, w * 0.8, h * 0.8)
        return [Face(box=box, landmarks=_landmarks_in(box), score=0.9)]

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        return Face(box=box, landmarks=_landmarks_in(box), score=1.0, detected=False)

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        out = []
        for f in faces:
            x1, y1, x2, y2 = (round(v) for v in f.box)
            out.append(image[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0) - 127.5 + self.bias)
        return l2_normalize(np.array(out))


def make_colour_embedder(**options: object) -> ColourEmbedder:
    return ColourEmbedder(**options)  # type: ignore[arg-type]


def synthetic_faceset(folder: Path, n: int = 48, seed: int = 0) -> Path:
    """n fake canvases: 6 identities x 4 in validation, the rest unlabeled training faces."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "faces.npy", rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8))
    t = rng.normal(size=(n, 128)).astype(np.float32) + 2.0
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    np.save(folder / "targets.npy", t)
    np.save(folder / "targets_flip.npy", t)
    identity = np.full(n, -1)
    identity[:24] = np.repeat(np.arange(6), 4)
    np.save(folder / "identity.npy", identity)
    np.save(folder / "split.npy", (identity >= 0).astype(np.int8))
    (folder / "manifest.json").write_text(json.dumps({"synthetic": True}))
    return folder


def smooth_faceset(folder: Path, identities: int = 20, per_identity: int = 5, unlabeled: int = 80) -> Path:
    """A prepared-faces folder whose canvases look like images (smooth per-identity patterns plus noise), so
    that int8 calibration sees realistic value ranges: identities held out, unlabeled faces for training."""
    import cv2

    rng = np.random.default_rng(0)
    n = identities * per_identity + unlabeled
    bases = rng.integers(40, 220, (identities + unlabeled, 8, 8, 3)).astype(np.float32)
    faces = np.zeros((n, 128, 128, 3), np.uint8)
    identity = np.full(n, -1)
    for k in range(n):
        labeled = k < identities * per_identity
        base = bases[k // per_identity] if labeled else bases[identities + k - identities * per_identity]
        img = cv2.resize(base, (128, 128), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 12, (128, 128, 3))
        faces[k] = np.clip(img, 0, 255).astype(np.uint8)
        identity[k] = k // per_identity if labeled else -1
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "faces.npy", faces)
    t = rng.normal(size=(n, 128)).astype(np.float32)
    np.save(folder / "targets.npy", t)
    np.save(folder / "targets_flip.npy", t)
    np.save(folder / "identity.npy", identity)
    np.save(folder / "split.npy", (identity >= 0).astype(np.int8))
    (folder / "manifest.json").write_text(json.dumps({"synthetic": True}))
    return folder
