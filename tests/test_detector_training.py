"""The detector's offline pieces: canvas composition, target assignment, the loss, and one export of an
untrained detector to ONNX (dynamic size) and TFLite that the runtime decodes exactly like torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pruning.detector.compose import LabelledPhoto, Sample, compose  # noqa: E402
from pruning.detector.evaluate import iou_matrix, match_image, nme, pr_summary  # noqa: E402
from pruning.detector.model import TinyFaceDetector, count_params  # noqa: E402
from pruning.detector.train import assign, detection_loss, grid  # noqa: E402
from squeezerface.face import Face  # noqa: E402

LM = np.array([[70, 80], [130, 80], [100, 110], [75, 140], [125, 140]], np.float32)


def _photo() -> LabelledPhoto:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    return LabelledPhoto(image, np.array([[50, 50, 150, 160]], np.float32), LM[None].copy())


def test_detector_is_tiny() -> None:
    model = TinyFaceDetector()
    assert count_params(model) < 150_000
    assert model(torch.zeros(2, 3, 160, 160)).shape == (2, 20 * 20 + 10 * 10 + 5 * 5, 15)


def test_composed_faces_keep_landmarks_inside_their_boxes() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        s = compose([_photo(), _photo()], rng, size=160)
        assert s.image.shape == (160, 160, 3) and s.image.dtype == np.uint8
        for b, lm in zip(s.boxes, s.landmarks, strict=True):
            assert (lm >= 0).all() and (lm < 160).all()
            centre = lm.mean(axis=0)
            assert b[0] - 5 <= centre[0] <= b[2] + 5 and b[1] - 5 <= centre[1] <= b[3] + 5
            assert lm[0, 0] < lm[1, 0] or abs(lm[0, 0] - lm[1, 0]) < 40  # eyes stay in order (rotation <= 30)
    negative = compose([], rng, size=160, negative=True)
    assert len(negative.boxes) == 0


def test_assignment_picks_the_stride_of_the_face_size() -> None:
    priors = grid(160)
    small = Sample(
        np.zeros((160, 160, 3), np.uint8),
        np.array([[40, 40, 70, 70]], np.float32),
        LM[None] / 4,
        np.zeros((0, 4)),
    )
    t = assign(small, priors)
    strides = set(priors[t["cls"] > 0, 2].tolist())
    assert strides == {8}
    big = Sample(
        np.zeros((160, 160, 3), np.uint8),
        np.array([[-5, -5, 165, 165]], np.float32),
        LM[None] * 0.7,
        np.zeros((0, 4)),
    )
    assert set(priors[assign(big, priors)["cls"] > 0, 2].tolist()) == {32}
    pos = np.flatnonzero(assign(big, priors)["cls"] > 0)
    box_t = assign(big, priors)["box"][pos[0]]
    cx, _, s = priors[pos[0]]
    assert cx + box_t[0] * s == pytest.approx(80) and np.exp(box_t[2]) * s == pytest.approx(170)
    mid = Sample(small.image, np.array([[10, 10, 150, 150]], np.float32), LM[None] * 0.7, np.zeros((0, 4)))
    assert set(priors[assign(mid, priors)["cls"] > 0, 2].tolist()) == {16, 32}  # ranges overlap


def test_ignore_regions_take_no_loss() -> None:
    priors = grid(160)
    sample = Sample(
        np.zeros((160, 160, 3), np.uint8),
        np.zeros((0, 4), np.float32),
        np.zeros((0, 5, 2)),
        np.array([[0, 0, 80, 80]], np.float32),
    )
    t = assign(sample, priors)
    inside = (priors[:, 0] <= 80) & (priors[:, 1] <= 80)
    assert (t["weight"][inside] == 0).all() and (t["weight"][~inside] == 1).all() and t["cls"].sum() == 0


def test_loss_falls_when_fitting_one_batch() -> None:
    torch.manual_seed(0)
    model = TinyFaceDetector()
    rng = np.random.default_rng(0)
    samples = [compose([_photo()], rng, size=160) for _ in range(8)]
    priors = grid(160)
    targets = [assign(s, priors) for s in samples]
    batch = {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}
    x = torch.from_numpy(
        np.stack([(s.image.astype(np.float32) - 127.5) / 128 for s in samples]).transpose(0, 3, 1, 2).copy()
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _ = detection_loss(model(x), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_matching_and_nme() -> None:
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    lms = np.stack([LM / 20, LM / 20 + 20])
    dets = [
        Face((0, 0, 10, 9), LM / 20 + 0.5, 0.9),
        Face((0, 0, 10, 10), LM / 20, 0.8),
        Face((50, 50, 60, 60), LM, 0.7),
    ]
    r = match_image(dets, truth, lms)
    assert r.matched.tolist() == [True, False, False] and r.truths == 2
    assert r.nmes[0] == pytest.approx(nme(LM / 20 + 0.5, LM / 20))
    row = pr_summary([r], [0.75])[0]
    assert (row["recall"], row["precision"]) == (0.5, 0.5)
    assert iou_matrix(truth, truth).diagonal().tolist() == [1.0, 1.0]


def test_untrained_detector_exports_and_decodes_like_torch(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch", reason="needs the convert extra")
    from converters.onnx_export import export_onnx
    from converters.tflite_export import export_tflite
    from squeezerface.backends import open_backend

    torch.manual_seed(0)
    model = TinyFaceDetector().eval()
    x = torch.randn(1, 3, 160, 160)
    onnx_path = export_onnx(model, x, tmp_path / "d.onnx", output_names=("raw",), dynamic_spatial=32)
    tfl_path = export_tflite(model, x, tmp_path / "d.tflite")
    onnx_model = open_backend(onnx_path)
    for size in (160, 224):
        xs = torch.randn(2, 3, size, size)
        np.testing.assert_allclose(onnx_model.run(xs.numpy()), model(xs).detach().numpy(), atol=1e-4)
    tfl = open_backend(tfl_path)
    assert tfl.layout == "NHWC"
    np.testing.assert_allclose(tfl.run(x.numpy().transpose(0, 2, 3, 1)), model(x).detach().numpy(), atol=1e-4)


def test_face_detector_runs_an_exported_model_through_its_card(tmp_path: Path) -> None:
    from converters.convert_detector import card_for
    from converters.onnx_export import export_onnx
    from squeezerface.detect import FaceDetector, faces_from_output, letterbox, priors
    from squeezerface.modelcard import card_path, save_card

    torch.manual_seed(0)
    model = TinyFaceDetector().eval()
    with torch.no_grad():
        model.head[-1].bias[0] = 2.0  # an untrained head that fires everywhere, so decoding has work to do
    path = export_onnx(
        model, torch.zeros(1, 3, 160, 160), tmp_path / "d.onnx", output_names=("raw",), dynamic_spatial=32
    )
    training = {"detection": {"score": 0.6, "nms_iou": 0.3}}
    save_card(card_for(path, model, 160, "d", "0", training), card_path(path))
    image = np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    for size in (160, 256):
        detector = FaceDetector(path, input_size=size, confirm=False)  # the decoding alone, no second look
        assert (detector.score_threshold, detector.nms_iou) == (0.6, 0.3)
        faces = detector.detect(image)
        canvas, box = letterbox(image, size)
        x = ((canvas.astype(np.float32) - 127.5) / 128).transpose(2, 0, 1)[None].copy()
        raw = detector.backend.run(x)[0]
        np.testing.assert_allclose(raw, model(torch.from_numpy(x)).detach().numpy()[0], atol=1e-3)
        expected = faces_from_output(raw, priors(size), box, 0.6, 0.3, (90, 140))
        assert len(faces) == len(expected) > 0
        for f, e in zip(faces, expected, strict=True):
            np.testing.assert_allclose(f.box, e.box)
            np.testing.assert_allclose(f.landmarks, e.landmarks)
            assert 0 <= f.box[0] <= f.box[2] <= 140 and 0 <= f.box[1] <= f.box[3] <= 90
