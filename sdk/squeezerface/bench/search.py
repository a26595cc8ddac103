"""1:N search cost: how long a top-k query over a gallery of N templates takes, and the memory it needs.

A gallery search is one matrix-vector product and a partial sort, whatever the gallery's storage: the
templates are an (N, D) float32 matrix of unit vectors (what `squeezerface.gallery` keeps in memory), the
query a unit vector, the scores their cosine. So this benchmark times exactly that on seeded random unit
vectors (identity does not change the arithmetic), with numpy (`argpartition` for the top k), and with
FAISS's exact inner-product index when FAISS is importable (never installed by us). Sizes that would not
fit in a safe share of the machine's memory are skipped and say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from squeezerface.bench.memory import available_memory_mb, current_rss_mb
from squeezerface.bench.stats import summarize

SEARCH_SIZES = (1_000, 10_000, 100_000, 1_000_000)
EMBEDDING_DIM = 128
MEMORY_SHARE = 0.5
"""A size is skipped when its matrix needs more than this share of the memory available."""
WARMUP_QUERIES = 5
"""Untimed queries before the timed ones, per size and engine."""


@dataclass(frozen=True)
class SearchRecord:
    """Query latency of one engine on one gallery size. `status` is "ok", "not installed" or "skipped"."""

    engine: str  # "numpy" or "faiss"
    size: int
    dim: int
    threads: int
    k: int
    queries: int
    status: str
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    matrix_mb: float | None = None  # the templates themselves: N x D x 4 bytes
    rss_delta_mb: float | None = None  # resident memory grown while building the gallery and searching it
    build_ms: float | None = None  # generating + normalising (numpy) / adding to the index (FAISS)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def matrix_mb(size: int, dim: int = EMBEDDING_DIM) -> float:
    """Memory of an (size, dim) float32 template matrix, in MiB."""
    return size * dim * 4 / 2**20


def top_k(matrix, query, k: int):
    """Indices and scores of the k best-scoring rows, best first (argpartition, then sort only k). Pure."""
    import numpy as np

    scores = matrix @ query
    k = min(k, scores.shape[0])
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return order, scores[order]


def random_unit_vectors(n: int, dim: int, seed: int):
    """(n, dim) float32 unit vectors, seeded, normalised in place in chunks (no second full-size copy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        block = m[start : start + 65536]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return m


def _stats(samples_s: Sequence[float]) -> dict[str, float]:
    s = summarize(samples_s)
    return {
        "p50_ms": s.p50_ms,
        "p90_ms": s.p90_ms,
        "p99_ms": s.p99_ms,
        "mean_ms": s.mean_ms,
        "std_ms": s.std_ms,
    }


def _time_queries(search: Callable[[Any], object], queries: Sequence[Any]) -> list[float]:
    """Seconds of each query after the first `WARMUP_QUERIES` (untimed warm-up), each timed alone."""
    for q in queries[:WARMUP_QUERIES]:
        search(q)
    samples = []
    for q in queries[WARMUP_QUERIES:]:
        t = time.perf_counter()
        search(q)
        samples.append(time.perf_counter() - t)
    return samples


def _grown_since(rss0: float | None) -> float | None:
    """Resident memory grown since `rss0` (MiB), where both readings could be made."""
    rss = current_rss_mb()
    return None if rss0 is None or rss is None else rss - rss0


def _open_faiss(engines: Sequence[str], threads: int, dim: int, k: int) -> tuple[Any, list[SearchRecord]]:
    """The faiss module when asked for and installed (told `threads`), else None and a record saying why."""
    if "faiss" not in engines:
        return None, []
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        missing = SearchRecord("faiss", 0, dim, threads, k, 0, "not installed", note="pip install faiss-cpu")
        return None, [missing]
    faiss.omp_set_num_threads(threads)
    return faiss, []


def _size_records(
    size: int,
    engines: Sequence[str],
    faiss: Any,
    rng: Any,
    settings: dict[str, Any],
    need: float,
    seed: int,
) -> list[SearchRecord]:
    """Build one gallery of `size` unit vectors and time fresh queries from `rng` on it with each engine."""
    import numpy as np

    dim, k = settings["dim"], settings["k"]
    records: list[SearchRecord] = []
    rss0 = current_rss_mb()
    t0 = time.perf_counter()
    gallery = random_unit_vectors(size, dim, seed)
    build_ms = (time.perf_counter() - t0) * 1e3
    qs = rng.standard_normal((settings["queries"] + WARMUP_QUERIES, dim), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    ok: dict[str, Any] = {"size": size, **settings, "status": "ok"}

    def timed(engine: str, query: Any, build: float, note: str = "") -> SearchRecord:
        """One engine's record: its queries timed on `qs`, the memory grown since the gallery was built."""
        stats: dict[str, Any] = _stats(_time_queries(query, qs))
        return SearchRecord(
            engine, **ok, **stats, matrix_mb=need, rss_delta_mb=_grown_since(rss0), build_ms=build, note=note
        )

    if "numpy" in engines:
        records.append(timed("numpy", lambda q, g=gallery: top_k(g, q, k), build_ms))
    if faiss is not None:
        t = time.perf_counter()
        index = faiss.IndexFlatIP(dim)
        index.add(gallery)
        add_ms = (time.perf_counter() - t) * 1e3
        exact = "IndexFlatIP (exact)"
        records.append(timed("faiss", lambda q, ix=index: ix.search(q[None], k), add_ms, exact))
        del index
    del gallery
    return records


def bench_search(
    sizes: Sequence[int] = SEARCH_SIZES,
    threads: int = 1,
    dim: int = EMBEDDING_DIM,
    queries: int = 50,
    k: int = 10,
    seed: int = 0,
    engines: Sequence[str] = ("numpy", "faiss"),
    progress: bool = True,
) -> list[SearchRecord]:
    """Time `queries` top-k queries per size and engine (each query timed alone, batch 1).

    numpy's BLAS threads come from the process environment (the harness runs this in a worker started with
    OPENBLAS_NUM_THREADS etc. set to `threads`); FAISS is told `threads` explicitly."""
    import sys

    import numpy as np

    faiss, records = _open_faiss(engines, threads, dim, k)
    rng = np.random.default_rng(seed + 1)
    settings = {"dim": dim, "threads": threads, "k": k, "queries": queries}
    for size in sizes:
        need = matrix_mb(size, dim)
        free = available_memory_mb()
        if free is not None and need > MEMORY_SHARE * free:
            note = f"needs {need:.0f} MiB, {free:.0f} MiB available"
            records += [
                SearchRecord(engine, size, dim, threads, k, 0, "skipped", matrix_mb=need, note=note)
                for engine in engines
                if engine == "numpy" or faiss is not None
            ]
            continue
        done = _size_records(size, engines, faiss, rng, settings, need, seed)
        records += done
        if progress:
            line = ", ".join(f"{r.engine} p50 {r.p50_ms:.3f} ms" for r in done)
            print(f"  search {size:>9,} x {dim}, {threads} thread(s): {line}", file=sys.stderr, flush=True)
    return records
