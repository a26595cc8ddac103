"""How close the embedder gets to what the core can compute: a measured GEMM ceiling and the achieved rate.

A latency alone does not say whether a model is slow or the core is. So the benchmark measures, in the same
run and process conditions, the core's sustained matrix-multiply rate, the best a dense kernel reaches on
it: float32 through numpy's BLAS, and int8 through onnxruntime's MatMulInteger (the kernels its int8
models run on) where the `onnx` package is there to write that one-node model. It then reports the
embedder's achieved rate, 2 x MACs / latency, as a fraction of the ceiling of its own precision. The MACs
come from the model card (`mflops` there counts multiply-accumulates, in millions). Without an int8
ceiling, an int8 model is shown against the fp32 one but not judged by it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from squeezerface.bench.stats import find_record

if TYPE_CHECKING:
    from squeezerface.bench.stages import ConfigRun

GEMM_SIZES = (256, 512, 1024)
"""Square sizes tried; the best median is the ceiling. 1024^3 x 2 = 2.1 GFLOP: ~0.1-0.5 s a call on one
ARM core, so the measurement stays short on a Raspberry Pi."""


@dataclass(frozen=True)
class GemmResult:
    """Sustained GEMM rate: the best over sizes of the median over repeats. float32 through numpy's BLAS;
    int8 (u8 x s8 -> s32) through onnxruntime's MatMulInteger, the kernels its int8 models use."""

    threads: int
    gflops: float  # best size's median rate (for int8: GOP/s)
    size: int  # that size (n x n times n x n)
    per_size: dict[int, float]  # median rate of each size
    repeats: dict[int, int]
    blas: str | None = None  # what computed it
    dtype: str = "fp32"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_size"] = {str(k): v for k, v in self.per_size.items()}
        d["repeats"] = {str(k): v for k, v in self.repeats.items()}
        return d


def gemm_flops(n: int) -> float:
    """Floating-point operations of one n x n by n x n product (a multiply and an add per MAC)."""
    return 2.0 * n * n * n


def measure_gemm(
    threads: int,
    sizes: Sequence[int] = GEMM_SIZES,
    min_seconds: float = 0.5,
    min_repeats: int = 5,
    max_repeats: int = 200,
    seed: int = 0,
) -> GemmResult:
    """Time `a @ b` (float32) at each size until both `min_repeats` calls and `min_seconds` have passed.

    The BLAS thread count is set by the environment of the process (OPENBLAS_NUM_THREADS and friends, set
    before numpy is imported): run this in a worker process started with that environment, as the bench
    harness does; `threads` is recorded, not applied."""
    import numpy as np

    from squeezerface.bench.device import numpy_blas

    rng = np.random.default_rng(seed)
    per_size: dict[int, float] = {}
    repeats: dict[int, int] = {}
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), np.float32)
        per_size[n], repeats[n] = _median_rate(
            lambda a=a, b=b, out=out: np.matmul(a, b, out=out), n, min_seconds, min_repeats, max_repeats
        )
    best = max(per_size, key=lambda n: per_size[n])
    return GemmResult(threads, per_size[best], best, per_size, repeats, numpy_blas())


def _median_rate(call, n: int, min_seconds: float, min_repeats: int, max_repeats: int) -> tuple[float, int]:
    import numpy as np

    call()  # warm-up: page in, let the thread pool spin up
    rates: list[float] = []
    start = time.perf_counter()
    while len(rates) < max_repeats and (
        len(rates) < min_repeats or time.perf_counter() - start < min_seconds
    ):
        t0 = time.perf_counter()
        call()
        rates.append(gemm_flops(n) / (time.perf_counter() - t0) / 1e9)
    return float(np.median(rates)), len(rates)


def measure_int8_gemm(
    threads: int,
    sizes: Sequence[int] = GEMM_SIZES,
    min_seconds: float = 0.5,
    min_repeats: int = 5,
    max_repeats: int = 200,
    seed: int = 0,
) -> GemmResult | None:
    """The int8 ceiling: onnxruntime's MatMulInteger (uint8 activations x int8 constant weights -> int32,
    as a quantized layer computes) on `threads` intra-op threads. None where the `onnx` package (to write
    the one-node model) is not installed: the on-device runtime lacks it, the development install has it."""
    try:
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper

        from squeezerface._ort import import_onnxruntime

        ort = import_onnxruntime()  # telemetry off: see squeezerface._ort
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    per_size: dict[int, float] = {}
    repeats: dict[int, int] = {}
    for n in sizes:
        weights = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "b")
        graph = helper.make_graph(
            [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
            "int8_gemm",
            [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
            [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
            initializer=[weights],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8  # any onnxruntime of the supported range reads it
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
        per_size[n], repeats[n] = _median_rate(
            lambda s=session, f=feed: s.run(None, f), n, min_seconds, min_repeats, max_repeats
        )
    best = max(per_size, key=lambda n: per_size[n])
    engine = f"onnxruntime {ort.__version__} MatMulInteger (u8 x s8)"
    return GemmResult(threads, per_size[best], best, per_size, repeats, engine, "int8")


def achieved_gflops(mmacs: float, seconds: float) -> float:
    """GFLOP/s of a model of `mmacs` million multiply-accumulates that runs in `seconds`."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return 2.0 * mmacs * 1e6 / seconds / 1e9


@dataclass(frozen=True)
class RooflinePoint:
    """One embedder configuration held against the GEMM ceiling of the same thread count."""

    config: str
    backend: str
    precision: str
    threads: int
    mmacs: float
    embed_p50_ms: float
    achieved_gflops: float
    gemm_gflops: float
    fraction: float  # achieved / GEMM ceiling
    engine_p50_ms: float | None = None  # the engine call alone (no preprocessing, no normalisation)
    engine_fraction: float | None = None
    ceiling: str = "fp32"  # the precision of the GEMM ceiling held against

    def to_dict(self) -> dict:
        return asdict(self)


def roofline_point(
    config: str,
    backend: str,
    precision: str,
    threads: int,
    mmacs: float,
    embed_p50_ms: float,
    gemm_gflops: float,
    engine_p50_ms: float | None = None,
    ceiling: str = "fp32",
) -> RooflinePoint:
    """Achieved rate and fraction of the ceiling, for the whole embed call and for the engine alone. Pure."""
    achieved = achieved_gflops(mmacs, embed_p50_ms / 1e3)
    engine_fraction = None
    if engine_p50_ms:
        engine_fraction = achieved_gflops(mmacs, engine_p50_ms / 1e3) / gemm_gflops
    return RooflinePoint(
        config,
        backend,
        precision,
        threads,
        mmacs,
        embed_p50_ms,
        achieved,
        gemm_gflops,
        achieved / gemm_gflops,
        engine_p50_ms,
        engine_fraction,
        ceiling,
    )


def roofline_points(runs: Sequence[ConfigRun], gemm: dict[tuple[int, str], float]) -> list[RooflinePoint]:
    """The embedder of every measured configuration of ours held against the GEMM ceiling of its thread
    count and precision ({(threads, "fp32" | "int8"): GFLOP/s}); an int8 model falls back to the fp32
    ceiling when no int8 one was measured. Pure."""
    points = []
    for run in runs:
        cfg = run.config
        if run.status != "ok" or cfg.pipeline != "squeezerface":
            continue
        embed = find_record(run.records, cfg.name, cfg.threads, "embed")
        engine = find_record(run.records, cfg.name, cfg.threads, "embed_engine")
        mmacs = run.models.get("embedder_mmacs")
        if embed is None or not mmacs:
            continue
        ceiling = "int8" if embed.precision == "int8" and (cfg.threads, "int8") in gemm else "fp32"
        if (cfg.threads, ceiling) not in gemm:
            continue
        points.append(
            roofline_point(
                cfg.name,
                cfg.backend,
                embed.precision,
                cfg.threads,
                float(mmacs),
                embed.p50_ms,
                gemm[(cfg.threads, ceiling)],
                engine.p50_ms if engine else None,
                ceiling,
            )
        )
    return points
