"""The photo path of verify (issue 17): large JPEGs read at libjpeg's reduced scales, searched level by level
from the coarsest, the search stopped once the subject is settled, faces aligned from the coarsest decode
that holds them at >= 76 px. Small photos (LFW) must come out exactly as before."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from squeezerface.detect import (
    FaceDetector,
    Level,
    Pyramid,
    plan_levels,
    plan_passes,
    pyramid_scales,
    subject_settled,
)
from squeezerface.embedders.base import SUBJECT_SCORE_MARGIN, choose_face
from squeezerface.face import Face
from squeezerface.photo import ALIGN_MIN_FACE, Photo
from squeezerface.thresholds import all_pairs
from squeezerface.verify import FaceVerifier

LM = np.zeros((5, 2), np.float32)


def _jpeg(rgb: np.ndarray, exif_rotate: bool = False) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    data = buf.tobytes()
    if not exif_rotate:
        return data
    # APP1 Exif, little endian, one IFD entry: Orientation (0x0112) = 6 (rotate 90 clockwise to view)
    entry = b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00"
    tiff = b"II*\x00\x08\x00\x00\x00" + b"\x01\x00" + entry + b"\x00" * 4
    app1 = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:]


def test_passes_read_a_12mp_photo_at_a_quarter_first_and_finer_only_for_smaller_faces() -> None:
    passes = plan_passes(4032, 3024, Pyramid())  # a 40 px face needs face_lo (56) px: the full-size decode
    assert [(p.reduction, p.min_face) for p in passes] == [(4, 224.0), (2, 112.0), (1, 40.0)]
    assert [p.max_face for p in passes] == [None, pytest.approx(336.0), pytest.approx(168.0)]
    assert [p.reduction for p in plan_passes(1920, 1080, Pyramid())] == [2, 1]
    assert [p.reduction for p in plan_passes(1280, 720, Pyramid())] == [2, 1]
    assert [p.reduction for p in plan_passes(6000, 4000, Pyramid())] == [4, 2, 1]
    assert [p.reduction for p in plan_passes(640, 480, Pyramid())] == [1]


def test_levels_run_coarsest_first_and_cover_every_face_size_from_40_px() -> None:
    for width, height in ((4032, 3024), (1920, 1080), (1280, 720), (640, 480)):
        levels = plan_levels(width, height, Pyramid())
        reaches = [lv.reach for lv in levels]
        assert reaches == sorted(reaches, reverse=True)  # coarsest first
        assert levels[0].pad and not any(lv.pad for lv in levels[1:])  # only the whole-photo level
        smallest = [lv.smallest for lv in levels]
        assert smallest == sorted(smallest, reverse=True)  # what the search so far is trusted for shrinks
        assert all(lv.smallest == pytest.approx(Pyramid().face_lo * lv.reduction / lv.scale) for lv in levels)
        assert smallest[-1] <= 40.0 + 1e-6  # the 40 px faces stay in reach
        for a, b in itertools.pairwise(levels):  # neighbouring levels' face ranges overlap
            assert Pyramid().face_lo * a.reduction / a.scale <= b.reach


def test_the_photo_path_looks_at_full_size_before_the_enlarged_level() -> None:
    levels = plan_levels(640, 480, Pyramid())
    assert [round(lv.scale, 3) for lv in levels] == [0.208, 0.54, 1.0, 1.4]
    assert levels[2].smallest == pytest.approx(Pyramid().face_lo)  # an 85 px subject settles there
    lv = plan_levels(640, 480, Pyramid(face_lo=32.0))  # nothing enlarged: nothing added
    assert [round(v.scale, 3) for v in lv] == [0.208, 0.408, 0.8]


def test_pyramid_scales_stop_at_max_face() -> None:
    # a pass at 1/4 of a 12 MP photo: its faces from 56 px (face_lo) up to 60 px are one level
    assert pyramid_scales(756, 1008, Pyramid(min_face=56.0), max_face=60.0) == [1.0]
    assert len(pyramid_scales(756, 1008, Pyramid(min_face=56.0))) > 1


def test_the_subject_is_settled_only_when_no_finer_face_can_change_the_pick() -> None:
    big = Face((0, 0, 600, 600), LM, 0.95)
    assert subject_settled([big], reach=400.0, margin=SUBJECT_SCORE_MARGIN)
    assert not subject_settled([big], reach=500.0, margin=SUBJECT_SCORE_MARGIN)  # 1.25 x 500 > 600
    doubtful = Face((0, 0, 600, 600), LM, 0.7)  # a newcomer scoring 0.96 would push it out
    assert not subject_settled([doubtful], reach=100.0, margin=SUBJECT_SCORE_MARGIN)
    assert not subject_settled([], reach=1.0, margin=SUBJECT_SCORE_MARGIN)


def test_a_photo_is_decoded_once_per_scale_and_turned_by_its_exif() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (600, 1000, 3), dtype=np.uint8)
    photo = Photo.open(_jpeg(rgb))
    assert (photo.width, photo.height) == (1000, 600) and photo.finest() == 1
    quarter = photo.at(4)
    assert quarter.shape == (150, 250, 3) and photo.at(4) is quarter and photo.finest() == 4
    assert photo.reduction_for(ALIGN_MIN_FACE * 4) == 4  # read already and big enough there
    assert photo.reduction_for(ALIGN_MIN_FACE * 2) == 2  # a finer decode to make
    assert photo.reduction_for(10.0) == 1
    turned = Photo.open(_jpeg(rgb, exif_rotate=True))
    assert turned.at(2).shape[:2] == (500, 300) and (turned.width, turned.height) == (600, 1000)
    array = Photo.from_array(rgb)
    assert array.at(2).shape == (300, 500, 3) and array.at(1) is rgb


@pytest.mark.data
def test_small_photos_take_exactly_the_former_path(shared_data) -> None:
    """LFW's 250x250 photos: detection, choice, alignment and embedding identical to detect + align."""
    verifier = FaceVerifier(quality=None)
    photos = [p for who in ("Colin_Powell", "Tony_Blair", "George_W_Bush")
              for p in sorted((shared_data / "lfw" / "images" / who).glob("*.jpg"))[:2]]  # fmt: skip
    for path in photos:
        name = path.name
        result = verifier.analyze(path)
        rgb = verifier.load(path)
        face = choose_face(verifier.detector.detect(rgb), 250, 250, "largest", name)
        expected = verifier.embedder.get_feat(verifier.embedder.align(rgb, face)[None])[0]
        np.testing.assert_array_equal(result.embedding, expected)


@pytest.mark.data
def test_a_12mp_jpeg_is_read_at_reduced_scale_and_its_face_still_found(shared_data) -> None:
    """A 560 px face in a 12 MP photo: found at 1/4 scale (no full decode), embedded close to the full-size
    path's embedding of the same face."""
    face_rgb = cv2.imread(str(shared_data / "lfw/images/Colin_Powell/Colin_Powell_0038.jpg"))[..., ::-1]
    canvas = np.full((3024, 4032, 3), 0, np.uint8)
    canvas[:] = np.linspace(50, 180, 4032, dtype=np.uint8)[None, :, None]
    canvas[1000:2250, 2000:3250] = cv2.resize(face_rgb, (1250, 1250), interpolation=cv2.INTER_CUBIC)
    data = _jpeg(np.ascontiguousarray(canvas))
    verifier = FaceVerifier(quality=None)
    photo = Photo.open(data)
    faces = verifier.detector.detect_photo(photo, SUBJECT_SCORE_MARGIN)
    assert faces and 1 not in photo._levels and 2 not in photo._levels  # read at 1/4 only
    result = verifier.analyze(data)
    rgb = verifier.load(data)
    full = verifier.embedder.get_feat(verifier.embedder.align(rgb, result.face)[None])[0]
    assert float(full @ result.embedding) > 0.97
    assert 2000 <= (result.face.box[0] + result.face.box[2]) / 2 <= 3250


def test_levels_record_is_plain_data() -> None:
    assert Level(4, 0.5, False, 800.0).reach == 800.0
    assert isinstance(FaceDetector.detect_photo.__doc__, str)


def test_all_pairs_gram_matrix_equals_the_pairwise_dot_products() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 512)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ident = rng.integers(0, 5, 40)
    scores, labels = all_pairs(emb, ident)
    i, j = np.triu_indices(40, k=1)
    np.testing.assert_allclose(scores, np.einsum("ij,ij->i", emb[i], emb[j]), atol=1e-6)
    assert (labels == (ident[i] == ident[j])).all() and scores.dtype == np.float64


@pytest.mark.data
def test_large_arrays_and_pngs_take_the_same_path_as_jpegs(shared_data) -> None:
    """A decoded array or a PNG of a large photo is reduced by an area resize instead of libjpeg, and finds
    the same face as the JPEG of the same picture."""
    face_rgb = cv2.imread(str(shared_data / "lfw/images/Colin_Powell/Colin_Powell_0038.jpg"))[..., ::-1]
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[300:800, 1100:1600] = cv2.resize(face_rgb, (500, 500), interpolation=cv2.INTER_CUBIC)
    verifier = FaceVerifier(quality=None)
    ok, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    assert ok
    results = [verifier.analyze(src) for src in (canvas, png.tobytes(), _jpeg(canvas))]
    centres = [((r.face.box[0] + r.face.box[2]) / 2, (r.face.box[1] + r.face.box[3]) / 2) for r in results]
    for cx, cy in centres:
        assert 1100 <= cx <= 1600 and 300 <= cy <= 800
    assert float(results[0].embedding @ results[1].embedding) > 0.999  # array and PNG: the same pixels
    assert float(results[0].embedding @ results[2].embedding) > 0.97  # JPEG: compression and DCT scaling
