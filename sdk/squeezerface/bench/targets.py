"""The performance targets against one run's measurements: met, missed (by how much, and why), not judged.

The targets are benchmarks, not tests: embedding >= 100x and end-to-end verify >= 30x faster than dlib on
one thread, int8 faster than fp32 on each backend, and the embedder at >= 30 % of the measured GEMM
ceiling. A miss is reported with its size and where the time goes, from what the same run measured, so
the report explains itself; a target that could not be measured here says why instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from squeezerface.bench.config import BenchConfig
from squeezerface.bench.roofline import RooflinePoint
from squeezerface.bench.stages import ConfigRun
from squeezerface.bench.stats import LatencyRecord, find_record

TARGET_EMBED_SPEEDUP = 100.0
TARGET_E2E_SPEEDUP = 30.0
TARGET_GEMM_FRACTION = 0.30
GEMM_TARGET = "embedder >= 30 % of measured GEMM GFLOP/s (1 thread)"


@dataclass(frozen=True)
class TargetCheck:
    """A performance target held against a measurement. met is None when it could not be measured."""

    target: str
    config: str
    required: str
    measured: str
    met: bool | None
    shortfall: str = ""
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shortfall(measured: float, required: float) -> str:
    return f"{measured:.1f}x of {required:.0f}x: {100 * (1 - measured / required):.0f} % short"


def _e2e_why(records: Sequence[LatencyRecord], cfg: str, threads: int, peer_e2e: float) -> str:
    """Where our end-to-end time goes, and the bound the shared decode puts on the ratio. Per photo, verify
    runs `decode_detect` (the photo path: a large JPEG is never decoded whole), then align, quality, embed;
    a run without that stage (an older worker) is explained with decode + detect instead."""
    stages: tuple[str, ...] = ("decode_detect", "align", "quality", "embed")
    if find_record(records, cfg, threads, "decode_detect") is None:
        stages = ("decode", "detect", "align", "quality", "embed")
    parts = {s: find_record(records, cfg, threads, s) for s in (*stages, "end_to_end")}
    e2e = parts["end_to_end"]
    if e2e is None:
        return ""
    per_photo = {s: r.p50_ms for s, r in parts.items() if r is not None and s != "end_to_end"}
    listed = ", ".join(f"{s.replace('_', '+')} {v:.2f}" for s, v in per_photo.items())
    rest = e2e.p50_ms - 2 * sum(per_photo.values())
    text = (
        f"ours {e2e.p50_ms:.2f} ms against 2 x photo A's stages ({listed} ms p50): {rest:+.2f} ms that the "
        "stages timed one by one do not show (photo B's own costs, face choice and records, caches gone cold "
        "as models and photos alternate)"
    )
    decode, found = find_record(records, cfg, threads, "decode"), per_photo.get("decode_detect")
    if decode is not None and (found is None or found >= decode.p50_ms):
        bound = peer_e2e / (2 * decode.p50_ms)
        text += (
            f"; a full decode is the same code in both pipelines, so even with every other stage free the "
            f"ratio could not pass {bound:.0f}x on these photos"
        )
    share = found if found is not None else per_photo.get("detect")
    if share:
        what = "decode+detect" if found is not None else "detect"
        text += f"; {what} is {100 * 2 * share / e2e.p50_ms:.0f} % of ours"
    return text


def check_targets(
    runs: Sequence[ConfigRun], records: Sequence[LatencyRecord], roofline: Sequence[RooflinePoint]
) -> list[TargetCheck]:
    """The issue's performance targets against this run's measurements (benchmarks, not tests): embed
    >= 100x and end to end >= 30x faster than dlib on one thread, int8 faster than fp32 on each backend,
    embedder >= 30 % of the GEMM ceiling. A miss says by how much and where the time goes. Pure."""
    ours = [r for r in runs if r.config.pipeline == "squeezerface"]
    return [*_speedup_checks(ours, records), *_int8_checks(ours, records), *_gemm_checks(roofline)]


_SPEEDUP_TARGETS = (
    ("embed", TARGET_EMBED_SPEEDUP, "embedding >= 100x faster than dlib's (1 thread)"),
    ("end_to_end", TARGET_E2E_SPEEDUP, "end-to-end verify >= 30x faster than dlib's (1 thread)"),
)


def _speedup_checks(ours: Sequence[ConfigRun], records: Sequence[LatencyRecord]) -> list[TargetCheck]:
    """Embedding and end-to-end speed-up over dlib, one thread, for every configuration that ran."""
    return [
        _speedup_check(run.config, records, stage, required, title)
        for run in ours
        if run.config.threads == 1 and run.status == "ok"
        for stage, required, title in _SPEEDUP_TARGETS
    ]


def _speedup_check(
    cfg: BenchConfig, records: Sequence[LatencyRecord], stage: str, required: float, title: str
) -> TargetCheck:
    r = find_record(records, cfg.name, 1, stage)
    if r is None or r.speedup_vs_dlib is None:
        why = "no dlib figure in this run" if r is not None else f"{stage} not measured (see notes)"
        return TargetCheck(title, cfg.label, f">= {required:.0f}x", "n/a", None, why=why)
    met = r.speedup_vs_dlib >= required
    peer_p50 = r.p50_ms * r.speedup_vs_dlib
    if stage == "embed":
        engine = find_record(records, cfg.name, 1, "embed_engine")
        why = f"ours {r.p50_ms:.3f} ms" + (f" (engine call alone {engine.p50_ms:.3f} ms)" if engine else "")
        why += f", dlib {peer_p50:.1f} ms (ResNet on a 150x150 chip)"
    else:
        why = _e2e_why(records, cfg.name, 1, peer_p50) + f"; dlib {peer_p50:.1f} ms"
    return TargetCheck(
        title,
        cfg.label,
        f">= {required:.0f}x",
        f"{r.speedup_vs_dlib:.1f}x",
        met,
        "" if met else _shortfall(r.speedup_vs_dlib, required),
        why,
    )


def _int8_checks(ours: Sequence[ConfigRun], records: Sequence[LatencyRecord]) -> list[TargetCheck]:
    """int8 faster than fp32, per backend and thread count (or why it could not be compared)."""
    by_key: dict[tuple[str, int], dict[str, ConfigRun]] = {}
    for run in ours:
        by_key.setdefault((run.config.backend, run.config.threads), {})[run.config.precision] = run
    checks: list[TargetCheck] = []
    for (backend, threads), pair in sorted(by_key.items()):
        title = f"int8 faster than fp32 on {backend} ({threads} thread{'s' if threads > 1 else ''})"
        missing = [p for p in ("int8", "fp32") if p not in pair or pair[p].status != "ok"]
        if missing:
            reasons = "; ".join(
                f"{p}: {pair[p].reason}" if p in pair else f"{p}: not configured" for p in missing
            )
            checks.append(
                TargetCheck(title, f"{backend} @{threads}t", "int8 p50 < fp32 p50", "n/a", None, why=reasons)
            )
            continue
        for stage in ("embed", "end_to_end"):
            check = _int8_check(title, backend, threads, stage, pair, records)
            if check is not None:
                checks.append(check)
    return checks


def _int8_check(
    title: str,
    backend: str,
    threads: int,
    stage: str,
    pair: dict[str, ConfigRun],
    records: Sequence[LatencyRecord],
) -> TargetCheck | None:
    a = find_record(records, pair["int8"].config.name, threads, stage)
    b = find_record(records, pair["fp32"].config.name, threads, stage)
    if a is None or b is None:
        return None
    met = a.p50_ms < b.p50_ms
    return TargetCheck(
        f"{title}: {stage}",
        f"{backend} @{threads}t",
        "int8 p50 < fp32 p50",
        f"int8 {a.p50_ms:.3f} ms vs fp32 {b.p50_ms:.3f} ms ({b.p50_ms / a.p50_ms:.2f}x)",
        met,
        "" if met else f"int8 is {100 * (a.p50_ms / b.p50_ms - 1):.0f} % slower",
        "" if met else _int8_why(backend, stage, records, pair, threads),
    )


def _gemm_checks(roofline: Sequence[RooflinePoint]) -> list[TargetCheck]:
    """The embedder's share of the GEMM ceiling of its precision, one thread."""
    return [_gemm_check(point, roofline) for point in roofline if point.threads == 1]


def _gemm_check(point: RooflinePoint, roofline: Sequence[RooflinePoint]) -> TargetCheck:
    if point.precision != point.ceiling:  # int8 without an int8 ceiling: shown, not judged
        return TargetCheck(
            GEMM_TARGET,
            f"{point.config} @1t",
            ">= 30 %",
            f"{point.achieved_gflops:.1f} int8 GOP/s = {100 * point.fraction:.0f} % of the fp32 "
            f"ceiling ({point.gemm_gflops:.1f} GFLOP/s)",
            None,
            why="no int8 GEMM ceiling measured here (it needs the onnx package) and int8 kernels "
            "(VNNI, SDOT/I8MM) can exceed the fp32 one: shown, not judged",
        )
    met = point.fraction >= TARGET_GEMM_FRACTION
    engine = ""
    if point.engine_fraction:
        engine = f"; the engine call alone reaches {100 * point.engine_fraction:.0f} %"
    return TargetCheck(
        GEMM_TARGET,
        f"{point.config} @1t",
        ">= 30 %",
        f"{100 * point.fraction:.1f} % ({point.achieved_gflops:.1f} of {point.gemm_gflops:.1f} "
        f"{'GOP/s, int8 ceiling' if point.ceiling == 'int8' else 'GFLOP/s, fp32 ceiling'})",
        met,
        "" if met else f"{100 * (TARGET_GEMM_FRACTION - point.fraction):.1f} points short",
        "" if met else _gemm_why(point, roofline, engine),
    )


def _gemm_why(point: RooflinePoint, roofline: Sequence[RooflinePoint], engine: str) -> str:
    """Why an embedder stays far below its ceiling, from what this run measured: when the same model in
    the other precision on the same backend does well, the kernels of this precision are the limit, not
    the model's shape."""
    sibling = next(
        (
            p
            for p in roofline
            if p.backend == point.backend and p.threads == point.threads and p.precision != point.precision
        ),
        None,
    )
    if sibling is not None and sibling.fraction >= TARGET_GEMM_FRACTION:
        text = (
            f"the same model in {sibling.precision} on {point.backend} reaches "
            f"{100 * sibling.fraction:.0f} % of its ceiling, so the model's shape is not the limit: "
            f"{point.backend}'s {point.precision} kernels on this CPU are{engine}"
        )
        if point.backend == "litert" and point.precision == "int8" and _machine_is_x86():
            text += "; LiteRT's int8 path targets ARM: measure there with `squeezerface bench`"
        return text
    return (
        "batch 1 at 112x112: many small 1x1/3x3 convolutions with few channels (low arithmetic intensity, "
        f"short inner loops) and per-layer overhead keep a small network far from a large GEMM{engine}"
    )


def _int8_why(
    backend: str, stage: str, records: Sequence[LatencyRecord], pair: dict[str, ConfigRun], threads: int
) -> str:
    engine_a = find_record(records, pair["int8"].config.name, threads, "embed_engine")
    engine_b = find_record(records, pair["fp32"].config.name, threads, "embed_engine")
    text = ""
    if engine_a and engine_b:
        text = f"engine call alone: int8 {engine_a.p50_ms:.3f} ms vs fp32 {engine_b.p50_ms:.3f} ms"
    if backend == "litert" and _machine_is_x86():
        text += (
            "; on x86 LiteRT's int8 kernels are slower than its fp32 XNNPACK path (also seen in "
            "conversion.md); int8 is the fast path on ARM: measure there with `squeezerface bench`"
        )
    return text.lstrip("; ")


def _machine_is_x86() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
