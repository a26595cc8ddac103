"""Train the landmark refiner on teacher-labelled faces (celeba_wild + utkface; never LFW).

    python -m pruning.detector.train_refiner --labels runs/detector/labels.json \\
        --out runs/detector/refiner

Each face is cut once, loosely, around its teacher points (`LOOSE` pixels, the template at `LOOSE_TEMPLATE`).
A training sample then plays the detector: the teacher points are disturbed (a random similarity: rotation,
scale, shift, plus independent noise per point, about the size of the detector's own errors), the
refiner's crop is cut with the disturbed points exactly as the runtime cuts it (`squeezerface.landmarks`),
and the target is where the teacher's points fall in that crop. Loss: L1 on the offsets. The held-out
split (identities and photos the detector never trained on) is scored every epoch with fixed disturbances:
NME before and after refinement, reported, never used to pick anything. Resumable per epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from pruning.config_flags import parse_resumable
from pruning.detector.refiner import LandmarkRefinerNet, RefinerSpec, save_refiner
from pruning.detector.train import load_photos
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


def train(cfg: RefinerTrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    crops, truths = loose_faces(Path(cfg.labels), "train", show_progress)
    test_crops, test_truths = loose_faces(Path(cfg.labels), "test", show_progress)
    model = LandmarkRefinerNet(RefinerSpec.from_text(cfg.spec))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(crops) // cfg.batch
    total = steps_per_epoch * cfg.epochs
    state: dict = {"epoch": 0, "step": 0, "minutes": 0.0, "log": []}
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
    start = time.monotonic() - state["minutes"] * 60
    while state["epoch"] < cfg.epochs:
        rng = np.random.default_rng([cfg.seed, state["epoch"]])  # an epoch's samples depend on it alone
        order = rng.permutation(len(crops))
        model.train()
        loss_sum = 0.0
        steps = range(steps_per_epoch)
        for b in progress(steps, len(steps), f"epoch {state['epoch'] + 1}/{cfg.epochs}", show_progress):
            idx = order[b * cfg.batch : (b + 1) * cfg.batch]
            samples = [make_sample(crops[i], truths[i], cfg, rng, augment=True) for i in idx]
            x = to_tensor(np.stack([s[0] for s in samples]))
            y = torch.from_numpy(np.stack([s[1] for s in samples]))
            for g in opt.param_groups:
                g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * state["step"] / max(total, 1)))
            loss = torch.nn.functional.l1_loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            state["step"] += 1
            if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
                break
        model.eval()
        row = {"epoch": state["epoch"] + 1, "loss": loss_sum / max(b + 1, 1)}
        row.update(held_out_nme(model, test_crops, test_truths, cfg))
        state["log"].append(row)
        state["epoch"] += 1
        state["minutes"] = (time.monotonic() - start) / 60
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, ckpt)
        if show_progress:
            print(json.dumps(row), flush=True)
        if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
            break
    minutes = round((time.monotonic() - start) / 60, 2)
    save_refiner(
        model,
        out / "final",
        config=asdict(cfg),
        train_faces=len(crops),
        test_faces=len(test_crops),
        steps=state["step"],
        minutes=minutes,
        log=state["log"],
    )
    return {"train_faces": len(crops), "steps": state["step"], "minutes": minutes, **state["log"][-1]}


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
