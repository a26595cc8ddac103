"""Embedding and detection parity between this machine and an emulated aarch64 one (used by
benchmarks/qemu_aarch64.sh).

    python benchmarks/qemu_parity.py make --out ref.npz              # on x86, with the repo's venv
    python benchmarks/qemu_parity.py check --reference ref.npz       # under qemu-aarch64, runtime only

`make` cuts fixed aligned 112x112 faces (scikit-image's public-domain astronaut photo, aligned by our own
detector, in a few poses, when scikit-image is installed; always also seeded random crops) and stores them
with every shipped embedder's embeddings (each shipped file whose card has an embedding size: fp32 ONNX,
int8 ONNX and int8 TFLite of every shipped network, the default included); the posed photos with every
shipped detector's faces (box, score, 5 points), both the network's own and after the landmark refiner
its card names (the TFLite retry file runs as in the runtime); and 64x64 refiner crops with every
shipped landmark refiner's raw outputs.

`check` runs the same inputs here and compares. The engines alone must agree to --atol (1e-4): embeddings
of the stored crops, refiner outputs on the stored crops, detector scores; the detector networks' boxes
and points to --det-atol pixels (0.01). After the refiner the faces pass through OpenCV (the refiner's
crop is cut with cv2.warpAffine, whose bilinear rounding differs by one grey level at a few pixels between
OpenCV's x86 and ARM builds) and the int8 refiners amplify that: those boxes and points are held to
--iod-tol of the eye distance (0.02, below the refiner's own held-out error of 0.0325; the first emulated
run measured up to 0.012). Only numpy, OpenCV and the engines are needed on the checking side. Timings
under emulation mean nothing about ARM and are not measured here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

RANDOM_FACES = 8
POSES = ((0, 1.0), (10, 0.8), (-15, 0.9), (5, 0.6))


def shipped_by_kind() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(embedders, detectors, refiners): every shipped model file by its card, not by a list kept here, so
    a newly shipped network (the default `mobilefacenet-taylor-900k-*` since 2.0) is covered without an
    edit. TFLite retry files run inside the detector whose card names them; the landmark refiners a
    detector card names run there too, and are also checked alone on fixed crops."""
    from squeezerface.shipped import model_path, shipped_models

    embedders, detectors, refiners, retry = [], [], [], set()
    for name in shipped_models():
        card = json.loads(Path(str(model_path(name)) + ".json").read_text())
        detection = card.get("training", {}).get("detection", {})
        if detection.get("refiner"):
            refiners.append(detection["refiner"])
        if detection.get("retry_model"):
            retry.add(detection["retry_model"])
        if int(card.get("embedding_size") or 0) > 0:
            embedders.append(name)
        elif detection:
            detectors.append(name)
    detectors = [d for d in detectors if d not in retry and d not in refiners]
    return tuple(embedders), tuple(detectors), tuple(dict.fromkeys(refiners))


def refiner_crops(photos: np.ndarray, size: int) -> np.ndarray:
    """(K, size, size, 3) uint8 refiner inputs cut here by the default detector's own (unrefined) points."""
    from squeezerface.landmarks import crop_face
    from squeezerface.shipped import DEFAULT_DETECTOR

    found = detect_all(photos, (DEFAULT_DETECTOR,), refined=False)[DEFAULT_DETECTOR]
    crops = [
        crop_face(np.ascontiguousarray(photo), face[5:].reshape(5, 2).astype(np.float32), size)[0]
        for photo, faces in zip(photos, found, strict=True)
        for face in faces
    ]
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


def refine_all(crops: dict[int, np.ndarray], models: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each landmark refiner's raw (K, 10) outputs on the stored crops of its input size (no OpenCV)."""
    from squeezerface.errors import EmbedderUnavailableError
    from squeezerface.landmarks import LandmarkRefiner

    out = {}
    for name in models:
        try:
            refiner = LandmarkRefiner(name).prepare(1)
        except (EmbedderUnavailableError, ImportError) as exc:
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        assert refiner.backend is not None
        batch = crops[refiner.card.input.size[0]]
        if not len(batch):  # no photos (scikit-image missing on the reference side): nothing to cut
            continue
        out[name] = np.stack(
            [np.asarray(refiner.backend.run(refiner._spec.prepare(c[None]))[0]).ravel() for c in batch]
        )
    return out


def reference_faces(seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(N, 112, 112, 3) uint8 crops and their names: the astronaut in 4 poses (if scikit-image is there)
    and seeded random crops; and the (P, 512, 512, 3) posed photos (RGB) with their names."""
    crops, names, photos, photo_names = [], [], [], []
    try:
        import cv2
        from skimage import data

        from squeezerface.verify import FaceVerifier

        photo = np.ascontiguousarray(data.astronaut()[..., :3])
        verifier = FaceVerifier(quality=None)
        h, w = photo.shape[:2]
        for angle, scale in POSES:
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            moved = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            photos.append(moved)
            photo_names.append(f"astronaut rot{angle} x{scale}")
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
    stacked = np.stack(photos) if photos else np.zeros((0, 512, 512, 3), np.uint8)
    return np.stack(crops), names, stacked, photo_names


def embed_all(faces: np.ndarray, models: tuple[str, ...]) -> dict[str, np.ndarray]:
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


def detect_all(
    photos: np.ndarray, models: tuple[str, ...], refined: bool = True
) -> dict[str, list[np.ndarray]]:
    """Each detector's faces on each photo, one thread, as it runs in the runtime (pyramid, retry file and,
    with `refined`, the landmark refiner from its card; without it the network's own points): per photo
    an (F, 15) float64 array of box (4), score (1) and landmarks (10)."""
    from squeezerface.detect import FROM_CARD, FaceDetector
    from squeezerface.errors import EmbedderUnavailableError

    out = {}
    for name in models:
        try:
            detector = FaceDetector(name, refiner=FROM_CARD if refined else None).prepare(1)
        except (EmbedderUnavailableError, ImportError) as exc:
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        rows = []
        for photo in photos:
            faces = detector.detect(np.ascontiguousarray(photo))
            rows.append(
                np.array(
                    [[*f.box, f.score, *np.asarray(f.landmarks, np.float64).ravel()] for f in faces],
                    np.float64,
                ).reshape(-1, 15)
            )
        out[name] = rows
    return out


def make(out: Path) -> int:
    faces, names, photos, photo_names = reference_faces()
    embedders, detectors, refiners = shipped_by_kind()
    embeddings = embed_all(faces, embedders)
    detections = detect_all(photos, detectors)
    network = detect_all(photos, detectors, refined=False)
    from squeezerface.landmarks import LandmarkRefiner

    sizes = {LandmarkRefiner(r).card.input.size[0] for r in refiners}
    crops = {size: refiner_crops(photos, size) for size in sizes}
    refined = refine_all(crops, refiners)
    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "names": names,
        "photo_names": photo_names,
    }
    arrays = {f"emb::{k}": v for k, v in embeddings.items()}
    for k, per_photo in detections.items():
        arrays.update({f"det::{k}::{i}": v for i, v in enumerate(per_photo)})
    for k, per_photo in network.items():
        arrays.update({f"net::{k}::{i}": v for i, v in enumerate(per_photo)})
    arrays.update({f"crop::{size}": c for size, c in crops.items()})
    arrays.update({f"lm::{k}": v for k, v in refined.items()})
    np.savez_compressed(out, faces=faces, photos=photos, meta=json.dumps(meta), **arrays)
    print(
        f"wrote {out}: {len(faces)} faces x {len(embeddings)} embedders ({', '.join(embeddings)}), "
        f"{len(photos)} photos x {len(detections)} detectors ({', '.join(detections)}), "
        f"{sum(len(c) for c in crops.values())} crops x {len(refined)} landmark refiners, "
        f"on {platform.machine()}"
    )
    return 0


def compare_faces(want: list[np.ndarray], got: list[np.ndarray]) -> dict:
    """One detector's faces here against the reference's, photo by photo (same order: best first)."""
    counts = [len(g) for g in got]
    same = counts == [len(w) for w in want]
    coord = share = score = 0.0
    worst = 0
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        if len(w) != len(g) or not len(w):
            continue
        d = np.abs(g - w)
        per_face = np.delete(d, 4, axis=1).max(axis=1)
        eyes = np.hypot(w[:, 5] - w[:, 7], w[:, 6] - w[:, 8])  # left eye (x, y) at 5-6, right eye at 7-8
        if per_face.max() >= coord:
            coord, worst = float(per_face.max()), i
        share = max(share, float((per_face / np.maximum(eyes, 1.0)).max()))
        score = max(score, float(d[:, 4].max()))
    return {
        "same_faces": same,
        "faces_per_photo": counts,
        "reference_faces_per_photo": [len(w) for w in want],
        "max_abs_diff_px": coord,
        "max_iod_share": share,
        "max_abs_diff_score": score,
        "worst": worst,
    }


def check(
    reference: Path, atol: float, report: Path | None, det_atol: float = 0.01, iod_tol: float = 0.02
) -> int:
    from squeezerface.bench.device import collect_device_info

    ref = np.load(reference)
    meta = json.loads(str(ref["meta"]))
    faces = ref["faces"]
    device = collect_device_info()
    print(f"checking {len(faces)} faces on {device.summary()} against {meta['machine']} (atol {atol:g})")
    rows, failed = _check_embedders(ref, faces, meta, atol)
    refiner_rows, refiner_failed = _check_refiners(ref, atol)
    rows += refiner_rows
    failed += refiner_failed
    photo_names = meta.get("photo_names", [])
    det_rows, det_failed = _check_detectors(ref, photo_names, atol, det_atol, iod_tol)
    failed += det_failed
    result = {
        "reference_machine": meta["machine"],
        "atol": atol,
        "det_atol_px": det_atol,
        "refined_iod_tol": iod_tol,
        "faces": meta["names"],
        "photos": photo_names,
        "rows": rows,
        "detector_rows": det_rows,
        "device": device.to_dict(),
        "note": "emulated run: parity only, no timing" if device.emulated else "",
    }
    if report:
        report.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {report}")
    if failed:
        print(f"FAIL: {', '.join(failed)} differ from {meta['machine']} beyond the tolerances")
        return 1
    print(
        f"OK: embeddings match {meta['machine']} within {atol:g}, the detector networks' faces within "
        f"{det_atol:g} px, refined faces within {iod_tol:g} of the eye distance"
    )
    return 0


def _check_embedders(
    ref: Any, faces: np.ndarray, meta: dict[str, Any], atol: float
) -> tuple[list[dict], list[str]]:
    """Every stored embedder's embeddings of the stored crops here against the reference's, to `atol`: the
    engines alone, no OpenCV in between. Returns the report rows and the names that failed."""
    models = tuple(k.split("::", 1)[1] for k in ref.files if k.startswith("emb::"))
    rows: list[dict] = []
    failed: list[str] = []
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
    return rows, failed


def _check_refiners(ref: Any, atol: float) -> tuple[list[dict], list[str]]:
    """Every stored landmark refiner's raw outputs on the stored crops here against the reference's, to
    `atol` (fixed crops, so no OpenCV difference enters). Returns the report rows and the names that
    failed."""
    refiners = tuple(k.split("::", 1)[1] for k in ref.files if k.startswith("lm::"))
    crops = {int(k.split("::")[1]): ref[k] for k in ref.files if k.startswith("crop::")}
    got_lm = refine_all(crops, refiners) if refiners else {}
    rows: list[dict] = []
    failed: list[str] = []
    for name in refiners:
        if name not in got_lm:
            rows.append({"model": name, "status": "skipped (engine not installed)"})
            continue
        # raw outputs: point offsets in units of 8 crop pixels (squeezerface.landmarks.OFFSET_UNIT)
        diff = np.abs(got_lm[name] - ref[f"lm::{name}"])
        ok = bool(diff.max() <= atol)
        rows.append(
            {
                "model": name,
                "status": "ok" if ok else "FAIL",
                "max_abs_diff": float(diff.max()),
                "crops": len(diff),
            }
        )
        if not ok:
            failed.append(name)
        print(
            f"  {'ok  ' if ok else 'FAIL'} {name} (on {len(diff)} fixed crops): max |diff| {diff.max():.2e}"
        )
    return rows, failed


def _check_detectors(
    ref: Any, photo_names: list[str], atol: float, det_atol: float, iod_tol: float
) -> tuple[list[dict], list[str]]:
    """Every stored detector's faces on the stored photos here against the reference's, the network alone
    (to `det_atol` pixels) and after the landmark refiner (to `iod_tol` of the eye distance, as OpenCV
    cuts the refiner's crop). Returns the report rows and the "name (stage)"s that failed."""
    photos = ref["photos"] if "photos" in ref.files else np.zeros((0, 512, 512, 3), np.uint8)
    detectors = tuple(dict.fromkeys(k.split("::")[1] for k in ref.files if k.startswith("det::")))
    det_rows: list[dict] = []
    failed: list[str] = []
    for stage, prefix, refined in (("network", "net", False), ("refined", "det", True)):
        found = detect_all(photos, detectors, refined=refined) if detectors else {}
        for name in detectors:
            if name not in found:
                det_rows.append({"model": name, "stage": stage, "status": "skipped (engine not installed)"})
                continue
            row = compare_faces([ref[f"{prefix}::{name}::{i}"] for i in range(len(photos))], found[name])
            row["worst_photo"] = photo_names[row.pop("worst")] if photo_names else ""
            # the network alone: pixels; after the refiner (crop cut by OpenCV): share of eye distance
            ok = row["same_faces"] and row["max_abs_diff_score"] <= atol
            ok = ok and (
                row["max_abs_diff_px"] <= det_atol if not refined else row["max_iod_share"] <= iod_tol
            )
            det_rows.append({"model": name, "stage": stage, "status": "ok" if ok else "FAIL", **row})
            if not ok:
                failed.append(f"{name} ({stage})")
            print(
                f"  {'ok  ' if ok else 'FAIL'} {name} [{stage}]: faces {row['faces_per_photo']}, max |diff| "
                f"box/landmarks {row['max_abs_diff_px']:.2e} px ({row['max_iod_share']:.2e} of the eye "
                f"distance), score {row['max_abs_diff_score']:.2e}"
            )
    return det_rows, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="reference crops + embeddings on this machine")
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("check", help="embed the reference crops here and compare")
    c.add_argument("--reference", type=Path, required=True)
    c.add_argument("--atol", type=float, default=1e-4)
    c.add_argument(
        "--det-atol", type=float, default=0.01, help="the detector network's box/landmark tolerance, pixels"
    )
    c.add_argument(
        "--iod-tol",
        type=float,
        default=0.02,
        help="after the landmark refiner: box/landmark tolerance as a share of the eye distance",
    )
    c.add_argument("--report", type=Path, default=None, help="write the comparison as JSON")
    args = ap.parse_args(argv)
    if args.cmd == "make":
        return make(args.out)
    return check(args.reference, args.atol, args.report, args.det_atol, args.iod_tol)


if __name__ == "__main__":
    raise SystemExit(main())
