"""squeezerface: on-device face verification.

`import squeezerface` is deliberately light (numpy only at import time): models, OpenCV and optional
backends are imported by the modules that need them, and never torch. It also turns onnxruntime's
telemetry off for this process before anything can import onnxruntime (see `squeezerface._ort`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from squeezerface._ort import disable_telemetry
from squeezerface.errors import (
    CalibrationError,
    DatasetError,
    DuplicateTemplateError,
    EmbedderUnavailableError,
    FaceDtypeError,
    FaceInputError,
    GalleryBusyError,
    GalleryError,
    GalleryFormatError,
    GalleryKeyError,
    GalleryReadOnlyError,
    ImageDecodeError,
    ImageTooLargeError,
    LowQualityError,
    MissingExtraError,
    MissingImagesError,
    ModelFileError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
    OperatingPointError,
    OptionError,
    PairsFormatError,
    SqueezerfaceError,
    TemplateError,
    TemplateIntegrityError,
    UnknownIdentityError,
)
from squeezerface.face import Face
from squeezerface.imageio import load_image
from squeezerface.quality import FaceQuality, QualityThresholds

disable_telemetry()  # first thing that runs: none of the imports above loads onnxruntime

if TYPE_CHECKING:
    from squeezerface.detect import FaceDetector
    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.gallery import Candidate, Gallery, IdentityInfo, ModelInfo, Verification
    from squeezerface.modelcard import ModelCard
    from squeezerface.verify import FaceResult, FaceVerifier, Match, Threshold

__version__ = "0.1.0"

_LAZY = {
    "FaceVerifier": "squeezerface.verify",
    "FaceResult": "squeezerface.verify",
    "Match": "squeezerface.verify",
    "Threshold": "squeezerface.verify",
    "FaceDetector": "squeezerface.detect",
    "FaceEmbeddingModel": "squeezerface.embed",
    "ModelCard": "squeezerface.modelcard",
    "Gallery": "squeezerface.gallery",
    "ModelInfo": "squeezerface.gallery",
    "Candidate": "squeezerface.gallery",
    "Verification": "squeezerface.gallery",
    "IdentityInfo": "squeezerface.gallery",
}
"""Public names whose modules load models or engines: imported on first use (PEP 562), so that
`import squeezerface` itself stays light."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'squeezerface' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CalibrationError",
    "Candidate",
    "DatasetError",
    "DuplicateTemplateError",
    "EmbedderUnavailableError",
    "Face",
    "FaceDetector",
    "FaceDtypeError",
    "FaceEmbeddingModel",
    "FaceInputError",
    "FaceQuality",
    "FaceResult",
    "FaceVerifier",
    "Gallery",
    "GalleryBusyError",
    "GalleryError",
    "GalleryFormatError",
    "GalleryKeyError",
    "GalleryReadOnlyError",
    "IdentityInfo",
    "ImageDecodeError",
    "ImageTooLargeError",
    "LowQualityError",
    "Match",
    "MissingExtraError",
    "MissingImagesError",
    "ModelCard",
    "ModelFileError",
    "ModelInfo",
    "ModelMismatchError",
    "MultipleFacesError",
    "NoFaceError",
    "OperatingPointError",
    "OptionError",
    "PairsFormatError",
    "QualityThresholds",
    "SqueezerfaceError",
    "TemplateError",
    "TemplateIntegrityError",
    "Threshold",
    "UnknownIdentityError",
    "Verification",
    "__version__",
    "load_image",
]
