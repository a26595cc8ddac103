"""Real-size detector benchmark: held-out faces on real backgrounds, at camera and phone photo sizes.

    python benchmarks/realsize.py build                # rebuild runs/realsize (images + truth.json), seeded
    python benchmarks/realsize.py eval                 # recall/precision per resolution and face size
    python benchmarks/realsize.py eval --report benchmarks/results/detector   # + the section in detector.*
    python benchmarks/realsize.py photopath --report benchmarks/results/photo_path  # verify's reduced decode

Why: the detector's own held-out figures are measured on small crops with one large centred face, which is
not what an app gets. A phone photo is 12 MP; a camera frame 640x480 or 1280x720; a selfie a close-up where
the face fills the frame. This builds such photos from faces the detector never trained on (celeba_wild's
40 validation identities and the held-out tenth of utkface, exactly `pruning.detector.labels.held_out_mask`;
never LFW), cut out around their face with context and placed on scikit-image's public-domain sample
photos (the ones without a human face), scaled and cropped to the frame. The ground truth is the dlib
teacher's box and 5 points on the source photo (the labels the detector learned from) moved by the
placement. Images are JPEGs under runs/ and are never committed; `build` remakes them byte-identically
from the seed. Only the code and the results are committed.

`build --split train` makes the same kind of frames from the detector's *training* photos (their teacher
labels in runs/detector/labels.json) on mosaics of its training backdrops (pruning/detector/backgrounds.py),
never on the benchmark's samples: `converters.convert_detector --frames` chooses the score threshold on
those, so the benchmark stays unseen. `--backdrops` and `--backdrop-grey` draw them from other folders (e.g.
with rendered print, pruning/detector/printed.py) and turn a share grey.

    python benchmarks/realsize.py build --split train --out runs/realsize-train
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # pruning/ (offline tools) when run as a script

RESOLUTIONS: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (1920, 1080), (4032, 3024))
SIZE_BINS: tuple[float, ...] = (40, 64, 128, 256, 512, 1024)
"""Lower edges of the face-size bins (box width in photo pixels); the last bin is open."""
BACKGROUNDS: tuple[str, ...] = (
    "coffee", "chelsea", "rocket", "horse", "brick", "grass", "gravel", "hubble_deep_field", "moon",
    "page", "text", "coins", "retina", "immunohistochemistry", "clock", "colorwheel", "cell",
)  # fmt: skip
"""scikit-image samples used as backgrounds: never astronaut, camera or lfw_subset (human faces)."""
CONTEXT = 0.7
"""Context kept around the face box on each side when a source photo is cut, in face widths."""
MATCH_IOU = 0.5


@dataclass(frozen=True)
class SourceFace:
    """A held-out photo cut around its single teacher face, with the face in the cut's coordinates."""

    image: np.ndarray
    box: np.ndarray  # (4,) x1y1x2y2
    landmarks: np.ndarray  # (5, 2)
    path: str


@dataclass(frozen=True)
class BuildConfig:
    out: Path = Path("runs/realsize")
    data: Path = Path("../shared/data")
    seed: int = 0
    frames: int = 40  # per resolution, 1-3 faces each
    closeups: int = 16  # per resolution, one face filling 50-100 % of the short side
    celeba: int = 360  # held-out photos labelled by the teacher (the cost of a build)
    utkface: int = 240
    quality: int = 92
    split: str = "test"  # "train": training photos on training backdrops (threshold tuning)
    labels: Path = Path("runs/detector/labels.json")  # split "train": the teacher labels of the photos
    backdrops: str = "runs/detector/backgrounds"  # split "train": backdrop folders, comma-separated
    backdrop_grey: float = 0.0  # split "train": share of backdrop draws in greyscale


def cut_source(image: np.ndarray, box: np.ndarray, lms: np.ndarray, path: str) -> SourceFace:
    """The photo cut to the face box plus CONTEXT face widths each side: other people in the photo stay
    mostly outside, so the one labelled face is the only face pasted."""
    w = box[2] - box[0]
    x1, y1 = (max(0, int(v - CONTEXT * w)) for v in box[:2])
    x2 = min(image.shape[1], int(box[2] + CONTEXT * w))
    y2 = min(image.shape[0], int(box[3] + CONTEXT * w))
    off = np.array([x1, y1], np.float32)
    return SourceFace(
        np.ascontiguousarray(image[y1:y2, x1:x2]),
        (box.reshape(2, 2) - off).ravel(),
        lms - off,
        path,
    )


def placement(src: SourceFace, face_px: float, centre: tuple[float, float], angle: float) -> np.ndarray:
    """2x3 matrix moving `src` so its face is `face_px` wide, centred at `centre`, turned by `angle`."""
    b = src.box
    sc = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    m = cv2.getRotationMatrix2D(sc, angle, face_px / max(b[2] - b[0], 1.0))
    m[:, 2] += np.array(centre) - np.array(sc)
    return m


def soft_mask(height: int, width: int, border: int = 3) -> np.ndarray:
    """Paste weights at the source's resolution: 1 inside, falling to 0 over `border` pixels at the edge.
    Warped with the photo, the soft edge scales with it, at the cost of a small image, not a 12 MP one."""
    y = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / border
    x = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / border
    return np.clip(np.minimum(y[:, None], x[None, :]), 0, 1).astype(np.float32)


def place(
    canvas: np.ndarray, src: SourceFace, face_px: float, centre: tuple[float, float], angle: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp `src` onto `canvas` (in place) with its face `face_px` wide centred at `centre`, turned by
    `angle` degrees, soft-edged; returns the face box (square around the moved centre, as in training),
    the moved landmarks and the covered region x1y1x2y2. Only the covered region is warped, so a 12 MP
    canvas costs no more than a small one."""
    b = src.box
    m = placement(src, face_px, centre, angle)
    h, w = src.image.shape[:2]
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64) @ m[:, :2].T + m[:, 2]
    x1, y1 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x2 = min(canvas.shape[1], int(np.ceil(corners[:, 0].max())))
    y2 = min(canvas.shape[0], int(np.ceil(corners[:, 1].max())))
    roi = m.copy()
    roi[:, 2] -= (x1, y1)
    size = (x2 - x1, y2 - y1)
    warped = cv2.warpAffine(src.image, roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft_mask(h, w), roi, size, flags=cv2.INTER_LINEAR)[..., None]
    part = canvas[y1:y2, x1:x2].astype(np.float32)
    canvas[y1:y2, x1:x2] = (part * (1 - alpha) + warped * alpha + 0.5).astype(np.uint8)
    centre_xy = np.array(centre, np.float64)
    half = face_px / 2 * (b[3] - b[1]) / max(b[2] - b[0], 1.0)
    box = np.array([centre_xy[0] - face_px / 2, centre_xy[1] - half, centre_xy[0] + face_px / 2,
                    centre_xy[1] + half])  # fmt: skip
    lms = src.landmarks.astype(np.float64) @ m[:, :2].T + m[:, 2]
    return box.astype(np.float32), lms.astype(np.float32), np.array([x1, y1, x2, y2], np.float32)


def background(images: Sequence[np.ndarray], width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a random sample photo, of the frame's aspect ratio, resized to the frame."""
    img = images[int(rng.integers(len(images)))]
    h, w = img.shape[:2]
    aspect = width / height
    ch = int(min(h, w / aspect) * rng.uniform(0.6, 1.0))
    cw = max(1, int(ch * aspect))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)


def load_backgrounds(names: Sequence[str] = BACKGROUNDS) -> list[np.ndarray]:
    """The scikit-image sample photos as RGB uint8 (the `demo` extra installs scikit-image)."""
    from skimage import data

    out = []
    for name in names:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def _overlaps(region: np.ndarray, taken: list[np.ndarray]) -> bool:
    return any(
        min(region[2], t[2]) > max(region[0], t[0]) and min(region[3], t[3]) > max(region[1], t[1])
        for t in taken
    )


def face_sizes(short: int, rng: np.random.Generator) -> list[float]:
    """1-3 face widths for a frame: the first log-uniform from 40 px to 60 % of the short side, further
    (smaller) ones only when they leave room, so every size bin up to the frame gets faces."""
    first = float(np.exp(rng.uniform(np.log(40), np.log(0.6 * short))))
    sizes = [first]
    if first < short / 4:
        for _ in range(int(rng.integers(0, 3))):
            sizes.append(float(np.exp(rng.uniform(np.log(40), np.log(max(41.0, min(first, short / 4)))))))
    return sizes


def _centre(rng: np.random.Generator, half: float, extent: int, margin: float = 1.05) -> float:
    """A random centre keeping a face of half-size `half` inside `extent` (the middle when it cannot be)."""
    lo, hi = half * margin, extent - half * margin
    return float(rng.uniform(lo, hi)) if hi > lo else extent / 2


def compose_frame(
    bg: np.ndarray, sources: Sequence[SourceFace], sizes: Sequence[float], rng: np.random.Generator,
    closeup: bool = False,
) -> tuple[np.ndarray, list[dict]]:  # fmt: skip
    """Place one source per size on the background without overlap (a face that finds no room after 50
    tries is left out); a close-up is centred with its box kept inside the frame."""
    canvas = bg.copy()
    height, width = canvas.shape[:2]
    faces: list[dict] = []
    taken: list[np.ndarray] = []
    for src, size in zip(sources, sizes, strict=False):
        for _ in range(50):
            angle = float(rng.uniform(-12, 12))
            aspect = (src.box[3] - src.box[1]) / max(src.box[2] - src.box[0], 1.0)
            half_w, half_h = size / 2, size * aspect / 2
            cx, cy = _centre(rng, half_w, width), _centre(rng, half_h, height)
            reach = (1 + 2 * CONTEXT) * size / 2
            region = np.array([cx - reach, cy - reach, cx + reach, cy + reach])
            if closeup:
                angle = angle / 3
            m = placement(src, size, (cx, cy), angle)
            lms = src.landmarks.astype(np.float64) @ m[:, :2].T + m[:, 2]
            inside = (lms >= 0).all() and (lms[:, 0] < width).all() and (lms[:, 1] < height).all()
            if inside and (closeup or not _overlaps(region, taken)):
                break
        else:
            continue  # no room: nothing is pasted, so no unlabelled face is left in the frame
        box, lms, _ = place(canvas, src, size, (cx, cy), angle)
        box = np.clip(box, 0, [width, height, width, height])  # a close-up's box may reach past the frame
        taken.append(region)
        faces.append({"box": [round(float(v), 1) for v in box], "landmarks": lms.round(2).tolist(),
                      "source": src.path})  # fmt: skip
    return canvas, faces


def held_out_sources(cfg: BuildConfig, show_progress: bool = True) -> list[SourceFace]:
    """A seeded sample of the detector's held-out photos, labelled by the dlib teacher (cached in
    `out/labels.json`), keeping those with exactly one confident face: a second, unlabelled person would
    count as a false detection."""
    from pruning.data import training_photos
    from pruning.detector.labels import _label_one, held_out_mask
    from squeezerface._progress import progress
    from squeezerface.imageio import load_image

    photos = training_photos(cfg.data, 6000, cfg.seed)  # the detector's label set (labels.py defaults)
    test = [p for p, t in zip(photos, held_out_mask(photos, cfg.seed), strict=True) if t]
    rng = np.random.default_rng(cfg.seed)
    picks: list = []
    for source, count in (("celeba_wild", cfg.celeba), ("utkface", cfg.utkface)):
        pool = [p for p in test if p.source == source]
        picks += [pool[i] for i in sorted(rng.permutation(len(pool))[:count])]
    cache = cfg.out / "labels.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    for photo in progress(picks, len(picks), "teacher labels", show_progress):
        key = str(photo.path.relative_to(cfg.data))
        if key not in known:
            rec = _label_one(str(photo.path))
            known[key] = rec.get("faces", [])
    cfg.out.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known))
    out = []
    for photo in picks:
        key = str(photo.path.relative_to(cfg.data))
        faces = known[key]
        if len(faces) != 1 or faces[0]["score"] < 0.5:
            continue
        f = faces[0]
        image = load_image(photo.path)
        out.append(
            cut_source(image, np.array(f["box"], np.float32), np.array(f["landmarks"], np.float32), key)
        )
    return out


def training_sources(cfg: BuildConfig) -> list[SourceFace]:
    """A seeded sample of the detector's training photos with exactly one confident teacher face (their
    labels were made once by `pruning.detector.labels`), cut as the held-out ones are."""
    from squeezerface.imageio import load_image

    data = json.loads(cfg.labels.read_text())
    root = Path(data["data_root"])
    rng = np.random.default_rng([cfg.seed, 7])
    out: list[SourceFace] = []
    for source, count in (("celeba_wild", cfg.celeba), ("utkface", cfg.utkface)):
        pool = [r for r in data["records"] if r["split"] == "train" and r["usable"] and len(r["faces"]) == 1
                and r["faces"][0]["score"] >= 0.5 and r["path"].startswith(source)]  # fmt: skip
        for i in sorted(rng.permutation(len(pool))[:count]):
            f = pool[int(i)]["faces"][0]
            image = load_image(root / pool[int(i)]["path"])
            box, lms = np.array(f["box"], np.float32), np.array(f["landmarks"], np.float32)
            out.append(cut_source(image, box, lms, pool[int(i)]["path"]))
    return out


def build(cfg: BuildConfig, show_progress: bool = True) -> dict:
    """Write every frame as a JPEG under `cfg.out/WxH/` and the ground truth to `cfg.out/truth.json`."""
    start = time.monotonic()
    if cfg.split == "train":
        from pruning.detector.backgrounds import BackgroundPool

        return write_frames(
            cfg, training_sources(cfg), BackgroundPool(cfg.backdrops, cfg.backdrop_grey).mosaic, start
        )
    sources = held_out_sources(cfg, show_progress)
    backgrounds = load_backgrounds()
    return write_frames(
        cfg, sources, lambda w, h, rng: background(backgrounds, w, h, rng), start, list(BACKGROUNDS)
    )


def write_frames(
    cfg: BuildConfig,
    sources: Sequence[SourceFace],
    backdrop: Callable[[int, int, np.random.Generator], np.ndarray],
    start: float,
    backgrounds: Sequence[str] = (),
) -> dict:
    """The frames of every resolution from given sources and `backdrop(width, height, rng)` (the part a test
    runs on toys); `backgrounds` names the backdrops in truth.json."""
    rng = np.random.default_rng([cfg.seed, 14])
    frames = []
    for width, height in RESOLUTIONS:
        folder = cfg.out / f"{width}x{height}"
        folder.mkdir(parents=True, exist_ok=True)
        short = min(width, height)
        for i in range(cfg.frames + cfg.closeups):
            closeup = i >= cfg.frames
            sizes = [float(rng.uniform(0.5, 1.0) * short)] if closeup else face_sizes(short, rng)
            chosen = [sources[int(j)] for j in rng.integers(0, len(sources), len(sizes))]
            bg = backdrop(width, height, rng)
            canvas, faces = compose_frame(bg, chosen, sizes, rng, closeup=closeup)
            name = f"{'closeup' if closeup else 'frame'}_{i:03d}.jpg"
            ok, data = cv2.imencode(".jpg", canvas[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, cfg.quality])
            assert ok
            (folder / name).write_bytes(data.tobytes())
            frames.append({"file": f"{folder.name}/{name}", "width": width, "height": height,
                           "closeup": closeup, "faces": faces})  # fmt: skip
    summary = {
        "seed": cfg.seed,
        "sources": len(sources),
        "frames": len(frames),
        "faces": sum(len(f["faces"]) for f in frames),
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    summary["split"] = cfg.split
    truth = {
        "summary": summary,
        "backgrounds": list(backgrounds) or cfg.backdrops.split(","),
        "frames": frames,
    }
    (cfg.out / "truth.json").write_text(json.dumps(truth))
    return summary


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of x1y1x2y2 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def match(truth: np.ndarray, found: np.ndarray, scores: np.ndarray, min_iou: float = MATCH_IOU) -> np.ndarray:
    """Greedy matching, best detection first: for each detection the index of its true face, or -1."""
    iou = iou_matrix(found, truth)
    out = np.full(len(found), -1)
    free = np.ones(len(truth), bool)
    for d in np.argsort(-scores, kind="stable"):
        if len(truth) == 0:
            break
        cand = np.where(free, iou[d], -1.0)
        t = int(np.argmax(cand))
        if cand[t] >= min_iou:
            out[d], free[t] = t, False
    return out


def size_bin(width: float) -> str:
    """The label of the size bin a face width falls in ("<40" below the benchmark's range)."""
    if width < SIZE_BINS[0]:
        return f"<{SIZE_BINS[0]:g}"
    i = int(np.searchsorted(SIZE_BINS, width, side="right")) - 1
    hi = f"{SIZE_BINS[i + 1]:g}" if i + 1 < len(SIZE_BINS) else "up"
    return f"{SIZE_BINS[i]:g}-{hi}"


@dataclass
class Tally:
    """Counts for one cell of the table: true faces, those found, detections, correct detections."""

    faces: int = 0
    found: int = 0
    detections: int = 0
    correct: int = 0

    def row(self) -> dict:
        return {
            "faces": self.faces,
            "recall": round(self.found / self.faces, 4) if self.faces else None,
            "detections": self.detections,
            "precision": round(self.correct / self.detections, 4) if self.detections else None,
        }


def frame_keys(frame: dict, width: float) -> list[tuple[str, str]]:
    """The table cells a face of this width counts in: its resolution's size bin and "all" (close-ups are
    one bin of their own), and the same over every resolution."""
    res = f"{frame['width']}x{frame['height']}"
    bins = ["close-up"] if frame["closeup"] else [size_bin(width), "all"]
    return [(r, b) for r in (res, "every") for b in bins]


def score_frame(frame: dict, faces: Sequence, cells: dict[tuple[str, str], Tally]) -> tuple[int, int]:
    """Add one frame's outcome to its cells; returns (faces found, false detections). A detection counts in
    the cell of the face it matched, or of its own width when it matched none (a false detection)."""
    truth = np.array([f["box"] for f in frame["faces"]], np.float32).reshape(-1, 4)
    found = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
    scores = np.array([f.score for f in faces], np.float32)
    hit = match(truth, found, scores)
    for t, box in enumerate(truth):
        for key in frame_keys(frame, box[2] - box[0]):
            cell = cells.setdefault(key, Tally())
            cell.faces += 1
            cell.found += int((hit == t).any())
    for d, box in enumerate(found):
        ref = truth[hit[d]] if hit[d] >= 0 else box
        for key in frame_keys(frame, ref[2] - ref[0]):
            cell = cells.setdefault(key, Tally())
            cell.detections += 1
            cell.correct += int(hit[d] >= 0)
    return int((hit >= 0).sum()), int((hit < 0).sum())


def subset(frames: list[dict], limit: int | None) -> list[dict]:
    """The first `limit` frames and the first `limit` // 2 close-ups of each resolution (all when None):
    a smaller run of the same benchmark when CPU time is short."""
    if limit is None:
        return frames
    seen: dict[tuple[str, bool], int] = {}
    out = []
    for f in frames:
        key = (f["file"].split("/")[0], f["closeup"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= (limit // 2 if f["closeup"] else limit):
            out.append(f)
    return out


def evaluate(out: Path, detector, show_progress: bool = True, limit: int | None = None) -> dict:
    """Run `detector.detect` on every frame of a build (decoded as an app would: `load_image`)."""
    from squeezerface._progress import progress
    from squeezerface.imageio import load_image

    truth = json.loads((out / "truth.json").read_text())
    frames = subset(truth["frames"], limit)
    truth["summary"] = {**truth["summary"], "frames_scored": len(frames),
                        "faces_scored": sum(len(f["faces"]) for f in frames)}  # fmt: skip
    cells: dict[tuple[str, str], Tally] = {}
    misses: list[dict] = []
    for frame in progress(frames, len(frames), "real-size frames", show_progress):
        faces = detector.detect(load_image(out / frame["file"]))
        found, false = score_frame(frame, faces, cells)
        if found < len(frame["faces"]) or false:
            misses.append(
                {"file": frame["file"], "faces": len(frame["faces"]), "found": found, "false": false}
            )
    table = {f"{r}|{b}": cells[(r, b)].row() for r, b in sorted(cells, key=_cell_order)}
    return {"summary": truth["summary"], "cells": table, "frames_with_errors": misses}


def _cell_order(key: tuple[str, str]) -> tuple:
    res, b = key
    r = (1e9,) if res == "every" else tuple(int(v) for v in res.split("x"))
    order = {"all": 1e8, "close-up": 1e9}
    return (r, order.get(b, float(b.split("-")[0].lstrip("<")) if b[0].isdigit() or b[0] == "<" else 0))


def timed(fn, runs: int) -> float:
    """Median CPU time of `fn()` in milliseconds. Everything runs on 1 thread, so CPU time is the cost on a
    free core; wall time on a shared machine would measure the other jobs too."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1000)
    return round(float(np.median(times)), 1)


def cost_12mp(out: Path, detector, photos: int = 3, runs: int = 1) -> dict:
    """Median cost on 12 MP frames, 1 thread: decoding the JPEG in full and at 1/2 by libjpeg, and detecting
    (the whole `detect`: pyramid, network, merging, landmark refinement on the full-resolution image)."""
    from squeezerface.imageio import load_image

    cv2.setNumThreads(1)
    files = sorted((out / "4032x3024").glob("frame_*.jpg"))[:photos]
    decode, half, detect = [], [], []
    for f in files:
        decode.append(timed(lambda f=f: load_image(f), runs))
        half.append(timed(lambda f=f: load_image(f, max_pixels=2016 * 1512), runs))
        image = load_image(f)
        detect.append(timed(lambda image=image: detector.detect(image), runs))
    return {
        "photos": len(files),
        "runs_each": runs,
        "threads": 1,
        "decode_ms_p50": float(np.median(decode)),
        "decode_half_ms_p50": float(np.median(half)),
        "detect_ms_p50": float(np.median(detect)),
    }


SECTION = "## Real-size photos"


TARGET = 0.97
"""Issue 14: recall and precision at least this for faces of 40 px and up at every resolution, and for
close-ups."""


def verdict(cells: dict[str, dict]) -> str:
    """Whether the table meets TARGET, computed from its cells: every resolution's "all" and "close-up"
    rows, and the size bins that hold it back."""
    short: list[str] = []
    for key, row in cells.items():
        res, b = key.split("|")
        if res == "every" or b not in ("all", "close-up"):
            continue
        for what in ("recall", "precision"):
            if row[what] is not None and row[what] < TARGET:
                short.append(f"{res} {b} {what} {row[what]:.3f}")
    if not short:
        return f"**Target met**: recall and precision >= {TARGET} at every resolution and for close-ups."
    sizes = {k.split("|")[1]: r for k, r in cells.items() if k.startswith("every|")}
    low = {b: r["recall"] for b, r in sizes.items() if b[0].isdigit() and (r["recall"] or 1) < TARGET}
    bins = [f"{b} px {recall:.3f}" for b, recall in low.items()]
    return (f"**Target missed** (recall and precision >= {TARGET} at every resolution and for close-ups): "
            + "; ".join(short) + "." + (f" Recall over every resolution by face width: {', '.join(bins)}."
                                        if bins else ""))  # fmt: skip


def markdown(result: dict) -> str:
    """The detector.md section: one row per resolution and size bin, close-ups, and the 12 MP cost."""
    lines = [SECTION, "", result["about"], ""]
    lines += ["| resolution | faces (box width px) | faces | recall | detections | precision |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for key, row in result["cells"].items():
        res, b = key.split("|")
        fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
        strong = "**" if b in ("all", "close-up") else ""
        lines.append(f"| {res} | {strong}{b}{strong} | {row['faces']} | {fmt(row['recall'])} | "
                     f"{row['detections']} | {fmt(row['precision'])} |")  # fmt: skip
    c = result.get("cost_12mp")
    if c:
        lines += ["", "Cost on a 12 MP (4032x3024) JPEG, 1 thread, CPU time, medians over "
                  f"{c['photos']} photos x {c['runs_each']} runs: decode {c['decode_ms_p50']:.0f} ms "
                  "(at 1/2 by libjpeg: "
                  f"{c['decode_half_ms_p50']:.0f} ms), detection {c['detect_ms_p50']:.0f} ms."]  # fmt: skip
    lines += ["", verdict(result["cells"])]
    if result.get("reading"):
        lines += ["", result["reading"]]
    lines += ["", f"Made by `{result['command']}` in {result['minutes']} min.", ""]
    return "\n".join(lines)


def write_report(report: Path, result: dict) -> None:
    """Put the result under "realsize" in REPORT.json and replace (or add) its section in REPORT.md,
    keeping everything else that the detector conversion wrote."""
    js, md = report.with_suffix(".json"), report.with_suffix(".md")
    data = json.loads(js.read_text()) if js.is_file() else {}
    data["realsize"] = result
    js.write_text(json.dumps(data, indent=1) + "\n")
    text = md.read_text() if md.is_file() else ""
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        text = head + markdown(result) + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + markdown(result)
    md.write_text(text)


def lfw_no_face(lfw: Path, detector, show_progress: bool = True) -> dict:
    """LFW View 2 photos in which `detector` finds no face: the photos must not suffer for the large ones
    (LFW is only counted here, never tuned on)."""
    from squeezerface._progress import progress
    from squeezerface.datasets import read_pairs
    from squeezerface.imageio import load_image

    paths = read_pairs(lfw / "images", lfw / "pairs.txt").unique_paths()
    missing = [
        str(p.relative_to(lfw / "images"))
        for p in progress(paths, len(paths), "LFW photos", show_progress)
        if not detector.detect(load_image(p))
    ]
    return {"photos": len(paths), "no_face": len(missing), "no_face_photos": missing}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/realsize.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        choices=("build", "eval", "lfw", "photopath"),
        help="lfw: count LFW photos without a face; photopath: verify's reduced-scale photo path against "
        "the full-size one",
    )
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    parser.add_argument("--single-look", action="store_true", help="the former detector: 160, retry at 320")
    parser.add_argument("--out", type=Path, default=BuildConfig.out, help="where the frames live")
    parser.add_argument("--data", type=Path, default=BuildConfig.data)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="build: test = the benchmark (held-out faces, scikit-image backgrounds); train = tuning frames "
        "(training faces on training backdrops) for convert_detector --frames",
    )
    parser.add_argument(
        "--backdrops",
        default=BuildConfig.backdrops,
        help="build --split train: backdrop folders, comma-separated (e.g. runs/detector/backgrounds,"
        "runs/detector/printed with rendered print)",
    )
    parser.add_argument(
        "--backdrop-grey",
        type=float,
        default=BuildConfig.backdrop_grey,
        help="build --split train: share of backdrops drawn grey",
    )
    parser.add_argument("--model", default=None, help="detector file (default: the shipped one)")
    parser.add_argument("--report", type=Path, default=None, help="e.g. benchmarks/results/detector")
    parser.add_argument("--limit", type=int, default=None, help="eval: first N frames, N/2 close-ups each")
    parser.add_argument(
        "--face-lo",
        type=float,
        default=None,
        help="eval: the pyramid's Pyramid.face_lo (px a level brings the smallest face to) instead of the "
        "runtime's; for choosing it on the tuning frames (--out runs/realsize-train), never the benchmark",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    start = time.monotonic()
    if args.command == "build":
        cfg = BuildConfig(
            out=args.out, data=args.data, seed=args.seed, split=args.split, backdrops=args.backdrops,
            backdrop_grey=args.backdrop_grey,
        )  # fmt: skip
        print(json.dumps(build(cfg, not args.quiet)))
        return 0
    from squeezerface.detect import FaceDetector
    from squeezerface.shipped import DEFAULT_DETECTOR

    cv2.setNumThreads(1)
    if args.command == "photopath":
        result = photo_path(args.out, args.model, not args.quiet)
        result["command"] = "python benchmarks/realsize.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        result["minutes"] = round((time.monotonic() - start) / 60, 2)
        if args.report:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
            args.report.with_suffix(".md").write_text(photo_path_markdown(result))
        print(json.dumps(result["rows"], indent=1))
        return 0
    from squeezerface.detect import Pyramid

    if args.single_look and args.face_lo is not None:
        parser.error("--face-lo sets the pyramid, which --single-look turns off")
    options: dict = {"pyramid": None} if args.single_look else {}
    if args.face_lo is not None:
        options["pyramid"] = Pyramid(face_lo=args.face_lo)
    if args.command == "lfw":
        detector = FaceDetector(args.model or DEFAULT_DETECTOR, refiner=None, **options).prepare(threads=1)
        print(json.dumps(lfw_no_face(args.lfw, detector, not args.quiet), indent=1))
        return 0
    detector = FaceDetector(args.model or DEFAULT_DETECTOR, **options).prepare(threads=1)
    result = evaluate(args.out, detector, not args.quiet, args.limit)
    result["cost_12mp"] = cost_12mp(args.out, detector)
    result["model"] = detector.path.name
    result["about"] = about(result, detector)
    result["command"] = "python benchmarks/realsize.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    result["minutes"] = round((time.monotonic() - start) / 60, 2)
    if args.report:
        write_report(args.report, result)
    print(json.dumps({k: v for k, v in result.items() if k != "frames_with_errors"}, indent=1))
    return 0


def photo_path(out: Path, model: str | None, show_progress: bool = True) -> dict:
    """verify's photo path (large JPEGs read at 1/2 or 1/4 scale, coarse-to-fine search stopped once the
    subject is settled, alignment from the coarsest decode holding the face at >= 76 px) against the
    full-size path (whole decode, every pyramid level, alignment at full size), on every single-face frame:
    cosine of each path's embedding to the embedding of the same face aligned at full size on the teacher's
    landmarks (the truth; a photo where a path finds no face counts as a miss, not in the median), and the
    time each path takes per photo (1 thread)."""
    from squeezerface._progress import progress
    from squeezerface.embedders.base import choose_face
    from squeezerface.errors import NoFaceError
    from squeezerface.face import Face
    from squeezerface.verify import FaceVerifier

    verifier = FaceVerifier(detector=model, quality=None)
    frames = [f for f in json.loads((out / "truth.json").read_text())["frames"] if len(f["faces"]) == 1]
    per: dict[str, dict[str, list[float]]] = {}
    for frame in progress(frames, len(frames), "photo path", show_progress):
        data = (out / frame["file"]).read_bytes()
        empty: dict[str, list[float]] = {"new": [], "full": [], "new_ms": [], "full_ms": []}
        cell = per.setdefault(frame["file"].split("/")[0], empty)
        truth = Face(frame["faces"][0]["box"], np.array(frame["faces"][0]["landmarks"], np.float32))
        t0 = time.perf_counter()
        try:
            new: np.ndarray | None = verifier.analyze(data).embedding
        except NoFaceError:
            new = None
        t1 = time.perf_counter()
        full_rgb = verifier.load(data)
        faces = verifier.detector.detect(full_rgb)
        face = choose_face(faces, *full_rgb.shape[:2], "largest", frame["file"]) if faces else None
        full = verifier.embedder.get_feat(verifier.embedder.align(full_rgb, face)[None])[0] if face else None
        t2 = time.perf_counter()
        ref = verifier.embedder.get_feat(verifier.embedder.align(full_rgb, truth)[None])[0]  # the truth
        cell["new"].append(float(ref @ new) if new is not None else float("nan"))
        cell["full"].append(float(ref @ full) if full is not None else float("nan"))
        cell["new_ms"].append((t1 - t0) * 1e3)
        cell["full_ms"].append((t2 - t1) * 1e3)
    rows = []
    for res, c in per.items():
        new, full = np.array(c["new"]), np.array(c["full"])
        rows.append({
            "resolution": res, "photos": len(new),
            "median_cos_to_truth_photo_path": round(float(np.nanmedian(new)), 4),
            "median_cos_to_truth_full_size": round(float(np.nanmedian(full)), 4),
            "above_0.9_photo_path": int(np.sum(new > 0.9)), "above_0.9_full_size": int(np.sum(full > 0.9)),
            "no_face_photo_path": int(np.isnan(new).sum()), "no_face_full_size": int(np.isnan(full).sum()),
            "median_ms_photo_path": round(float(np.median(c["new_ms"])), 1),
            "median_ms_full_size": round(float(np.median(c["full_ms"])), 1),
        })  # fmt: skip
    return {"model": verifier.detector.path.name, "rows": rows}


def photo_path_markdown(result: dict) -> str:
    lines = [
        "# verify's photo path against the full-size path (real-size set)",
        "",
        f"Command: `{result['command']}` ({result['minutes']} min, 1 thread). Detector `{result['model']}`.",
        "",
        " ".join((photo_path.__doc__ or "").split()),
        "",
        "| resolution | photos | median cosine to truth: photo path | full size | > 0.9: photo path | "
        "full size | no face: photo path | full size | median ms per photo: photo path | full size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['resolution']} | {r['photos']} | {r['median_cos_to_truth_photo_path']:.4f} | "
            f"{r['median_cos_to_truth_full_size']:.4f} | {r['above_0.9_photo_path']} | "
            f"{r['above_0.9_full_size']} | {r['no_face_photo_path']} | {r['no_face_full_size']} | "
            f"{r['median_ms_photo_path']} | {r['median_ms_full_size']} |"
        )
    return "\n".join(lines) + "\n"


def about(result: dict, detector) -> str:
    s = result["summary"]
    sources = (
        f"`python benchmarks/realsize.py build --split train` (seed {s['seed']}) from {s['sources']} "
        "training-split photos cut around their one teacher face and placed on mosaics of the training "
        "backdrops (tuning frames, not the benchmark)"
        if s.get("split") == "train"
        else f"`python benchmarks/realsize.py build` (seed {s['seed']}) from {s['sources']} held-out photos "
        "(celeba_wild validation identities, held-out utkface; never LFW) cut around their one teacher "
        "face and placed on scikit-image sample photos"
    )
    return (
        f"`FaceDetector` (`{detector.path.name}`, {detector.describe()}) on "
        f"{s['frames_scored']} of the {s['frames']} synthetic photos ({s['faces_scored']} faces), built by "
        f"{sources}; per "
        "resolution, frames with 1-3 faces from 40 px to 60 % of the short side, and close-ups with one face "
        f"50-100 % of the short side. A detection is correct at IoU >= {MATCH_IOU} with the teacher's box "
        "moved by the placement."
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
