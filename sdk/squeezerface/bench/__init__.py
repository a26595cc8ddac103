"""The latency benchmark: every stage of verification timed on this machine, beside the dlib peer.

`squeezerface bench` (also `python -m squeezerface.bench`) and benchmarks/run.py run the same harness; see
`runner` for how it measures and why. The modules, each one responsibility: `config` (what to time),
`images` (the photos timed), `stats` (timing summaries and ratios), `stages` (what is timed per stage, the
worker process), `roofline` (GEMM ceiling), `search` (1:N search), `device` and `memory` (the machine),
`dlib_peer` (the pipeline compared with), `targets` (met or missed), `report` (JSON + Markdown),
`options` and `runner` (the command). Importing this package pulls in the standard library only.
"""

from squeezerface.bench.config import PUBLISH_RUNS, BenchConfig
from squeezerface.bench.images import ImageSpec
from squeezerface.bench.options import HarnessOptions, add_bench_arguments, options_from_args
from squeezerface.bench.report import render_markdown, render_search_markdown, write_report
from squeezerface.bench.runner import main, run_device_bench, run_harness, run_search
from squeezerface.bench.stages import ConfigRun, run_in_worker
from squeezerface.bench.stats import LatencyRecord

__all__ = [
    "PUBLISH_RUNS",
    "BenchConfig",
    "ConfigRun",
    "HarnessOptions",
    "ImageSpec",
    "LatencyRecord",
    "add_bench_arguments",
    "main",
    "options_from_args",
    "render_markdown",
    "render_search_markdown",
    "run_device_bench",
    "run_harness",
    "run_in_worker",
    "run_search",
    "write_report",
]
