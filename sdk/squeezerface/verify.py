"""Face verification in one object: detect, align, embed, compare, decide, with the shipped models.

`FaceVerifier` composes the detector and the embedder (each a small model class on a backend, as in
insightface's `FaceAnalysis`), loads them once, and turns the embedder card's calibrated thresholds into
decisions at a named operating point. Results are plain records (`Match`, `Face` with its `FaceQuality`).
A quality gate (`squeezerface.quality`) refuses, with `LowQualityError`, a face too small, too blurred or
turned too far to give a meaningful embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface.detect import FaceDetector
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import select_face
from squeezerface.errors import LowQualityError, ModelFileError, MultipleFacesError, NoFaceError
from squeezerface.face import Face
from squeezerface.imageio import DEFAULT_MAX_PIXELS, ChannelOrder, ImageSource, load_image
from squeezerface.modelcard import point_name
from squeezerface.quality import QualityThresholds, assess
from squeezerface.shipped import SHIPPED_FOR_BACKEND

FacePolicy = Literal["largest", "central", "error"]
FACE_POLICIES: tuple[str, ...] = ("largest", "central", "error")

BackendName = Literal["auto", "onnxruntime", "litert"]
"""Inference engine: "auto" follows each model file's suffix; "onnxruntime" (alias "onnx") and "litert"
(alias "tflite") pick the shipped models of that format and refuse model files of the other."""

_BACKEND_ALIASES = {
    "auto": "auto",
    "onnxruntime": "onnxruntime",
    "onnx": "onnxruntime",
    "litert": "litert",
    "tflite": "litert",
}
_BACKEND_SUFFIX = {"onnxruntime": ".onnx", "litert": ".tflite"}
DEFAULT_QUALITY = QualityThresholds()
"""The quality gate `FaceVerifier` applies unless told otherwise (see `QualityThresholds`)."""


@dataclass(frozen=True)
class Match:
    """A comparison of two faces: cosine score, the threshold it was held against, and the decision."""

    score: float
    threshold: float
    same: bool
    operating_point: str  # "far_1e-03", "eer" or "explicit"
    model: str

    def to_dict(self) -> dict:
        return asdict(self)


SUBJECT_SCORE_MARGIN = 0.25
"""Detections scoring more than this below a photo's best one are not candidates for its subject."""


def choose_face(faces: list[Face], height: int, width: int, policy: FacePolicy, source: str) -> Face:
    """The subject of a photo: the largest face, the most central, or an error when there are several.

    Only faces scoring within `SUBJECT_SCORE_MARGIN` of the best detection are candidates: a clear face
    at 0.97 beside a doubtful detection at 0.6 is one face, and "largest" must not pick the doubtful one
    because its box happens to be bigger. Two real faces both score high and both stay candidates."""
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    best = max(f.score for f in faces)
    candidates = [f for f in faces if f.score >= best - SUBJECT_SCORE_MARGIN]
    if len(candidates) > 1 and policy == "error":
        raise MultipleFacesError(source, len(candidates))
    return select_face(candidates, height, width, "central" if policy == "central" else "largest")


class FaceVerifier:
    """Shipped detector + embedder (or model files of your own), loaded once; `verify(a, b) -> Match`.

    embedder, detector: shipped model names or model files; None (default) takes the shipped int8 models
        of the backend.
    threads: intra-op threads of each model's engine.
    policy: which face of a photo with several is its subject: "largest", "central", or "error"
        (MultipleFacesError).
    backend: "auto" (each file's suffix decides: .onnx -> onnxruntime, .tflite -> LiteRT), "onnxruntime"
        or "litert" (see `BackendName`).
    quality: the quality gate's thresholds (default `DEFAULT_QUALITY`); None turns the gate off. With a
        gate, `embed` and `verify` raise LowQualityError for a subject face that fails it.
    max_pixels: images larger than this (width x height) are refused by `load_image`.

    Every method that takes an image takes what `load_image` does (a path, encoded bytes, a numpy array,
    a PIL image), with `channel_order` ("RGB" or "BGR") saying how a numpy array's channels are ordered.
    """

    def __init__(
        self,
        embedder: str | Path | None = None,
        detector: str | Path | None = None,
        threads: int = 1,
        policy: FacePolicy = "largest",
        *,
        backend: BackendName | str = "auto",
        quality: QualityThresholds | None = DEFAULT_QUALITY,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if policy not in FACE_POLICIES:
            raise ValueError(f"policy must be one of {FACE_POLICIES}, got {policy!r}")
        if quality is not None and not isinstance(quality, QualityThresholds):
            raise TypeError(f"quality must be QualityThresholds or None, got {type(quality).__name__}")
        engine = _BACKEND_ALIASES.get(str(backend))
        if engine is None:
            raise ValueError(f"backend must be one of {sorted(_BACKEND_ALIASES)}, got {backend!r}")
        shipped = SHIPPED_FOR_BACKEND[engine if engine != "auto" else "onnxruntime"]
        embedder = _model_for(embedder, shipped[0], engine, "embedder")
        detector = _model_for(detector, shipped[1], engine, "detector")
        self.embedder = FaceEmbeddingModel(embedder).prepare(threads)
        self.detector = FaceDetector(detector).prepare(threads)
        self.policy: FacePolicy = policy
        self.quality = quality
        self.threads = threads
        self.max_pixels = max_pixels

    @property
    def engines(self) -> tuple[str, str]:
        """(embedder engine, detector engine), e.g. ("onnxruntime", "onnxruntime")."""
        assert self.embedder.backend is not None and self.detector.backend is not None
        return self.embedder.backend.engine, self.detector.backend.engine

    def load(self, image: ImageSource, channel_order: ChannelOrder = "RGB") -> np.ndarray:
        """The image as the RGB uint8 HxWx3 array every other method works on (see `load_image`)."""
        return load_image(image, max_pixels=self.max_pixels, channel_order=channel_order)

    def detect(self, image: ImageSource, channel_order: ChannelOrder = "RGB") -> list[Face]:
        """Every face in an image, best first, each with its `quality` measured (against this verifier's
        thresholds, or the defaults when the gate is off). Detection never applies the gate."""
        rgb = self.load(image, channel_order)
        return [self._assessed(rgb, face) for face in self.detector.detect(rgb)]

    def align(self, image: ImageSource, face: Face, channel_order: ChannelOrder = "RGB") -> np.ndarray:
        """The (112, 112, 3) uint8 RGB crop of `face` that the embedder takes (5-point similarity)."""
        return self.embedder.align(self.load(image, channel_order), face)

    def subject(
        self, image: ImageSource, source: str | None = None, channel_order: ChannelOrder = "RGB"
    ) -> Face:
        """The face the policy picks in an image, with its quality; raises as `embed` does."""
        face, _ = self._subject(self.load(image, channel_order), source or _name(image))
        return face

    def embed(
        self,
        image: ImageSource,
        source: str | None = None,
        *,
        faces: Sequence[Face] | None = None,
        channel_order: ChannelOrder = "RGB",
    ) -> np.ndarray:
        """Unit embeddings, batched.

        - an image: the (D,) embedding of the one face the policy picks (NoFaceError, MultipleFacesError,
          LowQualityError when it fails the gate); `source` names the image in error messages;
        - an image with `faces`: (len(faces), D), one row per given face (e.g. from `detect`), no gate;
        - an (N, 112, 112, 3) uint8 RGB array of aligned faces: (N, D). A wrong shape raises
          FaceInputError, a wrong dtype FaceDtypeError. (A 3-D array is always an image: pass one aligned
          face as `aligned[None]`.)
        """
        if isinstance(image, np.ndarray) and image.ndim == 4:
            if faces is not None:
                raise ValueError("faces= goes with an image, not with an array of aligned faces")
            return self.embedder.get_feat(image)
        rgb = self.load(image, channel_order)
        if faces is not None:
            size = self.embedder.card.input.size
            crops = [self.embedder.align(rgb, face) for face in faces]
            batch = np.stack(crops) if crops else np.zeros((0, *size, 3), np.uint8)
            return self.embedder.get_feat(batch)
        _, aligned = self._subject(rgb, source or _name(image))
        return self.embedder.get_feat(aligned[None])[0]

    def _assessed(self, rgb: np.ndarray, face: Face, aligned: np.ndarray | None = None) -> Face:
        crop = self.embedder.align(rgb, face) if aligned is None else aligned
        quality = assess(face.landmarks, face.box, crop, self.quality or DEFAULT_QUALITY)
        return replace(face, quality=quality)

    def _subject(self, rgb: np.ndarray, source: str) -> tuple[Face, np.ndarray]:
        """The chosen face (quality filled in) and its aligned crop; the gate applied."""
        face = choose_face(self.detector.detect(rgb), rgb.shape[0], rgb.shape[1], self.policy, source)
        aligned = self.embedder.align(rgb, face)
        face = self._assessed(rgb, face, aligned)
        assert face.quality is not None
        if self.quality is not None and not face.quality.ok:
            raise LowQualityError(source, face.quality)
        return face, aligned

    def threshold(self, far: float | str = 1e-3) -> tuple[float, str]:
        name = point_name(far)
        return self.embedder.card.threshold(name), name

    def compare(
        self, a: np.ndarray, b: np.ndarray, far: float | str = 1e-3, threshold: float | None = None
    ) -> Match:
        score = float(np.dot(a, b))
        if threshold is None:
            threshold, point = self.threshold(far)
        else:
            point = "explicit"
        return Match(score, float(threshold), score > threshold, point, self.embedder.card.file)

    def verify(
        self,
        image_a: ImageSource,
        image_b: ImageSource,
        far: float | str = 1e-3,
        threshold: float | None = None,
        *,
        channel_order: ChannelOrder = "RGB",
    ) -> Match:
        """Same person or not, at the card's threshold for `far` (or an explicit cosine `threshold`).

        Raises NoFaceError, MultipleFacesError (policy "error"), LowQualityError (quality gate) or
        ImageDecodeError for either image, all SqueezerfaceError."""
        if threshold is None:
            self.threshold(far)  # an operating point the card lacks fails before any image work
        a = self.embed(image_a, _name(image_a), channel_order=channel_order)
        b = self.embed(image_b, _name(image_b), channel_order=channel_order)
        return self.compare(a, b, far, threshold)


def _name(source: ImageSource) -> str:
    return str(source) if isinstance(source, str | Path) else f"<{type(source).__name__}>"


def _model_for(model: str | Path | None, shipped: str, engine: str, what: str) -> str | Path:
    """The model file to load: the backend's shipped one when none is given, else the given one, which
    must be of the backend's format unless the backend is "auto"."""
    if model is None:
        return shipped
    suffix = Path(str(model)).suffix.lower()
    if engine != "auto" and suffix != _BACKEND_SUFFIX[engine]:
        raise ModelFileError(
            f"{what} {model} is not a {engine} model: backend {engine!r} runs {_BACKEND_SUFFIX[engine]} "
            "files (pass backend='auto' to follow each file's suffix)"
        )
    return model
