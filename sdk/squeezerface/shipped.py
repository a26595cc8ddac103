"""The model files shipped inside the package (package data under `squeezerface/models/`), found offline.

Each shipped model is a file plus its card (`NAME.json` beside it). They are located with
`importlib.resources`, so they are found wherever pip put the package, with no download and no path to
configure.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable
from pathlib import Path

from squeezerface.errors import ModelFileError


def _models_dir() -> Traversable:
    return resources.files("squeezerface").joinpath("models")


DEFAULTS_FILE = "defaults.json"
"""Package data: the default detector and embedder per CPU architecture, chosen by measurement
(benchmarks/run.py writes the choice and the figures behind it; see `machine_defaults`)."""
_INT8_PAIR = ("mobilefacenet-taylor-900k-int8.onnx", "tinyface-int8.onnx")


@dataclass(frozen=True)
class MachineDefaults:
    """The shipped ONNX pair a machine of this architecture uses by default, and why."""

    embedder: str
    detector: str
    threads: int
    why: str


def machine_defaults(machine: str | None = None) -> MachineDefaults:
    """This architecture's entry of models/defaults.json (`platform.machine()`: x86_64, aarch64, ...), or
    the int8 pair where none was measured (int8 is the fast path on ARM). Pure given the package data."""
    arch = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    resource = _models_dir().joinpath(DEFAULTS_FILE)
    table = json.loads(resource.read_text()) if resource.is_file() else {}
    entry = table.get("machines", {}).get(arch)
    if entry is None:
        why = f"no measurement for {arch}: the int8 pair"
        return MachineDefaults(_INT8_PAIR[0], _INT8_PAIR[1], 1, why)
    return MachineDefaults(entry["embedder"], entry["detector"], int(entry["threads"]), entry["why"])


_DEFAULTS = machine_defaults()

DEFAULT_EMBEDDER = _DEFAULTS.embedder
"""MobileFaceNet Taylor-pruned to 899,886 parameters, int8 ONNX (head in float): LFW within 0.2 pp of fp32
(see its card). The first embedder, `squeezerfacenet-980k-*`, stays shipped and loadable by name."""

DEFAULT_DETECTOR = _DEFAULTS.detector
"""The tiny face detector with 5 landmarks (ONNX, any input size that is a multiple of 32): the fp32 or the
int8 file, whichever models/defaults.json names for this CPU architecture (`machine_defaults`)."""

DEFAULT_THREADS = _DEFAULTS.threads
"""Intra-op threads per model by default: the largest count models/defaults.json found never slower than
one thread on this CPU architecture (1 on the x86 machine measured: two threads were slower)."""

DEFAULT_REFINER = "tinyface-lm-int8.onnx"
"""The landmark refiner that follows the detector: 5 points re-estimated on a 64-pixel crop of the face."""

SHIPPED_FOR_BACKEND: dict[str, tuple[str, str]] = {
    "onnxruntime": (DEFAULT_EMBEDDER, DEFAULT_DETECTOR),
    "litert": ("mobilefacenet-taylor-900k-int8.tflite", "tinyface-160-int8.tflite"),
}
"""(embedder, detector) shipped files each backend uses by default: the int8 models, detector at 160 px."""

_MODEL_SUFFIXES = (".onnx", ".tflite")


def shipped_models() -> list[str]:
    """File names of every shipped model (cards excluded)."""
    folder = _models_dir()
    if not folder.is_dir():
        return []
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(_MODEL_SUFFIXES))


def model_path(name: str = DEFAULT_EMBEDDER) -> Path:
    """Filesystem path of a shipped model (its card lies beside it). Accepts a shipped name or any path
    to a model file, so every API that takes a model takes either."""
    candidate = Path(name)
    if candidate.suffix in _MODEL_SUFFIXES and candidate.is_file():
        return candidate
    resource = _models_dir().joinpath(name)
    if not resource.is_file():
        known = ", ".join(shipped_models()) or "none (a source tree without built models?)"
        raise ModelFileError(f"no model file or shipped model named {name!r}; shipped: {known}")
    if isinstance(resource, Path):
        return resource
    # Zipped installs: copy model and card out once into the user cache.
    from squeezerface.cache import cache_root

    target = cache_root() / "models"
    target.mkdir(parents=True, exist_ok=True)
    for item in (name, name + ".json"):
        src = _models_dir().joinpath(item)
        if src.is_file() and not (target / item).is_file():
            with resources.as_file(src) as p:
                shutil.copyfile(p, target / item)
    return target / name
