"""The accuracy table: every LFW figure this repository has measured, beside figures quoted from papers.

It recomputes nothing: LFW View 2 was measured by the commands in benchmarks/RUNS.md, and their committed
records are read here (lfw_teacher.json, pruning.json and the exported weights' JSON, conversion.json,
detector.json, the shipped models' cards). Quoted figures come from configs/quoted_literature.toml, each
with its source, and are kept in a separate table, marked as quoted. Run through benchmarks/run.py, or
alone:

    python benchmarks/accuracy_table.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS = ROOT / "pruning" / "weights"
QUOTED = ROOT / "benchmarks" / "configs" / "quoted_literature.toml"
PRUNED = ("base", "taylor-980k", "taylor-700k", "taylor-620k")
IMPOSTOR_NOTE = (
    "LFW View 2 has 3,000 impostor pairs, so TAR at FAR 1e-3 rests on 3 false accepts: a coarse figure"
)


@dataclass(frozen=True)
class MeasuredRow:
    """One LFW View 2 (10-fold) measurement of ours, as committed."""

    group: str  # teacher | trained | pruned | artifact | end to end
    model: str
    artifact: str  # what ran: "torch fp32", a model file, "dlib"
    alignment: str  # whose landmarks aligned the faces
    accuracy_mean: float
    accuracy_std: float | None
    tar_at_far_1e_3: float | None
    eer: float | None
    params: int | None
    mmacs: float | None
    no_face: int | None  # photos without a detection (aligned from a centred box)
    shipped: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuotedRow:
    """A figure from a paper or model card: quoted, never measured here."""

    name: str
    lfw_accuracy: float | None  # percent
    params_m: float | None
    mcompute: float | None
    compute_unit: str
    training: str
    source: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "quoted": True}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _shipped() -> set[str]:
    try:
        from squeezerface.shipped import shipped_models

        return set(shipped_models())
    except ImportError:
        return set()


def measured_rows(results: Path = RESULTS, weights: Path = WEIGHTS) -> tuple[list[MeasuredRow], list[str]]:
    """The measured rows, and notes on anything missing or inconsistent between records. Pure given the
    files."""
    rows: list[MeasuredRow] = []
    notes: list[str] = []
    shipped = _shipped()
    rows += _teacher_rows(results, notes)
    rows += _pruned_rows(results, weights, notes)
    rows += _embedder_teacher_rows(results)
    for conversion_path in (results / "conversion.json", results / "conversion_v1.json"):
        if conversion_path.is_file():
            rows += _artifact_rows(_load(conversion_path), conversion_path.name, shipped, notes)
        else:
            notes.append(f"{conversion_path} missing: no artifact rows")
    rows += _end_to_end_rows(results, shipped, notes)
    return rows, notes


def _teacher_rows(results: Path, notes: list[str]) -> list[MeasuredRow]:
    """The dlib teacher's row (none, with a note, when its record is missing): the reference every student
    is distilled from."""
    teacher_path = results / "lfw_teacher.json"
    if not teacher_path.is_file():
        notes.append(f"{teacher_path} missing: no teacher row")
        return []
    return [
        _teacher_row(
            _load(teacher_path),
            "dlib ResNet 128-d",
            "dlib (HOG detector, 5-point chip)",
            "dlib's own",
            "benchmarks/results/lfw_teacher.json",
        )
    ]


def _teacher_row(t: dict[str, Any], model: str, artifact: str, alignment: str, source: str) -> MeasuredRow:
    """A teacher's row from its LFW evaluation record: the dlib teacher and the other teacher embedders
    are recorded in the same form, so they are read the same way."""
    return MeasuredRow(
        "teacher",
        model,
        artifact,
        alignment,
        t["accuracy_mean"],
        t["accuracy_std"],
        t["tar_at_far"]["1e-03"]["tar"],
        t["eer"],
        None,
        None,
        t.get("no_face_count"),
        False,
        source,
    )


def _pruned_rows(results: Path, weights: Path, notes: list[str]) -> list[MeasuredRow]:
    """The trained and pruned networks' rows from their exported weights' JSON, with a note wherever the
    pruning curve's record disagrees with them (the two are written by different commands)."""
    pruning_path = results / "pruning_v1.json"
    by_params = {}
    if pruning_path.is_file():
        by_params = {
            m["params"]: m for m in _load(pruning_path)["models"] if m["criterion"] in (None, "taylor")
        }
    rows = []
    for stem in PRUNED:
        path = weights / f"{stem}.json"
        if not path.is_file():
            notes.append(f"{path} missing: no {stem} row")
            continue
        w = _load(path)
        curve = by_params.get(w["params"])
        if curve is not None and abs(curve["lfw_accuracy_mean"] - w["lfw_accuracy_mean"]) > 1e-9:
            notes.append(f"{stem}: pruning_v1.json and {path.name} disagree on LFW accuracy")
        rows.append(
            MeasuredRow(
                "trained" if stem == "base" else "pruned",
                stem,
                "torch fp32",
                "dlib teacher's landmarks",
                w["lfw_accuracy_mean"],
                w.get("lfw_accuracy_std"),
                w.get("lfw_tar_at_far_1e-3"),
                w.get("lfw_eer"),
                w["params"],
                w.get("mflops"),
                None,
                False,
                f"pruning/weights/{stem}.json (= benchmarks/results/pruning_v1.json)",
            )
        )
    return rows


def _embedder_teacher_rows(results: Path) -> list[MeasuredRow]:
    """Rows for the other teacher embedders measured through our own detector, where measured (optional
    records: no note when absent)."""
    rows = []
    for name in ("edgeface-xs", "edgeface-xxs", "mobilefacenet"):
        path = results / f"lfw_{name}.json"
        if path.is_file():
            rows.append(
                _teacher_row(
                    _load(path),
                    name,
                    "torch / ONNX fp32 (squeezerface eval --embedder)",
                    "our detector (+ landmark refiner)",
                    f"benchmarks/results/lfw_{name}.json",
                )
            )
    return rows


def _end_to_end_rows(results: Path, shipped: set[str], notes: list[str]) -> list[MeasuredRow]:
    """One row per detector + embedder pipeline of the detector report: the figures a user of the runtime
    gets, faces found and aligned by our own detector."""
    detector_path = results / "detector.json"
    if not detector_path.is_file():
        notes.append(f"{detector_path} missing: no end-to-end rows")
        return []
    rows = []
    for det, entry in _load(detector_path).get("lfw", {}).items():
        ours = entry["our_landmarks"]
        rows.append(
            MeasuredRow(
                "end to end",
                f"{det} + {entry['embedder']}",
                entry["embedder"],
                f"our detector {det} (+ landmark refiner)",
                ours["accuracy_mean"],
                ours.get("accuracy_std"),
                ours.get("tar_at_far_1e-3"),
                ours.get("eer"),
                None,
                None,
                ours.get("no_face_fallback"),
                det in shipped and entry["embedder"] in shipped,
                "benchmarks/results/detector.json (lfw)",
            )
        )
    return rows


def _artifact_rows(c: dict[str, Any], record: str, shipped: set[str], notes: list[str]) -> list[MeasuredRow]:
    """One row per converted artifact of a conversion report (its LFW alignment as the report says)."""
    aligned = (
        "our detector (+ landmark refiner)"
        if c.get("lfw_alignment") == "runtime"
        else "dlib teacher's landmarks"
    )
    rows = []
    for a in c["artifacts"]:
        card = _card_row(a["file"])
        if card is not None and abs(card["accuracy_mean"] - a["lfw_accuracy_mean"]) > 1e-9:
            notes.append(
                f"{a['file']}: its card says LFW {card['accuracy_mean']:.4f}, "
                f"{record} {a['lfw_accuracy_mean']:.4f}"
            )
        rows.append(
            MeasuredRow(
                "artifact",
                c["model"],
                a["file"],
                aligned,
                a["lfw_accuracy_mean"],
                a.get("lfw_accuracy_std"),
                a.get("lfw_tar_at_far_1e-3"),
                (card or {}).get("eer"),
                c["params"],
                c["mflops"],
                c["torch_lfw"].get("no_face_fallback"),
                a["file"] in shipped,
                f"benchmarks/results/{record}",
            )
        )
    return rows


def far_at_default(results: Path = RESULTS) -> list[str]:
    """Markdown lines: the false-accept rate at the shipped card's default threshold, measured on LFW by the
    shipped pipeline (`lfw_shipped.json`) and on the held-out identities the threshold was calibrated on,
    each data set alone (`heldout_far.json`) where measured."""
    path = results / "lfw_shipped.json"
    if not path.is_file():
        return []
    f = _load(path)["far_at_default_threshold"]
    conv = _load(results / "conversion.json") if (results / "conversion.json").is_file() else {}
    lines = [
        "## False accepts at the default threshold",
        "",
        f"The shipped card's `{f['operating_point']}` threshold {f['threshold']:.4f}, "
        f"nominal FAR {f['nominal_far']:g}.",
        "",
        "| data | impostor pairs | false accepts | measured FAR | x nominal | TAR (genuine pairs) | record |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| LFW View 2, shipped pipeline end to end (quality gate on) | "
        f"{f['impostor_pairs']:,} | {f['false_accepts']} | "
        f"{f['measured_far']:.2e} | {f['far_ratio']:.2f} | {100 * f['tar']:.2f} % ({f['genuine_pairs']:,}) | "
        "benchmarks/results/lfw_shipped.json |",
    ]
    per_set = results / "heldout_far.json"
    if per_set.is_file():  # measured set by set at the same threshold (benchmarks/heldout_far.py)
        for r in _load(per_set)["rows"]:
            who = f"{r['data']}, {r['identities']} identities" if r.get("identities") else r["data"]
            tar = "" if r["tar"] is None else f"{100 * r['tar']:.2f} % ({r['genuine_pairs']:,})"
            lines.append(
                f"| held-out identities: {who} | {r['impostor_pairs']:,} | {r['false_accepts']:,} | "
                f"{r['far']:.2e} | {r['x_nominal']:.2f} | {tar} | benchmarks/results/heldout_far.json |"
            )
        return [*lines, ""]
    held = conv.get("heldout_pairs") or {}
    impostors = sum(p.get("impostor", 0) for p in held.values() if isinstance(p, dict))
    if impostors:
        sets = ", ".join(f"{k} {v['identities']} identities" for k, v in held.items() if v.get("identities"))
        lines.append(
            f"| held-out identities ({sets}): the calibration set, FAR 1e-3 by construction over all its "
            f"pairs; per-set rates not measured | {impostors:,} | | 1e-03 | 1.00 | | "
            "benchmarks/results/conversion.json |"
        )
    return [*lines, ""]


def _card_row(file: str) -> dict[str, Any] | None:
    """The LFW row of a shipped model's card for that very file (None when not shipped or absent)."""
    try:
        from squeezerface.errors import ModelFileError
        from squeezerface.modelcard import load_card
        from squeezerface.shipped import model_path

        card = load_card(model_path(file), check_sha256=False)
    except (ImportError, ModelFileError, OSError):
        return None
    return next((r for r in card.accuracy if r.get("artifact") == file and "accuracy_mean" in r), None)


def quoted_rows(path: Path = QUOTED) -> list[QuotedRow]:
    """The quoted-literature rows (TOML; Python >= 3.11 or tomli)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    data = tomllib.loads(path.read_text())
    return [
        QuotedRow(
            m["name"],
            m.get("lfw_accuracy"),
            m.get("params_m"),
            m.get("mcompute"),
            m.get("compute_unit", ""),
            m.get("training", ""),
            m["source"],
            m.get("url", ""),
        )
        for m in data["model"]
    ]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def render_markdown(rows: list[MeasuredRow], quoted: list[QuotedRow], notes: list[str]) -> str:
    """accuracy.md. Pure."""
    lines = [
        "# Accuracy: LFW View 2, 10-fold",
        "",
        "## Measured here",
        "",
        "Every figure below was measured in this repository by the command its source record names (see "
        "benchmarks/RUNS.md); this table only gathers them. Accuracy: mean ± std over the 10 folds "
        "(threshold chosen on the other 9); TAR at FAR 1e-3 over all 6,000 pairs. " + IMPOSTOR_NOTE + ".",
        "",
        "| group | model | artifact | aligned by | accuracy % | TAR@FAR1e-3 % | EER % | params | MMACs | "
        "no-face photos | shipped | record |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        acc = _pct(r.accuracy_mean) + (f" ± {_pct(r.accuracy_std)}" if r.accuracy_std is not None else "")
        lines.append(
            f"| {r.group} | {r.model} | {r.artifact} | {r.alignment} | {acc} | {_pct(r.tar_at_far_1e_3)} | "
            f"{_pct(r.eer)} | {'' if r.params is None else f'{r.params:,}'} | "
            f"{'' if r.mmacs is None else f'{r.mmacs:.1f}'} | {'' if r.no_face is None else r.no_face} | "
            f"{'yes' if r.shipped else ''} | {r.source} |"
        )
    lines += ["", *far_at_default()]
    lines += [
        "",
        "## Quoted from the literature (not measured here)",
        "",
        "Other models' figures as their authors or model cards report them: other training data, other "
        "protocols, other alignment; context only, not a head-to-head comparison. Left blank where the "
        "source could not be checked.",
        "",
        "| model | LFW % (quoted) | params M | compute (M) | counted as | training | source |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for q in quoted:
        lines.append(
            f"| {q.name} | {'' if q.lfw_accuracy is None else f'{q.lfw_accuracy:.2f}'} | "
            f"{'' if q.params_m is None else q.params_m} | {'' if q.mcompute is None else q.mcompute} | "
            f"{q.compute_unit} | {q.training} | [{q.source}]({q.url}) |"
        )
    lines += ["", "![accuracy against size](accuracy_vs_size.png)", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def build(results: Path = RESULTS) -> dict[str, Any]:
    """The accuracy report (JSON-able)."""
    rows, notes = measured_rows(results)
    quoted = quoted_rows()
    return {
        "schema": 1,
        "benchmark": "LFW View 2 (10-fold), 6,000 pairs",
        "note": IMPOSTOR_NOTE,
        "measured": [r.to_dict() for r in rows],
        "quoted": [q.to_dict() for q in quoted],
        "notes": notes,
    }


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    rows = [MeasuredRow(**r) for r in report["measured"]]
    quoted = [QuotedRow(**{k: v for k, v in q.items() if k != "quoted"}) for q in report["quoted"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "accuracy.md").write_text(render_markdown(rows, quoted, report["notes"]))
    return out / "accuracy.json", out / "accuracy.md"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the committed records are")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write accuracy.{json,md}")
    args = ap.parse_args()
    for path in write(build(args.results), args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
