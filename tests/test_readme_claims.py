"""Five claims the README makes, each checked against the code that should make it true.

Each test first finds its claim in the README (so a reworded README fails here and the test is updated
with it), then checks the behaviour. Needs no face data: the demo photo (scikit-image, `dev` extra).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = " ".join((ROOT / "README.md").read_text().split())  # one line: claims wrap anywhere


def _claim(text: str) -> None:
    assert " ".join(text.split()) in README, f"the README no longer says: {text!r}"


def test_the_runtime_needs_only_numpy_opencv_and_onnxruntime() -> None:
    _claim("the runtime needs only numpy, OpenCV and onnxruntime (no torch)")
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in dependencies}
    assert names == {"numpy", "opencv-python-headless", "onnxruntime"}


def test_verifying_photos_never_imports_torch() -> None:
    """Beyond importing every module (test_package_layout): a whole verification, in a fresh process."""
    _claim("Install the runtime alone (numpy, OpenCV, onnxruntime: no torch, no dlib)")
    code = (
        "import sys, numpy as np\n"
        "from squeezerface import FaceVerifier\n"
        "v = FaceVerifier()\n"
        "v.embed(np.zeros((1, 112, 112, 3), np.uint8)); v.detect(np.zeros((64, 64, 3), np.uint8))\n"
        "tools = ('torch', 'dlib', 'pruning', 'converters')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in tools))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_verify_exit_status_0_same_1_different_2_bad_input(tmp_path: Path) -> None:
    _claim("exit status 0: same person, 1: different, 2: bad input")
    pytest.importorskip("skimage", reason="the demo photo comes with the 'demo' extra")
    from squeezerface.cli import main
    from squeezerface.demo import demo_images

    photos = demo_images()
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    import cv2

    cv2.imwrite(str(a), photos.original[..., ::-1])
    b.write_bytes(photos.recaptured_jpeg)
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((120, 100, 3), 128, np.uint8))
    assert main(["verify", str(a), str(a)]) == 0  # a photo and itself: score 1
    assert main(["verify", str(a), str(b), "--threshold", "1"]) == 1  # no second capture scores 1
    assert main(["verify", str(a), str(grey)]) == 2  # no face


def test_each_model_file_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _claim("The file is read once, and the engine is built from the very bytes that were hashed")
    import builtins
    import io

    from squeezerface.shipped import DEFAULT_EMBEDDER, model_path
    from squeezerface.verify import FaceVerifier

    folder, real_open, opened = model_path(DEFAULT_EMBEDDER).parent, io.open, []

    def counting_open(file, *args, **kwargs):  # every Python-level open, pathlib's included
        if Path(str(file)).parent == folder and Path(str(file)).suffix in (".onnx", ".tflite"):
            opened.append(Path(str(file)).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    FaceVerifier().embed(np.zeros((1, 112, 112, 3), np.uint8))
    assert len(opened) >= 3 and len(opened) == len(set(opened)), opened  # detector, refiner, embedder


def test_templates_are_sealed_with_aes_256_gcm_and_a_fresh_nonce_each(tmp_path: Path) -> None:
    _claim("sealed with AES-256-GCM (a random 96-bit nonce each")
    pytest.importorskip("cryptography", reason="encrypted galleries need the crypto extra")
    from squeezerface.crypto import TemplateCipher, generate_key, template_aad
    from squeezerface.gallery import Gallery, ModelInfo

    model, key = ModelInfo("toy", "1.0", 8), generate_key()
    vector = np.full(8, 8**-0.5, np.float32)
    with Gallery(tmp_path / "g.sqlite", model, key=key) as g:
        g.enroll("ada", np.stack([vector, vector]))
    db = sqlite3.connect(tmp_path / "g.sqlite")
    blobs = [row[0] for row in db.execute("SELECT embedding FROM templates")]
    db.close()
    assert [len(b) for b in blobs] == [1 + 12 + 4 * 8 + 16] * 2  # version, nonce, ciphertext, GCM tag
    assert blobs[0][1:13] != blobs[1][1:13] and vector.tobytes() not in b"".join(blobs)
    plain = TemplateCipher(key).decrypt(blobs[0], template_aad("ada", model.key))
    np.testing.assert_allclose(np.frombuffer(plain, "<f4"), vector, atol=1e-6)
