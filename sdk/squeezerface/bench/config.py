"""What to time: the configuration records and the small TOML/JSON files (or built-in list) they come from.

A configuration names a pipeline, backend, precision, thread count and run counts, opencv_zoo style. The
parsers here are pure given the CPU count, so a config file behaves the same in tests as on a device;
`unavailable_reason` is the one place that looks at the installation, so a configuration that cannot run
here is recorded as skipped with its reason instead of failing the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PIPELINES = ("squeezerface", "dlib", "peer")
"""ours; dlib as face_recognition runs it; a peer detector (YuNet) + a public embedder file through the
runtime's alignment and matching."""
BACKENDS = ("onnxruntime", "litert", "dlib")
DEFAULT_RUNS = 200
DEFAULT_WARMUP = 20
STAGE_BUDGET_S = 20.0
"""A stage whose `runs` calls would take longer than this (dlib on a 12 MP photo: ~4 s a call) gets
fewer, never under MIN_RUNS; the record says how many it got."""
MIN_RUNS = 5
PUBLISH_RUNS = 200
"""Published figures come from at least this many timed runs per stage; fewer is marked a smoke run."""
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class BenchConfig:
    """One configuration to time. `threads` is already a number (see `parse_threads`)."""

    name: str
    pipeline: str = "squeezerface"  # "squeezerface" | "dlib" | "peer"
    backend: str = "onnxruntime"  # "onnxruntime" | "litert" | "dlib"
    precision: str = "int8"  # the embedder's; the card's precision is what is recorded
    threads: int = 1
    embedder: str | None = None  # shipped model name or model file; None: the backend's shipped default
    detector: str | None = None
    runs: int = DEFAULT_RUNS
    warmup: int = DEFAULT_WARMUP
    optional: bool = False  # a missing model file skips it (recorded) instead of failing the run
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} @{self.threads}t"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_threads(value: int | str, cpu_count: int | None = None) -> int:
    """A thread count from a config value: a positive int, or "all" (this machine's CPU count). Pure
    given `cpu_count`."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return max(1, cpu_count or os.cpu_count() or 1)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"threads must be a positive integer or 'all', got {value!r}")
    return value


def parse_thread_list(text: str, cpu_count: int | None = None) -> list[int]:
    """ "1,all" -> [1, 8] (distinct, in order). Pure given `cpu_count`."""
    out = _distinct(parse_threads(part.strip(), cpu_count) for part in text.split(",") if part.strip())
    if not out:
        raise ValueError("no thread counts given")
    return out


def parse_size_list(text: str) -> list[int]:
    """ "1k,10k,100000,1M" -> [1000, 10000, 100000, 1000000]. Pure."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        out.append(int(float(part[:-1] if mult > 1 else part) * mult))
    return out


def parse_configs(data: dict[str, Any], cpu_count: int | None = None) -> list[BenchConfig]:
    """Configurations from a parsed config file: top-level defaults (`runs`, `warmup`, `threads` as a list
    of counts or "all") and a `config` list of tables, each expanded into one configuration per thread
    count (duplicates, e.g. 1 and "all" on a 1-CPU machine, dropped). Pure given `cpu_count`."""
    known = {"runs", "warmup", "threads", "config", "description"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown top-level key(s) {sorted(unknown)}; expected {sorted(known)}")
    entries = data.get("config")
    if not isinstance(entries, list) or not entries:
        raise ValueError("a benchmark config needs a non-empty [[config]] list")
    runs = int(data.get("runs", DEFAULT_RUNS))
    warmup = int(data.get("warmup", DEFAULT_WARMUP))
    threads = data.get("threads", [1])
    fields = set(BenchConfig.__dataclass_fields__) - {"threads"}
    out: list[BenchConfig] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError(f"config #{i + 1} must be a table with a name")
        bad = set(entry) - fields - {"threads"}
        if bad:
            raise ValueError(
                f"config {entry['name']!r}: unknown key(s) {sorted(bad)}; expected {sorted(fields)}"
            )
        values = {"runs": runs, "warmup": warmup, **{k: v for k, v in entry.items() if k != "threads"}}
        if values.get("pipeline", "squeezerface") not in PIPELINES:
            raise ValueError(f"config {entry['name']!r}: pipeline must be one of {PIPELINES}")
        if values.get("pipeline") == "dlib":
            values.setdefault("backend", "dlib")
            values.setdefault("precision", "fp32")
        if values.get("backend", "onnxruntime") not in BACKENDS:
            raise ValueError(f"config {entry['name']!r}: backend must be one of {BACKENDS}")
        if int(values["runs"]) < 1 or int(values["warmup"]) < 0:
            raise ValueError(f"config {entry['name']!r}: runs must be >= 1 and warmup >= 0")
        counts = entry.get("threads", threads)
        counts = counts if isinstance(counts, list) else [counts]
        out += [
            BenchConfig(threads=n, **values) for n in _distinct(parse_threads(t, cpu_count) for t in counts)
        ]
    return out


def _distinct(values) -> list:
    """The values without repeats, in first-seen order."""
    return list(dict.fromkeys(values))


def load_config_file(path: str | Path, cpu_count: int | None = None) -> list[BenchConfig]:
    """Read a .toml (Python >= 3.11, or with `tomli`) or .json benchmark configuration file."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError as exc:
                raise ValueError(f"{path}: reading TOML needs Python >= 3.11 or `pip install tomli`") from exc
        data = tomllib.loads(text)
    return parse_configs(data, cpu_count)


def default_configs(
    threads: Sequence[int | str] = (1, "all"),
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    cpu_count: int | None = None,
) -> list[BenchConfig]:
    """The built-in configurations of `squeezerface bench`: the default embedder (mobilefacenet-taylor-900k)
    and detector per backend and precision, and the dlib peer. Ones that cannot run here (LiteRT or dlib
    not installed, no fp32 .tflite shipped) are recorded as skipped with the reason."""
    entries: list[dict[str, Any]] = [
        {
            "name": "squeezerface-onnx-int8",
            "backend": "onnxruntime",
            "precision": "int8",
            "embedder": "mobilefacenet-taylor-900k-int8.onnx",
            "detector": "tinyface-int8.onnx",
        },
        {
            "name": "squeezerface-onnx-fp32",
            "backend": "onnxruntime",
            "precision": "fp32",
            "embedder": "mobilefacenet-taylor-900k-fp32.onnx",
            "detector": "tinyface-fp32.onnx",
        },
        {
            "name": "squeezerface-litert-int8",
            "backend": "litert",
            "precision": "int8",
            "embedder": "mobilefacenet-taylor-900k-int8.tflite",
            "detector": "tinyface-160-int8.tflite",
        },
        {
            "name": "squeezerface-litert-fp32",
            "backend": "litert",
            "precision": "fp32",
            "embedder": "mobilefacenet-taylor-900k-fp32.tflite",
            "detector": "tinyface-160-fp32.tflite",
            "optional": True,
            "note": "fp32 .tflite files are built by the converters but not shipped",
        },
        {
            "name": "dlib",
            "pipeline": "dlib",
            "backend": "dlib",
            "precision": "fp32",
            "note": "face_recognition's pipeline: HOG (upsample 1) + 5-point + ResNet 128-d",
        },
    ]
    return parse_configs(
        {"runs": runs, "warmup": warmup, "threads": list(threads), "config": entries}, cpu_count
    )


def thread_env(threads: int) -> dict[str, str]:
    """Environment that pins the BLAS/OpenMP pools to `threads` (read once, when a library loads)."""
    return {name: str(threads) for name in THREAD_ENV}


def unavailable_reason(cfg: BenchConfig) -> str | None:
    """Why a configuration cannot run in this installation (engine missing, model file missing), or None."""
    from importlib.util import find_spec

    if cfg.pipeline == "dlib":
        if find_spec("dlib") is None or find_spec("face_recognition_models") is None:
            return "dlib peer not installed (pip install 'squeezerface[teacher]')"
        return None
    if cfg.pipeline == "peer":
        from squeezerface.errors import EmbedderUnavailableError

        try:
            from squeezerface.bench.yunet_peer import yunet_file

            yunet_file(cfg.detector)
        except EmbedderUnavailableError as exc:
            return str(exc)
        if cfg.embedder is None or not Path(cfg.embedder).is_file():
            return f"peer embedder file {cfg.embedder} not found" + (f" ({cfg.note})" if cfg.note else "")
        return None
    if cfg.backend == "litert" and find_spec("ai_edge_litert") is None:
        return "LiteRT not installed (pip install 'squeezerface[tflite]')"
    if cfg.backend == "onnxruntime" and find_spec("onnxruntime") is None:
        return "onnxruntime not installed"
    from squeezerface.errors import ModelFileError
    from squeezerface.shipped import model_path

    for what in (cfg.embedder, cfg.detector):
        if what is None:
            continue
        try:
            model_path(str(what))
        except ModelFileError:
            return f"model file {what} not found" + (f" ({cfg.note})" if cfg.note else "")
    return None
