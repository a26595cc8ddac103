"""squeezerface: on-device face verification.

`import squeezerface` is deliberately light (numpy only at import time): models, OpenCV and optional
backends are imported by the modules that need them, and never torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from squeezerface.errors import (
    DatasetError,
    EmbedderUnavailableError,
    FaceDtypeError,
    FaceInputError,
    ImageDecodeError,
    LowQualityError,
    MissingExtraError,
    MissingImagesError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
    PairsFormatError,
    SqueezerfaceError,
)
from squeezerface.face import Face
from squeezerface.imageio import load_image
from squeezerface.quality import FaceQuality, QualityThresholds

if TYPE_CHECKING:
    from squeezerface.gallery import Gallery
    from squeezerface.verify import FaceVerifier, Match

__version__ = "0.1.0"

_LAZY = {
    "FaceVerifier": "squeezerface.verify",
    "Match": "squeezerface.verify",
    "Gallery": "squeezerface.gallery",
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
    "DatasetError",
    "EmbedderUnavailableError",
    "Face",
    "FaceDtypeError",
    "FaceInputError",
    "FaceQuality",
    "FaceVerifier",
    "Gallery",
    "ImageDecodeError",
    "LowQualityError",
    "Match",
    "MissingExtraError",
    "MissingImagesError",
    "ModelMismatchError",
    "MultipleFacesError",
    "NoFaceError",
    "PairsFormatError",
    "QualityThresholds",
    "SqueezerfaceError",
    "__version__",
    "load_image",
]
