"""Typed errors. Every error the SDK raises on bad input derives from `SqueezerfaceError`, so an app can
catch one base class, and each carries the facts a user needs to fix the input (path, line, reason)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from squeezerface.quality import FaceQuality


class SqueezerfaceError(Exception):
    """Base class of every error raised by squeezerface on bad input or bad state.

    `cli_hint`, where set, is the advice in the command line's terms (an option such as `--policy`) that
    replaces the Python advice of `api_hint` in `cli_message`, so the CLI never tells a user to pass a
    keyword argument they cannot pass."""

    api_hint: str = ""
    cli_hint: str = ""

    def cli_message(self) -> str:
        """The message as the command line shows it: Python advice swapped for the option that does it."""
        text = str(self)
        if self.api_hint and self.cli_hint and self.api_hint in text:
            return text.replace(self.api_hint, self.cli_hint)
        return text


class ImageDecodeError(SqueezerfaceError):
    """An image could not be read or decoded (missing, truncated, not an image, unsupported mode)."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot decode image {self.source}: {reason}")


class ImageTooLargeError(ImageDecodeError):
    """An image over the pixel cap (`max_pixels`; the CLI's `--max-pixels`), refused before decoding."""

    api_hint = "raise max_pixels to accept it"
    cli_hint = "raise --max-pixels to accept it"


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


class MissingExtraError(SqueezerfaceError, ImportError):
    """An optional dependency is not installed (also an ImportError). `extra` names the extra that brings
    it (`pip install -e ".[train]"`, `pip install 'squeezerface[tflite]'`), or is None where none does."""

    def __init__(self, message: str, extra: str | None = None) -> None:
        super().__init__(message)
        self.extra = extra


def require_extra(tool: str, modules: tuple[str, ...], extra: str) -> None:
    """Raise MissingExtraError naming `extra` when any of `modules` is not installed (checked without
    importing them): the import guard of the repository-root tools `pruning` and `converters`."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"`{tool}` needs {', '.join(missing)}, which the '{extra}' extra installs: "
            f'pip install -e ".[{extra}]" (from the repository root)',
            extra=extra,
        )


class EmbedderUnavailableError(MissingExtraError):
    """An embedder's (or another optional part's) dependencies are not installed. Kept for existing handlers:
    a `MissingExtraError`, which new code should catch."""


class ModelFileError(SqueezerfaceError):
    """A model file or its card is missing, unreadable, of an unknown type, or fails its SHA-256 check."""


class TeacherWeightsError(ModelFileError):
    """A pretrained network's weights (`squeezerface.embedders.pretrained`) are not where they were looked
    for, or are not the published file (SHA-256). `path` is the file or folder looked at; the message says how
    to point at another folder (option `teachers=`, or $SQUEEZERFACE_TEACHERS)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnknownEmbedderError(SqueezerfaceError, ValueError):
    """An embedder name that is neither built in nor a `package.module:factory` path (also a ValueError).
    `known` lists the built-in names."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"unknown embedder {name!r}: use one of {', '.join(self.known)} or 'package.module:factory'"
        )


class CalibrationError(SqueezerfaceError):
    """Too few pairs (or only one kind) to calibrate thresholds."""


class MultipleFacesError(SqueezerfaceError):
    """Several faces where the policy requires exactly one."""

    api_hint = "use policy='largest' or policy='central' to pick one, or crop the photo"
    cli_hint = "use --policy largest or --policy central to pick one, or crop the photo"

    def __init__(self, source: str, count: int) -> None:
        self.source = source
        self.count = count
        super().__init__(f"{count} faces found in {source}: {self.api_hint}")


class LowQualityError(SqueezerfaceError):
    """The chosen face is too small, too blurred or turned too far to embed reliably.

    reasons: every check it failed, as sentences; quality: the `squeezerface.quality.FaceQuality` with the
    measurements. The limits are `squeezerface.quality.QualityThresholds`, configurable per verifier."""

    api_hint = "thresholds: FaceVerifier(quality=QualityThresholds(...)); quality=None turns the gate off"
    cli_hint = "--no-quality-gate embeds it anyway"

    def __init__(self, source: str, quality: FaceQuality) -> None:
        self.source = source
        self.quality = quality
        self.reasons: tuple[str, ...] = tuple(quality.reasons)
        reasons = "; ".join(self.reasons)
        super().__init__(f"face in {source} fails the quality gate: {reasons} ({self.api_hint})")


class FaceInputError(SqueezerfaceError, ValueError):
    """Aligned faces of the wrong shape for a model (also a ValueError)."""


class FaceDtypeError(SqueezerfaceError, TypeError):
    """Aligned faces of the wrong dtype for a model: uint8 RGB is expected (also a TypeError)."""


class OperatingPointError(SqueezerfaceError, KeyError):
    """An operating point a model card does not hold, or a name that is not one (also a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class GalleryError(SqueezerfaceError):
    """An enrolment gallery cannot be opened, read or written as asked."""


class GalleryFormatError(GalleryError):
    """A file that is not a usable gallery: corrupt, not SQLite, another program's SQLite database, or a
    schema version this squeezerface does not read. The file is left exactly as it was."""


class ModelMismatchError(GalleryError):
    """A gallery holds templates of one embedding model and the caller brings another: cosine scores between
    embeddings of two models mean nothing, so they are never mixed."""

    def __init__(self, path: str | Path, gallery_model: object, given_model: object) -> None:
        self.path = str(path)
        self.gallery_model = gallery_model
        self.given_model = given_model
        super().__init__(
            f"{self.path} holds templates of {gallery_model}, not of {given_model}: embeddings of two "
            "models cannot be compared (use a gallery per model, or re-enrol everyone with one model)"
        )


class UnknownIdentityError(GalleryError, KeyError):
    """A name the gallery does not hold (also a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TemplateError(GalleryError, ValueError):
    """Embeddings unfit to store or search with: wrong shape or size, NaN/infinite or all-zero values (also a
    ValueError)."""


class GalleryBusyError(GalleryError):
    """Another connection held the gallery's write lock for longer than the gallery's `timeout`, even after
    retries; nothing was written. Try again, or open the gallery with a longer timeout."""


class GalleryKeyError(GalleryError):
    """The encryption key and the gallery do not go together: an encrypted gallery opened without a key or
    with a wrong one, a key given for a gallery that is not encrypted, or a key that is not 32 bytes (as 64
    hex digits, base64, or a 32-byte key file). The message never contains the key."""


class TemplateIntegrityError(GalleryFormatError):
    """An encrypted template fails its AES-GCM authentication although the key is right: its bytes were
    changed, or it was moved to another identity or model (the identity and model are authenticated with
    it)."""


class CryptoUnavailableError(EmbedderUnavailableError):
    """A gallery key is configured but the `cryptography` package is not installed (pip install
    'squeezerface[crypto]'). A subclass of `EmbedderUnavailableError` so that every handler of a missing
    optional dependency (the CLI's exit status 3) covers it too."""


class OptionError(SqueezerfaceError, ValueError):
    """An option a component does not take, or a value it does not accept (also a ValueError): an
    embedder's keyword (`-O KEY=VALUE` on the command line), a locator, a threshold outside [-1, 1].
    `option` names it as the caller wrote it."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


class GalleryReadOnlyError(GalleryError):
    """A write to a gallery that this process may only read (a read-only file, folder or mount, or a
    gallery opened with `readonly=True`). Nothing was written."""


class DuplicateTemplateError(GalleryError):
    """A photo (the same aligned face) already enrolled, under this name or another; `existing` names the
    identities that hold it. Raised only when the caller asks for it (`on_duplicate="error"`)."""

    def __init__(self, path: str | Path, existing: Sequence[str]) -> None:
        self.path = str(path)
        self.existing = tuple(existing)
        super().__init__(f"this face is already enrolled in {self.path} as {', '.join(self.existing)}")
