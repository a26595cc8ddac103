"""Typed errors. Every error the SDK raises on bad input derives from `SqueezerfaceError`, so an app can
catch one base class, and each carries the facts a user needs to fix the input (path, line, reason)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class SqueezerfaceError(Exception):
    """Base class of every error raised by squeezerface on bad input or bad state."""


class ImageDecodeError(SqueezerfaceError):
    """An image could not be read or decoded (missing, truncated, not an image, unsupported mode)."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot decode image {self.source}: {reason}")


class DatasetError(SqueezerfaceError):
    """A dataset folder or list file is unusable."""


class PairsFormatError(DatasetError):
    """A line of a pairs file does not follow the LFW `pairs.txt` format."""

    def __init__(self, path: str | Path, line_no: int, line: str, reason: str) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line_no}: {reason} (line: {line!r})")


class MissingImagesError(DatasetError):
    """A pairs file names images that the dataset root does not hold."""

    def __init__(self, root: str | Path, missing: Sequence[str | Path], shown: int = 5) -> None:
        self.root = str(root)
        self.missing = [str(m) for m in missing]
        first = ", ".join(self.missing[:shown])
        more = f" (and {len(self.missing) - shown} more)" if len(self.missing) > shown else ""
        super().__init__(
            f"{len(self.missing)} image(s) named by the pairs file are missing under {self.root}: "
            f"{first}{more}"
        )


class NoFaceError(SqueezerfaceError):
    """No face was found where one was required."""


class EmbedderUnavailableError(SqueezerfaceError):
    """An embedder's optional dependencies are not installed."""


class ModelFileError(SqueezerfaceError):
    """A model file or its card is missing, unreadable, of an unknown type, or fails its SHA-256 check."""


class CalibrationError(SqueezerfaceError):
    """Too few pairs (or only one kind) to calibrate thresholds."""


class MultipleFacesError(SqueezerfaceError):
    """Several faces where the policy requires exactly one."""

    def __init__(self, source: str, count: int) -> None:
        self.source = source
        self.count = count
        super().__init__(
            f"{count} faces found in {source}: use policy 'largest' or 'central' to pick one or crop"
        )


class FaceInputError(SqueezerfaceError, ValueError):
    """Aligned faces of the wrong shape for a model (also a ValueError)."""


class FaceDtypeError(SqueezerfaceError, TypeError):
    """Aligned faces of the wrong dtype for a model: uint8 RGB is expected (also a TypeError)."""


class OperatingPointError(SqueezerfaceError, KeyError):
    """An operating point a model card does not hold, or a name that is not one (also a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
