"""A benchmark report for people and for machines: the JSON file as measured, and its Markdown page.

The report is a plain JSON-able dict (see `runner.run_harness`), so the Markdown is a pure function of it:
a report submitted from a device can be re-rendered here, and tests render hand-made ones. Fewer than
PUBLISH_RUNS timed runs, or an emulated device, is flagged at the top of the page, never left to a footnote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squeezerface.bench.config import PUBLISH_RUNS
from squeezerface.bench.stages import STAGE_TITLES, STAGES
from squeezerface.bench.stats import LatencyRecord, find_record


def format_number(v: float | None, digits: int = 3) -> str:
    """A figure for a table: no decimals from 100, one from 10, else `digits`; "" for None. Pure."""
    if v is None:
        return ""
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown page of a benchmark report (the JSON's content, for people). Pure."""
    latency = [LatencyRecord(**r) for r in report.get("latency", [])]
    lines = [
        *_header(report),
        *_device_section(report.get("device", {})),
        *_targets_section(report.get("targets", [])),
        *(_latency_sections(latency) if latency else []),
        *_configs_section(report.get("configs", [])),
        *_roofline_section(report.get("gemm", []), report.get("roofline", [])),
    ]
    search = report.get("search", [])
    if search:
        lines += [render_search_markdown(search), ""]
    notes = report.get("notes", [])
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip() + "\n"


def _header(report: dict[str, Any]) -> list[str]:
    """Title, the smoke-run and emulation flags (at the top, never in a footnote), command and method."""
    dev = report.get("device", {})
    lines = [f"# {report.get('title', 'squeezerface latency benchmark')}", ""]
    runs = report.get("settings", {}).get("runs")
    fewest = min(runs) if isinstance(runs, list) else runs
    if fewest is not None and fewest < PUBLISH_RUNS:
        lines += [
            f"**Smoke run**: {fewest} timed runs per stage (fewer than {PUBLISH_RUNS}): not for publication.",
            "",
        ]
    if dev.get("emulated"):
        lines += [
            f"**EMULATION** ({dev['emulated']}): these timings come from an emulator and are not ARM "
            "latency.",
            "",
        ]
    settings = report["settings"]
    return [
        *lines,
        f"Device: **{report.get('device_summary', '')}**. Command: `{' '.join(report.get('command', []))}` "
        f"({report.get('created_utc', '')}).",
        "",
        f"Method: batch 1; {settings.get('isolation', '')}; per stage "
        f"{settings.get('warmup')} untimed warm-up calls then "
        f"{settings.get('runs')} timed calls (garbage collector off); p50/p90/p99, mean and std "
        "of those; ratio = ours p50 / dlib p50 in this "
        "same run (below 1: ours faster), speed-up = its inverse. Thread counts are passed to onnxruntime, "
        "LiteRT and OpenCV"
        + (
            ""
            if "IN-PROCESS" in str(settings.get("isolation", ""))
            else " and set in each worker's environment (OMP/OPENBLAS/MKL_NUM_THREADS)"
        )
        + ".",
        "",
        f"Photos: {report.get('images_note', '')}.",
        "",
    ]


def _device_section(dev: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, Any]] = [
        ("CPU", dev.get("cpu_model") or ""),
        ("cores", dev.get("cpu_cores") or ""),
        ("CPUs (logical / usable)", f"{dev.get('logical_cpus')} / {dev.get('usable_cpus')}"),
        (
            "clock MHz (max per CPU)",
            ", ".join(f"{v:.0f}" for v in dev.get("cpu_mhz", {}).get("max", [])) or "not exposed",
        ),
        ("governor", ", ".join(dev.get("governors", [])) or "not exposed"),
        ("board", dev.get("board") or ""),
        ("OS / kernel", f"{dev.get('os')} / {dev.get('kernel')}"),
        ("Python", dev.get("python", "")),
        ("memory MiB", format_number(dev.get("memory_mb"), 0)),
        ("numpy BLAS", dev.get("blas") or ""),
        ("packages", ", ".join(f"{k} {v}" for k, v in dev.get("packages", {}).items())),
    ]
    if dev.get("pi_throttled"):
        rows.append(
            ("Raspberry Pi throttling / temperature", f"{dev['pi_throttled']} / {dev.get('pi_temperature')}")
        )
    return ["## Device", "", *_md_table(("", ""), rows), ""]


def _targets_section(targets: list[dict[str, Any]]) -> list[str]:
    if not targets:
        return []
    rows = [
        (
            t["target"],
            t["config"],
            t["required"],
            t["measured"],
            {True: "met", False: "**missed**", None: "not judged"}[t["met"]],
            "; ".join(x for x in (t["shortfall"], t["why"]) if x),
        )
        for t in targets
    ]
    return [
        "## Targets (benchmarks, not tests)",
        "",
        *_md_table(("target", "configuration", "required", "measured", "", "by how much, and why"), rows),
        "",
    ]


def _latency_sections(latency: list[LatencyRecord]) -> list[str]:
    return [*_vs_dlib_section(latency), *_stages_section(latency), *_statistics_section(latency)]


def _vs_dlib_row(latency: list[LatencyRecord], key: tuple[str, int]) -> tuple[Any, ...] | None:
    e = find_record(latency, key[0], key[1], "embed")
    v = find_record(latency, key[0], key[1], "end_to_end")
    if e is None and v is None:
        return None
    return (
        key[0],
        key[1],
        e.precision if e else "",
        format_number(e.p50_ms) if e else "",
        format_number(e.ratio_vs_dlib, 4) if e else "",
        f"{e.speedup_vs_dlib:.1f}x" if e and e.speedup_vs_dlib else "",
        format_number(v.p50_ms) if v else "skipped",
        format_number(v.ratio_vs_dlib, 4) if v else "",
        f"{v.speedup_vs_dlib:.1f}x" if v and v.speedup_vs_dlib else "",
    )


def _vs_dlib_section(latency: list[LatencyRecord]) -> list[str]:
    rows = [r for r in (_vs_dlib_row(latency, key) for key in _ordered_keys(latency)) if r is not None]
    header = (
        "configuration",
        "threads",
        "precision",
        "embed ms",
        "ratio vs dlib",
        "speed-up",
        "end-to-end ms",
        "ratio vs dlib",
        "speed-up",
    )
    return ["## Embedding and end to end against dlib (p50)", "", *_md_table(header, rows), ""]


def _stages_section(latency: list[LatencyRecord]) -> list[str]:
    stages = [s for s in STAGES if any(r.stage == s for r in latency)]
    rows = []
    for key in _ordered_keys(latency):
        cells = []
        for s in stages:
            r = find_record(latency, key[0], key[1], s)
            cells.append(format_number(r.p50_ms) if r else "")
        rows.append((key[0], key[1], *cells))
    return [
        "## Per stage (p50 ms)",
        "",
        "Stages: " + "; ".join(f"{s} = {STAGE_TITLES[s]}" for s in stages) + ".",
        "",
        *_md_table(("configuration", "threads", *stages), rows),
        "",
    ]


def _statistics_section(latency: list[LatencyRecord]) -> list[str]:
    rows = [
        (
            r.config,
            r.stage,
            r.backend,
            r.precision,
            r.threads,
            r.runs,
            format_number(r.p50_ms),
            format_number(r.p90_ms),
            format_number(r.p99_ms),
            f"{format_number(r.mean_ms)} ± {format_number(r.std_ms)}",
            format_number(r.ratio_vs_dlib, 4),
            r.note,
        )
        for r in latency
    ]
    header = (
        "configuration",
        "stage",
        "backend",
        "precision",
        "threads",
        "runs",
        "p50",
        "p90",
        "p99",
        "mean ± std",
        "ratio vs dlib",
        "note",
    )
    return ["## All statistics (ms)", "", *_md_table(header, rows), ""]


def _config_row(c: dict[str, Any]) -> tuple[Any, ...]:
    cfg, models = c["config"], c.get("models", {})
    return (
        cfg["name"],
        cfg["threads"],
        c["status"],
        format_number(c.get("import_ms"), 1),
        format_number(c.get("load_ms"), 1),
        format_number(c.get("peak_rss_mb"), 1),
        ", ".join(str(models[k]) for k in ("embedder", "detector") if models.get(k)),
        "; ".join(x for x in [c.get("reason", ""), *c.get("notes", [])] if x),
    )


def _configs_section(configs: list[dict[str, Any]]) -> list[str]:
    if not configs:
        return []
    header = (
        "configuration",
        "threads",
        "status",
        "engine import ms",
        "model load ms",
        "peak RSS MiB",
        "models",
        "notes",
    )
    return [
        "## Model load, memory, skipped configurations",
        "",
        *_md_table(header, [_config_row(c) for c in configs]),
        "",
        "Peak RSS is the whole worker process (Python, numpy, OpenCV, the engine, the models, the "
        "photos).",
        "",
    ]


def _roofline_row(p: dict[str, Any]) -> tuple[Any, ...]:
    return (
        p["config"],
        p["threads"],
        p["precision"],
        format_number(p["mmacs"], 1),
        format_number(p["embed_p50_ms"]),
        format_number(p["achieved_gflops"], 2),
        p.get("ceiling", "fp32"),
        f"{100 * p['fraction']:.1f} %",
        f"{100 * p['engine_fraction']:.1f} %" if p.get("engine_fraction") else "",
    )


def _roofline_section(gemm: list[dict[str, Any]], roof: list[dict[str, Any]]) -> list[str]:
    if not (gemm or roof):
        return []
    rows = [
        (g["threads"], g.get("dtype", "fp32"), f"{g['gflops']:.1f}", g["size"], g.get("blas") or "")
        for g in gemm
    ]
    lines = [
        "## Roofline: embedder against the measured GEMM ceiling",
        "",
        *_md_table(("threads", "GEMM", "GFLOP/s (int8: GOP/s)", "best size n", "computed by"), rows),
        "",
    ]
    if not roof:
        return lines
    header = (
        "configuration",
        "threads",
        "precision",
        "MMACs",
        "embed p50 ms",
        "achieved G/s",
        "ceiling",
        "of the ceiling",
        "engine call alone, of the ceiling",
    )
    return [
        *lines,
        *_md_table(header, [_roofline_row(p) for p in roof]),
        "",
        "Achieved = 2 x MACs (from the model card) / p50, against the GEMM ceiling of the model's "
        "precision measured in this run: float32 through numpy's BLAS, int8 through onnxruntime's "
        "MatMulInteger (u8 x s8, measured when the onnx package is installed). An int8 model shown "
        "against the fp32 ceiling (no int8 one measured) is not judged by it.",
        "",
    ]


def render_search_markdown(
    records: Sequence[dict[str, Any]],
    heading: str = "## 1:N search: one query against a gallery of N templates",
) -> str:
    """The 1:N search table under `heading`. Pure."""
    rows = []
    for r in records:
        size = f"{r['size']:,}" if r["size"] else ""
        rows.append(
            (
                r["engine"],
                size,
                r["threads"],
                r["status"],
                format_number(r.get("p50_ms")),
                format_number(r.get("p90_ms")),
                format_number(r.get("p99_ms")),
                format_number(r.get("matrix_mb"), 1),
                format_number(r.get("rss_delta_mb"), 1),
                r.get("note", ""),
            )
        )
    k = next((r["k"] for r in records if r["status"] == "ok"), 10)
    q = next((r["queries"] for r in records if r["status"] == "ok"), 0)
    lines = [
        heading,
        "",
        f"Seeded random 128-d unit vectors; top-{k} by cosine (numpy: matrix-vector product + argpartition; "
        f"FAISS: exact IndexFlatIP); {q} queries after 5 warm-up ones, each timed alone (batch 1).",
        "",
        *_md_table(
            (
                "engine",
                "templates",
                "threads",
                "status",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "matrix MiB",
                "RSS growth MiB",
                "note",
            ),
            rows,
        ),
    ]
    return "\n".join(lines)


def _ordered_keys(records: Sequence[LatencyRecord]) -> list[tuple[str, int]]:
    """(configuration, threads) of the records, each once, in first-seen order."""
    return list(dict.fromkeys((r.config, r.threads) for r in records))


def write_report(report: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`stem`.json and `stem`.md in `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path
