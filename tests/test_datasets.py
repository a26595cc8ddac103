from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.datasets import (
    LabeledImage,
    Pair,
    PairList,
    make_pairs,
    read_flat_folder,
    read_identity_folders,
    read_pairs,
)
from squeezerface.errors import DatasetError, MissingImagesError, PairsFormatError

# 2 folds x 2: per fold, 2 same-person lines then 2 different-person lines.
VALID_LINES = [
    "2\t2",
    "Alice\t1\t2",
    "Bob\t1\t3",
    "Alice\t1\tBob\t2",
    "Carol\t1\tDave\t1",
    "Carol\t1\t2",
    "Dave\t2\t3",
    "Alice\t2\tCarol\t2",
    "Bob\t1\tDave\t3",
]
IMAGES = {"Alice": 2, "Bob": 3, "Carol": 2, "Dave": 3}


def _write_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


def _lfw(
    tmp_path: Path, lines: list[str] = VALID_LINES, images: dict[str, int] = IMAGES
) -> tuple[Path, Path]:
    root = tmp_path / "images"
    for name, count in IMAGES.items():
        for i in range(1, count + 1):
            _write_image(root / name / f"{name}_{i:04d}.jpg", i)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return root, pairs


# ---------------------------------------------------------------------------------------- read_pairs


def test_read_pairs_two_folds(tmp_path: Path) -> None:
    root, path = _lfw(tmp_path)
    pl = read_pairs(root, path)
    assert isinstance(pl, PairList)
    assert (len(pl), pl.folds, pl.per_fold, pl.root, pl.pairs_path) == (8, 2, 2, root, path)
    assert pl.pairs[0] == Pair(root / "Alice/Alice_0001.jpg", root / "Alice/Alice_0002.jpg", True, 0, 2)
    assert pl.pairs[2] == Pair(root / "Alice/Alice_0001.jpg", root / "Bob/Bob_0002.jpg", False, 0, 4)
    assert pl.pairs[-1] == Pair(root / "Bob/Bob_0001.jpg", root / "Dave/Dave_0003.jpg", False, 1, 9)
    assert pl.labels().dtype == bool
    assert pl.labels().tolist() == [True, True, False, False] * 2
    assert pl.fold_ids().tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    unique = pl.unique_paths()
    assert unique == sorted(set(unique)) and len(unique) == 10
    assert [p.line_no for p in pl] == list(range(2, 10))


def test_view1_header_spaces_crlf_bom_and_trailing_blank_lines(tmp_path: Path) -> None:
    lines = ["2", "Alice 1 2", "Bob  2 3", "Alice 1   Bob 1", "Carol 2 Dave 1", "", "  "]
    root, path = _lfw(tmp_path, lines)
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    pl = read_pairs(root, path)
    assert (len(pl), pl.folds, pl.per_fold) == (4, 1, 2)
    assert pl.labels().tolist() == [True, True, False, False]
    assert pl.pairs[1].path2 == root / "Bob" / "Bob_0003.jpg"


def _with(index: int, line: str | None) -> list[str]:
    """VALID_LINES with line `index` (0-based) replaced, or removed when line is None."""
    lines = list(VALID_LINES)
    if line is None:
        del lines[index]
    else:
        lines[index] = line
    return lines


@pytest.mark.parametrize(
    ("lines", "line_no", "reason"),
    [
        ([], 1, "header missing"),
        (["", *VALID_LINES[1:]], 1, "header missing"),
        (_with(0, "Alice 1 2"), 1, "invalid header"),
        (_with(0, "2 2 2"), 1, "invalid header"),
        (_with(0, "two 2"), 1, "invalid header"),
        (_with(0, "2 0"), 1, "counts must be >= 1"),
        (_with(1, "Alice 1"), 2, "wrong field count"),
        (_with(1, "Alice 1 2 3 4 5"), 2, "wrong field count"),
        (_with(3, "Alice 1 Bob"), 4, "same-person line (3 fields)"),
        (_with(3, "Alice 1 Bob 2 x"), 4, "wrong field count"),
        (_with(2, "Bob 1 Carol 1"), 3, "different-person line (4 fields)"),
        (_with(6, "Carol 1 Dave 1"), 7, "different-person line (4 fields)"),
        (_with(8, "Bob 1 3"), 9, "same-person line (3 fields)"),
        (_with(1, "Alice 1 x"), 2, "is not a non-negative integer"),
        (_with(1, "Alice +1 2"), 2, "is not a non-negative integer"),
        (_with(1, "Alice 1.0 2"), 2, "is not a non-negative integer"),
        (_with(4, "Carol 1 Dave -1"), 5, "is not a non-negative integer"),
        (_with(1, "Alice 0 2"), 2, "must be >= 1"),
        (_with(1, "Alice 2 2"), 2, "with itself"),
        (_with(3, "Alice 1 Alice 2"), 4, "names 'Alice' twice"),
        (_with(1, "../Alice 1 2"), 2, "is a path"),
        (_with(5, ""), 6, "blank line"),
        (_with(5, "   "), 6, "blank line"),
        (_with(8, None), 9, "file ends after 7 pairs but the header promises 8"),
        (VALID_LINES[:3], 4, "file ends after 2 pairs"),
        (VALID_LINES[:1], 2, "file ends after 0 pairs"),
        ([*VALID_LINES, "Bob 1 2"], 10, "extra line"),
        ([*VALID_LINES, "", "Bob 1 2"], 10, "extra line"),
    ],
)
def test_malformed_pairs(tmp_path: Path, lines: list[str], line_no: int, reason: str) -> None:
    root, path = _lfw(tmp_path, lines)
    with pytest.raises(PairsFormatError) as info:
        read_pairs(root, path)
    err = info.value
    assert reason in err.reason
    assert (err.path, err.line_no) == (str(path), line_no)
    expected_line = path.read_text().split("\n")[line_no - 1] if line_no <= len(lines) else ""
    assert err.line == expected_line
    assert f"{path}:{line_no}:" in str(err)


def test_missing_images_reported_once_with_count(tmp_path: Path) -> None:
    root, path = _lfw(tmp_path)
    (root / "Bob" / "Bob_0003.jpg").unlink()
    (root / "Dave" / "Dave_0001.jpg").unlink()
    with pytest.raises(MissingImagesError) as info:
        read_pairs(root, path)
    assert sorted(info.value.missing) == sorted(
        [str(root / "Bob" / "Bob_0003.jpg"), str(root / "Dave" / "Dave_0001.jpg")]
    )
    assert str(info.value).startswith("2 image(s)")
    assert len(read_pairs(root, path, check_files=False)) == 8


def test_missing_pairs_file_and_root(tmp_path: Path) -> None:
    root, path = _lfw(tmp_path)
    with pytest.raises(DatasetError, match=r"pairs file not found: .*nope\.txt"):
        read_pairs(root, tmp_path / "nope.txt")
    with pytest.raises(DatasetError, match="is a directory"):
        read_pairs(root, tmp_path)
    with pytest.raises(DatasetError, match="dataset root not found"):
        read_pairs(tmp_path / "no_root", path)
    assert len(read_pairs(tmp_path / "no_root", path, check_files=False)) == 8


# ---------------------------------------------------------------------------------------- folders


def test_read_identity_folders(tmp_path: Path) -> None:
    root = tmp_path / "ids"
    for rel in [
        "b/2.JPG",
        "b/1.jpg",
        "b/3.jpeg",
        "b/.hidden.jpg",
        "b/sub/4.jpg",
        "a/x.png",
        ".h/y.jpg",
        "z.jpg",
    ]:
        _write_image(root / rel)
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / "dir.jpg").mkdir()
    (root / "empty").mkdir()
    images = read_identity_folders(root)
    assert images == [
        LabeledImage(root / "a" / "x.png", "a"),
        LabeledImage(root / "b" / "1.jpg", "b"),
        LabeledImage(root / "b" / "2.JPG", "b"),
        LabeledImage(root / "b" / "3.jpeg", "b"),
    ]
    assert [i.identity for i in read_identity_folders(root, min_images_per_identity=2)] == ["b"] * 3
    assert read_identity_folders(str(root), extensions="png") == [LabeledImage(root / "a" / "x.png", "a")]
    with pytest.raises(DatasetError, match="no identity has >= 4"):
        read_identity_folders(root, min_images_per_identity=4)
    with pytest.raises(DatasetError, match="not found"):
        read_identity_folders(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no images"):
        read_identity_folders(root / "empty")
    with pytest.raises(ValueError):
        read_identity_folders(root, min_images_per_identity=0)


def test_read_flat_folder(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for rel in ["b.png", "a.JPEG", "c.jpg", ".hidden.jpg", "sub/d.jpg"]:
        _write_image(root / rel)
    (root / "readme.md").write_text("x")
    assert read_flat_folder(root) == [root / "a.JPEG", root / "b.png", root / "c.jpg"]
    assert read_flat_folder(root, extensions=(".PNG",)) == [root / "b.png"]
    with pytest.raises(DatasetError, match="no images"):
        read_flat_folder(root / "sub", extensions=(".png",))
    with pytest.raises(DatasetError, match="not found"):
        read_flat_folder(tmp_path / "missing")


# ---------------------------------------------------------------------------------------- make_pairs


def _synthetic(n_ids: int = 40, sizes: tuple[int, ...] = (1, 2, 3, 4, 6, 9)) -> list[LabeledImage]:
    """Fake paths are enough: make_pairs only names files."""
    return [
        LabeledImage(Path(f"/data/id{i:03d}/{j}.jpg"), f"id{i:03d}")
        for i in range(n_ids)
        for j in range(sizes[i % len(sizes)])
    ]


def _identity(path: Path) -> str:
    return path.parent.name


def test_make_pairs_balanced_and_valid() -> None:
    images = _synthetic()
    pairs = make_pairs(images, n_genuine=95, n_impostor=103, seed=7, folds=5)
    counts = Counter((fold, same) for _, _, same, fold in pairs)
    assert sorted(counts[(f, True)] for f in range(5)) == [19] * 5
    assert sorted(counts[(f, False)] for f in range(5)) == [20, 20, 21, 21, 21]
    keys = [frozenset((a, b)) for a, b, _, _ in pairs]
    assert len(set(keys)) == len(keys)  # no duplicate pairs
    fold_of: dict[str, set[int]] = {}
    for a, b, same, fold in pairs:
        assert a != b and str(a) < str(b)
        assert (_identity(a) == _identity(b)) is same
        for p in (a, b):
            fold_of.setdefault(_identity(p), set()).add(fold)
    assert all(len(folds) == 1 for folds in fold_of.values())  # no identity in two folds
    assert [f for _, _, _, f in pairs] == sorted(f for _, _, _, f in pairs)  # LFW order: fold by fold


def test_make_pairs_deterministic() -> None:
    images = _synthetic()
    first = make_pairs(images, 30, 30, seed=1, folds=3)
    assert make_pairs(list(reversed(images)), 30, 30, seed=1, folds=3) == first
    assert make_pairs(images, 30, 30, seed=2, folds=3) != first
    genuine = [p for p in first if p[2]]
    assert [p for p in make_pairs(images, 30, 10, seed=1, folds=3) if p[2]] == genuine


def test_make_pairs_round_robin_over_identities() -> None:
    images = [LabeledImage(Path(f"/d/big/{j}.jpg"), "big") for j in range(100)]
    images += [LabeledImage(Path(f"/d/s{i}/{j}.jpg"), f"s{i}") for i in range(20) for j in range(2)]
    pairs = make_pairs(images, n_genuine=21, n_impostor=0, seed=0, folds=1)
    per_identity = Counter(_identity(a) for a, _, _, _ in pairs)
    assert len(per_identity) == 21 and set(per_identity.values()) == {1}
    pairs = make_pairs(images, n_genuine=40, n_impostor=0, seed=0, folds=1)
    per_identity = Counter(_identity(a) for a, _, _, _ in pairs)
    assert per_identity["big"] == 20  # the 20 small identities are exhausted after one pair each


def test_make_pairs_exact_capacity_and_zero() -> None:
    images = _synthetic(3, (2,))  # 3 genuine pairs, 12 impostor pairs possible in one fold
    pairs = make_pairs(images, 3, 12, seed=0, folds=1)
    assert len({frozenset(p[:2]) for p in pairs}) == 15
    assert make_pairs(images, 0, 0, seed=0, folds=1) == []


@pytest.mark.parametrize(
    ("n_genuine", "n_impostor", "folds", "message"),
    [
        (4, 0, 1, "cannot make 4 genuine pairs .* at most 3 genuine"),
        (0, 13, 1, "cannot make 13 impostor pairs .* at most 12 impostor"),
        (4, 0, 4, r"fold 3 can give 0 but needs 1; at most 3 genuine"),  # more folds than identities
        (1, 1, 4, "cannot make 1 impostor pairs .* at most 0 impostor"),  # one identity per fold
    ],
)
def test_make_pairs_impossible(n_genuine: int, n_impostor: int, folds: int, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        make_pairs(_synthetic(3, (2,)), n_genuine, n_impostor, seed=0, folds=folds)


def test_make_pairs_bad_input() -> None:
    with pytest.raises(DatasetError, match="labelled both"):
        make_pairs([LabeledImage(Path("/x/1.jpg"), "a"), LabeledImage(Path("/x/1.jpg"), "b")], 0, 0, 0)
    with pytest.raises(DatasetError, match="needs images"):
        make_pairs([], 0, 0, 0)
    with pytest.raises(ValueError):
        make_pairs(_synthetic(), 1, 1, seed=0, folds=0)
    with pytest.raises(ValueError):
        make_pairs(_synthetic(), -1, 1, seed=0)


# ---------------------------------------------------------------------------------------- real LFW


@pytest.mark.data
def test_real_lfw_pairs(shared_data: Path) -> None:
    lfw = shared_data / "lfw"
    if not (lfw / "pairs.txt").is_file():
        pytest.skip(f"../shared/data/lfw not found: no {lfw / 'pairs.txt'}")
    pl = read_pairs(lfw / "images", lfw / "pairs.txt")
    assert (len(pl), pl.folds, pl.per_fold) == (6000, 10, 300)
    assert int(pl.labels().sum()) == 3000
    assert np.bincount(pl.fold_ids()).tolist() == [600] * 10
