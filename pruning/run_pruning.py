"""The iterative pruning run: score -> remove the lowest-ranked filters -> fine-tune -> measure, repeated
down a schedule of parameter targets, for the paper's Taylor criterion and the ablation criteria.

Every criterion follows the same parameter targets, so the curves compare accuracy at equal size. Each step
is saved (spec + weights) and appended to `curve.jsonl` before the next starts; a rerun resumes after the
last finished step. Fine-tuning distils from the same teacher targets as base training; model selection
never looks at LFW, whose accuracy is only recorded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pruning.evaluate import AlignedPairs, aligned_lfw, lfw_report
from pruning.faceset import FaceSet
from pruning.loop import EpochBatches, LoopConfig, train_loop, warmup_cosine
from pruning.model import SqueezerFaceNet, count_mflops, count_params, load_model, save_model
from pruning.prune import (
    ActivationTaylorImportance,
    MagnitudeL1Importance,
    RandomImportance,
    TaylorImportance,
    accumulate_gradients,
    default_floors,
    prune_to_params,
)
from pruning.spec import ModelSpec
from pruning.train import (
    distill_batch_loss,
    distill_loss,
    epoch_batches,
    make_batch,
    open_run,
    teacher_validation,
    validate,
)

CRITERIA = ("taylor", "activation", "l1", "random", "none")
"""`none` is the control: the same fine-tuning schedule with nothing removed, so a curve can be read
against what the extra training alone does to the base model."""
DEFAULT_TARGETS = (1_150_000, 1_050_000, 980_000, 900_000, 820_000, 750_000, 680_000, 620_000)


def make_importance(name: str, seed: int):
    if name == "none":
        return None
    if name == "taylor":
        return TaylorImportance()
    if name == "activation":
        return ActivationTaylorImportance()
    if name == "l1":
        return MagnitudeL1Importance()
    if name == "random":
        return RandomImportance(seed=seed)
    raise ValueError(f"unknown criterion {name!r}; use one of {', '.join(CRITERIA)}")


def _stream_batches(fs: FaceSet, centre: np.ndarray, batch: int, seed: int, stream: int) -> EpochBatches:
    """Seeded training batches as `make_batch(step)`: epoch after epoch of the stream's own order (stream
    separates uses of the same seed)."""
    train_idx = fs.indices(0)
    stream_seed = seed + 1000 * stream

    def open_epoch(epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = epoch_batches(train_idx, batch, stream_seed, epoch)
        return (make_batch(fs, idx, centre, stream_seed, epoch) for idx in batches[start:])

    return EpochBatches(open_epoch, len(epoch_batches(train_idx, batch, stream_seed, 0)))


def _batches(fs: FaceSet, centre: np.ndarray, batch: int, seed: int, stream: int) -> Iterator[tuple]:
    """The same batches as an endless iterator (what gradient accumulation for scoring reads)."""
    make = _stream_batches(fs, centre, batch, seed, stream)
    return (make(step) for step in itertools.count())


def finetune(
    model: SqueezerFaceNet,
    fs: FaceSet,
    centre: np.ndarray,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
    stream: int,
    show_progress: bool,
) -> float:
    """`steps` AdamW steps of distillation with cosine-decayed lr on the shared loop (a fresh optimiser:
    pruning made new parameters; no checkpoint: a rerun resumes after the last finished pruning step).
    Returns the mean loss."""
    if steps < 1:
        model.eval()
        return float("nan")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    state = train_loop(
        model,
        opt,
        warmup_cosine(opt, 0, steps),
        None,
        LoopConfig(total_steps=steps, eval_every=steps, show_progress=show_progress),
        _stream_batches(fs, centre, batch, seed, stream),
        lambda b: distill_batch_loss(model, b[0], b[1], relational=1.0, bf16=True, channels_last=True),
    )
    model.eval()
    return float(state.history[-1]["loss"])


@dataclass
class _PruningRun:
    """What every step of one run shares: the options, the data it trains and measures on, and the steps
    finished so far (`done`, as in `curve.jsonl`)."""

    args: argparse.Namespace
    out: Path
    fs: FaceSet
    centre: np.ndarray
    pairs: Any  # validation pairs, as `open_run` gives them
    lfw: AlignedPairs | None
    curve_path: Path
    done: list[dict]


def _measure(ctx: _PruningRun, model: SqueezerFaceNet) -> dict:
    """Validation metrics of a step (model selection reads these), plus LFW figures recorded only for the
    report when an LFW folder was given."""
    m = model.eval()
    metrics = validate(m, ctx.fs, ctx.centre, ctx.pairs)
    if ctx.lfw is not None:
        r = lfw_report(m, ctx.lfw)
        metrics |= {
            "lfw_accuracy_mean": r["accuracy_mean"],
            "lfw_accuracy_std": r["accuracy_std"],
            "lfw_eer": r["eer"],
            "lfw_tar_at_far_1e-3": r["tar_at_far"]["1e-03"]["tar"],
        }
    return metrics


def _save_step(ctx: _PruningRun, model: SqueezerFaceNet, step: int, record: dict) -> None:
    """Save a finished step (spec + weights) and append its record to `curve.jsonl` before the next step
    starts: what lets a rerun resume after it."""
    args = ctx.args
    save_model(
        model, ctx.out / f"step{step}", criterion=args.criterion, seed=args.seed, **record.get("metrics", {})
    )
    with ctx.curve_path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    ctx.done.append(record)


def _start_model(ctx: _PruningRun) -> SqueezerFaceNet:
    """The model to prune next: the last finished step's on a resume, else the trained model, measured and
    saved as step 0 (with the teacher's validation figures beside it)."""
    done = ctx.done
    if done:
        model = load_model(ctx.out / f"step{done[-1]['step']}", normalize=False)
        print(f"resuming after step {done[-1]['step']} ({done[-1]['params']} params)")
        return model
    model = load_model(ctx.args.init, normalize=False)
    model = model.to(memory_format=torch.channels_last)
    _save_step(
        ctx,
        model,
        0,
        {
            "step": 0,
            "params": count_params(model),
            "mflops": round(count_mflops(model), 3),
            "spec": model.spec.to_text(),
            "metrics": _measure(ctx, model) | teacher_validation(ctx.fs, ctx.pairs),
            "minutes": 0.0,
        },
    )
    return model


def _scoring_hook(
    args: argparse.Namespace, importance: Any, score_stream: Iterator[tuple]
) -> Callable[[SqueezerFaceNet], None]:
    """What runs before each ranking: accumulated distillation gradients for the gradient-based criteria
    (and, for activation Taylor, the recorded activations); nothing for the others."""

    def before_scoring(m: SqueezerFaceNet) -> None:
        if args.criterion == "taylor":
            accumulate_gradients(
                m, score_stream, lambda net, b: distill_loss(net(b[0]), b[1], 1.0), args.score_batches
            )
        elif args.criterion == "activation":
            importance.reset()
            with importance.recording(m):
                accumulate_gradients(
                    m, score_stream, lambda net, b: distill_loss(net(b[0]), b[1], 1.0), args.score_batches
                )

    return before_scoring


def _prune_step(
    ctx: _PruningRun,
    model: SqueezerFaceNet,
    target: int,
    importance: Any,
    before_scoring: Callable[[SqueezerFaceNet], None],
    floors: dict[str, int],
) -> SqueezerFaceNet:
    """One step down the schedule: prune to `target` parameters (nothing for the `none` control),
    fine-tune, measure, save and print the record. Returns the step's model."""
    args = ctx.args
    step = ctx.done[-1]["step"] + 1
    t0 = time.monotonic()
    if importance is not None:
        prune_to_params(
            model,
            None,
            importance,
            target,
            step_fraction=1.0,
            before_scoring=before_scoring,
            floors=floors,
        )
    model = model.to(memory_format=torch.channels_last)
    loss = finetune(
        model, ctx.fs, ctx.centre, args.finetune_steps, args.lr, args.batch, args.seed, step, not args.quiet
    )
    record = {
        "step": step,
        "target": target,
        "params": count_params(model),
        "mflops": round(count_mflops(model), 3),
        "spec": model.spec.to_text(),
        "finetune_loss": loss,
        "metrics": _measure(ctx, model),
        "minutes": round((time.monotonic() - t0) / 60, 2),
    }
    _save_step(ctx, model, step, record)
    print(json.dumps({k: v for k, v in record.items() if k != "spec"}))
    return model


def run(args: argparse.Namespace) -> list[dict]:
    out, fs, centre, pairs = open_run(args.faces, args.out, args.seed, args.threads)
    lfw = aligned_lfw(Path(args.lfw), show_progress=not args.quiet) if args.lfw else None
    curve_path = out / "curve.jsonl"
    done = [json.loads(line) for line in curve_path.read_text().splitlines()] if curve_path.exists() else []
    ctx = _PruningRun(args, out, fs, centre, pairs, lfw, curve_path, done)
    model = _start_model(ctx)
    importance = make_importance(args.criterion, args.seed)
    # floors refer to the unpruned model (step 0), also after a resume
    floors = default_floors(ModelSpec.from_text(done[0]["spec"]), fraction=args.floor_fraction)
    score_stream = _batches(fs, centre, args.batch, args.seed, stream=99)
    before_scoring = _scoring_hook(args, importance, score_stream)
    for target in list(args.targets)[len(done) - 1 :]:  # done[0] is the unpruned model
        model = _prune_step(ctx, model, target, importance, before_scoring, floors)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pruning.run_pruning",
        description="Iteratively prune a trained SqueezerFaceNet down a schedule of parameter targets "
        "(global ranking by the chosen criterion, per-layer floors), fine-tuning after every step. "
        "Resumes after the last finished step found in --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--init", default="runs/base/best", help="trained model stem (.json + .safetensors)")
    p.add_argument("--faces", default="runs/faces", help="prepared faces (python -m pruning.data)")
    p.add_argument("--out", default="runs/prune_taylor")
    p.add_argument("--criterion", choices=CRITERIA, default="taylor")
    p.add_argument("--targets", type=int, nargs="+", default=list(DEFAULT_TARGETS), help="parameter targets")
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--score-batches", type=int, default=16, help="batches of accumulated gradients (Taylor)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--floor-fraction", type=float, default=0.25, help="no layer below this share of its channels"
    )
    p.add_argument(
        "--lfw", default="../shared/data/lfw", help="LFW folder, measured only to report ('' to skip)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
