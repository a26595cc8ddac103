"""What the commands share: exit codes, option parsing, the face options and the verifier they build."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from squeezerface.quality import QualityThresholds
    from squeezerface.verify import FaceVerifier


EXIT_OK, EXIT_DIFFERENT, EXIT_BAD_INPUT, EXIT_MISSING_DEPENDENCY = 0, 1, 2, 3


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
