"""The face detector: image in, `Face` records (box, score, 5 landmarks) out, on ONNX or LiteRT.

The network (see `pruning.detector.model`) predicts, at every location of 3 strides, a face
score, a box and 5 landmarks relative to the location; everything else is here as pure functions:
letterboxing (any aspect ratio into the square input, no distortion), the location grid, decoding, and
non-maximum suppression. The `FaceDetector` class only composes them on a backend, like the embedder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from squeezerface.backends import Backend, open_backend
from squeezerface.face import Face
from squeezerface.landmarks import LandmarkRefiner
from squeezerface.modelcard import InputSpec, ModelCard, load_model
from squeezerface.shipped import DEFAULT_DETECTOR, model_path

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed into the square input: input = image * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input-space (..., 2) coordinates back to the original image."""
        return (xy - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale


def letterbox(
    image: np.ndarray, size: int, fill: int = 0, upscale: bool = False
) -> tuple[np.ndarray, Letterbox]:
    """Fit into `size` x `size` keeping the aspect ratio, centred on a `fill` background.

    Images smaller than the input are not enlarged unless `upscale`: the detector is trained for faces up to
    ~95 % of a 160 input, and blowing a small photo up to a larger input would push its face past that."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    if not upscale:
        scale = min(scale, 1.0)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.full((size, size, 3), fill, np.uint8)
    py, px = (size - nh) // 2, (size - nw) // 2
    canvas[py : py + nh, px : px + nw] = resized
    return canvas, Letterbox(scale=nw / w, pad_x=float(px), pad_y=float(py))


def priors(size: int, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """(A, 3) array of (cx, cy, stride) for every output location, in the network's output order."""
    out = []
    for s in strides:
        n = -(-size // s)  # ceil: the network's feature maps round up for sizes not divisible by s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        out.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s, np.full(n * n, s)], axis=1))
    return np.concatenate(out).astype(np.float32)


def decode(raw: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (A, 15) outputs -> scores (A,), boxes (A, 4) as x1y1x2y2, landmarks (A, 5, 2), input space."""
    c, s = grid[:, :2], grid[:, 2:3]
    scores = 1.0 / (1.0 + np.exp(-raw[:, 0]))
    centre = c + raw[:, 1:3] * s
    half = np.exp(np.clip(raw[:, 3:5], -10, 10)) * s / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    landmarks = c[:, None, :] + raw[:, 5:15].reshape(-1, 5, 2) * s[:, None, :]
    return scores, boxes, landmarks


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first (pure numpy)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def _box4(values: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) as the four floats a `Face` box is."""
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1


def faces_from_output(
    raw: np.ndarray,
    grid: np.ndarray,
    box: Letterbox,
    score_threshold: float,
    nms_iou: float,
    image_shape: tuple[int, int],
    top_k: int = 50,
) -> list[Face]:
    """Decode one image's raw output into `Face` records in the image's own coordinates, best first."""
    scores, boxes, landmarks = decode(raw, grid)
    idx = np.flatnonzero(scores >= score_threshold)
    if idx.size == 0:
        return []
    idx = idx[np.argsort(-scores[idx], kind="stable")[: top_k * 4]]
    kept = idx[nms(boxes[idx], scores[idx], nms_iou)][:top_k]
    h, w = image_shape
    faces = []
    for i in kept:
        corners = box.to_image(boxes[i].reshape(2, 2)).ravel()
        corners = np.clip(corners, 0, [w, h, w, h])
        faces.append(
            Face(
                box=_box4(corners),
                landmarks=box.to_image(landmarks[i]),
                score=float(scores[i]),
            )
        )
    return faces


FROM_CARD = "card"
"""`refiner=FROM_CARD`: the landmark refiner the detector's card names (beside the detector file)."""


class FaceDetector:
    """Tiny single-stage face detector with 5 landmarks, described by its model card.

    `input_size` may differ from the card's training size (any multiple of 32): larger finds smaller faces
    at a higher cost. Thresholds default to the card's `detection` settings. Each face's landmarks are
    then refined on a crop of the full-resolution image by the landmark refiner the card names
    (`squeezerface.landmarks`), unless `refiner` names another file or is None (the detector's own points,
    about 0.2 ms faster per face and less exact). The card also says how many refinement passes to make
    (each re-cuts the crop with the previous pass's points).

    `retry_larger`: when nothing is found in an image larger than the input, look once more at twice the
    input size. A 160 input holds a whole 12 MP photo at 1/25 scale, where a face a tenth of the photo's
    width is 16 pixels, at the detector's lower limit; the second look costs time only when the first
    found nothing. A file with a fixed input size (TFLite) retries with the larger file its card names
    (`retry_model`, e.g. the 320 TFLite file for the 160 one) when that file lies beside it."""

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        input_size: int | None = None,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
        verify: bool = True,
        refiner: str | Path | None = FROM_CARD,
        refiner_passes: int | None = None,
        retry_larger: bool = True,
    ) -> None:
        self.path = model_path(str(model))
        self.card: ModelCard
        self.card, self._content = load_model(self.path, verify=verify)  # bytes checked: the engine's
        settings = self.card.training.get("detection", {})
        if refiner == FROM_CARD:
            named = settings.get("refiner")
            beside = self.path.parent / named if named else None
            refiner = beside if beside is not None and beside.is_file() else named
        passes = int(refiner_passes or settings.get("refiner_passes", 1))
        self.refiner = LandmarkRefiner(refiner, passes=passes, verify=verify) if refiner else None
        self.input_size = int(input_size or self.card.input.size[0])
        self.score_threshold = float(
            score_threshold if score_threshold is not None else settings.get("score", 0.5)
        )
        self.nms_iou = float(nms_iou if nms_iou is not None else settings.get("nms_iou", 0.4))
        self.retry_larger = retry_larger
        named = settings.get("retry_model")
        self._retry_path = self.path.parent / named if named else None
        self._retry_content: bytes | None = None
        if self._retry_path is not None and self._retry_path.is_file():
            _, self._retry_content = load_model(self._retry_path, verify=verify)  # checked like the main file
        self.backend: Backend | None = None
        self._retry: tuple[Backend, int] | None = None
        self._dynamic = False
        self._inputs: dict[tuple[int, str], tuple[InputSpec, np.ndarray]] = {}  # (size, layout) -> spec, grid

    def prepare(self, threads: int = 1) -> FaceDetector:
        if self.backend is None:
            self.backend = open_backend(self.path, threads=threads, content=self._content)
            self._content = None  # the engine holds the model now
            fixed = self.backend.input.shape[2]
            if fixed is not None and fixed != self.input_size and self.backend.engine == "litert":
                self.input_size = int(fixed)  # a TFLite file has its input size baked in
            self._dynamic = fixed is None
            if self.retry_larger and fixed is not None and self._retry_path and self._retry_path.is_file():
                retry = open_backend(self._retry_path, threads=threads, content=self._retry_content)
                self._retry = (retry, int(retry.input.shape[2] or 2 * self.input_size))
            self._retry_content = None
            if self.refiner is not None:
                self.refiner.prepare(threads)
        return self

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best first (possibly empty)."""
        faces = self.detect_at(image, self.input_size)
        if not faces and self.retry_larger and max(image.shape[:2]) > self.input_size:
            if self._dynamic:
                faces = self.detect_at(image, 2 * self.input_size)
            elif self._retry is not None:
                faces = self.detect_at(image, self._retry[1], self._retry[0])
        if self.refiner is None:
            return faces
        return [self.refiner.get(image, f) for f in faces]

    def detect_at(self, image: np.ndarray, size: int, backend: Backend | None = None) -> list[Face]:
        """The network's faces (unrefined) with the image letterboxed into `size` x `size`."""
        self.prepare()
        backend = backend or self.backend
        assert backend is not None
        canvas, box = letterbox(image, size)
        key = (size, backend.layout)
        if key not in self._inputs:  # once per input size, not on every photo
            self._inputs[key] = (
                replace(self.card.input, size=(size, size), layout=backend.layout),
                priors(size),
            )
        spec, grid = self._inputs[key]
        raw = backend.run(spec.prepare(canvas))[0]
        shape = (image.shape[0], image.shape[1])
        return faces_from_output(raw, grid, box, self.score_threshold, self.nms_iou, shape)
