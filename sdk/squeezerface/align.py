"""Face alignment: pure functions from 5 landmarks to a 112x112 crop.

The template is the 5-point ArcFace/insightface one for 112x112 crops, the de-facto standard that
MobileFaceNet, EdgeFace and the SqueezerFaceNet paper's training data (MS1M/VGGFace2 crops) use. Both the
training pipeline and the runtime call these functions, so a model sees at deployment exactly the crop
geometry it was trained on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from squeezerface.face import Face

ALIGNED_SIZE = 112

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],  # left eye (image left)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth left corner
        [70.7299, 92.2041],  # mouth right corner
    ],
    dtype=np.float32,
)


def template(size: int = ALIGNED_SIZE) -> np.ndarray:
    """The 5-point template scaled to a square crop of `size` pixels."""
    return ARCFACE_TEMPLATE_112 * (size / ALIGNED_SIZE)


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping src onto dst.

    Umeyama (1991), closed form; no reflection. Returns a 2x3 matrix for `cv2.warpAffine`.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two (n>=2, 2) point sets of equal shape, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / n
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s**2).sum() / n
    scale = float((sig * sign).sum() / var_s) if var_s > 0 else 1.0
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def alignment_matrix(landmarks: np.ndarray, size: int = ALIGNED_SIZE, margin: int = 0) -> np.ndarray:
    """2x3 affine matrix taking image coordinates to the aligned crop's coordinates."""
    dst = template(size) + margin
    return umeyama_similarity(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), dst)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE, margin: int = 0
) -> np.ndarray:
    """Warp `image` so that `landmarks` land on the template; returns a `size` x `size` crop, or with
    `margin` a (size + 2 margin) square with the template in its middle (room for training-time jitter).

    Border pixels are replicated rather than black: a black wedge is a strong artificial edge that a
    small CNN learns to notice, and real crops near the image border are common on phones.
    """
    import cv2

    matrix = alignment_matrix(landmarks, size, margin)
    side = size + 2 * margin
    return cv2.warpAffine(
        image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def template_face(box: tuple[float, float, float, float]) -> Face:
    """A face assumed to fill `box`, with the alignment template's 5 points scaled into it (no detection):
    the no-face fallback of evaluation (`Fallback`), so its crop is the one a centred face would give."""
    from squeezerface.face import Face

    x1, y1, x2, y2 = box
    side = min(x2 - x1, y2 - y1)
    x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    landmarks = ARCFACE_TEMPLATE_112 / 112.0 * side + np.array([x0, y0], np.float32)
    return Face(box=box, landmarks=landmarks, score=1.0, detected=False)
