"""The dlib ResNet face embedder: our teacher and the peer every model is compared with.

dlib's `dlib_face_recognition_resnet_model_v1` (128-d, its authors report 99.38% on LFW) with the HOG
frontal face detector (or the MMOD CNN detector), as the `face_recognition` package uses it. Weights come
from `face_recognition_models` (public domain / CC0); install with the `teacher` extra.

Landmarks: the descriptor is computed from dlib's 5-point shape (its own chip alignment, exactly as
`face_recognition` does), while the `Face` record carries the standard 5 points (eye centres, nose tip,
mouth corners) derived from the 68-point predictor, which is what our own models align with.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np

from squeezerface.embedders.base import FaceEmbedder, l2_normalize
from squeezerface.errors import EmbedderUnavailableError
from squeezerface.face import Face

# 68-point indices -> standard 5 points (image-left eye, image-right eye, nose tip, mouth corners).
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT = 30, 48, 54


def five_points_from_68(points68: np.ndarray) -> np.ndarray:
    """Standard 5 landmarks from dlib's 68 (iBUG 300-W) points."""
    p = np.asarray(points68, dtype=np.float32).reshape(68, 2)
    return np.stack(
        [
            p[_LEFT_EYE].mean(axis=0),
            p[_RIGHT_EYE].mean(axis=0),
            p[_NOSE_TIP],
            p[_MOUTH_LEFT],
            p[_MOUTH_RIGHT],
        ]
    )


class DlibResNetEmbedder(FaceEmbedder):
    """dlib HOG/CNN detector + landmarks + ResNet 128-d descriptor, L2-normalised."""

    name = "dlib-resnet"
    version = "v1"
    embedding_size = 128

    def __init__(
        self,
        detector: Literal["hog", "cnn"] = "hog",
        upsample: int = 1,
        num_jitters: int = 0,
        padding: float = 0.25,
    ) -> None:
        try:
            import dlib

            with warnings.catch_warnings():  # it imports the deprecated pkg_resources to find its files
                warnings.simplefilter("ignore")
                import face_recognition_models as frm
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EmbedderUnavailableError(
                f"the dlib teacher needs the 'teacher' extra (pip install 'squeezerface[teacher]'): {exc}",
                extra="teacher",
            ) from exc
        if detector not in ("hog", "cnn"):
            raise ValueError(f"detector must be 'hog' or 'cnn', not {detector!r}")
        self._dlib = dlib
        self.detector_kind = detector
        self.upsample = int(upsample)
        self.num_jitters = int(num_jitters)
        self.padding = float(padding)
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        self._sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._sp68 = dlib.shape_predictor(frm.pose_predictor_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def config(self) -> dict:
        return {
            "detector": self.detector_kind,
            "upsample": self.upsample,
            "num_jitters": self.num_jitters,
            "padding": self.padding,
        }

    def _rect(self, box: Sequence[float]):
        x1, y1, x2, y2 = (round(v) for v in box)
        return self._dlib.rectangle(x1, y1, x2, y2)

    def _face(self, image: np.ndarray, rect, score: float, detected: bool) -> Face:
        shape = self._sp68(image, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        return Face(box=box, landmarks=five_points_from_68(points), score=score, detected=detected)

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        if self.detector_kind == "hog":
            rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
            found = list(zip(rects, scores, strict=True))
        else:
            found = [(d.rect, d.confidence) for d in self._detector(image, self.upsample)]
        return [self._face(image, rect, float(score), True) for rect, score in found]

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        image = np.ascontiguousarray(image)
        return self._face(image, self._rect(box), 1.0, False)

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        image = np.ascontiguousarray(image)
        if not faces:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        shapes = self._dlib.full_object_detections([self._sp5(image, self._rect(f.box)) for f in faces])
        descriptors = self._net.compute_face_descriptor(image, shapes, self.num_jitters, self.padding)
        return l2_normalize(np.array([np.asarray(d) for d in descriptors], dtype=np.float32))
