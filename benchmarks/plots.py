"""The committed benchmark plots (matplotlib, full harness only; the on-device bench draws nothing).

Each function takes a report dict as benchmarks/run.py writes it and a PNG path; nothing is measured here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOT_STAGES = ("decode", "detect", "align", "embed", "end_to_end")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_plot(report: dict[str, Any], path: Path) -> Path | None:
    """p50 per stage (log scale, p90 as the whisker), one bar per configuration, one panel per thread
    count; the dlib peer in grey."""
    records = report.get("latency", [])
    if not records:
        return None
    plt = _pyplot()
    threads = sorted({r["threads"] for r in records})
    fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 4.8), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], threads, strict=True):
        rows = [r for r in records if r["threads"] == t and r["stage"] in PLOT_STAGES]
        configs = list(dict.fromkeys(r["config"] for r in rows))
        width = 0.8 / max(1, len(configs))
        for i, name in enumerate(configs):
            xs, ys, err = [], [], []
            for j, stage in enumerate(PLOT_STAGES):
                r = next((r for r in rows if r["config"] == name and r["stage"] == stage), None)
                if r is None:
                    continue
                xs.append(j + (i - (len(configs) - 1) / 2) * width)
                ys.append(r["p50_ms"])
                err.append(max(0.0, r["p90_ms"] - r["p50_ms"]))
            colour = "0.55" if name.startswith("dlib") else None
            ax.bar(xs, ys, width, yerr=[[0] * len(err), err], label=name, color=colour, capsize=2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(PLOT_STAGES)))
        ax.set_xticklabels([s.replace("_", " ") for s in PLOT_STAGES])
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency, ms (log; whisker: p90)")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Latency per stage, batch 1: {report.get('device_summary', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_plot(accuracy: dict[str, Any], path: Path) -> Path | None:
    """LFW accuracy against parameters and against compute: our measured models (filled) and the quoted
    anchors (hollow, labelled 'quoted'); the teacher, whose size we do not count, as horizontal lines."""
    plt = _pyplot()
    measured = [
        r for r in accuracy.get("measured", []) if r["params"] is not None and r["artifact"] == "torch fp32"
    ]
    quoted = accuracy.get("quoted", [])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    panels = (
        ("params", "parameters (millions)"),
        ("compute", "compute per face (millions of MACs; quoted: as reported)"),
    )
    teacher = next((r for r in accuracy.get("measured", []) if r["group"] == "teacher"), None)
    dlib_quoted = next((q for q in quoted if q["name"].startswith("dlib") and q["lfw_accuracy"]), None)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for i, r in enumerate(measured):
            x = r["params"] / 1e6 if key == "params" else r["mmacs"]
            if x is None:
                continue
            ax.scatter([x], [100 * r["accuracy_mean"]], color="tab:blue", zorder=3)
            ax.annotate(
                r["model"],
                (x, 100 * r["accuracy_mean"]),
                textcoords="offset points",
                xytext=(4, 6 if i % 2 else -12),  # alternate above/below: neighbours are close
                fontsize=7,
            )
        for q in quoted:
            x = q["params_m"] if key == "params" else q["mcompute"]
            if x is None or q["lfw_accuracy"] is None:
                continue
            ax.scatter(
                [x], [q["lfw_accuracy"]], facecolors="none", edgecolors="tab:red", marker="s", zorder=3
            )
            ax.annotate(
                f"{q['name']} (quoted)",
                (x, q["lfw_accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        if teacher:
            ax.axhline(100 * teacher["accuracy_mean"], color="0.4", ls="--", lw=1)
            ax.text(
                ax.get_xlim()[0],
                100 * teacher["accuracy_mean"],
                " dlib teacher, measured here",
                fontsize=7,
                va="bottom",
            )
        if dlib_quoted:
            ax.axhline(dlib_quoted["lfw_accuracy"], color="0.6", ls=":", lw=1)
            ax.text(
                ax.get_xlim()[0],
                dlib_quoted["lfw_accuracy"],
                " dlib, quoted by its authors",
                fontsize=7,
                va="bottom",
            )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("LFW View 2 accuracy, %")
    fig.suptitle(
        "Ours: measured here, torch fp32, teacher-landmark alignment (filled). Others: quoted from their "
        "papers / model cards, other data and protocols (hollow)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def search_plot(search: list[dict[str, Any]], path: Path) -> Path | None:
    """Query p50 against gallery size (log-log), one line per engine and thread count."""
    ok = [r for r in search if r["status"] == "ok"]
    if not ok:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for engine, threads in sorted({(r["engine"], r["threads"]) for r in ok}):
        rows = sorted(
            (r for r in ok if r["engine"] == engine and r["threads"] == threads), key=lambda r: r["size"]
        )
        ax.plot(
            [r["size"] for r in rows],
            [r["p50_ms"] for r in rows],
            marker="o",
            label=f"{engine}, {threads} thread(s)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("templates in the gallery (128-d float32)")
    ax.set_ylabel("top-10 query p50, ms")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("1:N search, exact cosine, batch 1", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency_accuracy_plot(rows: list[Any], path: Path) -> Path | None:
    """LFW accuracy against end-to-end verify latency (p50, 1 thread, log scale), one panel per input
    size: every pipeline measured in the same run, ours filled, the peers hollow."""
    inputs = list(dict.fromkeys(r.input for r in rows))
    if not inputs:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(inputs), figsize=(3.4 * len(inputs), 3.8), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], inputs, strict=True):
        for r in rows:
            if r.input != name or r.threads != 1 or r.end_to_end_ms is None or r.lfw_accuracy is None:
                continue
            ours = r.config.startswith("squeezerface")
            ax.scatter(
                r.end_to_end_ms, 100 * r.lfw_accuracy, s=36,
                facecolors=None if ours else "none", edgecolors="C0" if ours else "C3",
                marker="o" if ours else "s",
            )  # fmt: skip
            ax.annotate(r.config.replace("squeezerface-", ""), (r.end_to_end_ms, 100 * r.lfw_accuracy),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # labelled decades only: minor labels collide
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("verify(A, B) p50, ms (log)")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("LFW accuracy, % (same eval code path)")
    fig.suptitle("Accuracy vs end-to-end latency, 1 thread, measured in one run", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
