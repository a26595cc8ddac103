import numpy as np
import pytest

from squeezerface.align import (
    ARCFACE_TEMPLATE_112,
    align_face,
    alignment_matrix,
    template,
    umeyama_similarity,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    m = _similarity(1.7, 0.4, -12.0, 33.0)
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(umeyama_similarity(src, dst), m, atol=1e-9)


def test_umeyama_never_reflects():
    src = ARCFACE_TEMPLATE_112.astype(float)
    mirrored = src * np.array([-1.0, 1.0])
    m = umeyama_similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_alignment_maps_landmarks_onto_template():
    m = _similarity(2.5, -0.3, 40.0, 10.0)
    landmarks = ARCFACE_TEMPLATE_112 @ m[:, :2].T + m[:, 2]
    a = alignment_matrix(landmarks)
    mapped = landmarks @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(mapped, template(), atol=1e-4)


def test_align_face_puts_a_marked_pixel_at_the_template_eye():
    image = np.zeros((300, 300, 3), np.uint8)
    landmarks = template() * 2 + 20  # a face twice the template size, shifted
    x, y = np.round(landmarks[0]).astype(int)
    image[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop = align_face(image, landmarks)
    assert crop.shape == (112, 112, 3)
    ty, tx = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(tx - ARCFACE_TEMPLATE_112[0, 0]) <= 2 and abs(ty - ARCFACE_TEMPLATE_112[0, 1]) <= 2


def test_umeyama_rejects_bad_shapes():
    with pytest.raises(ValueError):
        umeyama_similarity(np.zeros((5, 2)), np.zeros((4, 2)))
