"""Smoke runs of `squeezerface bench` and benchmarks/run.py with tiny counts: the commands work end to end
and write the documented schema. Nothing here asserts a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from squeezerface.bench import BenchConfig, ImageSpec
from squeezerface.bench.images import image_bytes
from squeezerface.bench.stages import measure_squeezerface
from squeezerface.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_KEYS = {"stage", "backend", "precision", "threads", "p50_ms", "p90_ms", "ratio_vs_dlib"}


@pytest.mark.slow
def test_squeezerface_bench_smoke(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--runs", "3", "--warmup", "1", "--threads", "1", "--only", "onnx-int8"]
    argv += ["--search-sizes", "1k", "--search-queries", "3", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    report = json.loads((out / "bench.json").read_text())
    assert (out / "bench.md").read_text().startswith("# squeezerface on-device benchmark")
    for key in (
        "device",
        "settings",
        "configs",
        "latency",
        "gemm",
        "roofline",
        "targets",
        "search",
        "images",
    ):
        assert key in report
    assert report["device"]["logical_cpus"] >= 1 and report["device"]["packages"]["squeezerface"]
    latency = report["latency"]
    assert latency and all(set(r) >= SCHEMA_KEYS for r in latency)
    ours = {r["stage"]: r for r in latency if r["pipeline"] == "squeezerface"}
    assert {"decode", "detect", "align", "embed", "embed_engine", "match"} <= set(ours)
    assert all(r["threads"] == 1 and r["runs"] == 3 and r["backend"] == "onnxruntime" for r in ours.values())
    peer = next(c for c in report["configs"] if c["config"]["pipeline"] == "dlib")
    if peer["status"] == "ok":  # the teacher extra is installed (dev installs it): ratios are filled in
        assert ours["embed"]["ratio_vs_dlib"] > 0 and ours["embed"]["speedup_vs_dlib"] > 0
        peer_stages = {r["stage"] for r in latency if r["pipeline"] == "dlib"}
        if "end_to_end" in ours and "end_to_end" in peer_stages:
            assert ours["end_to_end"]["ratio_vs_dlib"] > 0
    else:
        assert "teacher" in peer["reason"]
        assert all(r["ratio_vs_dlib"] is None for r in latency)
    assert report["gemm"] and report["gemm"][0]["gflops"] > 0
    assert any(r["engine"] == "numpy" and r["status"] == "ok" for r in report["search"])


def test_bench_rejects_a_missing_photo_and_a_bad_config(tmp_path, capsys):
    assert main(["bench", "--image", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)]) == 2
    assert "image not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": [{"name": "x", "backend": "tensorrt"}]}))
    assert main(["bench", "--config", str(bad), "--out", str(tmp_path)]) == 2
    assert main(["bench", "--runs", "0", "--out", str(tmp_path)]) == 2


def test_synthetic_frame_times_what_it_can_and_says_what_it_skipped():
    """Without a photo, detect runs on a face-free frame and end to end is skipped, with the reason."""
    images = [ImageSpec("synthetic", seed=0), ImageSpec("synthetic", seed=1)]
    assert image_bytes(images[0]) != image_bytes(images[1])
    cfg = BenchConfig(
        "s", embedder="squeezerfacenet-980k-int8.onnx", detector="tinyface-int8.onnx", runs=2, warmup=0
    )
    run = measure_squeezerface(cfg, images)
    stages = {r.stage: r for r in run.records}
    assert "end_to_end" not in stages and any("end_to_end skipped" in n for n in run.notes)
    assert "face-free" in stages["detect"].note and "assumed" in stages["embed"].note
    assert run.load_ms > 0 and run.models["embedder_mmacs"] > 0


def test_python_m_squeezerface_bench_help():
    out = subprocess.run(
        [sys.executable, "-m", "squeezerface.bench", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--runs" in out.stdout and "--worker" not in out.stdout


@pytest.mark.slow
def test_full_harness_search_and_accuracy_steps(tmp_path):
    """benchmarks/run.py without the latency step: the search and accuracy files and their plots."""
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--skip",
        "latency",
        "--search-sizes",
        "1k,2k",
    ]
    cmd += ["--search-queries", "3", "--threads", "1", "--out", str(tmp_path), "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    search = json.loads((tmp_path / "search.json").read_text())
    assert [r["size"] for r in search["records"] if r["status"] == "ok"] == [1000, 2000]
    accuracy = json.loads((tmp_path / "accuracy.json").read_text())
    assert accuracy["measured"] and accuracy["quoted"]
    assert "(not measured here)" in (tmp_path / "accuracy.md").read_text()
    for png in ("search.png", "accuracy_vs_size.png"):
        assert (tmp_path / png).stat().st_size > 1000
