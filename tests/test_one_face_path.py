"""One face path: verify, identify, enroll, eval and calibrate embed a photo identically (issue 14).

Before, `eval` and `calibrate` ran their own pipeline (central face, no quality gate, a template box for
no-face photos) while the app ran `FaceVerifier` (largest confident face, gate, refusal): thresholds were
set for a pipeline the app never ran. Now every command goes through `FaceVerifier.analyze`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.batch import FacePathOptions, cache_fingerprint
from squeezerface.cache import EmbeddingCache
from squeezerface.cli import EXIT_OK, main
from squeezerface.embedders.base import EmbedderSpec, Fallback
from squeezerface.gallery import Gallery
from squeezerface.imageio import sha256_file
from squeezerface.verify import DEFAULT_QUALITY, FaceVerifier

PEOPLE = ("George_W_Bush", "Colin_Powell", "Tony_Blair")
PER_PERSON = 5


def _dataset(shared: Path, out: Path, verifier: FaceVerifier) -> dict[str, list[Path]]:
    """PER_PERSON photos of each of PEOPLE that the app accepts, copied to out/P/P_000i.jpg (the LFW
    layout eval reads and the identity-folder layout calibrate reads), and a two-face photo for P0."""
    people: dict[str, list[Path]] = {}
    for k, name in enumerate(PEOPLE):
        folder = out / f"P{k}"
        folder.mkdir(parents=True)
        kept: list[Path] = []
        for src in sorted((shared / "lfw" / "images" / name).glob("*.jpg")):
            try:
                verifier.analyze(src)
            except Exception:  # a photo the app refuses is no use for comparing embeddings
                continue
            dst = folder / f"P{k}_{len(kept) + 1:04d}.jpg"
            shutil.copyfile(src, dst)
            kept.append(dst)
            if len(kept) == PER_PERSON - 1:
                break
        assert len(kept) == PER_PERSON - 1, f"too few accepted photos of {name}"
        people[f"P{k}"] = kept
    # two faces side by side: the face choice (largest confident face) must agree everywhere
    both = np.hstack([cv2.imread(str(people["P0"][0])), cv2.imread(str(people["P1"][0]))])
    two = out / "P0" / f"P0_{PER_PERSON:04d}.jpg"
    cv2.imwrite(str(two), both)
    people["P0"].append(two)
    for k in (1, 2):
        extra = out / f"P{k}" / f"P{k}_{PER_PERSON:04d}.jpg"
        shutil.copyfile(people[f"P{k}"][1], extra)
        people[f"P{k}"].append(extra)
    return people


def _pairs_file(path: Path, n: int = 10) -> Path:
    """An LFW View-1 style pairs file over the dataset: n same-person then n different-person pairs."""
    combos = [(i, j) for i in range(1, PER_PERSON + 1) for j in range(i + 1, PER_PERSON + 1)]
    same = [f"P{k % 3} {combos[k][0]} {combos[k][1]}" for k in range(n)]
    diff = [f"P{k % 3} {1 + k % 4} P{(k + 1) % 3} {1 + (k + 2) % 4}" for k in range(n)]
    path.write_text("\n".join([str(n), *same, *diff]) + "\n")
    return path


@pytest.mark.data
def test_five_commands_give_identical_embeddings(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verifier = FaceVerifier()
    root = tmp_path / "photos"
    people = _dataset(shared_data, root, verifier)
    photos = [p for paths in people.values() for p in paths]
    reference = {p: verifier.embed_one(p) for p in photos}  # what `verify` compares

    # verify: the JSON names the face used, and the score is the dot product of the reference embeddings
    a, b = people["P0"][0], people["P0"][-1]
    assert main(["verify", str(a), str(b), "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == pytest.approx(float(reference[a] @ reference[b]), abs=1e-6)
    assert out["images"][1]["faces_found"] == 2 and out["images"][1]["used"] is not None

    # enroll: the stored template is the reference embedding
    db = tmp_path / "g.sqlite"
    for name, paths in people.items():
        assert main(["enroll", "--db", str(db), name, str(paths[0])]) == EXIT_OK
    capsys.readouterr()
    with Gallery(db, readonly=True) as gallery:
        for name, paths in people.items():
            np.testing.assert_allclose(gallery.templates(name)[0], reference[paths[0]], atol=1e-6)

    # identify: the probe is the reference embedding (cosine 1 to its own template)
    assert main(["identify", "--db", str(db), str(people["P2"][0]), "--json"]) == EXIT_OK
    found = json.loads(capsys.readouterr().out)
    assert found["identified"] == "P2" and found["candidates"][0]["score"] == pytest.approx(1.0, abs=1e-6)
    assert found["image"]["faces_found"] >= 1 and found["image"]["face"]["quality"]["ok"]

    # eval (default embedder: the shipped pipeline) and calibrate: their cached embeddings are the reference
    cache = tmp_path / "cache.sqlite"
    pairs = _pairs_file(tmp_path / "pairs.txt")
    args = ["--root", str(root), "--pairs", str(pairs), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(["eval", *args, "--cache", str(cache), "--workers", "1", "--name", "e"]) == EXIT_OK
    record = json.loads((tmp_path / "out" / "e.json").read_text())
    assert record["embedder"].startswith("squeezerfacenet@") and record["face_selection"] == "largest"
    card = tmp_path / "card.json"
    assert main(["calibrate", "--root", str(root), "--out", str(card), "--cache", str(cache), "--quiet"]) == 0
    capsys.readouterr()

    embedder = EmbedderSpec("squeezerfacenet").build()
    keys = {
        "eval": cache_fingerprint(embedder, FacePathOptions("largest", Fallback(), DEFAULT_QUALITY)),
        "calibrate": cache_fingerprint(
            embedder, FacePathOptions("largest", Fallback(enabled=False), DEFAULT_QUALITY)
        ),
    }
    assert record["embedder"] == keys["eval"]
    for command, key in keys.items():
        with EmbeddingCache(cache, key) as stored:
            items = stored.get_many([sha256_file(p) for p in photos])
        used = [p for p in photos if sha256_file(p) in items]
        assert len(used) >= len(photos) - 1, command
        for p in used:
            np.testing.assert_allclose(
                items[sha256_file(p)].embedding, reference[p], atol=1e-6, err_msg=command
            )


def test_eval_defaults_to_the_shipped_pipeline() -> None:
    from squeezerface.cli import build_parser

    args = build_parser().parse_args(["eval", "--root", "r", "--pairs", "p"])
    assert args.embedder == "squeezerfacenet" and args.policy == "largest" and not args.no_quality_gate


def test_cache_key_holds_every_face_path_option() -> None:
    """A rerun with another --fallback-box, --policy or gate used to return the old embeddings."""
    embedder = EmbedderSpec("squeezerfacenet").build()
    variants = [
        FacePathOptions("largest", Fallback(), DEFAULT_QUALITY),
        FacePathOptions("central", Fallback(), DEFAULT_QUALITY),
        FacePathOptions("largest", Fallback(box_fraction=0.7), DEFAULT_QUALITY),
        FacePathOptions("largest", Fallback(enabled=False), DEFAULT_QUALITY),
        FacePathOptions("largest", Fallback(), None),
    ]
    keys = {cache_fingerprint(embedder, o) for o in variants}
    assert len(keys) == len(variants)
    fingerprint = embedder.fingerprint()
    assert embedder.model.card.sha256[:12] in fingerprint  # model hash
    assert embedder.locator.detector.card.sha256[:12] in fingerprint  # detector hash
