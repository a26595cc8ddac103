"""Embed many photos: content-hash cache first, then worker processes for the rest, with progress.

Used by `squeezerface eval` and `calibrate` (through the embedder's face path: for the shipped model that is
`FaceVerifier.analyze`, the app's own) and by the offline stage to build the teacher's distillation targets.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from squeezerface._progress import progress
from squeezerface.cache import CachedEmbedding, EmbeddingCache
from squeezerface.embedders.base import EmbedderSpec, FaceEmbedder, Fallback, SelectPolicy, embed_photo
from squeezerface.errors import LowQualityError, MultipleFacesError, NoFaceError, SqueezerfaceError
from squeezerface.imageio import load_image, sha256_file
from squeezerface.quality import QualityThresholds


@dataclass(frozen=True)
class BatchResult:
    """Per-path results; the photos that could not be read (path -> reason); the photos the face path
    refused (no face with the fallback off, several faces under policy "error", a face failing the
    quality gate: path -> reason), which the app would refuse too. `fingerprint` is the cache key used."""

    items: dict[Path, CachedEmbedding]
    failures: dict[Path, str] = field(default_factory=dict)
    computed: int = 0
    from_cache: int = 0
    refused: dict[Path, str] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True)
class FacePathOptions:
    """Every setting of the face path that changes which face is embedded, or whether one is: part of the
    cache key, so a rerun with another setting never returns the old embeddings."""

    policy: SelectPolicy = "largest"
    fallback: Fallback = field(default_factory=Fallback)
    quality: QualityThresholds | None = None
    with_flip: bool = False

    def key(self) -> str:
        fb = f"box={self.fallback.box_fraction:g}" if self.fallback.enabled else "off"
        gate = (
            "off" if self.quality is None else ",".join(f"{k}={v:g}" for k, v in asdict(self.quality).items())
        )
        return f"policy={self.policy};fallback={fb};gate={gate}"


LEGACY_OPTIONS = FacePathOptions(policy="central")
"""The only setting caches written before the options joined the key were made with (`squeezerface eval`
defaults of 0.1: central face, fallback box 0.5, no gate); teacher embedders keep their old key under it, so
hours of cached dlib embeddings stay valid. The shipped pipeline's adapter always gets the full key."""


def cache_fingerprint(embedder: FaceEmbedder, options: FacePathOptions) -> str:
    """The cache key of an embedder under the face-path options: model and detector hashes (in the
    embedder's fingerprint) plus policy, fallback box and quality gate."""
    if getattr(embedder, "legacy_cache_key", True) and options.key() == LEGACY_OPTIONS.key():
        return embedder.fingerprint()
    return f"{embedder.fingerprint()}|{options.key()}"


_REFUSALS = (NoFaceError, MultipleFacesError, LowQualityError)
_REFUSED_MARK = "refused: "


# Each worker process builds its own embedder once (dlib models are not picklable); this per-process
# slot is the only module state and lives only inside pool workers.
_worker: tuple[FaceEmbedder, FacePathOptions] | None = None


def _init_worker(spec: EmbedderSpec, options: FacePathOptions) -> None:
    global _worker
    _worker = (spec.build(), options)


def _embed_one(path: Path) -> tuple[Path, CachedEmbedding | None, str | None]:
    assert _worker is not None, "worker not initialised"
    embedder, options = _worker
    return _embed_path(embedder, path, options)


def _embed_path(
    embedder: FaceEmbedder, path: Path, o: FacePathOptions
) -> tuple[Path, CachedEmbedding | None, str | None]:
    try:
        image = load_image(path)
        r = embed_photo(embedder, image, o.policy, o.fallback, o.with_flip, o.quality)
    except _REFUSALS as exc:
        return (
            path,
            None,
            _REFUSED_MARK + str(exc).replace("the photo", path.name).replace("<photo>", path.name),
        )
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
    policy: SelectPolicy = "largest",
    fallback: Fallback | None = None,
    show_progress: bool = True,
    commit_every: int = 200,
    with_flip: bool = False,
    quality: QualityThresholds | None = None,
) -> BatchResult:
    """Embed every path, reusing cached results; failures are collected, never silently dropped.

    `embedder`, if given, must be what `spec` builds (a caller that already holds one saves loading the
    models again); it serves the in-process path and its fingerprint keys the cache. Worker processes
    build their own from `spec`. Results are committed every `commit_every` photos so an
    interrupted run loses at most that many. With `with_flip`, cached entries that lack the mirrored
    embedding are computed again. `policy`, `fallback` and `quality` (the gate; None: off) are the face
    path's options (`FacePathOptions`), all in the cache key; photos the face path refuses are returned in
    `refused`, not cached.
    """
    options = FacePathOptions(policy, fallback or Fallback(), quality, with_flip)
    embedder = embedder or spec.build()
    fingerprint = cache_fingerprint(embedder, options)
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
        refused: dict[Path, str] = {}
        pending: list[tuple[str, CachedEmbedding]] = []

        def consume(results) -> None:
            for path, item, error in progress(results, len(todo), "embedding", show_progress):
                if item is None:
                    error = error or "unknown error"
                    if error.startswith(_REFUSED_MARK):
                        refused[path] = error.removeprefix(_REFUSED_MARK)
                    else:
                        failures[path] = error
                    continue
                items[path] = item
                pending.append((hashes[path], item))
                if cache is not None and len(pending) >= commit_every:
                    cache.put_many(pending)
                    pending.clear()

        try:
            if todo and workers > 1:
                ctx = mp.get_context("spawn")
                with ctx.Pool(workers, initializer=_init_worker, initargs=(spec, options)) as pool:
                    consume(pool.imap(_embed_one, todo, chunksize=8))
            elif todo:
                consume(_embed_path(embedder, p, options) for p in todo)
        finally:
            if cache is not None and pending:
                cache.put_many(pending)
        return BatchResult(items, failures, len(todo), len(cached), refused, fingerprint)
    finally:
        if cache is not None:
            cache.close()
