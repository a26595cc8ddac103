"""The runtime API end to end on real photos: every image input kind, typed errors, the quality gate, the
backend option, offline operation, and LFW rates at the default operating point against the model card."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_OK, main
from squeezerface.errors import (
    FaceDtypeError,
    FaceInputError,
    ImageDecodeError,
    LowQualityError,
    ModelFileError,
    MultipleFacesError,
    NoFaceError,
    SqueezerfaceError,
)
from squeezerface.face import Face
from squeezerface.imageio import load_image
from squeezerface.quality import FaceQuality, QualityThresholds
from squeezerface.verify import DEFAULT_QUALITY, FaceVerifier, Match


@pytest.fixture(scope="module")
def verifier() -> FaceVerifier:
    return FaceVerifier(threads=1)


def _lfw_photo(shared: Path, name: str, index: int) -> Path:
    return shared / "lfw" / "images" / name / f"{name}_{index:04d}.jpg"


@pytest.fixture
def bush(shared_data: Path) -> Path:
    return _lfw_photo(shared_data, "George_W_Bush", 7)


@pytest.fixture
def powell(shared_data: Path) -> Path:
    return _lfw_photo(shared_data, "Colin_Powell", 38)


def _tiny(photo: Path, scale: float = 0.36) -> np.ndarray:
    """The photo shrunk to `scale` on a grey canvas of the original size: eyes about 14 px apart, a face
    of about 36 px, under the detector's 40 px floor yet still found (at 0.3, a 28 px face, the detector
    trained with a third round of hard negatives scores 0.61, under its 0.7 threshold: no face)."""
    rgb = load_image(photo)
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full_like(rgb, 127)
    y, x = (rgb.shape[0] - small.shape[0]) // 2, (rgb.shape[1] - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def _exif_rotated_jpeg(rgb: np.ndarray) -> bytes:
    """A JPEG whose pixels are the photo turned 90 degrees anticlockwise, with EXIF orientation 6 ("rotate
    90 degrees clockwise to display"): a reader that honours EXIF shows it upright, one that does not shows
    it on its side."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(buf, "JPEG", exif=exif, quality=95)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- API shape


@pytest.mark.data
def test_detect_align_embed_compare_verify(verifier: FaceVerifier, bush: Path, powell: Path) -> None:
    faces = verifier.detect(bush)
    assert faces and all(isinstance(f, Face) for f in faces)
    face = faces[0]
    assert isinstance(face.quality, FaceQuality) and face.quality.ok
    assert face.quality.sharpness is not None and face.quality.iod > 30

    aligned = verifier.align(bush, face)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8

    one = verifier.embed_one(bush)
    assert one.shape == (verifier.embedder.embedding_size,) and one.dtype == np.float32
    assert verifier.embed(bush).shape == (1, verifier.embedder.embedding_size)  # always (N, D)
    assert np.linalg.norm(one) == pytest.approx(1.0, abs=1e-5)
    # batched: aligned faces (N, 112, 112, 3) -> (N, D), the same vectors as one image at a time
    other = verifier.align(powell, verifier.detect(powell)[0])
    batch = verifier.embed(np.stack([aligned, other, aligned]))
    assert batch.shape == (3, verifier.embedder.embedding_size)
    np.testing.assert_allclose(batch[0], one, atol=1e-6)
    np.testing.assert_allclose(batch[2], one, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # an image with the faces to embed
    np.testing.assert_allclose(verifier.embed(bush, faces=faces[:1]), one[None], atol=1e-6)
    assert verifier.embed(bush, faces=[]).shape == (0, verifier.embedder.embedding_size)
    assert verifier.subject(bush).quality == face.quality

    same = verifier.verify(bush, bush)
    assert isinstance(same, Match) and same.accepted and same.score > 0.99
    assert same.operating_point == "far_1e-03"
    assert same.threshold == pytest.approx(verifier.embedder.card.threshold("far_1e-3"))
    assert verifier.compare(one, batch[1]).score == pytest.approx(float(one @ batch[1]), abs=1e-6)
    strict = verifier.verify(bush, powell, threshold=0.999)
    assert not strict.accepted and strict.operating_point == "explicit" and strict.threshold == 0.999
    assert verifier.verify(bush, powell, far="eer").operating_point == "eer"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="policy"):
        FaceVerifier(policy="smallest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        FaceVerifier(backend="tensorrt")
    with pytest.raises(TypeError, match="quality"):
        FaceVerifier(quality={"min_iod": 3})  # type: ignore[arg-type]
    with pytest.raises(ModelFileError, match="not a litert model"):
        FaceVerifier(embedder="squeezerfacenet-980k-int8.onnx", backend="litert")
    with pytest.raises(ModelFileError, match="not a onnxruntime model"):
        FaceVerifier(detector="tinyface-160-int8.tflite", backend="onnx")
    assert FaceVerifier().engines == ("onnxruntime", "onnxruntime")


@pytest.mark.data
def test_litert_backend_gives_the_same_decisions(verifier: FaceVerifier, bush: Path, powell: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="LiteRT is an extra: pip install 'squeezerface[tflite]'")
    lite = FaceVerifier(backend="litert", threads=1)
    assert lite.engines == ("litert", "litert")
    assert lite.embedder.path.suffix == ".tflite" and lite.detector.path.suffix == ".tflite"
    assert float(lite.embed_one(bush) @ verifier.embed_one(bush)) > 0.95
    assert lite.verify(bush, bush).accepted and not lite.verify(bush, powell).accepted


# --------------------------------------------------------------------------------------------- input kinds


@pytest.mark.data
def test_every_input_kind_gives_the_same_face(verifier: FaceVerifier, bush: Path, tmp_path: Path) -> None:
    ref = verifier.embed_one(bush)
    rgb = load_image(bush)
    exact = {
        "path str": str(bush),
        "path": bush,
        "bytes": bush.read_bytes(),
        "bytearray": bytearray(bush.read_bytes()),
        "numpy RGB": rgb,
        "numpy RGBA": np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]),
        "numpy uint16": rgb.astype(np.uint16) * 257,
    }
    for kind, source in exact.items():
        assert len(verifier.detect(source)) >= 1, kind
        np.testing.assert_allclose(verifier.embed_one(source), ref, atol=1e-6, err_msg=kind)

    # the same pixels as BGR (what cv2.imread gives), told so: the same embedding
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_allclose(verifier.embed_one(bgr, channel_order="BGR"), ref, atol=1e-5)
    assert verifier.verify(bgr, bush, channel_order="BGR").score > 0.9999
    assert len(verifier.detect(bgr, channel_order="BGR")) >= 1

    # files: 16-bit PNG written by OpenCV, RGBA PNG, greyscale PNG
    png16 = tmp_path / "face16.png"
    cv2.imwrite(str(png16), bgr.astype(np.uint16) * 257)
    np.testing.assert_allclose(verifier.embed_one(png16), ref, atol=1e-6)
    rgba = tmp_path / "face_rgba.png"
    cv2.imwrite(str(rgba), np.dstack([bgr, np.full(rgb.shape[:2], 99, np.uint8)]))
    np.testing.assert_allclose(verifier.embed_one(rgba), ref, atol=1e-6)
    grey = tmp_path / "face_grey.png"
    cv2.imwrite(str(grey), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    grey_vec = verifier.embed_one(grey)
    assert float(grey_vec @ ref) > 0.9  # colour is lost, the person is not
    np.testing.assert_allclose(verifier.embed_one(load_image(grey)[:, :, 0]), grey_vec, atol=1e-6)


@pytest.mark.data
def test_pil_images(verifier: FaceVerifier, bush: Path) -> None:
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    ref = verifier.embed_one(bush)
    rgb = load_image(bush)
    np.testing.assert_allclose(verifier.embed_one(Image.fromarray(rgb)), ref, atol=1e-6)
    with Image.open(bush) as opened:  # Pillow's JPEG decoder, not OpenCV's
        assert float(verifier.embed_one(opened) @ ref) > 0.99
    rgba = Image.fromarray(rgb).convert("RGBA")
    np.testing.assert_allclose(verifier.embed_one(rgba), ref, atol=1e-6)
    grey = Image.fromarray(rgb).convert("L")
    assert float(verifier.embed_one(grey) @ ref) > 0.9
    assert len(verifier.detect(Image.fromarray(rgb).convert("P"))) >= 1
    assert len(verifier.detect(Image.fromarray(rgb).convert("CMYK"))) >= 1
    sixteen = Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257)
    assert sixteen.mode == "I;16"
    assert float(verifier.embed_one(sixteen) @ verifier.embed_one(rgb[:, :, 1])) > 0.9999


@pytest.mark.data
def test_exif_rotated_jpeg_comes_upright(verifier: FaceVerifier, bush: Path) -> None:
    rgb = load_image(bush)
    data = _exif_rotated_jpeg(rgb)
    ref = verifier.embed_one(bush)
    upright = load_image(data)
    assert upright.shape == rgb.shape
    faces = verifier.detect(data)
    assert faces and faces[0].quality is not None and abs(faces[0].quality.roll) < 20
    assert float(verifier.embed_one(data) @ ref) > 0.9
    # the same file through PIL: exif_transpose applied
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.size == (rgb.shape[0], rgb.shape[1])  # stored on its side
        assert float(verifier.embed_one(opened) @ ref) > 0.9


def test_channel_order_is_checked() -> None:
    with pytest.raises(ValueError, match="channel_order"):
        load_image(np.zeros((4, 4, 3), np.uint8), channel_order="GBR")  # type: ignore[arg-type]
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue in BGR order
    assert load_image(bgr, channel_order="BGR")[0, 0].tolist() == [0, 0, 255]
    assert load_image(bgr)[0, 0].tolist() == [255, 0, 0]
    bgra = np.dstack([bgr, np.full((2, 2), 7, np.uint8)])
    assert load_image(bgra, channel_order="BGR")[0, 0].tolist() == [0, 0, 255]


def test_pil_modes_without_a_face() -> None:
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    rgb = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    for mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I"):
        out = load_image(Image.fromarray(rgb).convert(mode))
        assert out.shape == (6, 8, 3) and out.dtype == np.uint8 and out.flags.writeable, mode
    assert load_image(Image.fromarray(rgb))[2, 3].tolist() == rgb[2, 3].tolist()
    assert (
        load_image(Image.fromarray(rgb).convert("I")).tolist()
        == load_image(Image.fromarray(rgb).convert("L")).tolist()
    )
    with pytest.raises(ImageDecodeError, match="over the cap"):
        load_image(Image.fromarray(rgb), max_pixels=47)
    with pytest.raises(ImageDecodeError, match=r"\[0, 1\]"):
        load_image(Image.fromarray(rgb[:, :, 0].astype(np.float32) * 2))  # mode F, not in [0, 1]


# --------------------------------------------------------------------------------------------- typed errors


@pytest.mark.data
def test_typed_errors(verifier: FaceVerifier, bush: Path, powell: Path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot decode image"):
        verifier.verify(b"\xff\xd8\xff\xe0 this is not really a jpeg", bush)
    with pytest.raises(ImageDecodeError):
        verifier.detect(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(NoFaceError, match="no face found"):
        verifier.verify(np.full((192, 192, 3), 128, np.uint8), bush)

    two = np.hstack([load_image(bush), load_image(powell)])
    assert len(verifier.detect(two)) == 2
    with pytest.raises(MultipleFacesError, match="2 faces found") as many:
        FaceVerifier(policy="error").verify(two, bush)
    assert many.value.count == 2
    picked = verifier.embed_one(two)  # "largest": one of the two, not an error
    # (0.96, not 1: the wide image is shrunk twice as much into the detector's input, so its landmarks
    # are a little less exact than in the single photo)
    assert max(float(picked @ verifier.embed_one(bush)), float(picked @ verifier.embed_one(powell))) > 0.9

    with pytest.raises(FaceDtypeError, match="uint8"):
        verifier.embed(np.zeros((2, 112, 112, 3), np.float32))
    with pytest.raises(FaceInputError, match="112"):
        verifier.embed(np.zeros((2, 64, 64, 3), np.uint8))
    for error in (ImageDecodeError, NoFaceError, MultipleFacesError, LowQualityError, FaceDtypeError):
        assert issubclass(error, SqueezerfaceError)


@pytest.mark.data
def test_quality_gate_refuses_a_tiny_face(verifier: FaceVerifier, bush: Path) -> None:
    tiny = _tiny(bush)
    faces = verifier.detect(tiny)  # detection reports quality, never refuses
    assert len(faces) == 1 and faces[0].quality is not None and not faces[0].quality.ok
    with pytest.raises(LowQualityError, match="fails the quality gate") as low:
        verifier.verify(tiny, bush)
    assert any("too small" in reason for reason in low.value.reasons)
    assert low.value.quality.iod < DEFAULT_QUALITY.min_iod
    # the gate's thresholds are the verifier's; None turns it off
    lenient = FaceVerifier(quality=QualityThresholds(min_iod=8.0, min_face_size=16.0))
    assert lenient.verify(tiny, bush).score > 0.5
    ungated = FaceVerifier(quality=None)
    assert ungated.verify(tiny, bush).score > 0.5
    assert not ungated.detect(tiny)[0].quality.ok  # still measured against the defaults

    blurred = cv2.GaussianBlur(load_image(bush), (0, 0), 3.0)
    with pytest.raises(LowQualityError) as soft:
        verifier.embed_one(blurred, "blurred.jpg")
    assert soft.value.reasons[0].startswith("face too blurred") and "blurred.jpg" in str(soft.value)


@pytest.mark.data
def test_cli_quality_gate(
    bush: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), cv2.cvtColor(_tiny(bush), cv2.COLOR_RGB2BGR))
    assert main(["verify", str(tiny), str(bush)]) == EXIT_BAD_INPUT
    assert "fails the quality gate: face too small" in capsys.readouterr().err
    assert main(["verify", str(tiny), str(bush), "--no-quality-gate", "--threshold", "0.3"]) == EXIT_OK

    db = tmp_path / "g.sqlite"
    assert main(["enroll", "--db", str(db), "Bush", str(bush), str(tiny)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "quality gate" in err and "nothing enrolled: 1 of 2" in err and not db.exists()
    assert main(["enroll", "--db", str(db), "Bush", str(bush), str(tiny), "--no-quality-gate"]) == EXIT_OK
    capsys.readouterr()
    assert main(["identify", "--db", str(db), str(tiny)]) == EXIT_BAD_INPUT
    assert "quality gate" in capsys.readouterr().err
    assert main(["identify", "--db", str(db), str(tiny), "--no-quality-gate", "--threshold", "0.3"]) == 0


# --------------------------------------------------------------------------------------------- offline

_OFFLINE = textwrap.dedent(
    """
    import socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import numpy as np
    from squeezerface.gallery import Gallery, ModelInfo
    from squeezerface.verify import FaceVerifier

    a, b, c, db = sys.argv[1:5]
    verifier = FaceVerifier()
    assert verifier.verify(a, b).accepted, "two photos of one person"
    assert not verifier.verify(a, c).accepted, "photos of two people"
    with Gallery(db, ModelInfo.from_card(verifier.embedder.card)) as gallery:
        gallery.enroll("first", verifier.embed(a))
        gallery.enroll("second", verifier.embed_one(c))
        best = gallery.identify(verifier.embed_one(b), threshold=verifier.threshold().value)[0]
    assert best.name == "first" and best.accepted, best
    print("OK")
    """
)


@pytest.mark.data
def test_works_with_networking_disabled(shared_data: Path, tmp_path: Path) -> None:
    a = _lfw_photo(shared_data, "George_W_Bush", 7)
    b = _lfw_photo(shared_data, "George_W_Bush", 238)  # cosine 0.87 to the first, threshold 0.76
    c = _lfw_photo(shared_data, "Colin_Powell", 38)
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE, str(a), str(b), str(c), str(tmp_path / "g.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"


def test_public_names_are_lazy() -> None:
    code = (
        "import sys, squeezerface as s\n"
        "heavy = lambda: sorted(m for m in ('torch', 'cv2', 'onnxruntime', 'PIL') if m in sys.modules)\n"
        "assert heavy() == [], heavy()\n"
        "assert s.FaceVerifier.__name__ == 'FaceVerifier' and s.Match and s.Gallery\n"
        "assert {'FaceVerifier', 'Match', 'Gallery', 'LowQualityError', 'load_image'} <= set(s.__all__)\n"
        "from squeezerface import *\n"
        "print('OK')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "OK", done.stderr


# --------------------------------------------------------------------------------------------- LFW rates

GENUINE_SAMPLE = IMPOSTOR_SAMPLE = 1000
SAMPLE_SEED = 20_240_601
ALPHA = 1e-3
"""Probability that the test fails although the promise holds (for each of the FAR and TAR checks)."""


def binomial_upper_limit(n: int, p: float, alpha: float) -> int:
    """The smallest k with P(X > k) <= alpha for X ~ Binomial(n, p): more than k successes in n trials is
    evidence (at level alpha) that the rate is above p."""
    cdf, k = 0.0, 0
    while True:
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if 1.0 - cdf <= alpha:
            return k
        k += 1


def test_binomial_upper_limit() -> None:
    assert binomial_upper_limit(300, 1e-3, 1e-3) == 3  # P(X > 3) = 2.6e-4, P(X > 2) = 3.6e-3
    assert binomial_upper_limit(1000, 1e-3, 1e-3) == 5  # P(X > 5) = 5.9e-4, P(X > 4) = 3.6e-3
    assert binomial_upper_limit(3000, 1e-3, 1e-3) == 10
    assert binomial_upper_limit(10, 0.5, 0.5) == 5


@pytest.mark.data
@pytest.mark.slow
def test_lfw_rates_at_the_default_operating_point(shared_data: Path) -> None:
    """What `squeezerface verify` decides at its default operating point on a fixed sample of LFW pairs.

    The embedder issue's promise, checked on 1,000 same-person and 1,000 different-person pairs (seeded):
    at least 95 % of same-person pairs accepted and at most 0.3 % of different-person pairs (3 of 1,000).
    The default threshold is the card's far_1e-03 point, calibrated on held-out celeba_wild + Pins
    identities (never LFW). The FAR promise of that point is also checked statistically: more than
    `binomial_upper_limit(n, 1e-3, ALPHA)` false accepts (5 of 1,000) would refute FAR 1e-3 at level ALPHA,
    so the 0.3 % bound is the stricter one. Photos rejected (no face, or the quality gate) count as not
    accepted and are reported; at most 5 % of the sampled pairs may be lost that way.
    """
    from squeezerface.datasets import read_pairs

    lfw = shared_data / "lfw"
    pairs = read_pairs(lfw / "images", lfw / "pairs.txt")
    rng = np.random.default_rng(SAMPLE_SEED)
    genuine = [p for p in pairs if p.same]
    impostor = [p for p in pairs if not p.same]
    sample = [genuine[i] for i in rng.choice(len(genuine), GENUINE_SAMPLE, replace=False)]
    sample += [impostor[i] for i in rng.choice(len(impostor), IMPOSTOR_SAMPLE, replace=False)]

    verifier = FaceVerifier(threads=1)
    card = verifier.embedder.card
    assert card.calibration is not None
    point = card.calibration.point("far_1e-3")

    accepted: Counter[bool] = Counter()
    rejected: Counter[tuple[bool, str]] = Counter()
    for pair in sample:
        try:
            match = verifier.verify(pair.path1, pair.path2)
        except (NoFaceError, LowQualityError) as exc:
            rejected[(pair.same, type(exc).__name__)] += 1
            continue
        assert match.operating_point == "far_1e-03" and match.threshold == point.threshold
        accepted[pair.same] += match.accepted

    far = accepted[False] / IMPOSTOR_SAMPLE
    tar = accepted[True] / GENUINE_SAMPLE
    far_limit = binomial_upper_limit(IMPOSTOR_SAMPLE, 1e-3, ALPHA)
    tar_floor = point.tar - 3 * math.sqrt(point.tar * (1 - point.tar) / GENUINE_SAMPLE)
    summary = (
        f"LFW sample {GENUINE_SAMPLE}+{IMPOSTOR_SAMPLE} pairs at threshold {point.threshold:.4f}: "
        f"TAR {tar:.3f} (card, celeba_wild: {point.tar:.3f}; floor {tar_floor:.3f}), "
        f"FAR {far:.4f} ({accepted[False]} false accepts, at most {far_limit} allowed), "
        f"rejected {dict(rejected)}"
    )
    print(summary)
    assert accepted[False] <= min(far_limit, 0.003 * IMPOSTOR_SAMPLE), summary
    assert tar >= max(tar_floor, 0.95), summary
    assert sum(rejected.values()) <= 0.05 * len(sample), summary


def test_a_doubtful_detection_is_not_taken_for_the_subject_because_it_is_larger() -> None:
    from squeezerface.errors import MultipleFacesError
    from squeezerface.face import Face
    from squeezerface.verify import choose_face

    points = np.array([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], np.float32)
    clear = Face((0, 0, 30, 30), points, score=0.97)
    doubtful = Face((40, 40, 140, 140), points + 60, score=0.61)
    bystander = Face((40, 40, 140, 140), points + 60, score=0.9)
    assert choose_face([clear, doubtful], 200, 200, "largest", "x") is clear
    assert choose_face([clear, doubtful], 200, 200, "error", "x") is clear
    assert choose_face([clear, bystander], 200, 200, "largest", "x") is bystander
    with pytest.raises(MultipleFacesError):
        choose_face([clear, bystander], 200, 200, "error", "x")
