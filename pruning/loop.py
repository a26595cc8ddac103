"""One training loop and one checkpoint saver for every trainer of the offline stage.

`CheckpointSaver` writes to a temporary file in the destination folder, flushes it to disk and then
`os.replace`s it over the old checkpoint (timm's `CheckpointSaver` idea): a run killed at any moment
leaves either the previous checkpoint or the new one, never a torn file. `train_loop` owns what every
trainer repeats: the step counter, the torch LR scheduler, periodic and final checkpoints, resume, and
evaluation every `eval_every` steps with best-so-far tracking, epoch numbers, loss parts, gradient clipping
and DDP's rank 0. A trainer supplies only `make_batch(step)` and `loss(batch)` plus its own `evaluate`;
`EpochBatches` turns an epoch-wise batch source (a DataLoader) into `make_batch(step)`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

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
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total` (a torch scheduler).
    `warmup=0` is plain cosine decay."""

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
    """How the loop runs; every field past `show_progress` is off by default (what distillation uses).

    `steps_per_epoch` adds the epoch to each record (epoch-based trainers evaluate with `eval_every` equal
    to it); `samples_per_step` adds the training throughput; `loss_key` names the mean loss in records
    (older logs call it `train_loss`); `resume=False` starts afresh over an existing checkpoint;
    `is_main=False` (DDP ranks other than 0) trains without evaluating, logging or saving.
    """

    total_steps: int
    eval_every: int
    checkpoint_minutes: float = 10.0
    select_on: str = "val_accuracy"
    show_progress: bool = True
    steps_per_epoch: int | None = None
    samples_per_step: int | None = None
    loss_key: str = "loss"
    clip_grad_norm: float | None = None
    resume: bool = True
    is_main: bool = True


LossOutput: TypeAlias = torch.Tensor | tuple[torch.Tensor, dict[str, float]]
"""What a trainer's loss function returns: the loss, optionally with named parts to average in records."""


@dataclass
class _Meter:
    """Running means of the loss (and its named parts) since the last record, and the training time."""

    steps: int = 0
    loss: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, loss: float, parts: dict[str, float], seconds: float) -> None:
        self.steps += 1
        self.loss += loss
        self.seconds += seconds
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + v

    def means(self, cfg: LoopConfig) -> dict[str, float]:
        n = max(1, self.steps)
        out = {cfg.loss_key: self.loss / n, **{k: v / n for k, v in self.parts.items()}}
        if cfg.samples_per_step:
            out["images_per_s"] = self.steps * cfg.samples_per_step / max(1e-9, self.seconds)
        return out


def _split_loss(output: LossOutput) -> tuple[torch.Tensor, dict[str, float]]:
    return output if isinstance(output, tuple) else (output, {})


def _optimiser_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None
) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()


def _rederive_lr(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Set the optimiser's lr from the rebuilt schedule at the restored step, not from the checkpoint: a run
    resumed with more epochs has a longer schedule, and its next step must use that schedule's lr."""
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        scheduler.last_epoch -= 1
        scheduler.step()


class _Run:
    """The loop's bookkeeping: restore, checkpoint payload, records; kept apart so `train_loop` reads as
    the loop it is."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        saver: CheckpointSaver | None,
        cfg: LoopConfig,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.saver, self.cfg = saver, cfg
        self.state = self._restore()
        self.started = time.monotonic() - self.state.minutes * 60
        self.last_save = time.monotonic()

    def _restore(self) -> LoopState:
        ckpt = self.saver.load() if self.saver is not None and self.cfg.resume else None
        if ckpt is None:
            return LoopState()
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        _rederive_lr(self.scheduler)
        return LoopState(**json.loads(ckpt["state"]))

    def tick(self, step: int) -> None:
        self.state.step = step + 1
        self.state.minutes = (time.monotonic() - self.started) / 60

    def checkpoint(self) -> None:
        if self.saver is not None and self.cfg.is_main:
            self.saver.save(
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "state": json.dumps(asdict(self.state)),
                }
            )
        self.last_save = time.monotonic()

    def due_for_record(self) -> bool:
        step = self.state.step
        return step % self.cfg.eval_every == 0 or step == self.cfg.total_steps

    def due_for_checkpoint(self) -> bool:
        return time.monotonic() - self.last_save > self.cfg.checkpoint_minutes * 60

    def record(self, meter: _Meter, evaluate: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
        cfg, step = self.cfg, self.state.step
        epoch = {"epoch": math.ceil(step / cfg.steps_per_epoch)} if cfg.steps_per_epoch else {}
        return {
            **epoch,
            "step": step,
            **meter.means(cfg),
            "lr": self.scheduler.get_last_lr()[0],
            "minutes": round(self.state.minutes, 2),
            **(evaluate() if evaluate is not None else {}),
        }

    def is_best(self, record: dict[str, Any]) -> bool:
        key = self.cfg.select_on
        if key not in record:
            return False
        return self.state.best is None or record[key] > self.state.best[key]


def train_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    saver: CheckpointSaver | None,
    cfg: LoopConfig,
    make_batch: Callable[[int], Any],
    loss_fn: Callable[[Any], LossOutput],
    evaluate: Callable[[], dict[str, Any]] | None = None,
    on_best: Callable[[dict[str, Any]], None] = lambda record: None,
    on_record: Callable[[dict[str, Any]], None] = lambda record: None,
) -> LoopState:
    """Run (or resume) `cfg.total_steps` optimiser steps; record every `cfg.eval_every` and at the end.

    `make_batch(step)` must be a function of the step alone (seeded), so a resumed run sees the same batches.
    `loss_fn(batch)` returns the loss, or (loss, {name: float}) whose parts are averaged into the record.
    A record holds the step (and epoch), the mean loss since the last record, the lr, the minutes and what
    `evaluate()` returns; it is kept in `LoopState.history`, then passed to `on_best` when the metric
    `cfg.select_on` improves (save the weights there) and to `on_record` (write logs there). A checkpoint
    follows every record and every `cfg.checkpoint_minutes`. No `saver`: nothing is saved or resumed.
    """
    run = _Run(model, optimizer, scheduler, saver, cfg)
    meter = _Meter()
    steps = range(run.state.step, cfg.total_steps)
    for step in progress(steps, len(steps), "training", cfg.show_progress and cfg.is_main):
        t0 = time.monotonic()
        model.train()
        loss, parts = _split_loss(loss_fn(make_batch(step)))
        _optimiser_step(model, optimizer, loss, cfg.clip_grad_norm)
        scheduler.step()
        meter.add(float(loss.detach()), parts, time.monotonic() - t0)
        run.tick(step)
        if run.due_for_record():
            if cfg.is_main:
                _keep_record(run, run.record(meter, evaluate), on_best, on_record)
            meter = _Meter()
            run.checkpoint()
        elif run.due_for_checkpoint():
            run.checkpoint()
    return run.state


def _keep_record(
    run: _Run,
    record: dict[str, Any],
    on_best: Callable[[dict[str, Any]], None],
    on_record: Callable[[dict[str, Any]], None],
) -> None:
    run.state.history.append(record)
    if run.is_best(record):
        run.state.best = record
        on_best(record)
    on_record(record)


class EpochBatches:
    """`make_batch(step)` for trainers whose batches come epoch by epoch from an iterable (a DataLoader, a
    seeded epoch permutation): `open_epoch(epoch, start)` yields that epoch's batches from batch `start` on.

    Steps asked in order stream from one open iterator (workers and prefetching stay alive); a step out of
    order (the first after a resume) reopens its epoch at the right batch."""

    def __init__(self, open_epoch: Callable[[int, int], Iterable[Any]], steps_per_epoch: int) -> None:
        if steps_per_epoch < 1:
            raise ValueError("an epoch must hold at least one whole batch")
        self.open_epoch, self.steps_per_epoch = open_epoch, steps_per_epoch
        self._iter: Iterator[Any] | None = None
        self._next = -1

    def __call__(self, step: int) -> Any:
        if self._iter is None or step != self._next or step % self.steps_per_epoch == 0:
            epoch, start = divmod(step, self.steps_per_epoch)
            self._iter = iter(self.open_epoch(epoch, start))
        self._next = step + 1
        return next(self._iter)
