"""benchmarks/sizes.py: the join of per-input latency runs into one table, issue 17's targets and the
defaults chosen by measurement (pure functions, checked on hand-made reports); the YuNet peer detector."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _sizes():
    if "sizes" in sys.modules:
        return sys.modules["sizes"]
    spec = importlib.util.spec_from_file_location("sizes", ROOT / "benchmarks" / "sizes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sizes"] = module
    spec.loader.exec_module(module)
    return module


def _config(name: str, pipeline: str, det: str = "d.onnx", emb: str = "e.onnx") -> dict:
    models = {"detector": det, "embedder": emb, "engines": ["onnxruntime", "onnxruntime"],
              "embedder_bytes": 100, "detector_bytes": 10}  # fmt: skip
    return {"status": "ok", "config": {"name": name, "pipeline": pipeline, "threads": 1}, "models": models,
            "peak_rss_mb": 50.0}  # fmt: skip


def _block(name: str, e2e: dict[tuple[str, int], float], embed: float = 2.0) -> dict:
    configs, latency = [], []
    for (cfg, threads), ms in e2e.items():
        pipeline = "dlib" if cfg == "dlib" else ("peer" if cfg.startswith("yunet") else "squeezerface")
        if threads == 1:
            configs.append(_config(cfg, pipeline, det=f"{cfg}-det.onnx"))
        for stage, value in (("end_to_end", ms), ("embed", 40 * embed if cfg == "dlib" else embed),
                             ("decode_detect", ms / 3)):  # fmt: skip
            latency.append({"config": cfg, "threads": threads, "stage": stage, "p50_ms": value})
    return {"name": name, "note": "", "report": {"configs": configs, "latency": latency,
                                                 "device": {"machine": "x86_64"}}}  # fmt: skip


BLOCKS = [
    _block("lfw", {("squeezerface-a", 1): 10.0, ("squeezerface-a", 2): 12.0, ("squeezerface-b", 1): 9.0,
                   ("squeezerface-b", 2): 8.5, ("dlib", 1): 180.0, ("yunet+mobilefacenet", 1): 15.0}),
    _block("4032x3024", {("squeezerface-a", 1): 50.0, ("squeezerface-b", 1): 70.0, ("dlib", 1): 8000.0,
                         ("yunet+mobilefacenet", 1): 40.0}),
]  # fmt: skip
ACCURACY = {
    "squeezerface-a": {"accuracy": 0.9895, "tar_at_far_1e-3": 0.976},
    "squeezerface-b": {"accuracy": 0.9878, "tar_at_far_1e-3": 0.976},  # under the 98.8 % gate
    "yunet+mobilefacenet": {"accuracy": 0.9778, "tar_at_far_1e-3": 0.943},
}


def test_rows_hold_same_run_ratios_against_dlib_and_the_peer():
    rows = _sizes().summary_rows(BLOCKS, ACCURACY)
    a = next(r for r in rows if r.input == "lfw" and r.config == "squeezerface-a" and r.threads == 1)
    assert a.speedup_vs_dlib == pytest.approx(18.0) and a.speedup_vs_peer == pytest.approx(1.5)
    assert a.embed_speedup_vs_dlib == pytest.approx(40.0) and a.lfw_accuracy == 0.9895
    big = next(r for r in rows if r.input == "4032x3024" and r.config == "squeezerface-a")
    assert big.speedup_vs_dlib == pytest.approx(160.0) and big.speedup_vs_peer == pytest.approx(0.8)
    assert next(r for r in rows if r.config == "yunet+mobilefacenet").lfw_accuracy == 0.9778


def test_targets_say_met_or_by_how_much_missed():
    sizes = _sizes()
    targets = {t.what: t for t in sizes.check_targets(sizes.summary_rows(BLOCKS, ACCURACY), ACCURACY,
                                                       "squeezerface-a")}  # fmt: skip
    assert not targets["end-to-end verify vs dlib (LFW crops)"].met
    assert "40 % short" in targets["end-to-end verify vs dlib (LFW crops)"].why
    assert targets["end-to-end verify vs dlib (12 MP photos)"].met
    assert not targets["end-to-end vs YuNet + MobileFaceNet (12 MP photo)"].met
    assert targets["LFW accuracy at least YuNet + MobileFaceNet's"].met


def test_defaults_are_the_fastest_configuration_and_threads_never_slower_than_one():
    chosen = _sizes().choose_defaults(BLOCKS, ACCURACY)
    # a: geomean(10, 50) = 22.4 ms; b: geomean(9, 70) = 25.1 ms
    assert chosen["config"] == "squeezerface-a" and chosen["detector"] == "squeezerface-a-det.onnx"
    assert chosen["threads"] == 1  # 2 threads: 12 ms > 10 ms
    timings = {("squeezerface-a", 1): 10.0, ("squeezerface-b", 1): 9.0, ("squeezerface-b", 2): 8.5}
    faster = [_block("lfw", timings)]
    assert _sizes().choose_defaults(faster)["config"] == "squeezerface-b"  # no gate: the fastest
    assert _sizes().choose_defaults(faster)["threads"] == 2
    gated = _sizes().choose_defaults(faster, ACCURACY)
    assert gated["config"] == "squeezerface-a" and gated["evidence"]["passed_gate"] == ["squeezerface-a"]
    assert "squeezerface-a" in "\n".join(_sizes().render_defaults(chosen))


@pytest.mark.data
def test_realsize_inputs_pick_single_face_frames_near_an_eighth_of_the_width():
    root = ROOT / "runs" / "realsize"
    if not (root / "truth.json").is_file():
        pytest.skip("runs/realsize not built here (python benchmarks/realsize.py build)")
    truth = {f["file"]: f for f in json.loads((root / "truth.json").read_text())["frames"]}
    for inp in _sizes().realsize_inputs(root):
        assert len(inp.images) == 2
        for spec in inp.images:
            frame = truth[str(Path(spec.path).relative_to(root))]
            assert len(frame["faces"]) == 1 and not frame["closeup"]


@pytest.mark.data
def test_yunet_peer_finds_lfw_faces_with_our_landmark_order(shared_data):
    from squeezerface.bench.yunet_peer import YuNetDetector
    from squeezerface.errors import EmbedderUnavailableError
    from squeezerface.imageio import load_image

    try:
        model = shared_data.parent / "peers" / "yunet" / "face_detection_yunet_2026may.onnx"
        detector = YuNetDetector(f"yunet:{model}")
    except EmbedderUnavailableError as exc:
        pytest.skip(str(exc))
    faces = detector.detect(load_image(shared_data / "lfw/images/Colin_Powell/Colin_Powell_0038.jpg"))
    assert len(faces) == 1
    lm = faces[0].landmarks
    assert lm[0, 0] < lm[2, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye first, as the template
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()  # eyes above the nose above the mouth
    assert detector.fingerprint().startswith("yunet:") and np.isfinite(faces[0].score)
