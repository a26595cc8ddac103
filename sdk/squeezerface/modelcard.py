"""Model cards: what a shipped model file is, how to feed it, how good it is, and where to set the threshold.

A card is a JSON file next to its model (`model.onnx` -> `model.onnx.json`). The runtime reads it to
preprocess inputs (size, channel order, layout, normalisation), to check the file is the one the card
describes (SHA-256), and to turn an operating point ("FAR 1e-3") into a cosine threshold. Thresholds are
calibrated on pairs the model never saw in training and never on the benchmark (LFW), and each carries the
pair counts behind it, so a user can tell a threshold backed by 300k impostors from one backed by 300.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from squeezerface.errors import (
    CalibrationError,
    FaceDtypeError,
    FaceInputError,
    ModelFileError,
    OperatingPointError,
)
from squeezerface.imageio import sha256_bytes

CARD_SCHEMA = 1
CARD_SUFFIX = ".json"
DEFAULT_FARS = (1e-2, 1e-3, 1e-4)
RESEARCH_ONLY = (
    "research use only: trained on utkface and celeba_wild, whose licences allow non-commercial research "
    "only; do not deploy commercially"
)


@dataclass(frozen=True)
class InputSpec:
    """How to turn an aligned RGB uint8 face into the model's input: x = (pixel - mean) * scale."""

    size: tuple[int, int] = (112, 112)  # (height, width)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    mean: float = 127.5
    scale: float = 1.0 / 128.0
    alignment: str = "5-point similarity to the ArcFace 112x112 template (squeezerface.align)"

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB aligned faces -> float32 batch in this spec's order and layout."""
        x = np.asarray(faces)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:3] != tuple(self.size) or x.shape[3] != 3:
            raise FaceInputError(
                f"expected aligned faces (N, {self.size[0]}, {self.size[1]}, 3), got {x.shape}"
            )
        if x.dtype != np.uint8:
            raise FaceDtypeError(f"expected uint8 RGB faces, got {x.dtype}")
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        y = (x.astype(np.float32) - np.float32(self.mean)) * np.float32(self.scale)
        if self.layout == "NCHW":
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y)


@dataclass(frozen=True)
class OperatingPoint:
    """A cosine threshold: accept a pair when cosine > threshold. `far`/`tar` are what it achieved on the
    calibration pairs; `target_far` is what was asked for (None for the EER point)."""

    name: str  # "far_1e-2", ..., "eer"
    threshold: float
    target_far: float | None
    far: float
    tar: float
    genuine_pairs: int
    impostor_pairs: int


@dataclass(frozen=True)
class Calibration:
    source: str  # what pairs, from which data
    genuine_pairs: int
    impostor_pairs: int
    points: tuple[OperatingPoint, ...]
    unsupported: tuple[str, ...] = ()  # FAR targets the impostor count could not support

    def point(self, name: str | float) -> OperatingPoint:
        """By name: "eer", or a FAR as "far_1e-3", "1e-3" or 0.001."""
        key = point_name(name)
        for p in self.points:
            if p.name == key:
                return p
        known = ", ".join(p.name for p in self.points)
        raise OperatingPointError(f"no operating point {name!r} in this card; it has: {known}")


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    file: str  # model file name, relative to the card
    format: str  # onnx | tflite
    precision: str  # fp32 | int8
    sha256: str
    size_bytes: int
    params: int
    mflops: float  # multiply-accumulates, millions
    embedding_size: int
    input: InputSpec
    licence: str
    training: dict[str, Any] = field(default_factory=dict)
    accuracy: tuple[dict[str, Any], ...] = ()  # rows: benchmark, artifact, accuracy, ...
    parity: dict[str, Any] = field(default_factory=dict)
    ops: tuple[str, ...] = ()
    calibration: Calibration | None = None
    schema: int = CARD_SCHEMA

    def threshold(self, point: str | float = "far_1e-3") -> float:
        if self.calibration is None:
            raise ModelFileError(
                f"card of {self.file} has no calibrated thresholds; run squeezerface calibrate"
            )
        return self.calibration.point(point).threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        d = dict(d)
        if d.get("schema", CARD_SCHEMA) != CARD_SCHEMA:
            raise ModelFileError(
                f"model card schema {d.get('schema')} is not supported (expected {CARD_SCHEMA})"
            )
        inp = dict(d.pop("input"))
        inp["size"] = tuple(inp["size"])
        cal = d.pop("calibration", None)
        if cal is not None:
            cal = Calibration(
                source=cal["source"],
                genuine_pairs=cal["genuine_pairs"],
                impostor_pairs=cal["impostor_pairs"],
                points=tuple(OperatingPoint(**p) for p in cal["points"]),
                unsupported=tuple(cal.get("unsupported", ())),
            )
        return cls(
            input=InputSpec(**inp),
            calibration=cal,
            accuracy=tuple(d.pop("accuracy", ())),
            ops=tuple(d.pop("ops", ())),
            **d,
        )

    def with_calibration(self, calibration: Calibration) -> ModelCard:
        return replace(self, calibration=calibration)


def point_name(name: str | float) -> str:
    """Canonical operating-point name: "eer" or "far_" + `metrics.far_key` ("far_1e-03")."""
    from squeezerface.metrics import far_key

    if isinstance(name, str):
        if name.lower() == "eer":
            return "eer"
        text = name.lower().removeprefix("far_").removeprefix("far")
        try:
            value = float(text)
        except ValueError:
            raise OperatingPointError(
                f"not an operating point: {name!r} (use 'eer' or a FAR such as 'far_1e-3')"
            ) from None
    else:
        value = float(name)
    return "far_" + far_key(value)


def card_path(model_path: str | Path) -> Path:
    """The card of `model.onnx` is `model.onnx.json`."""
    p = Path(model_path)
    return p.with_name(p.name + CARD_SUFFIX)


def save_card(card: ModelCard, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(card.to_dict(), indent=1) + "\n")
    return path


def load_card(model_path: str | Path, check_sha256: bool = True, *, verify: bool | None = None) -> ModelCard:
    """The card next to a model file; with `check_sha256`, also check the file's SHA-256 against it.

    For a listing or a report. A model class that will run the file uses `load_model`, which keeps the
    checked bytes so that the file is read once. `verify=` is the old name of `check_sha256` (it read as
    "verify faces"; `FaceVerifier.verify` decides faces): accepted for one release, with a warning."""
    check = _sha256_flag(check_sha256, verify, "load_card")
    return load_model(model_path, check)[0]


def _sha256_flag(check_sha256: bool, verify: bool | None, where: str) -> bool:
    """`check_sha256`, or the deprecated `verify=` when given (a DeprecationWarning for callers outside the
    package; the package's own model classes move to the new name with their next change)."""
    if verify is None:
        return check_sha256
    caller = sys._getframe(2).f_globals.get("__name__", "")
    if not caller.startswith("squeezerface."):
        warnings.warn(
            f"{where}(verify=...) is deprecated: use check_sha256=", DeprecationWarning, stacklevel=3
        )
    return verify


def load_model(
    model_path: str | Path, check_sha256: bool = True, *, verify: bool | None = None
) -> tuple[ModelCard, bytes | None]:
    """The card next to a model file and, with `check_sha256`, the file's bytes, checked against its SHA-256.

    Why the bytes come back: the engine is then built from them (`open_backend(..., content=...)`), so
    each model file is read and hashed once, and a file swapped after the check can never be the one
    that runs. Without the check nothing is read but the card (the engine then opens the path itself).
    `verify=` is the old name of `check_sha256`."""
    check_sha256 = _sha256_flag(check_sha256, verify, "load_model")
    model_path = Path(model_path)
    path = card_path(model_path)
    if not path.is_file():
        raise ModelFileError(f"no model card for {model_path} (expected {path})")
    try:
        card = ModelCard.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"unreadable model card {path}: {exc}") from exc
    return card, (read_checked(model_path, card.sha256) if check_sha256 else None)


def read_checked(model_path: str | Path, sha256: str) -> bytes:
    """A model file's bytes, read once, refused with `ModelFileError` unless their SHA-256 is `sha256`."""
    model_path = Path(model_path)
    try:
        content = model_path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {model_path}: {exc}") from exc
    digest = sha256_bytes(content)
    if digest != sha256:
        raise ModelFileError(
            f"{model_path} does not match its card: SHA-256 {digest[:12]}... != {sha256[:12]}... "
            "(file replaced or corrupted)"
        )
    return content


def calibrate(
    scores: np.ndarray,
    labels: np.ndarray,
    source: str,
    fars: tuple[float, ...] = DEFAULT_FARS,
) -> Calibration:
    """Thresholds at each target FAR (exact, no interpolation; see `metrics.tar_at_far`) and at the EER.

    A FAR target the impostor count cannot support (fewer than one false accept expected) is left out and
    named in `unsupported`, rather than quoted from a tail the data never showed.
    """
    from squeezerface.metrics import MetricsInputError, eer, tar_at_far

    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels, dtype=bool)
    n_gen, n_imp = int(lab.sum()), int((~lab).sum())
    if n_gen < 10 or n_imp < 10:
        raise CalibrationError(
            f"calibration needs at least 10 genuine and 10 impostor pairs, got {n_gen} and {n_imp}"
        )
    points: list[OperatingPoint] = []
    unsupported: list[str] = []
    try:
        for far in fars:
            r = tar_at_far(s, lab, far)
            if not r.measurable:
                unsupported.append(f"{point_name(far)} (needs {r.impostor_pairs_needed} impostor pairs)")
                continue
            assert r.threshold is not None and r.tar is not None
            points.append(
                OperatingPoint(
                    name=point_name(far),
                    threshold=r.threshold,
                    target_far=far,
                    far=float(np.mean(s[~lab] > r.threshold)),
                    tar=r.tar,
                    genuine_pairs=n_gen,
                    impostor_pairs=n_imp,
                )
            )
        e = eer(s, lab)
    except MetricsInputError as exc:
        raise CalibrationError(str(exc)) from exc
    points.append(
        OperatingPoint(
            name="eer",
            threshold=e.threshold,
            target_far=None,
            far=float(np.mean(s[~lab] > e.threshold)),
            tar=float(np.mean(s[lab] > e.threshold)),
            genuine_pairs=n_gen,
            impostor_pairs=n_imp,
        )
    )
    return Calibration(source, n_gen, n_imp, tuple(points), tuple(unsupported))
