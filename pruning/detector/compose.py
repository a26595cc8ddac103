"""Composed training images for the detector: teach scale, position, rotation and "no face here".

The labelled photos are small crops with one large centred face, which alone would teach the detector that
faces are big and in the middle. Each training canvas therefore pastes 1-4 labelled photos at random
scales (faces of `min_face`..`max_face` px, reduced with an area filter as a camera or the runtime's
pyramid would), places and rotations (+-30 degrees) onto a face-free
background (a real scene photo from `pruning.detector.backgrounds`, or synthetic textures and clutter),
with partial occlusion by later pastes, then applies colour,
blur, noise and JPEG. A share of canvases has no face at all. Faces cut by the canvas edge or
mostly covered by a later paste become *ignore* regions: no loss either way there.

No mirror images: the teacher's points are not mirror-symmetric, and a detector trained with mirrored
canvases carried per-point biases against them. The embedder was trained on faces aligned by exactly
those points, so the detector learns them as they are. Every draw comes from a generator seeded by
(seed, epoch, index), so a resumed run sees the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pruning.photometric import Photometric, photometric

CANVAS_JITTER = Photometric(
    gain=(0.6, 1.4),
    offset=30.0,
    saturation=(0.5, 1.5),
    noise=0.3,
    blur=0.25,
    blur_sigma=(0.5, 1.8),
    jpeg=0.25,
    jpeg_quality=(25, 90),
)


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    boxes: np.ndarray  # (F, 4) x1y1x2y2 of labelled faces
    landmarks: np.ndarray  # (F, 5, 2)
    ignore: np.ndarray  # (G, 4) boxes where no loss is taken


@dataclass(frozen=True)
class LabelledPhoto:
    image: np.ndarray
    boxes: np.ndarray  # (F, 4)
    landmarks: np.ndarray  # (F, 5, 2)


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """A face-free background: multi-scale coloured noise, gradients and random shapes."""
    img = np.zeros((size, size, 3), np.float32)
    for cells in rng.choice([2, 4, 8, 16, 32], size=3, replace=False):
        noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * rng.uniform(0.2, 0.6)
    img = img / max(img.max(), 1.0) * 255.0
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 8))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(canvas, p1, p2, colour, int(rng.choice([-1, 1, 2, 4])))
        elif kind == 1:
            cv2.line(canvas, p1, p2, colour, int(rng.integers(1, 6)))
        else:
            cv2.circle(canvas, p1, int(rng.integers(3, size // 3)), colour, int(rng.choice([-1, 2])))
    return canvas


def _box_area(b: np.ndarray) -> np.ndarray:
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of a (N, 4) boxes intersected with one box b (4,)."""
    w = np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0])
    h = np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1])
    return np.maximum(w, 0) * np.maximum(h, 0)


def shrink(photo: LabelledPhoto, scale: float) -> LabelledPhoto:
    """`photo` reduced by `scale` (< 1) with an area filter, its labels moved with it.

    A warp alone samples a reduced face without filtering: a 20 px face from a 100 px one kept one pixel
    in 25 and came out aliased, unlike any photo a camera or the runtime's area-filtered pyramid makes."""
    h, w = photo.image.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    image = cv2.resize(photo.image, (nw, nh), interpolation=cv2.INTER_AREA)
    fx, fy = nw / w, nh / h
    boxes = photo.boxes * np.array([fx, fy, fx, fy], np.float32)
    landmarks = photo.landmarks * np.array([fx, fy], np.float32)
    return LabelledPhoto(image, boxes.astype(np.float32), landmarks.astype(np.float32))


def paste(
    canvas: np.ndarray,
    photo: LabelledPhoto,
    face_px: float,
    centre: tuple[float, float],
    angle: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp `photo` so its first face is `face_px` wide, centred at `centre`, rotated by `angle` degrees;
    returns its faces' boxes and landmarks on the canvas and the quadrilateral it now covers (as a box).

    A rotated face keeps a square box of its own size around the rotated box centre (not the larger
    axis-aligned hull), so the box means "this face, this big" at any roll angle."""
    b0 = photo.boxes[0]
    scale = face_px / max(b0[2] - b0[0], 1.0)
    if scale < 0.8:  # reduce with a filter first; the warp then only turns and places
        photo = shrink(photo, scale)
        b0 = photo.boxes[0]
        scale = face_px / max(b0[2] - b0[0], 1.0)
    src_c = ((b0[0] + b0[2]) / 2, (b0[1] + b0[3]) / 2)
    m = cv2.getRotationMatrix2D(src_c, angle, scale)
    m[:, 2] += np.array(centre) - np.array(src_c)
    size = canvas.shape[0]
    h, w = photo.image.shape[:2]
    warped = cv2.warpAffine(photo.image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    mask = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, (size, size), flags=cv2.INTER_NEAREST)
    feather = cv2.GaussianBlur(mask, (0, 0), 1.0).astype(np.float32)[..., None] / 255.0
    canvas[:] = (canvas * (1 - feather) + warped * feather).astype(np.uint8)

    def apply(xy: np.ndarray) -> np.ndarray:
        return xy @ m[:, :2].T + m[:, 2]

    centres = apply(
        np.stack(
            [(photo.boxes[:, 0] + photo.boxes[:, 2]) / 2, (photo.boxes[:, 1] + photo.boxes[:, 3]) / 2], 1
        )
    )
    half = (
        np.stack([photo.boxes[:, 2] - photo.boxes[:, 0], photo.boxes[:, 3] - photo.boxes[:, 1]], 1)
        * scale
        / 2
    )
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    landmarks = apply(photo.landmarks.reshape(-1, 2)).reshape(-1, 5, 2)
    ys, xs = np.nonzero(mask)
    cover = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32) if xs.size else np.zeros(4)
    return boxes, landmarks, cover


def paste_clutter(canvas: np.ndarray, crops: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """`canvas` with each crop (a mined hard negative, `pruning.detector.mine`) pasted at a random place,
    its side log-uniform over the face sizes the canvas teaches (16-150 px at 160): no label, so it is
    background wherever it lands. The crop holds its detection with context, as a face paste holds its
    face with the photo around it."""
    out = canvas.copy()
    size = canvas.shape[0]
    for crop in crops:
        side = int(np.exp(rng.uniform(np.log(16 * 1.6), np.log(150 * 1.6))) * size / 160)
        side = max(8, min(side, size))
        interp = cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_LINEAR
        patch = cv2.resize(crop, (side, side), interpolation=interp)
        y, x = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
        out[y : y + side, x : x + side] = patch
    return out


def compose(
    photos: list[LabelledPhoto],
    rng: np.random.Generator,
    size: int = 160,
    min_face: float = 16.0,
    max_face: float = 150.0,
    negative: bool = False,
    backdrop: np.ndarray | None = None,
) -> Sample:
    """One training canvas (see the module docstring) on `backdrop` (`size` x `size` RGB; None: a
    synthetic texture)."""
    canvas = texture(size, rng) if backdrop is None else backdrop.copy()
    boxes: list[np.ndarray] = []
    lms: list[np.ndarray] = []
    ignore: list[np.ndarray] = []
    if not negative:
        for photo in photos:
            face_px = float(np.exp(rng.uniform(np.log(min_face), np.log(max_face))))
            centre = (float(rng.uniform(0.1, 0.9) * size), float(rng.uniform(0.1, 0.9) * size))
            angle = float(rng.uniform(-30, 30)) if rng.random() < 0.5 else float(rng.uniform(-8, 8))
            b, lm, cover = paste(canvas, photo, face_px, centre, angle)
            if boxes:  # a later paste occludes earlier faces: mostly covered ones become ignore regions
                prev = np.concatenate(boxes)
                covered = _intersection(prev, cover) / np.maximum(_box_area(prev), 1e-6)
                start = 0
                for k, chunk in enumerate(boxes):
                    n = len(chunk)
                    hidden = covered[start : start + n] > 0.4
                    if hidden.any():
                        ignore.append(chunk[hidden])
                        boxes[k], lms[k] = chunk[~hidden], lms[k][~hidden]
                    start += n
            boxes.append(b)
            lms.append(lm)
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    all_lms = np.concatenate(lms) if lms else np.zeros((0, 5, 2), np.float32)
    # faces cut by the canvas edge: keep when most of the box is inside, else ignore
    clipped = np.clip(all_boxes, 0, size)
    visible = _box_area(clipped) / np.maximum(_box_area(all_boxes), 1e-6)
    inside = (all_lms >= 0).all(axis=(1, 2)) & (all_lms < size).all(axis=(1, 2))
    keep = (visible > 0.7) & inside
    drop = ~keep & (visible > 0.05)
    ignore.append(clipped[drop])
    all_boxes, all_lms = all_boxes[keep], all_lms[keep]
    image = photometric(canvas, rng, CANVAS_JITTER)
    ig = np.concatenate(ignore).astype(np.float32) if ignore else np.zeros((0, 4), np.float32)
    return Sample(image, all_boxes.astype(np.float32), all_lms.astype(np.float32), ig)
