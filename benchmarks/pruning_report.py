"""Collect the base training and pruning runs into benchmarks/results/pruning.{json,md,png}.

Reads what the runs wrote (runs/prune_<criterion>/curve.jsonl, whose step 0 is the base model measured by
the pruning run itself) and the teacher's LFW record; it measures nothing itself.

    python benchmarks/pruning_report.py --runs runs/prune_taylor runs/prune_l1 runs/prune_random
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load_curve(run: Path) -> tuple[str, list[dict]]:
    rows = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]
    criterion = (
        json.loads((run / "step1.json").read_text()).get("criterion", run.name) if len(rows) > 1 else run.name
    )
    return criterion, rows


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def model_row(name: str, criterion: str | None, r: dict) -> dict:
    m = r["metrics"]
    return {
        "name": name,
        "criterion": criterion,
        "step": r["step"],
        "params": r["params"],
        "mflops": r["mflops"],
        "lfw_accuracy_mean": m.get("lfw_accuracy_mean"),
        "lfw_accuracy_std": m.get("lfw_accuracy_std"),
        "lfw_tar_at_far_1e-3": m.get("lfw_tar_at_far_1e-3"),
        "val_accuracy": m.get("val_accuracy"),
        "val_cos_teacher": m.get("val_cos_teacher"),
        "spec": r["spec"],
    }


def choose(rows: list[dict]) -> dict[str, dict]:
    """The models to ship from one curve, chosen on validation accuracy only (never LFW): the first step
    under 1M params, the smallest step whose validation accuracy is within 1.0 pp of the base's, and the
    last (smallest) step of the curve."""
    base_val = rows[0]["metrics"]["val_accuracy"]
    chosen = {"base": rows[0]}
    under = [r for r in rows[1:] if r["params"] < 1_000_000]
    if under:
        chosen["under-1m"] = under[0]
    close = [r for r in rows[1:] if r["metrics"]["val_accuracy"] >= base_val - 0.01]
    if close:
        chosen["smallest-within-1pp-val"] = min(close, key=lambda r: r["params"])
    if len(rows) > 1:
        chosen["curve-end"] = rows[-1]
    return chosen


def export(run: Path, criterion: str, rows: list[dict], dest: Path) -> list[str]:
    """Copy the chosen models (spec + weights) into `dest` as <criterion>-<params>k.{json,safetensors}."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for role, r in choose(rows).items():
        name = "base" if role == "base" else f"{criterion}-{round(r['params'] / 1000)}k"
        for ext in (".json", ".safetensors"):
            shutil.copyfile(run / f"step{r['step']}{ext}", dest / f"{name}{ext}")
        lines.append(
            f"| `{name}` | {role} | {r['params']:,} | {r['mflops']:.1f} | "
            f"{pct(r['metrics']['val_accuracy'])} | {pct(r['metrics'].get('lfw_accuracy_mean'))} |"
        )
    return lines


def plot(curves: dict[str, list[dict]], teacher: float, teacher_val: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for criterion, rows in curves.items():
        label = "control: no pruning, same fine-tuning" if criterion == "none" else criterion
        params = [r["params"] / 1e6 for r in rows]
        lfw = [r["metrics"].get("lfw_accuracy_mean") for r in rows]
        if all(a is not None for a in lfw):
            axes[0].plot(params, [100 * a for a in lfw], "o-", label=label)
        axes[1].plot(params, [100 * r["metrics"]["val_accuracy"] for r in rows], "o-", label=label)
    axes[0].axhline(100 * teacher, ls="--", c="grey", label=f"dlib teacher {100 * teacher:.2f}%")
    if teacher_val is not None:
        axes[1].axhline(100 * teacher_val, ls="--", c="grey", label=f"dlib teacher {100 * teacher_val:.2f}%")
    axes[0].set_title("LFW View 2, 10-fold accuracy (report only)")
    axes[1].set_title("Validation: held-out celeba_wild identities")
    for ax in axes:
        ax.set_xlabel("parameters (millions)")
        ax.set_ylabel("accuracy (%)")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.axvline(1.0, ls=":", c="k", lw=0.8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="pruning run folders")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--export", type=Path, default=None, help="copy the chosen models of the first run here")
    args = p.parse_args()
    teacher = json.loads((RESULTS / "lfw_teacher.json").read_text())
    curves = dict(load_curve(r) for r in args.runs)
    first = next(iter(curves.values()))
    models = [model_row("base", None, first[0])]
    for criterion, rows in curves.items():
        models += [model_row(f"{criterion}-step{r['step']}", criterion, r) for r in rows[1:]]
    record = {
        "teacher": {
            "name": teacher["embedder"],
            "lfw_accuracy_mean": teacher["accuracy_mean"],
            "lfw_accuracy_std": teacher["accuracy_std"],
            "val_accuracy": first[0]["metrics"].get("teacher_val_accuracy"),
        },
        "models": models,
        "curves": curves,
        "command": "python benchmarks/pruning_report.py --runs " + " ".join(str(r) for r in args.runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pruning.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# Pruning curve",
        "",
        f"Teacher: `{teacher['embedder']}`, LFW {100 * teacher['accuracy_mean']:.2f} %, validation "
        + (
            f"{100 * record['teacher']['val_accuracy']:.2f} %."
            if record["teacher"]["val_accuracy"]
            else "n/a."
        ),
        "LFW View 2 is measured only to report; model selection uses held-out celeba_wild identities.",
        "",
        "| model | criterion | params | MFLOPs (MACs) | LFW acc. | LFW TAR@FAR1e-3 | val acc. |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in models:
        tar = m["lfw_tar_at_far_1e-3"]
        lines.append(
            f"| {m['name']} | {m['criterion'] or '-'} | {m['params']:,} | {m['mflops']:.1f} | "
            f"{pct(m['lfw_accuracy_mean'])} ± {pct(m['lfw_accuracy_std'])} | {pct(tar)} | "
            f"{pct(m['val_accuracy'])} |"
        )
    lines += ["", f"Command: `{record['command']}`", ""]
    (args.out / "pruning.md").write_text("\n".join(lines))
    if args.export:
        criterion, rows = load_curve(args.runs[0])
        table = export(args.runs[0], criterion, rows, args.export)
        (args.export / "MODELS.md").write_text(
            "\n".join(
                [
                    "# Trained SqueezerFaceNet weights (research use only)",
                    "",
                    "Trained on utkface + celeba_wild (non-commercial research licences): research use only.",
                    "Rebuild with `pruning.model.load_model(STEM)` (spec text + safetensors).",
                    "Chosen on validation accuracy (held-out celeba_wild identities), never on LFW.",
                    "",
                    "| file | role | params | MMACs | val acc. % | LFW acc. % |",
                    "| --- | --- | --- | --- | --- | --- |",
                    *table,
                    "",
                    "Made by the commands in benchmarks/RUNS.md; exported by `"
                    + record["command"]
                    + f" --export {args.export}`.",
                    "",
                ]
            )
        )
    plot(curves, teacher["accuracy_mean"], record["teacher"]["val_accuracy"], args.out / "pruning.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
