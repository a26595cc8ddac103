"""What is timed per stage, and the worker process that times one configuration.

Stages, batch 1, one photo: decode (JPEG bytes to RGB), detect (detector + landmark refiner), align
(5-point warp), quality (the gate's measurements), embed (preprocess + engine + normalise), embed_engine
(the engine call alone), match (cosine + threshold), and end_to_end (`FaceVerifier.verify` of two photos
from their bytes). The dlib peer has the same stages where it has them (`dlib_peer`).

Each configuration runs in a fresh worker process (`python -m squeezerface.bench --worker JOB`), one after
another, never two at once: model load time and peak RSS then belong to that configuration alone, and
every configuration, ours and the peer's, starts from the same process conditions. Thread counts are set
in the worker's environment (OMP/OPENBLAS/MKL_NUM_THREADS) before anything is imported, and passed to
onnxruntime, LiteRT and OpenCV. A worker imports only the engine its configuration needs.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from squeezerface.bench.config import MIN_RUNS, STAGE_BUDGET_S, BenchConfig, thread_env
from squeezerface.bench.images import ImageSpec, image_bytes
from squeezerface.bench.memory import peak_rss_mb
from squeezerface.bench.stats import LatencyRecord, summarize, time_calls

STAGES = (
    "decode",
    "detect",
    "decode_detect",
    "align",
    "quality",
    "embed",
    "embed_engine",
    "match",
    "end_to_end",
)
"""Our pipeline's stages, in pipeline order; the dlib peer has decode, detect, align, embed, match and
end_to_end."""
STAGE_TITLES = {
    "decode": "decode (JPEG -> RGB)",
    "detect": "detect (+ landmark refiner) on the decoded full-size photo",
    "decode_detect": "decode + detect from the encoded photo, as verify runs them (ours: JPEG decoded at "
    "reduced scale, pass by pass)",
    "align": "align (5-point warp)",
    "quality": "quality measurements",
    "embed": "embed (preprocess + engine + L2)",
    "embed_engine": "embed, engine call only",
    "match": "match (score + threshold)",
    "end_to_end": "end to end: verify(photo A, photo B)",
}
STAGE_PROGRESS_S = 5.0
"""A worker announces a stage expected to take longer than this (the dlib peer's): a long run shows life."""

NO_FACE_NOTE = "no face in this image: timed on a face-free image"
ASSUMED_FACE_NOTE = "centred assumed face (none detected)"
NO_FACE_END_TO_END = "end_to_end skipped: no face detected in the image(s)"


@dataclass
class ConfigRun:
    """What one worker process measured for one configuration (or why it did not)."""

    config: BenchConfig
    status: str  # "ok" | "skipped" | "error"
    reason: str = ""
    import_ms: float | None = None  # importing the engine (onnxruntime, LiteRT, dlib)
    load_ms: float | None = None  # constructing the models: files read, sessions/interpreters built
    peak_rss_mb: float | None = None  # the worker's peak resident memory after all stages
    models: dict[str, Any] = field(default_factory=dict)
    records: list[LatencyRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["records"] = [r.to_dict() for r in self.records]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfigRun:
        d = dict(d)
        cfg = BenchConfig(**d.pop("config"))
        records = [LatencyRecord(**r) for r in d.pop("records", [])]
        return cls(config=cfg, records=records, **d)


def _centred_face(height: int, width: int):
    """A face assumed in the middle of an image (the ArcFace template scaled into a centred square), for
    timing align and embed on an image where no face was found."""
    from squeezerface.align import template
    from squeezerface.face import Face

    side = min(height, width) / 2.0
    x0, y0 = (width - side) / 2.0, (height - side) / 2.0
    return Face(
        box=(x0, y0, x0 + side, y0 + side),
        landmarks=template(112) * (side / 112.0) + [x0, y0],
        detected=False,
    )


def _start(cfg: BenchConfig, engine: str) -> ConfigRun:
    """A run of `cfg` with OpenCV on its thread count and the import of its engine module timed."""
    run = ConfigRun(cfg, "ok")
    import cv2

    cv2.setNumThreads(cfg.threads)
    t0 = time.perf_counter()
    importlib.import_module(engine)
    run.import_ms = (time.perf_counter() - t0) * 1e3
    return run


def _stage_timer(run: ConfigRun, precision: str, progress: bool) -> Callable[..., None]:
    """`record(stage, fn, note="")`: time `fn` as `stage` of `run` and append its record. With `progress`,
    a stage expected to take longer than STAGE_PROGRESS_S is announced on stderr first."""
    cfg = run.config

    def record(stage: str, fn: Callable[[], object], note: str = "") -> None:
        t0 = time.perf_counter()
        fn()  # one extra untimed call, to estimate how long the stage will take
        once = time.perf_counter() - t0
        runs, warmup = cfg.runs, cfg.warmup
        if once * runs > STAGE_BUDGET_S and runs > MIN_RUNS:
            runs, warmup = max(MIN_RUNS, int(STAGE_BUDGET_S / once)), min(warmup, 1)
            note = "; ".join(filter(None, [note, f"{runs} timed runs (~{once:.2f} s a call)"]))
        if progress and once * (runs + warmup) > STAGE_PROGRESS_S:
            eta = once * (runs + warmup)
            print(f"    {cfg.label} {stage}: about {eta:.0f} s", file=sys.stderr, flush=True)
        stats = summarize(time_calls(fn, runs, warmup))
        run.records.append(LatencyRecord.from_stats(cfg, stage, precision, stats, note))

    return record


def _photos(images: Sequence[ImageSpec]) -> tuple[list[bytes], list[Any]]:
    """The first two photos, encoded (what decode and end_to_end take) and decoded to RGB."""
    from squeezerface.imageio import load_image

    data = [image_bytes(spec) for spec in images[:2]]
    return data, [load_image(d) for d in data]


def _verifier(cfg: BenchConfig):
    """Our pipeline as configured, or a peer's: YuNet + a public embedder file, no quality gate (the
    peers have none), through the same alignment, embedding call and matching as ours."""
    from squeezerface.verify import FaceVerifier

    if cfg.pipeline != "peer":
        return FaceVerifier(cfg.embedder, cfg.detector, threads=cfg.threads, backend=cfg.backend)
    from squeezerface.bench.yunet_peer import YuNetDetector

    detector = YuNetDetector(cfg.detector, threads=cfg.threads)
    return FaceVerifier(cfg.embedder, detector, threads=cfg.threads, backend=cfg.backend, quality=None)


def _detector_facts(det) -> dict[str, Any]:
    """What the report says of a detector: ours (card, input, refiner) or the peer's (file, input cap)."""
    if hasattr(det, "card"):
        return {
            "detector": det.card.file,
            "detector_precision": det.card.precision,
            "detector_input": det.input_size,
            "detector_bytes": det.card.size_bytes,
            "refiner": None if det.refiner is None else det.refiner.path.name,
        }
    path = Path(det.path)
    return {
        "detector": path.name,
        "detector_precision": "fp32",
        "detector_input": f"longer side <= {det.max_side}",
        "detector_bytes": path.stat().st_size,
        "refiner": None,
    }


def measure_squeezerface(cfg: BenchConfig, images: Sequence[ImageSpec], progress: bool = False) -> ConfigRun:
    """Time our pipeline's stages for one configuration, in this process (a worker)."""
    run = _start(cfg, "ai_edge_litert.interpreter" if cfg.backend == "litert" else "onnxruntime")

    from squeezerface.errors import SqueezerfaceError
    from squeezerface.imageio import load_image
    from squeezerface.photo import Photo
    from squeezerface.quality import assess
    from squeezerface.verify import DEFAULT_QUALITY, choose_face

    t0 = time.perf_counter()
    verifier = _verifier(cfg)
    run.load_ms = (time.perf_counter() - t0) * 1e3
    card, det = verifier.embedder.card, verifier.detector
    precision = card.precision
    if precision != cfg.precision:
        run.notes.append(
            f"config says {cfg.precision}, the embedder's card says {precision}: recorded {precision}"
        )
    run.models = {
        "embedder": card.file,
        "embedder_precision": card.precision,
        "embedder_params": card.params,
        "embedder_mmacs": card.mflops,
        "embedder_bytes": card.size_bytes,
        **_detector_facts(det),
        "engines": list(verifier.engines),
    }
    record = _stage_timer(run, precision, progress)

    data, rgb = _photos(images)
    record("decode", lambda: load_image(data[0]))
    found = [det.detect(x) for x in rgb]
    record("detect", lambda: det.detect(rgb[0]), "" if found[0] else NO_FACE_NOTE)
    record("decode_detect", lambda: verifier.find_faces(Photo.open(data[0])))
    faces = [
        choose_face(f, x.shape[0], x.shape[1], "largest", "bench") if f else _centred_face(*x.shape[:2])
        for f, x in zip(found, rgb, strict=True)
    ]
    assumed = "" if found[0] else ASSUMED_FACE_NOTE
    record("align", lambda: verifier.embedder.align(rgb[0], faces[0]), assumed)
    crops = [verifier.embedder.align(x, f) for x, f in zip(rgb, faces, strict=True)]
    if verifier.quality is not None:  # the peers have no quality gate
        face, crop = faces[0], crops[0]
        record("quality", lambda: assess(face.landmarks, face.box, crop, DEFAULT_QUALITY), assumed)
    record("embed", lambda: verifier.embedder.get_feat(crops[0][None]), assumed)
    x = card.input.prepare(crops[0][None])
    backend = verifier.embedder.backend
    record("embed_engine", lambda: backend.run(x), assumed)
    emb = [verifier.embedder.get_feat(c[None])[0] for c in crops]
    record("match", lambda: verifier.compare(emb[0], emb[1]))
    if all(found):
        try:
            match = verifier.verify(data[0], data[1])
        except SqueezerfaceError as exc:
            run.notes.append(f"end_to_end skipped: verify failed on these photos: {exc}")
        else:
            run.notes.append(
                f"verify(A, B): cosine {match.score:.4f}, accepted={match.accepted} ({match.operating_point})"
            )
            record("end_to_end", lambda: verifier.verify(data[0], data[1]))
    else:
        run.notes.append(NO_FACE_END_TO_END)
    run.peak_rss_mb = peak_rss_mb()
    return run


def measure_dlib(cfg: BenchConfig, images: Sequence[ImageSpec], progress: bool = False) -> ConfigRun:
    """Time the dlib peer's stages (face_recognition's pipeline), in this process (a worker)."""
    run = _start(cfg, "dlib")
    from squeezerface.bench.dlib_peer import DlibPipeline
    from squeezerface.errors import SqueezerfaceError
    from squeezerface.imageio import load_image

    t0 = time.perf_counter()
    pipe = DlibPipeline()
    run.load_ms = (time.perf_counter() - t0) * 1e3
    run.models = {
        "detector": "dlib HOG frontal face detector (upsample 1)",
        "landmarks": "shape_predictor_5_face_landmarks",
        "embedder": "dlib_face_recognition_resnet_model_v1 (150x150 chip, 128-d)",
        "dlib_uses_blas": pipe.uses_blas,
    }
    if not pipe.uses_blas:
        run.notes.append(
            "this dlib build calls no BLAS: it computes on one thread whatever the thread setting"
        )
    record = _stage_timer(run, "fp32", progress)
    data, rgb = _photos(images)
    record("decode", lambda: load_image(data[0]))
    found = [pipe.detect(x) for x in rgb]
    record("detect", lambda: pipe.detect(rgb[0]), "" if found[0] else NO_FACE_NOTE)
    record("decode_detect", lambda: pipe.detect(load_image(data[0])))
    rects = [
        pipe.largest(f) if f else pipe.rectangle(_centred_face(*x.shape[:2]).box)
        for f, x in zip(found, rgb, strict=True)
    ]
    assumed = "" if found[0] else ASSUMED_FACE_NOTE
    record("align", lambda: pipe.align(rgb[0], rects[0]), assumed)
    chips = [pipe.align(x, r) for x, r in zip(rgb, rects, strict=True)]
    record("embed", lambda: pipe.embed(chips[0]), assumed)
    emb = [pipe.embed(c) for c in chips]
    record("match", lambda: pipe.match(emb[0], emb[1]))
    if all(found):
        try:
            distance, same = pipe.verify(data[0], data[1])
        except SqueezerfaceError as exc:
            run.notes.append(f"end_to_end skipped: {exc}")
        else:
            run.notes.append(f"verify(A, B): distance {distance:.4f}, same={same} (tolerance 0.6)")
            record("end_to_end", lambda: pipe.verify(data[0], data[1]))
    else:
        run.notes.append(NO_FACE_END_TO_END)
    run.peak_rss_mb = peak_rss_mb()
    return run


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Execute one job in this process: {"kind": "latency", "config": ..., "images": [...]},
    {"kind": "gemm", "threads": n} or {"kind": "search", "threads": n, "sizes": [...], ...}."""
    kind = job["kind"]
    if kind == "gemm":
        from squeezerface.bench.roofline import measure_gemm, measure_int8_gemm

        threads, seconds = int(job["threads"]), float(job.get("min_seconds", 0.5))
        int8 = measure_int8_gemm(threads, min_seconds=seconds)
        ceilings = [measure_gemm(threads, min_seconds=seconds)] + ([int8] if int8 else [])
        return {"ceilings": [c.to_dict() for c in ceilings]}
    if kind == "search":
        from squeezerface.bench.search import bench_search

        records = bench_search(
            job["sizes"],
            threads=int(job["threads"]),
            queries=int(job.get("queries", 50)),
            k=int(job.get("k", 10)),
            progress=bool(job.get("progress", True)),
        )
        return {"records": [r.to_dict() for r in records]}
    if kind != "latency":
        raise ValueError(f"unknown job kind {kind!r}")
    cfg = BenchConfig(**job["config"])
    images = [ImageSpec(**i) for i in job["images"]]
    progress = bool(job.get("progress", False))
    from squeezerface.errors import EmbedderUnavailableError

    measure = measure_dlib if cfg.pipeline == "dlib" else measure_squeezerface
    try:
        run = measure(cfg, images, progress)
    except EmbedderUnavailableError as exc:
        run = ConfigRun(cfg, "skipped", reason=str(exc))
    return run.to_dict()


def run_in_worker(job: dict[str, Any], threads: int, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run a job in a fresh `python -m squeezerface.bench --worker` process with the thread environment
    set, and return its result. A crash or timeout comes back as {"error": ...}, never raises."""
    env = {**os.environ, **thread_env(threads)}
    with tempfile.TemporaryDirectory(prefix="squeezerface-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        cmd = [
            sys.executable,
            "-m",
            "squeezerface.bench",
            "--worker",
            str(job_path),
            "--result",
            str(result_path),
        ]
        try:  # the worker's stderr (progress, a traceback) goes straight to ours
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"worker timed out after {timeout_s:.0f} s"}
        if proc.returncode != 0 or not result_path.is_file():
            return {"error": f"worker exited with status {proc.returncode} (its error is printed above)"}
        return json.loads(result_path.read_text())


def worker_main(job_path: str, result_path: str) -> int:
    """The worker process's whole life: read a job, run it, write its result (see `run_in_worker`)."""
    job = json.loads(Path(job_path).read_text())
    result = run_job(job)
    Path(result_path).write_text(json.dumps(result))
    return 0
