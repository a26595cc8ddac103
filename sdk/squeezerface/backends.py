"""One tiny adapter per inference engine, all with the same contract: `run(x) -> first output`.

Model classes (embedder, detector) sit on a `Backend`, never on an engine directly, so a model file can be
ONNX (onnxruntime) or TFLite (LiteRT) without the model class knowing. The engine is chosen by the file's
suffix. Each engine is imported only when a model of its kind is opened, which keeps `import squeezerface`
light and lets a device ship only the engine it uses.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface.errors import EmbedderUnavailableError, ModelFileError

Layout = Literal["NCHW", "NHWC"]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]  # None where the dimension is dynamic (batch)
    dtype: str


class Backend(ABC):
    """A loaded model: `run` a float32 batch, get the first output as float32."""

    path: Path
    engine: str

    @property
    @abstractmethod
    def input(self) -> TensorInfo: ...

    @property
    def layout(self) -> Layout:
        """Where the 3 colour channels sit in a 4-D image input (a 3 in the last place means NHWC)."""
        return "NHWC" if self.input.shape[-1] == 3 else "NCHW"

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Run on a batch shaped like `input` (any batch size); return the first output."""


class OnnxRuntimeBackend(Backend):
    engine = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 1, content: bytes | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            source = content if content is not None else str(self.path)
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own opaque types
            raise ModelFileError(f"onnxruntime cannot load {self.path}: {exc}") from exc
        i = self.session.get_inputs()[0]
        self._input = TensorInfo(
            i.name, tuple(d if isinstance(d, int) else None for d in i.shape), str(i.type)
        )

    @property
    def input(self) -> TensorInfo:
        return self._input

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self._input.name: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out[0], dtype=np.float32)


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """A float batch in the tensor's own type: full-integer TFLite models take int8 input, quantized with
    the input tensor's scale and zero point (the caller always passes floats)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(x, dtype=dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / np.float32(scale)) + zero
    return np.ascontiguousarray(np.clip(q, info.min, info.max).astype(dtype))


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor as float32 (integer outputs mapped back with their scale and zero point)."""
    if np.dtype(detail["dtype"]).kind == "f":
        return np.array(y, dtype=np.float32)
    scale, zero = detail["quantization"]
    return (np.asarray(y, np.float32) - np.float32(zero)) * np.float32(scale)


class LiteRTBackend(Backend):
    """LiteRT (ex TensorFlow Lite) via `ai-edge-litert`. The interpreter's input is resized to the batch
    when it changes; models exported with a fixed batch of 1 are run one sample at a time. Integer inputs
    and outputs (full-integer int8 models) are quantized and dequantized here, so callers see floats."""

    engine = "litert"

    def __init__(self, path: str | Path, threads: int = 1, content: bytes | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise EmbedderUnavailableError(
                "running .tflite models needs LiteRT: pip install 'squeezerface[tflite]'",
                extra="tflite",
            ) from exc
        self.path = Path(path)
        try:
            if content is not None:
                self.interpreter = Interpreter(model_content=content, num_threads=max(1, threads))
            else:
                self.interpreter = Interpreter(model_path=str(self.path), num_threads=max(1, threads))
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise ModelFileError(f"LiteRT cannot load {self.path}: {exc}") from exc
        d = self.interpreter.get_input_details()[0]
        sig = d.get("shape_signature", d["shape"])
        self._input = TensorInfo(
            d["name"], tuple(None if int(s) < 0 else int(s) for s in sig), np.dtype(d["dtype"]).name
        )
        self._batch = int(d["shape"][0])

    @property
    def input(self) -> TensorInfo:
        return self._input

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        inp = self.interpreter.get_input_details()[0]
        if x.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(inp["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self._batch = x.shape[0]
            inp = self.interpreter.get_input_details()[0]
        self.interpreter.set_tensor(inp["index"], quantize(x, inp))
        self.interpreter.invoke()
        out = self.interpreter.get_output_details()[0]
        return dequantize(self.interpreter.get_tensor(out["index"]), out)

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._input.shape[0] is None or x.shape[0] == self._input.shape[0]:
            return self._invoke(x)
        return np.concatenate([self._invoke(x[i : i + 1]) for i in range(x.shape[0])])


ENGINES: dict[str, type[Backend]] = {".onnx": OnnxRuntimeBackend, ".tflite": LiteRTBackend}


def open_backend(path: str | Path, threads: int = 1, sha256: str | None = None) -> Backend:
    """The adapter for a model file, chosen by its suffix (.onnx or .tflite).

    With `sha256` (the model card's), the file is read once, those bytes are checked against it and the
    engine is built from the same bytes: a file swapped after the check can never be the one that runs.
    The model classes always pass their card's digest; without one the file is trusted as it is."""
    path = Path(path)
    engine = ENGINES.get(path.suffix.lower())
    if engine is None:
        raise ModelFileError(f"{path}: unknown model type {path.suffix!r}; expected one of {sorted(ENGINES)}")
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if sha256 is None:
        return engine(path, threads=threads)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise ModelFileError(
            f"{path} does not match its card: SHA-256 {digest[:12]}... != {sha256[:12]}... "
            "(file replaced or corrupted)"
        )
    return engine(path, threads=threads, content=content)
