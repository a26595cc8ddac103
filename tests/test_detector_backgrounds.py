"""Real backdrops for the detector's training canvases: unpacked from a git mirror without the class that
has people in it, drawn deterministically per seed, and used by `compose` as the canvas."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from pruning.detector.backgrounds import BackgroundPool, extract
from pruning.detector.compose import LabelledPhoto, compose


def _scene(path: Path, colour: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((150, 150, 3), colour, np.uint8)
    image[40:90, 60:120] = 255 - colour  # some structure, so crops differ
    cv2.imwrite(str(path), image)


@pytest.fixture()
def mirror(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    _scene(work / "datasets/seg_train/forest/1.jpg", 40)
    _scene(work / "datasets/seg_train/sea/2.jpg", 120)
    _scene(work / "datasets/seg_train/street/3.jpg", 200)
    _scene(work / "datasets/seg_test/forest/4.jpg", 80)
    (work / "README.md").write_text("scenes\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "scenes"], check=True)
    return work


def test_extract_takes_the_training_scenes_without_street(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "bg"
    assert extract(mirror, out) == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["forest/1.jpg", "sea/2.jpg"]


def test_pool_draws_are_square_and_a_function_of_the_seed(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "bg"
    extract(mirror, out)
    pool = BackgroundPool(out)
    draws = [pool.draw(160, np.random.default_rng(seed)) for seed in range(6)]
    assert all(d.shape == (160, 160, 3) and d.dtype == np.uint8 for d in draws)
    assert np.array_equal(draws[3], pool.draw(160, np.random.default_rng(3)))
    assert len({d.tobytes() for d in draws}) > 1


def test_an_empty_folder_says_where_backgrounds_come_from(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"pruning/detector/backgrounds\.py"):
        BackgroundPool(tmp_path)


def test_compose_paints_on_the_backdrop() -> None:
    backdrop = np.full((160, 160, 3), 77, np.uint8)
    negative = compose([], np.random.default_rng(0), size=160, negative=True, backdrop=backdrop)
    assert np.array_equal(backdrop, np.full((160, 160, 3), 77, np.uint8))  # the caller's array untouched
    assert abs(float(negative.image.mean()) - 77) < 60  # photometric jitter only, no synthetic texture
    assert float(negative.image.std()) < 15
    image = np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    lms = np.array([[[70, 80], [130, 80], [100, 110], [75, 140], [125, 140]]], np.float32)
    photo = LabelledPhoto(image, np.array([[50, 50, 150, 160]], np.float32), lms)
    sample = compose([photo], np.random.default_rng(2), size=160, backdrop=backdrop)
    assert sample.image.shape == (160, 160, 3)


def test_mosaics_fill_a_frame_of_any_size(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "bg"
    extract(mirror, out)
    pool = BackgroundPool(out)
    for width, height in ((640, 480), (1280, 720), (97, 61)):
        frame = pool.mosaic(width, height, np.random.default_rng(width))
        assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    first, again = (pool.mosaic(640, 480, np.random.default_rng(1)) for _ in range(2))
    assert np.array_equal(first, again)


class _FiresOnce:
    """A stand-in detector: one false detection per frame, at a fixed place."""

    def detect(self, image: np.ndarray) -> list:
        from squeezerface.face import Face

        return [Face(np.array([40, 40, 80, 80], np.float32), np.zeros((5, 2), np.float32), 0.7)]


def test_mining_keeps_each_false_detection_with_context(mirror: Path, tmp_path: Path) -> None:
    import json

    from pruning.detector.mine import crop_around, mine

    extract(mirror, tmp_path / "bg")
    summary = mine(_FiresOnce(), BackgroundPool(tmp_path / "bg"), 2, tmp_path / "hard", show=False)
    assert summary == {"frames": 4, "crops": 4, "per_frame": 1.0, "dropped_as_faces": 0}
    never = mine(_FiresOnce(), BackgroundPool(tmp_path / "bg"), 2, tmp_path / "none", is_face=lambda c: True)
    assert (never["crops"], never["dropped_as_faces"]) == (0, 4)
    index = json.loads((tmp_path / "hard" / "index.json").read_text())
    assert [c["score"] for c in index["crops"]] == [0.7] * 4
    crop = cv2.imread(str(tmp_path / "hard" / index["crops"][0]["file"]))
    assert crop.shape == (64, 64, 3)  # 40 px box * 1.6
    assert crop_around(np.zeros((100, 100, 3), np.uint8), np.array([0, 0, 3, 3], np.float32)) is None


def test_clutter_is_pasted_inside_the_canvas_without_labels() -> None:
    from pruning.detector.compose import paste_clutter

    canvas = np.zeros((160, 160, 3), np.uint8)
    crops = [np.full((40, 40, 3), 200, np.uint8)] * 3
    out = paste_clutter(canvas, crops, np.random.default_rng(0))
    assert out.shape == canvas.shape and (canvas == 0).all()  # a new array; the input untouched
    assert (out == 200).any()


def test_the_threshold_is_never_tuned_on_the_benchmark_s_frames(tmp_path: Path) -> None:
    import json

    from converters.convert_detector import choose_threshold_on_frames

    (tmp_path / "truth.json").write_text(json.dumps({"summary": {"split": "test"}, "frames": []}))
    with pytest.raises(SystemExit, match="not a training-split build"):
        choose_threshold_on_frames(tmp_path / "unused.onnx", tmp_path)


def test_a_grey_share_of_draws_is_grey_and_none_when_off(tmp_path: Path) -> None:
    image = np.zeros((150, 150, 3), np.uint8)
    image[..., 2] = 200  # pure red in BGR: any grey draw differs between channels no more
    _scene_path = tmp_path / "bg" / "red.png"
    _scene_path.parent.mkdir(parents=True)
    cv2.imwrite(str(_scene_path), image)
    draws = [BackgroundPool(tmp_path / "bg", grey=0.5).read(np.random.default_rng(s)) for s in range(40)]
    grey = [bool(np.ptp(d.astype(int), axis=2).max() == 0) for d in draws]
    assert 5 < sum(grey) < 35  # about half
    assert all(d[0, 0].tolist() == [200, 0, 0] for d, g in zip(draws, grey, strict=True) if not g)
    never = [BackgroundPool(tmp_path / "bg", grey=0.0).read(np.random.default_rng(s)) for s in range(10)]
    assert all(d[0, 0].tolist() == [200, 0, 0] for d in never)


def test_a_pool_draws_from_several_folders_given_as_one_comma_separated_string(tmp_path: Path) -> None:
    _scene(tmp_path / "scenes" / "a.jpg", 40)
    _scene(tmp_path / "print" / "b.jpg", 200)
    both = BackgroundPool(f"{tmp_path / 'scenes'},{tmp_path / 'print'}")
    assert sorted(p.name for p in both.paths) == ["a.jpg", "b.jpg"]
    assert both.grey == 0.0  # colour unless asked: the recorded trainings drew no grey backdrops
    assert len(BackgroundPool([tmp_path / "scenes"])) == 1


def test_a_missing_folder_among_several_is_named_not_skipped(tmp_path: Path) -> None:
    _scene(tmp_path / "scenes" / "a.jpg", 40)
    with pytest.raises(FileNotFoundError, match=r"no backdrop folder .*printd"):
        BackgroundPool(f"{tmp_path / 'scenes'},{tmp_path / 'printd'}")
