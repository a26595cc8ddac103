"""Verification evaluation of an embedder on an LFW-style pairs list: scores, metrics, reports, plots.

Every pair is scored. A photo where the detector finds no face is embedded through the documented
fallback (a centred box; see `Fallback`) and counted; a photo that cannot be decoded is an error that
names it, raised after all other photos were embedded and cached.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from squeezerface.batch import BatchResult, embed_files
from squeezerface.datasets import PairList
from squeezerface.embedders.base import EmbedderSpec, Fallback, SelectPolicy
from squeezerface.errors import ImageDecodeError
from squeezerface.imageio import sha256_file
from squeezerface.metrics import VerificationReport, plot_det, plot_roc, verification_report


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

    @property
    def short_name(self) -> str:
        """The fingerprint without its configuration, e.g. `dlib-resnet@v1`."""
        return self.fingerprint.split("[")[0]

    @property
    def no_face_paths(self) -> list[Path]:
        return sorted(p for p, item in self.batch.items.items() if not item.face.detected)

    @property
    def multi_face_paths(self) -> list[Path]:
        return sorted(p for p, item in self.batch.items.items() if item.faces_found > 1)

    def misclassified(self) -> list[int]:
        """Indices of the pairs that the k-fold protocol gets wrong (each scored at its fold's threshold)."""
        folds = evaluation_folds(self.pairs)
        thresholds = np.asarray(self.report.folds.thresholds)[folds]
        wrong = (self.scores > thresholds) != self.pairs.labels()
        return [int(i) for i in np.flatnonzero(wrong)]

    def no_face_pairs(self) -> int:
        missing = set(self.no_face_paths)
        return sum(1 for p in self.pairs.pairs if p.path1 in missing or p.path2 in missing)


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
    policy: SelectPolicy = "central",
    fallback: Fallback | None = None,
    show_progress: bool = True,
) -> Evaluation:
    """Embed every photo the pairs name (cached), score the pairs, compute the verification report."""
    fallback = fallback or Fallback()
    embedder = spec.build()
    fingerprint = embedder.fingerprint()
    start = time.monotonic()
    batch = embed_files(
        pairs.unique_paths(),
        spec,
        embedder=embedder,
        cache_path=cache_path,
        workers=workers,
        policy=policy,
        fallback=fallback,
        show_progress=show_progress,
    )
    if batch.failures:
        shown = "; ".join(f"{p}: {why}" for p, why in list(batch.failures.items())[:5])
        raise ImageDecodeError(
            f"{len(batch.failures)} photo(s)", f"could not be embedded (the rest are cached): {shown}"
        )
    scores = score_pairs(pairs, {p: item.embedding for p, item in batch.items.items()})
    report = verification_report(scores, pairs.labels(), evaluation_folds(pairs))
    return Evaluation(
        pairs=pairs,
        scores=scores,
        report=report,
        batch=batch,
        fingerprint=fingerprint,
        seconds=time.monotonic() - start,
        policy=policy,
        fallback=fallback,
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
        p = ev.pairs.pairs[i]
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
            "folds": int(evaluation_folds(ev.pairs).max()) + 1,
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
        "no_face_fallback": (
            f"centred square box of {ev.fallback.box_fraction:g} x the shorter image side, landmarks by "
            "the embedder's own landmark predictor inside it"
            if ev.fallback.enabled
            else "disabled (no-face photos are errors)"
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
    lines += [
        "",
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
    title = f"{short} on {ev.pairs.pairs_path.name} ({len(ev.pairs)} pairs)"
    paths["md"].write_text(markdown_report(record, title))
    curves = {short: (ev.scores, ev.pairs.labels())}
    if importlib.util.find_spec("matplotlib") is None:
        print("note: matplotlib is not installed, ROC/DET plots skipped", file=sys.stderr)
        return {k: v for k, v in paths.items() if k in ("json", "md")}
    plot_roc(curves, paths["roc"], title=f"ROC: {title}")
    plot_det(curves, paths["det"], title=f"DET: {title}")
    return paths
