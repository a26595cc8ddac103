"""Public pretrained face networks (EdgeFace-xs/-xxs, MobileFaceNet) behind the `FaceEmbedder` interface.

They are the distillation teachers, the starting networks of the pruned line and the peers in benchmarks,
so `squeezerface eval --embedder edgeface-xs` must measure them through exactly the pipeline our own models
run: the shipped detector + landmark refiner (`DetectorLocator`), the runtime's 5-point alignment to the
112x112 ArcFace template, and the same no-face fallback. Only the network differs.

Weights are never downloaded and never shipped (third-party licences, research-only training data): they are
read from a teachers folder, by default `../shared/teachers` (relative to the working directory, as the
data paths of the eval examples are), else option `teachers=` or $SQUEEZERFACE_TEACHERS. Each file is
checked against the SHA-256 its provenance notes publish, so a figure is always about the same weights.
EdgeFace needs torch + timm (the `train` extra; imported only when built); MobileFaceNet runs its ONNX file
in onnxruntime, the runtime's own engine.
"""

from __future__ import annotations

import hashlib
import os
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface.align import align_face
from squeezerface.embedders.base import FaceEmbedder, l2_normalize
from squeezerface.embedders.squeezerfacenet import make_locator
from squeezerface.errors import TeacherWeightsError
from squeezerface.face import Face

TEACHERS_ENV = "SQUEEZERFACE_TEACHERS"
DEFAULT_TEACHERS = Path("..") / "shared" / "teachers"
_HALF = (0.5, 0.5, 0.5)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TeacherSpec:
    """One published network: its file in the teachers folder, the file's SHA-256, its input convention
    (`(x / 255 - mean) / std` per RGB channel, NCHW) and its embedding size."""

    name: str
    file: str
    sha256: str
    embedding_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB aligned faces -> (N, 3, 112, 112) float32 network input."""
        x = np.asarray(faces, dtype=np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


TEACHERS: dict[str, TeacherSpec] = {
    "edgeface-xs": TeacherSpec(
        "edgeface-xs",
        "edgeface/edgeface_xs_q.pt",
        "a31314377876ab9fa2a75e5638bc528efe79fd17d5c9c0a228fb7f846d7581a6",
        512,
        _HALF,
        _HALF,
        "BSD-3-Clause (EdgeFace); trained on WebFace (research terms)",
    ),
    "edgeface-xxs": TeacherSpec(
        "edgeface-xxs",
        "edgeface/edgeface_xxs_q.pt",
        "46be7cc7e8d6e23501c0627fe5fbef101922ee9b85ccbef476987ab1a320b053",
        512,
        _HALF,
        _HALF,
        "BSD-3-Clause (EdgeFace); trained on WebFace (research terms)",
    ),
    "mobilefacenet": TeacherSpec(
        "mobilefacenet",
        "mobilefacenet/MobileFaceNet.onnx",
        "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507",
        128,
        _IMAGENET_MEAN,
        _IMAGENET_STD,
        "Apache-2.0 (foamliu/MobileFaceNet); trained on refined MS-Celeb-1M (research terms)",
    ),
}
"""The networks of ../shared/teachers/README.md, by embedder name (hashes from the same notes)."""


def teachers_dir(teachers: str | Path | None = None) -> Path:
    """The teachers folder: `teachers`, else $SQUEEZERFACE_TEACHERS, else ../shared/teachers."""
    folder = Path(teachers or os.environ.get(TEACHERS_ENV) or DEFAULT_TEACHERS)
    if not folder.is_dir():
        raise TeacherWeightsError(
            folder.resolve(),
            f"no teachers folder here (set option teachers=PATH or ${TEACHERS_ENV}; see "
            "shared/teachers/README.md for the files it holds)",
        )
    return folder


def teacher_file(name: str, teachers: str | Path | None = None) -> Path:
    """Path of a teacher's weights, checked against its published SHA-256."""
    spec = TEACHERS[name]
    path = teachers_dir(teachers) / spec.file
    if not path.is_file():
        raise TeacherWeightsError(path.resolve(), f"{name} weights missing from the teachers folder")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise TeacherWeightsError(
            path.resolve(), f"SHA-256 {digest[:12]}... is not the published {spec.sha256[:12]}..."
        )
    return path


class PretrainedEmbedder(FaceEmbedder):
    """What every pretrained network shares: weights lookup, locator, alignment, input convention, L2 norm.
    Subclasses only run the network (`forward`)."""

    def __init__(
        self, name: str, teachers: str | Path | None = None, threads: int = 1, locator: str = "tinyface"
    ) -> None:
        self.spec = TEACHERS[name]
        self.path = teacher_file(name, teachers)
        self.threads = int(threads)
        self.locator = make_locator(locator, self.threads)  # as squeezerfacenet's: shipped detector + refiner
        self.name = name
        self.version = f"{Path(self.spec.file).stem}+{self.spec.sha256[:12]}"
        self.embedding_size = self.spec.embedding_size

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, 112, 112) float32 network input -> (N, embedding_size) raw embeddings."""

    def config(self) -> dict:
        return {"weights": self.spec.file, "locator": self.locator.fingerprint()}

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.locator.detect(image)

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        return self.locator.locate(image, box)

    def embed_aligned(self, faces: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB faces aligned by `squeezerface.align` -> (N, d) unit vectors."""
        faces = np.asarray(faces)
        if len(faces) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        return l2_normalize(self.forward(self.spec.prepare(faces)))

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return self.embed_aligned(np.zeros((0, 112, 112, 3), np.uint8))
        return self.embed_aligned(np.stack([align_face(image, f.landmarks) for f in faces]))


class EdgeFaceEmbedder(PretrainedEmbedder):
    """EdgeFace-xs / -xxs: fp32 torch rebuilt from the published dynamically-quantized checkpoint."""

    def __init__(
        self,
        name: str = "edgeface-xs",
        teachers: str | Path | None = None,
        threads: int = 1,
        locator: str = "tinyface",
    ) -> None:
        super().__init__(name, teachers, threads, locator)
        from squeezerface.embedders.edgeface import EDGEFACE_ARCHS, load_edgeface

        # First torch use: a MissingExtraError naming the `train` extra when torch or timm is absent.
        self.net = load_edgeface(self.path, EDGEFACE_ARCHS[name])
        import torch

        torch.set_num_threads(self.threads)
        self._torch = torch

    def forward(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.net(self._torch.from_numpy(x)).numpy()


class MobileFaceNetEmbedder(PretrainedEmbedder):
    """MobileFaceNet's published ONNX file in onnxruntime. Its graph fixes the batch at 1, so faces run one
    at a time (a dynamic-batch export for bulk work: `python -m converters.export_teacher`)."""

    def __init__(
        self,
        name: str = "mobilefacenet",
        teachers: str | Path | None = None,
        threads: int = 1,
        locator: str = "tinyface",
    ) -> None:
        super().__init__(name, teachers, threads, locator)
        from squeezerface.backends import open_backend

        self.backend = open_backend(self.path, threads=self.threads, sha256=self.spec.sha256)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.backend.run(x[i : i + 1]) for i in range(len(x))])


def edgeface_xs(
    teachers: str | Path | None = None, threads: int = 1, locator: str = "tinyface"
) -> EdgeFaceEmbedder:
    """`--embedder edgeface-xs`."""
    return EdgeFaceEmbedder("edgeface-xs", teachers, threads, locator)


def edgeface_xxs(
    teachers: str | Path | None = None, threads: int = 1, locator: str = "tinyface"
) -> EdgeFaceEmbedder:
    """`--embedder edgeface-xxs`."""
    return EdgeFaceEmbedder("edgeface-xxs", teachers, threads, locator)


def mobilefacenet(
    teachers: str | Path | None = None, threads: int = 1, locator: str = "tinyface"
) -> MobileFaceNetEmbedder:
    """`--embedder mobilefacenet`."""
    return MobileFaceNetEmbedder("mobilefacenet", teachers, threads, locator)
