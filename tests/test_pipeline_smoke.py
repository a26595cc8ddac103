"""Smoke run of the offline stage on a handful of real faces: teacher targets -> aligned faces -> a few
training steps -> one Taylor pruning step. Needs ../shared/data and the 'train' extra."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra")
pytest.importorskip("dlib", reason="the teacher needs the 'teacher' extra")

from pruning.data import prepare
from pruning.faceset import FaceSet
from pruning.train import TrainConfig, train

SMALL = "squeezerfacenet:16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|32|128"


@pytest.mark.data
def test_prepare_and_train_on_a_few_real_faces(shared_data, tmp_path):
    manifest = prepare(
        shared_data,
        tmp_path / "faces",
        cache_path=tmp_path / "cache.sqlite",
        workers=1,
        val_identities=167,  # every celeba_wild photo of the sample goes to validation
        limit=160,
        show_progress=False,
    )
    assert manifest["kept"] + manifest["no_face_or_unreadable"] == 160
    assert manifest["kept"] >= 136  # the teacher finds a face in nearly every training photo
    assert not any(p.startswith("lfw") for p in manifest["paths"])
    fs = FaceSet.load(tmp_path / "faces")
    assert fs.faces.shape[1:] == (128, 128, 3) and fs.faces.dtype == np.uint8
    np.testing.assert_allclose(np.linalg.norm(fs.targets, axis=1), 1.0, rtol=1e-4)
    # the teacher's embedding of the mirrored photo is close to, but not the same as, the original's
    cos = (fs.targets * fs.targets_flip).sum(axis=1)
    assert 0.9 < float(np.median(cos)) < 0.9999

    cfg = TrainConfig(faces=str(tmp_path / "faces"), out=str(tmp_path / "run"), spec=SMALL, batch=16)
    summary = train(
        TrainConfig(**{**cfg.__dict__, "epochs": 1, "max_steps": 3, "threads": 1, "warmup_steps": 1}),
        show_progress=False,
    )
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and np.isfinite(log[-1]["train_loss"])
    assert summary["best"]["val_accuracy"] is not None

    # one Taylor pruning step with a little fine-tuning, on the same real faces
    from pruning.model import count_params, load_model
    from pruning.run_pruning import main as run_pruning

    target = int(count_params(load_model(tmp_path / "run" / "last")) * 0.9)
    args = ["--init", str(tmp_path / "run" / "last"), "--faces", str(tmp_path / "faces")]
    args += ["--out", str(tmp_path / "prune"), "--targets", str(target), "--finetune-steps", "2"]
    args += ["--score-batches", "2", "--batch", "16", "--lfw", "", "--threads", "1", "--quiet"]
    assert run_pruning(args) == 0
    curve = [json.loads(line) for line in (tmp_path / "prune" / "curve.jsonl").read_text().splitlines()]
    assert curve[-1]["params"] <= target and np.isfinite(curve[-1]["finetune_loss"])
