"""Train the tiny face detector on composed canvases of teacher-labelled photos (never LFW).

    python -m pruning.detector.train --labels runs/detector/labels.json --out runs/detector/train

Targets (anchor-free, one prior per location): a face is assigned to the strides whose scale suits it
(8: faces 12-80 px, 16: 32-160 px, 32: 64+ px), and there to the locations within one stride of its centre
(always at least the nearest one); the ring of locations around those is left out of the score loss, and
every other location, inside a face or not, is background. Losses: sigmoid focal loss on the score over
every location outside ignore regions and rings (normalised by the number of positives), smooth L1 on box
(centre offset, log size) and on the 5 landmarks, both in units of the stride. Runs on the shared loop
(`pruning.loop`: atomic checkpoints, a torch warm-up + cosine scheduler). Resumable: a checkpoint every
epoch and every `--checkpoint-minutes`; `--resume` continues exactly (canvases are functions of
(seed, epoch, index)).
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
import torch.nn.functional as F

from pruning.config_flags import parse_resumable
from pruning.detector.backgrounds import BackgroundPool
from pruning.detector.compose import LabelledPhoto, Sample, compose, paste_clutter, texture
from pruning.detector.model import (
    DetectorSpec,
    TinyFaceDetector,
    count_params,
    load_detector,
    save_detector,
)
from pruning.loop import CheckpointSaver, EpochBatches, LoopConfig, train_loop, warmup_cosine
from squeezerface.detect import priors as grid

SCALE_RANGES = {8: (12.0, 80.0), 16: (32.0, 160.0), 32: (64.0, 1e9)}
MIN_FACE = 12.0


@dataclass(frozen=True)
class DetTrainConfig:
    labels: str = "runs/detector/labels.json"
    out: str = "runs/detector/train"
    spec: str = DetectorSpec().to_text()
    size: int = 160
    epochs: int = 30
    samples_per_epoch: int = 8000
    batch: int = 64
    lr: float = 4e-3
    weight_decay: float = 1e-4
    negative_share: float = 0.1
    backgrounds: str = "runs/detector/backgrounds"  # comma-separated folders; "" for synthetic textures only
    grey_backdrops: float = 0.0  # share of backdrop and hard-negative draws in greyscale
    real_background: float = 0.7  # share of canvases on a real scene photo
    hard_negatives: str = ""  # folder of mined false detections (pruning.detector.mine); "" for none
    hard_share: float = 0.5  # share of canvases with 1-3 of them pasted in
    workers: int = 1
    threads: int = 1
    seed: int = 0
    init: str = ""  # weights stem to start from (fine-tuning, e.g. with --hard-negatives); "" for scratch
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None


def assign(sample: Sample, priors: np.ndarray) -> dict[str, np.ndarray]:
    """Per-location training targets of one canvas (see the module docstring)."""
    a = len(priors)
    cls = np.zeros(a, np.float32)
    weight = np.ones(a, np.float32)
    box_t = np.zeros((a, 4), np.float32)
    lm_t = np.zeros((a, 10), np.float32)
    owner_size = np.full(a, np.inf, np.float32)
    cx, cy, s = priors[:, 0], priors[:, 1], priors[:, 2]
    for g in sample.ignore:
        weight[(cx >= g[0]) & (cx <= g[2]) & (cy >= g[1]) & (cy <= g[3])] = 0.0
    for b, lm in zip(sample.boxes, sample.landmarks, strict=True):
        w, h = b[2] - b[0], b[3] - b[1]
        size = max(w, h)
        fcx, fcy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        inside = (cx >= b[0]) & (cx <= b[2]) & (cy >= b[1]) & (cy <= b[3])
        if size < MIN_FACE:
            weight[inside] = 0.0
            continue
        for stride, (lo, hi) in SCALE_RANGES.items():
            if not lo <= size < hi:
                continue
            level = s == stride
            near = level & (np.abs(cx - fcx) <= stride) & (np.abs(cy - fcy) <= stride)
            if not near.any():
                d = np.where(level, (cx - fcx) ** 2 + (cy - fcy) ** 2, np.inf)
                near = np.zeros(a, bool)
                near[int(np.argmin(d))] = True
            take = near & (size < owner_size)  # a location shared by two faces belongs to the smaller
            idx = np.flatnonzero(take)
            if idx.size == 0:
                continue
            owner_size[idx] = size
            cls[idx] = 1.0
            weight[idx] = 1.0
            box_t[idx] = np.stack(
                [
                    (fcx - cx[idx]) / stride,
                    (fcy - cy[idx]) / stride,
                    np.full(idx.size, math.log(max(w, 1.0) / stride)),
                    np.full(idx.size, math.log(max(h, 1.0) / stride)),
                ],
                axis=1,
            )
            lm_t[idx] = ((lm[None, :, :] - priors[idx, None, :2]) / stride).reshape(idx.size, 10)
        # Locations around the assigned ones, at the same strides, are ambiguous (neither clearly the face
        # nor background): no score loss there. Everywhere else, inside the face or not, a detection is wrong:
        # a part of a face must not fire as a smaller face.
        for stride, (lo, hi) in SCALE_RANGES.items():
            if lo <= size < hi:
                ring = (s == stride) & (np.abs(cx - fcx) <= 2 * stride) & (np.abs(cy - fcy) <= 2 * stride)
                weight[ring & (cls == 0)] = 0.0
    return {"cls": cls, "weight": weight, "box": box_t, "lm": lm_t}


def load_photos(labels_path: Path, split: str) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    data = json.loads(labels_path.read_text())
    root = Path(data["data_root"])
    out = []
    for r in data["records"]:
        if r["split"] != split or not r["usable"]:
            continue
        boxes = np.array([f["box"] for f in r["faces"]], np.float32)
        lms = np.array([f["landmarks"] for f in r["faces"]], np.float32)
        out.append((root / r["path"], boxes, lms))
    return out


class ComposedCanvases(torch.utils.data.Dataset):
    def __init__(self, photos: list, cfg: DetTrainConfig) -> None:
        self.photos = photos
        self.cfg = cfg
        self.priors = grid(cfg.size)
        self.epoch = 0
        grey = cfg.grey_backdrops
        self.backgrounds = BackgroundPool(cfg.backgrounds, grey) if cfg.backgrounds else None
        self.hard = BackgroundPool(cfg.hard_negatives, grey) if cfg.hard_negatives else None

    def __len__(self) -> int:
        return self.cfg.samples_per_epoch

    def _photo(self, k: int) -> LabelledPhoto:
        path, boxes, lms = self.photos[k]
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        # the largest face first: `paste` scales by the first face
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]))
        return LabelledPhoto(image, boxes[order], lms[order])

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.cfg.seed, self.epoch, index])
        negative = rng.random() < self.cfg.negative_share
        count = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
        picks = rng.integers(0, len(self.photos), count)
        photos = [] if negative else [self._photo(int(k)) for k in picks]
        backdrop = None
        if self.backgrounds is not None and rng.random() < self.cfg.real_background:
            backdrop = self.backgrounds.draw(self.cfg.size, rng)
        if self.hard is not None and rng.random() < self.cfg.hard_share:
            crops = [self.hard.read(rng) for _ in range(int(rng.integers(1, 4)))]
            base = backdrop if backdrop is not None else texture(self.cfg.size, rng)
            backdrop = paste_clutter(base, crops, rng)
        sample = compose(photos, rng, size=self.cfg.size, negative=negative, backdrop=backdrop)
        targets = assign(sample, self.priors)
        x = (sample.image.astype(np.float32) - 127.5) / 128.0
        return {"x": np.ascontiguousarray(x.transpose(2, 0, 1)), **targets}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    return (alpha * (1 - pt) ** 2 * ce * weight).sum()


def detection_loss(
    out: torch.Tensor, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    pos = batch["cls"] > 0
    n_pos = max(float(pos.sum()), 1.0)
    l_cls = focal_loss(out[..., 0], batch["cls"], batch["weight"]) / n_pos
    l_box = F.smooth_l1_loss(out[..., 1:5][pos], batch["box"][pos], reduction="sum", beta=0.1) / n_pos
    l_lm = F.smooth_l1_loss(out[..., 5:15][pos], batch["lm"][pos], reduction="sum", beta=0.1) / n_pos
    total = l_cls + l_box + 2.0 * l_lm
    return total, {"cls": float(l_cls.detach()), "box": float(l_box.detach()), "lm": float(l_lm.detach())}


WARMUP_STEPS = 300


def canvas_batches(data: ComposedCanvases, cfg: DetTrainConfig) -> EpochBatches:
    """`make_batch(step)` over one DataLoader per epoch (canvases are functions of (seed, epoch, index), so
    an epoch reopened at batch `start` after a resume yields the batches it would have)."""
    per_epoch = cfg.samples_per_epoch // cfg.batch

    def open_epoch(epoch: int, start: int) -> torch.utils.data.DataLoader:
        data.epoch = epoch  # set before the loader starts: workers copy the dataset
        return torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, range(start * cfg.batch, per_epoch * cfg.batch)),
            batch_size=cfg.batch,
            num_workers=cfg.workers,
            persistent_workers=False,
            drop_last=True,
        )

    return EpochBatches(open_epoch, per_epoch)


def train(cfg: DetTrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    """Train on the shared loop (`pruning.loop`): checkpoints every epoch and every `checkpoint_minutes`,
    `resume` continues from <out>/checkpoint.pt, the final weights and per-epoch losses go to <out>/final."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = load_detector(cfg.init) if cfg.init else TinyFaceDetector(DetectorSpec.from_text(cfg.spec))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    photos = load_photos(Path(cfg.labels), "train")
    batches = canvas_batches(ComposedCanvases(photos, cfg), cfg)
    per_epoch = batches.steps_per_epoch
    total = per_epoch * cfg.epochs
    loop = LoopConfig(
        total_steps=min(total, cfg.max_steps) if cfg.max_steps is not None else total,
        eval_every=per_epoch,
        checkpoint_minutes=cfg.checkpoint_minutes,
        show_progress=show_progress,
        steps_per_epoch=per_epoch,
        clip_grad_norm=5.0,
        resume=resume,
    )
    state = train_loop(
        model,
        opt,
        warmup_cosine(opt, WARMUP_STEPS, total),
        CheckpointSaver(out / "checkpoint.pt"),
        loop,
        batches,
        lambda batch: detection_loss(model(batch["x"]), batch),
    )
    model.eval()
    save_detector(
        model,
        out / "final",
        config=asdict(cfg),
        train_photos=len(photos),
        steps=state.step,
        minutes=round(state.minutes, 2),
        log=state.history,
    )
    return {"params": count_params(model), "steps": state.step, "minutes": round(state.minutes, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    d = DetTrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pruning.detector.train",
        description="Train the tiny face detector (score, box, 5 landmarks) on composed canvases of teacher-"
        "labelled utkface/celeba_wild photos. Checkpoints every epoch; --resume continues exactly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    config, resume, quiet = parse_resumable(parser, d, None if argv is None else list(argv))
    result = train(config, resume=resume, show_progress=not quiet)  # type: ignore[arg-type]
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
