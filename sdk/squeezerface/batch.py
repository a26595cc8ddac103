"""Embed many photos: content-hash cache first, then worker processes for the rest, with progress.

Used by `squeezerface eval` and by the offline stage to build the teacher's distillation targets.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from squeezerface._progress import progress
from squeezerface.cache import CachedEmbedding, EmbeddingCache
from squeezerface.embedders.base import EmbedderSpec, FaceEmbedder, Fallback, SelectPolicy, embed_photo
from squeezerface.errors import SqueezerfaceError
from squeezerface.imageio import load_image, sha256_file


@dataclass(frozen=True)
class BatchResult:
    """Per-path results, plus the photos that could not be read (path -> reason)."""

    items: dict[Path, CachedEmbedding]
    failures: dict[Path, str] = field(default_factory=dict)
    computed: int = 0
    from_cache: int = 0


# Each worker process builds its own embedder once (dlib models are not picklable); this per-process
# slot is the only module state and lives only inside pool workers.
_worker: tuple[FaceEmbedder, SelectPolicy, Fallback, bool] | None = None


def _init_worker(spec: EmbedderSpec, policy: SelectPolicy, fallback: Fallback, with_flip: bool) -> None:
    global _worker
    _worker = (spec.build(), policy, fallback, with_flip)


def _embed_one(path: Path) -> tuple[Path, CachedEmbedding | None, str | None]:
    assert _worker is not None, "worker not initialised"
    embedder, policy, fallback, with_flip = _worker
    return _embed_path(embedder, path, policy, fallback, with_flip)


def _embed_path(
    embedder: FaceEmbedder, path: Path, policy: SelectPolicy, fallback: Fallback, with_flip: bool
) -> tuple[Path, CachedEmbedding | None, str | None]:
    try:
        image = load_image(path)
        r = embed_photo(embedder, image, policy=policy, fallback=fallback, with_flip=with_flip)
    except SqueezerfaceError as exc:
        return path, None, str(exc)
    return path, CachedEmbedding(r.embedding, r.face, r.faces_found, r.flipped), None


def embed_files(
    paths: Sequence[Path],
    spec: EmbedderSpec,
    *,
    embedder: FaceEmbedder | None = None,
    cache_path: Path | None,
    workers: int = 2,
    policy: SelectPolicy = "central",
    fallback: Fallback | None = None,
    show_progress: bool = True,
    commit_every: int = 200,
    with_flip: bool = False,
) -> BatchResult:
    """Embed every path, reusing cached results; failures are collected, never silently dropped.

    `embedder`, if given, must be what `spec` builds (a caller that already holds one saves loading the
    models again); it serves the in-process path and its fingerprint keys the cache. Worker processes
    build their own from `spec`. Results are committed every `commit_every` photos so an
    interrupted run loses at most that many. With `with_flip`, cached entries that lack the mirrored
    embedding are computed again.
    """
    fallback = fallback or Fallback()
    embedder = embedder or spec.build()
    fingerprint = embedder.fingerprint()
    paths = [Path(p) for p in dict.fromkeys(paths)]
    hashes = {p: sha256_file(p) for p in progress(paths, len(paths), "hashing", show_progress)}
    cache = EmbeddingCache(cache_path, fingerprint) if cache_path is not None else None
    try:
        cached = cache.get_many(list(hashes.values())) if cache is not None else {}
        if with_flip:
            cached = {h: item for h, item in cached.items() if item.flipped is not None}
        items: dict[Path, CachedEmbedding] = {p: cached[h] for p, h in hashes.items() if h in cached}
        todo = [p for p in paths if p not in items]
        failures: dict[Path, str] = {}
        pending: list[tuple[str, CachedEmbedding]] = []

        def consume(results) -> None:
            for path, item, error in progress(results, len(todo), "embedding", show_progress):
                if item is None:
                    failures[path] = error or "unknown error"
                    continue
                items[path] = item
                pending.append((hashes[path], item))
                if cache is not None and len(pending) >= commit_every:
                    cache.put_many(pending)
                    pending.clear()

        try:
            if todo and workers > 1:
                ctx = mp.get_context("spawn")
                with ctx.Pool(
                    workers, initializer=_init_worker, initargs=(spec, policy, fallback, with_flip)
                ) as pool:
                    consume(pool.imap(_embed_one, todo, chunksize=8))
            elif todo:
                consume(_embed_path(embedder, p, policy, fallback, with_flip) for p in todo)
        finally:
            if cache is not None and pending:
                cache.put_many(pending)
        return BatchResult(items=items, failures=failures, computed=len(todo), from_cache=len(cached))
    finally:
        if cache is not None:
            cache.close()
