"""Turn the trained face detector into deployable artifacts, measure them, card them.

    python -m converters.convert_detector --model runs/detector/train/final \\
        --labels runs/detector/labels.json --lfw ../shared/data/lfw --out build/tinyface \\
        --report benchmarks/results/detector --ship sdk/squeezerface/models

Artifacts: ONNX fp32 and int8 with dynamic batch, height and width (any multiple of 32), and TFLite fp32
and int8 (NHWC) at 160x160 and at 320x320. int8 ranges come from training-split photos, letterboxed as the
runtime does. Every artifact is run through the runtime's `FaceDetector` (decoding + NMS in numpy) on the
held-out teacher-labelled photos: precision, recall (IoU >= 0.5) and landmark NME over a sweep of score
thresholds, plus single-thread latency. The real test follows for the shipped int8 ONNX and TFLite models:
LFW View 2 accuracy of the shipped embedder when faces are aligned by this detector versus by the dlib
teacher's landmarks (LFW is measured, never used to choose anything).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from converters.convert_embedder import lfw_accuracy
from converters.onnx_export import export_onnx, onnx_ops, quantize_onnx
from converters.tflite_export import export_tflite, quantize_tflite, tflite_ops
from pruning.detector.evaluate import ImageResult, evaluate_on_labels, load_labelled, match_image, pr_summary
from pruning.detector.model import count_params, load_detector
from pruning.detector.refiner import load_refiner
from pruning.detector.train import load_photos
from pruning.detector.train_refiner import RefinerTrainConfig, loose_faces, make_sample
from pruning.evaluate import AlignedPairs, aligned_lfw
from pruning.model import count_mflops
from squeezerface._progress import progress
from squeezerface.align import align_face
from squeezerface.detect import FaceDetector, Pyramid, letterbox
from squeezerface.embed import FaceEmbeddingModel
from squeezerface.embedders.base import Fallback, select_face
from squeezerface.embedders.squeezerfacenet import template_face
from squeezerface.imageio import load_image, sha256_file
from squeezerface.modelcard import RESEARCH_ONLY, InputSpec, ModelCard, card_path, save_card

SIZES = (160, 320)
NMS_IOU = 0.4
TARGET_PRECISION = 0.98  # the default score threshold is the lowest that reaches it on training-split photos
PASSES = (1, 2, 3)
SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SHIPPED = ("fp32.onnx", "int8.onnx", "160-int8.tflite", "320-int8.tflite")
REFINER_SHIPPED = ("lm-fp32.onnx", "lm-int8.onnx", "lm-int8.tflite")
REFINER_INPUT = "the template at 64 px, cut by the detector's rough points (squeezerface.landmarks.crop_face)"
KEEP_FLOAT = ("head",)
"""The shared output head stays float in int8 files: its one output tensor mixes score logits, box and
landmark offsets, and a single int8 scale over all of them would round landmarks to whole pixels."""


def calibration_batches(labels: Path, size: int, count: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Letterboxed training-split photos, normalised, NCHW batches of 32 (the runtime's own preprocessing)."""
    photos = load_photos(labels, "train")
    picks = np.random.default_rng(seed).permutation(len(photos))[:count]
    spec = InputSpec(size=(size, size))
    images = np.stack([letterbox(load_image(photos[i][0]), size)[0] for i in picks])
    return [spec.prepare(images[i : i + 32]) for i in range(0, len(images), 32)]


@dataclass(frozen=True)
class Artifact:
    """One exported detector file and the input size it is carded and measured at, passed along with it
    rather than read back from its name (ONNX files take any multiple of 32 and are carded at SIZES[0])."""

    path: Path
    size: int
    precision: str  # "fp32" or "int8"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def input_sizes(self) -> tuple[int, ...]:
        """Every size it is measured at: all of SIZES for a dynamic-size ONNX file, its own for TFLite."""
        return SIZES if self.path.suffix == ".onnx" else (self.size,)


def build(model: torch.nn.Module, out: Path, name: str, labels: Path) -> list[Artifact]:
    """ONNX fp32 and int8 (dynamic size) and TFLite fp32 and int8 at each of SIZES."""
    out.mkdir(parents=True, exist_ok=True)
    calib = {s: calibration_batches(labels, s) for s in SIZES}
    onnx32 = export_onnx(
        model,
        torch.from_numpy(calib[SIZES[0]][0][:1]),
        out / f"{name}-fp32.onnx",
        output_names=("raw",),
        dynamic_spatial=32,
    )
    onnx8 = quantize_onnx(
        onnx32, out / f"{name}-int8.onnx", calib[SIZES[0]] + calib[SIZES[1]][:4], keep_float=KEEP_FLOAT
    )
    artifacts = [Artifact(onnx32, SIZES[0], "fp32"), Artifact(onnx8, SIZES[0], "int8")]
    for s in SIZES:
        t32 = export_tflite(model, torch.from_numpy(calib[s][0][:1]), out / f"{name}-{s}-fp32.tflite")
        nhwc = [np.ascontiguousarray(b.transpose(0, 2, 3, 1)) for b in calib[s]]
        t8 = quantize_tflite(t32, out / f"{name}-{s}-int8.tflite", nhwc, keep_float=KEEP_FLOAT)
        artifacts += [Artifact(t32, s, "fp32"), Artifact(t8, s, "int8")]
    return artifacts


def refiner_calibration(labels: Path, count: int = 512, seed: int = 0) -> list[np.ndarray]:
    """Refiner inputs as the runtime makes them: training-split faces cut by disturbed teacher points."""
    crops, truths = loose_faces(labels, "train")
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(crops))[:count]
    cfg = RefinerTrainConfig()
    faces = np.stack([make_sample(crops[i], truths[i], cfg, rng, augment=False)[0] for i in picks])
    spec = InputSpec(size=faces.shape[1:3])
    return [spec.prepare(faces[i : i + 32]) for i in range(0, len(faces), 32)]


def build_refiner(model: torch.nn.Module, out: Path, name: str, labels: Path) -> list[Path]:
    """ONNX and TFLite, fp32 and int8, of the landmark refiner."""
    calib = refiner_calibration(labels)
    example = torch.from_numpy(calib[0][:1])
    onnx32 = export_onnx(model, example, out / f"{name}-fp32.onnx", output_names=("offsets",))
    t32 = export_tflite(model, example, out / f"{name}-fp32.tflite")
    nhwc = [np.ascontiguousarray(b.transpose(0, 2, 3, 1)) for b in calib]
    return [
        onnx32,
        quantize_onnx(onnx32, out / f"{name}-int8.onnx", calib),
        t32,
        quantize_tflite(t32, out / f"{name}-int8.tflite", nhwc),
    ]


def matching_refiner(detector: Path, refiners: Sequence[Path]) -> Path:
    """The refiner of the same format and precision as a detector file."""
    precision = "int8" if "int8" in detector.name else "fp32"
    return next(r for r in refiners if r.suffix == detector.suffix and precision in r.name)


def card_for(
    path: Path,
    model: torch.nn.Module,
    size: int,
    name: str,
    version: str,
    training: dict,
    alignment: str = "letterbox: the image resized to fit, aspect kept, centred on black",
) -> ModelCard:
    return ModelCard(
        name=name,
        version=version,
        file=path.name,
        format=path.suffix.lstrip("."),
        precision="int8" if "int8" in path.name else "fp32",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        params=count_params(model),
        mflops=round(count_mflops(model, size), 2),
        embedding_size=0,
        input=InputSpec(
            size=(size, size),
            layout="NHWC" if path.suffix == ".tflite" else "NCHW",
            alignment=alignment,
        ),
        licence=training.get("licence", RESEARCH_ONLY),
        training=training,
        ops=tuple(onnx_ops(path) if path.suffix == ".onnx" else tflite_ops(path)),
    )


def latency_ms(detector: FaceDetector, image: np.ndarray, runs: int = 100, warmup: int = 10) -> float:
    """Median single-thread time of `detect` on one image: letterbox + network + decode + NMS."""
    for _ in range(warmup):
        detector.detect(image)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        detector.detect(image)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def choose_threshold(
    onnx_fp32: Path, labels: Path, count: int = 400, seed: int = 0
) -> tuple[float, list[dict]]:
    """The lowest score threshold of the sweep whose precision reaches TARGET_PRECISION on real
    training-split photos (letterboxed whole, not composed): never on the held-out photos it is judged on."""
    photos = load_photos(labels, "train")
    picks = np.random.default_rng(seed + 7).permutation(len(photos))[:count]
    det = FaceDetector(
        onnx_fp32, input_size=SIZES[0], score_threshold=min(SWEEP), nms_iou=NMS_IOU, refiner=None
    ).prepare(1)
    rows = pr_summary(evaluate_on_labels(det.detect, load_labelled([photos[i] for i in picks])), SWEEP)
    good = [r["score_threshold"] for r in rows if r["precision"] >= TARGET_PRECISION]
    return (min(good) if good else max(SWEEP)), rows


FRAME_SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9)


def choose_threshold_on_frames(detector: Path, frames: Path) -> tuple[float, list[dict]]:
    """The lowest threshold of FRAME_SWEEP whose precision reaches TARGET_PRECISION on tuning frames
    (`benchmarks/realsize.py build --split train`: training faces at camera and photo sizes on training
    backdrops), detected as the runtime does (image pyramid, int8 file). Photos the size of the training
    crops hold no background to fire on; these frames hold as much as an app's photos do. Each threshold
    is a run of its own (a lower one also changes which boxes the pyramid's merge keeps); each frame is
    decoded once for all of them, and not kept (a 12 MP frame is 36 MB decoded)."""
    truth = json.loads((frames / "truth.json").read_text())
    if truth["summary"].get("split") != "train":
        raise SystemExit(f"{frames} is not a training-split build: never tune on the benchmark's frames")
    detectors = {
        score: FaceDetector(detector, score_threshold=score, nms_iou=NMS_IOU, refiner=None).prepare(1)
        for score in FRAME_SWEEP
    }
    results: dict[float, list[ImageResult]] = {score: [] for score in FRAME_SWEEP}
    for frame in truth["frames"]:
        image = load_image(frames / frame["file"])
        boxes = np.array([f["box"] for f in frame["faces"]], np.float32).reshape(-1, 4)
        lms = np.array([f["landmarks"] for f in frame["faces"]], np.float32).reshape(-1, 5, 2)
        for score, det in detectors.items():
            results[score].append(match_image(det.detect(image), boxes, lms))
    rows = [pr_summary(results[score], (score,))[0] for score in FRAME_SWEEP]
    good = [r["score_threshold"] for r in rows if r["precision"] >= TARGET_PRECISION]
    return (min(good) if good else max(FRAME_SWEEP)), rows


def choose_passes(
    detector: Path, refiner: Path, labels: Path, score: float, count: int = 400, seed: int = 0
) -> tuple[int, list[dict]]:
    """How many refinement passes (1-3) give the lowest landmark NME on training-split photos (never on the
    held-out photos it is judged on, nor on LFW)."""
    photos = load_photos(labels, "train")
    picks = np.random.default_rng(seed + 11).permutation(len(photos))[:count]
    labelled = load_labelled([photos[i] for i in picks])
    rows = []
    for passes in PASSES:
        det = FaceDetector(
            detector, score_threshold=score, nms_iou=NMS_IOU, refiner=refiner, refiner_passes=passes
        ).prepare(1)
        nme = pr_summary(evaluate_on_labels(det.detect, labelled), (score,))[0]["nme_mean"]
        rows.append({"passes": passes, "nme": nme})
    return min(rows, key=lambda r: r["nme"])["passes"], rows


def at_threshold(rows: list[dict], t: float) -> dict:
    return next(r for r in rows if abs(r["score_threshold"] - t) < 1e-9)


@dataclass(frozen=True)
class LfwBaseline:
    """LFW aligned by the teacher, and the shipped embedder's accuracy on it: loaded once per run."""

    lfw: AlignedPairs
    embedder: FaceEmbeddingModel
    teacher: dict


def lfw_baseline(lfw_dir: Path, show_progress: bool) -> LfwBaseline:
    lfw = aligned_lfw(lfw_dir, show_progress=show_progress)
    embedder = FaceEmbeddingModel().prepare(threads=1)
    return LfwBaseline(lfw, embedder, lfw_accuracy(embedder.get_feat(lfw.faces), lfw))


def lfw_gap(detector: FaceDetector, base: LfwBaseline, show_progress: bool) -> dict:
    """LFW View 2 accuracy of the shipped embedder, faces aligned by `detector` vs by the teacher."""
    lfw, embedder, teacher = base.lfw, base.embedder, base.teacher
    faces, no_face = [], 0
    for path in progress(lfw.paths, len(lfw.paths), "detecting LFW", show_progress):
        image = load_image(path)
        found = detector.detect(image)
        if found:
            landmarks = select_face(found, image.shape[0], image.shape[1], "central").landmarks
        else:
            no_face += 1
            landmarks = template_face(Fallback().box(image.shape[0], image.shape[1])).landmarks
        faces.append(align_face(image, landmarks))
    ours = lfw_accuracy(embedder.get_feat(np.stack(faces)), replace(lfw, no_face=no_face))
    return {
        "embedder": embedder.card.file,
        "teacher_landmarks": teacher,
        "our_landmarks": ours,
        "gap_pp": round(100 * (teacher["accuracy_mean"] - ours["accuracy_mean"]), 3),
        "no_face_ours": no_face,
        "no_face_teacher": lfw.no_face,
    }


@dataclass
class Refiners:
    """The exported landmark refiner files, with the weights and metadata they came from (absent: none)."""

    paths: list[Path]
    model: torch.nn.Module | None = None
    meta: dict = field(default_factory=dict)
    cards: dict[str, ModelCard] = field(default_factory=dict)

    def matching(self, artifact: Artifact) -> Path | None:
        return matching_refiner(artifact.path, self.paths) if self.paths else None


@dataclass(frozen=True)
class Settings:
    """The runtime's detection settings chosen on training-split photos, and how they were chosen."""

    score: float
    score_selection: list[dict]
    passes: int = 1
    passes_selection: list[dict] = field(default_factory=list)


@dataclass
class Measured:
    """What measuring the artifacts produced: one report entry per detector file, card rows per file."""

    artifacts: list[dict] = field(default_factory=list)
    rows: dict[str, list[dict]] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m converters.convert_detector",
        description="Export the face detector to ONNX (dynamic size) and TFLite (160, 320), fp32 and "
        "int8; measure each on held-out teacher labels and for latency; measure the LFW alignment gap; "
        "write cards.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="detector weights stem (STEM.json + .safetensors)"
    )
    parser.add_argument("--labels", type=Path, default=Path("runs/detector/labels.json"))
    parser.add_argument(
        "--refiner", type=Path, default=None, help="landmark refiner weights stem (STEM.json + .safetensors)"
    )
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder for the alignment gap")
    parser.add_argument(
        "--frames",
        type=Path,
        default=None,
        help="training-split real-size frames (benchmarks/realsize.py build --split train) to choose the "
        "score threshold on; without it, on 400 training crops",
    )
    parser.add_argument("--out", type=Path, default=Path("build/tinyface"))
    parser.add_argument("--name", default="tinyface")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--ship", type=Path, default=None, metavar="DIR", help="copy shipped artifacts here")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


BACKDROPS = (
    "; backdrops: scene photos of the Intel Image Classification set (Analytics Vidhya challenge, via Kaggle "
    "puneet6060/intel-image-classification and github luangtatipsy/intel-image-classification; 'street' "
    "left out), no licence stated for the images: research use only"
)


def backdrops_line(config: dict) -> str:
    """What the card adds to its data line when training drew real backdrops (`--backgrounds`)."""
    return BACKDROPS if config.get("backgrounds") and config.get("real_background", 0) > 0 else ""


def detector_licence(config: dict) -> str:
    """The card's licence line: the face sets' research-only terms, and the backdrops' when training drew
    them."""
    if not backdrops_line(config):
        return RESEARCH_ONLY
    terms, deploy = RESEARCH_ONLY.rsplit("; ", 1)
    backdrops = "backdrops from the Intel Image Classification scenes, no licence stated for the images"
    return f"{terms}; {backdrops}: research use only; {deploy}"


def detector_training(args: argparse.Namespace, meta: dict) -> dict:
    """The `training` section of the detector's cards (detection settings are added once chosen)."""
    return {
        "weights": str(args.model),
        "spec": meta["spec"],
        "data": "dlib-teacher pseudo-labels on celeba_wild + utkface (composed canvases); never LFW"
        + backdrops_line(meta.get("config", {})),
        "licence": detector_licence(meta.get("config", {})),
        "train_photos": meta.get("train_photos"),
        "steps": meta.get("steps"),
        "intended_use": "mobile verification: one or a few faces of 40 px and up; not crowds or tiny faces",
    }


def export_refiner(args: argparse.Namespace) -> Refiners:
    """Export the refiner given by --refiner and card its files beside them (none without the flag)."""
    if not args.refiner:
        return Refiners([])
    model = load_refiner(args.refiner)
    meta = json.loads(args.refiner.with_suffix(".json").read_text())
    refiners = Refiners(build_refiner(model, args.out, f"{args.name}-lm", args.labels), model, meta)
    training = {
        "weights": str(args.refiner),
        "spec": meta["spec"],
        "data": "dlib-teacher 5-point labels on celeba_wild + utkface faces, cut by disturbed points; "
        "never LFW",
        "licence": RESEARCH_ONLY,
        "train_faces": meta.get("train_faces"),
        "steps": meta.get("steps"),
        "intended_use": "refines the 5 points of a tinyface detection before alignment",
    }
    for path in refiners.paths:
        card = card_for(path, model, 64, f"{args.name}-lm", args.version, training, REFINER_INPUT)
        refiners.cards[path.name] = card
        save_card(card, card_path(path))
    return refiners


def choose_settings(args: argparse.Namespace, artifacts: list[Artifact], refiners: Refiners) -> Settings:
    """Score threshold on tuning frames with the int8 ONNX file (`--frames`; without it on the fp32 ONNX
    file over training crops), then refinement passes on the int8 ONNX one."""
    int8 = next(a for a in artifacts if a.name == f"{args.name}-int8.onnx")
    if args.frames is not None:
        score, selection = choose_threshold_on_frames(int8.path, args.frames)
    else:
        score, selection = choose_threshold(artifacts[0].path, args.labels)
    if not refiners.paths:
        return Settings(score, selection)
    refiner = refiners.matching(int8)
    assert refiner is not None
    passes, passes_selection = choose_passes(int8.path, refiner, args.labels, score)
    return Settings(score, selection, passes, passes_selection)


def detection_for(artifact: Artifact, artifacts: list[Artifact], refiners: Refiners, base: dict) -> dict:
    """The card's runtime settings for one file: the chosen ones, its refiner, and for a fixed-size TFLite
    file at the smaller size the file at the larger size to retry with."""
    detection = dict(base)
    refiner = refiners.matching(artifact)
    if refiner is not None:
        detection["refiner"] = refiner.name
    if artifact.path.suffix == ".tflite" and artifact.size == SIZES[0]:
        larger = next(
            a
            for a in artifacts
            if a.path.suffix == ".tflite" and a.size == SIZES[1] and a.precision == artifact.precision
        )
        detection["retry_model"] = larger.name
    return detection


def card_detectors(
    args: argparse.Namespace,
    model: torch.nn.Module,
    artifacts: list[Artifact],
    training: dict,
    detection: Callable[[Artifact], dict] | None = None,
) -> dict[str, ModelCard]:
    """Cards beside the files: first without detection settings (the runtime's FaceDetector runs a file
    through its card, and the settings are chosen by running them), then with them."""
    cards = {}
    for a in artifacts:
        t = training if detection is None else {**training, "detection": detection(a)}
        cards[a.name] = card_for(a.path, model, a.size, args.name, args.version, t)
        save_card(cards[a.name], card_path(a.path))
    return cards


def measure_artifact(
    artifact: Artifact, refiner: Path | None, test: list, settings: Settings, card: ModelCard
) -> tuple[dict, list[dict], dict | None]:
    """Sweep, headline and latency of one detector file on the held-out photos: (its report entry, its card
    rows, the row for its refiner's card or None)."""
    rows_by_size, latency = {}, {}
    for s in artifact.input_sizes:
        det = FaceDetector(
            artifact.path,
            input_size=s,
            score_threshold=min(SWEEP),
            nms_iou=NMS_IOU,
            refiner=refiner,
            refiner_passes=settings.passes,
            retry_larger=False,  # the network at this input size alone
        ).prepare(threads=1)
        results: list[ImageResult] = evaluate_on_labels(det.detect, test, show_progress=False)
        rows_by_size[s] = pr_summary(results, SWEEP)
        latency[s] = latency_ms(det, test[0][0])
    first = artifact.input_sizes[0]
    headline = at_threshold(rows_by_size[first], settings.score)
    unrefined, refiner_row = None, None
    if refiner is not None:
        unrefined = unrefined_nme(artifact, first, test, settings.score)
        refiner_row = {
            "benchmark": f"held-out teacher labels, {len(test)} photos, landmarks of {artifact.name} "
            f"at {first} refined",
            "artifact": refiner.name,
            "nme": headline["nme_mean"],
            "nme_unrefined": unrefined,
        }
    rows = [
        {
            "benchmark": f"held-out teacher labels, {len(test)} photos, {s}x{s}",
            "artifact": artifact.name,
            **at_threshold(r, settings.score),
        }
        for s, r in rows_by_size.items()
    ]
    entry = {
        "file": artifact.name,
        "format": card.format,
        "precision": card.precision,
        "size_bytes": card.size_bytes,
        "sha256": card.sha256,
        "ops": list(card.ops),
        "input_sizes": list(artifact.input_sizes),
        "recall": headline["recall"],
        "precision_at_threshold": headline["precision"],
        "nme": headline["nme_mean"],
        "refiner": refiner.name if refiner else None,
        "nme_unrefined": unrefined,
        "latency_ms_p50": {str(s): v for s, v in latency.items()},
        "sweep": {str(s): r for s, r in rows_by_size.items()},
    }
    return entry, rows, refiner_row


def unrefined_nme(artifact: Artifact, size: int, test: list, score: float) -> float:
    """Landmark NME of the detector's own points, without the refiner (what refinement is judged against)."""
    det = FaceDetector(
        artifact.path,
        input_size=size,
        score_threshold=score,
        nms_iou=NMS_IOU,
        refiner=None,
        retry_larger=False,
    ).prepare(threads=1)
    return pr_summary(evaluate_on_labels(det.detect, test), (score,))[0]["nme_mean"]


def measure_all(
    artifacts: list[Artifact], refiners: Refiners, test: list, settings: Settings, cards: dict, show: bool
) -> Measured:
    measured = Measured(rows={p.name: [] for p in [a.path for a in artifacts] + refiners.paths})
    for a in artifacts:
        refiner = refiners.matching(a)
        entry, rows, refiner_row = measure_artifact(a, refiner, test, settings, cards[a.name])
        measured.artifacts.append(entry)
        measured.rows[a.name] += rows
        if refiner is not None and refiner_row is not None:
            measured.rows[refiner.name].append(refiner_row)
        if show:
            print(
                f"{a.name}: recall {entry['recall']:.4f} precision {entry['precision_at_threshold']:.4f} "
                f"NME {entry['nme']:.4f} latency {entry['latency_ms_p50']}",
                flush=True,
            )
    return measured


def measure_lfw_gaps(args: argparse.Namespace, refiners: Refiners, measured: Measured, show: bool) -> dict:
    """LFW alignment gap of the two shipped int8 files, as shipped (and the ONNX one without its refiner)."""
    gaps: dict[str, dict] = {}
    if not args.lfw:
        return gaps
    baseline = lfw_baseline(args.lfw, show)
    for shipped in (f"{args.name}-int8.onnx", f"{args.name}-{SIZES[0]}-int8.tflite"):
        path = args.out / shipped
        g = gaps[shipped] = lfw_gap(FaceDetector(path).prepare(threads=1), baseline, show)  # as shipped
        if refiners.paths and shipped.endswith(".onnx"):
            alone = lfw_gap(FaceDetector(path, refiner=None).prepare(1), baseline, show)
            g["gap_pp_unrefined"] = alone["gap_pp"]
        measured.rows[shipped].append(
            {
                "benchmark": "LFW View 2 (10-fold), shipped embedder, aligned by this detector",
                "artifact": shipped,
                **g["our_landmarks"],
                "teacher_alignment_accuracy": g["teacher_landmarks"]["accuracy_mean"],
                "gap_pp": g["gap_pp"],
            }
        )
        if show:
            print(f"LFW gap with {shipped}: {g['gap_pp']} pp, no face {g['no_face_ours']}", flush=True)
    return gaps


def refiner_summary(args: argparse.Namespace, refiners: Refiners, head: dict) -> dict | None:
    if refiners.model is None:
        return None
    return {
        "weights": str(args.refiner),
        "spec": refiners.meta["spec"],
        "params": count_params(refiners.model),
        "mmacs": round(count_mflops(refiners.model, 64), 2),
        "nme_unrefined": head["nme_unrefined"],
        "minutes": refiners.meta.get("minutes"),
    }


def make_report(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    model: torch.nn.Module,
    refiners: Refiners,
    settings: Settings,
    measured: Measured,
    gaps: dict,
    test_photos: int,
    minutes: float,
) -> dict:
    head = next(a for a in measured.artifacts if a["file"] == f"{args.name}-int8.onnx")
    refiner_params = count_params(refiners.model) if refiners.model is not None else 0
    return {
        "model": args.name,
        "weights": str(args.model),
        "params": count_params(model),
        "refiner": refiner_summary(args, refiners, head),
        "params_total": count_params(model) + refiner_params,
        "mmacs": {str(s): round(count_mflops(model, s), 2) for s in SIZES},
        "test_photos": test_photos,
        "score_threshold": settings.score,
        "score_threshold_selection": {
            "rule": threshold_rule(args),
            "sweep": settings.score_selection,
        },
        "nms_iou": NMS_IOU,
        "refiner_passes": settings.passes if refiners.paths else None,
        "refiner_passes_selection": {
            "rule": "passes (1-3) with the lowest NME on 400 training-split photos, int8 ONNX detector",
            "sweep": settings.passes_selection,
        },
        "recall": head["recall"],
        "precision": head["precision_at_threshold"],
        "nme": head["nme"],
        "latency_ms_p50": head["latency_ms_p50"],
        "lfw_gap_pp": head["lfw_gap_pp"],
        "lfw": gaps,
        "artifacts": measured.artifacts,
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "command": "python -m converters.convert_detector "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "minutes": minutes,
    }


def threshold_rule(args: argparse.Namespace) -> str:
    if args.frames is None:
        return f"lowest threshold with precision >= {TARGET_PRECISION} on 400 training-split photos"
    return (
        f"lowest threshold with precision >= {TARGET_PRECISION} on the training-split real-size frames in "
        f"{args.frames} (int8 ONNX, image pyramid: faces from {Pyramid().min_face:g} px searched at "
        f"{Pyramid().face_lo:g} px and up)"
    )


def write_report(report: dict, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def ship(args: argparse.Namespace, with_refiner: bool) -> None:
    """Copy the shipped files and their cards into the package's model folder."""
    args.ship.mkdir(parents=True, exist_ok=True)
    for suffix in SHIPPED + (REFINER_SHIPPED if with_refiner else ()):
        src = args.out / f"{args.name}-{suffix}"
        for f in (src, card_path(src)):
            shutil.copyfile(f, args.ship / f.name)
            print(f"shipped {args.ship / f.name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    show = not args.quiet
    start = time.monotonic()
    torch.set_num_threads(1)
    model = load_detector(args.model)
    training = detector_training(args, json.loads(args.model.with_suffix(".json").read_text()))
    artifacts = build(model, args.out, args.name, args.labels)
    refiners = export_refiner(args)
    test = load_labelled(load_photos(args.labels, "test"))
    card_detectors(args, model, artifacts, training)
    settings = choose_settings(args, artifacts, refiners)
    detection = {"score": settings.score, "nms_iou": NMS_IOU}
    if refiners.paths:
        detection["refiner_passes"] = settings.passes
    training = {**training, "detection": detection}
    # The runtime settings go into the cards now, so that every measurement below that runs a detector
    # as an app would (`FaceDetector(path)`) runs it with exactly what ships.
    cards = card_detectors(
        args, model, artifacts, training, lambda a: detection_for(a, artifacts, refiners, detection)
    )
    measured = measure_all(artifacts, refiners, test, settings, cards, show)
    gaps = measure_lfw_gaps(args, refiners, measured, show)
    for entry in measured.artifacts:
        entry["lfw_gap_pp"] = gaps.get(entry["file"], {}).get("gap_pp")
    final_cards(artifacts, refiners, cards, measured)
    minutes = round((time.monotonic() - start) / 60, 2)
    report = make_report(args, argv, model, refiners, settings, measured, gaps, len(test), minutes)
    write_report(report, args.report or args.out / "detector")
    if args.ship:
        ship(args, bool(refiners.paths))
    return 0


def final_cards(artifacts: list[Artifact], refiners: Refiners, cards: dict, measured: Measured) -> None:
    """The accuracy rows measured above go into every card, the detector's and the refiner's."""
    for path, card in [(a.path, cards[a.name]) for a in artifacts] + [
        (p, refiners.cards[p.name]) for p in refiners.paths
    ]:
        save_card(replace(card, accuracy=tuple(measured.rows[path.name])), card_path(path))


def threshold_line(report: dict) -> str:
    """How the score threshold was chosen, with the sweep it was chosen from."""
    sel = report["score_threshold_selection"]
    sweep = ", ".join(
        f"{r['score_threshold']}: {r['recall']:.3f} / {r['precision']:.3f}" for r in sel["sweep"]
    )
    score, rule = report["score_threshold"], sel["rule"]
    return f"Score threshold {score}: the {rule} (threshold: recall / precision: {sweep})."


def markdown(report: dict) -> str:
    lines = [
        f"# Face detector `{report['model']}`: {report['params']:,} params, "
        + ", ".join(f"{v} MMACs at {k}" for k, v in report["mmacs"].items()),
        "",
    ]
    ref = report.get("refiner")
    if ref:
        lines += [
            f"Landmark refiner `{ref['spec']}`: {ref['params']:,} params, {ref['mmacs']} MMACs per face "
            f"(64x64 crop); detector + refiner {report['params_total']:,} params. Its NME is in the table; "
            f"the detector's own points alone: NME {ref['nme_unrefined']:.4f} (int8 ONNX at 160). "
            f"Refinement passes per face: {report['refiner_passes']} (chosen by "
            f"{report['refiner_passes_selection']['rule']}: "
            + ", ".join(f"{r['passes']}: {r['nme']:.4f}" for r in report["refiner_passes_selection"]["sweep"])
            + ").",
            "",
        ]
    lines += [
        f"Held-out teacher labels: {report['test_photos']} photos (celeba_wild identities held out from "
        f"training, a tenth of the utkface sample). Score threshold {report['score_threshold']}, NMS IoU "
        f"{report['nms_iou']}, match at IoU >= 0.5 (each input size alone, without the runtime's retry at a "
        "larger size); NME = mean landmark error / inter-ocular distance. "
        "Latency: `FaceDetector.detect` (letterbox + network + decoding + NMS + refinement), single "
        f"thread, median of 100 runs ({report['machine']}).",
        "",
        threshold_line(report),
        "",
        "| artifact | size KB | input | recall | precision | NME | p50 ms | LFW gap pp |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for a in report["artifacts"]:
        for s in a["input_sizes"]:
            r = at_threshold(a["sweep"][str(s)], report["score_threshold"])
            gap = a["lfw_gap_pp"] if a["lfw_gap_pp"] is not None and s == a["input_sizes"][0] else ""
            nme = "n/a" if r["nme_mean"] is None else f"{r['nme_mean']:.4f}"
            lines.append(
                f"| `{a['file']}` | {a['size_bytes'] / 1024:.0f} | {s} | {r['recall']:.4f} "
                f"| {r['precision']:.4f} | {nme} | {a['latency_ms_p50'][str(s)]:.2f} | {gap} |"
            )
    for name, g in report.get("lfw", {}).items():
        t, o = g["teacher_landmarks"], g["our_landmarks"]
        lines += [
            "",
            f"LFW View 2 with the shipped embedder `{g['embedder']}`, aligned by `{name}`: "
            f"{100 * o['accuracy_mean']:.2f} % ± {100 * o['accuracy_std']:.2f} ({g['no_face_ours']} photos "
            "without a detection, aligned from a centred box); aligned by the dlib teacher: "
            f"{100 * t['accuracy_mean']:.2f} % ± {100 * t['accuracy_std']:.2f} "
            f"({g['no_face_teacher']} without a detection). Gap: {g['gap_pp']:.2f} pp"
            + (
                f" (without the refiner: {g['gap_pp_unrefined']:.2f} pp)." if "gap_pp_unrefined" in g else "."
            ),
        ]
    lines += ["", f"Made by `{report['command']}` in {report['minutes']} min.", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
