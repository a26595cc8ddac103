"""The face detector: image in, `Face` records (box, score, 5 landmarks) out, on ONNX or LiteRT.

The network (see `pruning.detector.model`) predicts, at every location of 3 strides, a face
score, a box and 5 landmarks relative to the location; everything else is here as pure functions:
letterboxing (any aspect ratio into the square input, no distortion), the location grid, decoding, and
non-maximum suppression. The `FaceDetector` class only composes them on a backend, like the embedder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from squeezerface.backends import Backend, open_backend
from squeezerface.face import Face
from squeezerface.landmarks import LandmarkRefiner
from squeezerface.modelcard import InputSpec, ModelCard, load_model
from squeezerface.photo import REDUCTIONS, Photo
from squeezerface.shipped import DEFAULT_DETECTOR, model_path

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed into the square input: input = image * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input-space (..., 2) coordinates back to the original image."""
        return (xy - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale


def letterbox(
    image: np.ndarray, size: int, fill: int = 0, upscale: bool = False
) -> tuple[np.ndarray, Letterbox]:
    """Fit into `size` x `size` keeping the aspect ratio, centred on a `fill` background.

    Images smaller than the input are not enlarged unless `upscale`: the detector is trained for faces up to
    ~95 % of a 160 input, and blowing a small photo up to a larger input would push its face past that."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    if not upscale:
        scale = min(scale, 1.0)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.full((size, size, 3), fill, np.uint8)
    py, px = (size - nh) // 2, (size - nw) // 2
    canvas[py : py + nh, px : px + nw] = resized
    return canvas, Letterbox(scale=nw / w, pad_x=float(px), pad_y=float(py))


def priors(size: int | tuple[int, int], strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """(A, 3) array of (cx, cy, stride) for every output location, in the network's output order.
    `size` is the square input's side or (height, width) of a rectangular one (an image pyramid level)."""
    height, width = (size, size) if isinstance(size, int) else size
    out = []
    for s in strides:
        ny, nx = -(-height // s), -(-width // s)  # ceil: feature maps round up for sizes not divisible by s
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        out.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s, np.full(ny * nx, s)], axis=1))
    return np.concatenate(out).astype(np.float32)


def decode(raw: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (A, 15) outputs -> scores (A,), boxes (A, 4) as x1y1x2y2, landmarks (A, 5, 2), input space."""
    c, s = grid[:, :2], grid[:, 2:3]
    scores = 1.0 / (1.0 + np.exp(-raw[:, 0]))
    centre = c + raw[:, 1:3] * s
    half = np.exp(np.clip(raw[:, 3:5], -10, 10)) * s / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    landmarks = c[:, None, :] + raw[:, 5:15].reshape(-1, 5, 2) * s[:, None, :]
    return scores, boxes, landmarks


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first (pure numpy)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


@dataclass(frozen=True)
class Pyramid:
    """How a photo of any size is searched: at several scales, each run on the whole scaled photo.

    The network is trusted for faces from `face_lo` pixels in its input, whatever the input's size: its
    training canvases held faces of 16-150 px, but smaller faces score too close to the backgrounds it
    learnt to reject. `face_lo` was chosen on the training-split real-size frames (`benchmarks/realsize.py
    eval --out runs/realsize-train --face-lo N`, benchmarks/RUNS.md), never on the benchmark. A photo whose
    faces may be `min_face` pixels up to its whole short side is therefore scaled so that `min_face`
    becomes `face_lo` (the finest level: enlarged when `face_lo` > `min_face`) and so that the short side
    becomes `face_hi` (the coarsest), with levels between spaced by at most `step`. Every face then lies
    in some level at `face_lo` up to `face_top` pixels (`face_top`: see there). The coarsest level gets a
    border of `pad` times its short side: a close-up's face then has background around it, as in
    training, instead of running into the input's edge. The cost is dominated by the finest level: about
    (face_lo / min_face)^2 of the photo's pixels."""

    min_face: float = 40.0
    face_lo: float = 56.0
    face_hi: float = 100.0
    step: float = 3.0
    pad: float = 0.15

    @property
    def face_top(self) -> float:
        """The widest face (pixels in a level) the search relies on a level to report: a face first
        reaches `face_lo` in some level and is then under `face_lo * step` there, or it is at most the
        whole short side, `face_hi`, at the coarsest."""
        return max(self.face_hi, self.face_lo * self.step)


def pyramid_scales(height: int, width: int, pyramid: Pyramid, max_face: float | None = None) -> list[float]:
    """Scales (coarsest first) at which a `height` x `width` photo is searched (see `Pyramid`) for faces
    from `pyramid.min_face` up to `max_face` pixels (None: up to its whole short side)."""
    finest = pyramid.face_lo / pyramid.min_face
    largest = min(height, width) if max_face is None else min(height, width, max_face)
    coarsest = min(1.0, pyramid.face_hi / largest)
    if coarsest >= finest:  # one level holds every face size from min_face to the whole photo
        return [coarsest]
    levels = int(np.ceil(np.log(finest / coarsest) / np.log(pyramid.step) - 1e-9))
    return [float(coarsest * (finest / coarsest) ** (k / levels)) for k in range(levels + 1)]


FIRST_SHORT_SIDE = 360
"""A large photo is first searched in the coarsest libjpeg decode whose short side is still this long
(a 720p frame at 1/2, a 12 MP photo at 1/4)."""
MAX_FIRST = 4
"""Never first read coarser than 1/4: at 1/8 the subject of a phone photo is too small to align from, and a
second decode would cost more than the coarser first one saved."""
PASS_OVERLAP = 1.5
"""A finer pass looks for faces up to this many times the smallest face the pass before it could see."""
REACH_MARGIN = 1.25
"""A face counts as larger than any a finer level can add when it is this many times wider than the
narrowest face the levels so far are trusted to find (`Level.smallest`): boxes differ between levels."""


@dataclass(frozen=True)
class SearchPass:
    """One look at a photo decoded at 1/`reduction`, for faces from `min_face` to `max_face` pixels of the
    full-size photo (None: up to its whole short side; that pass pads its coarsest level for close-ups)."""

    reduction: int
    min_face: float
    max_face: float | None


def plan_passes(width: int, height: int, pyramid: Pyramid) -> list[SearchPass]:
    """The passes, coarsest first, that search a `width` x `height` photo for faces from
    `pyramid.min_face` px up: the first at the coarsest decode (at most 1/4) whose short side is >=
    FIRST_SHORT_SIDE (a 12 MP photo at 1/4, a 720p frame at 1/2), for every face it can hold (>= face_lo
    px in it), then each finer decode for the smaller faces only, down to the coarsest decode in which
    `min_face` is still `face_lo` px (the full-size one, its finest level enlarged, when `min_face` is
    under `face_lo`). Pure."""
    short = min(width, height)
    first = max([r for r in REDUCTIONS if short / r >= FIRST_SHORT_SIDE and r <= MAX_FIRST], default=1)
    finest = min(first, max([r for r in REDUCTIONS if pyramid.min_face / r >= pyramid.face_lo], default=1))
    passes, r, top = [], first, None
    while True:
        low = pyramid.min_face if r <= finest else max(pyramid.min_face, pyramid.face_lo * r)
        passes.append(SearchPass(r, low, top))
        if r <= finest:
            return passes
        top, r = low * PASS_OVERLAP, r // 2


@dataclass(frozen=True)
class Level:
    """One network look: the photo decoded at 1/`reduction`, scaled by `scale`, bordered for close-ups
    when `pad`; `reach` is the widest face (full-size pixels) it can report, `face_top` in the level, and
    `smallest` the narrowest it is trusted to find, `face_lo` in the level."""

    reduction: int
    scale: float
    pad: bool
    reach: float
    smallest: float = 0.0


def plan_levels(width: int, height: int, pyramid: Pyramid) -> list[Level]:
    """Every level of every pass (`plan_passes`), coarsest first. Pure.

    Where a pass's finest level is enlarged (`face_lo` > its `min_face`), the photo at its own size is
    searched just before it: that look costs (min_face / face_lo)^2 of the enlarged one and settles any
    subject from REACH_MARGIN * face_lo px (a camera frame's 85 px face), so the enlarged level, the
    dearest of all, runs only for photos whose largest face is smaller than that."""
    out = []
    for step in plan_passes(width, height, pyramid):
        r = step.reduction
        w, h = -(-width // r), -(-height // r)
        top = None if step.max_face is None else step.max_face / r
        scales = pyramid_scales(h, w, replace(pyramid, min_face=step.min_face / r), top)
        if scales[-1] > 1.0 and (len(scales) == 1 or scales[-2] < 1.0):
            scales.insert(len(scales) - 1, 1.0)
        for k, scale in enumerate(scales):
            pad = step.max_face is None and k == 0
            out.append(Level(r, scale, pad, pyramid.face_top * r / scale, pyramid.face_lo * r / scale))
    return out


def subject_settled(faces: list[Face], reach: float, margin: float) -> bool:
    """Whether the subject `choose_face` would pick ("largest" policy) among `faces` can no longer change
    when finer levels add faces no wider than `reach` (those narrower than the levels searched so far
    are trusted to find: `Level.smallest`): the pick is larger than any of them, and scores within
    `margin` of 1, so no better-scoring newcomer can push it out of the candidates."""
    if not faces:
        return False
    best = max(f.score for f in faces)
    pick = max((f for f in faces if f.score >= best - margin), key=lambda f: f.area)
    return pick.score >= 1.0 - margin and pick.area >= (REACH_MARGIN * reach) ** 2


def spans(n: int, size: int, overlap: int) -> list[int]:
    """Starts of windows of `size` covering `n` pixels, evenly spread, neighbours sharing at least
    `overlap` pixels, so that anything up to `overlap` pixels long lies whole inside one window."""
    if n <= size:
        return [0]
    count = int(np.ceil((n - overlap) / max(size - overlap, 1)))
    return [round(i * (n - size) / (count - 1)) for i in range(count)] if count > 1 else [0]


def tiles(height: int, width: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners of `size` x `size` tiles covering a `height` x `width` image, neighbours sharing at
    least `overlap` pixels, so that any face up to `overlap` pixels lies whole inside one tile. For inputs
    of a fixed size (a TFLite file); an image no larger than a tile is one tile at (0, 0)."""
    return [(y, x) for y in spans(height, size, overlap) for x in spans(width, size, overlap)]


MAX_INPUT_PIXELS = 4_000_000
"""A level of more pixels (the finest, enlarged level of a 12 MP photo: 24 MP) runs in horizontal strips
of about this many pixels, so the network's working memory stays bounded whatever the photo's size."""


def strip_rows(height: int, width: int, overlap: int) -> int:
    """Rows per strip (a multiple of 32, at least `overlap` + 32) for a `height` x `width` input that
    takes any size; `height` itself when the whole input is within MAX_INPUT_PIXELS."""
    if height * width <= MAX_INPUT_PIXELS:
        return height
    return max(-(-(overlap + 1) // 32) * 32, MAX_INPUT_PIXELS // width // 32 * 32)


def merge(
    boxes: np.ndarray, scores: np.ndarray, iou: float, inside: float = 0.6, part: float = 0.5
) -> np.ndarray:
    """Indices kept when detections from several scales and tiles are merged, best score first.

    Plain NMS lets one face through twice: found at two scales, its two boxes differ in size and their IoU
    is low; and a face part (an eye, the mouth) that fired as a small face at a fine level, where the whole
    face is too large for the network, sits inside the face's box with a low IoU. Both made single-face
    close-ups report several faces. So, first, a box is a *part* and dropped when `inside` of its area lies
    in a box more than 1/`part` times wider, whatever their scores (a face does not hold a face half its
    width). Then greedy NMS by score drops boxes with IoU above `iou` or with `inside` of the smaller one's
    area within the better one (the same face at another scale)."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    iw = np.maximum(0.0, np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]))
    ih = np.maximum(0.0, np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]))
    inter = iw * ih
    within = inter / np.maximum(np.minimum(areas[:, None], areas[None]), 1e-9)
    smaller = areas[:, None] < (part**2) * areas[None]  # [i, j]: i is less than `part` times j's width
    is_part = ((within > inside) & smaller).any(axis=1)
    overlap = inter / np.maximum(areas[:, None] + areas[None] - inter, 1e-9)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if not is_part[i]]
    keep: list[int] = []
    for i in order:
        if all(overlap[i, k] <= iou and within[i, k] <= inside for k in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


@dataclass(frozen=True)
class Candidates:
    """Detections above the score threshold in image coordinates, before merging."""

    scores: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4)
    landmarks: np.ndarray  # (N, 5, 2)

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        return Candidates(
            np.concatenate([p.scores for p in parts] + [np.zeros(0, np.float32)]),
            np.concatenate([p.boxes for p in parts] + [np.zeros((0, 4), np.float32)]),
            np.concatenate([p.landmarks for p in parts] + [np.zeros((0, 5, 2), np.float32)]),
        )


def candidates(
    raw: np.ndarray, grid: np.ndarray, box: Letterbox, score_threshold: float, nms_iou: float, top_k: int = 50
) -> Candidates:
    """One input's raw output -> its best detections (NMS within the input) in image coordinates."""
    scores, boxes, landmarks = decode(raw, grid)
    idx = np.flatnonzero(scores >= score_threshold)
    idx = idx[np.argsort(-scores[idx], kind="stable")[: top_k * 4]]
    kept = idx[nms(boxes[idx], scores[idx], nms_iou)][:top_k]
    return Candidates(
        scores[kept].astype(np.float32),
        box.to_image(boxes[kept].reshape(-1, 2, 2)).reshape(-1, 4).astype(np.float32),
        box.to_image(landmarks[kept]).astype(np.float32),
    )


def _box4(values: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) as the four floats a `Face` box is."""
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1


def to_faces(found: Candidates, image_shape: tuple[int, int], order: np.ndarray) -> list[Face]:
    """`Face` records for the chosen candidates, boxes clipped to the image."""
    h, w = image_shape
    return [
        Face(
            box=_box4(np.clip(found.boxes[i], 0, [w, h, w, h])),
            landmarks=found.landmarks[i],
            score=float(found.scores[i]),
        )
        for i in order
    ]


def faces_from_output(
    raw: np.ndarray,
    grid: np.ndarray,
    box: Letterbox,
    score_threshold: float,
    nms_iou: float,
    image_shape: tuple[int, int],
    top_k: int = 50,
) -> list[Face]:
    """Decode one image's raw output into `Face` records in the image's own coordinates, best first."""
    scores, boxes, landmarks = decode(raw, grid)
    idx = np.flatnonzero(scores >= score_threshold)
    if idx.size == 0:
        return []
    idx = idx[np.argsort(-scores[idx], kind="stable")[: top_k * 4]]
    kept = idx[nms(boxes[idx], scores[idx], nms_iou)][:top_k]
    h, w = image_shape
    faces = []
    for i in kept:
        corners = box.to_image(boxes[i].reshape(2, 2)).ravel()
        corners = np.clip(corners, 0, [w, h, w, h])
        faces.append(
            Face(
                box=_box4(corners),
                landmarks=box.to_image(landmarks[i]),
                score=float(scores[i]),
            )
        )
    return faces


CONFIRM_CONTEXT = 2.0
"""A second look cuts a square this many times a face's longer side around it: the face then fills half of
the network's input (80 px of 160), the scale it is most sure at, with its surroundings in view."""
CONFIRM_IOU = 0.5


def look_again(
    image: np.ndarray, box: tuple[float, float, float, float], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A `size` x `size` crop centred on `box`, CONFIRM_CONTEXT times its longer side wide (the photo's edge
    pixels repeated where the square runs past it), and `box` in the crop's coordinates. Only the part
    inside the photo is resized, so a face filling a 12 MP photo costs no full-size canvas."""
    import cv2

    x1, y1, x2, y2 = box
    side = max(CONFIRM_CONTEXT * max(x2 - x1, y2 - y1), 1.0)
    x0, y0 = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    k = size / side
    h, w = image.shape[:2]
    xa, ya = int(np.clip(np.floor(x0), 0, w - 1)), int(np.clip(np.floor(y0), 0, h - 1))
    xb, yb = int(np.clip(np.ceil(x0 + side), xa + 1, w)), int(np.clip(np.ceil(y0 + side), ya + 1, h))
    part = image[ya:yb, xa:xb]
    pw, ph = max(1, round((xb - xa) * k)), max(1, round((yb - ya) * k))
    small = cv2.resize(part, (pw, ph), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    left, top = max(0, round((xa - x0) * k)), max(0, round((ya - y0) * k))
    right, bottom = max(0, size - left - pw), max(0, size - top - ph)
    crop = cv2.copyMakeBorder(small, top, bottom, left, right, cv2.BORDER_REPLICATE)[:size, :size]
    expected = (np.array(box, np.float32) - np.array([x0, y0, x0, y0], np.float32)) * np.float32(k)
    return np.ascontiguousarray(crop), expected


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1y1x2y2 boxes."""
    iw = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    ih = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    inter = iw * ih
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


FROM_CARD = "card"
"""`refiner=FROM_CARD`: the landmark refiner the detector's card names (beside the detector file)."""


class FaceDetector:
    """Tiny single-stage face detector with 5 landmarks, described by its model card.

    By default a photo of any size is searched over an image pyramid (`Pyramid`): faces from 40 px up to
    the whole short side, at every photo size from a camera frame to 12 MP, the coarsest level padded for
    close-ups, detections of all levels merged (`merge`) so a single face is reported once. A file that
    takes any input size (ONNX) runs each level as one input; a file with a fixed input (TFLite) runs it
    in overlapping tiles of the larger file its card names (`retry_model`, the 320 file for the 160 one).
    Each face's landmarks are then refined on a crop of the full-resolution image by the landmark refiner
    the card names (`squeezerface.landmarks`), unless `refiner` names another file or is None (the
    detector's own points, about 0.2 ms faster per face and less exact). The card also says how many
    refinement passes to make (each re-cuts the crop with the previous pass's points). Thresholds default
    to the card's `detection` settings.

    With `confirm` (the default) a face is reported only when the network finds it again, above the same
    threshold, on a second look (`look_again`: the face at half the input, with its surroundings). A
    texture, print or face part that fired at one scale of one level rarely does so twice, a face does: on
    the tuning frames this took precision at threshold 0.6 from 0.945 to 0.991 with every face kept.

    Photos no larger than twice the input (320 px) keep the single look below: on LFW's 192 px photos the
    pyramid (one level at 0.52, padded) left 27 of 7,701 photos without a face, the single look 6.

    An explicit `input_size` (a multiple of 32), or `retry_larger=False`, or `pyramid=None` gives the
    former single look instead: the photo letterboxed into one square input (how the converter measures
    each input size alone), and with `retry_larger` one more look at twice the size when nothing was
    found. A 160 input holds a whole 12 MP photo at 1/25 scale, where a 190 px face is 8 px: far below
    the ~56 px the network is trusted for (`Pyramid.face_lo`), which is why the pyramid is the default."""

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        input_size: int | None = None,
        score_threshold: float | None = None,
        nms_iou: float | None = None,
        verify: bool = True,
        refiner: str | Path | None = FROM_CARD,
        refiner_passes: int | None = None,
        retry_larger: bool = True,
        pyramid: Pyramid | None = Pyramid(),
        confirm: bool = True,
    ) -> None:
        self.path = model_path(str(model))
        self.card: ModelCard
        self.card, self._content = load_model(self.path, verify=verify)  # bytes checked: the engine's
        settings = self.card.training.get("detection", {})
        if refiner == FROM_CARD:
            named = settings.get("refiner")
            beside = self.path.parent / named if named else None
            refiner = beside if beside is not None and beside.is_file() else named
        passes = int(refiner_passes or settings.get("refiner_passes", 1))
        self.refiner = LandmarkRefiner(refiner, passes=passes, verify=verify) if refiner else None
        self.pyramid = pyramid if input_size is None and retry_larger else None
        self.input_size = int(input_size or self.card.input.size[0])
        self.score_threshold = float(
            score_threshold if score_threshold is not None else settings.get("score", 0.5)
        )
        self.nms_iou = float(nms_iou if nms_iou is not None else settings.get("nms_iou", 0.4))
        self.retry_larger = retry_larger
        self.confirm = confirm
        named = settings.get("retry_model")
        self._retry_path = self.path.parent / named if named else None
        self._retry_content: bytes | None = None
        if self._retry_path is not None and self._retry_path.is_file():
            _, self._retry_content = load_model(self._retry_path, verify=verify)  # checked like the main file
        self.backend: Backend | None = None
        self._retry: tuple[Backend, int] | None = None
        self._dynamic = False
        self._inputs: dict[tuple[int, int, str], tuple[InputSpec, np.ndarray]] = {}  # (h, w, layout) -> ...

    def prepare(self, threads: int = 1) -> FaceDetector:
        if self.backend is None:
            self.backend = open_backend(self.path, threads=threads, content=self._content)
            self._content = None  # the engine holds the model now
            fixed = self.backend.input.shape[2]
            if fixed is not None and fixed != self.input_size and self.backend.engine == "litert":
                self.input_size = int(fixed)  # a TFLite file has its input size baked in
            self._dynamic = fixed is None
            if fixed is not None and self._retry_path and self._retry_path.is_file():
                retry = open_backend(self._retry_path, threads=threads, content=self._retry_content)
                self._retry = (retry, int(retry.input.shape[2] or 2 * self.input_size))
            self._retry_content = None
            if self.refiner is not None:
                self.refiner.prepare(threads)
        return self

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best first (possibly empty), landmarks refined."""
        faces = self._network_faces(image)
        if self.refiner is None:
            return faces
        return [self.refiner.get(image, f) for f in faces]

    def _network_faces(self, image: np.ndarray) -> list[Face]:
        """The network's faces (unrefined): the pyramid for a photo over twice the input, else one look
        (and one more at twice the size when nothing was found)."""
        if self.pyramid is not None and max(image.shape[:2]) > 2 * self.input_size:
            return self.detect_pyramid(image)
        faces = self._looks(image)
        return self._confirmed(image, faces)

    def _looks(self, image: np.ndarray) -> list[Face]:
        """The single look at the input size, and one more at twice it when nothing was found."""
        faces = self.detect_at(image, self.input_size)
        if not faces and self.retry_larger and max(image.shape[:2]) > self.input_size:
            if self._dynamic:
                faces = self.detect_at(image, 2 * self.input_size)
            elif self._retry is not None:
                faces = self.detect_at(image, self._retry[1], self._retry[0])
        return faces

    def refine(self, photo: Photo, face: Face) -> Face:
        """`face` (full-size coordinates) with its landmarks refined on the finest decode read so far."""
        if self.refiner is None:
            return face
        r = photo.finest()
        image, scale = photo.at(r), photo.scale_of(r)
        return self.refiner.get(image, face.scaled(scale)).scaled(1.0 / scale)

    def describe(self) -> str:
        """How `detect` searches a photo, for reports."""
        p = self.pyramid
        if p is None:
            text = f"one look at {self.input_size}" + (
                ", retry at twice the size" if self.retry_larger else ""
            )
        else:
            text = (
                f"image pyramid: faces from {p.min_face:g} px, {p.face_lo:g}-{p.face_top:g} px per level, "
                f"step <= {p.step:g}, coarsest level padded by {p.pad:g}; merged with containment"
            )
        return text + ("; each face confirmed by a second look" if self.confirm else "")

    def detect_pyramid(self, image: np.ndarray) -> list[Face]:
        """The network's faces (unrefined) over the photo's pyramid levels (see `Pyramid`), merged."""
        assert self.pyramid is not None
        self.prepare()
        h, w = image.shape[:2]
        found = Candidates.concat(self._search_levels(image, pyramid_scales(h, w, self.pyramid), 1.0, True))
        order = merge(found.boxes, found.scores, self.nms_iou)[:50]
        return self._confirmed(image, to_faces(found, (h, w), order))

    def _confirmed(
        self,
        image: np.ndarray,
        faces: list[Face],
        scale: float = 1.0,
        seen: dict[tuple[int, ...], bool] | None = None,
    ) -> list[Face]:
        """The `faces` (coordinates `1 / scale` times `image`'s) that a second look at `image` finds again
        (see the class docstring); all of them without `confirm`. `seen` remembers boxes already looked
        at, for a search that re-merges the same faces level after level."""
        if not self.confirm:
            return faces
        seen = {} if seen is None else seen
        kept = []
        for face in faces:
            key = tuple(round(v) for v in face.box)
            if key not in seen:
                x1, y1, x2, y2 = (v * scale for v in face.box)
                crop, expected = look_again(image, (x1, y1, x2, y2), self.input_size)
                again = self.detect_at(crop, self.input_size)
                seen[key] = any(box_iou(np.asarray(f.box), expected) >= CONFIRM_IOU for f in again)
            if seen[key]:
                kept.append(face)
        return kept

    def detect_photo(
        self, photo: Photo, subject_margin: float | None = None, refine: bool = True
    ) -> list[Face]:
        """Faces in a `Photo`, best first, in its full-size coordinates, searched level by level from the
        coarsest (`plan_levels`): a 12 MP JPEG is read at 1/4 first, at 1/2 only for faces under ~340 px
        and at full size only for faces under ~170 px.

        With `subject_margin` (the "largest" policy's score margin), the search stops as soon as the
        subject is settled (`subject_settled`): the smaller faces the finer levels would add cannot change
        which face `choose_face` picks, so they are not searched for (and not listed). Without it, every
        level runs. Photos no larger than twice the input take `detect`'s single look, unchanged. With
        `refine=False` the landmarks are the network's (`refine` one face later: the subject)."""
        import cv2

        if self.pyramid is None or max(photo.width, photo.height) <= 2 * self.input_size:
            single = self._network_faces(photo.at(1))
            return [self.refine(photo, f) for f in single] if refine else single
        self.prepare()
        # The plan depends on the short side alone, so an EXIF turn found by the first decode leaves it as
        # it is; the photo's width and height are read only after that decode.
        levels = plan_levels(photo.width, photo.height, self.pyramid)
        parts: list[Candidates] = []
        faces: list[Face] = []
        seen: dict[tuple[int, ...], bool] = {}
        for i, level in enumerate(levels):
            image = photo.at(level.reduction)
            h, w = image.shape[:2]
            size = (max(1, round(w * level.scale)), max(1, round(h * level.scale)))
            view = image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            pad = round(self.pyramid.pad * min(size)) if level.pad else 0
            parts.append(self._search_level(view, size[0] / photo.width, pad))
            if subject_margin is None and i + 1 < len(levels):
                continue
            found = Candidates.concat(parts)
            order = merge(found.boxes, found.scores, self.nms_iou)[:50]
            finest = photo.finest()
            faces = to_faces(found, (photo.height, photo.width), order)
            faces = self._confirmed(photo.at(finest), faces, photo.scale_of(finest), seen)
            if i + 1 < len(levels) and subject_settled(faces, level.smallest, subject_margin or 0.0):
                break
        return [self.refine(photo, f) for f in faces] if refine else faces

    def _search_levels(
        self, image: np.ndarray, scales: list[float], full_per_pixel: float, pad_coarsest: bool
    ) -> list[Candidates]:
        """Candidates at each of `scales` (coarsest first) of `image`, in coordinates `full_per_pixel`
        times `image`'s. Levels are made finest first, each by area-averaging the previous one, so the
        image is read in full only once."""
        import cv2

        assert self.pyramid is not None
        h, w = image.shape[:2]
        parts: list[Candidates] = []
        level = image
        for k, scale in enumerate(reversed(scales)):
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            if size != (level.shape[1], level.shape[0]):
                level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            coarsest = pad_coarsest and k == len(scales) - 1
            pad = round(self.pyramid.pad * min(size)) if coarsest else 0  # the short side: a face fits in it
            parts.append(self._search_level(level, size[0] / (w * full_per_pixel), pad))
        return parts

    def _search_level(self, level: np.ndarray, scale: float, pad: int) -> Candidates:
        """One pyramid level, bordered by `pad` pixels: in one input where the file takes any size (ONNX;
        in overlapping strips beyond MAX_INPUT_PIXELS), else in tiles of the larger of the fixed-size files
        (TFLite 320 rather than 160)."""
        assert self.pyramid is not None  # levels exist only with a pyramid
        face = int(1.2 * self.pyramid.face_top)  # any face a level reports lies whole in one window
        lh, lw = level.shape[:2]
        if self._dynamic:
            backend = self.backend
            hh, ww = (-(-(n + 2 * pad) // 32) * 32 for n in (lh, lw))
            window = (strip_rows(hh, ww, face), ww)
            corners = [(y, 0) for y in spans(hh, window[0], face)]
        else:
            backend, size = self._retry if self._retry is not None else (self.backend, self.input_size)
            hh, ww = max(size, lh + 2 * pad), max(size, lw + 2 * pad)
            window = (size, size)
            corners = tiles(hh, ww, size, min(size // 2, face))
        canvas = np.zeros((hh, ww, 3), np.uint8)
        canvas[pad : pad + lh, pad : pad + lw] = level
        return Candidates.concat(
            [
                self._run(
                    canvas[y : y + window[0], x : x + window[1]],
                    Letterbox(scale, float(pad - x), float(pad - y)),
                    backend,
                )
                for y, x in corners
            ]
        )

    def _run(self, canvas: np.ndarray, box: Letterbox, backend: Backend | None) -> Candidates:
        """The network on one prepared input (a multiple of 32 or the file's fixed size)."""
        assert backend is not None
        spec, grid = self._input(canvas.shape[0], canvas.shape[1], backend.layout)
        raw = backend.run(spec.prepare(canvas))[0]
        return candidates(raw, grid, box, self.score_threshold, self.nms_iou)

    def _input(self, height: int, width: int, layout: str) -> tuple[InputSpec, np.ndarray]:
        """Input spec and location grid for one input shape, made once (a few shapes recur per photo size)."""
        key = (height, width, layout)
        if key not in self._inputs:
            if len(self._inputs) > 64:  # photos of many sizes: keep the cache bounded
                self._inputs.clear()
            spec = replace(self.card.input, size=(height, width), layout=layout)  # type: ignore[arg-type]
            self._inputs[key] = (spec, priors((height, width)))
        return self._inputs[key]

    def detect_at(self, image: np.ndarray, size: int, backend: Backend | None = None) -> list[Face]:
        """The network's faces (unrefined) with the image letterboxed into `size` x `size`."""
        self.prepare()
        backend = backend or self.backend
        assert backend is not None
        canvas, box = letterbox(image, size)
        spec, grid = self._input(size, size, backend.layout)
        raw = backend.run(spec.prepare(canvas))[0]
        shape = (image.shape[0], image.shape[1])
        return faces_from_output(raw, grid, box, self.score_threshold, self.nms_iou, shape)
