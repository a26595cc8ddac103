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
