"""The prepared training faces (see `data.prepare`), their augmentation, and centred distillation targets.

Augmentation matches deployment: the runtime aligns with the same 5-point template, so training jitters
around that alignment (scale, rotation, shift) instead of random-resized crops, plus mirror (with the
teacher's exact embedding of the mirrored photo as target), colour and brightness, blur, JPEG and
occasional greyscale. Every random draw comes from a generator seeded by (seed, epoch, sample index), so a
run is reproducible and a resumed run continues exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pruning.data import CANVAS, MARGIN
from pruning.photometric import Photometric, photometric
from squeezerface.align import ALIGNED_SIZE

FACE_JITTER = Photometric()  # the strengths the committed embedder weights were trained with

MEAN, SCALE = 127.5, 128.0
"""Input normalisation: RGB uint8 -> (x - 127.5) / 128, the common face-embedder convention."""


@dataclass
class FaceSet:
    faces: np.ndarray  # (N, CANVAS, CANVAS, 3) uint8, memory-mapped
    targets: np.ndarray  # (N, 128) teacher embeddings (unit)
    targets_flip: np.ndarray  # (N, 128) teacher embeddings of the mirrored photos
    identity: np.ndarray  # (N,) celeba_wild identity, -1 for utkface
    split: np.ndarray  # (N,) 0 train, 1 validation
    manifest: dict

    @classmethod
    def load(cls, folder: str | Path) -> FaceSet:
        folder = Path(folder)
        return cls(
            faces=np.load(folder / "faces.npy", mmap_mode="r"),
            targets=np.load(folder / "targets.npy"),
            targets_flip=np.load(folder / "targets_flip.npy"),
            identity=np.load(folder / "identity.npy"),
            split=np.load(folder / "split.npy"),
            manifest=json.loads((folder / "manifest.json").read_text()),
        )

    def indices(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def target_centre(self) -> np.ndarray:
        """Mean teacher embedding over the training split (both orientations).

        dlib's descriptors share a large common component (the mean of the unit vectors has norm ~0.9), so
        the direction that tells faces apart is what is left after removing it: students learn the centred
        targets."""
        train = self.indices(0)
        return np.concatenate([self.targets[train], self.targets_flip[train]]).mean(axis=0)


def centred(targets: np.ndarray, centre: np.ndarray) -> np.ndarray:
    t = targets - centre
    return (t / np.linalg.norm(t, axis=-1, keepdims=True)).astype(np.float32)


def centre_crop(canvas: np.ndarray) -> np.ndarray:
    """The plain aligned 112x112 face (what the runtime's `align_face` gives) from a canvas."""
    return canvas[MARGIN : MARGIN + ALIGNED_SIZE, MARGIN : MARGIN + ALIGNED_SIZE]


def augment(canvas: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """One training view: jittered alignment, optional mirror, photometric noise. Returns 112x112 RGB."""
    scale = rng.uniform(0.92, 1.08)
    angle = rng.uniform(-8.0, 8.0)
    shift = rng.uniform(-4.0, 4.0, size=2)
    centre = (CANVAS / 2.0, CANVAS / 2.0)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:, 2] += shift - MARGIN  # crop the 112 window out of the 128 canvas
    out = cv2.warpAffine(
        canvas, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if flip:
        out = out[:, ::-1]
    return photometric(out, rng, FACE_JITTER)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, int(index)])


def to_input(batch_uint8: np.ndarray) -> np.ndarray:
    """(N, 112, 112, 3) uint8 RGB -> (N, 3, 112, 112) float32 normalised, the model's input."""
    x = (batch_uint8.astype(np.float32) - MEAN) / SCALE
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
