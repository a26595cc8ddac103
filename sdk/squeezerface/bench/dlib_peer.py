"""The peer every speed figure is compared with: dlib's face pipeline, staged as `face_recognition` runs it.

`face_recognition.face_encodings(image)[0]` is: the HOG frontal face detector upsampling once, dlib's
5-point shape predictor on the found box, and the ResNet 128-d descriptor computed on the 150x150 chip
dlib cuts from those 5 points (padding 0.25); two faces match when their Euclidean distance is at most
0.6. This class does exactly that with the same dlib objects, but exposes each step so the benchmark can
time detect, align (shape + chip) and embed separately, like our own pipeline's stages. Decoding uses
`squeezerface.load_image` for both pipelines (face_recognition decodes with PIL), so the decode stage is
the same code on both sides and the comparison is about the face work.

It needs the `teacher` extra (dlib-bin, face_recognition_models); without it the constructor raises
`EmbedderUnavailableError`, which the benchmark records as "peer not installed".
"""

from __future__ import annotations

import warnings

import numpy as np

from squeezerface.errors import EmbedderUnavailableError, NoFaceError
from squeezerface.imageio import ImageSource, load_image

MATCH_TOLERANCE = 0.6
"""face_recognition's default: same person when the descriptor distance is at most this."""


class DlibPipeline:
    """dlib HOG detector + 5-point shape predictor + ResNet descriptor, one step per method."""

    def __init__(self, upsample: int = 1, chip_size: int = 150, padding: float = 0.25) -> None:
        try:
            import dlib

            with warnings.catch_warnings():  # it imports the deprecated pkg_resources to find its files
                warnings.simplefilter("ignore")
                import face_recognition_models as frm
        except ImportError as exc:
            raise EmbedderUnavailableError(
                f"the dlib peer needs the 'teacher' extra (pip install 'squeezerface[teacher]'): {exc}",
                extra="teacher",
            ) from exc
        self._dlib = dlib
        self.upsample = int(upsample)
        self.chip_size = int(chip_size)
        self.padding = float(padding)
        self._detector = dlib.get_frontal_face_detector()
        self._sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    @property
    def uses_blas(self) -> bool:
        """Whether this dlib build calls a BLAS (and so may use several threads); dlib-bin does not."""
        return bool(getattr(self._dlib, "DLIB_USE_BLAS", False))

    def detect(self, rgb: np.ndarray) -> list:
        """HOG face boxes (dlib rectangles), the image upsampled `upsample` times as face_recognition does."""
        return list(self._detector(rgb, self.upsample))

    @staticmethod
    def largest(rects: list):
        """The largest box; face_recognition returns all of them, callers usually take one."""
        return max(rects, key=lambda r: r.width() * r.height())

    def rectangle(self, box: tuple[float, float, float, float]):
        """A dlib rectangle from (x1, y1, x2, y2), for a face whose box is assumed, not detected."""
        x1, y1, x2, y2 = (round(v) for v in box)
        return self._dlib.rectangle(x1, y1, x2, y2)

    def align(self, rgb: np.ndarray, rect) -> np.ndarray:
        """The 150x150 chip the descriptor takes: 5 landmarks on the box, then dlib's own alignment."""
        shape = self._sp5(rgb, rect)
        return np.asarray(self._dlib.get_face_chip(rgb, shape, size=self.chip_size, padding=self.padding))

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """The 128-d descriptor of one aligned chip (not normalised: face_recognition compares distances)."""
        return np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float32)

    @staticmethod
    def match(a: np.ndarray, b: np.ndarray, tolerance: float = MATCH_TOLERANCE) -> tuple[float, bool]:
        """(distance, same person) as face_recognition.compare_faces decides it."""
        distance = float(np.linalg.norm(a - b))
        return distance, distance <= tolerance

    def encode(self, image: ImageSource, source: str = "image") -> np.ndarray:
        """One photo's descriptor, the face_recognition way: decode, detect, take the largest face, 5-point
        shape, descriptor of the chip (computed inside dlib from the image and the shape)."""
        rgb = load_image(image)
        rects = self.detect(rgb)
        if not rects:
            raise NoFaceError(f"no face found in {source} (dlib HOG)")
        shape = self._sp5(rgb, self.largest(rects))
        return np.asarray(self._net.compute_face_descriptor(rgb, shape), dtype=np.float32)

    def verify(self, image_a: ImageSource, image_b: ImageSource) -> tuple[float, bool]:
        """End to end on two photos: (distance, same person)."""
        return self.match(self.encode(image_a, "image A"), self.encode(image_b, "image B"))
