"""How good is a face detector, measured two ways.

1. Against held-out teacher labels (photos the detector never trained on): precision and recall at IoU >=
   0.5 over a sweep of score thresholds, and the landmark NME (mean point error over the inter-ocular
   distance) of the matched faces.
2. The real test, on LFW View 2: the embedder's 10-fold accuracy when faces are aligned by this detector's
   landmarks versus by the teacher's. Photos where it finds no face are aligned from a centred box (the
   template points scaled into it) and counted. LFW is only measured here, never used to choose anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface.face import Face

Detect = Callable[[np.ndarray], list[Face]]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), x1y1x2y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def nme(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark error over the inter-ocular distance of the truth (points 0 and 1 are the eyes)."""
    iod = max(float(np.linalg.norm(truth[0] - truth[1])), 1e-6)
    return float(np.linalg.norm(pred - truth, axis=1).mean() / iod)


@dataclass
class ImageResult:
    scores: np.ndarray  # of every detection, descending
    matched: np.ndarray  # bool per detection: matched a not-yet-matched truth face at IoU >= 0.5
    nmes: list[float]  # of the matched detections, in detection order
    truths: int


def match_image(
    dets: Sequence[Face], truth_boxes: np.ndarray, truth_lms: np.ndarray, iou: float = 0.5
) -> ImageResult:
    """Greedy matching, best-scoring detection first (the VOC/WIDER convention)."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
    boxes = np.array([dets[i].box for i in order], np.float32).reshape(-1, 4)
    ious = iou_matrix(boxes, truth_boxes)
    taken = np.zeros(len(truth_boxes), bool)
    matched = np.zeros(len(order), bool)
    errors: list[float] = []
    for k, i in enumerate(order):
        if len(truth_boxes) == 0:
            break
        cand = np.where(taken, -1.0, ious[k])
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            taken[j] = True
            matched[k] = True
            errors.append(nme(dets[i].landmarks, truth_lms[j]))
    scores = np.array([dets[i].score for i in order], np.float32)
    return ImageResult(scores, matched, errors, len(truth_boxes))


def pr_summary(results: Sequence[ImageResult], thresholds: Sequence[float]) -> list[dict]:
    """Precision, recall and NME of matched faces at each score threshold."""
    scores = np.concatenate([r.scores for r in results]) if results else np.zeros(0)
    matched = np.concatenate([r.matched for r in results]) if results else np.zeros(0, bool)
    nmes = np.concatenate([np.array(r.nmes, dtype=float) for r in results]) if results else np.zeros(0)
    matched_scores = np.concatenate([r.scores[r.matched] for r in results]) if results else np.zeros(0)
    truths = sum(r.truths for r in results)
    rows = []
    for t in thresholds:
        keep = scores >= t
        tp = int((matched & keep).sum())
        fp = int((~matched & keep).sum())
        m = matched_scores >= t
        rows.append(
            {
                "score_threshold": float(t),
                "recall": tp / max(truths, 1),
                "precision": tp / max(tp + fp, 1),
                "true_positives": tp,
                "false_positives": fp,
                "faces": truths,
                "nme_mean": float(nmes[m].mean()) if m.any() else None,
                "nme_median": float(np.median(nmes[m])) if m.any() else None,
            }
        )
    return rows


Labelled = tuple[np.ndarray, np.ndarray, np.ndarray]  # RGB image, teacher boxes (F, 4), landmarks (F, 5, 2)


def load_labelled(records: Sequence[tuple[Path, np.ndarray, np.ndarray]]) -> list[Labelled]:
    """Decode labelled photos once, so several detectors and input sizes are judged on the same arrays."""
    from squeezerface.imageio import load_image

    return [(load_image(path), boxes, lms) for path, boxes, lms in records]


def evaluate_on_labels(
    detect: Detect, photos: Sequence[Labelled], show_progress: bool = False
) -> list[ImageResult]:
    """Run `detect` (a low score threshold, so the sweep can raise it) on each held-out labelled photo."""
    from squeezerface._progress import progress

    return [
        match_image(detect(image), boxes, lms)
        for image, boxes, lms in progress(photos, len(photos), "detector on held-out photos", show_progress)
    ]
