"""One tiny adapter per inference engine, all with the same contract: `run(x) -> first output`.

Model classes (embedder, detector) sit on a `Backend`, never on an engine directly, so a model file can be
ONNX (onnxruntime) or TFLite (LiteRT) without the model class knowing. The engine is chosen by the file's
suffix. Each engine is imported only when a model of its kind is opened, which keeps `import squeezerface`
light and lets a device ship only the engine it uses.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface._ort import import_onnxruntime
from squeezerface.errors import EmbedderUnavailableError, ModelFileError
from squeezerface.modelcard import read_checked

Layout = Literal["NCHW", "NHWC"]

log = logging.getLogger(__name__)
_STDERR_LOCK = threading.Lock()


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
        ort = import_onnxruntime()  # telemetry off: see squeezerface._ort
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


@contextmanager
def native_stderr_to_log(engine: str) -> Iterator[list[str]]:
    """Catch what native code writes to file descriptor 2 while the block runs; log it at DEBUG.

    Why: the LiteRT interpreter prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." with
    C `fprintf(stderr)` for every model it opens (three times for one `squeezerface verify`, even with
    `--quiet`), and has no Python switch or environment variable that silences it (TF_CPP_MIN_LOG_LEVEL
    does not). The lines go to `logging.getLogger("squeezerface.backends")` and into the yielded list
    (filled when the block ends), so a caller can put them in an error message. One thread at a time:
    descriptor 2 is process-wide (another thread's native output in that short window is logged too)."""
    lines: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").strip().splitlines())
    for line in lines:
        log.debug("%s: %s", engine, line)


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
        said: list[str] = []
        try:
            with native_stderr_to_log(self.engine) as said:  # its INFO line per model: quiet unless logged
                if content is not None:
                    self.interpreter = Interpreter(model_content=content, num_threads=max(1, threads))
                else:
                    self.interpreter = Interpreter(model_path=str(self.path), num_threads=max(1, threads))
                self.interpreter.allocate_tensors()
        except Exception as exc:
            detail = " ".join([str(exc), *said]).strip()
            raise ModelFileError(f"LiteRT cannot load {self.path}: {detail}") from exc
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


# each engine is a Backend subclass taking (path, threads, content)
ENGINES: dict[str, Callable[..., Backend]] = {".onnx": OnnxRuntimeBackend, ".tflite": LiteRTBackend}


def open_backend(
    path: str | Path, threads: int = 1, sha256: str | None = None, content: bytes | None = None
) -> Backend:
    """The adapter for a model file, chosen by its suffix (.onnx or .tflite).

    `content`: the file's bytes, already checked against its card (`modelcard.load_model` returns them),
    from which the engine is built without opening the file again: the model classes pass these, so each
    model file is read and hashed once. With `sha256` instead, the file is read here, once, and those
    bytes are checked and used. With neither, the engine opens the path and the file is trusted as is."""
    path = Path(path)
    engine = ENGINES.get(path.suffix.lower())
    if engine is None:
        raise ModelFileError(f"{path}: unknown model type {path.suffix!r}; expected one of {sorted(ENGINES)}")
    if content is not None:
        return engine(path, threads=threads, content=content)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if sha256 is None:
        return engine(path, threads=threads)
    return engine(path, threads=threads, content=read_checked(path, sha256))
