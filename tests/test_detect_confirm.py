"""The detector's second look: each face is cut again, at half the network's input with its surroundings,
and kept only when the network finds it there too. The crop's geometry is exact, a face is kept, and a
box on nothing face-like is dropped (without `confirm`, kept as before)."""

from __future__ import annotations

import numpy as np
import pytest

from squeezerface.detect import CONFIRM_CONTEXT, FaceDetector, box_iou, look_again
from squeezerface.face import Face


def _gradient(height: int, width: int) -> np.ndarray:
    """Each pixel says where it is: red = x // 4, green = y // 4 (mod 256)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x // 4) % 256, (y // 4) % 256, np.zeros_like(x)], axis=2).astype(np.uint8)


def test_the_crop_centres_the_box_at_half_the_input() -> None:
    image = _gradient(400, 600)
    crop, expected = look_again(image, (100.0, 100.0, 200.0, 220.0), 160)
    assert crop.shape == (160, 160, 3)
    k = 160 / (CONFIRM_CONTEXT * 120)  # the longer side, 120 px, twice over, into 160
    np.testing.assert_allclose(expected, [80 - 50 * k, 80 - 60 * k, 80 + 50 * k, 80 + 60 * k], atol=1e-4)
    # the crop's middle is the box's middle in the photo (x 150, y 160)
    assert abs(int(crop[80, 80, 0]) - 150 // 4) <= 1 and abs(int(crop[80, 80, 1]) - 160 // 4) <= 1


def test_the_photo_edge_is_repeated_where_the_square_runs_past_it() -> None:
    image = _gradient(300, 300)
    crop, expected = look_again(image, (0.0, 0.0, 60.0, 60.0), 160)
    assert crop.shape == (160, 160, 3)
    assert crop[0, 0].tolist() == image[0, 0].tolist()  # repeated corner, not black
    np.testing.assert_allclose(expected, [40, 40, 120, 120], atol=1e-4)


def test_a_face_filling_a_12mp_photo_costs_only_its_crop() -> None:
    image = np.zeros((3024, 4032, 3), np.uint8)
    crop, expected = look_again(image, (500.0, 10.0, 3500.0, 3000.0), 160)
    assert crop.shape == (160, 160, 3)
    assert expected[2] - expected[0] == pytest.approx(80, abs=0.1)


def test_box_iou() -> None:
    a = np.array([0, 0, 10, 10], np.float32)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, np.array([5, 0, 15, 10], np.float32)) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0


def _fake(box: tuple[float, float, float, float]) -> Face:
    x1, y1, x2, _ = box
    w = x2 - x1
    lms = np.array([[x1 + 0.3 * w, y1 + 0.4 * w], [x1 + 0.7 * w, y1 + 0.4 * w], [x1 + 0.5 * w, y1 + 0.6 * w],
                    [x1 + 0.35 * w, y1 + 0.8 * w], [x1 + 0.65 * w, y1 + 0.8 * w]], np.float32)  # fmt: skip
    return Face(box=box, score=0.9, landmarks=lms)


def test_a_box_on_nothing_face_like_is_dropped_unless_confirmation_is_off() -> None:
    flat = np.full((480, 640, 3), 127, np.uint8)
    fake = _fake((200.0, 150.0, 300.0, 270.0))
    assert FaceDetector()._confirmed(flat, [fake]) == []
    assert FaceDetector(confirm=False)._confirmed(flat, [fake]) == [fake]


def test_a_real_face_is_confirmed_at_any_photo_size() -> None:
    skimage = pytest.importorskip(
        "skimage.data", reason="the demo photo comes with scikit-image (demo extra)"
    )
    import cv2

    photo = np.ascontiguousarray(skimage.astronaut()[..., :3])  # 512x512, one face of ~110 px
    big = cv2.resize(photo, (2048, 2048), interpolation=cv2.INTER_CUBIC)  # pyramid path
    for image in (photo, big):
        plain = FaceDetector(confirm=False, refiner=None).detect(image)
        kept = FaceDetector(refiner=None).detect(image)
        assert len(plain) >= 1 and [f.box for f in kept] == [f.box for f in plain][: len(kept)]
        assert any(box_iou(np.asarray(k.box), np.asarray(plain[0].box)) > 0.99 for k in kept)
