"""What one harness run does, and the command-line options it is built from.

`squeezerface bench`, `python -m squeezerface.bench` and benchmarks/run.py share these options (run.py with
other defaults), so a figure on a user's device and a committed one come from the same settings. Options
are validated here, before anything is timed: a bad value is an error message, not a half-finished run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from squeezerface.bench.config import (
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    PUBLISH_RUNS,
    BenchConfig,
    default_configs,
    load_config_file,
    parse_size_list,
    parse_thread_list,
)
from squeezerface.bench.images import ImageSpec, default_images


@dataclass
class HarnessOptions:
    """What one harness run does; built from command-line arguments."""

    configs: list[BenchConfig]
    images: list[ImageSpec]
    images_note: str
    gemm_threads: list[int] = field(default_factory=lambda: [1])
    search_sizes: list[int] = field(default_factory=list)
    search_threads: list[int] = field(default_factory=lambda: [1])
    search_queries: int = 50
    title: str = "squeezerface latency benchmark"
    command: list[str] = field(default_factory=list)
    quiet: bool = False
    in_process: bool = False  # no worker processes (see --in-process)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `squeezerface bench` / `python -m squeezerface.bench` (benchmarks/run.py reuses
    them with other defaults). Options without a fixed default are suppressed when absent."""
    unset = argparse.SUPPRESS
    p.add_argument("--out", type=Path, default=Path("squeezerface-bench"), help="output folder")
    p.add_argument("--name", default="bench", help="file name stem: NAME.json and NAME.md")
    p.add_argument(
        "--config",
        type=Path,
        default=unset,
        help="configuration file (.toml or .json, see benchmarks/configs/); without it, the built-in "
        "list: every shipped model per backend and precision, and the dlib peer when installed",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=unset,
        help=f"timed runs per stage, overriding the configuration's ({DEFAULT_RUNS} built in; "
        f"publish only >= {PUBLISH_RUNS})",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=unset,
        help=f"untimed warm-up calls per stage ({DEFAULT_WARMUP} built in)",
    )
    p.add_argument(
        "--threads",
        default=unset,
        help="thread counts, comma-separated, 'all' = every CPU (built in: 1,all), overriding the "
        "configuration's",
    )
    p.add_argument(
        "--image",
        action="append",
        default=[],
        type=Path,
        metavar="PHOTO",
        help="a photo with one face to time (give two for end-to-end verify). Without: two LFW photos when "
        "../shared/data is there, else scikit-image's astronaut (the demo extra), else a synthetic "
        "face-free frame and no end-to-end figure",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only our configurations whose name contains TEXT (repeatable); the dlib peer is kept "
        "unless --no-peer",
    )
    p.add_argument("--no-peer", action="store_true", help="skip the dlib peer")
    p.add_argument(
        "--search-sizes",
        default="1k,10k,100k",
        help="1:N gallery sizes to time (k/M suffixes; 1M needs ~0.5 GB of memory); 'none' to skip",
    )
    p.add_argument("--search-queries", type=int, default=50, help="timed queries per gallery size")
    p.add_argument("--no-gemm", action="store_true", help="skip the GEMM ceiling (no roofline)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every configuration in this process instead of a fresh worker each (no isolation: load "
        "times and peak RSS accumulate, thread variables are not re-read); for emulators and debugging only",
    )


def options_from_args(
    args: argparse.Namespace, command: Sequence[str], default_config: Path | None = None
) -> HarnessOptions:
    """Build the harness options from parsed arguments (shared by the CLI and benchmarks/run.py)."""
    runs, warmup = getattr(args, "runs", None), getattr(args, "warmup", None)
    if (runs is not None and runs < 1) or (warmup is not None and warmup < 0):
        raise ValueError("--runs must be >= 1 and --warmup >= 0")
    threads = parse_thread_list(args.threads) if getattr(args, "threads", None) else None
    config_path = getattr(args, "config", None) or default_config
    if config_path is not None:
        configs = load_config_file(config_path)
        if threads:
            configs = [replace(c, threads=t) for c in _unique_by_name(configs) for t in threads]
    else:
        configs = default_configs(threads or (1, "all"))
    if runs is not None or warmup is not None:
        configs = [
            replace(c, runs=c.runs if runs is None else runs, warmup=c.warmup if warmup is None else warmup)
            for c in configs
        ]
    if args.only:
        configs = [
            c
            for c in configs
            if any(t in c.name for t in args.only) or (c.pipeline == "dlib" and not args.no_peer)
        ]
    if args.no_peer:
        configs = [c for c in configs if c.pipeline != "dlib"]
    if not configs:
        raise ValueError("no configuration left to run (check --only / --config)")
    images, note = default_images(args.image)
    for spec in images:
        if spec.kind == "file" and not Path(spec.path or "").is_file():
            raise ValueError(f"image not found: {spec.path}")
    used_threads = sorted({c.threads for c in configs})
    sizes = [] if str(args.search_sizes).lower() in ("none", "0", "") else parse_size_list(args.search_sizes)
    return HarnessOptions(
        configs=configs,
        images=images,
        images_note=note,
        gemm_threads=[] if args.no_gemm else used_threads,
        search_sizes=sizes,
        search_threads=used_threads[:1] + used_threads[-1:] if len(used_threads) > 1 else used_threads,
        search_queries=args.search_queries,
        command=list(command),
        quiet=args.quiet,
        in_process=args.in_process,
    )


def _unique_by_name(configs: Sequence[BenchConfig]) -> list[BenchConfig]:
    """The first configuration of each name (a --threads override replaces the file's thread counts)."""
    seen, out = set(), []
    for c in configs:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out
