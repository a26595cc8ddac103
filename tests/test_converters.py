"""A tiny SqueezerFaceNet converted end to end (ONNX fp32/int8, TFLite fp32/int8), proved against torch,
carded, and loaded back by the runtime. Synthetic faces: no data needed, about half a minute."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch", reason="needs the convert extra")
pytest.importorskip("ai_edge_quantizer", reason="needs the convert extra")

from fakes import smooth_faceset  # noqa: E402

from converters.convert_embedder import (  # noqa: E402
    ArtifactResult,
    Gates,
    all_pairs,
    convert,
    faces_from_prepared,
    int8_lfw_gate,
    main,
    markdown,
)
from pruning.faceset import FaceSet, centre_crop, to_input  # noqa: E402
from pruning.model import SqueezerFaceNet, load_model, save_model  # noqa: E402
from pruning.spec import ModelSpec  # noqa: E402
from squeezerface.embed import FaceEmbeddingModel  # noqa: E402
from squeezerface.errors import ModelFileError  # noqa: E402
from squeezerface.modelcard import Calibration, load_card  # noqa: E402

TINY = "squeezerfacenet:16|8,16,16|8,16,16|8,32,32|8,32,32|12,32,32|12,32,32|16,48,48|16,48,48|64|32"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("convert")
    faces_dir = smooth_faceset(tmp / "faces")
    torch.manual_seed(0)
    model = SqueezerFaceNet(ModelSpec.from_text(TINY))
    fs = FaceSet.load(faces_dir)
    model.train()  # a few forward passes give BatchNorm realistic running statistics
    with torch.no_grad():
        for _ in range(5):
            model(torch.from_numpy(to_input(np.stack([centre_crop(f) for f in fs.faces[:64]]))))
    save_model(model.eval(), tmp / "tiny", criterion="test", seed=0)
    faces = faces_from_prepared(faces_dir, calibration=64)
    report = convert(
        tmp / "tiny", tmp / "out", faces, None, "tiny", "0.0.1", command="test", show_progress=False
    )
    return tmp, report


def test_every_artifact_passes_parity_gates(converted: tuple[Path, dict]) -> None:
    _, report = converted
    kinds = {(a["format"], a["precision"]) for a in report["artifacts"]}
    assert kinds == {("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")}
    assert report["passed"], [a["failures"] for a in report["artifacts"]]
    for a in report["artifacts"]:
        assert a["parity_faces"] == 100
        floor = 0.9999 if a["precision"] == "fp32" else 0.995
        assert a["cosine_mean"] >= floor
        assert a["latency_ms_p50"] > 0 and a["size_bytes"] > 0
    sizes = {(a["format"], a["precision"]): a["size_bytes"] for a in report["artifacts"]}
    assert sizes[("onnx", "int8")] < sizes[("onnx", "fp32")]
    assert sizes[("tflite", "int8")] < sizes[("tflite", "fp32")]


def test_ops_show_quantization_and_no_transposes(converted: tuple[Path, dict]) -> None:
    ops = {a["file"]: set(a["ops"]) for a in converted[1]["artifacts"]}
    assert "QuantizeLinear" in ops["tiny-int8.onnx"] and "QuantizeLinear" not in ops["tiny-fp32.onnx"]
    assert "CONV_2D" in ops["tiny-fp32.tflite"]
    assert not any("TRANSPOSE" in op for op in ops["tiny-fp32.tflite"] | ops["tiny-int8.tflite"])


def test_runtime_loads_each_artifact_through_its_card(converted: tuple[Path, dict]) -> None:
    tmp, _ = converted
    faces = np.stack([centre_crop(f) for f in FaceSet.load(tmp / "faces").faces[:6]])
    reference = load_model(tmp / "tiny")(torch.from_numpy(to_input(faces))).detach().numpy()
    for path in sorted((tmp / "out").glob("tiny-*.*")):
        if path.suffix == ".json":
            continue
        card = load_card(path)
        assert card.input.layout == ("NHWC" if path.suffix == ".tflite" else "NCHW")
        assert card.params == sum(p.numel() for p in load_model(tmp / "tiny").parameters())
        assert "research" in card.licence
        emb = FaceEmbeddingModel(path).get_feat(faces)
        assert emb.shape == (6, 32)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(emb * reference, axis=1)) > (0.9999 if card.precision == "fp32" else 0.99)


def test_card_thresholds_carry_pair_counts(converted: tuple[Path, dict]) -> None:
    tmp, _ = converted
    card = json.loads((tmp / "out" / "tiny-int8.onnx.json").read_text())
    cal = card["calibration"]
    assert (cal["genuine_pairs"], cal["impostor_pairs"]) == (20 * 10, 100 * 99 // 2 - 200)
    names = [p["name"] for p in cal["points"]]
    assert names == ["far_1e-02", "far_1e-03", "eer"]  # 4,750 impostors cannot support FAR 1e-4
    assert any("far_1e-04" in u for u in cal["unsupported"])
    assert all(p["genuine_pairs"] == 200 and p["impostor_pairs"] == 4750 for p in cal["points"])


def test_tampered_artifact_is_refused(converted: tuple[Path, dict], tmp_path: Path) -> None:
    tmp, _ = converted
    for f in ("tiny-int8.onnx", "tiny-int8.onnx.json"):
        (tmp_path / f).write_bytes((tmp / "out" / f).read_bytes())
    with (tmp_path / "tiny-int8.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelFileError, match="does not match its card"):
        FaceEmbeddingModel(tmp_path / "tiny-int8.onnx")


def test_markdown_report_lists_every_artifact(converted: tuple[Path, dict]) -> None:
    text = markdown(converted[1])
    for a in converted[1]["artifacts"]:
        assert f"`{a['file']}`" in text


def _result(fmt: str, precision: str, lfw: float) -> ArtifactResult:
    cal = Calibration("x", 1, 1, ())
    return ArtifactResult(
        f"m-{precision}.{fmt}", fmt, precision, 1, "", [], {}, {"accuracy_mean": lfw}, {}, cal
    )


def test_int8_lfw_gate_compares_within_a_format() -> None:
    results = [
        _result("onnx", "fp32", 0.9150),
        _result("onnx", "int8", 0.9135),  # 0.15 pp below: allowed
        _result("tflite", "fp32", 0.9150),
        _result("tflite", "int8", 0.9120),  # 0.30 pp below: fails
    ]
    int8_lfw_gate(results, Gates())
    assert [bool(r.failures) for r in results] == [False, False, False, True]
    assert "0.30 pp" in results[3].failures[0]


def test_all_pairs_labels_same_identity() -> None:
    emb = np.eye(3, dtype=np.float32)
    scores, labels = all_pairs(emb, np.array([1, 1, 2]))
    assert labels.tolist() == [True, False, False]
    assert scores.tolist() == [0.0, 0.0, 0.0]


def test_cli_help_explains() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def _identity_folders(root: Path, people: int = 6, photos: int = 4) -> Path:
    import cv2

    rng = np.random.default_rng(1)
    for k in range(people):
        base = rng.integers(40, 220, (6, 6, 3)).astype(np.float32)
        for i in range(photos):
            img = cv2.resize(base, (96, 96), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 8, (96, 96, 3))
            (root / f"id{k}").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / f"id{k}" / f"{i}.jpg"), np.clip(img, 1, 255).astype(np.uint8))
    return root


def test_calibrate_cli_writes_a_card_from_identity_folders(
    converted: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from squeezerface.cli import EXIT_OK
    from squeezerface.cli import main as cli

    tmp, _ = converted
    root = _identity_folders(tmp_path / "people")
    out = tmp_path / "card.json"
    args = ["calibrate", "--root", str(root), "--model", str(tmp / "out" / "tiny-int8.onnx")]
    args += [
        "--locator",
        "fakes:make_colour_embedder",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c.sqlite"),
    ]
    assert cli([*args, "--quiet"]) == EXIT_OK
    card = json.loads(out.read_text())
    cal = card["calibration"]
    assert (cal["genuine_pairs"], cal["impostor_pairs"]) == (6 * 6, 24 * 23 // 2 - 36)
    assert "24 photos of 6 identities" in cal["source"]
    assert [p["name"] for p in cal["points"]] == ["far_1e-02", "eer"]  # 240 impostors: no 1e-3, 1e-4
    assert card["sha256"] == json.loads((tmp / "out" / "tiny-int8.onnx.json").read_text())["sha256"]
    printed = capsys.readouterr().out
    assert "unsupported: far_1e-03" in printed and "wrote" in printed


def test_calibrate_cli_bad_root_is_exit_2(converted: tuple[Path, dict], tmp_path: Path) -> None:
    from squeezerface.cli import EXIT_BAD_INPUT
    from squeezerface.cli import main as cli

    tmp, _ = converted
    args = ["calibrate", "--root", str(tmp_path / "nowhere"), "--model", str(tmp / "out" / "tiny-int8.onnx")]
    args += ["--locator", "fakes:make_colour_embedder", "--out", str(tmp_path / "c.json"), "--quiet"]
    assert cli(args) == EXIT_BAD_INPUT
