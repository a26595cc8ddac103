"""The runtime detector's pure parts: letterbox, the location grid, decoding, NMS, and `Face` records in
the source image's coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from squeezerface.detect import Letterbox, decode, faces_from_output, letterbox, nms, priors


def test_letterbox_keeps_aspect_and_maps_back() -> None:
    image = np.full((100, 200, 3), 255, np.uint8)
    canvas, box = letterbox(image, 160)
    assert canvas.shape == (160, 160, 3)
    assert box.scale == pytest.approx(0.8) and box.pad_x == 0 and box.pad_y == 40
    assert canvas[39, 80].sum() == 0 and canvas[40, 80].sum() == 765 and canvas[119, 80].sum() == 765
    back = box.to_image(np.array([[0.0, 40.0], [160.0, 120.0]], np.float32))
    np.testing.assert_allclose(back, [[0, 0], [200, 100]], atol=1e-4)


def test_priors_cover_three_strides_in_order() -> None:
    grid = priors(160)
    assert len(grid) == 20 * 20 + 10 * 10 + 5 * 5
    np.testing.assert_allclose(grid[0], [4, 4, 8])
    np.testing.assert_allclose(grid[400], [8, 8, 16])
    np.testing.assert_allclose(grid[-1], [144, 144, 32])
    assert len(priors(224)) == 28 * 28 + 14 * 14 + 7 * 7


def _raw_for(
    grid: np.ndarray, index: int, box: tuple, landmarks: np.ndarray, logit: float = 4.0
) -> np.ndarray:
    """The raw output row that decodes to `box` and `landmarks` at location `index` (inverse of decode)."""
    cx, cy, s = grid[index]
    x1, y1, x2, y2 = box
    row = np.zeros(15, np.float32)
    row[0] = logit
    row[1:5] = [
        ((x1 + x2) / 2 - cx) / s,
        ((y1 + y2) / 2 - cy) / s,
        np.log((x2 - x1) / s),
        np.log((y2 - y1) / s),
    ]
    row[5:] = ((landmarks - [cx, cy]) / s).ravel()
    return row


def test_decode_inverts_the_target_encoding() -> None:
    grid = priors(160)
    lm = np.array([[60, 60], [90, 60], [75, 75], [62, 90], [88, 90]], np.float32)
    raw = np.full((len(grid), 15), 0, np.float32)
    raw[:, 0] = -8
    raw[300] = _raw_for(grid, 300, (50, 40, 100, 105), lm)
    scores, boxes, landmarks = decode(raw, grid)
    assert scores[300] == pytest.approx(1 / (1 + np.exp(-4)))
    np.testing.assert_allclose(boxes[300], [50, 40, 100, 105], atol=1e-3)
    np.testing.assert_allclose(landmarks[300], lm, atol=1e-3)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.1], np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2]  # identical boxes (IoU 1) still suppress
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4).tolist() == []


def test_faces_come_back_in_image_coordinates_best_first() -> None:
    image_shape = (100, 200)
    grid = priors(160)
    box = Letterbox(scale=0.8, pad_x=0.0, pad_y=40.0)
    lm = np.array([[60, 60], [90, 60], [75, 75], [62, 90], [88, 90]], np.float32)
    raw = np.zeros((len(grid), 15), np.float32)
    raw[:, 0] = -8
    raw[300] = _raw_for(grid, 300, (50, 40, 100, 105), lm, logit=2.0)
    raw[301] = _raw_for(grid, 301, (52, 41, 101, 106), lm, logit=3.0)  # a duplicate, higher score
    raw[10] = _raw_for(grid, 10, (10, 42, 40, 72), lm / 3 + [0, 30], logit=1.0)
    faces = faces_from_output(raw, grid, box, 0.5, 0.4, image_shape)
    assert len(faces) == 2 and faces[0].score > faces[1].score
    np.testing.assert_allclose(faces[0].box, [52 / 0.8, 1 / 0.8, 101 / 0.8, 66 / 0.8], atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks, (lm - [0, 40]) / 0.8, atol=1e-3)
    assert faces_from_output(raw, grid, box, 0.99, 0.4, image_shape) == []


def test_small_images_are_not_enlarged_unless_asked() -> None:
    image = np.full((50, 80, 3), 200, np.uint8)
    canvas, box = letterbox(image, 160)
    assert box.scale == 1.0 and (box.pad_x, box.pad_y) == (40, 55)
    assert canvas[55:105, 40:120].min() == 200 and canvas.sum() == 200 * 3 * 50 * 80
    _, enlarged = letterbox(image, 160, upscale=True)
    assert enlarged.scale == 2.0


@pytest.mark.data
def test_a_face_too_small_at_160_is_found_by_the_retry_at_320(shared_data) -> None:
    """A face a tenth of a large photo's width is ~10 px in the 160 input: only the second look finds it."""
    import cv2

    from squeezerface.detect import FaceDetector
    from squeezerface.imageio import load_image

    photo = load_image(shared_data / "lfw/images/Colin_Powell/Colin_Powell_0038.jpg")
    small = cv2.resize(photo, (150, 150), interpolation=cv2.INTER_AREA)
    canvas = np.full((1000, 1000, 3), 120, np.uint8)
    canvas[400:550, 300:450] = small
    detector = FaceDetector()
    assert detector.detect_at(canvas, 160) == []
    faces = detector.detect(canvas)
    assert len(faces) >= 1
    x1, y1, x2, y2 = faces[0].box
    assert 300 <= (x1 + x2) / 2 <= 450 and 400 <= (y1 + y2) / 2 <= 550
    assert FaceDetector(retry_larger=False).detect(canvas) == []
