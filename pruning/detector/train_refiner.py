"""Train the landmark refiner on teacher-labelled faces (celeba_wild + utkface; never LFW).

    python -m pruning.detector.train_refiner --labels runs/detector/labels.json \\
        --out runs/detector/refiner

Each face is cut once, loosely, around its teacher points (`LOOSE` pixels, the template at `LOOSE_TEMPLATE`).
A training sample then plays the detector: the teacher points are disturbed (a random similarity: rotation,
scale, shift, plus independent noise per point, about the size of the detector's own errors), the
refiner's crop is cut with the disturbed points exactly as the runtime cuts it (`squeezerface.landmarks`),
and the target is where the teacher's points fall in that crop. Loss: L1 on the offsets. The held-out
split (identities and photos the detector never trained on) is scored every epoch with fixed disturbances:
NME before and after refinement, reported, never used to pick anything. Runs on the shared loop
(`pruning.loop`); resumable per epoch.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pruning.config_flags import parse_resumable
from pruning.detector.refiner import LandmarkRefinerNet, RefinerSpec, save_refiner
from pruning.detector.train import load_photos
from pruning.loop import CheckpointSaver, LoopConfig, train_loop, warmup_cosine
from squeezerface._progress import progress
from squeezerface.align import alignment_matrix, template
from squeezerface.landmarks import CROP, OFFSET_UNIT, crop_face

LOOSE_TEMPLATE, LOOSE_MARGIN = 112, 24
LOOSE = LOOSE_TEMPLATE + 2 * LOOSE_MARGIN


@dataclass(frozen=True)
class RefinerTrainConfig:
    labels: str = "runs/detector/labels.json"
    out: str = "runs/detector/refiner"
    spec: str = RefinerSpec().to_text()
    epochs: int = 80
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    rotation_deg: float = 6.0  # std of the similarity disturbance ...
    scale: float = 0.06  # ... of log scale
    shift: float = 0.06  # ... of the shift, in inter-ocular distances
    point_noise: float = 0.04  # std of each point's own noise, in inter-ocular distances
    threads: int = 2
    seed: int = 0
    max_steps: int | None = None


def loose_faces(labels: Path, split: str, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled face of a split cut loosely around its teacher points: (N, LOOSE, LOOSE, 3) uint8 and
    the points in that crop (N, 5, 2)."""
    crops, points = [], []
    photos = load_photos(labels, split)
    for path, _, lms in progress(photos, len(photos), f"cutting {split} faces", show_progress):
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for lm in lms:
            m = alignment_matrix(lm, LOOSE_TEMPLATE, LOOSE_MARGIN)
            crops.append(cv2.warpAffine(image, m, (LOOSE, LOOSE), borderMode=cv2.BORDER_REPLICATE))
            points.append(lm @ m[:, :2].T + m[:, 2])
    return np.stack(crops), np.stack(points).astype(np.float32)


def disturb(points: np.ndarray, cfg: RefinerTrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Teacher points moved the way a detector gets them wrong: a similarity plus per-point noise."""
    iod = float(np.linalg.norm(points[1] - points[0]))
    centre = points.mean(axis=0)
    a = math.radians(rng.normal(0, cfg.rotation_deg))
    s = math.exp(rng.normal(0, cfg.scale))
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = (points - centre) @ rot.T + centre + rng.normal(0, cfg.shift * iod, 2)
    return (moved + rng.normal(0, cfg.point_noise * iod, (5, 2))).astype(np.float32)


def photometric(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = crop.astype(np.float32) * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)
    if rng.random() < 0.1:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < 0.2:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    return np.clip(x, 0, 255).astype(np.uint8)


def make_sample(
    crop: np.ndarray, truth: np.ndarray, cfg: RefinerTrainConfig, rng: np.random.Generator, augment: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(refiner input 64x64 uint8, target offsets (10,), disturbed points' crop-space truth (5, 2))."""
    rough = disturb(truth, cfg, rng)
    x, matrix = crop_face(crop, rough)
    target = truth @ matrix[:, :2].T + matrix[:, 2]
    offsets = (target - template(CROP)) / OFFSET_UNIT
    return (photometric(x, rng) if augment else x), offsets.reshape(10).astype(np.float32), target


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> the runtime's normalisation, NCHW float (the card's InputSpec: (x - 127.5) / 128)."""
    return torch.from_numpy((batch.astype(np.float32) - 127.5) / 128.0).permute(0, 3, 1, 2).contiguous()


def held_out_nme(
    model: LandmarkRefinerNet, crops: np.ndarray, truths: np.ndarray, cfg: RefinerTrainConfig
) -> dict[str, float]:
    """NME (by inter-ocular distance) of the disturbed points and of the refined ones, fixed disturbances."""
    rng = np.random.default_rng(12345)
    xs, targets = [], []
    for crop, truth in zip(crops, truths, strict=True):
        x, _, target = make_sample(crop, truth, cfg, rng, augment=False)
        xs.append(x)
        targets.append(target)
    target = np.stack(targets)
    with torch.no_grad():
        raw = torch.cat([model(to_tensor(np.stack(xs[i : i + 512]))) for i in range(0, len(xs), 512)])
    pred = template(CROP) + raw.numpy().reshape(-1, 5, 2) * OFFSET_UNIT
    iod = np.linalg.norm(target[:, 1] - target[:, 0], axis=1)
    before = np.linalg.norm(template(CROP) - target, axis=2).mean(axis=1) / iod
    after = np.linalg.norm(pred - target, axis=2).mean(axis=1) / iod
    return {"nme_before": float(before.mean()), "nme_after": float(after.mean())}


class RefinerBatches:
    """`make_batch(step)` for the loop. An epoch's samples come from one generator seeded by (seed, epoch)
    and drawn in order, as they always were; a step out of order (after a resume) reopens its epoch and
    draws through the batches before it, so a resumed run sees exactly the batches it would have seen."""

    def __init__(self, crops: np.ndarray, truths: np.ndarray, cfg: RefinerTrainConfig) -> None:
        self.crops, self.truths, self.cfg = crops, truths, cfg
        self.steps_per_epoch = len(crops) // cfg.batch
        self.rng = np.random.default_rng()
        self.order = np.arange(0)
        self.epoch, self.next = -1, 0

    def _open(self, epoch: int) -> None:
        self.rng = np.random.default_rng([self.cfg.seed, epoch])  # an epoch's samples depend on it alone
        self.order = self.rng.permutation(len(self.crops))
        self.epoch, self.next = epoch, 0

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.order[self.next * self.cfg.batch : (self.next + 1) * self.cfg.batch]
        samples = [make_sample(self.crops[i], self.truths[i], self.cfg, self.rng, augment=True) for i in idx]
        self.next += 1
        x = to_tensor(np.stack([s[0] for s in samples]))
        return x, torch.from_numpy(np.stack([s[1] for s in samples]))

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, b = divmod(step, self.steps_per_epoch)
        if epoch != self.epoch or b < self.next:
            self._open(epoch)
        while self.next < b:
            self._draw()
        return self._draw()


def train(cfg: RefinerTrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    """Train on the shared loop (`pruning.loop`, a torch cosine scheduler): the held-out NME is recorded
    and a checkpoint saved at the end of every epoch; `resume` continues from <out>/checkpoint.pt."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    crops, truths = loose_faces(Path(cfg.labels), "train", show_progress)
    test_crops, test_truths = loose_faces(Path(cfg.labels), "test", show_progress)
    model = LandmarkRefinerNet(RefinerSpec.from_text(cfg.spec))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches = RefinerBatches(crops, truths, cfg)
    per_epoch = batches.steps_per_epoch
    total = per_epoch * cfg.epochs
    loop = LoopConfig(
        total_steps=min(total, cfg.max_steps) if cfg.max_steps is not None else total,
        eval_every=per_epoch,
        checkpoint_minutes=math.inf,  # per epoch only, as before
        show_progress=show_progress,
        steps_per_epoch=per_epoch,
        resume=resume,
    )

    def evaluate() -> dict[str, float]:
        model.eval()
        return held_out_nme(model, test_crops, test_truths, cfg)

    state = train_loop(
        model,
        opt,
        warmup_cosine(opt, 0, total),
        CheckpointSaver(out / "checkpoint.pt"),
        loop,
        batches,
        lambda b: torch.nn.functional.l1_loss(model(b[0]), b[1]),
        evaluate,
        on_record=lambda row: print(json.dumps(row), flush=True) if show_progress else None,
    )
    minutes = round(state.minutes, 2)
    save_refiner(
        model,
        out / "final",
        config=asdict(cfg),
        train_faces=len(crops),
        test_faces=len(test_crops),
        steps=state.step,
        minutes=minutes,
        log=state.history,
    )
    return {**state.history[-1], "train_faces": len(crops), "steps": state.step, "minutes": minutes}


def main(argv: Sequence[str] | None = None) -> int:
    d = RefinerTrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.train_refiner",
        description="Train the landmark refiner on teacher-labelled celeba_wild/utkface faces, cropped by "
        "disturbed teacher points as the runtime crops by the detector's. Checkpoints every epoch; "
        "--resume continues.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    config, resume, quiet = parse_resumable(parser, d, None if argv is None else list(argv))
    print(json.dumps(train(config, resume, show_progress=not quiet), indent=1))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
