"""The landmark refiner: crop geometry and decoding (pure numpy/OpenCV), its training samples, and one
export of an untrained refiner that the runtime runs exactly like torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from squeezerface.align import template
from squeezerface.landmarks import CROP, OFFSET_UNIT, crop_face, points_from_output

LM = np.array([[70, 80], [130, 82], [101, 112], [76, 140], [124, 141]], np.float32)


def _similar_to_template(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return (template(112) @ (scale * np.array([[c, -s], [s, c]])).T + shift).astype(np.float32)


def test_zero_offsets_give_back_points_that_are_a_similarity_of_the_template() -> None:
    """Up to the quarter crop pixel by which halving the double-size cut shifts the grid."""
    points = _similar_to_template(0.3, 1.7, (40.0, 25.0))
    image = np.zeros((300, 300, 3), np.uint8)
    crop, matrix = crop_face(image, points)
    assert crop.shape == (CROP, CROP, 3)
    back = points_from_output(np.zeros(10), matrix)
    pixel = 1.7 * 112 / CROP  # image pixels per crop pixel
    np.testing.assert_allclose(back - points, np.full((5, 2), back[0] - points[0]), atol=1e-3)
    assert np.linalg.norm(back[0] - points[0]) <= 0.25 * np.sqrt(2) * pixel + 1e-3


def test_offsets_move_points_by_offset_unit_crop_pixels() -> None:
    points = _similar_to_template(0.0, 2.0, (10.0, 10.0))  # image = crop * (224 / 64) + 10
    _, matrix = crop_face(np.zeros((300, 300, 3), np.uint8), points)
    raw = np.zeros(10)
    raw[0] = 1.0  # left eye, x
    moved = points_from_output(raw, matrix)
    still = points_from_output(np.zeros(10), matrix)
    np.testing.assert_allclose(moved[0] - still[0], [OFFSET_UNIT * 224 / CROP, 0.0], atol=1e-3)
    np.testing.assert_allclose(moved[1:], still[1:], atol=1e-3)


@pytest.mark.parametrize("scale", [0.6, 1.0, 3.0])
def test_crop_matrix_says_where_image_pixels_land_in_the_crop(scale: float) -> None:
    """The crop is cut at twice the size and halved; the returned matrix must account for that."""
    import cv2

    image = np.zeros((400, 400, 3), np.uint8)
    points = _similar_to_template(0.2, scale, (120.0, 130.0))
    spot = np.round(points[2]) + np.array([3.0, -2.0])  # beside the nose
    cv2.circle(image, (int(spot[0]), int(spot[1])), 2, (255, 255, 255), -1)
    crop, matrix = crop_face(image, points)
    expected = matrix[:, :2] @ spot + matrix[:, 2]
    weights = crop[..., 0].astype(np.float64)
    assert weights.sum() > 0
    ys, xs = np.mgrid[0:CROP, 0:CROP]
    found = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
    np.testing.assert_allclose(found, expected, atol=0.3)


torch = pytest.importorskip("torch")


def test_training_samples_target_the_teacher_points_in_the_crop() -> None:
    from pruning.detector.train_refiner import RefinerTrainConfig, make_sample

    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)
    truth = (template(112) + 24).astype(np.float32)
    cfg = RefinerTrainConfig()
    for _ in range(10):
        x, offsets, target = make_sample(crop, truth, cfg, rng, augment=True)
        assert x.shape == (CROP, CROP, 3) and x.dtype == np.uint8
        np.testing.assert_allclose(template(CROP) + offsets.reshape(5, 2) * OFFSET_UNIT, target, atol=1e-4)
        assert np.abs(offsets).max() < 4  # disturbances stay in the range the network outputs
    still = RefinerTrainConfig(rotation_deg=0, scale=0, shift=0, point_noise=0)
    _, offsets, _ = make_sample(crop, truth, still, rng, augment=False)
    np.testing.assert_allclose(offsets, -0.25 / OFFSET_UNIT, atol=1e-3)  # the halving's quarter pixel


def test_untrained_refiner_exports_and_runs_like_torch(tmp_path: Path) -> None:
    from converters.convert_detector import REFINER_INPUT, card_for
    from converters.onnx_export import export_onnx
    from pruning.detector.model import count_params
    from pruning.detector.refiner import LandmarkRefinerNet, load_refiner, save_refiner
    from squeezerface.landmarks import LandmarkRefiner
    from squeezerface.modelcard import card_path, save_card

    torch.manual_seed(0)
    model = LandmarkRefinerNet().eval()
    torch.nn.init.normal_(model.fc.weight, std=0.01)  # the trained-from-zero head would output only zeros
    assert count_params(model) < 50_000
    save_refiner(model, tmp_path / "r")
    again = load_refiner(tmp_path / "r")
    x = torch.randn(3, 3, CROP, CROP)
    np.testing.assert_allclose(again(x).detach().numpy(), model(x).detach().numpy(), atol=1e-6)
    path = export_onnx(model, x[:1], tmp_path / "r.onnx", output_names=("offsets",))
    save_card(card_for(path, model, CROP, "r", "0", {}, REFINER_INPUT), card_path(path))
    refiner = LandmarkRefiner(path)
    image = np.random.default_rng(0).integers(0, 255, (200, 220, 3), dtype=np.uint8)
    refined = refiner.refine(image, LM)
    crop, matrix = crop_face(image, LM)
    xin = torch.from_numpy(((crop.astype(np.float32) - 127.5) / 128).transpose(2, 0, 1)[None].copy())
    expected = points_from_output(model(xin).detach().numpy()[0], matrix)
    np.testing.assert_allclose(refined, expected, atol=1e-3)
    assert not np.allclose(refined, LM, atol=0.5)
