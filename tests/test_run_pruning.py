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


def test_pruning_report_collects_curves_and_exports_models(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    faces = synthetic_faceset(tmp_path / "faces")
    torch.manual_seed(0)
    base = SqueezerFaceNet(ModelSpec.from_text(SMALL))
    save_model(base, tmp_path / "base")
    p = count_params(base)
    runs = []
    for criterion in ("taylor", "random"):
        out = tmp_path / criterion
        args = ["--init", str(tmp_path / "base"), "--faces", str(faces), "--out", str(out)]
        args += ["--criterion", criterion, "--targets", str(int(p * 0.9)), str(int(p * 0.8))]
        args += [
            "--finetune-steps",
            "1",
            "--score-batches",
            "1",
            "--batch",
            "8",
            "--lfw",
            "",
            "--threads",
            "1",
        ]
        assert main([*args, "--quiet"]) == 0
        runs.append(str(out))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "pruning_report.py"
    cmd = [sys.executable, str(script), "--runs", *runs, "--out", str(tmp_path / "r")]
    done = subprocess.run(
        [*cmd, "--export", str(tmp_path / "w")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "r" / "pruning.json").read_text())
    assert [m["name"] for m in record["models"]] == [
        "base",
        "taylor-step1",
        "taylor-step2",
        "random-step1",
        "random-step2",
    ]
    assert all(m["params"] <= int(p * 0.8) for m in record["models"] if m["name"].endswith("step2"))
    assert (tmp_path / "r" / "pruning.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "w" / "base.safetensors").exists() and "research use only" in (
        tmp_path / "w" / "MODELS.md"
    ).read_text()
