"""What the commands share: exit codes, how errors are reported, option parsing, the face options and the
verifier they build."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from squeezerface.quality import QualityThresholds
    from squeezerface.verify import FaceVerifier


EXIT_OK, EXIT_DIFFERENT, EXIT_BAD_INPUT, EXIT_MISSING_DEPENDENCY = 0, 1, 2, 3


def cli_error(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, message) of an error the command line reports rather than raises: a missing extra 3,
    a typed squeezerface error or an OSError (a file the user may not read or write) 2; None for others."""
    from squeezerface.errors import MissingExtraError, SqueezerfaceError

    if isinstance(exc, MissingExtraError):
        return EXIT_MISSING_DEPENDENCY, exc.cli_message()
    if isinstance(exc, SqueezerfaceError):
        return EXIT_BAD_INPUT, exc.cli_message()
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_BAD_INPUT, f"{where}{exc.strerror or exc}"
    return None


def json_error(kind: str, message: str, path: str | None) -> dict[str, Any]:
    """The `--json` error object: `{"error": {"type", "message", "path"}}`."""
    return {"error": {"type": kind, "message": message, "path": path}}


def print_json_error(kind: str, message: str, path: str | None) -> None:
    print(json.dumps(json_error(kind, message, path)), flush=True)


def error_path(exc: BaseException, args: argparse.Namespace | None) -> str | None:
    """The file an error is about: the error's own path/source, else the command's gallery."""
    for attr in ("path", "source", "root", "filename"):
        value = getattr(exc, attr, None)
        if isinstance(value, str | os.PathLike):
            return str(value)
    from squeezerface.errors import GalleryError

    db = getattr(args, "db", None)
    return str(db) if isinstance(exc, GalleryError) and db is not None else None


def report_error(exc: BaseException, message: str, args: argparse.Namespace | None, as_json: bool) -> None:
    """The message on stderr and, with `--json`, the error object on stdout."""
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        print_json_error(type(exc).__name__, message, error_path(exc, args))


def parse_option(text: str) -> tuple[str, object]:
    """`key=value` with value parsed as int, float, bool or kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    value: object = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    return key, value


def cosine_threshold(text: str) -> float:
    """--threshold: a number in [-1, 1] (scores are cosines of unit vectors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a cosine threshold: it must lie in [-1, 1]")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (--top-k, --max-pixels, --workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_fraction(text: str) -> float:
    """--fallback-box: 0 (off) or a fraction in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1] (0 turns the fallback off), got {value}")
    return value


def add_quality_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-quality-gate",
        action="store_true",
        help="embed faces however small, blurred or turned they are (by default such a face is refused, "
        "exit status 2, with the reasons)",
    )


def quality_thresholds(args: argparse.Namespace) -> QualityThresholds | None:
    """The verifier's quality thresholds: the defaults, or None under --no-quality-gate."""
    from squeezerface.verify import DEFAULT_QUALITY

    return None if args.no_quality_gate else DEFAULT_QUALITY


def add_face_options(p: argparse.ArgumentParser) -> None:
    """The detector/embedder options every command that embeds photos takes (as `verify` does)."""
    p.add_argument(
        "--policy", choices=("largest", "central", "error"), default="largest", help="several faces"
    )
    p.add_argument("--model", default=None, help="embedder: shipped name or model file (default: int8 ONNX)")
    p.add_argument("--detector", default=None, help="detector: shipped name or model file")
    add_quality_option(p)
    add_max_pixels_option(p)


def add_max_pixels_option(p: argparse.ArgumentParser) -> None:
    from squeezerface.imageio import DEFAULT_MAX_PIXELS

    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse images larger than this many pixels (width x height; JPEGs are decoded smaller instead)",
    )


def face_verifier(args: argparse.Namespace) -> FaceVerifier:
    from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
    from squeezerface.verify import FaceVerifier

    return FaceVerifier(
        args.model or DEFAULT_EMBEDDER,
        args.detector or DEFAULT_DETECTOR,
        policy=args.policy,
        quality=quality_thresholds(args),
        max_pixels=args.max_pixels,
    )
