"""Verification evaluation of an embedder on an LFW-style pairs list: scores, metrics, reports, plots.

Photos go through the embedder's face path; for the shipped model that is `FaceVerifier.analyze`, the
app's own. A photo where the detector finds no face is embedded through the documented fallback (a centred
box; see `Fallback`) and counted, or refused when the fallback is off; a photo the quality gate refuses is
listed and its pairs are left out (the app would refuse it too). A photo that cannot be decoded is an error
that names it, raised after all other photos were embedded and cached. Every report shows the false-accept
rate measured at the card's default threshold beside the nominal one.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from squeezerface.batch import BatchResult, embed_files
from squeezerface.datasets import PairList
from squeezerface.embedders.base import EmbedderSpec, Fallback, SelectPolicy
from squeezerface.errors import ImageDecodeError
from squeezerface.imageio import sha256_file
from squeezerface.metrics import VerificationReport, plot_det, plot_roc, verification_report
from squeezerface.quality import QualityThresholds


@dataclass(frozen=True)
class Evaluation:
    """Scores of every pair and the report computed from them."""

    pairs: PairList
    scores: np.ndarray
    report: VerificationReport
    batch: BatchResult
    fingerprint: str
    seconds: float
    policy: SelectPolicy
    fallback: Fallback
    quality_gate: bool = False
    scored: PairList | None = None
    """The pairs scored: all of `pairs` but those with a photo the face path refused."""
    card_threshold: tuple[float, str] | None = None
    """The embedder card's default threshold (FAR 1e-3) and its point name, when it has a card."""

    @property
    def short_name(self) -> str:
        """The fingerprint without its configuration, e.g. `dlib-resnet@v1`."""
        return self.fingerprint.split("[")[0]

    @property
    def refused_paths(self) -> list[Path]:
        """Photos the face path refused (the app refuses them too); pairs with one are not scored."""
        return sorted(self.batch.refused)

    @property
    def no_face_paths(self) -> list[Path]:
        return sorted(p for p, item in self.batch.items.items() if not item.face.detected)

    @property
    def multi_face_paths(self) -> list[Path]:
        return sorted(p for p, item in self.batch.items.items() if item.faces_found > 1)

    @property
    def scored_pairs(self) -> PairList:
        return self.scored if self.scored is not None else self.pairs

    def misclassified(self) -> list[int]:
        """Indices (into `scored_pairs`) of the pairs the k-fold protocol gets wrong (each scored at its
        fold's threshold)."""
        folds = evaluation_folds(self.scored_pairs)
        thresholds = np.asarray(self.report.folds.thresholds)[folds]
        wrong = (self.scores > thresholds) != self.scored_pairs.labels()
        return [int(i) for i in np.flatnonzero(wrong)]

    def no_face_pairs(self) -> int:
        missing = set(self.no_face_paths)
        return sum(1 for p in self.scored_pairs.pairs if p.path1 in missing or p.path2 in missing)

    def far_at_card_threshold(self) -> dict | None:
        """The false-accept rate measured at the card's default threshold, beside the nominal one, with the
        pair counts (None for an embedder without a card)."""
        if self.card_threshold is None:
            return None
        return far_at_threshold(self.scores, self.scored_pairs.labels(), *self.card_threshold)


def far_at_threshold(scores: np.ndarray, labels: np.ndarray, threshold: float, point: str) -> dict:
    """Measured FAR and TAR at `threshold` (accept when score > threshold) with the pair counts, beside
    the FAR the operating point `point` ("far_1e-03") names."""
    s, lab = np.asarray(scores, np.float64), np.asarray(labels, bool)
    impostors, genuine = int((~lab).sum()), int(lab.sum())
    false_accepts = int((s[~lab] > threshold).sum())
    true_accepts = int((s[lab] > threshold).sum())
    nominal = float(point.removeprefix("far_")) if point.startswith("far_") else None
    measured = false_accepts / impostors if impostors else None
    return {
        "operating_point": point,
        "threshold": round(float(threshold), 6),
        "nominal_far": nominal,
        "measured_far": measured,
        "far_ratio": (measured / nominal) if measured is not None and nominal else None,
        "false_accepts": false_accepts,
        "impostor_pairs": impostors,
        "tar": true_accepts / genuine if genuine else None,
        "genuine_pairs": genuine,
    }


def score_pairs(pairs: PairList, items: dict[Path, np.ndarray]) -> np.ndarray:
    """Cosine similarity of each pair (embeddings are unit vectors)."""
    a = np.stack([items[p.path1] for p in pairs.pairs])
    b = np.stack([items[p.path2] for p in pairs.pairs])
    return np.einsum("ij,ij->i", a, b).astype(np.float64)


def evaluation_folds(pairs: PairList, default_folds: int = 10) -> np.ndarray:
    """Fold id of every pair: the file's folds, or for a one-fold list (LFW View 1) pair i goes to fold
    i mod `default_folds`, which keeps genuine and impostor pairs balanced in every fold."""
    if pairs.folds >= 2:
        return pairs.fold_ids()
    return np.arange(len(pairs)) % default_folds


def evaluate(
    pairs: PairList,
    spec: EmbedderSpec,
    *,
    cache_path: Path | None,
    workers: int = 2,
    policy: SelectPolicy = "largest",
    fallback: Fallback | None = None,
    quality: QualityThresholds | None = None,
    show_progress: bool = True,
) -> Evaluation:
    """Embed every photo the pairs name (cached), score the pairs, compute the verification report.

    Photos go through the embedder's face path with these options (for the shipped model: the app's
    `FaceVerifier`, with `quality` as its gate). A photo it refuses (no face and the fallback off, a face
    failing the gate) is listed, and the pairs holding it are left out of the scores and counted."""
    fallback = fallback or Fallback()
    embedder = spec.build()
    start = time.monotonic()
    batch = embed_files(
        pairs.unique_paths(),
        spec,
        embedder=embedder,
        cache_path=cache_path,
        workers=workers,
        policy=policy,
        fallback=fallback,
        quality=quality,
        show_progress=show_progress,
    )
    if batch.failures:
        shown = "; ".join(f"{p}: {why}" for p, why in list(batch.failures.items())[:5])
        raise ImageDecodeError(
            f"{len(batch.failures)} photo(s)", f"could not be embedded (the rest are cached): {shown}"
        )
    refused = set(batch.refused)
    kept = tuple(p for p in pairs.pairs if p.path1 not in refused and p.path2 not in refused)
    scored = replace(pairs, pairs=kept)
    if not kept:
        raise ImageDecodeError(f"{len(refused)} photo(s)", "every pair holds a photo the face path refused")
    scores = score_pairs(scored, {p: item.embedding for p, item in batch.items.items()})
    report = verification_report(scores, scored.labels(), evaluation_folds(scored))
    return Evaluation(
        pairs=pairs,
        scores=scores,
        report=report,
        batch=batch,
        fingerprint=batch.fingerprint or embedder.fingerprint(),
        seconds=time.monotonic() - start,
        policy=policy,
        fallback=fallback,
        quality_gate=quality is not None,
        scored=scored,
        card_threshold=embedder.default_threshold(1e-3),
    )


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("squeezerface", "numpy", "opencv-python-headless", "dlib-bin", "onnxruntime"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _misclassified_record(ev: Evaluation) -> dict:
    """Which pairs the protocol gets wrong, and how many of them involve a no-face (fallback) photo."""
    fallback = set(ev.no_face_paths)
    wrong = ev.misclassified()
    rows = []
    for i in wrong:
        p = ev.scored_pairs.pairs[i]
        rows.append(
            {
                "line": p.line_no,
                "same": p.same,
                "score": round(float(ev.scores[i]), 4),
                "fallback": p.path1 in fallback or p.path2 in fallback,
            }
        )
    return {
        "count": len(wrong),
        "with_fallback_photo": sum(r["fallback"] for r in rows),
        "false_rejects": sum(r["same"] for r in rows),
        "false_accepts": sum(not r["same"] for r in rows),
        "pairs": rows,
    }


def evaluation_record(ev: Evaluation, command: Sequence[str] | str) -> dict:
    """The JSON-able record of an evaluation: metrics, how every photo was handled, provenance."""
    command_text = command if isinstance(command, str) else shlex.join(command)
    record = {
        "embedder": ev.fingerprint,
        "dataset": {
            "root": str(ev.pairs.root),
            "pairs_file": str(ev.pairs.pairs_path),
            "pairs_sha256": sha256_file(ev.pairs.pairs_path),
            "folds": int(evaluation_folds(ev.scored_pairs).max()) + 1,
            "folds_from": "pairs file" if ev.pairs.folds >= 2 else "assigned: pair i -> fold i mod 10",
            "images": len(ev.batch.items),
        },
        **ev.report.to_dict(),
        "no_face_count": len(ev.no_face_paths),
        "no_face_pairs": ev.no_face_pairs(),
        "no_face_images": [str(p.relative_to(ev.pairs.root)) for p in ev.no_face_paths],
        "multiple_faces_count": len(ev.multi_face_paths),
        "misclassified_pairs": _misclassified_record(ev),
        "face_selection": ev.policy,
        "quality_gate": "on (detected faces failing it are refused, as the app refuses them)"
        if ev.quality_gate
        else "off",
        "refused_count": len(ev.refused_paths),
        "refused_images": {str(p.relative_to(ev.pairs.root)): ev.batch.refused[p] for p in ev.refused_paths},
        "pairs_in_file": len(ev.pairs),
        "pairs_dropped": len(ev.pairs) - len(ev.scored_pairs),
        "far_at_default_threshold": ev.far_at_card_threshold(),
        "no_face_fallback": (
            f"centred square box of {ev.fallback.box_fraction:g} x the shorter image side, landmarks from "
            "the embedder's locate() inside it (shipped and pretrained networks: the alignment template "
            "scaled into the box; dlib: its 5-point landmark predictor)"
            if ev.fallback.enabled
            else "off (no-face photos are refused and their pairs left out)"
        ),
        "score": "cosine similarity of L2-normalised embeddings",
        "seconds": round(ev.seconds, 1),
        "computed_images": ev.batch.computed,
        "cached_images": ev.batch.from_cache,
        "command": command_text,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "versions": _versions(),
    }
    return record


def markdown_report(record: dict, title: str) -> str:
    """A short human-readable summary of `evaluation_record`."""
    lines = [
        f"# {title}",
        "",
        f"- Embedder: `{record['embedder']}`",
        f"- Pairs: {record['pairs']} ({record['genuine_pairs']} genuine, "
        f"{record['impostor_pairs']} impostor), "
        f"{record['dataset']['folds']} folds, `{record['dataset']['pairs_file']}`",
        f"- Command: `{record['command']}`",
        f"- Date: {record['date']}",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| {record['dataset']['folds']}-fold accuracy | {100 * record['accuracy_mean']:.2f} % "
        f"± {100 * record['accuracy_std']:.2f} |",
        f"| AUC | {record['auc']:.5f} |",
        f"| EER | {100 * record['eer']:.2f} % |",
    ]
    for far, t in record["tar_at_far"].items():
        if t["measurable"]:
            lines.append(f"| TAR @ FAR {far} | {100 * t['tar']:.2f} % (threshold {t['threshold']:.4f}) |")
        else:
            lines.append(
                f"| TAR @ FAR {far} | not measurable: {t['impostor_pairs']} impostor pairs, "
                f"needs >= {t['impostor_pairs_needed']} |"
            )
    lines += _default_threshold_lines(record)
    lines += [
        "",
        f"- Pairs scored: {record['pairs']} of {record['pairs_in_file']} in the file; "
        f"{record['pairs_dropped']} left out because they hold one of the {record['refused_count']} photo(s) "
        f"the face path refused (listed in the JSON). Quality gate: {record['quality_gate']}.",
        f"- Photos with no detected face: {record['no_face_count']} (in {record['no_face_pairs']} pairs), "
        f"embedded via fallback: {record['no_face_fallback']}.",
        f"- Misclassified pairs (at each fold's threshold): {record['misclassified_pairs']['count']} "
        f"({record['misclassified_pairs']['false_rejects']} false rejects, "
        f"{record['misclassified_pairs']['false_accepts']} false accepts), "
        f"{record['misclassified_pairs']['with_fallback_photo']} of them with a no-face photo.",
        f"- Photos with several faces: {record['multiple_faces_count']} "
        f"(selection: {record['face_selection']}).",
        f"- Time: {record['seconds']} s ({record['computed_images']} photos computed, "
        f"{record['cached_images']} from cache).",
        "",
    ]
    return "\n".join(lines)


def _default_threshold_lines(record: dict) -> list[str]:
    """The FAR measured at the card's default threshold beside the nominal one, as table rows."""
    d = record.get("far_at_default_threshold")
    if not d:
        return ["| FAR at the card's default threshold | no model card (no default threshold) |"]
    measured = "n/a" if d["measured_far"] is None else f"{d['measured_far']:.2e}"
    nominal = "n/a" if d["nominal_far"] is None else f"{d['nominal_far']:g}"
    ratio = "" if d["far_ratio"] is None else f", {d['far_ratio']:.1f}x nominal"
    tar = "n/a" if d["tar"] is None else f"{100 * d['tar']:.2f} %"
    return [
        f"| FAR at the card's default threshold {d['threshold']:.4f} ({d['operating_point']}) | measured "
        f"{measured} ({d['false_accepts']} of {d['impostor_pairs']} impostor pairs) vs nominal "
        f"{nominal}{ratio} |",
        f"| TAR at that threshold | {tar} of {d['genuine_pairs']} genuine pairs |",
    ]


def write_outputs(ev: Evaluation, out_dir: Path, name: str, command: Sequence[str] | str) -> dict[str, Path]:
    """Write `<name>.json`, `<name>.md`, `<name>_roc.png`, `<name>_det.png` into `out_dir`.

    The plots need matplotlib (the `teacher`, `bench` or `dev` extras); a runtime-only install writes the
    JSON and Markdown and says on stderr that the plots were skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = evaluation_record(ev, command)
    paths = {
        "json": out_dir / f"{name}.json",
        "md": out_dir / f"{name}.md",
        "roc": out_dir / f"{name}_roc.png",
        "det": out_dir / f"{name}_det.png",
    }
    paths["json"].write_text(json.dumps(record, indent=2) + "\n")
    short = ev.short_name
    title = f"{short} on {ev.pairs.pairs_path.name} ({len(ev.scored_pairs)} pairs)"
    paths["md"].write_text(markdown_report(record, title))
    curves = {short: (ev.scores, ev.scored_pairs.labels())}
    if importlib.util.find_spec("matplotlib") is None:
        print("note: matplotlib is not installed, ROC/DET plots skipped", file=sys.stderr)
        return {k: v for k, v in paths.items() if k in ("json", "md")}
    plot_roc(curves, paths["roc"], title=f"ROC: {title}")
    plot_det(curves, paths["det"], title=f"DET: {title}")
    return paths
