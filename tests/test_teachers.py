"""The pretrained teachers as embedders (`squeezerface.embedders.pretrained`): each loads from
../shared/teachers and gives, on 4 faces aligned deterministically from one LFW photo, the embeddings
recorded in tests/data/teacher_embeddings.npz (cosine within 1e-4); unknown names and missing weights are
typed errors. Skipped with a message where ../shared/teachers or ../shared/data is absent, and EdgeFace where
torch/timm (the `train` extra) is.

Regenerate the reference (only after a deliberate change of weights or alignment):
    PYTHONPATH=sdk python tests/test_teachers.py --write
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.align import align_face, template_face
from squeezerface.embedders.base import BUILTIN_EMBEDDERS, build_embedder
from squeezerface.embedders.pretrained import TEACHERS, TEACHERS_ENV, PretrainedEmbedder
from squeezerface.errors import MissingExtraError, TeacherWeightsError, UnknownEmbedderError
from squeezerface.imageio import load_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TEACHERS_DIR = SHARED / "teachers"
PHOTO = SHARED / "data" / "lfw" / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
REFERENCE = Path(__file__).parent / "data" / "teacher_embeddings.npz"
BOXES = ((28, 20, 157, 149), (32, 17, 161, 146), (31, 23, 154, 146), (25, 18, 160, 153))
"""Square boxes in the 250x250 photo whose template points fit the detector's landmarks (the first), then
shifted by a few pixels and scaled by 0.95 and 1.05: the template's 5 points are placed in each."""
COSINE_TOLERANCE = 1e-4


def aligned_faces() -> np.ndarray:
    """(4, 112, 112, 3) uint8 faces: no detector involved, so they are the same on every machine."""
    image = load_image(PHOTO)
    return np.stack([align_face(image, template_face(box).landmarks) for box in BOXES])


def teacher(name: str) -> PretrainedEmbedder:
    """The teacher built as `squeezerface eval --embedder NAME` builds it, or a skip saying what is absent."""
    if not TEACHERS_DIR.is_dir():
        pytest.skip(f"../shared/teachers not found: looked for {TEACHERS_DIR} (third-party weights)")
    if not PHOTO.is_file():
        pytest.skip(f"../shared/data not found: looked for {PHOTO} (real face data is not in the repo)")
    try:
        embedder = build_embedder(name, teachers=TEACHERS_DIR, threads=1)
    except MissingExtraError as exc:
        pytest.skip(f"{name} needs the '{exc.extra}' extra (torch + timm): {exc}")
    assert isinstance(embedder, PretrainedEmbedder)
    return embedder


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(TEACHERS))
def test_teacher_embeddings_match_the_committed_reference(name: str) -> None:
    embedder = teacher(name)
    emb = embedder.embed_aligned(aligned_faces())
    reference = np.load(REFERENCE)[name]
    assert emb.shape == reference.shape == (len(BOXES), TEACHERS[name].embedding_size)
    cosine = np.sum(emb * reference, axis=1)
    assert np.all(cosine >= 1 - COSINE_TOLERANCE), f"{name}: cosine to the reference {cosine}"
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    same_face = emb @ emb.T  # 4 crops of one face: any working face network calls them the same person
    assert same_face.min() > 0.8, same_face


@pytest.mark.data
def test_teacher_runs_the_whole_photo_pipeline() -> None:
    """detect -> align -> embed through the FaceEmbedder interface, as `squeezerface eval` runs it."""
    from squeezerface.embedders.base import embed_photo

    embedder = teacher("mobilefacenet")
    image = load_image(PHOTO)
    a = embed_photo(embedder, image)
    b = embed_photo(embedder, np.ascontiguousarray(cv2.GaussianBlur(image, (3, 3), 0)))
    assert a.face.detected and a.embedding.shape == (128,)
    assert float(a.embedding @ b.embedding) > 0.9
    assert embedder.fingerprint().startswith("mobilefacenet@MobileFaceNet+b7120c095d60[")


def test_teachers_are_registered_and_unknown_names_are_typed_errors() -> None:
    assert {"edgeface-xs", "edgeface-xxs", "mobilefacenet"} <= set(BUILTIN_EMBEDDERS)
    with pytest.raises(UnknownEmbedderError) as err:
        build_embedder("nosuch")
    assert isinstance(err.value, ValueError)
    assert {"edgeface-xs", "edgeface-xxs", "mobilefacenet", "squeezerfacenet"} <= set(err.value.known)
    assert "mobilefacenet" in str(err.value) and "'nosuch'" in str(err.value)


def test_eval_command_names_the_embedders_for_an_unknown_one(tmp_path: Path, capsys) -> None:
    from squeezerface.cli import EXIT_BAD_INPUT, main

    for person, count in (("Ann", 2), ("Ben", 1)):
        (tmp_path / person).mkdir()
        for i in range(1, count + 1):
            cv2.imwrite(str(tmp_path / person / f"{person}_{i:04d}.jpg"), np.full((40, 40, 3), 90, np.uint8))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nAnn\t1\t2\nAnn\t1\tBen\t1\n")
    args = ["eval", "--root", str(tmp_path), "--pairs", str(pairs), "--embedder", "nosuch", "--no-cache"]
    assert main([*args, "--quiet", "--workers", "1", "--out", str(tmp_path / "o")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown embedder 'nosuch'" in err and "edgeface-xs" in err and "mobilefacenet" in err


def test_missing_teachers_folder_is_a_typed_error_with_the_path(tmp_path: Path, monkeypatch) -> None:
    absent = tmp_path / "no-teachers-here"
    with pytest.raises(TeacherWeightsError) as err:
        build_embedder("mobilefacenet", teachers=absent)
    assert err.value.path == str(absent.resolve()) and TEACHERS_ENV in str(err.value)
    monkeypatch.setenv(TEACHERS_ENV, str(absent))
    with pytest.raises(TeacherWeightsError, match="no-teachers-here"):
        build_embedder("edgeface-xs")


def test_weights_that_are_not_the_published_file_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / TEACHERS["mobilefacenet"].file
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the published weights")
    with pytest.raises(TeacherWeightsError, match="SHA-256") as err:
        build_embedder("mobilefacenet", teachers=tmp_path)
    assert err.value.path == str(fake.resolve())
    with pytest.raises(TeacherWeightsError, match="edgeface-xxs weights missing"):
        build_embedder("edgeface-xxs", teachers=tmp_path)


def test_edgeface_without_torch_names_the_train_extra() -> None:
    """In a process where torch cannot be imported, EdgeFace is a MissingExtraError naming `train`."""
    if not TEACHERS_DIR.is_dir():
        pytest.skip(f"../shared/teachers not found: looked for {TEACHERS_DIR} (third-party weights)")
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "timm"):
                    raise ImportError(f"blocked in this test: {{name}}")
        sys.meta_path.insert(0, Block())
        from squeezerface.embedders.base import build_embedder
        from squeezerface.errors import MissingExtraError
        try:
            build_embedder("edgeface-xxs", teachers={str(TEACHERS_DIR)!r})
        except MissingExtraError as exc:
            print(exc.extra, "pip install" in str(exc))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["train", "True"]


def _write_reference() -> None:
    faces = aligned_faces()
    out = {}
    for name in sorted(TEACHERS):
        embedder = build_embedder(name, teachers=TEACHERS_DIR, threads=1)
        assert isinstance(embedder, PretrainedEmbedder)
        out[name] = embedder.embed_aligned(faces).astype(np.float32)
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **out)
    print(f"wrote {REFERENCE}: " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    _write_reference()
