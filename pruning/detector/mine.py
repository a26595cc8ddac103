"""Hard negatives: what a trained detector still takes for a face on face-free training backdrops.

    python -m pruning.detector.mine --model build/tinyface/tinyface-int8.onnx --out runs/detector/hard

Random backdrops rarely contain what fools a detector that has already learnt them; the places where it
fires do. This runs the detector as the runtime does (image pyramid) over mosaics of the training backdrops
(pruning/detector/backgrounds.py; no faces there, so every detection is false), and keeps each detection
with some context as a small image. Training then pastes them, unlabelled, onto canvases
(`--hard-negatives`): they are background wherever they land. Never the real-size benchmark's backgrounds.

The scene photos are not quite face-free (a climber, a passer-by), and the faces in them are exactly what
a detector fires on: each crop is shown, enlarged, to the dlib teacher and to OpenCV's YuNet, and dropped
when either finds a face.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from pruning.detector.backgrounds import BackgroundPool
from squeezerface._progress import progress

CONTEXT = 1.6
"""A kept crop is this many times the detection's box, square, so its surroundings come with it."""
FRAME_SIZES = ((640, 480), (1280, 720))
CHECK_SIDES = (100, 200, 300)
HOG_SCORE = -0.5
YUNET_SCORE = 0.8


def crop_around(image: np.ndarray, box: np.ndarray, context: float = CONTEXT) -> np.ndarray | None:
    """The square `context` x box-size region around `box`, inside the image (None when under 8 px)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * context / 2
    x1, y1 = int(max(0, cx - half)), int(max(0, cy - half))
    x2, y2 = int(min(image.shape[1], cx + half)), int(min(image.shape[0], cy + half))
    if min(x2 - x1, y2 - y1) < 8:
        return None
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def sees_face(yunet: Path | None) -> Callable[[np.ndarray], bool]:
    """A liberal face check of a crop by two detectors other than ours: the dlib teacher's HOG (the
    crop enlarged to each of CHECK_SIDES, any detection scoring >= HOG_SCORE, below dlib's own 0), and,
    when its file is given, OpenCV's YuNet (a CNN that also finds blurred faces; score >= YUNET_SCORE).
    Dropping a few non-faces costs little; keeping a face as a negative teaches the detector to miss it."""
    import dlib

    hog = dlib.get_frontal_face_detector()
    cnn = cv2.FaceDetectorYN.create(str(yunet), "", (160, 160), YUNET_SCORE, 0.3, 50) if yunet else None

    def sees(crop: np.ndarray) -> bool:
        for side in CHECK_SIDES:
            big = np.ascontiguousarray(cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC))
            if len(hog.run(big, 1, HOG_SCORE)[0]):
                return True
            if cnn is not None:
                cnn.setInputSize((side, side))
                found = cnn.detect(cv2.cvtColor(big, cv2.COLOR_RGB2BGR))[1]
                if found is not None and len(found):
                    return True
        return False

    return sees


def mine(
    detector,
    pool: BackgroundPool,
    frames: int,
    out: Path,
    seed: int = 0,
    show: bool = True,
    is_face: Callable[[np.ndarray], bool] | None = None,
) -> dict:
    """Run `detector` over `frames` seeded mosaics per FRAME_SIZES entry; write every detection's crop
    that `is_face` rejects under `out` as PNG and `out/index.json` (file, score, frame size, box width).
    Returns the summary."""
    rng = np.random.default_rng([seed, 31])
    out.mkdir(parents=True, exist_ok=True)
    kept: list[dict] = []
    faces = 0
    jobs = [size for size in FRAME_SIZES for _ in range(frames)]
    for width, height in progress(jobs, len(jobs), "mining backdrops", show):
        frame = pool.mosaic(width, height, rng)
        for face in detector.detect(frame):
            crop = crop_around(frame, np.asarray(face.box, np.float32))
            if crop is None:
                continue
            if is_face is not None and is_face(crop):
                faces += 1
                continue
            name = f"hard_{len(kept):05d}.png"
            cv2.imwrite(str(out / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            kept.append({"file": name, "score": round(float(face.score), 3), "frame": [width, height],
                         "box_width": round(float(face.box[2] - face.box[0]), 1)})  # fmt: skip
    summary = {
        "frames": len(jobs),
        "crops": len(kept),
        "per_frame": round(len(kept) / max(len(jobs), 1), 2),
        "dropped_as_faces": faces,
    }
    (out / "index.json").write_text(json.dumps({"summary": summary, "crops": kept}, indent=1))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.mine",
        description="Collect a trained detector's false detections on face-free training backdrops, to "
        "train the next detector with (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="detector file the runtime loads")
    parser.add_argument(
        "--backgrounds", default="runs/detector/backgrounds", help="backdrop folders, comma-separated"
    )
    parser.add_argument("--grey", type=float, default=0.0, help="share of backdrop draws in greyscale")
    parser.add_argument("--out", type=Path, default=Path("runs/detector/hard"))
    parser.add_argument("--frames", type=int, default=300, help="mosaics per frame size")
    parser.add_argument("--score", type=float, default=0.3, help="lowest score kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--yunet",
        type=Path,
        default=Path("../shared/peers/yunet/face_detection_yunet_2026may.onnx"),
        help="YuNet file for the face check (skipped when missing: HOG alone)",
    )
    parser.add_argument("--no-check", action="store_true", help="keep crops that look like faces")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from squeezerface.detect import FaceDetector

    cv2.setNumThreads(1)
    detector = FaceDetector(args.model, score_threshold=args.score, refiner=None).prepare(threads=1)
    pool = BackgroundPool(args.backgrounds, args.grey)
    check = None if args.no_check else sees_face(args.yunet if args.yunet.is_file() else None)
    summary = mine(detector, pool, args.frames, args.out, args.seed, not args.quiet, check)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
