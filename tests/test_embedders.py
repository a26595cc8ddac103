import numpy as np
import pytest

from squeezerface.embedders.base import (
    EmbedderSpec,
    Fallback,
    build_embedder,
    embed_photo,
    l2_normalize,
    select_face,
)
from squeezerface.embedders.dlib_resnet import five_points_from_68
from squeezerface.errors import NoFaceError
from squeezerface.face import Face

FAKE = "fakes:make_colour_embedder"


def _face(x1, y1, x2, y2):
    return Face(box=(x1, y1, x2, y2), landmarks=np.zeros((5, 2)))


def test_select_face_policies():
    small_central = _face(90, 90, 110, 110)
    big_corner = _face(0, 0, 80, 80)
    assert select_face([big_corner, small_central], 200, 200, "central") is small_central
    assert select_face([big_corner, small_central], 200, 200, "largest") is big_corner
    with pytest.raises(ValueError):
        select_face([big_corner], 200, 200, "nearest")  # type: ignore[arg-type]


def test_fallback_box_is_centred():
    assert Fallback(box_fraction=0.5).box(100, 200) == (75.0, 25.0, 125.0, 75.0)


def test_embed_photo_detects_or_falls_back():
    emb = build_embedder(FAKE)
    image = np.full((50, 50, 3), 200, np.uint8)
    found = embed_photo(emb, image)
    assert found.face.detected and found.faces_found == 1 and not found.used_fallback
    assert np.isclose(np.linalg.norm(found.embedding), 1.0)
    image[:8, :8] = 0  # the fake's "no face" signal
    fell_back = embed_photo(emb, image)
    assert fell_back.used_fallback and fell_back.faces_found == 0
    with pytest.raises(NoFaceError):
        embed_photo(emb, image, fallback=Fallback(enabled=False))


def test_build_embedder_errors():
    with pytest.raises(ValueError, match="unknown embedder"):
        build_embedder("no-such-model")
    with pytest.raises(TypeError, match="not a FaceEmbedder"):
        build_embedder("collections:OrderedDict")


def test_spec_builds_with_options_and_fingerprint_reflects_them():
    a = EmbedderSpec(FAKE, (("bias", 1.0),)).build()
    b = EmbedderSpec(FAKE).build()
    assert a.fingerprint() != b.fingerprint()
    assert "bias=1.0" in a.fingerprint()


def test_l2_normalize_rows_and_zero_rows():
    x = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(x[0], [0.6, 0.8], rtol=1e-6)
    assert np.all(np.isfinite(x))


def test_five_points_from_68():
    pts = np.zeros((68, 2))
    pts[36:42] = [10, 20]
    pts[42:48] = [30, 20]
    pts[30] = [20, 30]
    pts[48] = [12, 40]
    pts[54] = [28, 40]
    np.testing.assert_allclose(five_points_from_68(pts), [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
