"""Timing summaries: how a stage is timed, what is reported of its runs, and how ours compare with dlib's.

Each stage gets `warmup` untimed calls, then `runs` timed calls with the garbage collector off, reported
as p50/p90/p99, mean and std. Ratios are of medians, measured in the same run: ratio_vs_dlib = ours p50 /
dlib p50 (below 1 is faster), speedup_vs_dlib its inverse. Everything here is pure (bar the clock) and
stdlib-only, so the percentiles match numpy's without importing it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from squeezerface.bench.config import BenchConfig


@dataclass(frozen=True)
class Stats:
    """Summary of one stage's timed runs, in milliseconds."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of already sorted values, linearly interpolated between closest ranks
    (numpy's default method), without numpy. Pure."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples_s: Sequence[float]) -> Stats:
    """Percentiles, mean and (population) standard deviation of timings given in seconds. Pure."""
    if not samples_s:
        raise ValueError("no samples to summarize")
    ms = sorted(1e3 * s for s in samples_s)
    n = len(ms)
    mean = sum(ms) / n
    std = (sum((v - mean) ** 2 for v in ms) / n) ** 0.5
    return Stats(n, percentile(ms, 50), percentile(ms, 90), percentile(ms, 99), mean, std, ms[0], ms[-1])


def time_calls(
    fn: Callable[[], object],
    runs: int,
    warmup: int,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[float]:
    """Call `fn` `warmup` times untimed, then `runs` times timed; the timings in seconds.

    The garbage collector is off while timing (as `timeit` does), so a collection triggered by an earlier
    stage's garbage is not billed to this one."""
    for _ in range(warmup):
        fn()
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        samples = []
        for _ in range(runs):
            t0 = clock()
            fn()
            samples.append((clock() - t0) / 1e9)
    finally:
        if enabled:
            gc.enable()
    return samples


@dataclass
class LatencyRecord:
    """One stage of one configuration: the row `latency.json` is made of."""

    config: str
    pipeline: str
    stage: str
    backend: str
    precision: str
    threads: int
    runs: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ratio_vs_dlib: float | None = None  # ours p50 / dlib p50, same stage (below 1: faster than dlib)
    speedup_vs_dlib: float | None = None  # dlib p50 / ours p50
    peer: str | None = None  # the dlib configuration compared with ("dlib @1t")
    note: str = ""

    @classmethod
    def from_stats(
        cls, cfg: BenchConfig, stage: str, precision: str, stats: Stats, note: str = ""
    ) -> LatencyRecord:
        s = asdict(stats)
        s.pop("runs")
        return cls(
            cfg.name,
            cfg.pipeline,
            stage,
            cfg.backend,
            precision,
            cfg.threads,
            stats.runs,
            cfg.warmup,
            **s,
            note=note,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_record(
    records: Sequence[LatencyRecord], config: str, threads: int, stage: str
) -> LatencyRecord | None:
    """The record of one stage of one configuration at one thread count, or None."""
    return next(
        (r for r in records if r.config == config and r.threads == threads and r.stage == stage), None
    )


def attach_ratios(records: Sequence[LatencyRecord]) -> list[LatencyRecord]:
    """Each of our records with its dlib counterpart: the same stage at the same thread count, else the
    peer's 1-thread figure (dlib computes on one thread). Pure: returns new records."""
    peers = {(r.stage, r.threads): r for r in records if r.pipeline == "dlib"}
    out = []
    for r in records:
        if r.pipeline == "dlib":
            out.append(r)
            continue
        peer = peers.get((r.stage, r.threads)) or peers.get((r.stage, 1))
        if peer is None or peer.p50_ms <= 0 or r.p50_ms <= 0:
            out.append(r)
            continue
        out.append(
            replace(
                r,
                ratio_vs_dlib=r.p50_ms / peer.p50_ms,
                speedup_vs_dlib=peer.p50_ms / r.p50_ms,
                peer=f"{peer.config} @{peer.threads}t",
            )
        )
    return out
