"""Face verification in one object: detect, align, embed, compare, decide, with the shipped models.

`FaceVerifier` composes the detector and the embedder (each a small model class on a backend, as in
insightface's `FaceAnalysis`), loads them once, and turns the embedder card's calibrated thresholds into
decisions at a named operating point. Results are plain records (`Match`, `Face` with its `FaceQuality`).
A quality gate (`squeezerface.quality`) refuses, with `LowQualityError`, a face too small, too blurred or
turned too far to give a meaningful embedding.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from squeezerface.align import template_face
from squeezerface.detect import FaceDetector
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import SUBJECT_SCORE_MARGIN, Fallback, choose_face
from squeezerface.errors import (
    LowQualityError,
    ModelFileError,
    OptionError,
)
from squeezerface.face import Face
from squeezerface.imageio import DEFAULT_MAX_PIXELS, ChannelOrder, ImageSource, load_image
from squeezerface.modelcard import point_name
from squeezerface.photo import Photo
from squeezerface.quality import QualityThresholds, assess
from squeezerface.shipped import DEFAULT_THREADS, SHIPPED_FOR_BACKEND

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


class _Unset:
    """Marks a per-call override left out (None is a meaningful value: no gate, no fallback)."""


UNSET = _Unset()


@dataclass(frozen=True)
class Match:
    """A comparison of two faces: cosine score, the threshold it was held against, and the decision.

    `accepted` is the decision (score > threshold: the same person), named as in the gallery's `Candidate`
    and `Verification`; `same` is its old name, kept for one release."""

    score: float
    threshold: float
    accepted: bool
    operating_point: str  # "far_1e-03", "eer" or "explicit"
    model: str

    @property
    def same(self) -> bool:
        """Deprecated name of `accepted`."""
        warnings.warn("Match.same is deprecated: use Match.accepted", DeprecationWarning, stacklevel=2)
        return self.accepted

    def to_dict(self) -> dict:
        """JSON-able fields; "same" repeats "accepted" for scripts written before 0.2 (deprecated)."""
        return {**asdict(self), "same": self.accepted}


@dataclass(frozen=True)
class Threshold:
    """A cosine decision threshold and where it comes from: accept a pair when its score is above `value`.

    operating_point: the card's name for it ("far_1e-03", "eer") or "explicit" for one the caller gave.
    nominal_far: the false-accept rate the card's calibration aimed at (None for the EER point or an explicit
        threshold); what it measured on its calibration pairs is `measured_far` over `impostor_pairs`.
    Unpacking it as `(value, operating_point)`, as `threshold()` returned before 0.2, still works for one
    release with a DeprecationWarning."""

    value: float
    operating_point: str
    nominal_far: float | None = None
    measured_far: float | None = None
    impostor_pairs: int = 0
    genuine_pairs: int = 0

    def __iter__(self) -> Iterator[float | str]:
        warnings.warn(
            "unpacking FaceVerifier.threshold() as a tuple is deprecated: use .value and .operating_point",
            DeprecationWarning,
            stacklevel=2,
        )
        return iter((self.value, self.operating_point))

    def __getitem__(self, i: int) -> float | str:
        warnings.warn(
            "indexing FaceVerifier.threshold() is deprecated: use .value and .operating_point",
            DeprecationWarning,
            stacklevel=2,
        )
        return (self.value, self.operating_point)[i]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FaceResult:
    """What the face path made of one photo: the embedding of the face it used, and how it got there.

    faces: every detection the search made, best first, as the network gave it (landmarks unrefined, no
        quality: `FaceVerifier.detect` measures every face; for the "largest" policy a large photo's search
        stops once the subject is settled, so smaller faces may be missing);
    face: the face used (one of `faces` by its box, or a fallback face with `detected=False`), landmarks
        refined, quality filled in;
    candidates: detections within `SUBJECT_SCORE_MARGIN` of the best, among which the policy chose;
    flipped: the embedding of the mirrored photo's face, when asked for (distillation targets)."""

    embedding: np.ndarray
    face: Face
    faces: tuple[Face, ...]
    candidates: int
    flipped: np.ndarray | None = None

    @property
    def used_fallback(self) -> bool:
        """True when no face was detected and the fallback box was embedded instead."""
        return not self.face.detected

    def to_dict(self) -> dict:
        """JSON-able summary (no embedding): faces found, the one used, its box, score and quality."""
        return {
            "faces_found": len(self.faces),
            "used": None if self.face.detected is False else _index_of(self.faces, self.face),
            "fallback": self.used_fallback,
            "face": face_dict(self.face),
        }


def face_dict(face: Face) -> dict:
    """A face as JSON: box, detector score, whether it was detected, quality measurements and verdict."""
    return {
        "box": [round(float(v), 2) for v in face.box],
        "score": round(float(face.score), 4),
        "detected": bool(face.detected),
        "quality": face.quality.to_dict() if face.quality is not None else None,
    }


def _index_of(faces: Sequence[Face], face: Face) -> int | None:
    for i, f in enumerate(faces):
        if f.box == face.box:
            return i
    return None


class FaceVerifier:
    """Shipped detector + embedder (or model files of your own), loaded once; `verify(a, b) -> Match`.

    embedder, detector: shipped model names or model files; None (default) takes the shipped int8 models
        of the backend. `detector` may also be an object with `detect(rgb) -> list[Face]` (eval's locators).
    threads: intra-op threads of each model's engine (default: this CPU architecture's measured default,
        `squeezerface.shipped.DEFAULT_THREADS`).
    policy: which face of a photo with several is its subject: "largest", "central", or "error"
        (MultipleFacesError).
    backend: "auto" (each file's suffix decides: .onnx -> onnxruntime, .tflite -> LiteRT), "onnxruntime"
        or "litert" (see `BackendName`).
    quality: the quality gate's thresholds (default `DEFAULT_QUALITY`); None turns the gate off. With a
        gate, `embed` and `verify` raise LowQualityError for a subject face that fails it.
    max_pixels: images larger than this (width x height) are refused by `load_image` (ImageTooLargeError;
        JPEGs are decoded smaller instead).
    fallback: what a photo without a detected face gives: None (default, the app's behaviour) raises
        NoFaceError; a `Fallback` embeds the centred box it names instead (evaluation on cropped benchmark
        photos), marked `detected=False` and counted by `squeezerface eval`.

    Every method that takes an image takes what `load_image` does (a path, encoded bytes, a numpy array,
    a PIL image), with `channel_order` ("RGB" or "BGR") saying how a numpy array's channels are ordered.
    """

    def __init__(
        self,
        embedder: str | Path | None = None,
        detector: str | Path | object | None = None,
        threads: int = DEFAULT_THREADS,
        policy: FacePolicy = "largest",
        *,
        backend: BackendName | str = "auto",
        quality: QualityThresholds | None = DEFAULT_QUALITY,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        fallback: Fallback | None = None,
    ) -> None:
        if policy not in FACE_POLICIES:
            raise ValueError(f"policy must be one of {FACE_POLICIES}, got {policy!r}")
        if quality is not None and not isinstance(quality, QualityThresholds):
            raise TypeError(f"quality must be QualityThresholds or None, got {type(quality).__name__}")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise OptionError("max_pixels", f"max_pixels must be a positive integer, got {max_pixels!r}")
        engine = _BACKEND_ALIASES.get(str(backend))
        if engine is None:
            raise ValueError(f"backend must be one of {sorted(_BACKEND_ALIASES)}, got {backend!r}")
        shipped = SHIPPED_FOR_BACKEND[engine if engine != "auto" else "onnxruntime"]
        embedder = _model_for(embedder, shipped[0], engine, "embedder")
        self.embedder = FaceEmbeddingModel(embedder).prepare(threads)
        if hasattr(detector, "detect"):  # a detector object of the caller's (eval's `locator=dlib`)
            self.detector: FaceDetector = detector  # type: ignore[assignment]
        else:
            path = _model_for(detector, shipped[1], engine, "detector")  # type: ignore[arg-type]
            self.detector = FaceDetector(path).prepare(threads)
        self.policy: FacePolicy = policy
        self.quality = quality
        self.threads = threads
        self.max_pixels = max_pixels
        self.fallback = fallback

    @property
    def engines(self) -> tuple[str, str]:
        """(embedder engine, detector engine), e.g. ("onnxruntime", "onnxruntime"); a caller's detector
        object names its own (`engine`, else its class)."""
        assert self.embedder.backend is not None
        backend = getattr(self.detector, "backend", None)
        own = str(getattr(self.detector, "engine", type(self.detector).__name__))
        return self.embedder.backend.engine, str(backend.engine) if backend is not None else own

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
        return self.analyze(image, source, channel_order=channel_order).face

    def analyze(
        self,
        image: ImageSource,
        source: str | None = None,
        *,
        channel_order: ChannelOrder = "RGB",
        policy: FacePolicy | None = None,
        fallback: Fallback | _Unset | None = UNSET,
        quality: QualityThresholds | _Unset | None = UNSET,
        with_flip: bool = False,
    ) -> FaceResult:
        """The one face path: detect, choose the subject, fall back, gate, align, embed.

        verify, identify, enroll, eval and calibrate all call this, so a threshold calibrated here holds in
        the app. `policy`, `fallback` and `quality` override this verifier's settings for one call (eval
        turns the fallback on for photos where no face is found). Raises NoFaceError (no face and no
        fallback), MultipleFacesError (policy "error"), LowQualityError (a detected face failing the gate;
        a fallback face is never gated: it is counted instead)."""
        name = source or _name(image)
        photo = Photo.open(image, self.max_pixels, channel_order)  # decode errors name the file
        policy = policy or self.policy
        fallback = self.fallback if isinstance(fallback, _Unset) else fallback
        gate = self.quality if isinstance(quality, _Unset) else quality
        faces = self.find_faces(photo, policy)
        height, width = photo.height, photo.width
        if faces or fallback is None or not fallback.enabled:
            face, candidates = choose_face(faces, height, width, policy, name), _candidates(faces)
            if isinstance(self.detector, FaceDetector):  # only the subject's landmarks are refined
                face = self.detector.refine(photo, face)
        else:
            face, candidates = template_face(fallback.box(height, width)), 0
        reduction = photo.reduction_for(face.width)
        rgb, scale = photo.at(reduction), photo.scale_of(reduction)
        aligned = self.embedder.align(rgb, face.scaled(scale))
        face = self._assessed(rgb, face, gate, aligned)
        assert face.quality is not None
        if gate is not None and face.detected and not face.quality.ok:
            raise LowQualityError(name, face.quality)
        flipped = None
        if with_flip:
            mirror_face = face.scaled(scale).mirrored(rgb.shape[1])
            mirror = self.embedder.align(np.ascontiguousarray(rgb[:, ::-1]), mirror_face)
            flipped = self.embedder.get_feat(mirror[None])[0]
        embedding = self.embedder.get_feat(aligned[None])[0]
        return FaceResult(embedding, face, tuple(faces), candidates, flipped)

    def embed(
        self,
        image: ImageSource,
        source: str | None = None,
        *,
        faces: Sequence[Face] | None = None,
        channel_order: ChannelOrder = "RGB",
    ) -> np.ndarray:
        """Unit embeddings, always (N, D) (`embed_one` gives the (D,) vector of a photo's subject).

        - an image: (1, D), the face the policy picks (NoFaceError, MultipleFacesError, LowQualityError
          when it fails the gate); `source` names the image in error messages;
        - an image with `faces`: (len(faces), D), one row per given face (e.g. from `detect`), no gate;
        - an (N, 112, 112, 3) uint8 RGB array of aligned faces: (N, D). A wrong shape raises
          FaceInputError, a wrong dtype FaceDtypeError. (A 3-D array is always an image: pass one aligned
          face as `aligned[None]`.)
        """
        if isinstance(image, np.ndarray) and image.ndim == 4:
            if faces is not None:
                raise ValueError("faces= goes with an image, not with an array of aligned faces")
            return self.embedder.get_feat(image)
        if faces is None:
            return self.embed_one(image, source, channel_order=channel_order)[None]
        rgb = self.load(image, channel_order)
        size = self.embedder.card.input.size
        crops = [self.embedder.align(rgb, face) for face in faces]
        batch = np.stack(crops) if crops else np.zeros((0, *size, 3), np.uint8)
        return self.embedder.get_feat(batch)

    def embed_one(
        self, image: ImageSource, source: str | None = None, *, channel_order: ChannelOrder = "RGB"
    ) -> np.ndarray:
        """The (D,) unit embedding of the face the policy picks in one photo (raises as `analyze`)."""
        return self.analyze(image, source, channel_order=channel_order).embedding

    def find_faces(self, photo: Photo, policy: FacePolicy = "largest") -> list[Face]:
        """The detector's faces in full-size coordinates, unrefined and unmeasured (the subject is refined
        and measured once chosen); our detector searches the photo level by level and, for the "largest"
        policy, stops once the subject is settled (`FaceDetector.detect_photo`)."""
        if isinstance(self.detector, FaceDetector):
            margin = SUBJECT_SCORE_MARGIN if policy == "largest" else None
            return self.detector.detect_photo(photo, margin, refine=False)
        return self.detector.detect(photo.at(1))  # a caller's detector object takes the full image

    def _assessed(
        self,
        rgb: np.ndarray,
        face: Face,
        gate: QualityThresholds | _Unset | None = UNSET,
        aligned: np.ndarray | None = None,
    ) -> Face:
        limits = self.quality if isinstance(gate, _Unset) else gate
        crop = self.embedder.align(rgb, face) if aligned is None else aligned
        quality = assess(face.landmarks, face.box, crop, limits or DEFAULT_QUALITY)
        return replace(face, quality=quality)

    def threshold(self, far: float | str = 1e-3) -> Threshold:
        """The embedder card's threshold at an operating point: a FAR (1e-2, 1e-3, "far_1e-4") or "eer".

        Raises OperatingPointError for a point the card lacks and ModelFileError for a card without
        calibration. The record also says what false-accept rate the calibration measured, on how many
        impostor pairs."""
        name = point_name(far)
        card = self.embedder.card
        value = card.threshold(name)
        assert card.calibration is not None
        point = card.calibration.point(name)
        return Threshold(value, name, point.target_far, point.far, point.impostor_pairs, point.genuine_pairs)

    def compare(
        self, a: np.ndarray, b: np.ndarray, far: float | str = 1e-3, threshold: float | None = None
    ) -> Match:
        """Decide on two unit embeddings (D,): cosine score against the card's threshold at `far`, or an
        explicit cosine `threshold` in [-1, 1] (OptionError outside it)."""
        score = float(np.dot(np.ravel(a), np.ravel(b)))
        if threshold is None:
            t = self.threshold(far)
            value, point = t.value, t.operating_point
        else:
            value, point = check_threshold(threshold), "explicit"
        return Match(score, float(value), score > value, point, self.embedder.card.file)

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
        else:
            check_threshold(threshold)
        a = self.embed_one(image_a, _name(image_a), channel_order=channel_order)
        b = self.embed_one(image_b, _name(image_b), channel_order=channel_order)
        return self.compare(a, b, far, threshold)


def check_threshold(threshold: float) -> float:
    """A cosine threshold as float, refused (OptionError) unless finite and in [-1, 1]."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise OptionError("threshold", f"threshold must be a number, got {threshold!r}") from None
    if not -1.0 <= value <= 1.0:
        raise OptionError("threshold", f"threshold {threshold!r} is not a cosine: it must lie in [-1, 1]")
    return value


def _candidates(faces: Sequence[Face]) -> int:
    best = max((f.score for f in faces), default=0.0)
    return sum(1 for f in faces if f.score >= best - SUBJECT_SCORE_MARGIN)


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
