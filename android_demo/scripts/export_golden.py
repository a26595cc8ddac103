"""Export golden vectors from the real Python runtime for the Android demo's pure-Kotlin core.

The Kotlin core (android_demo/core) re-implements the runtime's geometry, decoding and scoring; its JVM tests
read what this script writes and must reproduce it within stated tolerances. Two parts:

- synthetic: pure-math and pixel cases on seeded random data (Umeyama fits, alignment matrices, NMS,
  detector decoding, letterbox and INTER_AREA resizes, bilinear warps, refiner crops and decoding,
  quantization, operating-point names, template aggregation). Needs no data.
- photos: the shipped LiteRT models run by the real runtime on a fixed list of real LFW photos
  (../shared/data, evaluation data, never committed): per photo the decoded RGB pixels, letterbox, the
  detector's int8 input and raw int8 output, decoded faces, each face's refiner crop, input, raw output and
  refined points, the alignment matrix, aligned crop, embedder input, raw output and embedding; then all
  pair scores with decisions at the card threshold, and gallery scores ("mean" and "best" aggregation)
  from `squeezerface.gallery.Gallery`. The decomposed stages are checked here against `FaceDetector.detect`
  and `FaceVerifier.embed`, so the vectors are the runtime's, not a re-implementation's.

Arrays go to OUT/bin/ as raw little-endian files (.u8 uint8, .i8 int8, .f32 float32, .f64 float64),
named in OUT/golden.json with their shapes. The models' cards are copied to OUT/cards/.

    python android_demo/scripts/export_golden.py --out /tmp/golden [--data ../shared/data] [--no-photos]

Exit status 0 with a "skipped photos" line when the data folder is missing (synthetic part still written).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from squeezerface.detect import FaceDetector
    from squeezerface.embed import FaceEmbeddingModel
    from squeezerface.landmarks import LandmarkRefiner
    from squeezerface.verify import FaceVerifier

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"

DETECTOR = "tinyface-160-int8.tflite"
EMBEDDER = "mobilefacenet-taylor-900k-int8.tflite"
OPERATING_POINT = "far_1e-03"

PHOTOS = (
    "George_W_Bush/George_W_Bush_0007.jpg",
    "George_W_Bush/George_W_Bush_0016.jpg",
    "Colin_Powell/Colin_Powell_0038.jpg",
    "Colin_Powell/Colin_Powell_0040.jpg",
    "Tony_Blair/Tony_Blair_0006.jpg",
    "Tony_Blair/Tony_Blair_0018.jpg",
    "Donald_Rumsfeld/Donald_Rumsfeld_0022.jpg",
    "Donald_Rumsfeld/Donald_Rumsfeld_0028.jpg",
    "Gerhard_Schroeder/Gerhard_Schroeder_0003.jpg",
    "Gerhard_Schroeder/Gerhard_Schroeder_0005.jpg",
    "Serena_Williams/Serena_Williams_0001.jpg",
    "Serena_Williams/Serena_Williams_0003.jpg",
)
"""12 photos of 6 people (the first two of each, sorted by name), under lfw/images/."""

_SUFFIX = {
    np.dtype(np.uint8): "u8",
    np.dtype(np.int8): "i8",
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
}


class Writer:
    """Raw arrays into OUT/bin/, each named once."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "bin").mkdir(parents=True, exist_ok=True)

    def array(self, name: str, a: np.ndarray) -> dict[str, Any]:
        a = np.ascontiguousarray(a)
        suffix = _SUFFIX[a.dtype]
        rel = f"bin/{name}.{suffix}"
        (self.out / rel).write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
        return {"file": rel, "shape": list(a.shape), "dtype": suffix}


def floats(a: np.ndarray | list[float] | tuple[float, ...]) -> list:
    """Exact JSON floats (Python's repr round-trips float32 and float64)."""
    return np.asarray(a, np.float64).tolist()


def tensor_info(detail: dict) -> dict[str, Any]:
    scale, zero = detail["quantization"]
    return {
        "shape": [int(s) for s in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero),
    }


# -- synthetic cases -----------------------------------------------------------------------------------------


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random RGB with structure at several scales (pure noise would hide interpolation-weight errors)."""
    import cv2

    coarse = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    base = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    noise = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def random_similarity(rng: np.random.Generator) -> np.ndarray:
    angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.3, 3.0)
    c, s = np.cos(angle), np.sin(angle)
    return np.array(
        [[scale * c, -scale * s, rng.uniform(-60, 20)], [scale * s, scale * c, rng.uniform(-60, 20)]]
    )


def synthetic(w: Writer, rng: np.random.Generator) -> dict[str, Any]:
    """Every synthetic case, in one fixed order: the order draws from `rng` and names the JSON keys, so it
    must not change or every vector changes."""
    from squeezerface.align import template

    out: dict[str, Any] = {}
    out["umeyama"] = umeyama_cases(rng)
    out["alignment"] = alignment_cases(rng)
    out["template"] = {str(s): floats(template(s)) for s in (112, 64, 128)}
    out["priors"] = prior_cases(w)
    out["decode"] = decode_cases(w, rng)
    out["nms"] = nms_cases(rng)
    out["faces_from_output"] = faces_from_output_cases(w, rng)
    out["letterbox"] = letterbox_cases(w, rng)
    out["resize_area"] = resize_area_cases(w, rng)
    out["warp"] = warp_cases(w, rng)
    out["align_face"], out["crop_face"] = align_and_crop_cases(w, rng)
    out["points_from_output"] = points_from_output_cases(rng)
    out["quantize"] = quantize_cases(w, rng)
    out["prepare_layouts"] = prepare_layout_cases(w, rng)
    out["point_names"], out["far_keys"] = name_cases()
    out["aggregation"] = aggregation_cases(rng)
    return out


def umeyama_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Similarity fits on random, near-similar and mirrored point sets, plus a degenerate one (all
    points equal): the branches of `umeyama_similarity` the Kotlin port must follow."""
    from squeezerface.align import template, umeyama_similarity

    cases = []
    for i in range(40):
        n = [2, 3, 5, 5, 5, 7][i % 6]
        src = rng.uniform(-50, 250, (n, 2))
        if i % 4 == 1:  # an exact similarity plus noise
            m = random_similarity(rng)
            dst = src @ m[:, :2].T + m[:, 2] + rng.normal(0, 0.5, (n, 2))
        elif i % 4 == 2:  # mirrored: the reflection guard must act
            dst = src * np.array([-1.0, 1.0]) * rng.uniform(0.5, 2) + rng.uniform(-20, 20, 2)
        else:
            dst = rng.uniform(-50, 250, (n, 2))
        cases.append({"src": floats(src), "dst": floats(dst), "matrix": floats(umeyama_similarity(src, dst))})
    same = np.full((5, 2), 7.0)
    cases.append(
        {
            "src": floats(same),
            "dst": floats(template()),
            "matrix": floats(umeyama_similarity(same, template())),
        }
    )
    return cases


def alignment_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Alignment matrices from noisy landmarks at several crop sizes and margins."""
    from squeezerface.align import alignment_matrix, template

    cases = []
    for i in range(12):
        m = random_similarity(rng)
        lm = (template() @ m[:, :2].T + m[:, 2] + rng.normal(0, 2, (5, 2))).astype(np.float32)
        size, margin = [(112, 0), (64, 0), (128, 0), (112, 8)][i % 4]
        cases.append(
            {
                "landmarks": floats(lm),
                "size": size,
                "margin": margin,
                "matrix": floats(alignment_matrix(lm, size, margin)),
            }
        )
    return cases


def prior_cases(w: Writer) -> list[dict[str, Any]]:
    """The detector's prior grids at several input sizes (no randomness)."""
    from squeezerface.detect import priors

    return [{"size": s, "grid": w.array(f"priors_{s}", priors(s))} for s in (160, 320, 96, 100)]


def decode_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Raw detector outputs decoded to scores, boxes and landmarks, some large enough to hit the clip."""
    from squeezerface.detect import decode, priors

    cases = []
    for i, size in enumerate((160, 96)):
        grid = priors(size)
        raw = rng.normal(0, 2.5, (len(grid), 15)).astype(np.float32)
        raw[::7, 3:5] = rng.choice([-30.0, 25.0, 10.0, -10.0], (len(raw[::7]), 2))  # exercise the clip
        scores, boxes, landmarks = decode(raw, grid)
        cases.append(
            {
                "size": size,
                "raw": w.array(f"decode_{i}_raw", raw),
                "scores": w.array(f"decode_{i}_scores", scores),
                "boxes": w.array(f"decode_{i}_boxes", boxes),
                "landmarks": w.array(f"decode_{i}_landmarks", landmarks),
            }
        )
    return cases


def nms_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Non-maximum suppression with empty boxes, tied scores and clusters of near-duplicates, where the
    keep order is easiest to get wrong."""
    from squeezerface.detect import nms

    cases = []
    for i in range(30):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 150, (n, 2)).astype(np.float32)
        wh = rng.uniform(0, 60, (n, 2)).astype(np.float32)
        if i % 5 == 0:
            wh[: n // 3] = 0  # empty boxes
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        scores = rng.choice(np.linspace(0.05, 0.99, 12), n).astype(np.float32)  # many ties
        if i % 3 == 0:
            boxes[n // 2 :] = boxes[0] + rng.normal(0, 3, (n - n // 2, 4)).astype(np.float32)
        iou = float([0.4, 0.3, 0.5, 0.0, 0.9][i % 5])
        keep = nms(boxes, scores, iou)
        cases.append({"boxes": floats(boxes), "scores": floats(scores), "iou": iou, "keep": keep.tolist()})
    return cases


def faces_from_output_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Whole decode + threshold + NMS + letterbox inverse, on synthetic raw outputs with a few planted
    faces."""
    from squeezerface.detect import Letterbox, faces_from_output, priors

    cases = []
    for i in range(6):
        grid = priors(160)
        raw = rng.normal(0, 1, (len(grid), 15)).astype(np.float32)
        raw[:, 0] = rng.normal(-6, 1.5, len(grid))
        hot = rng.choice(len(grid), 12, replace=False)
        raw[hot, 0] = rng.choice([0.5, 1.5, 3.0, 3.0], 12)
        h, wd = int(rng.integers(80, 600)), int(rng.integers(80, 600))
        scale = min(160 / max(h, wd), 1.0)
        nw, nh = max(1, round(wd * scale)), max(1, round(h * scale))
        box = Letterbox(scale=nw / wd, pad_x=float((160 - nw) // 2), pad_y=float((160 - nh) // 2))
        score, iou = [(0.6, 0.4), (0.5, 0.3), (0.9, 0.4)][i % 3]
        faces = faces_from_output(raw, grid, box, score, iou, (h, wd), top_k=[50, 3][i % 2])
        cases.append(
            {
                "raw": w.array(f"ffo_{i}_raw", raw),
                "size": 160,
                "image_h": h,
                "image_w": wd,
                "letterbox": {"scale": box.scale, "pad_x": box.pad_x, "pad_y": box.pad_y},
                "score_threshold": score,
                "nms_iou": iou,
                "top_k": [50, 3][i % 2],
                "faces": [
                    {"box": floats(f.box), "score": f.score, "landmarks": floats(f.landmarks)} for f in faces
                ],
            }
        )
    return cases


def letterbox_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Letterboxed images of square, wide, tall, odd and larger-than-input shapes."""
    from squeezerface.detect import letterbox

    cases = []
    for i, (h, wd, size) in enumerate(
        [
            (250, 250, 160),
            (480, 640, 160),
            (640, 480, 160),
            (300, 200, 160),
            (100, 80, 160),
            (360, 640, 160),
            (333, 517, 160),
            (250, 250, 320),
            (161, 160, 160),
            (540, 960, 320),
        ]
    ):
        img = smooth_image(rng, h, wd)
        canvas, box = letterbox(img, size)
        cases.append(
            {
                "image": w.array(f"lb_{i}_src", img),
                "size": size,
                "canvas": w.array(f"lb_{i}_canvas", canvas),
                "scale": box.scale,
                "pad_x": box.pad_x,
                "pad_y": box.pad_y,
            }
        )
    return cases


def resize_area_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """OpenCV INTER_AREA downscales at integer and fractional ratios."""
    import cv2

    cases = []
    for i, (h, wd, dh, dw) in enumerate(
        [(128, 128, 64, 64), (250, 250, 160, 160), (131, 97, 64, 47), (90, 120, 30, 40), (200, 300, 151, 211)]
    ):
        img = smooth_image(rng, h, wd)
        res = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA)
        cases.append({"image": w.array(f"ra_{i}_src", img), "out": w.array(f"ra_{i}_out", res)})
    return cases


def warp_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """OpenCV bilinear warps with border replication, as the aligner and refiner crop use them."""
    import cv2

    cases = []
    for i in range(10):
        h, wd = int(rng.integers(40, 400)), int(rng.integers(40, 400))
        img = smooth_image(rng, h, wd)
        size = [112, 64, 128][i % 3]
        m = random_similarity(rng)
        res = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cases.append(
            {
                "image": w.array(f"warp_{i}_src", img),
                "matrix": floats(m),
                "size": size,
                "out": w.array(f"warp_{i}_out", res),
            }
        )
    return cases


def align_and_crop_cases(
    w: Writer, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Aligned faces and refiner crops of the same images and landmarks, some partly off the image: both
    lists come from one loop because they share its random draws."""
    from squeezerface.align import align_face, template
    from squeezerface.landmarks import crop_face

    aligned_cases, crop_cases = [], []
    for i in range(8):
        h, wd = int(rng.integers(80, 500)), int(rng.integers(80, 500))
        img = smooth_image(rng, h, wd)
        m = random_similarity(rng)
        m[:, 2] = [wd / 2 - 56 * m[0, 0], h / 2 - 56 * m[1, 1]]
        lm = (template() @ m[:, :2].T + m[:, 2] + rng.normal(0, 1.5, (5, 2))).astype(np.float32)
        if i % 4 == 3:
            lm += np.float32(wd * 0.45)  # partly off the image: border replication
        aligned = align_face(img, lm)
        crop, cm = crop_face(img, lm)
        aligned_cases.append(
            {
                "image": w.array(f"af_{i}_src", img),
                "landmarks": floats(lm),
                "aligned": w.array(f"af_{i}_out", aligned),
            }
        )
        crop_cases.append(
            {
                "image": w.array(f"cf_{i}_src", img),
                "landmarks": floats(lm),
                "size": 64,
                "crop": w.array(f"cf_{i}_out", crop),
                "matrix": floats(cm),
            }
        )
    return aligned_cases, crop_cases


def points_from_output_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    """The refiner's raw outputs mapped back to image points through a crop matrix."""
    from squeezerface.landmarks import points_from_output

    cases = []
    for _ in range(10):
        raw = rng.normal(0, 1, 10).astype(np.float32)
        m = random_similarity(rng)
        cases.append(
            {
                "raw": floats(raw),
                "matrix": floats(m),
                "size": 64,
                "points": floats(points_from_output(raw, m)),
            }
        )
    return cases


def quantize_cases(w: Writer, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Input preparation, quantization and dequantization at the shipped models' scales and a few others,
    with the extreme pixel values planted."""
    from squeezerface.backends import dequantize, quantize
    from squeezerface.modelcard import InputSpec

    cases = []
    for i, (scale, zero, dtype) in enumerate(
        [
            (0.0078125, 0, np.int8),
            (0.007811542600393295, 0, np.int8),
            (0.0123, -5, np.int8),
            (0.5 / 255, 3, np.int8),
            (1.0 / 255, 0, np.uint8),
        ]
    ):
        img = smooth_image(rng, 8, 16)
        img[0, :4] = [[0, 0, 0], [255, 255, 255], [127, 128, 1], [254, 2, 200]]
        x = InputSpec(size=(8, 16), layout="NHWC").prepare(img)
        q = quantize(x, {"dtype": dtype, "quantization": (scale, zero)})
        raw = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, 64).astype(dtype)
        deq = dequantize(raw, {"dtype": dtype, "quantization": (scale, zero)})
        cases.append(
            {
                "image": w.array(f"q_{i}_src", img),
                "prepared": w.array(f"q_{i}_prepared", x),
                "scale": scale,
                "zero_point": zero,
                "dtype": np.dtype(dtype).name,
                "quantized": w.array(f"q_{i}_out", q),
                "raw": w.array(f"q_{i}_raw", raw),
                "dequantized": w.array(f"q_{i}_deq", deq),
            }
        )
    return cases


def prepare_layout_cases(w: Writer, rng: np.random.Generator) -> dict[str, Any]:
    """The NCHW / BGR variants of InputSpec.prepare (the shipped TFLite models are NHWC RGB)."""
    from squeezerface.modelcard import InputSpec

    img = smooth_image(rng, 4, 6)
    return {
        "image": w.array("prep_src", img),
        "cases": [
            {
                "layout": lay,
                "channel_order": order,
                "mean": mean,
                "scale": sc,
                "out": w.array(
                    f"prep_{lay}_{order}_{j}",
                    InputSpec(size=(4, 6), layout=lay, channel_order=order, mean=mean, scale=sc).prepare(img),
                ),
            }
            for j, (lay, order, mean, sc) in enumerate(
                [
                    ("NHWC", "RGB", 127.5, 1 / 128),
                    ("NCHW", "RGB", 127.5, 1 / 128),
                    ("NHWC", "BGR", 127.5, 1 / 128),
                    ("NCHW", "BGR", 0.0, 1 / 255),
                ]
            )
        ],
    }


def name_cases() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Operating-point names as users spell them and the canonical FAR keys (no randomness)."""
    from squeezerface.metrics import far_key
    from squeezerface.modelcard import point_name

    names = [
        "eer",
        "EER",
        "far_1e-3",
        "far_1e-03",
        "1e-3",
        "0.001",
        "far1e-4",
        "1e-2",
        "0.0015",
        "0.05",
        "2.5e-06",
        "far_0.1",
    ]
    point_names = [{"input": n, "name": point_name(n)} for n in names]
    far_keys = [{"far": f, "key": far_key(f)} for f in (1e-3, 1e-2, 1e-4, 0.0015, 0.05, 2.5e-6, 0.1, 0.5)]
    return point_names, far_keys


def aggregation_cases(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Gallery scores of a probe against several templates, by the "mean" and "best" aggregations."""
    cases = []
    for _ in range(15):
        dim = int(rng.choice([4, 16, 128]))
        n = int(rng.integers(1, 6))
        templates = rng.normal(0, 1, (n, dim)).astype(np.float32)
        templates /= np.linalg.norm(templates, axis=1, keepdims=True)
        probe = (templates[0] + rng.normal(0, 0.8, dim)).astype(np.float32)
        probe /= np.linalg.norm(probe)
        total = templates.sum(axis=0)
        mean = total / max(float(np.linalg.norm(total)), 1e-12)
        cases.append(
            {
                "templates": floats(templates),
                "probe": floats(probe),
                "mean": float(mean.astype(np.float32) @ probe),
                "best": float((templates @ probe).max()),
            }
        )
    return cases


# -- photos --------------------------------------------------------------------------------------------------


def largest(faces: list) -> int:
    from squeezerface.embedders.base import select_face

    chosen = select_face(faces, 1, 1, "largest")
    return next(i for i, f in enumerate(faces) if f is chosen)


@dataclass(frozen=True)
class Pipeline:
    """The runtime's own LiteRT models and their interpreters, checked to be the ones the app ships, with
    the card threshold the app decides at."""

    verifier: FaceVerifier
    detector: FaceDetector
    embedder: FaceEmbeddingModel
    refiner: LandmarkRefiner
    det_it: Any
    ref_it: Any
    emb_it: Any
    threshold: float


def load_pipeline() -> Pipeline:
    """The `FaceVerifier(backend="litert")` pipeline, refused (SystemExit) when its models are not the ones
    the app is built for: vectors from other models would test nothing."""
    from squeezerface.verify import FaceVerifier

    verifier = FaceVerifier(backend="litert", quality=None, threads=1)
    detector: FaceDetector = verifier.detector
    embedder: FaceEmbeddingModel = verifier.embedder
    refiner = detector.refiner
    if detector.path.name != DETECTOR or embedder.path.name != EMBEDDER:
        raise SystemExit(
            f"FaceVerifier(backend='litert') uses {detector.path.name} and {embedder.path.name}, "
            f"expected {DETECTOR} and {EMBEDDER}: update this script and the app together"
        )
    if refiner is None:
        raise SystemExit(f"{DETECTOR}'s card names no landmark refiner; the app expects one")
    assert detector.backend and embedder.backend and refiner.backend
    det_it, ref_it, emb_it = (m.backend.interpreter for m in (detector, refiner, embedder))  # type: ignore[attr-defined]
    threshold = embedder.card.threshold(OPERATING_POINT)
    return Pipeline(verifier, detector, embedder, refiner, det_it, ref_it, emb_it, threshold)


def raw_output(interpreter: Any) -> np.ndarray:
    """An interpreter's first output tensor as stored (still quantized), copied out of its buffer."""
    detail = interpreter.get_output_details()[0]
    return np.array(interpreter.get_tensor(detail["index"]))


def photos(w: Writer, data: Path) -> dict[str, Any]:
    """Every photo run stage by stage through the real runtime, then pair scores, gallery scores and the
    models' tensor and detection settings."""
    pipe = load_pipeline()
    records: list[dict[str, Any]] = []
    embeddings: dict[str, np.ndarray] = {}
    for rel in PHOTOS:
        rec, emb = photo_record(w, pipe, data, rel)
        if emb is not None:
            embeddings[rec["id"]] = emb
        records.append(rec)

    ids = list(embeddings)
    person = {r["id"]: r["person"] for r in records}
    return {
        "photos": records,
        "pairs": pair_cases(pipe, ids, embeddings, person),
        "gallery": gallery_cases(pipe, ids, embeddings, person),
        "tensors": tensor_infos(pipe),
        "settings": {
            "score_threshold": pipe.detector.score_threshold,
            "nms_iou": pipe.detector.nms_iou,
            "input_size": pipe.detector.input_size,
            "refiner": pipe.refiner.path.name,
            "refiner_passes": pipe.refiner.passes,
            "operating_point": OPERATING_POINT,
            "threshold": pipe.threshold,
        },
    }


def photo_record(w: Writer, pipe: Pipeline, data: Path, rel: str) -> tuple[dict[str, Any], np.ndarray | None]:
    """One photo's record (decoded pixels, detector stages, faces, the chosen face's embedding stages) and
    its embedding, None when no face was found."""
    path = data / "lfw" / "images" / rel
    pid = Path(rel).stem
    rgb = pipe.verifier.load(path)
    rec: dict[str, Any] = {
        "id": pid,
        "person": Path(rel).parent.name,
        "file": f"lfw/images/{rel}",
        "image": w.array(f"{pid}_rgb", rgb),
    }
    rough = detector_stages(w, pipe, rgb, pid, rec)
    faces, refined_faces = refined(w, pipe, rgb, pid, rough)
    runtime = pipe.detector.detect(rgb)
    assert len(runtime) == len(refined_faces) and all(
        a.box == b.box and np.array_equal(a.landmarks, b.landmarks)
        for a, b in zip(runtime, refined_faces, strict=True)
    ), "detector decomposition drifted from FaceDetector.detect"
    rec["faces"] = faces
    if not refined_faces:
        rec["chosen"] = None
        return rec, None
    i = largest(refined_faces)
    rec["chosen"] = i
    rec["alignment"], emb = embedder_stages(w, pipe, rgb, pid, refined_faces[i])
    return rec, emb


def detector_stages(w: Writer, pipe: Pipeline, rgb: np.ndarray, pid: str, rec: dict[str, Any]) -> list:
    """The detector, stage by stage, as FaceDetector.detect_at and .detect do it: letterbox, int8 input and
    output into `rec`; returns the decoded faces before refinement."""
    from squeezerface.backends import quantize
    from squeezerface.detect import faces_from_output, letterbox, priors

    detector, det_it = pipe.detector, pipe.det_it
    assert detector.backend
    size = detector.input_size
    canvas, box = letterbox(rgb, size)
    x = replace(detector.card.input, size=(size, size), layout=detector.backend.layout).prepare(canvas)
    raw = detector.backend.run(x)[0]
    raw_q = raw_output(det_it)[0]
    rec["letterbox"] = {
        "size": size,
        "scale": box.scale,
        "pad_x": box.pad_x,
        "pad_y": box.pad_y,
        "canvas": w.array(f"{pid}_canvas", canvas),
    }
    rec["detector_input"] = w.array(f"{pid}_det_in", quantize(x, det_it.get_input_details()[0])[0])
    rec["detector_output_q"] = w.array(f"{pid}_det_out_q", raw_q)
    rec["detector_output"] = w.array(f"{pid}_det_out", raw)
    rough = faces_from_output(
        raw, priors(size), box, detector.score_threshold, detector.nms_iou, (rgb.shape[0], rgb.shape[1])
    )
    if hasattr(detector, "detect_at"):
        again = detector.detect_at(rgb, size)
        assert [f.box for f in again] == [f.box for f in rough], "detector drifted from detect_at"
    return rough


def refined(w: Writer, pipe: Pipeline, rgb: np.ndarray, pid: str, rough: list) -> tuple[list[dict], list]:
    """Each detected face through the landmark refiner: its JSON record (with every pass) and the face with
    refined landmarks, checked against LandmarkRefiner.refine."""
    faces = []
    refined_faces = []
    for k, face in enumerate(rough):
        passes, points = refiner_passes(w, pipe, rgb, f"{pid}_f{k}", face)
        assert np.array_equal(points, pipe.refiner.refine(rgb, face.landmarks)), "refiner drifted from refine"
        refined_faces.append(replace(face, landmarks=points))
        faces.append(
            {
                "box": floats(face.box),
                "score": face.score,
                "landmarks": floats(face.landmarks),
                "refined": floats(points),
                "passes": passes,
            }
        )
    return faces, refined_faces


def refiner_passes(
    w: Writer, pipe: Pipeline, rgb: np.ndarray, stem: str, face: Any
) -> tuple[list, np.ndarray]:
    """The refiner's passes on one face (crop, matrix, int8 input and output, points): their records and
    the final points."""
    from squeezerface.landmarks import crop_face, points_from_output

    refiner, ref_it = pipe.refiner, pipe.ref_it
    assert refiner.backend
    crop_size = refiner.card.input.size[0]
    ref_spec = replace(refiner.card.input, layout=refiner.backend.layout)
    points = np.asarray(face.landmarks, np.float32)
    passes = []
    for j in range(refiner.passes):
        crop, cm = crop_face(rgb, points, crop_size)
        rx = ref_spec.prepare(crop[None])
        rraw = refiner.backend.run(rx)[0]
        rraw_q = raw_output(ref_it)[0]
        points = points_from_output(rraw, cm, crop_size)
        passes.append(
            {
                "crop": w.array(f"{stem}_p{j}_crop", crop),
                "matrix": floats(cm),
                **model_io(w, f"{stem}_p{j}_ref_in", rx, ref_it, rraw_q, rraw),
                "landmarks": floats(points),
            }
        )
    return passes, points


def embedder_stages(
    w: Writer, pipe: Pipeline, rgb: np.ndarray, pid: str, face: Any
) -> tuple[dict[str, Any], np.ndarray]:
    """The chosen face aligned and embedded stage by stage (matrix, crop, int8 input and output), checked
    against FaceVerifier.embed: the record and the embedding."""
    from squeezerface.align import align_face, alignment_matrix

    embedder, emb_it = pipe.embedder, pipe.emb_it
    assert embedder.backend
    matrix = alignment_matrix(face.landmarks, embedder.card.input.size[0])
    aligned = align_face(rgb, face.landmarks, embedder.card.input.size[0])
    ex = embedder.card.input.prepare(aligned[None])
    eraw = embedder.backend.run(ex)[0]
    eraw_q = raw_output(emb_it)[0]
    emb = embedder.get_feat(aligned[None])[0]
    assert np.array_equal(emb, pipe.verifier.embed(rgb, faces=[face])[0]), (
        "embedding drifted from FaceVerifier"
    )
    alignment = {
        "matrix": floats(matrix),
        "aligned": w.array(f"{pid}_aligned", aligned),
        **model_io(w, f"{pid}_emb_in", ex, emb_it, eraw_q, eraw),
        "embedding": floats(emb),
    }
    return alignment, emb


def model_io(
    w: Writer, name: str, x: np.ndarray, interpreter: Any, raw_q: np.ndarray, raw: np.ndarray
) -> dict[str, Any]:
    """A model run's int8 input (written to a file), raw int8 output and dequantized output: the refiner
    and embedder stages are recorded alike, so one function writes both."""
    from squeezerface.backends import quantize

    return {
        "input": w.array(name, quantize(x, interpreter.get_input_details()[0])[0]),
        "output_q": raw_output_list(raw_q),
        "output": floats(raw),
    }


def pair_cases(
    pipe: Pipeline, ids: list[str], embeddings: dict[str, np.ndarray], person: dict[str, str]
) -> list[dict[str, Any]]:
    """Every pair of embedded photos compared by FaceVerifier at the card's operating point."""
    pairs = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            m = pipe.verifier.compare(embeddings[ids[a]], embeddings[ids[b]], OPERATING_POINT)
            pairs.append(
                {
                    "a": ids[a],
                    "b": ids[b],
                    "same_person": person[ids[a]] == person[ids[b]],
                    "score": m.score,
                    "threshold": m.threshold,
                    "same": m.same,
                }
            )
    return pairs


def gallery_cases(
    pipe: Pipeline, ids: list[str], embeddings: dict[str, np.ndarray], person: dict[str, str]
) -> dict[str, Any]:
    """A real Gallery: each person enrolled with the embeddings of their photos, every photo a probe, scored
    by both aggregations and verified at the threshold."""
    from squeezerface.gallery import Gallery, ModelInfo

    people = sorted({person[i] for i in ids})
    gallery_scores: dict[str, list[list[float]]] = {"mean": [], "best": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Gallery(Path(tmp) / "g.sqlite", ModelInfo.from_card(pipe.embedder.card)) as gallery,
    ):
        for name in people:
            gallery.enroll(name, np.stack([embeddings[i] for i in ids if person[i] == name]))
        for how in ("mean", "best"):
            for probe in ids:
                got = {
                    c.name: c.score
                    for c in gallery.identify(embeddings[probe], top_k=len(people), aggregate=how)
                }
                gallery_scores[how].append([got[name] for name in people])
        decisions = [
            [gallery.verify(name, embeddings[probe], pipe.threshold).accepted for name in people]
            for probe in ids
        ]
    return {
        "identities": people,
        "templates": {n: [i for i in ids if person[i] == n] for n in people},
        "probes": ids,
        "scores": gallery_scores,
        "threshold": pipe.threshold,
        "verify_mean_accepted": decisions,
    }


def tensor_infos(pipe: Pipeline) -> dict[str, Any]:
    """Shape, dtype and quantization of each model's input and output tensor, as the app must feed them."""
    return {
        "detector": {
            "input": tensor_info(pipe.det_it.get_input_details()[0]),
            "output": tensor_info(pipe.det_it.get_output_details()[0]),
        },
        "refiner": {
            "input": tensor_info(pipe.ref_it.get_input_details()[0]),
            "output": tensor_info(pipe.ref_it.get_output_details()[0]),
        },
        "embedder": {
            "input": tensor_info(pipe.emb_it.get_input_details()[0]),
            "output": tensor_info(pipe.emb_it.get_output_details()[0]),
        },
    }


def raw_output_list(a: np.ndarray) -> list[int]:
    return np.asarray(a).astype(np.int64).ravel().tolist()


def copy_cards(out: Path) -> dict[str, str]:
    from squeezerface.detect import FaceDetector
    from squeezerface.shipped import model_path

    refiner = FaceDetector(DETECTOR, verify=False).card.training.get("detection", {}).get("refiner")
    names = {"detector": DETECTOR, "embedder": EMBEDDER, **({"refiner": refiner} if refiner else {})}
    (out / "cards").mkdir(parents=True, exist_ok=True)
    rel = {}
    for role, name in names.items():
        card = model_path(name).with_name(name + ".json")
        shutil.copyfile(card, out / "cards" / card.name)
        rel[role] = f"cards/{card.name}"
    return rel


def versions() -> dict[str, str]:
    import cv2

    import squeezerface

    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "squeezerface": getattr(squeezerface, "__version__", "?"),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        from importlib.metadata import version

        info["ai-edge-litert"] = version("ai-edge-litert")
    except Exception:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to write golden.json, bin/ and cards/"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (holds lfw/)")
    parser.add_argument("--no-photos", action="store_true", help="synthetic cases only")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out / "bin", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    w = Writer(out)
    golden: dict[str, Any] = {
        "schema": 1,
        "generator": versions(),
        "models": {"detector": DETECTOR, "embedder": EMBEDDER},
        "cards": copy_cards(out),
    }
    golden["synthetic"] = synthetic(w, np.random.default_rng(args.seed))
    lfw = args.data / "lfw" / "images"
    if args.no_photos:
        golden["photos_skipped"] = "--no-photos"
    elif not lfw.is_dir():
        golden["photos_skipped"] = f"no photos: {lfw} not found (real face data lives beside the checkout)"
        print(f"export_golden: skipped photos: {lfw} not found", file=sys.stderr)
    else:
        golden.update(photos(w, args.data))
    (out / "golden.json").write_text(json.dumps(golden, indent=None, separators=(",", ":")) + "\n")
    n = len(golden.get("photos", []))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"export_golden: wrote {out / 'golden.json'}: {n} photos, {len(golden.get('pairs', []))} pairs, "
        f"{size / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
