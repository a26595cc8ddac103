"""Training throughput of SqueezerFaceNet on this CPU: fp32 vs bf16 autocast, NCHW vs channels-last.

One optimiser step (forward, distillation loss, backward, AdamW) on a random batch, timed after warm-up;
medians of the timed steps. Writes benchmarks/results/train_throughput_<threads>t.{json,md}.

    python benchmarks/train_throughput.py --threads 1 --batch 64 --steps 9
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from pruning.model import SqueezerFaceNet
from pruning.train import distill_step

RESULTS = Path(__file__).resolve().parent / "results"


def measure(channels_last: bool, bf16: bool, batch: int, steps: int, warmup: int = 2) -> dict:
    torch.manual_seed(0)
    model = SqueezerFaceNet(normalize=False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, t = torch.randn(batch, 3, 112, 112), torch.randn(batch, 128)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        distill_step(model, opt, x, t, 1e-3, relational=1.0, bf16=bf16, channels_last=channels_last)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "channels_last": channels_last,
        "bf16": bf16,
        "median_step_ms": round(1000 * median, 1),
        "images_per_s": round(batch / median, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=9)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(cl, bf, args.batch, args.steps) for cl in (False, True) for bf in (False, True)]
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup_vs_fp32_nchw"] = round(r["images_per_s"] / base, 2)
    record = {
        "command": f"python benchmarks/train_throughput.py --threads {args.threads} --batch {args.batch} "
        f"--steps {args.steps}",
        "machine": {"processor": platform.processor() or platform.machine(), "torch": torch.__version__},
        "threads": args.threads,
        "batch": args.batch,
        "timed_steps": args.steps,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"train_throughput_{args.threads}t"
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# Training throughput (one optimiser step of distillation, SqueezerFaceNet base)",
        "",
        f"{args.threads} thread(s), batch {args.batch}, median of {args.steps} steps after 2 warm-up steps.",
        "",
        "| layout | precision | median step (ms) | images/s | vs fp32 NCHW |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        layout = "channels-last" if r["channels_last"] else "NCHW"
        precision = "bf16 autocast" if r["bf16"] else "fp32"
        lines.append(
            f"| {layout} | {precision} | {r['median_step_ms']} | {r['images_per_s']} | "
            f"{r['speedup_vs_fp32_nchw']}x |"
        )
    lines += ["", f"Command: `{record['command']}`", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
