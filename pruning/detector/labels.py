"""Pseudo-labels for detector training: every face the dlib teacher finds in a photo, with its 5 points.

The teacher is the one whose landmarks aligned the embedder's training faces (HOG detector, 68-point
predictor reduced to eye centres, nose tip and mouth corners), so a detector that learns to reproduce
them aligns faces the way the embedder expects. Only confident detections (HOG score >= `min_score`) are
kept as faces; photos where the teacher found none are kept too, marked `usable=False`, since a face
may be there unlabeled: they are never used as negatives. Held-out split: celeba_wild's validation
identities (as the embedder's) and a seeded tenth of utkface. LFW is not touched.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pruning.data import Photo, training_photos, validation_identities
from squeezerface._progress import progress
from squeezerface.imageio import load_image

_teacher = None


def _label_one(path: str) -> dict:
    global _teacher  # one dlib model per worker process
    if _teacher is None:
        from squeezerface.embedders.dlib_resnet import DlibResNetEmbedder

        _teacher = DlibResNetEmbedder()
    try:
        image = load_image(path)
    except Exception as exc:  # unreadable photos are recorded, not fatal
        return {"path": path, "error": str(exc)}
    faces = _teacher.detect(image)
    return {
        "path": path,
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "faces": [
            {
                "box": [round(v, 1) for v in f.box],
                "landmarks": f.landmarks.round(2).tolist(),
                "score": round(f.score, 3),
            }
            for f in faces
        ],
    }


def held_out_mask(photos: Sequence[Photo], seed: int = 0) -> list[bool]:
    """Which photos the detector never trains on: celeba_wild's 40 validation identities (the embedder's)
    and a seeded tenth of utkface. One function, so the real-size benchmark draws from exactly this split."""
    val_ids = validation_identities([p.identity for p in photos if p.identity >= 0], 40, seed)
    rng = np.random.default_rng(seed + 1)  # drawn for utkface photos only, in order
    return [p.identity in val_ids if p.identity >= 0 else bool(rng.random() < 0.1) for p in photos]


def label_photos(
    data_root: Path,
    out: Path,
    utkface: int = 6000,
    workers: int = 1,
    seed: int = 0,
    show_progress: bool = True,
) -> dict:
    """Write `out` (JSON): one record per photo with its teacher faces, source, split and usability."""
    start = time.monotonic()
    photos = training_photos(data_root, utkface, seed)
    held_out = held_out_mask(photos, seed)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        records = list(
            progress(
                pool.map(_label_one, [str(p.path) for p in photos], chunksize=16),
                len(photos),
                "teacher labels",
                show_progress,
            )
        )
    for photo, rec, test in zip(photos, records, held_out, strict=True):
        rec["path"] = str(photo.path.relative_to(data_root))
        rec["source"] = photo.source
        rec["split"] = "test" if test else "train"
        rec["usable"] = "error" not in rec and len(rec["faces"]) > 0
    summary = {
        "teacher": "dlib HOG (upsample 1) + 68-point predictor -> 5 points",
        "photos": len(records),
        "usable": sum(r["usable"] for r in records),
        "faces": sum(len(r.get("faces", [])) for r in records),
        "multi_face_photos": sum(len(r.get("faces", [])) > 1 for r in records),
        "no_face_photos": sum(not r["usable"] for r in records),
        "test_photos": sum(r["split"] == "test" and r["usable"] for r in records),
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "data_root": str(data_root), "records": records}))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.labels",
        description="Label every face in celeba_wild and a utkface sample with the dlib teacher "
        "(box + 5 points) for detector training and held-out evaluation. Never LFW.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/detector/labels.json"))
    parser.add_argument("--utkface", type=int, default=6000, help="seeded sample of utkface photos")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    summary = label_photos(args.data, args.out, args.utkface, args.workers, args.seed, not args.quiet)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
