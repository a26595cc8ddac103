"""Detection on real photo sizes: the pure parts (pyramid scales, tiles, merging across scales) and the
issue's two cases (a 95 px face in a 1080p photo, a 190 px face in a 12 MP photo), made from a held-out
face when ../shared/data is present."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from squeezerface.detect import (
    MAX_INPUT_PIXELS,
    Pyramid,
    merge,
    priors,
    pyramid_scales,
    spans,
    strip_rows,
    tiles,
)


@pytest.mark.parametrize("shape", [(480, 640), (720, 1280), (1080, 1920), (3024, 4032), (4032, 3024)])
def test_pyramid_levels_cover_every_face_from_min_face_to_the_short_side(shape) -> None:
    p = Pyramid()
    scales = pyramid_scales(*shape, p)
    assert scales == sorted(scales) and scales[-1] == pytest.approx(p.face_lo / p.min_face)
    assert scales[0] * min(shape) == pytest.approx(p.face_hi)  # the whole short side at the coarsest
    ratios = [b / a for a, b in itertools.pairwise(scales)]
    assert all(r <= p.step + 1e-9 for r in ratios)  # neighbouring levels' face ranges overlap
    covered = [(p.face_lo / s, p.face_top / s) for s in scales]
    for width in np.geomspace(p.min_face, min(shape), 50):
        assert any(lo <= width * (1 + 1e-9) and width <= hi * (1 + 1e-9) for lo, hi in covered)


def test_the_finest_level_enlarges_when_the_network_needs_faces_larger_than_min_face() -> None:
    p = Pyramid()
    assert p.face_lo > p.min_face  # 40 px faces are searched at face_lo (56) px
    assert pyramid_scales(120, 120, p) == [pytest.approx(100 / 120), pytest.approx(p.face_lo / p.min_face)]
    assert pyramid_scales(60, 80, p) == [1.0, pytest.approx(1.4)]
    # where face_lo is at most min_face, a small photo is one level and never enlarged
    low = Pyramid(face_lo=32.0)
    assert pyramid_scales(120, 120, low) == [pytest.approx(100 / 120)]
    assert pyramid_scales(192, 192, low) == [pytest.approx(100 / 192), pytest.approx(0.8)]
    assert pyramid_scales(60, 80, low) == [1.0]
    # a 12 MP photo searched whole: from the short side at 100 px to 40 px faces at 56, steps <= 3
    assert len(pyramid_scales(3024, 4032, p)) == 5


def test_face_top_is_where_a_level_must_still_find_a_face() -> None:
    assert Pyramid().face_top == pytest.approx(168.0)  # face_lo * step: a face first at 56 px is under 168
    assert Pyramid(face_lo=32.0).face_top == pytest.approx(100.0)  # face_hi: the whole short side


def test_tiles_cover_the_image_and_hold_any_face_up_to_the_overlap() -> None:
    h, w, size, overlap = 700, 1000, 320, 120
    corners = tiles(h, w, size, overlap)
    cover = np.zeros((h, w), bool)
    for y, x in corners:
        assert 0 <= y <= h - size and 0 <= x <= w - size
        cover[y : y + size, x : x + size] = True
    assert cover.all()
    rng = np.random.default_rng(0)
    for _ in range(200):  # any box of side <= overlap lies whole inside one tile
        s = int(rng.integers(10, overlap + 1))
        bx, by = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        assert any(x <= bx and bx + s <= x + size and y <= by and by + s <= y + size for y, x in corners)
    assert tiles(100, 150, 320, 120) == [(0, 0)]


def test_a_level_over_the_pixel_budget_runs_in_strips_that_hold_any_face_whole() -> None:
    face = int(1.2 * Pyramid().face_top)
    height, width = 4256, 5664  # a 12 MP photo's finest level, enlarged 1.4x and rounded up to 32
    rows = strip_rows(height, width, face)
    assert rows % 32 == 0 and face < rows < height and rows * width <= MAX_INPUT_PIXELS
    starts = spans(height, rows, face)
    assert starts[0] == 0 and starts[-1] + rows == height
    assert all(b - a <= rows - face for a, b in itertools.pairwise(starts))  # neighbours share >= face rows
    assert strip_rows(480, 640, face) == 480  # a camera frame's level is one input
    assert strip_rows(4000, 20000, face) == -(-(face + 1) // 32) * 32  # never thinner than a face


def test_merge_drops_a_second_scale_and_face_parts_but_keeps_separate_faces() -> None:
    boxes = np.array(
        [
            [100, 100, 300, 300],  # the face, best score
            [120, 110, 260, 250],  # the same face found at another scale (IoU ~0.49, inside it)
            [150, 150, 190, 190],  # an eye that fired as a small face
            [400, 100, 600, 300],  # another person
            [290, 120, 420, 250],  # a box straddling both: partly inside each, not a part of one
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.95, 0.85, 0.7], np.float32)
    assert merge(boxes, scores, iou=0.4).tolist() == [0, 3, 4]  # the eye goes although it scores best
    scores = np.array([0.9, 0.97, 0.5, 0.85, 0.7], np.float32)
    assert merge(boxes, scores, iou=0.4).tolist() == [1, 3, 4]  # the same face twice: the better score wins
    assert merge(boxes[3:4], scores[3:4], iou=0.4).tolist() == [0]
    assert merge(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4).tolist() == []


def test_priors_of_a_rectangular_input_follow_the_network_order() -> None:
    grid = priors((64, 96))
    assert len(grid) == 8 * 12 + 4 * 6 + 2 * 3
    np.testing.assert_allclose(grid[11], [92, 4, 8])  # row-major: the first row runs along the width
    np.testing.assert_allclose(grid[12], [4, 12, 8])
    np.testing.assert_allclose(priors((160, 160)), priors(160))


def _realsize():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "realsize.py"
    spec = importlib.util.spec_from_file_location("realsize", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["realsize"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _toy_source(seed: int):
    """A 120x140 'photo' with a labelled 'face' (a bright disc with dark eyes and mouth)."""
    import cv2

    rs = _realsize()
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (140, 120, 3)).astype(np.uint8)
    cv2.circle(img, (60, 70), 30, (220, 180, 150), -1)
    lms = np.array([[48, 60], [72, 60], [60, 72], [50, 84], [70, 84]], np.float32)
    for x, y in lms[[0, 1]]:
        cv2.circle(img, (int(x), int(y)), 3, (20, 20, 20), -1)
    return rs.SourceFace(img, np.array([30, 40, 90, 100], np.float32), lms, f"toy/{seed}.jpg")


def test_builder_places_faces_with_moved_truth_deterministically(tmp_path, monkeypatch) -> None:
    rs = _realsize()
    monkeypatch.setattr(rs, "RESOLUTIONS", ((320, 240), (640, 480)))
    sources = [_toy_source(i) for i in range(3)]
    images = [np.full((300, 400, 3), v, np.uint8) for v in (40, 90)]

    def backgrounds(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
        return rs.background(images, width, height, rng)

    cfg = rs.BuildConfig(out=tmp_path / "a", frames=6, closeups=3)
    summary = rs.write_frames(cfg, sources, backgrounds, 0.0)
    assert summary["frames"] == 2 * 9 and summary["faces"] >= 18
    truth = __import__("json").loads((cfg.out / "truth.json").read_text())
    for frame in truth["frames"]:
        assert (cfg.out / frame["file"]).is_file()
        short = min(frame["width"], frame["height"])
        boxes = np.array([f["box"] for f in frame["faces"]])
        for face in frame["faces"]:
            x1, _y1, x2, _y2 = face["box"]
            lms = np.array(face["landmarks"])
            assert (
                (lms >= 0).all()
                and (lms[:, 0] < frame["width"]).all()
                and (lms[:, 1] < frame["height"]).all()
            )
            assert x1 <= lms[:, 0].min() and lms[:, 0].max() <= x2  # the points moved with the face
            width = x2 - x1
            assert width >= 40 - 1e-3
            if frame["closeup"]:
                assert 0.5 * short - 1 <= width <= short + 1
        if len(boxes) > 1:  # faces never overlap
            iou = rs.iou_matrix(boxes, boxes)
            assert (iou[~np.eye(len(boxes), dtype=bool)] == 0).all()
    again = rs.BuildConfig(out=tmp_path / "b", frames=6, closeups=3)
    rs.write_frames(again, sources, backgrounds, 0.0)
    first = sorted(p.relative_to(cfg.out) for p in cfg.out.rglob("*.jpg"))
    assert first == sorted(p.relative_to(again.out) for p in again.out.rglob("*.jpg"))
    for rel in first:  # the same seed makes the same bytes
        assert (cfg.out / rel).read_bytes() == (again.out / rel).read_bytes()


def test_scoring_counts_recall_and_precision_per_cell() -> None:
    rs = _realsize()
    from squeezerface.face import Face

    lm = np.zeros((5, 2), np.float32)
    frame = {"width": 640, "height": 480, "closeup": False,
             "faces": [{"box": [10, 10, 60, 60]}, {"box": [200, 200, 400, 400]}]}  # fmt: skip
    found = [Face((12, 11, 61, 62), lm, 0.9), Face((500, 10, 540, 50), lm, 0.8)]
    cells: dict = {}
    assert rs.score_frame(frame, found, cells) == (1, 1)
    assert cells[("640x480", "40-64")].row()["recall"] == 1.0
    assert cells[("640x480", "128-256")].row()["recall"] == 0.0
    assert cells[("640x480", "all")].row() == {"faces": 2, "recall": 0.5, "detections": 2, "precision": 0.5}
    assert rs.size_bin(39) == "<40" and rs.size_bin(1500) == "1024-up"


def _held_out_face(shared_data):
    """A photo of a celeba_wild validation identity (never trained on) and its face as the runtime sees it."""
    from pruning.data import validation_identities
    from squeezerface.datasets import read_identity_folders
    from squeezerface.detect import FaceDetector
    from squeezerface.imageio import load_image

    photos = read_identity_folders(shared_data / "celeba_wild")
    held = validation_identities([int(p.identity) for p in photos], 40, 0)
    for p in photos:
        if int(p.identity) in held:
            image = load_image(p.path)
            faces = FaceDetector(retry_larger=False).detect(image)
            if len(faces) == 1:
                return image, faces[0]
    raise AssertionError("no held-out photo with one face")


@pytest.mark.data
@pytest.mark.parametrize(("size", "face_px"), [((1920, 1080), 95), ((4032, 3024), 190)])
def test_the_issues_photos_are_found(shared_data, size, face_px) -> None:
    """Issue 14: a 95 px face in a 1920x1080 photo and a 190 px face in a 12 MP photo gave "no face"."""
    rs = _realsize()
    from squeezerface.detect import FaceDetector

    image, face = _held_out_face(shared_data)
    src = rs.cut_source(image, np.array(face.box, np.float32), face.landmarks, "held-out")
    width, height = size
    photo = np.full((height, width, 3), 110, np.uint8)
    photo[:] = np.linspace(60, 170, width, dtype=np.uint8)[None, :, None]  # a plain gradient wall
    box, _, _ = rs.place(photo, src, face_px, (0.7 * width, 0.4 * height), 0.0)
    before = FaceDetector(pyramid=None).detect(photo)  # one look at 160, one retry at 320
    assert not any(rs.iou_matrix(np.array([f.box]), box[None])[0, 0] >= 0.5 for f in before)
    faces = FaceDetector().detect(photo)
    assert len(faces) == 1
    assert rs.iou_matrix(np.array([faces[0].box]), box[None])[0, 0] >= 0.5


@pytest.mark.data
def test_a_small_face_where_a_12mp_photos_strips_meet_is_found(shared_data) -> None:
    """A 48 px face in a 12 MP photo, across the rows that the first two strips of the finest level (1.4x,
    over MAX_INPUT_PIXELS) share: found once, by a strip that holds it whole."""
    rs = _realsize()
    from squeezerface.detect import FaceDetector

    image, face = _held_out_face(shared_data)
    src = rs.cut_source(image, np.array(face.box, np.float32), face.landmarks, "held-out")
    width, height = 4032, 3024
    photo = np.empty((height, width, 3), np.uint8)
    photo[:] = np.linspace(60, 170, width, dtype=np.uint8)[None, :, None]
    p = Pyramid()
    scale = p.face_lo / p.min_face
    hh, ww = (-(-round(n * scale) // 32) * 32 for n in (height, width))
    rows = strip_rows(hh, ww, int(1.2 * p.face_top))
    second = spans(hh, rows, int(1.2 * p.face_top))[1]
    y = (second + rows) / 2 / scale  # the middle of the shared band, in the photo's pixels
    box, _, _ = rs.place(photo, src, 48, (0.3 * width, y), 0.0)
    faces = FaceDetector().detect(photo)
    assert len(faces) == 1
    assert rs.iou_matrix(np.array([faces[0].box]), box[None])[0, 0] >= 0.5


def test_the_verdict_is_computed_from_the_table() -> None:
    rs = _realsize()

    def row(recall: float, precision: float) -> dict:
        return {"faces": 10, "recall": recall, "detections": 10, "precision": precision}

    cells = {"640x480|40-64": row(0.5, 1.0), "640x480|all": row(0.98, 0.99), "640x480|close-up": row(1, 1),
             "every|40-64": row(0.5, 1.0), "every|all": row(0.98, 0.99)}  # fmt: skip
    assert rs.verdict(cells).startswith("**Target met**")
    cells["640x480|all"] = row(0.9, 0.99)
    text = rs.verdict(cells)
    assert text.startswith("**Target missed**") and "640x480 all recall 0.900" in text
    assert "40-64 px 0.500" in text
