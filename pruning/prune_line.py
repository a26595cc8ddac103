"""One pruning curve: a starting embedder cut down through a list of parameter targets by one criterion,
fine-tuned by distillation after every cut (the paper's iterative schedule), each point measured.

At each target: gradients of the training loss (`distill.DistillLoss`: distillation on the augmented view +
CosFace) are accumulated over `score_batches` batches without a step (BatchNorm in eval mode), the chosen
criterion (`taylor`: the paper's sum over a filter of (dL/dw * w)^2; `l1`; `random`) ranks every channel
of the prunable layers globally, the fewest lowest-ranked channels that reach the target are removed
(`pruning.prune`, floors of 25 % per layer from the starting model), and `distill.fit` fine-tunes.

Each point is saved as `<out>/step<k>.json/.safetensors` and its record appended to `<out>/records.jsonl`
(params, MMACs, held-out accuracy, LFW View 2 accuracy and TAR at FAR 1e-3 of the torch model on faces
aligned by the runtime's detector — reported, never used to choose anything). A killed run restarts at
the last finished point, and a fine-tuning in progress resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from pruning import architectures, prune
from pruning.distill import DistillConfig, DistillLoss, Session, fit, student_model
from pruning.evaluate import AlignedPairs, lfw_report, runtime_aligned_lfw
from pruning.model import count_mflops, count_params
from squeezerface.metrics import far_key

CRITERIA = ("taylor", "l1", "random")


def importance(name: str, seed: int) -> torch.nn.Module:
    if name == "taylor":
        return prune.TaylorImportance()
    if name == "l1":
        return prune.MagnitudeL1Importance()
    if name == "random":
        return prune.RandomImportance(seed)
    raise ValueError(f"unknown criterion {name!r}; use one of {CRITERIA}")


def cut(
    model: torch.nn.Module,
    target: int,
    criterion: str,
    cfg: DistillConfig,
    session: Session,
    floors: dict[str, int],
    score_batches: int,
) -> dict[str, int]:
    """Remove the lowest-ranked channels that bring `model` to <= target params; returns removed per layer."""
    if criterion == "taylor":
        loss = DistillLoss(model, session.teacher, session.prototypes, replace(cfg, bf16=False))
        batches = (loss_batches(session, cfg, k) for k in range(score_batches))
        prune.accumulate_gradients(model, batches, lambda net, b: loss(b), score_batches)
    before = prune.layer_channels(prune.model_spec(model))
    graph = prune.build_graph(model)
    candidates = prune.removable_channels(model, importance(criterion, cfg.seed), floors, 4, graph=graph)
    n = prune.channels_for_target(prune.model_spec(model), candidates, target)
    prune.apply_plan(model, prune._plan_of(candidates[:n]), graph=graph)
    model.zero_grad(set_to_none=True)
    after = prune.layer_channels(prune.model_spec(model))
    return {k: v - after[k] for k, v in before.items() if v != after[k]}


def loss_batches(session: Session, cfg: DistillConfig, k: int):
    """Scoring batches: seeded apart from the training batches (stream 1_000_000 + k)."""
    from pruning.distill import Batches

    return Batches(session.bank, session.classes, cfg)(1_000_000 + k)


def measure(model: torch.nn.Module, session: Session, lfw: AlignedPairs | None) -> dict:
    record = {
        "params": count_params(model),
        "mmacs": round(count_mflops(model), 2),
        **session.held_out(model),
    }
    if lfw is not None:
        report = lfw_report(model, lfw)
        record["lfw_accuracy_mean"] = report["accuracy_mean"]
        record["lfw_accuracy_std"] = report["accuracy_std"]
        record["lfw_tar_far1e-3"] = report["tar_at_far"][far_key(1e-3)]["tar"]
    return record


def run(args: argparse.Namespace) -> list[dict]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DistillConfig(
        faces=args.faces,
        student=args.start,
        teacher=args.teacher,
        steps=args.finetune_steps,
        eval_every=args.finetune_steps,
        batch=args.batch,
        seed=args.seed,
        threads=args.threads,
        lr=args.lr,
        identity=args.identity,
    )
    session = Session.open(cfg)
    lfw = runtime_aligned_lfw(Path(args.lfw), Path(args.lfw_cache)) if args.lfw else None
    records_path = out / "records.jsonl"
    records = (
        [json.loads(line) for line in records_path.read_text().splitlines()] if records_path.exists() else []
    )
    model = student_model(cfg)
    floors = prune.default_floors(prune.model_spec(model))
    if not records:
        records.append(
            {"step": 0, "criterion": args.criterion, "removed": {}, **measure(model, session, lfw)}
        )
        records_path.write_text(json.dumps(records[0]) + "\n")
    elif records[-1]["step"] > 0:
        model = architectures.load(out / f"step{records[-1]['step']}", normalize=False)
    for k, target in enumerate(args.targets, 1):
        if k < len(records):
            continue
        removed = cut(model, target, args.criterion, cfg, session, floors, args.score_batches)
        fit(model, replace(cfg, out=str(out / f"step{k}_ft"), seed=args.seed + k), session, not args.quiet)
        record = {
            "step": k,
            "criterion": args.criterion,
            "target": target,
            "removed": removed,
            "finetune_steps": args.finetune_steps,
            **measure(model, session, lfw),
        }
        architectures.save(model, out / f"step{k}", **{k2: v for k2, v in record.items() if k2 != "removed"})
        with records_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        records.append(record)
        print(json.dumps(record), flush=True)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pruning.prune_line",
        description="Prune an embedder through parameter targets by one criterion, fine-tuning by distilling "
        "after each cut; one record per point (held-out and LFW). Resumes where it stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--start", default="mobilefacenet", help="'mobilefacenet' (public weights) or a saved <stem>"
    )
    p.add_argument(
        "--teacher", default="mobilefacenet", help="'mobilefacenet' (public weights) or a saved <stem>"
    )
    p.add_argument("--criterion", choices=CRITERIA, default="taylor")
    p.add_argument(
        "--targets",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[960_000, 930_000, 900_000],
        help="parameter targets, comma-separated, decreasing",
    )
    p.add_argument("--out", default="runs/prune_mobilefacenet_taylor")
    p.add_argument("--faces", default="runs/facebank")
    p.add_argument("--finetune-steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--score-batches", type=int, default=16, help="batches of gradient accumulated per ranking"
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--identity", type=float, default=0.02, help="CosFace weight in the loss")
    p.add_argument("--lfw", default="../shared/data/lfw", help="LFW folder for the report ('' to skip)")
    p.add_argument("--lfw-cache", default="runs/lfw_runtime_aligned.npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
