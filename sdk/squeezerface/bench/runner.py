"""The latency benchmark: every stage of verification timed on this machine, beside the dlib peer.

One harness serves two commands. `squeezerface bench` (also `python -m squeezerface.bench`) runs it on a
user's device with only the runtime installed and writes JSON + Markdown to submit; `benchmarks/run.py`
runs the same code with the repository's configuration file and adds the accuracy table, the 1:N search
table and the plots committed under benchmarks/results/.

How it measures, and why:

- Configurations (pipeline, backend, precision, threads, runs) come from a small TOML/JSON file or the
  built-in list (`config.default_configs`), opencv_zoo style. Each one runs in a fresh worker process
  (`stages.run_in_worker`), one after another, never two at once, so load time and peak RSS belong to it.
- Each stage: `warmup` untimed calls, then `runs` timed calls (>= 200 in committed results) with the
  garbage collector off, reported as p50/p90/p99, mean and std; ratios are of medians measured in the same
  run (`stats`).
- The core's float32 GEMM rate (`roofline`) is measured in the same run, so the embedder's achieved rate
  is quoted as a fraction of what this core can do, not of a datasheet.

Nothing heavy is imported at module level: `import squeezerface` stays light, and a worker imports only
the engine its configuration needs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from squeezerface.bench.config import BenchConfig, unavailable_reason
from squeezerface.bench.options import HarnessOptions, add_bench_arguments, options_from_args
from squeezerface.bench.report import format_number, write_report
from squeezerface.bench.roofline import roofline_points
from squeezerface.bench.stages import ConfigRun, run_in_worker, run_job, worker_main
from squeezerface.bench.stats import attach_ratios
from squeezerface.bench.targets import check_targets

if TYPE_CHECKING:
    from squeezerface.bench.device import DeviceInfo

SCHEMA = 1
"""Version of the report's JSON layout."""


def _dispatch(opts: HarnessOptions, job: dict[str, Any], threads: int) -> dict[str, Any]:
    """A job in a fresh worker (the normal way) or, with --in-process, right here."""
    if not opts.in_process:
        return run_in_worker(job, threads)
    try:
        return run_job(job)
    except Exception as exc:  # one failing configuration must not end the run
        return {"error": f"{type(exc).__name__}: {exc}"}


def _say(opts: HarnessOptions, text: str) -> None:
    if not opts.quiet:
        print(text, file=sys.stderr, flush=True)


def _gemm_ceilings(opts: HarnessOptions) -> list[dict[str, Any]]:
    """The measured GEMM ceilings (fp32, and int8 where measurable) at each thread count asked for."""
    gemm: list[dict[str, Any]] = []
    for t in opts.gemm_threads:
        _say(opts, f"GEMM ceiling, {t} thread(s) ...")
        res = _dispatch(opts, {"kind": "gemm", "threads": t}, t)
        if "error" in res:
            _say(opts, f"  GEMM failed: {res['error']}")
            continue
        gemm += res["ceilings"]
        _say(
            opts,
            "  " + ", ".join(f"{c['dtype']} {c['gflops']:.1f} G/s (n={c['size']})" for c in res["ceilings"]),
        )
    return gemm


def _run_config(opts: HarnessOptions, cfg: BenchConfig, label: str) -> ConfigRun:
    """One configuration's latency run in its worker (or why it was skipped or failed), told as it goes."""
    reason = unavailable_reason(cfg)
    if reason:
        _say(opts, f"{label} {cfg.label}: skipped: {reason}")
        return ConfigRun(cfg, "skipped", reason=reason)
    _say(opts, f"{label} {cfg.label}: {cfg.runs} runs x stages ...")
    t0 = time.perf_counter()
    job = {
        "kind": "latency",
        "config": cfg.to_dict(),
        "images": [asdict(s) for s in opts.images],
        "progress": not opts.quiet,
    }
    res = _dispatch(opts, job, cfg.threads)
    if "error" in res:
        _say(opts, f"  error: {res['error']}")
        return ConfigRun(cfg, "error", reason=res["error"])
    run = ConfigRun.from_dict(res)
    if run.status != "ok":
        _say(opts, f"  {run.status}: {run.reason}")
        return run
    shown = ("detect", "embed", "end_to_end")
    brief = ", ".join(f"{r.stage} {format_number(r.p50_ms)}" for r in run.records if r.stage in shown)
    _say(
        opts,
        f"  p50 ms: {brief}; load {format_number(run.load_ms, 1)} ms, "
        f"peak RSS {format_number(run.peak_rss_mb, 1)} MiB ({time.perf_counter() - t0:.0f} s)",
    )
    return run


def _settings(opts: HarnessOptions) -> dict[str, Any]:
    return {
        "batch": 1,
        "runs": _one_or_all(c.runs for c in opts.configs),
        "warmup": _one_or_all(c.warmup for c in opts.configs),
        "threads": sorted({c.threads for c in opts.configs}),
        "isolation": "IN-PROCESS (--in-process): no isolation, load times and peak RSS accumulate"
        if opts.in_process
        else "one fresh worker process per configuration, run one at a time",
    }


def run_harness(opts: HarnessOptions) -> dict[str, Any]:
    """Run everything `opts` asks for and return the report (a JSON-able dict)."""
    from squeezerface.bench.device import collect_device_info  # reads metadata: only when running

    started = time.perf_counter()
    device = collect_device_info()
    _say(opts, f"device: {device.summary()}")
    if device.emulated:
        _say(opts, f"EMULATION: {device.emulated}: timings are emulation, not ARM latency")
    gemm = _gemm_ceilings(opts)
    total = len(opts.configs)
    runs = [_run_config(opts, cfg, f"[{i}/{total}]") for i, cfg in enumerate(opts.configs, 1)]
    search = run_search(opts)
    records = attach_ratios([r for run in runs for r in run.records])
    by_threads = {(int(g["threads"]), g.get("dtype", "fp32")): float(g["gflops"]) for g in gemm}
    roof = roofline_points(runs, by_threads)
    for run in runs:  # the ratios live in the flat list; keep the per-config copies in step
        run.records = [r for r in records if r.config == run.config.name and r.threads == run.config.threads]
    targets = check_targets(runs, records, roof)
    return {
        "schema": SCHEMA,
        "title": opts.title,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": opts.command,
        "device_summary": device.summary(),
        "device": device.to_dict(),
        "emulated": device.emulated,
        "settings": _settings(opts),
        "images": [{"name": s.name, "kind": s.kind, "path": s.path} for s in opts.images],
        "images_note": opts.images_note,
        "gemm": gemm,
        "configs": [run.to_dict() for run in runs],
        "latency": [r.to_dict() for r in records],
        "roofline": [p.to_dict() for p in roof],
        "targets": [t.to_dict() for t in targets],
        "search": search,
        "notes": _notes(device, runs, opts),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_search(opts: HarnessOptions) -> list[dict[str, Any]]:
    """1:N search records at each of `opts.search_threads` (none without `opts.search_sizes`), each
    thread count in its own worker, as numpy's BLAS threads are set by the worker's environment."""
    records: list[dict[str, Any]] = []
    for t in opts.search_threads if opts.search_sizes else []:
        _say(opts, f"1:N search, {t} thread(s), sizes {opts.search_sizes} ...")
        job = {
            "kind": "search",
            "threads": t,
            "sizes": opts.search_sizes,
            "queries": opts.search_queries,
            "progress": not opts.quiet,
        }
        res = _dispatch(opts, job, t)
        if "error" in res:
            _say(opts, f"  search failed: {res['error']}")
            continue
        records += [r for r in res["records"] if r not in records]  # "not installed" once, not per count
    return records


def _one_or_all(values: Iterable[int]) -> int | list[int] | None:
    """The one value all configurations share, else all of them sorted (a config file may vary runs)."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else (distinct or None)


def _notes(device: DeviceInfo, runs: Sequence[ConfigRun], opts: HarnessOptions) -> list[str]:
    notes = []
    if device.emulated:
        notes.append(f"EMULATED run ({device.emulated}): never quote these timings as ARM latency.")
    notes.append(
        f"'all threads' = os.cpu_count() = {device.logical_cpus} here ({device.usable_cpus} usable by this "
        "process); the thread counts run are in the tables."
    )
    if any(r.config.pipeline == "dlib" and r.status == "ok" for r in runs):
        notes.append(
            "The dlib peer decodes with the same squeezerface.load_image call as ours (face_recognition uses "
            "PIL), so its decode stage is the same code and the comparison is about the face work; its "
            "align stage is the 5-point shape plus dlib.get_face_chip, its embed the ResNet on that chip."
        )
    if any(r.config.pipeline == "dlib" and r.status == "skipped" for r in runs):
        notes.append(
            "dlib peer not installed here: no ratios. pip install 'squeezerface[teacher]' to compare."
        )
    return notes


def run_device_bench(args: argparse.Namespace, command: Sequence[str] | None = None) -> int:
    """`squeezerface bench`: run the harness, write NAME.json + NAME.md, print where. Exit status 0, or 2
    for a bad option, file or configuration."""
    try:
        opts = options_from_args(args, command or ["squeezerface", "bench", *getattr(args, "argv", [])])
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    opts.title = "squeezerface on-device benchmark"
    report = run_harness(opts)
    json_path, md_path = write_report(report, args.out, args.name)
    failed = [c for c in report["configs"] if c["status"] == "error"]
    print(f"wrote {json_path} and {md_path} ({report['seconds']:.0f} s)")
    if failed:
        print(f"{len(failed)} configuration(s) failed: see {md_path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """`python -m squeezerface.bench`: the options of `squeezerface bench`, plus the hidden worker ones."""
    p = argparse.ArgumentParser(
        prog="python -m squeezerface.bench",
        description=__doc__.split("\n\n")[0] + " Same as `squeezerface bench`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_bench_arguments(p)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m squeezerface.bench`: the benchmark, or with --worker one job of it (`run_in_worker`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.result)
    return run_device_bench(args, ["python", "-m", "squeezerface.bench", *argv])
