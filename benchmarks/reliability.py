"""Reliability benchmark: fuzzed inputs through the runtime, concurrent gallery writers, kill -9 rounds.

    python benchmarks/reliability.py                       # the full run: 10,000 fuzz cases, 8 writers, ...
    python benchmarks/reliability.py --fuzz-cases 500 --kill9-rounds 5 --out /tmp/rel   # a quick look
    python benchmarks/reliability.py --replay '{"kind": "bitflip", "seed": 12}'        # one case, in process

Fuzzing. Each case is a recipe, {"kind": ..., "seed": ...}, from which `build_case` makes one input
deterministically (random bytes; cut, bit-flipped or header-patched PNG/JPEG/WebP/TIFF/BMP/GIF/PNM/HDR/
Sun raster/JPEG 2000/AVIF files of a real photo; decompression bombs, header-only and really compressed;
16-bit PNG, CMYK JPEG, palette PNG/GIF, broken EXIF; 1x1 and 100000x1 images; NaN/inf and out-of-range
float arrays; int64, bool, complex, object, string... arrays; 0-D to 5-D and 0-size shapes, 2 and 5
channels, strided and zero-stride views; PIL images of every mode, and PIL images opened lazily on damaged
bytes; paths to nothing, folders, FIFOs, /dev/zero, names with NUL bytes; aligned-face batches of every
wrong dtype and shape; real faces scaled, turned, cropped and noised). Every case goes through one
`FaceVerifier` per worker process: `embed` (decode -> detect -> choose -> align -> quality -> embed) and,
when a face was found, `detect` + `align` + `embed(faces=...)`; aligned batches through `embed`.

An outcome is "ok" (an embedding, checked finite and unit length), a typed error (any SqueezerfaceError:
counted by class), or a failure: `crashes` (any other exception, a wrong output, or the worker dying, e.g.
on a segfault), `hangs` (no answer within --case-timeout: the watchdog kills the worker) and
`memory_over_cap` (the worker's peak RSS passed --rss-cap-mb; its address space is also limited, so an
unbounded allocation fails instead of taking the machine). Each failure is recorded with its recipe, which
`--replay` runs again in process, with the traceback.

Gallery. `--writers` processes (multiprocessing, spawn) create and open one brand-new gallery at once,
`--open-rounds` times (`open_race_failures` must be 0: the race this benchmark found); then they enrol
distinct people and identify at once in one gallery file (plaintext, then encrypted), and every record is
counted and compared with what each writer enrolled: `records_lost`, `records_duplicated`,
`records_corrupt` must be 0 and `PRAGMA integrity_check` ok. Then `--kill9-rounds` times, a child enrols
(several templates per person) and forgets (sometimes with VACUUM) in a loop on one gallery and is
SIGKILLed at a random moment; after each kill the gallery must open, pass `PRAGMA integrity_check`, hold
every person wholly (all templates) or not at all, hold every enrolment the child saw committed and none
that it saw forgotten. Finally, --corrupt-files copies of a gallery with random bytes overwritten must open
with a typed error (file left byte for byte) or work.

The fuzz recipes and workers live in `squeezerface.bench.fuzz` (`RECIPES`: one small function per kind,
looked up by `build_case`; `FUZZ_KINDS`: their weights), the gallery harness in
`squeezerface.bench.gallery_stress` (the tests use the same code); this file is the command and the report.

Writes `NAME.json` and `NAME.md` to --out, with the acceptance figures: fuzz_cases, typed_errors, crashes,
hangs, concurrent_writers, records_lost, kill9_rounds, integrity_failures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from squeezerface.bench.fuzz import DEFAULT_LFW, recipes, replay, run_fuzz
from squeezerface.bench.gallery_stress import run_concurrent, run_corrupt_files, run_kill9, run_open_race

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- report


def _markdown(report: dict[str, Any]) -> str:
    a, f = report["acceptance"], report["fuzz"]
    lines = [
        "# Reliability benchmark",
        "",
        f"Command: `{report['command']}`  ",
        f"Seed {report['seed']}, {report['minutes']:.1f} minutes, {report['machine']}; "
        f"photos: {report['photos']}.",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v:,} |" if isinstance(v, int) else f"| {k} | {v} |" for k, v in a.items()]
    lines += [
        "",
        f"## Fuzzing: {f['fuzz_cases']:,} cases, {f['seconds']:.0f} s",
        "",
        f"Accepted (an embedding) {f['accepted']:,}; typed errors {f['typed_errors']:,}; "
        f"crashes {f['crashes']}; hangs {f['hangs']} (watchdog {f['case_timeout_s']:.0f} s); "
        f"over the memory cap {f['memory_over_cap']} "
        f"(cap {f['rss_cap_mb']:.0f} MB, peak worker RSS {f['peak_worker_rss_mb']:.0f} MB).",
        "",
        "| kind | cases | outcomes |",
        "| --- | ---: | --- |",
    ]
    for kind, counts in f["by_kind"].items():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(f"| {kind} | {sum(counts.values()):,} | {shown} |")
    if f["failures"]:
        lines += ["", "Failures (replay with `--replay RECIPE`):", ""]
        lines += [
            f"- `{json.dumps(x['recipe'])}`: {x['outcome']} {x.get('error', '')}" for x in f["failures"][:30]
        ]
    lines += ["", "## Gallery", "", "| test | figures |", "| --- | --- |"]
    for c in report["concurrent"]:
        mode = "encrypted" if c["encrypted"] else "plaintext"
        lines.append(
            f"| {c['writers']} writers x {c['enrolments_per_writer']} enrolments x "
            f"{c['templates_per_enrolment']} templates, {mode} | lost {c['records_lost']}, duplicated "
            f"{c['records_duplicated']}, corrupt {c['records_corrupt']}, integrity {c['integrity_check']}, "
            f"{c['seconds']:.1f} s; writers: {c['writer_stats']} |"
        )
    for o in report["open_race"]:
        mode = "encrypted" if o["encrypted"] else "plaintext"
        lines.append(
            f"| {o['processes']} processes creating and opening one new gallery at once, x {o['rounds']}, "
            f"{mode} | failed opens {o['open_failures']}, broken files {o['broken_files']} |"
        )
    for k in report["kill9"]:
        mode = "encrypted" if k["encrypted"] else "plaintext"
        lines.append(
            f"| kill -9 x {k['rounds']}, {mode} | integrity failures "
            f"{k['integrity_failures']}, partial enrolments {k['partial_enrolments']}, committed lost "
            f"{k['committed_lost']}, forgotten back {k['forgotten_resurrected']}, open failures "
            f"{k['open_failures']}; {k['enrolments_committed']} enrolments and "
            f"{k['forgets_committed']} forgets committed before the kills |"
        )
    for c in report["corrupt_files"]:
        mode = "encrypted" if c["encrypted"] else "plaintext"
        lines.append(
            f"| {c['files']} corrupted copies, {mode} | {c['outcomes']}; "
            f"crashes {c['crashes']}, file changed after an error {c['changed_after_error']} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    """The command's options, apart from `main` so that the run itself reads top to bottom."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Writes NAME.json and NAME.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--fuzz-cases", type=int, default=10_000, help="fuzz cases (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="fuzz worker processes")
    parser.add_argument("--case-timeout", type=float, default=30.0, help="seconds before a case is a hang")
    parser.add_argument(
        "--rss-cap-mb", type=float, default=1536.0, help="peak worker RSS above which a case fails"
    )
    parser.add_argument("--address-space-mb", type=int, default=8192, help="worker RLIMIT_AS (0: none)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent gallery writer processes")
    parser.add_argument("--enrolments", type=int, default=50, help="enrolments per writer")
    parser.add_argument(
        "--open-rounds",
        type=int,
        default=40,
        help="rounds of --writers processes creating one gallery at once",
    )
    parser.add_argument("--kill9-rounds", type=int, default=50, help="kill -9 rounds (each mode)")
    parser.add_argument("--corrupt-files", type=int, default=300, help="corrupted gallery copies (each mode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW folder for real photos (optional)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder")
    parser.add_argument("--name", default="reliability", help="file name stem of the outputs")
    parser.add_argument(
        "--selftest", action="store_true", help="add cases that fail on purpose (harness check)"
    )
    parser.add_argument("--replay", default=None, metavar="RECIPE", help="run one recipe (JSON) in process")
    return parser


def _say(text: str) -> None:
    """Progress on stderr, flushed at once: a long run shows where it is, and stdout stays for `--replay`."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class _GalleryRuns:
    """The gallery stress results of both modes (plaintext, then encrypted), in run order."""

    concurrent: list[dict[str, Any]] = field(default_factory=list)
    kill9: list[dict[str, Any]] = field(default_factory=list)
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    races: list[dict[str, Any]] = field(default_factory=list)


def _fuzz(args: argparse.Namespace, lfw: Path | None) -> dict[str, Any]:
    """The fuzzing part of the run, with its one-line summary on stderr."""
    fuzz = run_fuzz(
        recipes(args.fuzz_cases, args.seed, args.selftest),
        workers=args.workers,
        lfw=lfw,
        case_timeout=args.case_timeout,
        rss_cap_mb=args.rss_cap_mb,
        address_space_mb=args.address_space_mb,
        progress=_say,
    )
    _say(
        f"fuzz: {fuzz['fuzz_cases']:,} cases, {fuzz['crashes']} crashes, {fuzz['hangs']} hangs, "
        f"{fuzz['memory_over_cap']} over the memory cap, {fuzz['seconds']:.0f} s"
    )
    return fuzz


def _writers(args: argparse.Namespace, folder: Path, mode_key: str | None, runs: _GalleryRuns) -> None:
    """The many-process tests of one mode: creating one new gallery at once, then concurrent writers."""
    runs.races.append(run_open_race(folder, args.writers, args.open_rounds, key=mode_key))
    _say(_open_race_line(runs.races[-1], mode_key))
    runs.concurrent.append(run_concurrent(folder, args.writers, args.enrolments, key=mode_key))
    _say(_concurrent_line(runs.concurrent[-1], mode_key))


def _open_race_line(o: dict[str, Any], mode_key: str | None) -> str:
    """The progress line of one open race: the figures that must be zero."""
    return (
        f"gallery: {o['processes']} processes opening a new gallery at once x {o['rounds']} "
        f"({'encrypted' if mode_key else 'plaintext'}): {o['open_failures']} failed opens, "
        f"{o['broken_files']} broken files"
    )


def _concurrent_line(c: dict[str, Any], mode_key: str | None) -> str:
    """The progress line of one concurrent-writers test: records lost, duplicated or corrupt."""
    return (
        f"gallery: {c['writers']} writers ({'encrypted' if mode_key else 'plaintext'}): lost "
        f"{c['records_lost']}, duplicated {c['records_duplicated']}, "
        f"corrupt {c['records_corrupt']}, integrity {c['integrity_check']}, {c['seconds']:.1f} s"
    )


def _galleries(args: argparse.Namespace, key: str) -> _GalleryRuns:
    """Every gallery test, plaintext then encrypted with `key`, in a scratch folder removed afterwards."""
    runs = _GalleryRuns()
    with tempfile.TemporaryDirectory(prefix="sqf-reliability-") as tmp:
        folder = Path(tmp)
        for mode_key in (None, key):
            if args.writers:
                _writers(args, folder, mode_key, runs)
            if args.kill9_rounds:
                runs.kill9.append(run_kill9(folder, args.kill9_rounds, key=mode_key, seed=args.seed))
                k = runs.kill9[-1]
                _say(
                    f"kill -9: {k['rounds']} rounds ({'encrypted' if mode_key else 'plaintext'}): integrity "
                    f"failures {k['integrity_failures']}, partial {k['partial_enrolments']}, lost "
                    f"{k['committed_lost']}, {k['seconds']:.0f} s"
                )
            if args.corrupt_files:
                runs.corrupt.append(run_corrupt_files(folder, args.corrupt_files, args.seed, key=mode_key))
    return runs


def _acceptance(fuzz: dict[str, Any], runs: _GalleryRuns) -> dict[str, Any]:
    """The acceptance figures, summed over both modes: the numbers the report leads with and the exit
    status is decided on."""
    concurrent, kill9, corrupt, races = runs.concurrent, runs.kill9, runs.corrupt, runs.races
    return {
        "fuzz_cases": fuzz["fuzz_cases"],
        "typed_errors": fuzz["typed_errors"],
        "accepted": fuzz["accepted"],
        "crashes": fuzz["crashes"],
        "hangs": fuzz["hangs"],
        "memory_over_cap": fuzz["memory_over_cap"],
        "concurrent_writers": max((c["writers"] for c in concurrent), default=0),
        "records_lost": sum(c["records_lost"] for c in concurrent),
        "records_duplicated": sum(c["records_duplicated"] for c in concurrent),
        "records_corrupt": sum(c["records_corrupt"] for c in concurrent),
        "open_race_failures": sum(o["open_failures"] + o["broken_files"] for o in races),
        "kill9_rounds": sum(k["rounds"] for k in kill9),
        "integrity_failures": sum(k["integrity_failures"] for k in kill9)
        + sum(c["integrity_check"] != "ok" for c in concurrent),
        "partial_enrolments": sum(k["partial_enrolments"] for k in kill9),
        "committed_lost": sum(k["committed_lost"] for k in kill9),
        "corrupt_gallery_files": sum(c["files"] for c in corrupt),
        "corrupt_gallery_crashes": sum(c["crashes"] + c["changed_after_error"] for c in corrupt),
    }


def _report(
    args: argparse.Namespace,
    argv: list[str] | None,
    lfw: Path | None,
    minutes: float,
    fuzz: dict[str, Any],
    runs: _GalleryRuns,
    acceptance: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report: the acceptance figures first, then how the run was made and every detail."""
    import cv2

    return {
        **acceptance,  # the figures the issue names, at the top level where a reader looks first
        "acceptance": acceptance,
        "command": "python benchmarks/reliability.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "minutes": round(minutes, 2),
        "photos": f"LFW ({os.path.relpath(lfw, ROOT)})" if lfw else "synthetic (no LFW folder)",
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}, "
        f"SQLite {sqlite3.sqlite_version}",
        "fuzz": fuzz,
        "concurrent": runs.concurrent,
        "open_race": runs.races,
        "kill9": runs.kill9,
        "corrupt_files": runs.corrupt,
    }


def _failed(acceptance: dict[str, Any]) -> bool:
    """Whether any figure that must be zero is not: the run's exit status."""
    return any(
        acceptance[k]
        for k in (
            "open_race_failures",
            "crashes",
            "hangs",
            "memory_over_cap",
            "records_lost",
            "records_duplicated",
            "records_corrupt",
            "integrity_failures",
            "partial_enrolments",
            "committed_lost",
            "corrupt_gallery_crashes",
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    lfw = args.lfw if (args.lfw / "images").is_dir() else None
    if args.replay:
        print(replay(json.loads(args.replay), lfw))
        return 0

    started = time.monotonic()
    key = base64.b64encode(os.urandom(32)).decode()
    fuzz = _fuzz(args, lfw)
    runs = _galleries(args, key)
    minutes = (time.monotonic() - started) / 60
    acceptance = _acceptance(fuzz, runs)
    report = _report(args, argv, lfw, minutes, fuzz, runs, acceptance)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(_markdown(report))
    _say(f"wrote {args.out / (args.name + '.json')} and .md ({minutes:.1f} minutes)")
    failed = _failed(acceptance)
    return 1 if failed and not args.selftest else 0


if __name__ == "__main__":
    sys.exit(main())
