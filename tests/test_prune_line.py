"""Embedder v2's offline stage on synthetic data: the atomic saver, the shared loop's resume, distillation,
both architectures under the pruning driver, and the curve report."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the offline stage needs the 'train' extra")
pytest.importorskip("torch_pruning", reason="the offline stage needs the 'train' extra")

from fakes import synthetic_faceset  # noqa: E402

from pruning import architectures, prune  # noqa: E402
from pruning.loop import CheckpointSaver, LoopConfig, train_loop, warmup_cosine  # noqa: E402
from pruning.mobilefacenet import MobileFaceNet, MobileFaceNetSpec  # noqa: E402
from pruning.model import count_params  # noqa: E402
from pruning.prune_line import main as prune_line  # noqa: E402

TINY_MFN = MobileFaceNetSpec(hidden=(8,) * 15, head=16, embedding=8)


def test_checkpoint_saver_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    saver = CheckpointSaver(tmp_path / "ck" / "checkpoint.pt")
    assert saver.load() is None
    saver.save({"x": torch.ones(3), "state": "a"})
    saver.save({"x": torch.zeros(3), "state": "b"})
    loaded = saver.load()
    assert loaded["state"] == "b" and torch.equal(loaded["x"], torch.zeros(3))
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["checkpoint.pt"]


def _tiny_run(out: Path, total: int, stop_after: int | None = None) -> tuple[torch.nn.Module, list[dict]]:
    """A linear regression through `train_loop`; `stop_after` simulates a run killed after that many steps."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.randn(64, 4)

    def batch(step: int) -> torch.Tensor:
        if stop_after is not None and step >= stop_after:
            raise KeyboardInterrupt
        return data[(step * 8) % 64 : (step * 8) % 64 + 8]

    evaluations: list[dict] = []
    cfg = LoopConfig(total_steps=total, eval_every=2, show_progress=False)
    with contextlib.suppress(KeyboardInterrupt):
        train_loop(
            model,
            opt,
            warmup_cosine(opt, 1, total),
            CheckpointSaver(out / "c.pt"),
            cfg,
            batch,
            lambda x: (model(x) - x.sum(1, keepdim=True)).pow(2).mean(),
            lambda: evaluations.append({}) or {"val_accuracy": float(-model.weight.detach().norm())},
        )
    return model, evaluations


def test_train_loop_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight, _ = _tiny_run(tmp_path / "a", total=6)
    _tiny_run(tmp_path / "b", total=6, stop_after=4)  # killed after the checkpoint at step 4
    resumed, evaluations = _tiny_run(tmp_path / "b", total=6)
    assert len(evaluations) == 1  # only the step-6 evaluation was left to do
    assert torch.allclose(straight.weight, resumed.weight, atol=1e-6)


def _labelled_faceset(folder: Path) -> Path:
    """The synthetic face set with some labelled *training* identities too (for the identity loss)."""
    synthetic_faceset(folder, n=64)
    identity = np.load(folder / "identity.npy")
    identity[40:56] = np.repeat(np.arange(100, 104), 4)
    np.save(folder / "identity.npy", identity)
    return folder


def test_mobilefacenet_spec_round_trips_and_prunes_to_a_target(tmp_path):
    model = MobileFaceNet(TINY_MFN, normalize=False)
    assert MobileFaceNetSpec.from_text(TINY_MFN.to_text()) == TINY_MFN
    x = torch.randn(4, 3, 112, 112)
    prune.accumulate_gradients(model, [x], lambda m, b: m(b).pow(2).mean(), 1)
    target = count_params(model) - 200
    candidates = prune.removable_channels(model, prune.TaylorImportance(), None, 1)
    n = prune.channels_for_target(prune.model_spec(model), candidates, target)
    prune.apply_plan(model, prune._plan_of(candidates[:n]))
    assert count_params(model) <= target
    assert count_params(model) == prune.params_of_spec(prune.model_spec(model))
    architectures.save(model, tmp_path / "m")
    again = architectures.load(tmp_path / "m", normalize=False)
    model.eval()
    assert torch.allclose(again(x), model(x), atol=1e-5)


@pytest.mark.parametrize("criterion", ["taylor", "l1", "random"])
def test_prune_line_records_every_point_and_resumes(tmp_path, criterion):
    faces = _labelled_faceset(tmp_path / "faces")
    torch.manual_seed(0)
    student = MobileFaceNet(TINY_MFN, normalize=False)
    architectures.save(student, tmp_path / "start")
    p0 = count_params(student)
    targets = f"{p0 - 150},{p0 - 400}"
    args = [
        "--start",
        str(tmp_path / "start"),
        "--teacher",
        str(tmp_path / "start"),
        "--faces",
        str(faces),
        "--criterion",
        criterion,
        "--targets",
        targets,
        "--finetune-steps",
        "2",
        "--score-batches",
        "1",
        "--batch",
        "8",
        "--lfw",
        "",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / criterion),
    ]
    assert prune_line(args) == 0
    rows = [json.loads(line) for line in (tmp_path / criterion / "records.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert rows[1]["params"] <= p0 - 150 and rows[2]["params"] <= p0 - 400
    assert "val_accuracy" in rows[2] and architectures.load(tmp_path / criterion / "step2") is not None
    assert prune_line(args) == 0  # resumes: nothing left to do
    assert len((tmp_path / criterion / "records.jsonl").read_text().splitlines()) == 3
    if criterion == "taylor":
        script = Path(__file__).resolve().parents[1] / "benchmarks" / "pruning_report.py"
        cmd = [
            sys.executable,
            str(script),
            "--line",
            f"tiny={tmp_path / criterion}",
            "--out",
            str(tmp_path / "r"),
            "--v1",
            str(tmp_path / "none.json"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads((tmp_path / "r" / "pruning.json").read_text())
        assert [r["params"] for r in report["lines"]["tiny"]["taylor"]] == [r["params"] for r in rows]
        assert (tmp_path / "r" / "pruning.png").read_bytes()[:4] == b"\x89PNG"
