"""Backend adapters: engine chosen by file type, typed errors, int8 input/output mapping for LiteRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from squeezerface.backends import dequantize, open_backend, quantize
from squeezerface.errors import ModelFileError


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="unknown model type"):
        open_backend(tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match="not found"):
        open_backend(tmp_path / "model.onnx")


def test_corrupt_onnx_is_a_model_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError, match="onnxruntime cannot load"):
        open_backend(bad)


def test_int8_quantization_round_trip() -> None:
    detail = {"dtype": np.int8, "quantization": (0.02, -3)}
    x = np.array([[-3.0, -1.0, 0.0, 0.5, 2.49, 9.0]], np.float32)
    q = quantize(x, detail)
    assert q.dtype == np.int8
    assert q.tolist() == [[-128, -53, -3, 22, 121, 127]]  # clipped at both ends
    back = dequantize(q, detail)
    assert np.all(np.abs(back[:, 1:5] - x[:, 1:5]) <= 0.01 + 1e-6)


def test_float_tensors_pass_through() -> None:
    detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert quantize(x, detail).dtype == np.float32
    np.testing.assert_array_equal(dequantize(x, detail), x.astype(np.float32))


def test_a_model_swapped_after_its_card_check_never_runs(tmp_path: Path) -> None:
    """The model classes keep the very bytes they hashed and build the engine from them, so replacing the
    file between the card check (construction) and opening the engine (prepare) changes nothing: the
    checked model is the one that runs."""
    import shutil

    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.modelcard import card_path
    from squeezerface.shipped import model_path

    src = model_path("squeezerfacenet-980k-int8.onnx")
    path = tmp_path / src.name
    shutil.copyfile(src, path)
    shutil.copyfile(card_path(src), card_path(path))
    faces = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    expected = FaceEmbeddingModel(path).get_feat(faces)
    model = FaceEmbeddingModel(path)  # the card check passes here
    shutil.copyfile(model_path("squeezerfacenet-980k-fp32.onnx"), path)  # a different, valid model
    np.testing.assert_array_equal(model.get_feat(faces), expected)
    with pytest.raises(ModelFileError, match="does not match its card"):
        FaceEmbeddingModel(path)  # a new reader sees the swap


def test_each_model_file_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """README: "The file is read once". Every open of a shipped model file by the detector, its refiner
    and retry model, and the embedder, from construction to the first result, is counted."""
    import builtins
    import io

    from squeezerface.shipped import model_path
    from squeezerface.verify import FaceVerifier

    models = model_path("squeezerfacenet-980k-int8.onnx").parent
    opened: list[str] = []
    real_open = io.open

    def counting_open(file, *args, **kwargs):
        if Path(str(file)).parent == models and not str(file).endswith(".json"):
            opened.append(Path(str(file)).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    verifier = FaceVerifier()
    verifier.embed(np.zeros((1, 112, 112, 3), np.uint8))
    verifier.detect(np.zeros((64, 64, 3), np.uint8))
    assert opened, "no model file was opened through Python: the count would prove nothing"
    assert sorted(opened) == sorted(set(opened)), opened
