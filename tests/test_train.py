"""Distillation training on a synthetic prepared face set: runs, logs, checkpoints and resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the 'train' extra")

from fakes import synthetic_faceset  # noqa: E402

from pruning.faceset import FaceSet, augment, centre_crop, centred  # noqa: E402
from pruning.model import load_model  # noqa: E402
from pruning.train import TrainConfig, distill_loss, epoch_batches, train  # noqa: E402

SMALL = "squeezerfacenet:8|4,8,8|4,8,8|4,8,8|4,8,8|4,8,8|4,8,8|4,8,8|4,8,8|16|128"


def test_distill_loss_is_zero_for_identical_and_positive_otherwise():
    t = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    assert float(distill_loss(t * 3.0, t, relational=1.0)) < 1e-6
    assert float(distill_loss(torch.randn(8, 16), t, relational=1.0)) > 0.1


def test_centred_targets_are_unit_and_remove_the_common_component():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(100, 8)) + 5.0
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    c = centred(t, t.mean(axis=0))
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-5)
    assert np.linalg.norm(c.mean(axis=0)) < 0.3 < np.linalg.norm(t.mean(axis=0))


def test_augment_is_deterministic_per_seed_and_keeps_shape():
    canvas = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    a = augment(canvas, np.random.default_rng([0, 1, 2]), flip=True)
    b = augment(canvas, np.random.default_rng([0, 1, 2]), flip=True)
    c = augment(canvas, np.random.default_rng([0, 1, 3]), flip=True)
    assert a.shape == (112, 112, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert centre_crop(canvas).shape == (112, 112, 3)


def test_epoch_batches_shard_without_overlap():
    idx = np.arange(100)
    r0 = np.concatenate(epoch_batches(idx, 10, seed=0, epoch=3, rank=0, world=2))
    r1 = np.concatenate(epoch_batches(idx, 10, seed=0, epoch=3, rank=1, world=2))
    assert len(set(r0) & set(r1)) == 0 and len(r0) == len(r1) == 50


def test_train_logs_saves_and_resumes_to_the_same_weights(tmp_path):
    faces = synthetic_faceset(tmp_path / "faces")
    common = dict(faces=str(faces), spec=SMALL, batch=8, epochs=2, threads=1, warmup_steps=2, seed=3)
    straight = train(TrainConfig(out=str(tmp_path / "a"), **common), show_progress=False)
    assert straight["best"] is not None and 0.0 <= straight["best"]["val_accuracy"] <= 1.0
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    model = load_model(tmp_path / "a" / "last")
    assert model.spec.to_text() == SMALL

    # the same run, stopped after epoch 1 and resumed from its checkpoint, ends with identical weights
    train(TrainConfig(out=str(tmp_path / "b"), **{**common, "epochs": 1}), show_progress=False)
    train(TrainConfig(out=str(tmp_path / "b"), **common), show_progress=False)
    a = load_model(tmp_path / "a" / "last").state_dict()
    b = load_model(tmp_path / "b" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    fs = FaceSet.load(faces)
    assert fs.indices(1).size == 24


def test_torchrun_two_cpu_processes_with_ddp(tmp_path):
    """The same entry point under torchrun: 2 gloo processes, rank 0 logs and saves."""
    import subprocess
    import sys

    faces = synthetic_faceset(tmp_path / "faces")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "pruning.train", "--faces", str(faces), "--out", str(out), "--spec", SMALL]
    cmd += ["--batch", "8", "--epochs", "1", "--threads", "1", "--warmup-steps", "1", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1  # only rank 0 writes
    # 24 training faces, batch 8 per rank, 2 ranks: 12 faces per rank -> 1 whole batch each -> 1 step
    assert log[0]["step"] == 1
    assert load_model(out / "last").spec.to_text() == SMALL
