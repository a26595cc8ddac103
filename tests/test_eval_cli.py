"""The eval command end to end on a tiny synthetic LFW-style set (fake embedder), and on real LFW photos
with the dlib teacher where ../shared/data is present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_OK, main

FAKE = "fakes:make_colour_embedder"
PEOPLE = {"Ann": (200, 40, 40), "Ben": (40, 200, 40), "Cid": (40, 40, 200), "Dee": (200, 200, 40)}


def _synthetic_lfw(tmp_path: Path) -> tuple[Path, Path]:
    """4 people x 3 photos of a noisy base colour; Dee_0003 has the fake's 'no face' mark."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name, colour in PEOPLE.items():
        for i in range(1, 4):
            img = np.clip(np.array(colour) + rng.normal(0, 12, (40, 40, 3)), 1, 255).astype(np.uint8)
            if (name, i) == ("Dee", 3):
                img[:8, :8] = 0
            (root / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name / f"{name}_{i:04d}.jpg"), img[..., ::-1])
    lines = [
        "2\t3",
        "Ann\t1\t2",
        "Ben\t1\t2",
        "Cid\t1\t3",
        "Ann\t1\tBen\t1",
        "Cid\t2\tDee\t1",
        "Ben\t3\tCid\t1",
        "Dee\t1\t3",
        "Ann\t2\t3",
        "Ben\t2\t3",
        "Dee\t2\tAnn\t3",
        "Ben\t2\tDee\t3",
        "Cid\t3\tAnn\t1",
    ]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return root, pairs


def _eval_args(root: Path, pairs: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--root",
        str(root),
        "--pairs",
        str(pairs),
        "--embedder",
        FAKE,
        "--out",
        str(out),
        "--name",
        "run",
        "--cache",
        str(cache),
        "--quiet",
        "--no-quality-gate",  # 40-px colour patches: the app's gate would refuse every one
        *extra,
    ]


def test_eval_writes_report_and_second_run_is_served_from_cache(tmp_path, capsys):
    root, pairs = _synthetic_lfw(tmp_path)
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    assert main(_eval_args(root, pairs, out, cache, "--workers", "1")) == EXIT_OK
    record = json.loads((out / "run.json").read_text())
    for key in (
        "accuracy_mean",
        "accuracy_std",
        "eer",
        "tar_at_far",
        "no_face_count",
        "pairs",
        "command",
        "auc",
    ):
        assert key in record
    assert record["pairs"] == 12 and record["genuine_pairs"] == 6
    assert record["accuracy_mean"] == 1.0  # colours separate the synthetic people perfectly
    assert record["no_face_count"] == 1 and record["no_face_images"] == ["Dee/Dee_0003.jpg"]
    assert record["no_face_pairs"] == 2
    assert record["misclassified_pairs"]["count"] == 0
    assert record["tar_at_far"]["1e-04"]["measurable"] is False
    assert record["command"].startswith("squeezerface eval --root")
    assert record["computed_images"] == 12 and record["cached_images"] == 0
    for suffix in (".md", "_roc.png", "_det.png"):
        assert (out / f"run{suffix}").stat().st_size > 0
    assert (out / "run_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not measurable" in (out / "run.md").read_text()

    assert main(_eval_args(root, pairs, out, cache, "--workers", "1")) == EXIT_OK
    again = json.loads((out / "run.json").read_text())
    assert again["computed_images"] == 0 and again["cached_images"] == 12
    assert again["accuracy_mean"] == record["accuracy_mean"] and again["eer"] == record["eer"]


def test_eval_in_two_worker_processes_matches_one(tmp_path):
    root, pairs = _synthetic_lfw(tmp_path)
    assert main(_eval_args(root, pairs, tmp_path / "a", tmp_path / "a.sqlite", "--workers", "1")) == 0
    assert main(_eval_args(root, pairs, tmp_path / "b", tmp_path / "b.sqlite", "--workers", "2")) == 0
    a = json.loads((tmp_path / "a" / "run.json").read_text())
    b = json.loads((tmp_path / "b" / "run.json").read_text())
    assert a["auc"] == b["auc"] and a["fold_thresholds"] == b["fold_thresholds"]


def test_fallback_disabled_refuses_no_face_photos_and_lists_them(tmp_path):
    """As the app refuses a photo without a face: it is listed, and its pairs are left out and counted."""
    root, pairs = _synthetic_lfw(tmp_path)
    args = _eval_args(
        root, pairs, tmp_path / "o", tmp_path / "c.sqlite", "--workers", "1", "--fallback-box", "0"
    )
    assert main(args) == EXIT_OK
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert list(record["refused_images"]) == ["Dee/Dee_0003.jpg"] and record["refused_count"] == 1
    assert record["pairs_dropped"] == 2 and record["pairs"] == 10 and record["no_face_count"] == 0


def test_corrupt_photo_is_named_and_the_rest_are_kept(tmp_path, capsys):
    root, pairs = _synthetic_lfw(tmp_path)
    (root / "Ben" / "Ben_0002.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    cache = tmp_path / "c.sqlite"
    assert main(_eval_args(root, pairs, tmp_path / "o", cache, "--workers", "1")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Ben_0002.jpg" in err and "1 photo(s)" in err
    from squeezerface.batch import FacePathOptions, cache_fingerprint
    from squeezerface.cache import EmbeddingCache
    from squeezerface.embedders.base import build_embedder

    key = cache_fingerprint(build_embedder(FAKE), FacePathOptions("largest"))  # eval's defaults, no gate
    assert key.startswith("colour@test[bias=0.0]|policy=largest;fallback=box=0.5;gate=off")
    with EmbeddingCache(cache, key) as c:
        assert len(c) == 11  # every readable photo was embedded and kept


def test_missing_images_and_bad_pairs_lines_exit_2(tmp_path, capsys):
    root, pairs = _synthetic_lfw(tmp_path)
    (root / "Ann" / "Ann_0002.jpg").unlink()
    assert main(_eval_args(root, pairs, tmp_path / "o", tmp_path / "c.sqlite")) == EXIT_BAD_INPUT
    assert "Ann_0002.jpg" in capsys.readouterr().err
    pairs.write_text("2\t3\nAnn\tone\t2\n")
    assert main(_eval_args(root, pairs, tmp_path / "o", tmp_path / "c.sqlite")) == EXIT_BAD_INPUT
    assert ":2:" in capsys.readouterr().err


def test_help_explains_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--pairs" in text and "fallback" in text and "example:" in text


@pytest.mark.data
def test_dlib_teacher_on_a_few_real_lfw_pairs(shared_data, tmp_path):
    pytest.importorskip("dlib", reason="the dlib teacher needs the 'teacher' extra")
    lfw = shared_data / "lfw"
    lines = (lfw / "pairs.txt").read_text().splitlines()
    # the first 6 same-person and first 6 different-person lines of fold 1, as a 2-fold x 3 file
    same, diff = lines[1:7], lines[301:307]
    subset = ["2\t3", *same[:3], *diff[:3], *same[3:], *diff[3:]]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(subset) + "\n")
    args = ["eval", "--root", str(lfw / "images"), "--pairs", str(pairs), "--embedder", "dlib"]
    args += ["--policy", "central", "--no-quality-gate"]  # the settings of the committed teacher figures
    args += ["--out", str(tmp_path / "o"), "--name", "t", "--no-cache", "--quiet", "--workers", "1"]
    assert main(args) == EXIT_OK
    record = json.loads((tmp_path / "o" / "t.json").read_text())
    assert record["pairs"] == 12
    assert record["auc"] >= 0.95 and record["accuracy_mean"] >= 0.8


def test_eval_of_the_shipped_runtime_models(tmp_path):
    """The shipped detector + embedder through the same harness (no torch, no dlib): photos without a
    detectable face go through the centred-box fallback with the template's points, and are counted."""
    root, pairs = _synthetic_lfw(tmp_path)
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    args = _eval_args(root, pairs, out, cache, "--workers", "1")
    args[args.index("--embedder") + 1] = "squeezerfacenet"
    assert main(args) == EXIT_OK
    record = json.loads((out / "run.json").read_text())
    assert record["embedder"].startswith("squeezerfacenet@")
    assert record["no_face_count"] == 12  # flat colour patches: no face for the detector anywhere
    assert 0.0 <= record["accuracy_mean"] <= 1.0
