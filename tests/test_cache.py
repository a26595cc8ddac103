import numpy as np

from squeezerface.cache import CachedEmbedding, EmbeddingCache
from squeezerface.face import Face


def _item(seed: int) -> CachedEmbedding:
    rng = np.random.default_rng(seed)
    face = Face(box=(1, 2, 30, 40), landmarks=rng.uniform(0, 30, (5, 2)), score=0.5, detected=bool(seed % 2))
    return CachedEmbedding(rng.normal(size=8).astype(np.float32), face, faces_found=seed)


def test_roundtrip_and_fingerprint_isolation(tmp_path):
    path = tmp_path / "c.sqlite"
    with EmbeddingCache(path, "model-a") as cache:
        cache.put_many([("h1", _item(1)), ("h2", _item(2))])
        got = cache.get_many(["h1", "h2", "h3"])
        assert set(got) == {"h1", "h2"}
        np.testing.assert_array_equal(got["h1"].embedding, _item(1).embedding)
        np.testing.assert_allclose(got["h2"].face.landmarks, _item(2).face.landmarks, atol=1e-3)
        assert got["h1"].face.detected is True and got["h2"].face.detected is False
        assert got["h2"].faces_found == 2
    with EmbeddingCache(path, "model-b") as other:
        assert other.get_many(["h1"]) == {}
        assert len(other) == 0
    with EmbeddingCache(path, "model-a") as again:  # persisted across connections
        assert len(again) == 2


def test_get_many_handles_more_than_one_sql_chunk(tmp_path):
    with EmbeddingCache(tmp_path / "c.sqlite", "m") as cache:
        cache.put_many((f"h{i}", _item(i)) for i in range(1200))
        got = cache.get_many([f"h{i}" for i in range(0, 1200, 1)])
        assert len(got) == 1200
        assert got["h1100"].faces_found == 1100
