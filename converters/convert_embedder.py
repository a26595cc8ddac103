"""Turn a trained embedder (spec + safetensors, any architecture of `pruning.architectures`) into the
deployable artifacts, prove them, card them.

    python -m converters.convert_embedder --model runs/prune_mobilefacenet_taylor/step3 \\
        --faces runs/facebank --lfw ../shared/data/lfw --out build/mobilefacenet-900k \\
        --compare-latency sdk/squeezerface/models/squeezerfacenet-980k-int8.onnx

Artifacts: ONNX fp32 (dynamic batch), ONNX int8 (onnxruntime static QDQ), TFLite fp32 (NHWC) and TFLite
int8 (ai-edge-quantizer, full integer). Faces come from a face bank (`pruning.facebank`: utkface +
celeba_wild + Pins) or from the first embedder's `pruning.data` folder (`converters.faces`), never LFW:

* quantization calibration: aligned faces of the *training* split (a seeded sample);
* parity: every face of the *held-out* identities (celeba_wild and Pins), through each artifact and torch;
* thresholds: all genuine and impostor pairs among those held-out faces, per artifact (int8 shifts scores);
* LFW View 2 accuracy: reported per artifact (never used to choose anything), on faces aligned by the
  runtime's own detector (`--lfw-align runtime`, what `squeezerface verify` sees) or by the dlib teacher's
  landmarks (`teacher`, the first embedder's convention).

The conversion fails (exit 1, report still written) when parity or the int8-vs-fp32 LFW gap misses the
gates in `Gates`. Each artifact gets a JSON card beside it (`squeezerface.modelcard`) whose licence and
training sections come from `converters.provenance`; derived weights also get a NOTICE file. The run writes
`conversion.json` + `conversion.md` with size, ops, parity, accuracy and single-thread latency per artifact,
beside the latency of any `--compare-latency` file measured in the same interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from converters.faces import ConversionFaces, load_faces, pair_counts
from converters.onnx_export import export_onnx, onnx_ops, quantize_onnx
from converters.parity import embed_with, input_spec_for, measure_latencies, parity
from converters.provenance import Provenance, ProvenanceFlags, resolve
from converters.tflite_export import export_tflite, quantize_tflite, tflite_ops
from pruning import architectures
from pruning.evaluate import AlignedPairs, aligned_lfw, runtime_aligned_lfw
from pruning.model import SqueezerFaceNet, count_mflops, count_params
from pruning.train import embed_faces
from squeezerface._progress import progress
from squeezerface.backends import open_backend
from squeezerface.imageio import sha256_file
from squeezerface.modelcard import Calibration, InputSpec, ModelCard, calibrate, card_path, save_card
from squeezerface.thresholds import all_pairs

__all__ = ["all_pairs", "faces_from_prepared"]  # re-exported for callers of the first converter

SHIPPED = ("fp32.onnx", "int8.onnx", "int8.tflite")
"""Artifacts copied into the runtime package by --ship (TFLite fp32 is built and checked, not shipped)."""
NOTICE_SUFFIX = "NOTICE.txt"

KEEP_FLOAT: dict[str, tuple[str, ...]] = {
    "squeezerfacenet": (),
    "mobilefacenet": ("conv2", "gdconv", "conv3", "bn"),
}
"""Top-level modules left in float in the int8 artifacts, per architecture (`--keep-float` overrides).
SqueezerFaceNet: none; after `equalize`, the all-int8 model matches the float one on held-out celeba_wild
pairs (benchmarks/results/conversion.md). MobileFaceNet: the head from the 1x1 conv to 512 channels on
(conv2, GDC, embedding conv + BN: 1.4 % of its MACs). On the unchanged public weights (benchmarks/RUNS.md,
2026-12-05; ONNX, 300 held-out faces) cosine to fp32 was 0.9932 mean / 0.977 min all-int8, 0.9938 / 0.981
with GDC + embedding in float, and 0.9969 / 0.993 with conv2 in float too; conv1 alone or the equalized
pairs did not help. Chosen on held-out pairs, never on LFW."""

LFW_ALIGN = {
    "runtime": "faces found and aligned by the runtime's own detector + refiner, as `squeezerface verify` "
    "sees them (a centred template box where none is found)",
    "teacher": "faces aligned by the dlib teacher's landmarks",
}

faces_from_prepared = load_faces


@dataclass(frozen=True)
class Gates:
    fp32_cosine_mean: float = 0.9999
    int8_cosine_mean: float = 0.995
    int8_cosine_min: float = 0.98
    int8_lfw_drop_pp: float = 0.2  # int8 LFW accuracy may be at most this far below fp32 of its format


@dataclass(frozen=True)
class Options:
    """What a conversion may vary beyond model, faces and LFW (CLI flags)."""

    keep_float: tuple[str, ...] | None = None  # None: KEEP_FLOAT of the architecture
    provenance: ProvenanceFlags = field(default_factory=ProvenanceFlags)
    compare_latency: tuple[Path, ...] = ()
    lfw_alignment: str = "runtime"


def heldout_verification(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Verification on all pairs of the held-out identities: the figure quantization choices are made on."""
    from squeezerface.metrics import auc, eer, roc_curve, tar_at_far

    if labels.all() or not labels.any():
        return {}
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
    heldout_by_set: dict = field(default_factory=dict)

    def summary(self) -> dict:
        lfw = self.lfw or {}
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
            "lfw_accuracy_mean": lfw.get("accuracy_mean"),
            "lfw_accuracy_std": lfw.get("accuracy_std"),
            "lfw_tar_at_far_1e-3": lfw.get("tar_at_far_1e-3"),
            "latency_ms_p50": self.latency["p50_ms"],
            "latency_ms_p90": self.latency["p90_ms"],
            "ops": self.ops,
            "thresholds": {p.name: p.threshold for p in self.calibration.points},
            "heldout_verification": self.heldout,
            "heldout_verification_by_set": self.heldout_by_set,
            "passed": not self.failures,
            "failures": self.failures,
        }


def export_ready(model_stem: Path, calibration: np.ndarray) -> tuple[torch.nn.Module, str]:
    """The network to export (raw embeddings: the runtime normalises) and what was done to it first.

    Cross-layer equalization only where a per-channel scale commutes with what lies between two layers:
    all of SqueezerFaceNet (ReLU, max-pooling); in MobileFaceNet only the depthwise-separable block's two
    ReLU pairs and GDC -> embedding conv (linear), since ReLU6 clips at a fixed 6 and would change."""
    from converters.equalize import equalize, equalize_mobilefacenet
    from pruning.mobilefacenet import MobileFaceNet

    raw = architectures.load(model_stem, normalize=False)
    x = InputSpec().prepare(calibration[:256])
    if isinstance(raw, SqueezerFaceNet):
        equalize(raw, x)
        return raw, (
            "Before export, `converters/equalize.py` balanced the per-channel ranges between consecutive "
            "layers (the float function is unchanged)."
        )
    if isinstance(raw, MobileFaceNet):
        equalize_mobilefacenet(raw, x)
        return raw, (
            "Before export, `converters/equalize.py` balanced the per-channel ranges of MobileFaceNet's "
            "three pairs where that is exact (depthwise-separable block: depthwise BN -> ReLU -> pointwise, "
            "pointwise BN -> ReLU -> first expansion; GDC -> embedding conv); its ReLU6 pairs are left "
            "alone (ReLU6 clips at a fixed 6, so a per-channel scale would change the function)."
        )
    return raw, f"No cross-layer equalization for {type(raw).__name__}."


def build_artifacts(
    model: torch.nn.Module,
    name: str,
    out: Path,
    calibration_faces: np.ndarray,
    keep_float: tuple[str, ...] = (),
) -> list[Path]:
    """The four files: ONNX fp32/int8, TFLite fp32/int8 (calibrated on `calibration_faces`)."""
    base = InputSpec()
    example = torch.from_numpy(base.prepare(calibration_faces[:2]))
    onnx32 = export_onnx(model, example, out / f"{name}-fp32.onnx", output_names=("embedding",))
    batches = [base.prepare(calibration_faces[i : i + 32]) for i in range(0, len(calibration_faces), 32)]
    onnx8 = quantize_onnx(onnx32, out / f"{name}-int8.onnx", batches, keep_float=keep_float)
    tfl32 = export_tflite(model, example[:1], out / f"{name}-fp32.tflite")
    nhwc = InputSpec(layout="NHWC")
    tfl8 = quantize_tflite(
        tfl32,
        out / f"{name}-int8.tflite",
        [nhwc.prepare(calibration_faces[i : i + 32]) for i in range(0, len(calibration_faces), 32)],
        keep_float=keep_float,
    )
    return [onnx32, onnx8, tfl32, tfl8]


def parity_failures(precision: str, par: dict, gates: Gates) -> list[str]:
    failures = []
    if precision == "fp32" and par["cosine_mean"] < gates.fp32_cosine_mean:
        failures.append(f"fp32 cosine mean {par['cosine_mean']:.6f} < {gates.fp32_cosine_mean}")
    if precision == "int8":
        if par["cosine_mean"] < gates.int8_cosine_mean:
            failures.append(f"int8 cosine mean {par['cosine_mean']:.5f} < {gates.int8_cosine_mean}")
        if par["cosine_min"] < gates.int8_cosine_min:
            failures.append(f"int8 cosine min {par['cosine_min']:.5f} < {gates.int8_cosine_min}")
    return failures


def by_set(emb: np.ndarray, faces: ConversionFaces) -> dict:
    """Held-out verification within each data set (pairs of one set only), when there are several."""
    sets = np.unique(faces.heldout_set)
    if len(sets) < 2:
        return {}
    out = {}
    for s in sets:
        keep = faces.heldout_set == s
        out[str(s)] = heldout_verification(*all_pairs(emb[keep], faces.heldout_identity[keep]))
    return out


def check_artifact(
    path: Path,
    reference: np.ndarray,
    faces: ConversionFaces,
    lfw: AlignedPairs | None,
    gates: Gates,
) -> ArtifactResult:
    """Parity, LFW, thresholds and ops of one artifact (latency comes later, measured for all files
    together); `failures` lists the gates it missed."""
    backend = open_backend(path, threads=1)
    spec = input_spec_for(backend)
    emb = embed_with(backend, faces.heldout, spec)
    par = parity(reference, emb).to_dict()
    precision = "int8" if "int8" in path.name else "fp32"
    fmt = path.suffix.lstrip(".")
    lfw_result = lfw_accuracy(embed_with(backend, lfw.faces, spec), lfw) if lfw is not None else None
    scores, labels = all_pairs(emb, faces.heldout_identity)
    return ArtifactResult(
        file=path.name,
        format=fmt,
        precision=precision,
        size_bytes=path.stat().st_size,
        sha256=sha256_file(path),
        ops=onnx_ops(path) if fmt == "onnx" else tflite_ops(path),
        parity=par,
        lfw=lfw_result,
        latency={},
        calibration=calibrate(scores, labels, source=f"all pairs of {faces.heldout_source}"),
        heldout=heldout_verification(scores, labels),
        failures=parity_failures(precision, par, gates),
        heldout_by_set=by_set(emb, faces),
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


def add_latencies(
    results: list[ArtifactResult], out: Path, face: np.ndarray, compare: Sequence[Path]
) -> list[dict]:
    """Every artifact's 1-thread latency, and each `compare` file's (the model it would replace), measured
    in the same interleaved rounds; returns the comparison rows."""
    paths = [out / r.file for r in results] + [Path(p) for p in compare]
    timed = measure_latencies(paths, face)
    for r in results:
        r.latency = timed[str(out / r.file)].to_dict()
    return [{"file": str(p), **timed[str(Path(p))].to_dict()} for p in compare]


def write_cards(
    results: list[ArtifactResult],
    out: Path,
    name: str,
    version: str,
    model: torch.nn.Module,
    training: dict,
    torch_lfw: dict | None,
    licence: str,
    lfw_alignment: str = "runtime",
) -> None:
    """One card per artifact; the accuracy rows of every artifact go on each card (int8 beside fp32)."""
    row = {"benchmark": "LFW View 2 (10-fold)", "alignment": lfw_alignment}
    accuracy = [{**row, "artifact": "torch fp32 (reference)", **torch_lfw}] if torch_lfw is not None else []
    accuracy += [{**row, "artifact": r.file, **r.lfw} for r in results if r.lfw is not None]
    for r in results:
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
            input=InputSpec(layout="NHWC" if r.format == "tflite" else "NCHW"),
            licence=licence,
            training=training,
            accuracy=tuple(accuracy),
            parity={"reference": "torch fp32", **r.parity},
            ops=tuple(r.ops),
            calibration=r.calibration,
        )
        save_card(card, card_path(out / r.file))


def card_training(model_stem: Path, model: torch.nn.Module, prov: Provenance, notice: str | None) -> dict:
    """The card's training section: weights, spec, the trainer's facts, and the provenance."""
    meta = json.loads(model_stem.with_suffix(".json").read_text())
    facts = ("criterion", "seed", "val_accuracy", "target", "finetune_steps", "held_out")
    return {
        "weights": str(model_stem),
        "spec": architectures.spec_text_of(model),
        **prov.card_training(),
        "licence": prov.licence(),
        **({"notice_file": notice} if notice else {}),
        **{k: meta[k] for k in facts if k in meta},
    }


def write_notice(prov: Provenance, out: Path, name: str) -> str | None:
    """`<name>-NOTICE.txt` beside the artifacts when the model derives from licensed weights (Apache-2.0
    asks that a copy of the licence and a statement of changes go with the derived work)."""
    text = prov.notice(name)
    if text is None:
        return None
    path = out / f"{name}-{NOTICE_SUFFIX}"
    path.write_text(text)
    return path.name


def _pct(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def _artifact_row(a: dict) -> str:
    thr = a["thresholds"].get("far_1e-03")
    gates = "pass" if a["passed"] else "; ".join(a["failures"])
    auc = a["heldout_verification"].get("auc")
    return (
        f"| `{a['file']}` | {a['size_bytes'] / 1024:.0f} | {a['cosine_mean']:.5f} "
        f"| {a['cosine_min']:.4f} | {a['max_abs_diff']:.2e} | {'n/a' if auc is None else f'{auc:.4f}'} "
        f"| {_pct(a['lfw_accuracy_mean'], a['lfw_accuracy_std'])} | {_pct(a['lfw_tar_at_far_1e-3'])} "
        f"| {a['latency_ms_p50']:.2f} | {'n/a' if thr is None else f'{thr:.3f}'} | {gates} |"
    )


def _pairs_lines(report: dict) -> list[str]:
    lines = [
        "",
        "Threshold pairs per held-out data set (all pairs of its faces; impostors also across sets):",
        "",
    ]
    for s, c in report.get("heldout_pairs", {}).items():
        who = f"{c['faces']:,} faces of {c['identities']} identities, " if c["faces"] else ""
        lines.append(f"- {s}: {who}{c['genuine']:,} genuine / {c['impostor']:,} impostor pairs")
    by_set = [(a["file"], a.get("heldout_verification_by_set") or {}) for a in report["artifacts"]]
    if any(v for _, v in by_set):
        lines += ["", "| artifact | " + " | ".join(f"{s} AUC | {s} TAR@1e-3 %" for s in by_set[0][1]) + " |"]
        lines.append("| --- " * (1 + 2 * len(by_set[0][1])) + "|")
        for file, sets in by_set:
            cells = " | ".join(
                f"{v.get('auc', float('nan')):.4f} | {_pct(v.get('tar_at_far_1e-3'))}" for v in sets.values()
            )
            lines.append(f"| `{file}` | {cells} |")
    return lines


def markdown(report: dict) -> str:
    align = LFW_ALIGN.get(report.get("lfw_alignment", "teacher"), "")
    lines = [
        f"# Conversion of `{report['model']}` ({report['params']:,} params, {report['mflops']} MMACs)",
        "",
        f"Made by `{report['command']}` in {report['minutes']} min. "
        f"Parity over {report['parity_faces']} held-out faces against torch fp32; LFW View 2 10-fold accuracy"
        f" ({align}; evaluation only); latency: single thread, batch 1, median of 200 runs interleaved with "
        f"every other file of the table, on this machine ({report['machine']}).",
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
    lines += [_artifact_row(a) for a in report["artifacts"]]
    lines += [
        f"| `{c['file']}` (comparison, same run) | | | | | | | | {c['p50_ms']:.2f} | | |"
        for c in report.get("latency_compare", [])
    ]
    lines += _pairs_lines(report)
    lines += ["", "Operators:", ""]
    lines += [f"- `{a['file']}`: {', '.join(a['ops'])}" for a in report["artifacts"]]
    kept = report.get("keep_float") or []
    lines += [
        "",
        f"Thresholds: {report['threshold_source']}. Held-out AUC: verification over those same pairs, the "
        f"figure quantization choices were made on. {report.get('export_note', '')} "
        + (f"Left in float in the int8 artifacts: {', '.join(kept)}." if kept else "Every layer in int8."),
        "",
    ]
    return "\n".join(lines)


def references(model: torch.nn.Module, faces: ConversionFaces, lfw: AlignedPairs | None) -> tuple:
    """torch fp32 embeddings of the held-out faces (parity's reference) and torch's LFW figure."""
    with torch.no_grad():
        reference = embed_faces(model, faces.heldout)
        torch_lfw = lfw_accuracy(embed_faces(model, lfw.faces), lfw) if lfw is not None else None
    return reference, torch_lfw


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
    options: Options = Options(),
) -> dict:
    """Build, check and card every artifact; returns the report (its `passed` says if every gate held)."""
    start = time.monotonic()
    torch.set_num_threads(1)
    model = architectures.load(model_stem)
    spec_text = architectures.spec_text_of(model)
    prov = resolve(json.loads(model_stem.with_suffix(".json").read_text()), spec_text, options.provenance)
    keep = (
        options.keep_float if options.keep_float is not None else KEEP_FLOAT.get(spec_text.split(":")[0], ())
    )
    out.mkdir(parents=True, exist_ok=True)
    reference, torch_lfw = references(model, faces, lfw)
    raw, export_note = export_ready(model_stem, faces.calibration)
    paths = build_artifacts(raw, name, out, faces.calibration, keep)
    results = [
        check_artifact(p, reference, faces, lfw, gates)
        for p in progress(paths, len(paths), "checking artifacts", show_progress)
    ]
    int8_lfw_gate(results, gates)
    compare = add_latencies(results, out, faces.heldout[0], options.compare_latency)
    notice = write_notice(prov, out, name)
    training = card_training(model_stem, model, prov, notice)
    write_cards(
        results, out, name, version, model, training, torch_lfw, prov.licence(), options.lfw_alignment
    )
    cal = results[0].calibration
    return {
        "model": name,
        "version": version,
        "weights": str(model_stem),
        "spec": spec_text,
        "params": count_params(model),
        "mflops": round(count_mflops(model), 2),
        "command": command,
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "gates": asdict(gates),
        "quantization_faces": faces.calibration_source,
        "parity_faces_source": faces.heldout_source,
        "parity_faces": len(faces.heldout),
        "threshold_source": f"{cal.source} ({cal.genuine_pairs:,} genuine / {cal.impostor_pairs:,} impostor)",
        "heldout_pairs": pair_counts(faces.heldout_identity, faces.heldout_set),
        "lfw_alignment": options.lfw_alignment if lfw is not None else None,
        "torch_lfw": torch_lfw,
        "export_note": export_note,
        "keep_float": list(keep),
        "licence": prov.licence(),
        "notice_file": notice,
        "artifacts": [r.summary() for r in results],
        "latency_compare": compare,
        "passed": all(not r.failures for r in results),
        "minutes": round((time.monotonic() - start) / 60, 2),
    }


def ship(out: Path, name: str, models_dir: Path) -> list[Path]:
    """Copy the shipped artifacts, their cards and the NOTICE (if any) into the runtime's models folder."""
    models_dir.mkdir(parents=True, exist_ok=True)
    files = [f for s in SHIPPED for f in (out / f"{name}-{s}", card_path(out / f"{name}-{s}"))]
    notice = out / f"{name}-{NOTICE_SUFFIX}"
    files += [notice] if notice.exists() else []
    for f in files:
        shutil.copyfile(f, models_dir / f.name)
    return [models_dir / f.name for f in files]


def _provenance_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "provenance (override the weights' JSON 'provenance'; see converters/provenance.py)"
    )
    g.add_argument(
        "--start-weights",
        default=None,
        help="public weights the model was pruned from: "
        "'mobilefacenet' (known: licence, source, licence text) or a free-text name; 'none'",
    )
    g.add_argument("--start-weights-licence", default=None, help="SPDX id, e.g. Apache-2.0")
    g.add_argument("--start-weights-source", default=None, help="repository, commit and path of the weights")
    g.add_argument("--start-weights-licence-file", default=None, help="licence text, copied into the NOTICE")
    g.add_argument("--teacher", default=None, help="distillation teacher: 'mobilefacenet', 'dlib' or a name")
    g.add_argument("--training-data", default=None, help="comma-separated: utkface,celeba_wild,pins")
    g.add_argument(
        "--data-terms",
        action="append",
        default=[],
        metavar="NAME=TERMS",
        help="terms of a data set not in converters.provenance.KNOWN_DATA (repeatable)",
    )
    g.add_argument("--modifications", default=None, help="what was done to the starting weights")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m converters.convert_embedder",
        description=__doc__.split("\n\n")[0]
        + ": ONNX fp32/int8 and TFLite fp32/int8, parity against torch, LFW accuracy, thresholds "
        "calibrated on held-out identities, model cards. Exit 1 when a gate fails.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", type=Path, required=True, help="weights stem: STEM.json + STEM.safetensors")
    p.add_argument(
        "--faces",
        type=Path,
        default=Path("runs/facebank"),
        help="a face bank (pruning.facebank) or a pruning.data folder; the kind is detected",
    )
    p.add_argument("--lfw", type=Path, default=None, help="LFW folder (images/, pairs.txt) to report on")
    p.add_argument(
        "--lfw-align",
        choices=sorted(LFW_ALIGN),
        default="runtime",
        help="runtime: the project's detector end to end (cached in --lfw-cache); teacher: dlib",
    )
    p.add_argument("--lfw-cache", type=Path, default=Path("runs/lfw_runtime_aligned.npz"))
    p.add_argument("--out", type=Path, required=True, help="output folder for artifacts and cards")
    p.add_argument("--name", default=None, help="model name (default: <architecture>-<stem>)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--calibration-faces", type=int, default=512, help="training-split faces for int8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keep-float",
        default=None,
        metavar="MODULES",
        help="comma-separated top-level modules left in float ('' for none; default per "
        "architecture, KEEP_FLOAT)",
    )
    p.add_argument(
        "--compare-latency",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also time this model file in the same interleaved rounds (e.g. the shipped model "
        "the new one replaces); repeatable",
    )
    p.add_argument("--report", type=Path, default=None, help="write REPORT.json + REPORT.md here")
    p.add_argument(
        "--ship",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"when every gate holds, copy the shipped artifacts ({', '.join(SHIPPED)}), cards and "
        "NOTICE here (the runtime package's models folder: sdk/squeezerface/models)",
    )
    p.add_argument("--quiet", action="store_true")
    _provenance_flags(p)
    return p


def options_of(args: argparse.Namespace) -> Options:
    terms = dict(t.split("=", 1) for t in args.data_terms)
    flags = ProvenanceFlags(
        start_weights=args.start_weights,
        start_weights_licence=args.start_weights_licence,
        start_weights_source=args.start_weights_source,
        start_weights_licence_file=args.start_weights_licence_file,
        teacher=args.teacher,
        training_data=tuple(args.training_data.split(",")) if args.training_data else None,
        data_terms=terms,
        modifications=args.modifications,
    )
    keep = None if args.keep_float is None else tuple(k for k in args.keep_float.split(",") if k)
    return Options(keep, flags, tuple(args.compare_latency), args.lfw_align)


def default_name(model: Path) -> str:
    base = json.loads(model.with_suffix(".json").read_text())["spec"].split(":")[0]
    return f"{base}-{model.name.removeprefix('taylor-')}"


def load_lfw(args: argparse.Namespace) -> AlignedPairs | None:
    if args.lfw is None:
        return None
    if args.lfw_align == "runtime":
        return runtime_aligned_lfw(args.lfw, args.lfw_cache)
    return aligned_lfw(args.lfw, show_progress=not args.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = args.name or default_name(args.model)
    faces = load_faces(args.faces, args.calibration_faces, args.seed)
    lfw = load_lfw(args)
    command = "python -m converters.convert_embedder " + " ".join(sys.argv[1:] if argv is None else argv)
    report = convert(
        args.model,
        args.out,
        faces,
        lfw,
        name,
        args.version,
        command=command,
        show_progress=not args.quiet,
        options=options_of(args),
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
