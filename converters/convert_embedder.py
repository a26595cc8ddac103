"""Turn a trained SqueezerFaceNet (spec + safetensors) into the deployable artifacts, prove them, card them.

    python -m converters.convert_embedder --model pruning/weights/taylor-980k \\
        --faces runs/calib_faces --lfw ../shared/data/lfw --out build/squeezerfacenet-980k \\
        --ship sdk/squeezerface/models

Artifacts: ONNX fp32 (dynamic batch), ONNX int8 (onnxruntime static QDQ), TFLite fp32 (NHWC) and TFLite
int8 (ai-edge-quantizer, full integer). Faces come from a folder made by `pruning.data`
(utkface + celeba_wild, never LFW):

* quantization calibration: aligned faces of the *training* split (a seeded sample);
* parity: every face of the *held-out* celeba_wild identities, through each artifact and through torch;
* thresholds: all genuine and impostor pairs among those held-out faces, per artifact (int8 shifts scores);
* LFW View 2 accuracy: reported per artifact (never used to choose anything).

The conversion fails (exit 1, report still written) when parity or the int8-vs-fp32 LFW gap misses the
gates in `Gates`. Each artifact gets a JSON card beside it (`squeezerface.modelcard`), and the run writes
`conversion.json` + `conversion.md` with size, ops, parity, accuracy and single-thread latency per artifact.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from converters.equalize import equalize
from converters.onnx_export import export_onnx, onnx_ops, quantize_onnx
from converters.parity import embed_with, input_spec_for, measure_latency, parity
from converters.tflite_export import export_tflite, quantize_tflite, tflite_ops
from pruning.evaluate import AlignedPairs, aligned_lfw
from pruning.faceset import FaceSet, centre_crop
from pruning.model import count_mflops, count_params, load_model, spec_of
from pruning.train import embed_faces
from squeezerface._progress import progress
from squeezerface.backends import open_backend
from squeezerface.imageio import sha256_file
from squeezerface.modelcard import (
    RESEARCH_ONLY,
    Calibration,
    InputSpec,
    ModelCard,
    calibrate,
    card_path,
    save_card,
)
from squeezerface.thresholds import all_pairs

SHIPPED = ("fp32.onnx", "int8.onnx", "int8.tflite")
KEEP_FLOAT: tuple[str, ...] = ()
"""Modules left in float in the int8 artifacts. None: after `equalize`, the all-int8 model matches the float
one on held-out celeba_wild pairs (see the held-out AUC column of benchmarks/results/conversion.md), so
nothing needs the slower mixed-precision path. Chosen on those held-out pairs, never on LFW."""
"""Artifacts copied into the runtime package by --ship (TFLite fp32 is built and checked, not shipped)."""


@dataclass(frozen=True)
class Gates:
    fp32_cosine_mean: float = 0.9999
    int8_cosine_mean: float = 0.995
    int8_cosine_min: float = 0.98
    int8_lfw_drop_pp: float = 0.2  # int8 LFW accuracy may be at most this far below fp32 of its format


@dataclass(frozen=True)
class ConversionFaces:
    """Aligned 112x112 uint8 RGB faces for the three jobs of a conversion."""

    calibration: np.ndarray  # training split: quantization ranges
    heldout: np.ndarray  # held-out identities: parity and threshold calibration
    heldout_identity: np.ndarray
    calibration_source: str
    heldout_source: str


def faces_from_prepared(folder: Path, calibration: int = 512, seed: int = 0) -> ConversionFaces:
    """Calibration faces from the training split, parity/threshold faces from the held-out identities."""
    fs = FaceSet.load(folder)
    train, val = fs.indices(0), fs.indices(1)
    if len(val) == 0:
        raise SystemExit(f"{folder}: no held-out identities (split 1); prepare it with --val-identities > 0")
    pick = np.sort(np.random.default_rng(seed).permutation(train)[:calibration])
    crop = lambda idx: np.stack([centre_crop(fs.faces[i]) for i in idx])  # noqa: E731
    ids = len(np.unique(fs.identity[val]))
    return ConversionFaces(
        calibration=crop(pick),
        heldout=crop(val),
        heldout_identity=fs.identity[val].copy(),
        calibration_source=f"{len(pick)} training-split faces (utkface + celeba_wild) in {folder}",
        heldout_source=f"{len(val)} faces of {ids} held-out celeba_wild identities in {folder}",
    )


def heldout_verification(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Verification on all pairs of the held-out identities: the figure quantization choices are made on."""
    from squeezerface.metrics import auc, eer, roc_curve, tar_at_far

    return {
        "auc": auc(roc_curve(scores, labels)),
        "eer": eer(scores, labels).eer,
        "tar_at_far_1e-3": tar_at_far(scores, labels, 1e-3).tar,
    }


def lfw_accuracy(embeddings: np.ndarray, lfw: AlignedPairs) -> dict:
    from squeezerface.evaluation import evaluation_folds, score_pairs
    from squeezerface.metrics import verification_report

    scores = score_pairs(lfw.pairs, dict(zip(lfw.paths, embeddings, strict=True)))
    r = verification_report(scores, lfw.pairs.labels(), evaluation_folds(lfw.pairs)).to_dict()
    return {
        "accuracy_mean": r["accuracy_mean"],
        "accuracy_std": r["accuracy_std"],
        "eer": r["eer"],
        "tar_at_far_1e-3": r["tar_at_far"]["1e-03"]["tar"],
        "pairs": len(scores),
        "no_face_fallback": lfw.no_face,
    }


@dataclass
class ArtifactResult:
    file: str
    format: str
    precision: str
    size_bytes: int
    sha256: str
    ops: list[str]
    parity: dict
    lfw: dict | None
    latency: dict
    calibration: Calibration
    heldout: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "precision": self.precision,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "cosine_mean": self.parity["cosine_mean"],
            "cosine_min": self.parity["cosine_min"],
            "max_abs_diff": self.parity["max_abs_diff"],
            "parity_faces": self.parity["faces"],
            "lfw_accuracy_mean": None if self.lfw is None else self.lfw["accuracy_mean"],
            "lfw_accuracy_std": None if self.lfw is None else self.lfw["accuracy_std"],
            "lfw_tar_at_far_1e-3": None if self.lfw is None else self.lfw["tar_at_far_1e-3"],
            "latency_ms_p50": self.latency["p50_ms"],
            "latency_ms_p90": self.latency["p90_ms"],
            "ops": self.ops,
            "thresholds": {p.name: p.threshold for p in self.calibration.points},
            "heldout_verification": self.heldout,
            "passed": not self.failures,
            "failures": self.failures,
        }


def build_artifacts(
    model: torch.nn.Module, name: str, out: Path, calibration_faces: np.ndarray
) -> list[Path]:
    """The four files: ONNX fp32/int8, TFLite fp32/int8 (calibrated on `calibration_faces`)."""
    base = InputSpec()
    example = torch.from_numpy(base.prepare(calibration_faces[:2]))
    onnx32 = export_onnx(model, example, out / f"{name}-fp32.onnx", output_names=("embedding",))
    batches = [base.prepare(calibration_faces[i : i + 32]) for i in range(0, len(calibration_faces), 32)]
    onnx8 = quantize_onnx(onnx32, out / f"{name}-int8.onnx", batches, keep_float=KEEP_FLOAT)
    tfl32 = export_tflite(model, example[:1], out / f"{name}-fp32.tflite")
    nhwc = InputSpec(layout="NHWC")
    tfl8 = quantize_tflite(
        tfl32,
        out / f"{name}-int8.tflite",
        [nhwc.prepare(calibration_faces[i : i + 32]) for i in range(0, len(calibration_faces), 32)],
        keep_float=KEEP_FLOAT,
    )
    return [onnx32, onnx8, tfl32, tfl8]


def check_artifact(
    path: Path,
    reference: np.ndarray,
    faces: ConversionFaces,
    lfw: AlignedPairs | None,
    gates: Gates,
) -> ArtifactResult:
    """Parity, LFW, thresholds, latency, ops of one artifact; `failures` lists the gates it missed."""
    backend = open_backend(path, threads=1)
    spec = input_spec_for(backend)
    emb = embed_with(backend, faces.heldout, spec)
    par = parity(reference, emb)
    precision = "int8" if "int8" in path.name else "fp32"
    fmt = path.suffix.lstrip(".")
    failures = []
    if precision == "fp32" and par.cosine_mean < gates.fp32_cosine_mean:
        failures.append(f"fp32 cosine mean {par.cosine_mean:.6f} < {gates.fp32_cosine_mean}")
    if precision == "int8":
        if par.cosine_mean < gates.int8_cosine_mean:
            failures.append(f"int8 cosine mean {par.cosine_mean:.5f} < {gates.int8_cosine_mean}")
        if par.cosine_min < gates.int8_cosine_min:
            failures.append(f"int8 cosine min {par.cosine_min:.5f} < {gates.int8_cosine_min}")
    lfw_result = None
    if lfw is not None:
        lfw_result = lfw_accuracy(embed_with(backend, lfw.faces, spec), lfw)
    scores, labels = all_pairs(emb, faces.heldout_identity)
    cal = calibrate(scores, labels, source=f"all pairs of {faces.heldout_source}")
    heldout = heldout_verification(scores, labels)
    return ArtifactResult(
        file=path.name,
        format=fmt,
        precision=precision,
        size_bytes=path.stat().st_size,
        sha256=sha256_file(path),
        ops=onnx_ops(path) if fmt == "onnx" else tflite_ops(path),
        parity=par.to_dict(),
        lfw=lfw_result,
        latency=measure_latency(path, faces.heldout[0]).to_dict(),
        calibration=cal,
        heldout=heldout,
        failures=failures,
    )


def int8_lfw_gate(results: list[ArtifactResult], gates: Gates) -> None:
    """int8 LFW accuracy within `int8_lfw_drop_pp` of the fp32 artifact of the same format."""
    for r in results:
        if r.precision != "int8" or r.lfw is None:
            continue
        fp32 = next((f for f in results if f.format == r.format and f.precision == "fp32"), None)
        if fp32 is None or fp32.lfw is None:
            continue
        drop = 100 * (fp32.lfw["accuracy_mean"] - r.lfw["accuracy_mean"])
        if drop > gates.int8_lfw_drop_pp:
            r.failures.append(f"int8 LFW {drop:.2f} pp below fp32 (allowed {gates.int8_lfw_drop_pp})")


def write_cards(
    results: list[ArtifactResult],
    out: Path,
    name: str,
    version: str,
    model: torch.nn.Module,
    training: dict,
    torch_lfw: dict | None,
) -> None:
    accuracy = []
    if torch_lfw is not None:
        accuracy.append(
            {"benchmark": "LFW View 2 (10-fold)", "artifact": "torch fp32 (reference)", **torch_lfw}
        )
    accuracy += [
        {"benchmark": "LFW View 2 (10-fold)", "artifact": r.file, **r.lfw}
        for r in results
        if r.lfw is not None
    ]
    for r in results:
        layout = "NHWC" if r.format == "tflite" else "NCHW"
        card = ModelCard(
            name=name,
            version=version,
            file=r.file,
            format=r.format,
            precision=r.precision,
            sha256=r.sha256,
            size_bytes=r.size_bytes,
            params=count_params(model),
            mflops=round(count_mflops(model), 2),
            embedding_size=int(model.spec.embedding),
            input=InputSpec(layout=layout),
            licence=RESEARCH_ONLY,
            training=training,
            accuracy=tuple(accuracy),
            parity={"reference": "torch fp32", **r.parity},
            ops=tuple(r.ops),
            calibration=r.calibration,
        )
        save_card(card, card_path(out / r.file))


def _pct(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def markdown(report: dict) -> str:
    lines = [
        f"# Conversion of `{report['model']}` ({report['params']:,} params, {report['mflops']} MMACs)",
        "",
        f"Made by `{report['command']}` in {report['minutes']} min. "
        f"Parity over {report['parity_faces']} held-out faces against torch fp32; LFW View 2 10-fold accuracy"
        " (faces aligned by the dlib teacher's landmarks, evaluation only); latency: single thread, batch 1, "
        f"median of 200 runs on this machine ({report['machine']}).",
        "",
        "| artifact | size KB | cos mean | cos min | max abs diff | held-out AUC | LFW acc. % "
        "| LFW TAR@1e-3 % | p50 ms | thr @FAR 1e-3 | gates |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if report.get("torch_lfw"):
        t = report["torch_lfw"]
        lines.append(
            f"| torch fp32 (reference) | | | | | | {_pct(t['accuracy_mean'], t['accuracy_std'])} "
            f"| {_pct(t['tar_at_far_1e-3'])} | | | |"
        )
    for a in report["artifacts"]:
        thr = a["thresholds"].get("far_1e-03")
        gates = "pass" if a["passed"] else "; ".join(a["failures"])
        lfw = _pct(a["lfw_accuracy_mean"], a["lfw_accuracy_std"])
        lines.append(
            f"| `{a['file']}` | {a['size_bytes'] / 1024:.0f} | {a['cosine_mean']:.5f} "
            f"| {a['cosine_min']:.4f} | {a['max_abs_diff']:.2e} "
            f"| {a['heldout_verification']['auc']:.4f} | {lfw} "
            f"| {_pct(a['lfw_tar_at_far_1e-3'])} | {a['latency_ms_p50']:.2f} "
            f"| {'n/a' if thr is None else f'{thr:.3f}'} | {gates} |"
        )
    lines += ["", "Operators:", ""]
    lines += [f"- `{a['file']}`: {', '.join(a['ops'])}" for a in report["artifacts"]]
    lines += [
        "",
        f"Thresholds: {report['threshold_source']}. Held-out AUC: verification over those same pairs, the "
        "figure quantization choices were made on. Before export, `converters/equalize.py` balanced the "
        "per-channel ranges between consecutive layers (the float function is unchanged).",
        "",
    ]
    return "\n".join(lines)


def convert(
    model_stem: Path,
    out: Path,
    faces: ConversionFaces,
    lfw: AlignedPairs | None,
    name: str,
    version: str,
    gates: Gates = Gates(),
    command: str = "",
    show_progress: bool = True,
) -> dict:
    """Build, check and card every artifact; returns the report (its `passed` says if every gate held)."""
    start = time.monotonic()
    torch.set_num_threads(1)
    model = load_model(model_stem)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        reference = embed_faces(model, faces.heldout)
        torch_lfw = lfw_accuracy(embed_faces(model, lfw.faces), lfw) if lfw is not None else None
    raw = equalize(load_model(model_stem, normalize=False), InputSpec().prepare(faces.calibration[:256]))
    paths = build_artifacts(raw, name, out, faces.calibration)
    results = [
        check_artifact(p, reference, faces, lfw, gates)
        for p in progress(paths, len(paths), "checking artifacts", show_progress)
    ]
    int8_lfw_gate(results, gates)
    meta = json.loads(model_stem.with_suffix(".json").read_text())
    training = {
        "weights": str(model_stem),
        "spec": spec_of(model).to_text(),
        "data": "utkface + celeba_wild (distilled from the dlib ResNet teacher); never LFW",
        "licence": RESEARCH_ONLY,
        **{k: meta[k] for k in ("criterion", "seed", "val_accuracy") if k in meta},
    }
    write_cards(results, out, name, version, model, training, torch_lfw)
    import platform

    cal = results[0].calibration
    report = {
        "model": name,
        "version": version,
        "weights": str(model_stem),
        "params": count_params(model),
        "mflops": round(count_mflops(model), 2),
        "command": command,
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "gates": asdict(gates),
        "quantization_faces": faces.calibration_source,
        "parity_faces_source": faces.heldout_source,
        "parity_faces": len(faces.heldout),
        "threshold_source": f"{cal.source} ({cal.genuine_pairs:,} genuine / {cal.impostor_pairs:,} impostor)",
        "torch_lfw": torch_lfw,
        "artifacts": [r.summary() for r in results],
        "passed": all(not r.failures for r in results),
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    return report


def ship(out: Path, name: str, models_dir: Path) -> list[Path]:
    """Copy the shipped artifacts and their cards into the runtime package's models folder."""
    models_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for suffix in SHIPPED:
        src = out / f"{name}-{suffix}"
        for f in (src, card_path(src)):
            shutil.copyfile(f, models_dir / f.name)
            copied.append(models_dir / f.name)
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters.convert_embedder",
        description=__doc__.split("\n\n")[0]
        + ": ONNX fp32/int8 and TFLite fp32/int8, parity against torch, LFW accuracy, thresholds "
        "calibrated on held-out celeba_wild identities, model cards. Exit 1 when a gate fails.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="weights stem: STEM.json + STEM.safetensors"
    )
    parser.add_argument(
        "--faces",
        type=Path,
        default=Path("runs/calib_faces"),
        help="folder made by pruning.data",
    )
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder (images/, pairs.txt) to report on")
    parser.add_argument("--out", type=Path, required=True, help="output folder for artifacts and cards")
    parser.add_argument("--name", default=None, help="model name (default: squeezerfacenet-<stem>)")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--calibration-faces", type=int, default=512, help="training-split faces for int8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=None, help="write REPORT.json + REPORT.md here")
    parser.add_argument(
        "--ship",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"when every gate holds, copy the shipped artifacts ({', '.join(SHIPPED)}) and cards here "
        "(the runtime package's models folder: sdk/squeezerface/models)",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    name = args.name or f"squeezerfacenet-{args.model.name.removeprefix('taylor-')}"
    faces = faces_from_prepared(args.faces, args.calibration_faces, args.seed)
    lfw = aligned_lfw(args.lfw, show_progress=not args.quiet) if args.lfw else None
    command = "python -m converters.convert_embedder " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    report = convert(
        args.model, args.out, faces, lfw, name, args.version, command=command, show_progress=not args.quiet
    )
    report_stem = args.report or args.out / "conversion"
    report_stem.parent.mkdir(parents=True, exist_ok=True)
    report_stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    report_stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    if not report["passed"]:
        print("conversion FAILED its gates; artifacts not shipped", file=sys.stderr)
        return 1
    if args.ship:
        for p in ship(args.out, name, args.ship):
            print(f"shipped {p}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
