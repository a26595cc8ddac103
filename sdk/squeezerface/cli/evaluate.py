"""Commands that measure and calibrate: eval on a pairs list, calibrate thresholds, list shipped models."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from squeezerface.cli.common import (
    EXIT_OK,
    add_quality_option,
    parse_option,
    positive_int,
    quality_thresholds,
    unit_fraction,
)


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="verification accuracy of an embedder on an LFW-style pairs list",
        description=(
            "Embed every photo a pairs file names, score each pair by cosine similarity and report "
            "k-fold accuracy (threshold chosen on the other folds), ROC AUC, EER, TAR at fixed FAR and the "
            "FAR measured at the model card's default threshold, as JSON + Markdown + ROC/DET plots. The "
            "default embedder is the shipped pipeline, run through the same face path as verify (face "
            "choice by --policy, quality gate). Photos where no face is detected are embedded through a "
            "centred-box fallback and counted; photos the quality gate refuses are listed and their pairs "
            "left out. Embeddings are cached by file content and every face-path option, so a second run "
            "with the same options is instant."
        ),
        epilog=(
            "example: squeezerface eval --root ../shared/data/lfw/images "
            "--pairs ../shared/data/lfw/pairs.txt --out benchmarks/results --name lfw_shipped "
            "(teachers: --embedder dlib, edgeface-xs, edgeface-xxs, mobilefacenet)"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", type=Path, required=True, help="folder holding NAME/NAME_NNNN.jpg")
    p.add_argument("--pairs", type=Path, required=True, help="pairs file in the LFW pairs.txt format")
    p.add_argument(
        "--embedder",
        default="squeezerfacenet",
        help="built-in embedder name (squeezerfacenet: the shipped pipeline; teachers: dlib, edgeface-xs, "
        "edgeface-xxs, mobilefacenet) or 'package.module:factory' returning a FaceEmbedder",
    )
    p.add_argument(
        "--option",
        "-O",
        action="append",
        default=[],
        type=parse_option,
        metavar="KEY=VALUE",
        help="embedder option, repeatable (squeezerfacenet: model=FILE, locator=tinyface|FILE|dlib; "
        "dlib: detector=hog|cnn, upsample=1, num_jitters=0)",
    )
    p.add_argument("--out", type=Path, default=Path("eval_results"), help="output folder")
    p.add_argument("--name", default=None, help="file name stem of the outputs (default: from the embedder)")
    p.add_argument(
        "--workers", type=positive_int, default=min(2, os.cpu_count() or 1), help="worker processes"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache file (default: $SQUEEZERFACE_CACHE or ~/.cache/squeezerface/embeddings.sqlite)",
    )
    p.add_argument("--no-cache", action="store_true", help="compute every embedding afresh, store nothing")
    p.add_argument(
        "--policy",
        "--select",
        dest="policy",
        choices=("largest", "central"),
        default="largest",
        help="which face to use when a photo shows several (largest: as verify does)",
    )
    add_quality_option(p)
    p.add_argument(
        "--fallback-box",
        type=unit_fraction,
        default=0.5,
        help="no-face fallback: side of the centred face box as a fraction of the shorter image side; "
        "0 makes a no-face photo an error",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a summary (and any error) as one JSON object")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from squeezerface.cache import default_cache_path
    from squeezerface.datasets import read_pairs
    from squeezerface.embedders.base import EmbedderSpec, Fallback
    from squeezerface.evaluation import evaluate, write_outputs

    pairs = read_pairs(args.root, args.pairs)
    spec = EmbedderSpec(args.embedder, tuple(args.option))
    fallback = Fallback(enabled=args.fallback_box > 0, box_fraction=args.fallback_box or 0.5)
    cache = None if args.no_cache else (args.cache or default_cache_path())
    with option_errors({key: f"-O {key}={value}" for key, value in args.option}):
        ev = evaluate(
            pairs,
            spec,
            cache_path=cache,
            workers=args.workers,
            policy=args.policy,
            fallback=fallback,
            quality=quality_thresholds(args),
            show_progress=not args.quiet,
        )
    name = args.name or ev.short_name.replace("@", "_")
    command = ["squeezerface", *args.argv]
    paths = write_outputs(ev, args.out, name, command)
    r = ev.report
    far = ev.far_at_card_threshold()
    if args.json:
        summary = {
            "embedder": ev.fingerprint,
            "pairs": len(ev.scored_pairs),
            "pairs_dropped": len(ev.pairs) - len(ev.scored_pairs),
            "accuracy_mean": r.folds.mean,
            "eer": r.eer.eer,
            "auc": r.auc,
            "far_at_default_threshold": far,
            "no_face_count": len(ev.no_face_paths),
            "refused_count": len(ev.refused_paths),
            "outputs": {k: str(v) for k, v in paths.items()},
        }
        print(json.dumps(summary))
        return EXIT_OK
    at_default = (
        ""
        if far is None or far["measured_far"] is None
        else f", FAR {far['measured_far']:.1e} at the card's threshold (nominal {far['nominal_far']:g})"
    )
    print(
        f"{ev.fingerprint}: {len(ev.scored_pairs)} pairs, accuracy {100 * r.folds.mean:.2f} % "
        f"± {100 * r.folds.std:.2f}, EER {100 * r.eer.eer:.2f} %, AUC {r.auc:.4f}{at_default}, "
        f"no face in {len(ev.no_face_paths)} photos, {len(ev.refused_paths)} refused"
    )
    for path in paths.values():
        print(f"wrote {path}")
    return EXIT_OK


@contextmanager
def option_errors(written: dict[str, str]) -> Iterator[None]:
    """An embedder's OptionError in the command line's terms, prefixed by the option as the user wrote it
    (`written`: option name -> e.g. "-O locator=nosuch")."""
    from squeezerface.errors import OptionError

    try:
        yield
    except OptionError as exc:
        if exc.option in written:
            raise OptionError(exc.option, f"{written[exc.option]}: {exc}") from None
        raise


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="set a model's thresholds on your own labelled photos; writes a model card",
        description=(
            "Embed labelled photos with a model, score genuine and impostor pairs, and write a copy of "
            "the model's card whose thresholds (cosine, accept when above) hold at FAR 1e-2, 1e-3, 1e-4 "
            "and at the EER on YOUR data, with the pair counts behind each. A FAR the impostor count "
            "cannot support (fewer than one false accept) is reported as unsupported, not guessed. "
            "Photos go through the same face path as verify (--policy, quality gate): a photo verify would "
            "refuse is left out and counted, so the thresholds hold for what the app scores. Photos: an "
            "LFW-style pairs file (--pairs, one --root) or identity folders ROOT/ID/*.jpg under one or more "
            "--root (all pairs; identities of different roots are kept apart)."
        ),
        epilog=(
            "example: squeezerface calibrate --root held_out/celeba_wild --root held_out/pins "
            "--out my_card.json (never calibrate on the benchmark you report on)"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--root",
        type=Path,
        required=True,
        action="append",
        help="photo folder (NAME/NAME_NNNN.jpg or ID/*.jpg); repeat to calibrate on several",
    )
    p.add_argument("--pairs", type=Path, default=None, help="pairs file in the LFW format (else: all pairs)")
    p.add_argument(
        "--model", default=None, help="shipped model name or model file (default: the shipped int8 ONNX)"
    )
    p.add_argument(
        "--locator",
        default="tinyface",
        help="face detector + landmarks: tinyface (shipped), a detector file, or an embedder name (dlib)",
    )
    p.add_argument("--out", type=Path, required=True, help="where to write the calibrated card (JSON)")
    p.add_argument(
        "--policy", choices=("largest", "central"), default="largest", help="which face of several"
    )
    add_quality_option(p)
    p.add_argument(
        "--fallback-box",
        type=unit_fraction,
        default=0.0,
        help="embed no-face photos through a centred box this fraction of the shorter side (default 0: "
        "left out, as verify refuses them)",
    )
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache file (default: user cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the calibration (and any error) as JSON")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from squeezerface.cache import default_cache_path
    from squeezerface.embedders.base import Fallback
    from squeezerface.modelcard import save_card
    from squeezerface.shipped import DEFAULT_EMBEDDER
    from squeezerface.thresholds import calibrate_on_folders

    with option_errors({"locator": f"--locator {args.locator}"}):
        run = calibrate_on_folders(
            args.root,
            args.pairs,
            model=args.model or DEFAULT_EMBEDDER,
            locator=args.locator,
            cache_path=args.cache or default_cache_path(),
            workers=args.workers,
            show_progress=not args.quiet,
            fallback=Fallback(box_fraction=args.fallback_box) if args.fallback_box > 0 else None,
            quality=quality_thresholds(args),
            policy=args.policy,
        )
    cal = run.card.calibration
    assert cal is not None
    if args.json:
        written = save_card(run.card, args.out)
        refused = {str(p): why for p, why in run.refused.items()}
        print(json.dumps({"card": str(written), "calibration": asdict(cal), "refused": refused}))
        return EXIT_OK
    print(f"{run.card.file}: {cal.source}; {cal.genuine_pairs} genuine / {cal.impostor_pairs} impostor pairs")
    for point in cal.points:
        print(
            f"  {point.name:>10}: threshold {point.threshold:.4f}  FAR {point.far:.5f}  TAR {point.tar:.4f}"
        )
    for what in cal.unsupported:
        print(f"  unsupported: {what}")
    if run.no_face:
        print(f"  {run.no_face} photo(s) had no detected face (centred-box fallback used)")
    if run.refused:
        print(f"  {len(run.refused)} photo(s) left out: verify would refuse them (no face, quality gate)")
    print(f"wrote {save_card(run.card, args.out)}")
    return EXIT_OK


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the shipped models with their cards' key facts",
        description="List the model files shipped inside the package (found offline with "
        "importlib.resources), checking each against the SHA-256 in its card: format, precision, size, "
        "parameters, and for embedders LFW accuracy and the threshold at FAR 1e-3, for detectors held-out "
        "recall and precision and the LFW alignment gap, for the landmark refiner its held-out NME.",
    )
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    import json

    from squeezerface.modelcard import load_card
    from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, model_path, shipped_models

    names = shipped_models()
    if not names:
        print("no shipped models in this installation")
        return EXIT_OK
    cards = {name: load_card(model_path(name)) for name in names}
    if args.json:
        print(json.dumps({n: c.to_dict() for n, c in cards.items()}, indent=1))
        return EXIT_OK
    for name, card in cards.items():
        default = "  (default)" if name in (DEFAULT_EMBEDDER, DEFAULT_DETECTOR) else ""
        head = (
            f"{name}: {card.format} {card.precision}, {card.size_bytes / 1024:.0f} KB, {card.params:,} params"
        )
        rows = [r for r in card.accuracy if r.get("artifact") == card.file]
        if card.embedding_size == 0 and "detection" not in card.training:  # the landmark refiner
            held = next((r for r in rows if "nme" in r), None)
            facts = (
                ""
                if held is None
                else f", held-out NME {held['nme']:.4f} (unrefined {held['nme_unrefined']:.4f})"
            )
        elif card.embedding_size == 0:  # a detector: held-out detection quality and the LFW alignment gap
            held = next((r for r in rows if r["benchmark"].startswith("held-out")), None)
            gap = next((r["gap_pp"] for r in rows if "gap_pp" in r), None)
            facts = "" if held is None else f", recall {held['recall']:.3f} precision {held['precision']:.3f}"
            facts += "" if gap is None else f", LFW alignment gap {gap:.2f} pp"
        else:
            lfw = next((r for r in rows if "accuracy_mean" in r), None)
            facts = f", LFW {100 * lfw['accuracy_mean']:.2f} %" if lfw else ", LFW n/a"
            if card.calibration:
                facts += f", threshold@FAR1e-3 {card.threshold('far_1e-3'):.3f}"
        print(head + facts + default)
    return EXIT_OK
