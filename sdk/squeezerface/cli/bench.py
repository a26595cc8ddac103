"""`squeezerface bench`: the benchmark harness on this device (the work is in `squeezerface.bench`)."""

from __future__ import annotations

import argparse


def add_bench(sub: argparse._SubParsersAction, with_options: bool = True) -> None:
    """The `bench` sub-command. `with_options=False` leaves its options out: they come from
    `squeezerface.bench`, whose import (~15 ms) every other command would pay at start-up; `main` asks for
    them only when the command line can name `bench`."""
    p = sub.add_parser(
        "bench",
        help="time every stage on this device beside the dlib peer; writes JSON + Markdown to submit",
        description="Run the latency benchmark with only the runtime installed: decode, detect, align, "
        "embed, match and end-to-end verify, batch 1, on 1 thread and all threads, for every shipped model "
        "per backend (onnxruntime, LiteRT when installed) and precision; each configuration in a fresh "
        "process, p50/p90/p99 of 200 timed runs after warm-up; the dlib peer in the same run when the "
        "teacher extra is installed (ratios ours/dlib); the core's GEMM rate (roofline); model load time, "
        "peak RSS, 1:N search; and this device (CPU, cores, clocks, board, OS, versions).",
        epilog="example: squeezerface bench --out my-bench (then attach my-bench/bench.json to a GitHub "
        "issue; see benchmarks/README.md). Takes a few minutes; --runs 20 for a quick look.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    if with_options:
        from squeezerface.bench import add_bench_arguments

        add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from squeezerface.bench import run_device_bench

    return run_device_bench(args)
