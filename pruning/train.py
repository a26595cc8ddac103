"""Distillation training of SqueezerFaceNet from the dlib teacher's embeddings (never LFW).

Loss: cosine distance to the teacher's *centred* embedding (see `FaceSet.target_centre`) plus a relational
term matching the batch's student similarity matrix to the teacher's, so the student learns the distances
between faces that verification uses, not only each face's direction.

Runs on the shared loop (`pruning.loop`: atomic checkpoints, a torch warm-up + cosine scheduler). Resumable:
a checkpoint (model, optimiser, scheduler, step) is written at the end of every epoch and every
`--checkpoint-minutes`; a rerun continues from it exactly (batch order and augmentation are functions of
(seed, epoch, index)). Model selection: the epoch with the best validation accuracy on pairs
of held-out celeba_wild identities; its weights are saved as `best.safetensors` + `best.json`.

Runs under `torchrun --nproc_per_node=N` with DistributedDataParallel (gloo on CPU, nccl on GPUs): each
rank takes every N-th sample of the epoch's permutation; rank 0 validates, logs and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from pruning.config_flags import add_config_flags
from pruning.faceset import FaceSet, augment, centre_crop, centred, sample_rng, to_input
from pruning.loop import CheckpointSaver, EpochBatches, LoopConfig, train_loop, warmup_cosine
from pruning.model import SqueezerFaceNet, count_mflops, count_params, load_model, save_model
from pruning.spec import ModelSpec
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


def distill_batch_loss(
    net: torch.nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    relational: float,
    bf16: bool,
    channels_last: bool,
) -> torch.Tensor:
    """The distillation loss of one batch of inputs `x` against teacher targets `t` (the loss `train` and
    the pruning fine-tune give the shared loop)."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        s = net(x)
    return distill_loss(s, t, relational)


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
    """One bare optimiser step at learning rate `lr`, for the throughput benchmark
    (benchmarks/train_throughput.py) that times steps without a loop around them; returns the loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = distill_batch_loss(net, x, t, relational, bf16, channels_last)
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


def step_batches(
    fs: FaceSet, train_idx: np.ndarray, centre: np.ndarray, cfg: TrainConfig, rank: int, world: int
) -> EpochBatches:
    """`make_batch(step)` for the loop: epoch `step // steps_per_epoch`, batch `step % steps_per_epoch` of
    this rank's seeded epoch order, so a resumed run sees the batches it would have seen."""

    def open_epoch(epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = epoch_batches(train_idx, cfg.batch, cfg.seed, epoch, rank, world)
        return (make_batch(fs, idx, centre, cfg.seed, epoch) for idx in batches[start:])

    return EpochBatches(open_epoch, len(epoch_batches(train_idx, cfg.batch, cfg.seed, 0, rank, world)))


def build_model(cfg: TrainConfig) -> SqueezerFaceNet:
    """A fresh SqueezerFaceNet of `cfg.spec`, or the saved model `cfg.init` (fine-tuning a pruned one)."""
    if cfg.init:
        model = load_model(cfg.init, normalize=False)
    else:
        model = SqueezerFaceNet(ModelSpec.from_text(cfg.spec), normalize=False)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


@dataclass
class EpochLog:
    """Rank 0's log: one JSON line per epoch in <out>/log.jsonl, also printed."""

    path: Path

    def __call__(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record))


def train(cfg: TrainConfig, show_progress: bool = True) -> dict:
    """Train (or resume) and return the summary of the best epoch."""
    rank, world = _dist_env()
    out, fs, centre, pairs = open_run(cfg.faces, cfg.out, cfg.seed, cfg.threads)
    train_idx = fs.indices(0)[: cfg.limit_train or None]
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches = step_batches(fs, train_idx, centre, cfg, rank, world)
    per_epoch = batches.steps_per_epoch
    schedule_steps = cfg.max_steps or cfg.epochs * per_epoch
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    saver = CheckpointSaver(out / "checkpoint.pt")
    if rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        if saver.path.exists():
            print(f"resuming from {saver.path}")
    loop = LoopConfig(
        total_steps=min(schedule_steps, cfg.epochs * per_epoch),
        eval_every=per_epoch,
        checkpoint_minutes=cfg.checkpoint_minutes,
        show_progress=show_progress,
        steps_per_epoch=per_epoch,
        samples_per_step=cfg.batch * world,
        loss_key="train_loss",
        is_main=rank == 0,
    )

    def on_best(record: dict) -> None:
        val = {k: v for k, v in record.items() if k.startswith("val_")}
        save_model(model, out / "best", val=val, epoch=record["epoch"], seed=cfg.seed)

    state = train_loop(
        model,
        optimizer,
        warmup_cosine(optimizer, cfg.warmup_steps, schedule_steps),
        saver,
        loop,
        batches,
        lambda b: distill_batch_loss(net, b[0], b[1], cfg.relational, cfg.bf16, cfg.channels_last),
        lambda: validate(model, fs, centre, pairs),
        on_best,
        EpochLog(out / "log.jsonl"),
    )
    if rank == 0:
        save_model(model, out / "last", epoch=math.ceil(state.step / per_epoch), seed=cfg.seed)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return {
        "best": state.best,
        "params": count_params(model),
        "mflops": round(count_mflops(model), 2),
        "minutes": round(state.minutes, 2),
    }


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
