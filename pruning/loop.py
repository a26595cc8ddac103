"""One training loop and one checkpoint saver for every trainer of the offline stage.

`CheckpointSaver` writes to a temporary file in the destination folder, flushes it to disk and then
`os.replace`s it over the old checkpoint (timm's `CheckpointSaver` idea): a run killed at any moment
leaves either the previous checkpoint or the new one, never a torn file. `train_loop` owns what every
trainer repeats: the step counter, the torch LR scheduler, periodic and final checkpoints, resume, and
evaluation every `eval_every` steps with best-so-far tracking. A trainer supplies only `make_batch(step)`
and `loss(batch)` plus its own `evaluate`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from squeezerface._progress import progress


class CheckpointSaver:
    """Atomic save/load of one checkpoint file (a dict of tensors, state dicts and JSON-able values)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save(self, payload: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> dict[str, Any] | None:
        return torch.load(self.path, map_location="cpu", weights_only=True) if self.path.exists() else None


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total` (a torch scheduler)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class LoopState:
    """What a resumed run needs besides the tensors (stored as JSON in the checkpoint)."""

    step: int = 0
    minutes: float = 0.0
    best: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LoopConfig:
    total_steps: int
    eval_every: int
    checkpoint_minutes: float = 10.0
    select_on: str = "val_accuracy"
    show_progress: bool = True


def train_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    saver: CheckpointSaver,
    cfg: LoopConfig,
    make_batch: Callable[[int], Any],
    loss_fn: Callable[[Any], torch.Tensor],
    evaluate: Callable[[], dict[str, Any]],
    on_best: Callable[[dict[str, Any]], None] = lambda record: None,
) -> LoopState:
    """Run (or resume) `cfg.total_steps` optimiser steps; evaluate every `cfg.eval_every` and at the end.

    `make_batch(step)` must be a function of the step alone (seeded), so a resumed run sees the same batches.
    `on_best(record)` runs whenever the evaluation metric `cfg.select_on` improves (save the weights there).
    """
    state = LoopState()
    ckpt = saver.load()
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = LoopState(**json.loads(ckpt["state"]))

    def checkpoint() -> None:
        saver.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": json.dumps(asdict(state)),
            }
        )

    started, last_save = time.monotonic() - state.minutes * 60, time.monotonic()
    losses: list[float] = []
    steps = range(state.step, cfg.total_steps)
    for step in progress(steps, len(steps), "training", cfg.show_progress):
        model.train()
        loss = loss_fn(make_batch(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        state.step = step + 1
        state.minutes = (time.monotonic() - started) / 60
        if state.step % cfg.eval_every == 0 or state.step == cfg.total_steps:
            record = {
                "step": state.step,
                "loss": sum(losses) / max(1, len(losses)),
                "lr": scheduler.get_last_lr()[0],
                "minutes": round(state.minutes, 2),
                **evaluate(),
            }
            losses.clear()
            state.history.append(record)
            if state.best is None or record[cfg.select_on] > state.best[cfg.select_on]:
                state.best = record
                on_best(record)
            checkpoint()
            last_save = time.monotonic()
        elif time.monotonic() - last_save > cfg.checkpoint_minutes * 60:
            checkpoint()
            last_save = time.monotonic()
    return state
