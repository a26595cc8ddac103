"""The models shipped inside the package: found offline, checked against their cards, runnable with the
runtime dependencies alone (torch, the converters' and the teacher's packages blocked), and in agreement
with each other."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from squeezerface.embed import FaceEmbeddingModel
from squeezerface.modelcard import load_card
from squeezerface.shipped import (
    DEFAULT_DETECTOR,
    DEFAULT_EMBEDDER,
    DEFAULT_REFINER,
    model_path,
    shipped_models,
)

FAMILIES = ("mobilefacenet-taylor-900k", "squeezerfacenet-980k")
"""The default embedder (embedder v2) and the first one, kept loadable by name."""
EXPECTED = {f"{family}-{kind}" for family in FAMILIES for kind in ("fp32.onnx", "int8.onnx", "int8.tflite")}
DETECTORS = {
    "tinyface-fp32.onnx",
    "tinyface-int8.onnx",
    "tinyface-160-int8.tflite",
    "tinyface-320-int8.tflite",
}
REFINERS = {"tinyface-lm-fp32.onnx", "tinyface-lm-int8.onnx", "tinyface-lm-int8.tflite"}


def _faces(n: int = 8) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    base = rng.integers(30, 230, (n, 7, 7, 3)).astype(np.float32)
    return np.stack(
        [np.clip(cv2.resize(b, (112, 112), interpolation=cv2.INTER_CUBIC), 0, 255) for b in base]
    ).astype(np.uint8)


def test_the_default_artifacts_are_shipped() -> None:
    assert set(shipped_models()) == EXPECTED | DETECTORS | REFINERS
    assert DEFAULT_EMBEDDER in EXPECTED
    assert DEFAULT_DETECTOR in DETECTORS
    assert DEFAULT_REFINER in REFINERS


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_card_and_run(name: str) -> None:
    from squeezerface.detect import FaceDetector

    card = load_card(model_path(name))
    assert card.params < 150_000 and card.embedding_size == 0
    assert "research use only" in card.licence and "not crowds" in card.training["intended_use"]
    rows = [r for r in card.accuracy if r["artifact"] == name and r["benchmark"].startswith("held-out")]
    assert rows and all(0.9 <= r["recall"] <= 1.0 and 0.9 <= r["precision"] <= 1.0 for r in rows)
    assert card.training["detection"]["score"] in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    lfw = [r for r in card.accuracy if r["benchmark"].startswith("LFW")]
    assert all(r["gap_pp"] < 2.0 and r["no_face_fallback"] < 100 for r in lfw)
    detector = FaceDetector(name)
    assert detector.refiner is not None and detector.refiner.card.file in REFINERS
    assert detector.refiner.path.suffix == detector.path.suffix  # a TFLite detector gets a TFLite refiner
    faces = detector.detect(_faces(1)[0])
    assert isinstance(faces, list)


@pytest.mark.parametrize("name", sorted(REFINERS))
def test_refiner_card_and_run(name: str) -> None:
    from squeezerface.landmarks import LandmarkRefiner

    card = load_card(model_path(name))
    assert card.input.size == (64, 64) and card.embedding_size == 0 and "research use only" in card.licence
    rows = [r for r in card.accuracy if r["artifact"] == name]
    assert rows and all(r["nme"] < r["nme_unrefined"] for r in rows)
    rough = np.array([[40, 50], [72, 50], [56, 70], [42, 90], [70, 90]], np.float32)
    refined = LandmarkRefiner(name).refine(np.full((120, 110, 3), 128, np.uint8), rough)
    assert refined.shape == (5, 2) and np.isfinite(refined).all()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_matches_file_and_says_what_users_need(name: str) -> None:
    card = load_card(model_path(name))  # verifies SHA-256
    assert card.file == name and card.size_bytes == model_path(name).stat().st_size
    assert card.params < 1_000_000 and card.embedding_size == 128
    assert "research use only" in card.licence
    assert card.calibration is not None
    assert {"far_1e-02", "far_1e-03", "far_1e-04", "eer"} <= {p.name for p in card.calibration.points}
    assert card.calibration.impostor_pairs >= 10_000  # enough to support FAR 1e-4
    assert "lfw" not in card.calibration.source.lower()
    assert card.parity["faces"] >= 500
    rows = {r["artifact"]: r for r in card.accuracy}
    assert name in rows and "torch fp32 (reference)" in rows


def test_int8_artifacts_within_gates_of_fp32() -> None:
    cards = {n: load_card(model_path(n)) for n in EXPECTED}
    for name, card in cards.items():
        floor = (0.995, 0.98) if card.precision == "int8" else (0.9999, 0.999)
        assert card.parity["cosine_mean"] >= floor[0] and card.parity["cosine_min"] >= floor[1], name
    for family in FAMILIES:
        rows = {r["artifact"]: r for r in cards[f"{family}-int8.onnx"].accuracy}
        fp32 = rows[f"{family}-fp32.onnx"]["accuracy_mean"]
        for int8 in (f"{family}-int8.onnx", f"{family}-int8.tflite"):
            assert fp32 - rows[int8]["accuracy_mean"] <= 0.002 + 1e-9, int8


def test_shipped_artifacts_agree_on_faces() -> None:
    faces = _faces()
    embeddings = {n: FaceEmbeddingModel(n).get_feat(faces) for n in sorted(EXPECTED)}
    for name, emb in embeddings.items():
        ref = embeddings[name.split("-int8")[0].split("-fp32")[0] + "-fp32.onnx"]
        assert emb.shape == (8, 128)
        assert np.min(np.sum(emb * ref, axis=1)) > 0.97, name


_NO_TORCH = textwrap.dedent(
    """
    import importlib.abc, json, sys
    BLOCKED = {"torch", "torchvision", "tensorflow", "jax", "litert_torch", "ai_edge_quantizer", "onnx",
               "onnxscript", "dlib", "face_recognition_models", "matplotlib", "tqdm", "PIL"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked in this test: {name}")
    sys.meta_path.insert(0, Block())
    import numpy as np
    import squeezerface
    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.shipped import shipped_models
    out = {}
    from squeezerface.detect import FaceDetector
    from squeezerface.landmarks import LandmarkRefiner
    for name in shipped_models():
        if name.startswith("tinyface-lm"):
            rough = np.array([[30, 50], [60, 50], [45, 65], [33, 80], [57, 80]], np.float32)
            pts = LandmarkRefiner(name).prepare(threads=1).refine(np.full((120, 90, 3), 128, np.uint8), rough)
            out[name] = [list(pts.shape), 0.0]
            continue
        if name.startswith("tinyface"):
            found = FaceDetector(name).prepare(threads=1).detect(np.full((120, 90, 3), 128, np.uint8))
            out[name] = [[len(found)], 0.0]
            continue
        m = FaceEmbeddingModel(name).prepare(threads=1)
        e = m.get_feat(np.full((2, 112, 112, 3), 128, np.uint8))
        out[name] = [list(e.shape), m.card.threshold("far_1e-3")]
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"models": out, "heavy": heavy}))
    """
)


def test_runtime_runs_every_shipped_model_without_torch() -> None:
    done = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["models"]) == EXPECTED | DETECTORS | REFINERS
    assert all(result["models"][n][0] == [5, 2] for n in REFINERS)
    assert all(result["models"][n][0] == [2, 128] for n in EXPECTED)
    assert result["heavy"] == []


def test_import_squeezerface_is_light() -> None:
    heavy = "('torch', 'cv2', 'onnxruntime')"
    code = f"import sys, squeezerface; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_models_command_lists_every_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    from squeezerface.cli import EXIT_OK, main

    assert main(["models"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in EXPECTED | DETECTORS:
        assert name in out
    assert f"{DEFAULT_EMBEDDER}: onnx int8" in out and "(default)" in out
    assert main(["models", "--json"]) == EXIT_OK
    cards = json.loads(capsys.readouterr().out)
    on_disk = load_card(model_path(DEFAULT_EMBEDDER)).calibration
    assert on_disk is not None
    assert cards[DEFAULT_EMBEDDER]["calibration"]["impostor_pairs"] == on_disk.impostor_pairs > 1_000_000
