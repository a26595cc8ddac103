"""Latency on every input size beside the peers: the inputs, the one summary table and issue 17's targets.

benchmarks/run.py runs the latency harness once per input (LFW crops, then camera frames and phone photos of
the real-size set that `benchmarks/realsize.py build` makes from held-out photos), all in one invocation, and
this module joins the runs: end-to-end, decode+detect and embedding medians per pipeline and input, ratios
against dlib and against the YuNet + MobileFaceNet peer measured in the same run, LFW accuracy from the
committed `squeezerface eval` records of each pipeline, and the targets met or missed with by how much.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from squeezerface.bench.images import ImageSpec

REALSIZE = ("640x480", "1280x720", "1920x1080", "4032x3024")
LABELS = {"lfw": "LFW crop 250x250", "640x480": "VGA frame", "1280x720": "720p frame",
          "1920x1080": "1080p photo", "4032x3024": "12 MP photo"}  # fmt: skip
PEER = "yunet+mobilefacenet"
ACCURACY_FILES = {
    "dlib": "lfw_teacher.json",
    "yunet+mobilefacenet": "lfw_yunet_mobilefacenet.json",
    "yunet+edgeface-xxs": "lfw_yunet_edgeface-xxs.json",
}
"""Each peer's committed LFW record; each of our configurations has its own, lfw_cfg_<configuration>.json.
All are `squeezerface eval` runs: largest face, no quality gate, no-face fallback box (one code path;
dlib's through its own HOG detector)."""
OURS_PREFIX = "squeezerface-"
ACCURACY_GATE = (0.988, 0.97)
"""A configuration may be the default only with LFW accuracy >= 98.8 % and TAR >= 97 % at FAR 1e-3 end to
end: the embedder issue's targets for the shipped pipeline."""


@dataclass(frozen=True)
class InputSet:
    """Two photos timed together (end to end = verify(A, B)) and where they come from."""

    name: str
    images: list[ImageSpec]
    note: str


def realsize_inputs(root: Path, names: Sequence[str] = REALSIZE) -> list[InputSet]:
    """Per resolution, the two single-face frames (not close-ups) of the real-size set whose face is
    nearest an eighth of the frame's width (a person at arm's length: 80 px in VGA, 504 px at 12 MP)."""
    truth = json.loads((root / "truth.json").read_text())
    out = []
    for name in names:
        frames = [f for f in truth["frames"] if f["file"].startswith(name + "/") and not f["closeup"]]
        single = [f for f in frames if len(f["faces"]) == 1]
        if len(single) < 2:
            raise ValueError(f"{root}: fewer than two single-face {name} frames")
        width = single[0]["width"]
        pick = sorted(single, key=lambda f: abs(face_width(f) - width / 8))[:2]
        images = [ImageSpec("file", str(root / f["file"])) for f in pick]
        sizes = " and ".join(f"{face_width(f):.0f}" for f in pick)
        note = f"{', '.join(f['file'] for f in pick)}: one face each, {sizes} px wide"
        out.append(InputSet(name, images, note))
    return out


def face_width(frame: dict[str, Any]) -> float:
    """Width of a single-face frame's face box, pixels."""
    x1, _, x2, _ = frame["faces"][0]["box"]
    return float(x2 - x1)


def accuracy_of(results: Path, configs: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """{pipeline or configuration: {accuracy, tar_at_far_1e-3, ...}} from the committed eval records
    present: the peers' and one per configuration of ours in `configs` (lfw_cfg_<name>.json)."""
    files = {**ACCURACY_FILES, **{c: f"lfw_cfg_{c}.json" for c in configs if c.startswith(OURS_PREFIX)}}
    out = {}
    for pipeline, file in files.items():
        path = results / file
        if not path.is_file():
            continue
        rec = json.loads(path.read_text())
        out[pipeline] = {
            "accuracy": rec["accuracy_mean"],
            "accuracy_std": rec["accuracy_std"],
            "tar_at_far_1e-3": rec["tar_at_far"]["1e-03"]["tar"],
            "no_face_photos": rec["no_face_count"],
            "pairs": rec["pairs"],
            "source": f"benchmarks/results/{file}",
        }
    return out


def configs_of(inputs: Sequence[dict[str, Any]]) -> list[str]:
    """Every configuration name the runs hold, in order."""
    return list(dict.fromkeys(c["config"]["name"] for b in inputs for c in b["report"]["configs"]))


@dataclass(frozen=True)
class Row:
    """One configuration on one input, 1 thread unless said."""

    input: str
    config: str
    threads: int
    end_to_end_ms: float | None
    decode_detect_ms: float | None
    embed_ms: float | None
    speedup_vs_dlib: float | None  # end to end
    speedup_vs_peer: float | None  # end to end, against yunet+mobilefacenet
    embed_speedup_vs_dlib: float | None
    peak_rss_mb: float | None
    model_bytes: int | None
    lfw_accuracy: float | None


def summary_rows(inputs: Sequence[dict[str, Any]], accuracy: dict[str, dict[str, Any]]) -> list[Row]:
    """The table: every configuration on every input, with same-run ratios. Pure."""
    rows = []
    for block in inputs:
        rep = block["report"]
        p50 = {(r["config"], r["threads"], r["stage"]): r["p50_ms"] for r in rep["latency"]}
        for c in rep["configs"]:
            if c["status"] != "ok":
                continue
            name, t = c["config"]["name"], c["config"]["threads"]
            e2e, emb = p50.get((name, t, "end_to_end")), p50.get((name, t, "embed"))
            dlib_e2e, dlib_emb = p50.get(("dlib", 1, "end_to_end")), p50.get(("dlib", 1, "embed"))
            peer_e2e = p50.get((PEER, 1, "end_to_end"))
            models = c.get("models", {})
            size = (models.get("embedder_bytes") or 0) + (models.get("detector_bytes") or 0)
            rows.append(
                Row(
                    block["name"], name, t, e2e, p50.get((name, t, "decode_detect")), emb,
                    _ratio(dlib_e2e, e2e), _ratio(peer_e2e, e2e), _ratio(dlib_emb, emb),
                    c.get("peak_rss_mb"), size or None,
                    accuracy.get(name, {}).get("accuracy"),
                )
            )  # fmt: skip
    return rows


def _ratio(slow: float | None, fast: float | None) -> float | None:
    return None if not slow or not fast else slow / fast


@dataclass(frozen=True)
class Target:
    what: str
    required: str
    measured: str
    met: bool | None  # None: not measurable in this run (`why` says why)
    why: str = ""


def check_targets(rows: Sequence[Row], accuracy: dict[str, dict[str, Any]], ours: str) -> list[Target]:
    """Issue 17's targets for our default configuration `ours`, 1 thread. Pure."""
    by = {(r.input, r.config): r for r in rows if r.threads == 1}
    out = []
    lfw = by.get(("lfw", ours))
    dlib = by.get(("lfw", "dlib"))
    if lfw and lfw.embed_speedup_vs_dlib and lfw.embed_ms and dlib and dlib.embed_ms:
        why = f"ours {lfw.embed_ms:.2f} ms, dlib's ResNet {dlib.embed_ms:.1f} ms"
        out.append(_at_least("embedding vs dlib (LFW crop)", lfw.embed_speedup_vs_dlib, 100, why))
    if lfw and lfw.speedup_vs_dlib and lfw.end_to_end_ms and lfw.embed_ms and dlib and dlib.end_to_end_ms:
        why = (f"ours {lfw.end_to_end_ms:.2f} ms, of which the two embeddings {2 * lfw.embed_ms:.2f} ms; "
               f"dlib {dlib.end_to_end_ms:.0f} ms")  # fmt: skip
        out.append(_at_least("end-to-end verify vs dlib (LFW crops)", lfw.speedup_vs_dlib, 30, why))
    big = by.get(("4032x3024", ours))
    if big and big.speedup_vs_dlib:
        out.append(_at_least("end-to-end verify vs dlib (12 MP photos)", big.speedup_vs_dlib, 100))
    for name in ["lfw", *REALSIZE]:
        row, peer_row = by.get((name, ours)), by.get((name, PEER))
        what = f"end-to-end vs YuNet + MobileFaceNet ({LABELS[name]})"
        if row and row.speedup_vs_peer and peer_row:
            why = (f"decode+detect ours {_fmt(row.decode_detect_ms, 1)} ms, the peer's "
                   f"{_fmt(peer_row.decode_detect_ms, 1)} ms; embed ours {_fmt(row.embed_ms, 2)} ms, "
                   f"the peer's {_fmt(peer_row.embed_ms, 2)} ms")  # fmt: skip
            out.append(_at_least(what, row.speedup_vs_peer, 1, why))
        elif row and row.end_to_end_ms and (name, PEER) in by:
            why = "no figure: the peer found no face in one of the two photos (no end to end)"
            out.append(Target(what, ">= 1x", "n/a", None, why))
    mine, peer = accuracy.get(ours, {}), accuracy.get(PEER, {})
    if mine.get("accuracy") and peer.get("accuracy"):
        a, b = mine["accuracy"], peer["accuracy"]
        out.append(
            Target("LFW accuracy at least YuNet + MobileFaceNet's", f">= {b:.2%}", f"{a:.2%}", a >= b,
                   "" if a >= b else f"{(b - a) * 100:.2f} points lower")
        )  # fmt: skip
    return out


def _at_least(what: str, measured: float, required: float, where: str = "") -> Target:
    """A speed-up target; a miss says by how much, and `where` says where the time goes (missed only)."""
    met = measured >= required
    short = f"{measured:.1f}x of {required:g}x: {100 * (1 - measured / required):.0f} % short"
    why = "" if met else "; ".join(filter(None, [short, where]))
    shown = f"{measured:.2f}x" if required == 1 else f"{measured:.1f}x"
    return Target(what, f">= {required:g}x", shown, met, why)


def _fmt(v: float | None, digits: int = 1, suffix: str = "") -> str:
    return "" if v is None else f"{v:.{digits}f}{suffix}"


def render(
    rows: Sequence[Row],
    targets: Sequence[Target],
    inputs: Sequence[dict[str, Any]],
    accuracy: dict[str, dict[str, Any]],
) -> list[str]:
    """Markdown lines: the inputs, the targets, then one table per input (1 thread first)."""
    lines = ["## Inputs", "", "| input | photos |", "| --- | --- |"]
    lines += [f"| {LABELS.get(b['name'], b['name'])} | {b['note']} |" for b in inputs]
    lines += ["", "## LFW accuracy of each pipeline (View 2, 6,000 pairs, one `squeezerface eval` code path)"]
    lines += [""]
    lines += ["| pipeline | accuracy | TAR at FAR 1e-3 | photos without a face (fallback box) | record |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for name, acc in accuracy.items():
        lines.append(
            f"| {name} | {acc['accuracy']:.2%} ± {acc['accuracy_std']:.2%} | {acc['tar_at_far_1e-3']:.2%} | "
            f"{acc['no_face_photos']} | `{acc['source']}` |"
        )
    lines += ["", "## Targets (1 thread, our default configuration)", ""]
    lines += ["| target | required | measured |  | by how much |", "| --- | --- | --- | --- | --- |"]
    for t in targets:
        verdict = "not measured" if t.met is None else ("met" if t.met else "**missed**")
        lines.append(f"| {t.what} | {t.required} | {t.measured} | {verdict} | {t.why} |")
    head = ("| configuration | threads | end to end ms | decode+detect ms | embed ms | vs dlib | "
            "vs YuNet+MFN | embed vs dlib | peak RSS MiB | model bytes | LFW acc |")  # fmt: skip
    for b in inputs:
        title = f"## {LABELS.get(b['name'], b['name'])} (p50; speed-ups end to end, same run)"
        lines += ["", title, "", head, "| --- " * 11 + "|"]
        for r in (r for r in rows if r.input == b["name"]):
            lines.append(
                f"| {r.config} | {r.threads} | {_fmt(r.end_to_end_ms, 2)} | {_fmt(r.decode_detect_ms, 2)} | "
                f"{_fmt(r.embed_ms, 3)} | {_fmt(r.speedup_vs_dlib, 1, 'x')} | "
                f"{_fmt(r.speedup_vs_peer, 2, 'x')} | "
                f"{_fmt(r.embed_speedup_vs_dlib, 1, 'x')} | {_fmt(r.peak_rss_mb, 0)} | "
                f"{'' if r.model_bytes is None else f'{r.model_bytes:,}'} | "
                f"{'' if r.lfw_accuracy is None else f'{r.lfw_accuracy:.2%}'} |"
            )
    return lines


def as_json(rows: Sequence[Row], targets: Sequence[Target]) -> dict[str, Any]:
    return {"summary": [asdict(r) for r in rows], "targets_issue17": [asdict(t) for t in targets]}


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def choose_defaults(
    blocks: Sequence[dict[str, Any]], accuracy: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The runtime defaults this machine's measurements justify: among our configurations at 1 thread
    (each a detector + embedder pair of one engine and precision per stage) that pass `ACCURACY_GATE` on
    their own LFW record (all of them when `accuracy` is None), the one with the lowest geometric mean of
    its end-to-end p50 over every input; the per-stage means (decode+detect, embed) and each one's LFW
    figures are kept as the evidence. Then the thread count: the largest whose end-to-end p50 on LFW
    crops is not above 1 thread's (1 when every other count is slower). Pure."""
    p50: dict[tuple[str, str], list[float]] = {}
    models: dict[str, dict[str, Any]] = {}
    for block in blocks:
        rep = block["report"]
        for c in rep["configs"]:
            if c["status"] == "ok" and c["config"]["pipeline"] == "squeezerface":
                models[c["config"]["name"]] = c["models"]
        for r in rep["latency"]:
            if r["config"] in models and r["threads"] == 1:
                p50.setdefault((r["config"], r["stage"]), []).append(r["p50_ms"])

    def means(stage: str) -> dict[str, float]:
        return {cfg: _geomean(v) for (cfg, st), v in p50.items() if st == stage}

    e2e_means = means("end_to_end")

    def passes(cfg: str) -> bool:
        if accuracy is None:
            return True
        acc = accuracy.get(cfg, {})
        lfw, tar = acc.get("accuracy") or 0.0, acc.get("tar_at_far_1e-3") or 0.0
        return lfw >= ACCURACY_GATE[0] and tar >= ACCURACY_GATE[1]

    allowed = [c for c in e2e_means if passes(c)] or list(e2e_means)
    config = min(allowed, key=e2e_means.__getitem__)
    lfw = next((b["report"] for b in blocks if b["name"] == "lfw"), blocks[0]["report"])
    e2e = {
        r["threads"]: r["p50_ms"]
        for r in lfw["latency"]
        if r["config"] == config and r["stage"] == "end_to_end"
    }
    threads = max([t for t, v in e2e.items() if 1 in e2e and v <= e2e[1]], default=1)
    chosen = models[config]
    return {
        "machine": lfw["device"].get("machine"),
        "config": config,
        "engine": chosen["engines"][0],
        "detector": chosen["detector"],
        "embedder": chosen["embedder"],
        "threads": threads,
        "evidence": {
            "end_to_end_geomean_ms": {k: round(v, 3) for k, v in e2e_means.items()},
            "decode_detect_geomean_ms": {k: round(v, 3) for k, v in means("decode_detect").items()},
            "embed_geomean_ms": {k: round(v, 3) for k, v in means("embed").items()},
            "end_to_end_lfw_ms_by_threads": {str(k): round(v, 3) for k, v in e2e.items()},
            "lfw_accuracy": {c: (accuracy or {}).get(c, {}).get("accuracy") for c in e2e_means},
            "lfw_tar_at_far_1e-3": {c: (accuracy or {}).get(c, {}).get("tar_at_far_1e-3") for c in e2e_means},
            "gate": {"accuracy": ACCURACY_GATE[0], "tar_at_far_1e-3": ACCURACY_GATE[1]},
            "passed_gate": sorted(allowed),
        },
    }


def render_defaults(defaults: dict[str, Any]) -> list[str]:
    """Markdown: the defaults chosen and the per-stage figures that chose them."""
    ev = defaults["evidence"]
    gate = ev.get("gate", {})
    lines = [
        "## Defaults chosen by this run",
        "",
        f"On {defaults['machine']}: detector `{defaults['detector']}`, embedder `{defaults['embedder']}` "
        f"({defaults['engine']}), {defaults['threads']} thread(s): configuration `{defaults['config']}`.",
        "",
        f"Gate: LFW accuracy >= {gate.get('accuracy', 0):.1%} and TAR >= "
        f"{gate.get('tar_at_far_1e-3', 0):.0%} "
        "at FAR 1e-3 end to end (each configuration's own `lfw_cfg_*.json` record); then the fastest. "
        "Geometric means over the inputs of each stage's p50, 1 thread (ms):",
        "",
        "| configuration | end to end | decode+detect | embed | LFW accuracy | TAR at FAR 1e-3 | gate |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cfg in sorted(ev["end_to_end_geomean_ms"], key=ev["end_to_end_geomean_ms"].__getitem__):
        dd = ev["decode_detect_geomean_ms"].get(cfg, float("nan"))
        emb = ev["embed_geomean_ms"].get(cfg, float("nan"))
        acc, tar = ev.get("lfw_accuracy", {}).get(cfg), ev.get("lfw_tar_at_far_1e-3", {}).get(cfg)
        gate = "passed" if cfg in ev.get("passed_gate", []) else "**failed**"
        lines.append(
            f"| {cfg} | {ev['end_to_end_geomean_ms'][cfg]:.3f} | {dd:.3f} | {emb:.3f} | "
            f"{'' if acc is None else f'{acc:.2%}'} | {'' if tar is None else f'{tar:.2%}'} | {gate} |"
        )
    by_t = ", ".join(f"{t} thread(s) {v:.2f} ms" for t, v in ev["end_to_end_lfw_ms_by_threads"].items())
    lines += ["", f"End to end on LFW crops for that configuration: {by_t}."]
    return lines


def write_defaults(defaults: dict[str, Any], path: Path, device_summary: str, created: str) -> Path:
    """Record `defaults` as this machine architecture's entry of the shipped models/defaults.json (other
    architectures' entries kept), with the figures that chose it."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    table["about"] = (
        "Runtime defaults per CPU architecture (platform.machine()), chosen by measurement: "
        "benchmarks/run.py --write-defaults, from benchmarks/results/latency.json. An architecture not "
        "listed uses the int8 pair (squeezerface.shipped.machine_defaults)."
    )
    ev = defaults["evidence"]
    others = [c for c in ev["end_to_end_geomean_ms"] if c != defaults["config"]]
    mine = ev["end_to_end_geomean_ms"][defaults["config"]]
    faster = [c for c in others if ev["end_to_end_geomean_ms"][c] < mine]
    why = (
        f"the fastest configuration passing the accuracy gate (LFW >= {ACCURACY_GATE[0]:.1%}, TAR >= "
        f"{ACCURACY_GATE[1]:.0%} at FAR 1e-3): end to end at 1 thread, geometric mean over LFW crops, VGA, "
        f"720p, 1080p and 12 MP, {ev['end_to_end_geomean_ms'][defaults['config']]:.1f} ms on "
        f"{device_summary}, {created}"
        + (f"; faster but under the gate: {', '.join(faster)}" if faster else "")
        + f"; {defaults['threads']} thread(s): no other count was faster on LFW crops"
    )
    entry = {k: defaults[k] for k in ("detector", "embedder", "threads", "config")}
    table.setdefault("machines", {})[defaults["machine"]] = {**entry, "why": why, "evidence": ev}
    path.write_text(json.dumps(table, indent=1) + "\n")
    return path
