"""Collect pruning curves into benchmarks/results/pruning.{json,md,png}: both model lines, every criterion.

Reads what the runs wrote (`<run>/records.jsonl` of `python -m pruning.prune_line`; step 0 is the starting
model measured by the run itself) and, for reference, the first embedder's curve (`pruning_v1.json`:
SqueezerFaceNet distilled from dlib on 25k faces). It measures nothing itself.

    python benchmarks/pruning_report.py \\
        --line "pretrained: MobileFaceNet=runs/prune_mfn_taylor,runs/prune_mfn_l1,runs/prune_mfn_random" \\
        --line "paper: SqueezerFaceNet=runs/prune_sqz_taylor"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = (
    "step",
    "criterion",
    "params",
    "mmacs",
    "lfw_accuracy_mean",
    "lfw_accuracy_std",
    "lfw_tar_far1e-3",
    "val_accuracy",
    "val_tar_far1e-3",
    "val_cos_teacher",
    "finetune_steps",
)


def load_run(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines() if line.strip()]
    criterion = next((r["criterion"] for r in rows), run.name)
    return [{**{k: r.get(k) for k in FIELDS}, "criterion": criterion, "run": str(run)} for r in rows]


def parse_line(text: str) -> tuple[str, list[Path]]:
    name, runs = text.split("=", 1)
    return name.strip(), [Path(r) for r in runs.split(",") if r]


def v1_curves(path: Path) -> dict[str, list[dict]]:
    """The first embedder's curves (dlib teacher), in this report's fields."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    out: dict[str, list[dict]] = {}
    for criterion, rows in old["curves"].items():
        out[criterion] = [
            {
                "step": r["step"],
                "criterion": criterion,
                "params": r["params"],
                "mmacs": r["mflops"],
                "lfw_accuracy_mean": r["metrics"].get("lfw_accuracy_mean"),
                "lfw_accuracy_std": r["metrics"].get("lfw_accuracy_std"),
                "lfw_tar_far1e-3": r["metrics"].get("lfw_tar_at_far_1e-3"),
                "val_accuracy": r["metrics"].get("val_accuracy"),
            }
            for r in rows
        ]
    return out


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def table(lines: dict[str, dict[str, list[dict]]]) -> list[str]:
    out = [
        "| line | criterion | step | params | MMACs | LFW acc. % | LFW TAR@FAR1e-3 % | held-out acc. % "
        "| held-out TAR@1e-3 % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for line, curves in lines.items():
        for criterion, rows in curves.items():
            for r in rows:
                lfw = f"{pct(r['lfw_accuracy_mean'])} ± {pct(r.get('lfw_accuracy_std'))}"
                out.append(
                    f"| {line} | {criterion} | {r['step']} | {r['params']:,} | {r['mmacs']:.1f} | {lfw} | "
                    f"{pct(r.get('lfw_tar_far1e-3'))} | {pct(r.get('val_accuracy'))} | "
                    f"{pct(r.get('val_tar_far1e-3'))} |"
                )
    return out


def plot(lines: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """One row per model line (their accuracies are far apart), LFW accuracy and TAR at FAR 1e-3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(lines), 2, figsize=(12, 3.6 * len(lines)), squeeze=False)
    styles = {"taylor": "o-", "l1": "s--", "random": "^:", "activation": "d-.", "none": "x-."}
    for row, (line, curves) in zip(axes, lines.items(), strict=True):
        for criterion, rows in curves.items():
            params = [r["params"] / 1e6 for r in rows]
            for ax, key in zip(row, ("lfw_accuracy_mean", "lfw_tar_far1e-3"), strict=True):
                values = [r.get(key) for r in rows]
                if all(v is not None for v in values):
                    style = styles.get(criterion, "o-")
                    ax.plot(params, [100 * v for v in values], style, label=criterion, ms=4)
        row[0].set_title(f"{line}: LFW View 2 accuracy (report only)", fontsize=9)
        row[1].set_title(f"{line}: LFW TAR at FAR 1e-3", fontsize=9)
        for ax in row:
            ax.set_xlabel("parameters (millions)")
            ax.set_ylabel("%")
            ax.invert_xaxis()
            ax.grid(alpha=0.3)
            ax.axvline(1.0, ls=":", c="k", lw=0.8)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--line", action="append", required=True, help="'NAME=run1,run2,...' (one per model line)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--v1", type=Path, default=RESULTS / "pruning_v1.json", help="the first embedder's curves")
    args = p.parse_args(argv)
    lines: dict[str, dict[str, list[dict]]] = {}
    for text in args.line:
        name, runs = parse_line(text)
        lines[name] = {rows[0]["criterion"]: rows for rows in map(load_run, runs)}
    old = v1_curves(args.v1)
    if old:
        lines["v1 paper line (dlib teacher, pruning_v1.json)"] = old
    command = "python benchmarks/pruning_report.py " + " ".join(f"--line '{t}'" for t in args.line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pruning.json").write_text(json.dumps({"lines": lines, "command": command}, indent=1) + "\n")
    md = [
        "# Pruning curves",
        "",
        "Both model lines of embedder v2, each pruned by first-order Taylor scores (the paper's criterion) "
        "with "
        "L1 and random ablations where run, fine-tuned by distillation after every cut. Held-out: pairs of "
        "held-out celeba_wild + Pins identities (selection); LFW View 2 with faces aligned by the runtime's "
        "own detector (report only). Step 0 is the starting model.",
        "",
        *table(lines),
        "",
        "![pruning curves](pruning.png)",
        "",
        f"Command: `{command}`",
        "",
    ]
    (args.out / "pruning.md").write_text("\n".join(md))
    plot(lines, args.out / "pruning.png")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
