"""The one interface every face embedder implements: the dlib teacher now, our own models later.

The detector/landmark step is explicit: `detect` finds faces, `locate` puts landmarks on a face whose box is
assumed (the documented no-face fallback), `embed` turns faces into L2-normalised vectors. `embed_photo`
composes them with a selection policy and a fallback, so that evaluation never silently drops a photo.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from squeezerface.face import Face

if TYPE_CHECKING:
    from squeezerface.quality import QualityThresholds

SelectPolicy = Literal["central", "largest"]


class FaceEmbedder(ABC):
    """A face embedder with its own detection and landmark step.

    Implementations load their models in `__init__` (once per process) and keep no other state, so one
    instance may serve many images and worker processes can rebuild it from `EmbedderSpec`.
    """

    name: str
    version: str
    embedding_size: int

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, with 5 landmarks each (possibly empty)."""

    @abstractmethod
    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        """Landmarks for a face assumed to fill `box` (used when `detect` finds nothing)."""

    @abstractmethod
    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(len(faces), embedding_size) float32 array of unit vectors, one per face."""

    def config(self) -> dict:
        """Settings that change the output; part of the cache key."""
        return {}

    def fingerprint(self) -> str:
        """Identifies this embedder's output exactly: name, version and config."""
        cfg = ",".join(f"{k}={v}" for k, v in sorted(self.config().items()))
        return f"{self.name}@{self.version}[{cfg}]"

    def embed_photo(
        self,
        image: np.ndarray,
        policy: SelectPolicy = "largest",
        fallback: Fallback | None = None,
        with_flip: bool = False,
        quality: QualityThresholds | None = None,
    ) -> PhotoEmbedding:
        """One photo through this embedder's face path (see `embed_photo`); the shipped pipeline's adapter
        overrides it to run `FaceVerifier.analyze`."""
        return generic_embed_photo(self, image, policy, fallback, with_flip, quality)

    def default_threshold(self, far: float = 1e-3) -> tuple[float, str] | None:
        """(threshold, operating point) the embedder's model card sets at `far`, or None without a card:
        evaluation reports measure the false-accept rate there beside the nominal one."""
        return None


@dataclass(frozen=True)
class Fallback:
    """What to do when the detector finds no face: assume one in a centred box.

    Cropped benchmark sets (LFW, CelebA crops) are centred on their subject, so a centred square covering
    `box_fraction` of the shorter side is where the face is; the embedder's own landmark step then places
    the 5 points inside it. `enabled=False` turns a no-face photo into an error instead.
    """

    enabled: bool = True
    box_fraction: float = 0.5

    def box(self, height: int, width: int) -> tuple[float, float, float, float]:
        side = self.box_fraction * min(height, width)
        cx, cy = width / 2.0, height / 2.0
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


@dataclass(frozen=True)
class PhotoEmbedding:
    """The embedding of the one face chosen in a photo, and how it was found."""

    embedding: np.ndarray
    face: Face
    faces_found: int
    flipped: np.ndarray | None = None
    """Embedding of the horizontally mirrored photo's face (exact targets for flip augmentation)."""

    @property
    def used_fallback(self) -> bool:
        return not self.face.detected


def select_face(faces: Sequence[Face], height: int, width: int, policy: SelectPolicy = "central") -> Face:
    """Pick the subject among several faces: nearest the image centre, or the largest."""
    if not faces:
        raise ValueError("no faces to select from")
    if policy == "largest":
        return max(faces, key=lambda f: f.area)
    if policy == "central":
        cx, cy = width / 2.0, height / 2.0

        def dist(f: Face) -> float:
            return ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2

        return min(faces, key=dist)
    raise ValueError(f"unknown face selection policy {policy!r}; use 'central' or 'largest'")


SUBJECT_SCORE_MARGIN = 0.25
"""Detections scoring more than this below a photo's best one are not candidates for its subject."""


def choose_face(faces: Sequence[Face], height: int, width: int, policy: str, source: str) -> Face:
    """The subject of a photo: the largest face, the most central, or an error when there are several.

    Only faces scoring within `SUBJECT_SCORE_MARGIN` of the best detection are candidates: a clear face
    at 0.97 beside a doubtful detection at 0.6 is one face, and "largest" must not pick the doubtful one
    because its box happens to be bigger. Two real faces both score high and both stay candidates.
    Every face path (`FaceVerifier`, and the teacher embedders of `squeezerface eval`) chooses here."""
    from squeezerface.errors import MultipleFacesError, NoFaceError

    if not faces:
        raise NoFaceError(f"no face found in {source}")
    best = max(f.score for f in faces)
    candidates = [f for f in faces if f.score >= best - SUBJECT_SCORE_MARGIN]
    if len(candidates) > 1 and policy == "error":
        raise MultipleFacesError(source, len(candidates))
    return select_face(candidates, height, width, "central" if policy == "central" else "largest")


def generic_embed_photo(
    embedder: FaceEmbedder,
    image: np.ndarray,
    policy: SelectPolicy = "largest",
    fallback: Fallback | None = None,
    with_flip: bool = False,
    quality: QualityThresholds | None = None,
) -> PhotoEmbedding:
    """The face path of an embedder with its own detector: choose as `FaceVerifier` does (`choose_face`),
    use the fallback box when nothing is detected, gate a detected face on `quality` (None: no gate)."""
    from squeezerface.errors import LowQualityError, NoFaceError

    fallback = fallback or Fallback()
    h, w = image.shape[:2]
    faces = embedder.detect(image)
    if faces and policy == "central":  # as teacher targets were always made: nearest the centre
        face = select_face(faces, h, w, "central")
    elif faces:
        face = choose_face(faces, h, w, policy, "the photo")
    elif fallback.enabled:
        face = embedder.locate(image, fallback.box(h, w))
    else:
        raise NoFaceError("no face found in the photo (fallback disabled)")
    if quality is not None and face.detected:
        from squeezerface.align import align_face
        from squeezerface.quality import assess

        measured = assess(face.landmarks, face.box, align_face(image, face.landmarks), quality)
        if not measured.ok:
            raise LowQualityError("the photo", measured)
    vector = embedder.embed(image, [face])[0]
    flipped = None
    if with_flip:
        mirror = np.ascontiguousarray(image[:, ::-1])
        flipped = embedder.embed(mirror, [face.mirrored(w)])[0]
    return PhotoEmbedding(embedding=vector, face=face, faces_found=len(faces), flipped=flipped)


def embed_photo(
    embedder: FaceEmbedder,
    image: np.ndarray,
    policy: SelectPolicy = "largest",
    fallback: Fallback | None = None,
    with_flip: bool = False,
    quality: QualityThresholds | None = None,
) -> PhotoEmbedding:
    """Detect, select one face, embed it; `fallback` when nothing is detected (`FaceEmbedder.embed_photo`).

    `with_flip` also embeds the mirrored photo's face (same face, mirrored landmarks), for distillation
    targets of flipped training images and for flip-averaged evaluation. `quality` gates detected faces
    (LowQualityError), as the app does; None turns the gate off.
    """
    return embedder.embed_photo(image, policy, fallback or Fallback(), with_flip, quality)


@dataclass(frozen=True)
class EmbedderSpec:
    """A picklable recipe for an embedder, so worker processes can build their own copy.

    `name` is a built-in name (see `BUILTIN_EMBEDDERS`) or `package.module:factory` for a user's own.
    """

    name: str
    options: tuple[tuple[str, object], ...] = ()

    def build(self) -> FaceEmbedder:
        return build_embedder(self.name, **dict(self.options))


BUILTIN_EMBEDDERS: dict[str, str] = {
    "dlib": "squeezerface.embedders.dlib_resnet:DlibResNetEmbedder",
    "squeezerfacenet": "squeezerface.embedders.squeezerfacenet:SqueezerFaceNetEmbedder",
    # Pretrained public networks (teachers and peers; weights from ../shared/teachers, never shipped).
    "edgeface-xs": "squeezerface.embedders.pretrained:edgeface_xs",
    "edgeface-xxs": "squeezerface.embedders.pretrained:edgeface_xxs",
    "mobilefacenet": "squeezerface.embedders.pretrained:mobilefacenet",
}


def build_embedder(name: str, **options: object) -> FaceEmbedder:
    """Instantiate an embedder by built-in name or `module:factory` path.

    An unknown name is an `UnknownEmbedderError` and a keyword the factory does not take an `OptionError`
    listing those it does, both before any model is loaded (the CLI's `--embedder` and `-O KEY=VALUE`)."""
    from squeezerface.errors import UnknownEmbedderError

    target = BUILTIN_EMBEDDERS.get(name, name)
    if ":" not in target:
        raise UnknownEmbedderError(name, sorted(BUILTIN_EMBEDDERS))
    module_name, attr = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ModuleNotFoundError, AttributeError) as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name != module_name:
            raise  # the module exists but needs something missing: not an unknown name
        raise UnknownEmbedderError(name, sorted(BUILTIN_EMBEDDERS)) from exc
    _check_options(name, factory, options)
    embedder = factory(**options)
    if not isinstance(embedder, FaceEmbedder):
        raise TypeError(f"{target} returned {type(embedder).__name__}, not a FaceEmbedder")
    return embedder


def _check_options(name: str, factory: Callable[..., object], options: dict[str, object]) -> None:
    """OptionError for keywords `factory` does not take, naming the ones it does."""
    from squeezerface.errors import OptionError

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL and n != "self"
    ]
    for key in options:
        if key not in accepted:
            raise OptionError(
                key,
                f"embedder {name!r} has no option {key!r}: it takes {', '.join(accepted) or 'none'}",
            )


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
