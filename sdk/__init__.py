"""squeezerface: on-device face verification.

`import squeezerface` is deliberately light (numpy only at import time): models, OpenCV and optional
backends are imported by the modules that need them, and never torch.
"""

from squeezerface.errors import (
    DatasetError,
    ImageDecodeError,
    MissingImagesError,
    PairsFormatError,
    SqueezerfaceError,
)
from squeezerface.face import Face

__version__ = "0.1.0"

__all__ = [
    "DatasetError",
    "Face",
    "ImageDecodeError",
    "MissingImagesError",
    "PairsFormatError",
    "SqueezerfaceError",
    "__version__",
]
