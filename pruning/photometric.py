"""Photometric augmentation shared by the embedder's and the detector's training: light, colour, noise,
blur, JPEG. Each trainer picks its strengths; the random draws happen in a fixed order (and a zero
probability draws nothing), so a trainer's images are a function of its seed alone."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Photometric:
    gain: tuple[float, float] = (0.7, 1.3)
    offset: float = 25.0
    saturation: tuple[float, float] = (0.6, 1.4)
    grey: float = 0.1  # probability of a greyscale image
    noise: float = 0.0  # probability of Gaussian noise (sigma 2..10)
    blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    jpeg: float = 0.2
    jpeg_quality: tuple[int, int] = (30, 90)


def photometric(image: np.ndarray, rng: np.random.Generator, p: Photometric) -> np.ndarray:
    """A jittered copy of an RGB uint8 image."""
    x = image.astype(np.float32)
    x = x * rng.uniform(*p.gain) + rng.uniform(-p.offset, p.offset)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(*p.saturation)
    if rng.random() < p.grey:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    if p.noise > 0 and rng.random() < p.noise:
        x = x + rng.normal(0, rng.uniform(2, 10), x.shape)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < p.blur:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*p.blur_sigma))
    if rng.random() < p.jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*p.jpeg_quality))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(out)
