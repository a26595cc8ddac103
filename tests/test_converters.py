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
from converters.onnx_export import export_onnx  # noqa: E402
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


# MobileFaceNet from a face bank: the pretrained line's path (tiny spec, random weights, synthetic bank).

MFN_HELD = {"celeba_wild": (6, 4), "pins": (4, 5)}  # held-out identities x faces each, per data set


def tiny_face_bank(folder: Path, train: int = 80) -> Path:
    """A face bank folder (no targets.npy, so the converter must recognise it as one): held-out celeba_wild
    and Pins identities, plus unlabelled and labelled training faces; smooth canvases so int8 calibration
    sees image-like ranges."""
    import cv2

    from pruning.facebank import PINS_BASE

    rng = np.random.default_rng(3)
    identity = [k for k in range(6) for _ in range(4)] + [PINS_BASE + k for k in range(4) for _ in range(5)]
    split = [1] * len(identity) + [0] * train
    identity += [-1] * (train // 2) + [100 + k // 4 for k in range(train - train // 2)]
    bases = {i: rng.integers(40, 220, (8, 8, 3)).astype(np.float32) for i in set(identity)}
    faces = np.zeros((len(identity), 128, 128, 3), np.uint8)
    for k, i in enumerate(identity):
        base = bases[i] if i >= 0 else rng.integers(40, 220, (8, 8, 3)).astype(np.float32)
        img = cv2.resize(base, (128, 128), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 12, (128, 128, 3))
        faces[k] = np.clip(img, 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "faces.npy", faces)
    np.save(folder / "identity.npy", np.array(identity, np.int64))
    np.save(folder / "split.npy", np.array(split, np.int8))
    (folder / "manifest.json").write_text(json.dumps({"synthetic": True}))
    return folder


MFN_PROVENANCE = {
    "start_weights": "mobilefacenet",
    "teacher": "mobilefacenet",
    "training_data": ["utkface", "celeba_wild", "pins"],
    "modifications": "test: random weights",
}


@pytest.fixture(scope="module")
def converted_mfn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from pruning import architectures
    from pruning.mobilefacenet import MobileFaceNet, MobileFaceNetSpec

    tmp = tmp_path_factory.mktemp("convert_mfn")
    bank = tiny_face_bank(tmp / "bank")
    torch.manual_seed(0)
    model = MobileFaceNet(MobileFaceNetSpec(hidden=(8,) * 15, head=16, embedding=8), normalize=False)
    faces = np.load(bank / "faces.npy")
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.from_numpy(to_input(np.stack([centre_crop(f) for f in faces[-64:]]))))
    architectures.save(model.eval(), tmp / "mfn", provenance=MFN_PROVENANCE, seed=0)
    args = ["--model", str(tmp / "mfn"), "--faces", str(bank), "--out", str(tmp / "out"), "--name", "mfn"]
    args += ["--calibration-faces", "48", "--compare-latency", str(tmp / "cmp.onnx"), "--quiet"]
    export_onnx(model, torch.zeros(1, 3, 112, 112), tmp / "cmp.onnx")  # stands in for the shipped model
    code = main(args)
    return tmp, {"code": code, **json.loads((tmp / "out" / "conversion.json").read_text())}


def test_mfn_converts_end_to_end_from_a_face_bank(converted_mfn: tuple[Path, dict]) -> None:
    _, report = converted_mfn
    assert report["spec"].startswith("mobilefacenet:8,")
    kinds = {(a["format"], a["precision"]) for a in report["artifacts"]}
    assert kinds == {("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")}
    for a in report["artifacts"]:
        assert a["parity_faces"] == 24 + 20  # every held-out face of both sets
        assert a["cosine_mean"] >= (0.9999 if a["precision"] == "fp32" else 0.9), a
    assert "ReLU6 pairs are left alone" in report["export_note"]
    assert "face bank" in report["quantization_faces"] and "48 training-split" in report["quantization_faces"]


def test_mfn_thresholds_count_pairs_per_set(converted_mfn: tuple[Path, dict]) -> None:
    tmp, report = converted_mfn
    pairs = report["heldout_pairs"]
    assert pairs["celeba_wild"] == {"faces": 24, "identities": 6, "genuine": 6 * 6, "impostor": 276 - 36}
    assert pairs["pins"] == {"faces": 20, "identities": 4, "genuine": 4 * 10, "impostor": 190 - 40}
    assert pairs["across sets"]["impostor"] == 24 * 20
    cal = json.loads((tmp / "out" / "mfn-int8.onnx.json").read_text())["calibration"]
    assert (cal["genuine_pairs"], cal["impostor_pairs"]) == (76, 240 + 150 + 480)
    assert "6 celeba_wild" in cal["source"] and "4 pins" in cal["source"]
    assert set(report["artifacts"][0]["heldout_verification_by_set"]) == {"celeba_wild", "pins"}


def test_mfn_card_carries_start_weights_licence_and_notice(converted_mfn: tuple[Path, dict]) -> None:
    tmp, report = converted_mfn
    card = load_card(tmp / "out" / "mfn-int8.tflite")
    assert card.licence.startswith("research use only") and "Apache-2.0" in card.licence
    start = card.training["start_weights"]
    assert start["licence"] == "Apache-2.0" and "a6cc9032a659b615f477833e1a70b5e7931bcccc" in start["source"]
    assert card.training["teacher"]["name"].startswith("MobileFaceNet")
    assert [d["name"] for d in card.training["data_terms"]] == ["utkface", "celeba_wild", "pins"]
    assert "research use only" in card.training["data_terms"][2]["terms"]
    notice = (tmp / "out" / card.training["notice_file"]).read_text()
    assert "Apache-2.0" in notice and "test: random weights" in notice
    assert card.embedding_size == 8 and card.training["spec"] == report["spec"]


def test_mfn_latency_beside_the_compared_model(converted_mfn: tuple[Path, dict]) -> None:
    _, report = converted_mfn
    (row,) = report["latency_compare"]
    assert row["file"].endswith("cmp.onnx") and row["p50_ms"] > 0 and row["threads"] == 1
    assert all(a["latency_ms_p50"] > 0 for a in report["artifacts"])
    assert "cmp.onnx` (comparison, same run)" in markdown(report)


def test_mfn_runtime_loads_the_int8_artifacts(converted_mfn: tuple[Path, dict]) -> None:
    tmp, _ = converted_mfn
    from pruning import architectures

    faces = np.stack([centre_crop(f) for f in np.load(tmp / "bank" / "faces.npy")[:6]])
    reference = architectures.load(tmp / "mfn")(torch.from_numpy(to_input(faces))).detach().numpy()
    for file in ("mfn-fp32.onnx", "mfn-int8.onnx", "mfn-int8.tflite"):
        emb = FaceEmbeddingModel(tmp / "out" / file).get_feat(faces)
        assert emb.shape == (6, 8)
        assert np.min(np.sum(emb * reference, axis=1)) > (0.9999 if "fp32" in file else 0.9)


def test_provenance_sources() -> None:
    from converters.provenance import LEGACY_DATA, ProvenanceFlags, resolve

    legacy = resolve({}, TINY)
    assert legacy.data_line() == LEGACY_DATA and legacy.start_weights is None and legacy.notice("x") is None
    with pytest.raises(SystemExit, match="no provenance"):
        resolve({}, "mobilefacenet:8|16|8")
    written = resolve({"provenance": MFN_PROVENANCE}, "mobilefacenet:8|16|8")
    assert written.start_weights is not None and written.start_weights.licence == "Apache-2.0"
    flags = ProvenanceFlags(training_data=("utkface", "mine"), data_terms={"mine": "owned by us"})
    mixed = resolve({"provenance": MFN_PROVENANCE}, "mobilefacenet:8|16|8", flags)
    assert [d.terms for d in mixed.training_data][1] == "owned by us"
    assert mixed.source == "CLI flags over weights JSON"
    with pytest.raises(SystemExit, match="no known terms"):
        resolve({}, TINY, ProvenanceFlags(training_data=("unknown_set",)))


def test_legacy_folder_is_not_a_face_bank(converted: tuple[Path, dict]) -> None:
    from converters.faces import is_face_bank

    tmp, report = converted
    assert not is_face_bank(tmp / "faces")
    assert "prepared faces" in report["quantization_faces"]
    assert "Before export, `converters/equalize.py`" in report["export_note"]
    assert report["heldout_pairs"] == {"celeba_wild": {"faces": 100, "identities": 20, "genuine": 200,
                                                       "impostor": 4750}}  # fmt: skip


def test_mobilefacenet_equalization_keeps_the_function() -> None:
    from converters.equalize import equalize_mobilefacenet
    from pruning.mobilefacenet import MobileFaceNet, MobileFaceNetSpec

    torch.manual_seed(1)
    model = MobileFaceNet(MobileFaceNetSpec(hidden=(8,) * 15, head=16, embedding=8), normalize=False)
    x = torch.randn(6, 3, 112, 112)
    model.train()
    with torch.no_grad():
        model(x)  # BatchNorm statistics of a batch, so channels differ
        for bn in (model.dw_conv.bn1, model.dw_conv.bn2, model.gdconv.bn):
            bn.weight.mul_(torch.rand(bn.num_features) * 8 + 0.1)  # unbalanced channel ranges
    model.eval()
    before = model(x).detach()
    gamma = model.dw_conv.bn1.weight.detach().clone()
    equalize_mobilefacenet(model, x.numpy())
    assert not torch.allclose(gamma, model.dw_conv.bn1.weight)
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-4, atol=1e-4)
