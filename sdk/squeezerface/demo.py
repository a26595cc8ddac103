"""`squeezerface demo`: verification on a real face photo that any machine can get, no dataset needed.

The photo is scikit-image's `astronaut` (Eileen Collins, NASA, public domain), shipped inside the
scikit-image wheel (the `demo` extra), so the demo runs offline on a fresh machine. A second "capture" of the
same face is made from it the way a phone would differ: turned 12 degrees, 30 % smaller in the frame, darker,
and JPEG-compressed at quality 60, so detection, alignment and the threshold all have real work to do.
One real face is all a public-domain package offers; for a different-person check, pass two photos of your
own to `squeezerface verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezerface.errors import EmbedderUnavailableError


@dataclass(frozen=True)
class DemoImages:
    original: np.ndarray  # RGB uint8
    recaptured_jpeg: bytes


def astronaut() -> np.ndarray:
    """The public-domain astronaut photo as RGB uint8, from the scikit-image wheel (no download)."""
    try:
        from skimage import data
    except ImportError as e:
        raise EmbedderUnavailableError(
            'the demo photo comes from scikit-image: pip install "squeezerface[demo]"',
            extra="demo",
        ) from e
    return np.ascontiguousarray(data.astronaut()[..., :3])


def recapture(image: np.ndarray, angle: float = 12.0, scale: float = 0.7, gain: float = 0.8) -> bytes:
    """The same face as a second, different capture: rotated, smaller, darker, JPEG quality 60."""
    import cv2

    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    moved = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    darker = np.clip(moved.astype(np.float32) * gain + 10, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(darker, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return buf.tobytes()


def demo_images() -> DemoImages:
    photo = astronaut()
    return DemoImages(photo, recapture(photo))
