"""How closely a converted artifact follows its torch original, and how fast it runs: pure measurements.

Parity compares unit embeddings of the same aligned faces (cosine per face, and the largest absolute
difference of any coordinate). Latency is single-thread, batch 1, the median of many timed runs after a
warm-up, so numbers from different artifacts measured in one process compare directly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from squeezerface.backends import Backend, open_backend
from squeezerface.modelcard import InputSpec


@dataclass(frozen=True)
class Parity:
    faces: int
    cosine_mean: float
    cosine_min: float
    max_abs_diff: float

    def to_dict(self) -> dict:
        return asdict(self)


def parity(reference: np.ndarray, candidate: np.ndarray) -> Parity:
    """Agreement of two (N, D) embedding sets of the same faces (both L2-normalised here)."""
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = candidate / np.linalg.norm(candidate, axis=1, keepdims=True)
    cos = np.sum(a * b, axis=1)
    return Parity(
        faces=len(a),
        cosine_mean=float(cos.mean()),
        cosine_min=float(cos.min()),
        max_abs_diff=float(np.abs(a - b).max()),
    )


def input_spec_for(backend: Backend, base: InputSpec | None = None) -> InputSpec:
    """The base preprocessing with the layout the file actually takes."""
    return replace(base or InputSpec(), layout=backend.layout)


def embed_with(backend: Backend, faces: np.ndarray, spec: InputSpec, batch: int = 64) -> np.ndarray:
    """Unit embeddings of aligned uint8 faces through one artifact."""
    out = [backend.run(spec.prepare(faces[i : i + batch])) for i in range(0, len(faces), batch)]
    emb = np.concatenate(out)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Latency:
    threads: int
    batch: int
    runs: int
    p50_ms: float
    p90_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def measure_latency(path: str | Path, face: np.ndarray, runs: int = 200, warmup: int = 20) -> Latency:
    """Single-thread batch-1 latency of one artifact on one aligned face (a fresh engine)."""
    backend = open_backend(path, threads=1)
    x = input_spec_for(backend).prepare(face[None])
    for _ in range(warmup):
        backend.run(x)
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        backend.run(x)
        times[i] = time.perf_counter() - t
    return Latency(1, 1, runs, float(np.median(times) * 1e3), float(np.percentile(times, 90) * 1e3))


def measure_latencies(
    paths: list[Path], face: np.ndarray, runs: int = 200, rounds: int = 5, warmup: int = 20
) -> dict[str, Latency]:
    """Single-thread batch-1 latency of several files, interleaved: each round times `runs / rounds` calls
    of every file in turn, so a load that comes and goes (a training run beside the conversion) falls on
    all of them alike, and the medians of two models compare even on a busy machine."""
    backends = {str(p): open_backend(p, threads=1) for p in paths}
    inputs = {k: input_spec_for(b).prepare(face[None]) for k, b in backends.items()}
    for k, b in backends.items():
        for _ in range(warmup):
            b.run(inputs[k])
    times: dict[str, list[float]] = {k: [] for k in backends}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for k, b in backends.items():
            for _ in range(per_round):
                t = time.perf_counter()
                b.run(inputs[k])
                times[k].append(time.perf_counter() - t)
    return {
        k: Latency(1, 1, len(t), float(np.median(t) * 1e3), float(np.percentile(t, 90) * 1e3))
        for k, t in times.items()
    }
