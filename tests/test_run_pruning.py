"""The pruning run end to end on a synthetic face set: one step per criterion, records, resume."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="pruning needs the 'train' extra")
pytest.importorskip("torch_pruning", reason="pruning needs the 'train' extra")

from fakes import synthetic_faceset  # noqa: E402

from pruning.model import SqueezerFaceNet, count_params, load_model, save_model  # noqa: E402
from pruning.run_pruning import main  # noqa: E402
from pruning.spec import ModelSpec  # noqa: E402

SMALL = "squeezerfacenet:16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|8,16,16|32|128"


@pytest.mark.parametrize("criterion", ["taylor", "l1", "random", "activation", "none"])
def test_one_pruning_step_lands_under_target_and_resumes(tmp_path, criterion):
    faces = synthetic_faceset(tmp_path / "faces")
    torch.manual_seed(0)
    base = SqueezerFaceNet(ModelSpec.from_text(SMALL))
    save_model(base, tmp_path / "base")
    target = int(count_params(base) * 0.85)
    out = tmp_path / "run"
    args = [
        "--init",
        str(tmp_path / "base"),
        "--faces",
        str(faces),
        "--out",
        str(out),
        "--criterion",
        criterion,
    ]
    args += ["--targets", str(target), "--finetune-steps", "2", "--score-batches", "2", "--batch", "8"]
    args += ["--lfw", "", "--threads", "1", "--quiet"]
    assert main(args) == 0
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [0, 1]
    if criterion == "none":  # the control: same fine-tuning, nothing removed
        assert curve[1]["params"] == curve[0]["params"]
    else:
        assert curve[1]["params"] <= target < curve[0]["params"]
    assert "val_accuracy" in curve[1]["metrics"]
    pruned = load_model(out / "step1")
    assert count_params(pruned) == curve[1]["params"] and pruned.spec.to_text() == curve[1]["spec"]
    assert main(args) == 0  # resumes: nothing left to do, nothing appended
    assert len((out / "curve.jsonl").read_text().splitlines()) == 2
