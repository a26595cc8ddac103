"""The full benchmark harness: every number published in benchmarks/results/ about speed, size and accuracy.

    python benchmarks/run.py                      # everything, committed results (needs an idle machine)
    python benchmarks/run.py --runs 3 --warmup 1 --search-sizes 1k --out /tmp/smoke   # a smoke run

It runs, in this order, each step in fresh worker processes (see squeezerface.bench.runner for how):

1. the latency harness of `squeezerface bench` on benchmarks/configs/full.toml: every stage of our
   pipeline on both backends, fp32 and int8, 1 thread and all threads, beside the dlib peer in the same
   run, plus the GEMM ceiling (roofline), model load times and peak RSS -> latency.{json,md}, latency.png;
2. 1:N search over 1k..1M random 128-d templates, numpy (and FAISS when installed), 1 thread and all
   threads -> search.{json,md}, search.png;
3. the accuracy table from the committed LFW records beside quoted literature figures (measures nothing)
   -> accuracy.{json,md}, accuracy_vs_size.png.

Photos: two LFW photos from ../shared/data when present (else pass --image twice).
Fewer than 200 timed runs marks the results as a smoke run in their Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # accuracy_table, plots

import accuracy_table  # noqa: E402
import plots  # noqa: E402

from squeezerface.bench import (  # noqa: E402
    add_bench_arguments,
    options_from_args,
    render_search_markdown,
    run_harness,
    run_search,
    write_report,
)

FULL_CONFIG = HERE / "configs" / "full.toml"
RESULTS = HERE / "results"
STEPS = ("latency", "search", "accuracy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__.split("\n\n")[0],
        epilog="Run from the repository root, with the dev/bench extras installed (dlib peer, matplotlib).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_bench_arguments(p)
    p.set_defaults(out=RESULTS, name="latency", config=FULL_CONFIG, search_sizes="1k,10k,100k,1M")
    p.add_argument("--skip", action="append", default=[], choices=STEPS, help="leave a step out (repeatable)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG (no matplotlib needed)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = ["python", "benchmarks/run.py", *argv]
    started = time.perf_counter()
    try:
        opts = options_from_args(args, command)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    written: list[Path] = []
    search_sizes = opts.search_sizes
    if "latency" not in args.skip:
        opts.search_sizes = []  # search gets its own files
        opts.title = "squeezerface latency benchmark (committed results)"
        report = run_harness(opts)
        written += write_report(report, out, args.name)
        if not args.no_plots:
            written.append(plots.latency_plot(report, out / f"{args.name}.png"))
    if "search" not in args.skip and search_sizes:
        records = run_search(replace(opts, search_sizes=search_sizes))
        search = {"schema": 1, "command": command, "records": records}
        if "latency" not in args.skip:
            search["device_summary"] = report["device_summary"]
            search["device"] = report["device"]
        out.mkdir(parents=True, exist_ok=True)
        (out / "search.json").write_text(json.dumps(search, indent=1) + "\n")
        device = search.get("device_summary", "see latency.md")
        text = render_search_markdown(
            records, heading=f"# 1:N search\n\nDevice: {device}. Command: `{' '.join(command)}`."
        )
        (out / "search.md").write_text(text + "\n\n![search](search.png)\n")
        written += [out / "search.json", out / "search.md"]
        if not args.no_plots:
            written.append(plots.search_plot(records, out / "search.png"))
    if "accuracy" not in args.skip:
        acc = accuracy_table.build()
        written += accuracy_table.write(acc, out)
        if not args.no_plots:
            written.append(plots.accuracy_plot(acc, out / "accuracy_vs_size.png"))
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
