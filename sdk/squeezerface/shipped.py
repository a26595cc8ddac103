"""The model files shipped inside the package (package data under `squeezerface/models/`), found offline.

Each shipped model is a file plus its card (`NAME.json` beside it). They are located with
`importlib.resources`, so they are found wherever pip put the package, with no download and no path to
configure.
"""

from __future__ import annotations

import shutil
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable
from pathlib import Path

from squeezerface.errors import ModelFileError

DEFAULT_EMBEDDER = "mobilefacenet-taylor-900k-int8.onnx"
"""MobileFaceNet Taylor-pruned to 899,886 parameters, int8 ONNX (head in float): LFW within 0.2 pp of fp32
(see its card). The first embedder, `squeezerfacenet-980k-*`, stays shipped and loadable by name."""

DEFAULT_DETECTOR = "tinyface-int8.onnx"
"""The tiny face detector with 5 landmarks (int8 ONNX, any input size that is a multiple of 32)."""

DEFAULT_REFINER = "tinyface-lm-int8.onnx"
"""The landmark refiner that follows the detector: 5 points re-estimated on a 64-pixel crop of the face."""

SHIPPED_FOR_BACKEND: dict[str, tuple[str, str]] = {
    "onnxruntime": (DEFAULT_EMBEDDER, DEFAULT_DETECTOR),
    "litert": ("mobilefacenet-taylor-900k-int8.tflite", "tinyface-160-int8.tflite"),
}
"""(embedder, detector) shipped files each backend uses by default: the int8 models, detector at 160 px."""

_MODEL_SUFFIXES = (".onnx", ".tflite")


def _models_dir() -> Traversable:
    return resources.files("squeezerface").joinpath("models")


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
