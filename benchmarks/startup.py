"""Start-up cost of the command line: whole-process wall time of `squeezerface verify A B`, of
`python -c "import squeezerface"`, and the throughput of `squeezerface verify --pairs FILE` (one process,
models loaded once). Writes benchmarks/results/startup.{json,md} and prints the table.

    python benchmarks/startup.py                          # 20 timed runs each after 2 warm-ups, 50 LFW pairs
    python benchmarks/startup.py --runs 3 --out /tmp/su   # a quick look (marked as such; not for publication)

Each run is a fresh process started from this script (`subprocess`, output discarded), timed from spawn to
exit with `time.perf_counter`: interpreter start, imports, model loading, both photos, the answer. The
console script is the one beside this interpreter (`.venv/bin/squeezerface`). The target (issue 17) is a
median under 0.25 s on an otherwise idle machine: run it on one, and record the run in RUNS.md.

Bytecode: an installed package has its .pyc files (pip compiles them); a checkout run with
PYTHONDONTWRITEBYTECODE=1 would compile every squeezerface module in every process (~40 ms here). The
children therefore run without that variable, so the warm-up runs write `__pycache__` (git-ignored) as an
install would; `--no-bytecode-cache` keeps the variable to measure the cold case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LFW = ROOT.parent / "shared" / "data" / "lfw"
DEFAULT_IMAGES = (
    LFW / "images" / "Colin_Powell" / "Colin_Powell_0038.jpg",
    LFW / "images" / "Colin_Powell" / "Colin_Powell_0040.jpg",
)
TARGET_S = 0.25
PUBLISH_RUNS = 20


def console_script() -> Path:
    """The `squeezerface` console script of this interpreter's environment."""
    here = Path(sys.executable).parent / ("squeezerface.exe" if os.name == "nt" else "squeezerface")
    if here.is_file():
        return here
    found = shutil.which("squeezerface")
    if found is None:
        raise SystemExit("no `squeezerface` console script beside this Python or on PATH: pip install -e .")
    return Path(found)


def child_env(bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall time of one process, spawn to exit, in seconds; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def summarize(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]  # nearest rank
    return {
        "runs": len(ordered),
        "median_s": statistics.median(ordered),
        "p90_s": p90,
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "samples_s": samples,
    }


def time_command(cmd: list[str], env: dict[str, str], runs: int, warmup: int, ok: tuple[int, ...]) -> dict:
    for _ in range(warmup):
        run_once(cmd, env, ok)
    return {"command": cmd, "warmup": warmup, **summarize([run_once(cmd, env, ok) for _ in range(runs)])}


def lfw_pairs(pairs_file: Path, root: Path, count: int) -> list[tuple[Path, Path]]:
    """`count` pairs spread evenly over the pairs file (same- and different-person pairs alike)."""
    from squeezerface.datasets import read_pairs

    pairs = read_pairs(root, pairs_file).pairs
    step = max(1, len(pairs) // count)
    return [(p.path1, p.path2) for p in pairs[::step][:count]]


def pairs_throughput(
    script: Path, pairs: list[tuple[Path, Path]], env: dict[str, str], runs: int, warmup: int, folder: Path
) -> dict:
    """`squeezerface verify --pairs FILE --json`, whole process: pairs per second, every pair answered (a
    pair with a photo the face path refuses is answered with its typed error, and the process exits 2)."""
    listing = folder / "pairs.txt"
    listing.write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    cmd = [str(script), "verify", "--pairs", str(listing), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    errors = [r for r in lines if "error" in r]
    expected = 2 if errors else 0
    if done.returncode != expected or len(lines) != len(pairs):
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode} with {len(lines)} of {len(pairs)} lines")
    timed = time_command(cmd, env, runs, warmup, ok=(expected,))
    timed["command"] = [*cmd[:3], f"<{len(pairs)} LFW pairs>", *cmd[4:]]
    return {
        **timed,
        "pairs": len(pairs),
        "pair_errors": len(errors),
        "accepted": sum(1 for r in lines if r.get("accepted")),
        "pairs_per_s": len(pairs) / timed["median_s"],
    }


def machine() -> dict:
    try:
        from squeezerface.bench.device import collect_device_info

        info = collect_device_info()
        return {"summary": info.summary(), "device": info.to_dict()}
    except Exception as exc:  # the summary must not cost the measurement
        return {
            "summary": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "error": str(exc),
        }


def _shown(cmd: list[str]) -> list[str]:
    """A command with the paths of this checkout and its data relative to the repository root."""
    out = []
    for arg in cmd:
        path = Path(arg)
        inside = path.is_absolute() and path.is_relative_to(ROOT.parent)
        out.append(os.path.relpath(path, ROOT) if inside else arg)
    return out


def render_markdown(report: dict) -> str:
    verify = report["verify"]
    rows = [("`squeezerface verify A B`", verify), ('`python -c "import squeezerface"`', report["import"])]
    if report.get("pairs"):
        rows.append(
            (f"`squeezerface verify --pairs FILE --json` ({report['pairs']['pairs']} pairs)", report["pairs"])
        )
    lines = [
        f"# Start-up of the `squeezerface` command ({report['machine']['summary']})",
        "",
    ]
    if report["runs"] < PUBLISH_RUNS:
        lines += [f"**Quick run ({report['runs']} runs): not for publication.**", ""]
    lines += [
        "Whole-process wall time, spawn to exit, of fresh processes after "
        f"{report['warmup']} warm-up run(s) (`benchmarks/startup.py`).",
        "",
        "| command | runs | median | p90 | min | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['runs']} | {r['median_s'] * 1e3:.0f} ms | {r['p90_s'] * 1e3:.0f} ms "
            f"| {r['min_s'] * 1e3:.0f} ms | {r['max_s'] * 1e3:.0f} ms |"
        )
    met = "met" if report["target_met"] else "**missed**"
    lines += [
        "",
        f"- Target (issue 17): `squeezerface verify` median under {report['target_s']:.2f} s on an idle "
        f"machine: {met} ({verify['median_s']:.3f} s).",
    ]
    if report.get("pairs"):
        p = report["pairs"]
        separate = p["pairs"] * verify["median_s"]
        lines.append(
            f"- `--pairs`: {p['pairs_per_s']:.1f} pairs/s including its own start-up ({p['pairs']} pairs in "
            f"{p['median_s']:.2f} s; {p['pair_errors']} pair errors); {p['pairs']} separate `verify` "
            f"processes would take ~{separate:.1f} s ({separate / p['median_s']:.1f}x longer)."
        )
    busy = report["loadavg_before"][0] > 0.5  # the run itself keeps one CPU busy: only "before" tells
    lines += [
        f"- Load average (1, 5, 15 min) before / after: {report['loadavg_before']} / "
        f"{report['loadavg_after']}"
        + (": **the machine was busy**, the times are not its own." if busy else "."),
        f"- Bytecode cache: {'on' if report['bytecode_cache'] else 'off (PYTHONDONTWRITEBYTECODE=1)'}.",
        f"- Python {platform.python_version()}; console script `{_shown([report['script']])[0]}`.",
        "",
        "Commands:",
        "",
        *[f"- `{shlex.join(_shown(r['command']))}`" for _, r in rows],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--image", type=Path, action="append", help="the two photos verified (give it twice)")
    ap.add_argument("--runs", type=int, default=PUBLISH_RUNS, help="timed runs of each command")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    ap.add_argument("--pairs", type=int, default=50, help="LFW pairs for the --pairs throughput (0: skip)")
    ap.add_argument("--pairs-file", type=Path, default=LFW / "pairs.txt", help="LFW pairs.txt")
    ap.add_argument("--lfw-root", type=Path, default=LFW / "images", help="LFW images folder")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    ap.add_argument("--name", default="startup", help="file stem: NAME.json and NAME.md")
    ap.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = ap.parse_args(argv)
    images = tuple(args.image or DEFAULT_IMAGES)
    if len(images) != 2:
        ap.error("give --image twice (A and B), or neither for the default Colin_Powell pair")
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise SystemExit(f"photos not found: {', '.join(missing)} (LFW lives at ../shared/data/lfw)")
    script = console_script()
    env = child_env(not args.no_bytecode_cache)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    verify_cmd = [str(script), "verify", *(str(p) for p in images)]
    report: dict = {
        "target_s": TARGET_S,
        "runs": args.runs,
        "warmup": args.warmup,
        "bytecode_cache": not args.no_bytecode_cache,
        "script": str(script),
        "loadavg_before": loadavg_before,
        "verify": time_command(verify_cmd, env, args.runs, args.warmup, ok=(0, 1)),
        "import": time_command(
            [sys.executable, "-c", "import squeezerface"], env, args.runs, args.warmup, (0,)
        ),
    }
    if args.pairs > 0:
        with tempfile.TemporaryDirectory() as folder:
            pairs = lfw_pairs(args.pairs_file, args.lfw_root, args.pairs)
            report["pairs"] = pairs_throughput(script, pairs, env, max(1, args.runs // 4), 1, Path(folder))
    report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    report["target_met"] = report["verify"]["median_s"] < TARGET_S
    report["publishable"] = args.runs >= PUBLISH_RUNS
    report["machine"] = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    (args.out / f"{args.name}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {args.out / args.name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
