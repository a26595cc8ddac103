"""The full benchmark harness: every number published in benchmarks/results/ about speed, size and accuracy.

    python benchmarks/run.py                      # everything, committed results (needs an idle machine)
    python benchmarks/run.py --runs 3 --warmup 1 --search-sizes 1k --out /tmp/smoke   # a smoke run

It runs, in this order, each step in fresh worker processes (see squeezerface.bench.runner for how):

1. the latency harness of `squeezerface bench` on benchmarks/configs/full.toml, once per input (--inputs):
   two LFW crops (1 thread and all threads), then camera frames and phone photos from the real-size set
   (`benchmarks/realsize.py build` -> runs/realsize; 1 thread, --size-runs timed runs): every stage of our
   pipeline on both backends beside the dlib peer and the YuNet + MobileFaceNet / EdgeFace-xxs peers in
   the same run, plus the GEMM ceiling, load times and peak RSS -> latency.{json,md}, latency.png and
   latency_vs_accuracy.png (joined by benchmarks/sizes.py with each pipeline's committed LFW record);
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
import sizes  # noqa: E402

from squeezerface.bench import (  # noqa: E402
    add_bench_arguments,
    options_from_args,
    render_search_markdown,
    run_harness,
    run_search,
)

FULL_CONFIG = HERE / "configs" / "full.toml"
DEFAULTS_JSON = HERE.parent / "sdk" / "squeezerface" / "models" / "defaults.json"
DEFAULT_INPUTS = "lfw," + ",".join(sizes.REALSIZE)
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
    p.add_argument(
        "--inputs",
        default=DEFAULT_INPUTS,
        help="inputs to time, comma-separated: lfw (the two photos of --image or LFW) and real-size "
        "resolutions from --realsize-root",
    )
    p.add_argument(
        "--realsize-root",
        type=Path,
        default=HERE.parent / "runs" / "realsize",
        help="the real-size set (python benchmarks/realsize.py build)",
    )
    p.add_argument(
        "--size-runs", type=int, default=50, help="timed runs per stage on the real-size inputs (1 thread)"
    )
    p.add_argument(
        "--write-defaults",
        action="store_true",
        help="record the configuration this run finds fastest as this architecture's runtime default "
        "(sdk/squeezerface/models/defaults.json)",
    )
    return p


def run_inputs(opts, args: argparse.Namespace) -> list[dict]:
    """The latency harness once per input, in this order; each block holds its full report."""
    names = [n.strip() for n in args.inputs.split(",") if n.strip()]
    real = [n for n in names if n != "lfw"]
    sets = sizes.realsize_inputs(args.realsize_root, real) if real else []
    blocks = []
    for name in names:
        if name == "lfw":
            block_opts, note = opts, opts.images_note
        else:
            found = next(s for s in sets if s.name == name)
            configs = _one_thread(opts.configs, args.size_runs)
            block_opts = replace(
                opts, configs=configs, images=found.images, images_note=found.note, gemm_threads=[]
            )
            note = found.note
        print(f"== input {name}: {note}", file=sys.stderr, flush=True)
        blocks.append({"name": name, "note": note, "report": run_harness(block_opts)})
    return blocks


def _one_thread(configs, runs: int) -> list:
    """The configurations at 1 thread only, with at most `runs` timed runs and 5 warm-up calls."""
    seen, out = set(), []
    for c in configs:
        if c.name not in seen:
            seen.add(c.name)
            out.append(replace(c, threads=1, runs=min(c.runs, runs), warmup=min(c.warmup, 5)))
    return out


def write_combined(
    blocks: list[dict], out: Path, name: str, command: list[str], no_plots: bool
) -> list[Path]:
    """latency.json (every input's report + the joined summary and issue 17's targets), latency.md (the
    summary first, then each input's full report) and the plots."""
    from squeezerface.bench import render_markdown

    accuracy = sizes.accuracy_of(RESULTS, sizes.configs_of(blocks))
    rows = sizes.summary_rows(blocks, accuracy)
    defaults = sizes.choose_defaults(blocks, accuracy)
    targets = sizes.check_targets(rows, accuracy, defaults["config"])
    sources = ", ".join(f"`{v['source']}`" for v in accuracy.values())
    first = blocks[0]["report"]
    combined = {
        "schema": 2,
        "command": command,
        "created_utc": first["created_utc"],
        "device_summary": first["device_summary"],
        "device": first["device"],
        "accuracy": accuracy,
        "defaults": defaults,
        **sizes.as_json(rows, targets),
        "inputs": blocks,
    }
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(combined, indent=1) + "\n")
    lines = [
        "# squeezerface latency on every input size, beside dlib and YuNet peers (committed results)",
        "",
        f"Device: **{first['device_summary']}**. Command: `{' '.join(command)}` ({first['created_utc']}).",
        "",
        "Each input below is one run of the same harness (one fresh worker per configuration, one at a "
        "time); every ratio compares medians measured in the same run. LFW accuracy: each pipeline's "
        "committed `squeezerface eval` record (" + sources + ").",
        "",
        *sizes.render(rows, targets, blocks, accuracy),
        "",
        *sizes.render_defaults(defaults),
        "",
        f"![latency vs accuracy]({name}_vs_accuracy.png)",
    ]
    for block in blocks:
        body = render_markdown(block["report"]).split("\n")
        lines += ["", f"# Input: {sizes.LABELS.get(block['name'], block['name'])}", ""]
        lines += ["#" + line if line.startswith("#") else line for line in body[1:]]
    md_path.write_text("\n".join(lines) + "\n")
    written = [json_path, md_path]
    if not no_plots:
        written.append(plots.latency_plot(first, out / f"{name}.png"))
        written.append(plots.latency_accuracy_plot(rows, out / f"{name}_vs_accuracy.png"))
    return written


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
        try:
            blocks = run_inputs(opts, args)
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        report = blocks[0]["report"]
        written += write_combined(blocks, out, args.name, command, args.no_plots)
        if args.write_defaults:
            chosen = sizes.choose_defaults(blocks, sizes.accuracy_of(RESULTS, sizes.configs_of(blocks)))
            when = report["created_utc"]
            written.append(sizes.write_defaults(chosen, DEFAULTS_JSON, report["device_summary"], when))
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
