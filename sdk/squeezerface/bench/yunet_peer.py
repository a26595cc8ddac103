"""The peer detector a user choosing a face SDK today compares with: OpenCV's YuNet (`cv2.FaceDetectorYN`).

It finds faces and the same 5 points our detector gives (eyes, nose tip, mouth corners), so a peer pipeline
is YuNet + a public embedder (MobileFaceNet, EdgeFace-xxs) through the runtime's own alignment and matching
(`FaceVerifier(embedder_file, detector=YuNetDetector())`), and `squeezerface eval -O locator=yunet` measures
its accuracy through the same code path as ours. The photo is scaled so its longer side is at most
`max_side` (640, as OpenCV Zoo's demos feed camera frames) before YuNet sees it: run on a whole 12 MP photo
it would cost seconds, which no user does. The weights are not shipped (../shared/peers/yunet, MIT
upstream); the file is found as `yunet:PATH`, $SQUEEZERFACE_PEERS, or ../shared/peers/yunet.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from squeezerface.align import template_face
from squeezerface.errors import EmbedderUnavailableError
from squeezerface.face import Face

PEERS_ENV = "SQUEEZERFACE_PEERS"
DEFAULT_FILE = Path("..") / "shared" / "peers" / "yunet" / "face_detection_yunet_2026may.onnx"
SCORE_THRESHOLD = 0.9
"""OpenCV's default for FaceDetectorYN (and OpenCV Zoo's demo)."""
NMS_THRESHOLD = 0.3
MAX_SIDE = 640


def yunet_file(spec: str | Path | None = None) -> Path:
    """The YuNet ONNX file: `spec` ("yunet", "yunet:PATH" or a path), else $SQUEEZERFACE_PEERS/yunet/...,
    else ../shared/peers/yunet/...; EmbedderUnavailableError (exit 3 in the CLI) when it is not there."""
    text = str(spec or "yunet")
    if text.startswith("yunet:"):
        path = Path(text.split(":", 1)[1])
    elif text != "yunet":
        path = Path(text)
    elif os.environ.get(PEERS_ENV):
        path = Path(os.environ[PEERS_ENV]) / "yunet" / DEFAULT_FILE.name
    else:
        path = DEFAULT_FILE
    if not path.is_file():
        raise EmbedderUnavailableError(
            f"YuNet peer detector not found at {path} (give yunet:PATH or set ${PEERS_ENV})"
        )
    return path


class YuNetDetector:
    """`cv2.FaceDetectorYN` behind the runtime's detector interface: `detect(rgb) -> list[Face]`."""

    engine = "opencv-dnn"

    def __init__(
        self,
        model: str | Path | None = None,
        max_side: int = MAX_SIDE,
        score_threshold: float = SCORE_THRESHOLD,
        nms_threshold: float = NMS_THRESHOLD,
        threads: int = 1,
    ) -> None:
        import cv2

        self.path = yunet_file(model)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.max_side = int(max_side)
        self.score_threshold = float(score_threshold)
        cv2.setNumThreads(int(threads))
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a WARN about targets per load
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.path), "", (320, 320), self.score_threshold, float(nms_threshold), 5000
            )
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._size: tuple[int, int] = (320, 320)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best first, in its coordinates (YuNet sees it at most `max_side`)."""
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, rows = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if rows is None:
            return []
        rows = rows[np.argsort(-rows[:, 14], kind="stable")]
        faces = []
        for row in rows:
            x, y, bw, bh = (float(v) / scale for v in row[:4])
            points = row[4:14].reshape(5, 2) / scale  # right eye, left eye (of the person), nose, mouth
            faces.append(Face((x, y, x + bw, y + bh), points.astype(np.float32), float(row[14])))
        return faces

    def locate(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        """A face assumed in `box` (eval's no-face fallback): the template's points scaled into it."""
        return template_face(box)

    def fingerprint(self) -> str:
        """What decides this detector's output (eval's cache key)."""
        return f"yunet:{self.sha256[:12]}:max{self.max_side}:s{self.score_threshold:g}"

    def describe(self) -> str:
        return (
            f"YuNet ({self.path.name}), longer side at most {self.max_side} px, "
            f"score >= {self.score_threshold:g}"
        )
