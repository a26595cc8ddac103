"""Distillation training of SqueezerFaceNet from the dlib teacher's embeddings (never LFW).

Loss: cosine distance to the teacher's *centred* embedding (see `FaceSet.target_centre`) plus a relational
term matching the batch's student similarity matrix to the teacher's, so the student learns the distances
between faces that verification uses, not only each face's direction.

Resumable: a checkpoint (model, optimiser, schedule, epoch, step) is written at the end of every epoch and
every `--checkpoint-minutes`; `--resume` continues from it exactly (batch order and augmentation are
functions of (seed, epoch, index)). Model selection: the epoch with the best validation accuracy on pairs
of held-out celeba_wild identities; its weights are saved as `best.safetensors` + `best.json`.

Runs under `torchrun --nproc_per_node=N` with DistributedDataParallel (gloo on CPU, nccl on GPUs): each
rank takes every N-th sample of the epoch's permutation; rank 0 validates, logs and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from pruning.config_flags import add_config_flags
from pruning.faceset import FaceSet, augment, centre_crop, centred, sample_rng, to_input
from pruning.model import SqueezerFaceNet, count_mflops, count_params, load_model, save_model
from pruning.spec import ModelSpec
from squeezerface._progress import progress
from squeezerface.datasets import LabeledImage, make_pairs
from squeezerface.metrics import k_fold_accuracy


@dataclass(frozen=True)
class TrainConfig:
    faces: str = "runs/faces"
    out: str = "runs/base"
    spec: str = ModelSpec().to_text()
    init: str | None = None  # start from <stem>.json/.safetensors (fine-tuning a pruned model)
    epochs: int = 20
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    relational: float = 1.0
    seed: int = 0
    threads: int = 2
    channels_last: bool = True
    bf16: bool = True  # with channels-last 1.4-1.5x faster here: benchmarks/results/train_throughput_*t.md
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None  # stop early (smoke tests, pruning fine-tune budgets)
    limit_train: int | None = None


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, relational: float) -> torch.Tensor:
    """1 - cos(student, teacher) + relational * MSE between the two batch similarity matrices."""
    s = F.normalize(student.float(), dim=1)
    t = F.normalize(teacher.float(), dim=1)
    loss = (1.0 - (s * t).sum(dim=1)).mean()
    if relational > 0 and s.shape[0] > 1:
        off = ~torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
        loss = loss + relational * F.mse_loss((s @ s.T)[off], (t @ t.T)[off])
    return loss


def distill_step(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    t: torch.Tensor,
    lr: float,
    relational: float,
    bf16: bool,
    channels_last: bool,
) -> float:
    """One optimiser step of distillation at learning rate `lr`; returns the loss."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        s = net(x)
    loss = distill_loss(s, t, relational)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def epoch_batches(
    train_idx: np.ndarray, batch: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """This rank's batches of one epoch: a seeded permutation, every `world`-th sample, whole batches."""
    order = np.random.default_rng([seed, epoch, 7919]).permutation(train_idx)[rank::world]
    return [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]


def make_batch(fs: FaceSet, idx: np.ndarray, centre: np.ndarray, seed: int, epoch: int) -> tuple:
    images, targets = [], []
    for i in idx:
        rng = sample_rng(seed, epoch, i)
        flip = bool(rng.random() < 0.5)
        images.append(augment(fs.faces[i], rng, flip))
        targets.append(fs.targets_flip[i] if flip else fs.targets[i])
    x = torch.from_numpy(to_input(np.stack(images)))
    t = torch.from_numpy(centred(np.stack(targets), centre))
    return x, t


@torch.no_grad()
def embed_faces(
    model: torch.nn.Module,
    faces_112: np.ndarray,
    batch: int = 256,
    flip_average: bool = False,
    bf16: bool = False,
) -> np.ndarray:
    """Unit embeddings of aligned 112x112 uint8 RGB faces (optionally averaged with the mirror image).

    `bf16` runs the forward pass under bfloat16 autocast (about 2x faster on CPUs with bf16 units; for
    targets and class means, not for reported accuracy)."""
    model.eval()
    out = []
    for i in range(0, len(faces_112), batch):
        chunk = np.asarray(faces_112[i : i + batch])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            e = model(torch.from_numpy(to_input(chunk)))
            if flip_average:
                e = e + model(torch.from_numpy(to_input(np.ascontiguousarray(chunk[:, :, ::-1]))))
        out.append(F.normalize(e.float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


def validation_pairs(fs: FaceSet, seed: int = 0, per_kind: int = 1000, folds: int = 10) -> tuple:
    """Genuine/impostor pairs of held-out celeba_wild identities: (i, j, same, fold) index arrays."""
    val = fs.indices(1)
    images = [LabeledImage(path=Path(str(i)), identity=str(fs.identity[i])) for i in val]
    counts = np.unique(fs.identity[val], return_counts=True)[1]
    folds = max(2, min(folds, int((counts >= 2).sum()) // 2))  # impostors pair identities within a fold
    possible = int(sum(c * (c - 1) // 2 for c in counts))
    n = max(folds, min(per_kind, possible // 2))
    pairs = make_pairs(images, n_genuine=n, n_impostor=n, seed=seed, folds=folds)
    i = np.array([int(str(p[0])) for p in pairs])
    j = np.array([int(str(p[1])) for p in pairs])
    return i, j, np.array([p[2] for p in pairs]), np.array([p[3] for p in pairs])


def validate(model: torch.nn.Module, fs: FaceSet, centre: np.ndarray, pairs: tuple) -> dict:
    """Validation accuracy (k-fold on held-out identities) and cosine to the centred teacher."""
    val = fs.indices(1)
    faces = np.stack([centre_crop(fs.faces[k]) for k in val])
    emb = embed_faces(model, faces)
    pos = {int(k): n for n, k in enumerate(val)}
    i, j, same, folds = pairs
    a = emb[[pos[int(k)] for k in i]]
    b = emb[[pos[int(k)] for k in j]]
    acc = k_fold_accuracy((a * b).sum(axis=1), same, folds)
    cos = float((emb * centred(fs.targets[val], centre)).sum(axis=1).mean())
    return {"val_accuracy": float(acc.mean), "val_accuracy_std": float(acc.std), "val_cos_teacher": cos}


def teacher_validation(fs: FaceSet, pairs: tuple) -> dict:
    """The teacher's own accuracy on the validation pairs (from its cached embeddings): the ceiling."""
    i, j, same, folds = pairs
    acc = k_fold_accuracy((fs.targets[i] * fs.targets[j]).sum(axis=1), same, folds)
    return {"teacher_val_accuracy": float(acc.mean), "teacher_val_accuracy_std": float(acc.std)}


def _dist_env() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world


def open_run(faces: str | Path, out: str | Path, seed: int, threads: int) -> tuple:
    """Seed torch, set threads, create the output folder, load the faces: (out, faceset, target centre,
    validation pairs). Validation pairs always use seed 0, so every run is selected on the same pairs."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fs = FaceSet.load(faces)
    return out, fs, fs.target_centre(), validation_pairs(fs, seed=0)


def train(cfg: TrainConfig, show_progress: bool = True) -> dict:
    """Train (or resume) and return the summary of the best epoch."""
    rank, world = _dist_env()
    out, fs, centre, pairs = open_run(cfg.faces, cfg.out, cfg.seed, cfg.threads)
    train_idx = fs.indices(0)
    if cfg.limit_train:
        train_idx = train_idx[: cfg.limit_train]

    if cfg.init:
        model = load_model(cfg.init, normalize=False)
    else:
        model = SqueezerFaceNet(ModelSpec.from_text(cfg.spec), normalize=False)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(epoch_batches(train_idx, cfg.batch, cfg.seed, 0, rank, world))
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    ckpt_path = out / "checkpoint.pt"
    state = {"epoch": 0, "step": 0, "best": None, "minutes": 0.0}
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = json.loads(ckpt["state"])
        if rank == 0:
            print(f"resuming from {ckpt_path}: epoch {state['epoch']}, step {state['step']}")
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)

    log = (out / "log.jsonl").open("a") if rank == 0 else None
    if rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    def save_checkpoint() -> None:
        if rank != 0:
            return
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": json.dumps(state)},
            tmp,
        )
        tmp.replace(ckpt_path)  # atomic: a crash never leaves a half-written checkpoint

    started = time.monotonic() - state["minutes"] * 60
    last_ckpt = time.monotonic()
    step = state["step"]
    for epoch in range(state["epoch"], cfg.epochs):
        batches = epoch_batches(train_idx, cfg.batch, cfg.seed, epoch, rank, world)
        skip = step - epoch * steps_per_epoch  # batches of this epoch already done before a resume
        net.train()
        seen, loss_sum, t0 = 0, 0.0, time.monotonic()
        it: Iterator = iter(batches[max(0, skip) :])
        for idx in progress(
            it, len(batches) - max(0, skip), f"epoch {epoch + 1}/{cfg.epochs}", show_progress and rank == 0
        ):
            x, t = make_batch(fs, idx, centre, cfg.seed, epoch)
            loss = distill_step(
                net, optimizer, x, t, lr_at(step), cfg.relational, cfg.bf16, cfg.channels_last
            )
            step += 1
            seen += len(idx)
            loss_sum += loss * len(idx)
            state["step"] = step
            if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                state["minutes"] = (time.monotonic() - started) / 60
                save_checkpoint()
                last_ckpt = time.monotonic()
            if cfg.max_steps and step >= cfg.max_steps:
                break
        state["epoch"] = epoch + 1
        state["minutes"] = (time.monotonic() - started) / 60
        if rank == 0:
            metrics = validate(model, fs, centre, pairs)
            record = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": loss_sum / max(1, seen),
                "images_per_s": seen * world / max(1e-9, time.monotonic() - t0),
                "lr": lr_at(step),
                "minutes": round(state["minutes"], 2),
                **metrics,
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record))
            if state["best"] is None or metrics["val_accuracy"] > state["best"]["val_accuracy"]:
                state["best"] = record
                save_model(model, out / "best", val=metrics, epoch=epoch + 1, seed=cfg.seed)
        save_checkpoint()
        if cfg.max_steps and step >= cfg.max_steps:
            break
    if rank == 0:
        save_model(model, out / "last", epoch=state["epoch"], seed=cfg.seed)
        log.close()
    summary = {
        "best": state["best"],
        "params": count_params(model),
        "mflops": round(count_mflops(model), 2),
        "minutes": round(state["minutes"], 2),
    }
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m pruning.train",
        description="Distil SqueezerFaceNet from the dlib teacher on faces prepared by "
        "`python -m pruning.data`. Resumes from <out>/checkpoint.pt when it exists. "
        "Under torchrun it trains with DistributedDataParallel.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_flags(p, d)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = vars(p.parse_args(argv))
    quiet = args.pop("quiet")
    summary = train(TrainConfig(**args), show_progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
