"""Export a pretrained teacher (EdgeFace-xs/-xxs, MobileFaceNet) to one ONNX file with a dynamic batch, so
distillation targets are computed in onnxruntime at full speed instead of in eager torch.

    python -m converters.export_teacher --name edgeface-xs --out runs/teachers/

The graph takes the project's input convention, RGB NCHW `(x - 127.5) / 128` (the runtime cards' and
`pruning.faceset.to_input`'s), so a trainer feeds the teacher the very tensor its student sees; the
teacher's own normalisation is one affine inside the graph. Output: the raw embedding (not normalised).
A card is written beside the file, so the runtime opens it like any model
(`FaceEmbeddingModel("runs/teachers/edgeface-xs.onnx")`).

Checked before it is kept: real LFW faces, found and aligned exactly as `squeezerface eval` does, through
torch, through the ONNX file and through the runtime's teacher embedder (`--embedder NAME`); the largest
absolute difference of any unit-embedding coordinate is printed and stored in the card. The file holds
third-party weights: it lives under runs/ and is never committed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from converters.onnx_export import export_onnx, onnx_ops
from converters.parity import Parity, parity
from squeezerface.embedders.base import Fallback, embed_photo
from squeezerface.embedders.pretrained import TEACHERS, PretrainedEmbedder, teacher_file
from squeezerface.imageio import load_image, sha256_file
from squeezerface.modelcard import InputSpec, ModelCard, card_path, save_card

PROJECT_INPUT = InputSpec(mean=127.5, scale=1.0 / 128.0)
"""What the exported graph takes (the shipped models' convention)."""
TOLERANCE = 1e-4
"""Largest absolute difference of a unit-embedding coordinate the export may show against torch."""


class ProjectInput(nn.Module):
    """Maps the project's `(x - 127.5) / 128` to the teacher's `(x / 255 - mean) / std`, per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 128.0 / 255.0 / s)
        self.register_buffer("shift", (127.5 / 255.0 - m) / s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def teacher_module(name: str, teachers: Path | None) -> nn.Module:
    """The teacher in torch, taking the project's input. MobileFaceNet: the torch rebuild of its published
    state dict (`pruning.mobilefacenet`, equal to the ONNX file), whose fixed-batch Reshape is a flatten."""
    spec = TEACHERS[name]
    if name.startswith("edgeface"):
        from squeezerface.embedders.edgeface import EDGEFACE_ARCHS, load_edgeface

        net = load_edgeface(teacher_file(name, teachers), EDGEFACE_ARCHS[name])
        return nn.Sequential(ProjectInput(spec.mean, spec.std), net).eval()
    from pruning.mobilefacenet import load_pretrained

    pt = teacher_file(name, teachers).with_name("mobilefacenet.pt")
    return load_pretrained(pt, normalize=False).eval()  # maps the project's input itself


def lfw_faces(embedder: PretrainedEmbedder, root: Path, count: int) -> np.ndarray:
    """`count` aligned faces of the first LFW people (sorted), found as `squeezerface eval` finds them."""
    from squeezerface.align import align_face

    photos = sorted(root.glob("*/*.jpg"))[:count]
    if len(photos) < count:
        raise SystemExit(f"need {count} photos under {root}, found {len(photos)}")
    faces = []
    for path in photos:
        image = load_image(path)
        face = embed_photo(embedder, image, fallback=Fallback()).face
        faces.append(align_face(image, face.landmarks))
    return np.stack(faces)


def count_mmacs(module: nn.Module, size: int = 112) -> float:
    """Multiply-accumulates of one face, in millions: convolutions, and Linear layers per token (EdgeNeXt
    applies its Linears at every position, which a per-sample count would miss); attention products not."""
    total = 0

    def hook(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups * output[0].numel()
        else:
            total += m.in_features * output[0].numel()

    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.inference_mode():
        module(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return round(total / 1e6, 2)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class ExportCheck:
    """Agreement on the same faces: ONNX vs torch, and ONNX vs the runtime's teacher embedder."""

    onnx_vs_torch: Parity
    onnx_vs_runtime: Parity

    @property
    def ok(self) -> bool:
        return max(self.onnx_vs_torch.max_abs_diff, self.onnx_vs_runtime.max_abs_diff) <= TOLERANCE


def check_export(
    path: Path, module: nn.Module, embedder: PretrainedEmbedder, faces: np.ndarray
) -> ExportCheck:
    from squeezerface.backends import open_backend

    x = PROJECT_INPUT.prepare(faces)
    with torch.inference_mode():
        reference = module(torch.from_numpy(x)).numpy()
    exported = open_backend(path, threads=1).run(x)
    runtime = embedder.embed_aligned(faces)
    return ExportCheck(parity(unit(reference), unit(exported)), parity(runtime, unit(exported)))


def write_card(path: Path, name: str, module: nn.Module, check: ExportCheck) -> Path:
    """A card for the exported file: input convention, source weights and their hash, licence, parity."""
    spec = TEACHERS[name]
    card = ModelCard(
        name=f"teacher-{name}",
        version=spec.sha256[:12],
        file=path.name,
        format="onnx",
        precision="fp32",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        params=sum(p.numel() for p in module.parameters()),
        mflops=count_mmacs(module),
        embedding_size=spec.embedding_size,
        input=PROJECT_INPUT,
        licence=f"{spec.licence}; a teacher for offline use, never shipped",
        training={"source": f"../shared/teachers/{spec.file}", "source_sha256": spec.sha256},
        parity={
            "onnx_vs_torch": check.onnx_vs_torch.to_dict(),
            "onnx_vs_runtime_embedder": check.onnx_vs_runtime.to_dict(),
        },
        ops=tuple(onnx_ops(path)),
    )
    return save_card(card, card_path(path))


def export_teacher(name: str, out: Path, teachers: Path | None, lfw: Path, faces: int) -> ExportCheck:
    """Export, check against torch and the runtime embedder, card; the file is removed if the check fails."""
    from squeezerface.embedders.base import build_embedder

    embedder = build_embedder(name, teachers=teachers, threads=1)
    assert isinstance(embedder, PretrainedEmbedder)
    module = teacher_module(name, teachers)
    path = export_onnx(module, torch.zeros(2, 3, 112, 112), out / f"{name}.onnx", output_names=("embedding",))
    check = check_export(path, module, embedder, lfw_faces(embedder, lfw, faces))
    if not check.ok:
        path.unlink()
        return check
    write_card(path, name, module, check)
    return check


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters.export_teacher",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--name", required=True, choices=sorted(TEACHERS))
    parser.add_argument(
        "--out", type=Path, default=Path("runs/teachers"), help="output folder (not committed)"
    )
    parser.add_argument(
        "--teachers", type=Path, default=None, help="weights folder (default: as the embedder)"
    )
    parser.add_argument(
        "--lfw", type=Path, default=Path("../shared/data/lfw/images"), help="faces to check on"
    )
    parser.add_argument("--faces", type=int, default=8, help="how many faces the check uses")
    args = parser.parse_args(argv)
    check = export_teacher(args.name, args.out, args.teachers, args.lfw, args.faces)
    for what, p in (("torch", check.onnx_vs_torch), ("runtime embedder", check.onnx_vs_runtime)):
        print(
            f"{args.name}: ONNX vs {what} on {p.faces} LFW faces: max abs diff {p.max_abs_diff:.2e}, "
            f"min cosine {p.cosine_min:.7f}"
        )
    if not check.ok:
        print(f"export removed: difference above {TOLERANCE:g}", file=sys.stderr)
        return 1
    print(f"wrote {args.out / (args.name + '.onnx')} and its card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
