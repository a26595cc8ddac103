"""Embedding parity between this machine and an emulated aarch64 one (used by benchmarks/qemu_aarch64.sh).

    python benchmarks/qemu_parity.py make --out ref.npz              # on x86, with the repo's venv
    python benchmarks/qemu_parity.py check --reference ref.npz       # under qemu-aarch64, runtime only

`make` cuts fixed aligned 112x112 faces (scikit-image's public-domain astronaut photo, aligned by our own
detector, in a few poses, when scikit-image is installed; always also seeded random crops) and stores them
with each shipped embedder's embeddings. `check` embeds the very same crops (no detector, no JPEG decoder:
only the embedder differs) and fails when any embedding differs by more than --atol (1e-4) in any
coordinate. Only numpy and the engines are needed on the checking side. Timings under emulation mean
nothing about ARM and are not measured here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

EMBEDDERS = (
    "squeezerfacenet-980k-fp32.onnx",
    "squeezerfacenet-980k-int8.onnx",
    "squeezerfacenet-980k-int8.tflite",
)
RANDOM_FACES = 8


def reference_faces(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(N, 112, 112, 3) uint8 crops and their names: the astronaut in 4 poses (if scikit-image is there)
    and seeded random crops."""
    crops, names = [], []
    try:
        import cv2
        from skimage import data

        from squeezerface.verify import FaceVerifier

        photo = np.ascontiguousarray(data.astronaut()[..., :3])
        verifier = FaceVerifier(quality=None)
        h, w = photo.shape[:2]
        for angle, scale in ((0, 1.0), (10, 0.8), (-15, 0.9), (5, 0.6)):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            moved = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            faces = verifier.detect(moved)
            if faces:
                crops.append(verifier.align(moved, faces[0]))
                names.append(f"astronaut rot{angle} x{scale}")
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    for i in range(RANDOM_FACES):
        crops.append(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
        names.append(f"random {i}")
    return np.stack(crops), names


def embed_all(faces: np.ndarray, models: tuple[str, ...] = EMBEDDERS) -> dict[str, np.ndarray]:
    """Each model's (N, D) embeddings of the crops on one thread; models without their engine are left out."""
    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.errors import EmbedderUnavailableError

    out = {}
    for name in models:
        try:
            out[name] = FaceEmbeddingModel(name).prepare(1).get_feat(faces)
        except EmbedderUnavailableError as exc:
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
    return out


def make(out: Path) -> int:
    faces, names = reference_faces()
    embeddings = embed_all(faces)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "names": names}
    np.savez_compressed(
        out, faces=faces, meta=json.dumps(meta), **{f"emb::{k}": v for k, v in embeddings.items()}
    )
    print(f"wrote {out}: {len(faces)} faces x {len(embeddings)} embedders, on {platform.machine()}")
    return 0


def check(reference: Path, atol: float, report: Path | None) -> int:
    from squeezerface.bench.device import collect_device_info

    ref = np.load(reference)
    meta = json.loads(str(ref["meta"]))
    faces = ref["faces"]
    models = tuple(k.split("::", 1)[1] for k in ref.files if k.startswith("emb::"))
    device = collect_device_info()
    print(f"checking {len(faces)} faces on {device.summary()} against {meta['machine']} (atol {atol:g})")
    rows, failed = [], []
    got = embed_all(faces, models)
    for name in models:
        if name not in got:
            rows.append({"model": name, "status": "skipped (engine not installed)"})
            continue
        diff = np.abs(got[name] - ref[f"emb::{name}"])
        cos = np.sum(got[name] * ref[f"emb::{name}"], axis=1)
        ok = bool(diff.max() <= atol)
        rows.append(
            {
                "model": name,
                "status": "ok" if ok else "FAIL",
                "max_abs_diff": float(diff.max()),
                "worst_face": meta["names"][int(diff.max(axis=1).argmax())],
                "min_cosine": float(cos.min()),
            }
        )
        if not ok:
            failed.append(name)
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: max |diff| {diff.max():.2e}, min cosine {cos.min():.7f}")
    result = {
        "reference_machine": meta["machine"],
        "atol": atol,
        "faces": meta["names"],
        "rows": rows,
        "device": device.to_dict(),
        "note": "emulated run: parity only, no timing" if device.emulated else "",
    }
    if report:
        report.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {report}")
    if failed:
        print(f"FAIL: {', '.join(failed)} differ from {meta['machine']} by more than {atol:g}")
        return 1
    print(f"OK: embeddings match {meta['machine']} within {atol:g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="reference crops + embeddings on this machine")
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("check", help="embed the reference crops here and compare")
    c.add_argument("--reference", type=Path, required=True)
    c.add_argument("--atol", type=float, default=1e-4)
    c.add_argument("--report", type=Path, default=None, help="write the comparison as JSON")
    args = ap.parse_args(argv)
    return make(args.out) if args.cmd == "make" else check(args.reference, args.atol, args.report)


if __name__ == "__main__":
    raise SystemExit(main())
