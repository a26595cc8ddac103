"""The photos a benchmark times: the user's, two LFW photos, scikit-image's astronaut, or a synthetic frame.

Photos stay encoded until the timed decode stage, so a spec names where the bytes come from rather than
holding pixels, and travels to a worker process as JSON. Each fallback says what it costs: without a face
in the frame there is no end-to-end figure, and the report's note says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LFW_PHOTOS = ("Colin_Powell/Colin_Powell_0038.jpg", "Colin_Powell/Colin_Powell_0040.jpg")
"""The two photos the committed figures time (one person, one face each, 250x250 as LFW ships them)."""
SYNTHETIC_SIZE = (480, 640)
"""(height, width) of the face-free stand-in image used when no photo is given: a VGA camera frame."""


@dataclass(frozen=True)
class ImageSpec:
    """A photo to time: a file, or the seeded synthetic face-free frame (when no photo is available)."""

    kind: str  # "file" | "astronaut" (seed 1: mirrored) | "synthetic"
    path: str | None = None
    seed: int = 0

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else f"{self.kind}-{self.seed}"


def synthetic_jpeg(seed: int = 0, size: tuple[int, int] = SYNTHETIC_SIZE) -> bytes:
    """A seeded, face-free VGA JPEG (smooth gradients, blobs and noise, so the decoder and detector do
    realistic work). Detect times on it are for an image without faces: the landmark refiner never runs."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], axis=-1)
    for _ in range(12):  # axis-aligned boxes: texture for the detector, nothing face-like (no blobs)
        x0, y0 = int(rng.uniform(0, w - 40)), int(rng.uniform(0, h - 40))
        bw, bh = int(rng.uniform(20, 160)), int(rng.uniform(20, 160))
        image[y0 : y0 + bh, x0 : x0 + bw] = rng.uniform(0, 255, 3).astype(np.float32)
    image += rng.normal(0, 8, image.shape).astype(np.float32)
    ok, data = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8)[..., ::-1])
    assert ok
    return data.tobytes()


def astronaut_jpeg(mirrored: bool = False) -> bytes:
    """scikit-image's public-domain astronaut photo (Eileen Collins, NASA; 512x512, one face) as JPEG
    quality 95, or its mirror image: a real face any machine with scikit-image (the `demo` extra) has."""
    import cv2
    from skimage import data

    rgb = data.astronaut()[..., :3]
    if mirrored:
        rgb = rgb[:, ::-1]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def image_bytes(spec: ImageSpec) -> bytes:
    """The encoded bytes of a photo to time (decode is a timed stage, so photos stay encoded until then)."""
    if spec.kind == "file" and spec.path:
        return Path(spec.path).read_bytes()
    if spec.kind == "astronaut":
        return astronaut_jpeg(mirrored=spec.seed == 1)
    return synthetic_jpeg(spec.seed)


def default_images(
    user: Sequence[str | Path] = (), lfw_root: Path | None = None
) -> tuple[list[ImageSpec], str]:
    """The two photos to time and a note on where they come from: the user's (--image, one given twice if
    only one), else two LFW photos when ../shared/data is there, else scikit-image's astronaut when it is
    installed, else the synthetic face-free frame."""
    if user:
        paths = [str(Path(p)) for p in user][:2]
        if len(paths) == 1:
            paths.append(paths[0])
        return [ImageSpec("file", p) for p in paths], "photos given with --image"
    roots = (
        [lfw_root]
        if lfw_root
        else [
            # beside a source checkout: this file is <checkout>/sdk/squeezerface/bench/images.py
            Path(__file__).resolve().parents[4] / "shared" / "data" / "lfw" / "images",
            Path.cwd().parent / "shared" / "data" / "lfw" / "images",
        ]
    )
    for root in roots:
        found = [root / p for p in LFW_PHOTOS]
        if all(p.is_file() for p in found):
            note = f"two LFW photos of one person, 250x250 JPEG ({', '.join(LFW_PHOTOS)})"
            return [ImageSpec("file", str(p)) for p in found], note
    from importlib.util import find_spec

    if find_spec("skimage") is not None:
        note = (
            "scikit-image's public-domain astronaut photo (512x512, JPEG quality 95) and its mirror image "
            "(no photo given, no LFW data here)"
        )
        return [ImageSpec("astronaut", seed=0), ImageSpec("astronaut", seed=1)], note
    return (
        [ImageSpec("synthetic", seed=0), ImageSpec("synthetic", seed=1)],
        "no photo given, no LFW data and no scikit-image here: a synthetic face-free 640x480 JPEG. detect is "
        "timed on an image without faces (no landmark refinement), align/embed on a centred assumed face, "
        "and end_to_end is skipped: pass --image A.jpg --image B.jpg (one face each), or pip install "
        "'squeezerface[demo]' for the astronaut photo, to get end-to-end figures",
    )
