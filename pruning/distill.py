"""Embedder v2 training: distillation on the very augmented view the student sees, plus an identity margin.

Every step draws a batch from the face bank (`pruning.facebank`), makes one augmented view per face
(alignment jitter in shift, scale and rotation, mirror, colour, greyscale, blur, JPEG and, new here,
down-scaling to small faces), and runs the teacher on that same view: the target is exact for what the
student sees, which cached targets of the plain photo are not.

Loss = (1 - cos(student, teacher)) + `relational` * MSE of the batch similarity matrices (the distances that
verification uses) + `identity` * CosFace on the labelled faces (celeba_wild and Pins training identities)
against learned class prototypes initialised from the teacher's class means. The identity term also gives
the Taylor criterion a gradient when the student starts equal to its teacher (pruning a pretrained net by
self-distillation, where the distillation terms and their gradients are exactly zero before the first cut).

Model selection: k-fold accuracy on pairs of the held-out identities (never LFW). Resumable through
`pruning.loop` (one saver, one loop, a torch scheduler).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning import architectures
from pruning.config_flags import add_config_flags
from pruning.faceset import augment, centre_crop, sample_rng, to_input
from pruning.loop import CheckpointSaver, LoopConfig, LoopState, train_loop, warmup_cosine
from pruning.mobilefacenet import load_pretrained
from pruning.train import distill_loss, embed_faces, validation_pairs
from squeezerface.align import ALIGNED_SIZE
from squeezerface.metrics import k_fold_accuracy, tar_at_far


@dataclass
class FaceBank:
    """Prepared faces: 128x128 aligned canvases, identities (-1 unlabelled), split (0 train, 1 held out)."""

    faces: np.ndarray
    identity: np.ndarray
    split: np.ndarray
    manifest: dict

    @classmethod
    def load(cls, folder: str | Path) -> FaceBank:
        folder = Path(folder)
        return cls(
            np.load(folder / "faces.npy", mmap_mode="r"),
            np.load(folder / "identity.npy"),
            np.load(folder / "split.npy"),
            json.loads((folder / "manifest.json").read_text()),
        )

    def indices(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)


@dataclass(frozen=True)
class DistillConfig:
    faces: str = "runs/facebank"
    out: str = "runs/distill"
    student: str = "mobilefacenet"  # "mobilefacenet" = the public weights; else a saved <stem> or spec text
    teacher: str = "mobilefacenet"
    teachers: str = "../shared/teachers"
    steps: int = 2000
    batch: int = 64
    lr: float = 1e-4
    weight_decay: float = 5e-4
    warmup: int = 30
    relational: float = 1.0
    identity: float = 0.02
    margin: float = 0.35
    scale: float = 32.0
    small_faces: float = 0.15  # probability of down-scaling a view to a 24-64 px face
    freeze_bn: bool = True  # keep BatchNorm statistics (fine-tuning a trained net on augmented views)
    seed: int = 0
    threads: int = 2
    bf16: bool = True
    eval_every: int = 500
    checkpoint_minutes: float = 10.0


def teacher_model(name: str, teachers: str | Path) -> nn.Module:
    """A frozen teacher taking the project's input normalisation and giving raw embeddings: 'mobilefacenet'
    (the public weights under `teachers`) or the <stem> of a model saved by `architectures.save`."""
    if name == "mobilefacenet":
        net = load_pretrained(Path(teachers) / "mobilefacenet" / "mobilefacenet.pt", normalize=False)
    elif Path(name).with_suffix(".json").is_file():
        net = architectures.load(name, normalize=False)
    else:
        raise ValueError(f"unknown teacher {name!r}: use 'mobilefacenet' or the stem of saved weights")
    return net.requires_grad_(False).eval().to(memory_format=torch.channels_last)


def student_model(cfg: DistillConfig) -> nn.Module:
    if cfg.student == "mobilefacenet":
        return load_pretrained(Path(cfg.teachers) / "mobilefacenet" / "mobilefacenet.pt", normalize=False)
    if ":" in cfg.student:
        return architectures.build(cfg.student, normalize=False)
    return architectures.load(cfg.student, normalize=False)


def view(canvas: np.ndarray, rng: np.random.Generator, small_faces: float) -> np.ndarray:
    """One training view of a face (see the module docstring)."""
    out = augment(canvas, rng, flip=bool(rng.random() < 0.5))
    if rng.random() < small_faces:
        side = int(rng.integers(24, 65))
        out = cv2.resize(
            cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA),
            (ALIGNED_SIZE, ALIGNED_SIZE),
            interpolation=cv2.INTER_LINEAR,
        )
    return out


class Batches:
    """Seeded batches: batch `step` depends on (seed, step) alone, so a resumed run continues exactly."""

    def __init__(self, bank: FaceBank, classes: dict[int, int], cfg: DistillConfig) -> None:
        self.bank, self.classes, self.cfg = bank, classes, cfg
        self.train = bank.indices(0)

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, step, 104729])
        idx = np.sort(rng.choice(self.train, self.cfg.batch, replace=False))
        views = [
            view(self.bank.faces[i], sample_rng(self.cfg.seed, step, i), self.cfg.small_faces) for i in idx
        ]
        labels = [self.classes.get(int(self.bank.identity[i]), -1) for i in idx]
        x = torch.from_numpy(to_input(np.stack(views))).contiguous(memory_format=torch.channels_last)
        return x, torch.tensor(labels)


def cosface(
    embedding: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor, margin: float, scale: float
) -> torch.Tensor:
    """CosFace (Wang et al. 2018) on the labelled rows (label >= 0); zero when a batch has none."""
    keep = labels >= 0
    if not bool(keep.any()) or prototypes.shape[0] == 0:
        return embedding.sum() * 0.0
    cos = F.normalize(embedding[keep], dim=1) @ F.normalize(prototypes, dim=1).T
    cos = cos - margin * F.one_hot(labels[keep], prototypes.shape[0])
    return F.cross_entropy(scale * cos, labels[keep])


class DistillLoss(nn.Module):
    """Teacher on the same view + distillation terms + CosFace against learned prototypes."""

    def __init__(self, student: nn.Module, teacher: nn.Module, prototypes: torch.Tensor, cfg: DistillConfig):
        super().__init__()
        self.student, self.teacher, self.cfg = student, teacher, cfg
        self.prototypes = nn.Parameter(prototypes.clone())

    def train(self, mode: bool = True) -> DistillLoss:
        """The teacher's BatchNorm always keeps its statistics; the student's too with `freeze_bn`: heavily
        augmented views (grey, blurred, tiny faces) would otherwise pull the running means and variances
        away from what clean deployment faces need (one fine-tuning run without it moved the held-out
        cosine to the teacher from 1.0 to 0.96 in 150 steps); the affine parameters still learn."""
        super().train(mode)
        self.teacher.eval()
        if self.cfg.freeze_bn:
            for m in self.student.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, labels = batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.bf16):
            with torch.no_grad():
                t = self.teacher(x)
            s = self.student(x)
        s, t = s.float(), t.float()
        loss = distill_loss(s, t, self.cfg.relational)
        if self.cfg.identity > 0:
            loss = loss + self.cfg.identity * cosface(
                s, labels, self.prototypes, self.cfg.margin, self.cfg.scale
            )
        return loss


def class_prototypes(
    bank: FaceBank, teacher: nn.Module, per_class: int = 8
) -> tuple[dict[int, int], torch.Tensor]:
    """Training identities -> class index, and each class's mean teacher embedding (unit) over up to
    `per_class` of its faces: a starting point for the learned prototypes, so a few faces suffice."""
    train = bank.indices(0)
    labelled = train[bank.identity[train] >= 0]
    ids = sorted({int(i) for i in bank.identity[labelled]})
    classes = {identity: k for k, identity in enumerate(ids)}
    if not ids:  # no labelled training faces: no identity term
        return classes, torch.zeros(0, embed_faces(teacher, centre_crop(bank.faces[train[0]])[None]).shape[1])
    firsts = np.concatenate([labelled[bank.identity[labelled] == i][:per_class] for i in ids])
    emb = embed_faces(teacher, np.stack([centre_crop(bank.faces[i]) for i in firsts]), bf16=True)
    sums = np.zeros((len(ids), emb.shape[1]), np.float64)
    np.add.at(sums, [classes[int(bank.identity[i])] for i in firsts], emb)
    return classes, F.normalize(torch.from_numpy(sums).float(), dim=1)


class HeldOut:
    """Model selection on pairs of held-out identities: accuracy, TAR at FAR 1e-3, cosine to the teacher."""

    def __init__(self, bank: FaceBank, teacher: nn.Module) -> None:
        self.pairs = validation_pairs(bank, seed=0, per_kind=2000)
        used = np.unique(np.concatenate(self.pairs[:2]))
        self.position = {int(k): n for n, k in enumerate(used)}
        self.faces = np.stack([centre_crop(bank.faces[k]) for k in used])
        self.teacher = embed_faces(teacher, self.faces)
        self.teacher_metrics = self.metrics(self.teacher)

    def metrics(self, emb: np.ndarray) -> dict:
        i, j, same, folds = self.pairs
        scores = (emb[[self.position[int(k)] for k in i]] * emb[[self.position[int(k)] for k in j]]).sum(1)
        acc = k_fold_accuracy(scores, same, folds)
        return {
            "val_accuracy": float(acc.mean),
            "val_tar_far1e-3": tar_at_far(scores, same, 1e-3).tar,
            "pairs": len(same),
        }

    def __call__(self, student: nn.Module) -> dict:
        emb = embed_faces(student, self.faces)
        return {**self.metrics(emb), "val_cos_teacher": float((emb * self.teacher).sum(1).mean())}


@dataclass
class Session:
    """What every fine-tuning run of one schedule shares: data, teacher, prototypes, held-out pairs."""

    bank: FaceBank
    teacher: nn.Module
    classes: dict[int, int]
    prototypes: torch.Tensor
    held_out: HeldOut

    @classmethod
    def open(cls, cfg: DistillConfig) -> Session:
        torch.set_num_threads(cfg.threads)
        bank = FaceBank.load(cfg.faces)
        teacher = teacher_model(cfg.teacher, cfg.teachers)
        classes, prototypes = class_prototypes(bank, teacher)
        return cls(bank, teacher, classes, prototypes, HeldOut(bank, teacher))


def fit(student: nn.Module, cfg: DistillConfig, session: Session, show_progress: bool = True) -> LoopState:
    """Train `student` in place for `cfg.steps` steps (resuming from `cfg.out`); the best held-out weights
    are written to `<out>/best` and loaded back into `student` at the end."""
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    student = student.to(memory_format=torch.channels_last)
    criterion = DistillLoss(student, session.teacher, session.prototypes, cfg)
    params = [p for p in criterion.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    log = out / "log.jsonl"

    def on_best(record: dict) -> None:
        architectures.save(student, out / "best", held_out=record, seed=cfg.seed)

    def evaluate() -> dict:
        record = session.held_out(student)
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        return record

    state = train_loop(
        criterion,
        optimizer,
        warmup_cosine(optimizer, cfg.warmup, cfg.steps),
        CheckpointSaver(out / "checkpoint.pt"),
        LoopConfig(cfg.steps, cfg.eval_every, cfg.checkpoint_minutes, show_progress=show_progress),
        Batches(session.bank, session.classes, cfg),
        criterion,
        evaluate,
        on_best,
    )
    best = architectures.load(out / "best", normalize=False)
    student.load_state_dict(best.state_dict())
    return state


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pruning.distill",
        description="Distil (or fine-tune) an embedder from a teacher on the face bank of `python -m "
        "pruning.facebank`, on the augmented view the student sees. Resumes from OUT/checkpoint.pt.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_flags(parser, DistillConfig())
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = vars(parser.parse_args(argv))
    quiet = args.pop("quiet")
    cfg = DistillConfig(**args)
    session = Session.open(cfg)
    print(json.dumps({"teacher_held_out": session.held_out.teacher_metrics}))
    state = fit(student_model(cfg), cfg, session, show_progress=not quiet)
    print(json.dumps({"best": state.best, "minutes": round(state.minutes, 2)}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
