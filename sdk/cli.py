"""`squeezerface` command line. Argument parsing only: every command calls the library API.

Exit status: 0 success; 1 a negative answer (verify: different people; identify: nobody recognised);
2 bad input or usage (a typed squeezerface error, message on stderr); 3 an optional dependency is missing
(the message names the extra to install).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from squeezerface.errors import EmbedderUnavailableError, SqueezerfaceError

if TYPE_CHECKING:
    from squeezerface.quality import QualityThresholds
    from squeezerface.verify import FaceVerifier

EXIT_OK, EXIT_BAD_INPUT, EXIT_MISSING_DEPENDENCY = 0, 2, 3


def _parse_option(text: str) -> tuple[str, object]:
    """`key=value` with value parsed as int, float, bool or kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    value: object = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    return key, value


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="verification accuracy of an embedder on an LFW-style pairs list",
        description=(
            "Embed every photo a pairs file names, score each pair by cosine similarity and report "
            "k-fold accuracy (threshold chosen on the other folds), ROC AUC, EER and TAR at fixed FAR, as "
            "JSON + Markdown + ROC/DET plots. Photos where no face is detected are embedded through a "
            "centred-box fallback and counted. Embeddings are cached by file content, so a second run of "
            "the same embedder is instant."
        ),
        epilog=(
            "example: squeezerface eval --root ../shared/data/lfw/images "
            "--pairs ../shared/data/lfw/pairs.txt --embedder dlib --out benchmarks/results --name lfw_teacher"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", type=Path, required=True, help="folder holding NAME/NAME_NNNN.jpg")
    p.add_argument("--pairs", type=Path, required=True, help="pairs file in the LFW pairs.txt format")
    p.add_argument(
        "--embedder",
        default="dlib",
        help="built-in embedder name (dlib) or 'package.module:factory' returning a FaceEmbedder",
    )
    p.add_argument(
        "--option",
        "-O",
        action="append",
        default=[],
        type=_parse_option,
        metavar="KEY=VALUE",
        help="embedder option, repeatable (dlib: detector=hog|cnn, upsample=1, num_jitters=0)",
    )
    p.add_argument("--out", type=Path, default=Path("eval_results"), help="output folder")
    p.add_argument("--name", default=None, help="file name stem of the outputs (default: from the embedder)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache file (default: $SQUEEZERFACE_CACHE or ~/.cache/squeezerface/embeddings.sqlite)",
    )
    p.add_argument("--no-cache", action="store_true", help="compute every embedding afresh, store nothing")
    p.add_argument(
        "--select",
        choices=("central", "largest"),
        default="central",
        help="which face to use when a photo shows several",
    )
    p.add_argument(
        "--fallback-box",
        type=float,
        default=0.5,
        help="no-face fallback: side of the centred face box as a fraction of the shorter image side; "
        "0 makes a no-face photo an error",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from squeezerface.cache import default_cache_path
    from squeezerface.datasets import read_pairs
    from squeezerface.embedders.base import EmbedderSpec, Fallback
    from squeezerface.evaluation import evaluate, write_outputs

    pairs = read_pairs(args.root, args.pairs)
    spec = EmbedderSpec(args.embedder, tuple(args.option))
    fallback = Fallback(enabled=args.fallback_box > 0, box_fraction=args.fallback_box or 0.5)
    cache = None if args.no_cache else (args.cache or default_cache_path())
    ev = evaluate(
        pairs,
        spec,
        cache_path=cache,
        workers=args.workers,
        policy=args.select,
        fallback=fallback,
        show_progress=not args.quiet,
    )
    name = args.name or ev.short_name.replace("@", "_")
    command = ["squeezerface", *args.argv]
    paths = write_outputs(ev, args.out, name, command)
    r = ev.report
    print(
        f"{ev.fingerprint}: {len(pairs)} pairs, accuracy {100 * r.folds.mean:.2f} % "
        f"± {100 * r.folds.std:.2f}, EER {100 * r.eer.eer:.2f} %, AUC {r.auc:.4f}, "
        f"no face in {len(ev.no_face_paths)} photos"
    )
    for path in paths.values():
        print(f"wrote {path}")
    return EXIT_OK


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="set a model's thresholds on your own labelled photos; writes a model card",
        description=(
            "Embed labelled photos with a model, score genuine and impostor pairs, and write a copy of "
            "the model's card whose thresholds (cosine, accept when above) hold at FAR 1e-2, 1e-3, 1e-4 "
            "and at the EER on YOUR data, with the pair counts behind each. A FAR the impostor count "
            "cannot support (fewer than one false accept) is reported as unsupported, not guessed. "
            "Photos: an LFW-style pairs file (--pairs) or identity folders ROOT/ID/*.jpg (all pairs)."
        ),
        epilog=(
            "example: squeezerface calibrate --root ../shared/data/celeba_wild --out my_card.json "
            "(never calibrate on the benchmark you report on)"
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--root", type=Path, required=True, help="photo folder (NAME/NAME_NNNN.jpg or ID/*.jpg)")
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
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache file (default: user cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from squeezerface.cache import default_cache_path
    from squeezerface.modelcard import save_card
    from squeezerface.shipped import DEFAULT_EMBEDDER
    from squeezerface.thresholds import calibrate_on_folder

    run = calibrate_on_folder(
        args.root,
        args.pairs,
        model=args.model or DEFAULT_EMBEDDER,
        locator=args.locator,
        cache_path=args.cache or default_cache_path(),
        workers=args.workers,
        show_progress=not args.quiet,
    )
    cal = run.card.calibration
    assert cal is not None
    print(f"{run.card.file}: {cal.source}; {cal.genuine_pairs} genuine / {cal.impostor_pairs} impostor pairs")
    for point in cal.points:
        print(
            f"  {point.name:>10}: threshold {point.threshold:.4f}  FAR {point.far:.5f}  TAR {point.tar:.4f}"
        )
    for what in cal.unsupported:
        print(f"  unsupported: {what}")
    if run.no_face:
        print(f"  {run.no_face} photo(s) had no detected face (centred-box fallback used)")
    print(f"wrote {save_card(run.card, args.out)}")
    return EXIT_OK


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the shipped models with their cards' key facts",
        description="List the model files shipped inside the package (found offline with "
        "importlib.resources), checking each against the SHA-256 in its card: format, precision, size, "
        "parameters, and for embedders LFW accuracy and the threshold at FAR 1e-3, for detectors held-out "
        "recall and precision and the LFW alignment gap, for the landmark refiner its held-out NME.",
    )
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
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


EXIT_DIFFERENT = 1


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="are two photos of the same person? (shipped detector + embedder, offline)",
        description="Detect the face in each photo, align it, embed it with the shipped SqueezerFaceNet "
        "and compare the cosine score with the model card's threshold at the chosen false-accept rate.",
        epilog="exit status: 0 same person, 1 different people, 2 bad input (no face, unreadable photo...), "
        "3 a missing extra",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image_a", type=Path)
    p.add_argument("image_b", type=Path)
    p.add_argument(
        "--far", default="1e-3", help="operating point: a calibrated FAR (1e-2, 1e-3, 1e-4) or eer"
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="explicit cosine threshold (overrides --far)"
    )
    p.add_argument(
        "--policy", choices=("largest", "central", "error"), default="largest", help="several faces"
    )
    p.add_argument("--model", default=None, help="embedder: shipped name or model file (default: int8 ONNX)")
    p.add_argument("--detector", default=None, help="detector: shipped name or model file")
    _add_quality_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_verify)


def _add_quality_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-quality-gate",
        action="store_true",
        help="embed faces however small, blurred or turned they are (by default such a face is refused, "
        "exit status 2, with the reasons)",
    )


def _quality(args: argparse.Namespace) -> QualityThresholds | None:
    """The verifier's quality thresholds: the defaults, or None under --no-quality-gate."""
    from squeezerface.verify import DEFAULT_QUALITY

    return None if args.no_quality_gate else DEFAULT_QUALITY


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
    from squeezerface.verify import FaceVerifier

    verifier = FaceVerifier(
        args.model or DEFAULT_EMBEDDER,
        args.detector or DEFAULT_DETECTOR,
        policy=args.policy,
        quality=_quality(args),
    )
    match = verifier.verify(args.image_a, args.image_b, far=args.far, threshold=args.threshold)
    if args.json:
        print(json.dumps(match.to_dict()))
    else:
        verdict = "same person" if match.same else "different people"
        print(
            f"{verdict}: cosine {match.score:.4f}, threshold {match.threshold:.4f} ({match.operating_point})"
        )
    return EXIT_OK if match.same else EXIT_DIFFERENT


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="verify a real face photo against a second capture of it, no dataset needed",
        description="Runs the whole pipeline (detect, refine landmarks, align, quality gate, embed, compare "
        "at the card's threshold) on scikit-image's public-domain astronaut photo and on a second capture "
        "made from it (turned 12 degrees, 30 %% smaller, darker, JPEG quality 60). Needs the demo extra "
        '(pip install "squeezerface[demo]"); works offline, without ../shared/data.',
        epilog="exit status: 0 same person (the expected answer), 1 different, 3 the demo extra is missing",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--backend", choices=("onnxruntime", "litert"), default="onnxruntime")
    p.add_argument("--json", action="store_true", help="print the faces and the match as JSON")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    import json

    from squeezerface.demo import demo_images
    from squeezerface.verify import FaceVerifier

    images = demo_images()
    verifier = FaceVerifier(backend=args.backend)
    faces = [
        verifier.subject(images.original, "astronaut"),
        verifier.subject(images.recaptured_jpeg, "recapture"),
    ]
    match = verifier.verify(images.original, images.recaptured_jpeg)
    if args.json:
        found = [
            {"box": f.box, "score": f.score, "quality": f.quality.to_dict() if f.quality else None}
            for f in faces
        ]
        print(json.dumps({"faces": found, "match": match.to_dict()}))
    else:
        for name, f in zip(("astronaut photo", "second capture"), faces, strict=True):
            box = ", ".join(f"{v:.0f}" for v in f.box)
            q = f.quality
            facts = "" if q is None else f", eyes {q.iod:.0f} px apart, sharpness {q.sharpness:.0f}"
            print(f"{name}: face at ({box}), detector score {f.score:.2f}{facts}")
        verdict = "same person" if match.same else "different people"
        point = f"{match.operating_point}, {match.model}"
        print(f"{verdict}: cosine {match.score:.4f}, threshold {match.threshold:.4f} ({point})")
    return EXIT_OK if match.same else EXIT_DIFFERENT


def _add_face_options(p: argparse.ArgumentParser) -> None:
    """The detector/embedder options every command that embeds photos takes (as `verify` does)."""
    p.add_argument(
        "--policy", choices=("largest", "central", "error"), default="largest", help="several faces"
    )
    p.add_argument("--model", default=None, help="embedder: shipped name or model file (default: int8 ONNX)")
    p.add_argument("--detector", default=None, help="detector: shipped name or model file")
    _add_quality_option(p)


def _face_verifier(args: argparse.Namespace) -> FaceVerifier:
    from squeezerface.shipped import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
    from squeezerface.verify import FaceVerifier

    return FaceVerifier(
        args.model or DEFAULT_EMBEDDER,
        args.detector or DEFAULT_DETECTOR,
        policy=args.policy,
        quality=_quality(args),
    )


def _add_enroll(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enroll",
        help="add a person's photos to a gallery file (created if missing)",
        description="Detect, align and embed the face in each photo and store the embeddings as templates "
        "of NAME in the gallery (one SQLite file; a new person is created, a known one gets more templates). "
        "All or nothing: when any photo fails (unreadable, no face, several faces under --policy error, "
        "a face that fails the quality gate) "
        "nothing is written. A gallery holds one model's templates; enrolling with another model is refused.",
        epilog="example: squeezerface enroll --db staff.sqlite Ada_Lovelace ada1.jpg ada2.jpg. "
        "exit status: 0 enrolled, 2 bad input (a photo failed, wrong model, not a gallery file), "
        "3 a missing extra",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="gallery file (SQLite)")
    p.add_argument("name", help="the person's name (identity)")
    p.add_argument("images", type=Path, nargs="+", metavar="IMG", help="photos of the person")
    p.add_argument(
        "--replace", action="store_true", help="drop the person's existing templates (atomically) first"
    )
    _add_face_options(p)
    p.set_defaults(func=_cmd_enroll)


def _cmd_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from squeezerface.errors import ImageDecodeError, LowQualityError, MultipleFacesError, NoFaceError
    from squeezerface.gallery import Gallery, ModelInfo

    verifier = _face_verifier(args)
    model = ModelInfo.from_card(verifier.embedder.card)
    if args.db.exists():  # a damaged file or a gallery of another model fails before any image work
        Gallery(args.db, model, create=False).close()
    embeddings, failures = [], []
    for image in args.images:
        try:
            embeddings.append(verifier.embed(image, str(image)))
        except (ImageDecodeError, NoFaceError, MultipleFacesError, LowQualityError) as exc:
            failures.append(str(exc))
    if failures:
        for failure in failures:
            print(f"error: {failure}", file=sys.stderr)
        print(
            f"error: nothing enrolled: {len(failures)} of {len(args.images)} photo(s) failed",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    with Gallery(args.db, model) as gallery:
        info = gallery.enroll(args.name, np.stack(embeddings), replace=args.replace)
    print(
        f"enrolled {info.name}: {len(embeddings)} photo(s) added, {info.templates} template(s) in {args.db}"
    )
    return EXIT_OK


def _add_identify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "identify",
        help="who in a gallery is this? (1:N search with a reject threshold)",
        description="Embed the face in a photo and rank the gallery's identities by cosine score (each "
        "identity's templates aggregated by --aggregate). A candidate is accepted when its score is above "
        "the model card's threshold at the chosen false-accept rate (or an explicit --threshold); "
        "when none is, the answer is nobody.",
        epilog="example: squeezerface identify --db staff.sqlite visitor.jpg --top-k 3 --json. "
        "exit status: 0 someone recognised, 1 nobody recognised, 2 bad input (no face, unreadable photo, "
        "no or wrong gallery, wrong model), 3 a missing extra",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="gallery file (SQLite)")
    p.add_argument("image", type=Path)
    p.add_argument("--top-k", type=int, default=5, help="how many candidates to show")
    point = p.add_mutually_exclusive_group()
    point.add_argument(
        "--far", default="1e-3", help="operating point: a calibrated FAR (1e-2, 1e-3, 1e-4) or eer"
    )
    point.add_argument("--threshold", type=float, default=None, help="explicit cosine threshold")
    p.add_argument(
        "--aggregate",
        choices=("mean", "best"),
        default="mean",
        help="score of a person with several templates: their renormalised mean, or the best one",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_face_options(p)
    p.set_defaults(func=_cmd_identify)


def _cmd_identify(args: argparse.Namespace) -> int:
    import json

    from squeezerface.gallery import Gallery, ModelInfo

    verifier = _face_verifier(args)
    if args.threshold is None:
        threshold, point = verifier.threshold(args.far)  # a point the card lacks fails before image work
    else:
        threshold, point = args.threshold, "explicit"
    model = ModelInfo.from_card(verifier.embedder.card)
    with Gallery(args.db, model, create=False, aggregate=args.aggregate) as gallery:
        probe = verifier.embed(args.image, str(args.image))
        candidates = gallery.identify(probe, top_k=args.top_k, threshold=threshold)
    best = candidates[0] if candidates and candidates[0].accepted else None
    if args.json:
        result = {
            "identified": best.name if best else None,
            "threshold": float(threshold),
            "operating_point": point,
            "aggregate": args.aggregate,
            "model": model.file,
            "candidates": [c.to_dict() for c in candidates],
        }
        print(json.dumps(result))
    else:
        verdict = f"identified {best.name}" if best else "nobody recognised"
        print(f"{verdict}: threshold {threshold:.4f} ({point})")
        for rank, c in enumerate(candidates, 1):
            mark = "accepted" if c.accepted else "rejected"
            print(f"  {rank}. {c.name}  cosine {c.score:.4f}  {mark}  ({c.templates} template(s))")
    return EXIT_OK if best else EXIT_DIFFERENT


def _add_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="the people enrolled in a gallery",
        description="List a gallery's identities with their template counts and enrolment times (UTC), "
        "and the model that made the templates. Loads no model.",
        epilog="example: squeezerface list --db staff.sqlite --json. "
        "exit status: 0 listed (also when empty), 2 no gallery at that path or not a gallery file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="gallery file (SQLite)")
    p.add_argument("--json", action="store_true", help="print the gallery as JSON")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    import json

    from squeezerface.gallery import Gallery

    with Gallery(args.db, create=False) as gallery:
        people = gallery.identities()
        model = gallery.model
    if args.json:
        result = {
            "model": model.to_dict() if model else None,
            "identities": [p.to_dict() for p in people],
        }
        print(json.dumps(result))
        return EXIT_OK
    print(f"{args.db}: {len(people)} identities" + (f", {model}" if model else ""))
    for person in people:
        print(
            f"  {person.name}  {person.templates} template(s)  enrolled {person.created:%Y-%m-%d %H:%M:%S} "
            f"UTC, updated {person.updated:%Y-%m-%d %H:%M:%S} UTC"
        )
    return EXIT_OK


def _add_forget(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forget",
        help="delete a person and all their templates from a gallery",
        description="Delete every template of NAME and the identity itself in one transaction. The deleted "
        "bytes are overwritten (SQLite secure_delete) and the write-ahead log is truncated, so the templates "
        "are gone from the file, not merely unlinked; --vacuum also rebuilds the file to release the space.",
        epilog="example: squeezerface forget --db staff.sqlite Ada_Lovelace --vacuum. "
        "exit status: 0 forgotten, 2 unknown name, no gallery at that path or not a gallery file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="gallery file (SQLite)")
    p.add_argument("name", help="the person's name (identity)")
    p.add_argument("--vacuum", action="store_true", help="rebuild the file afterwards (slower)")
    p.set_defaults(func=_cmd_forget)


def _cmd_forget(args: argparse.Namespace) -> int:
    from squeezerface.gallery import Gallery

    with Gallery(args.db, create=False) as gallery:
        removed = gallery.forget(args.name, vacuum=args.vacuum)
    print(f"forgot {args.name}: {removed} template(s) deleted" + (", file vacuumed" if args.vacuum else ""))
    return EXIT_OK


def _add_encrypt(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encrypt",
        help="encrypt an existing gallery's templates in place (AES-256-GCM)",
        description="Encrypt every template of a plaintext gallery with a 32-byte key, safely: an encrypted "
        "copy is written beside the gallery, fsynced and checked to decrypt to the same templates, then "
        "atomically replaces the gallery, and the old file's bytes are overwritten before they are "
        "released (best effort: copy-on-write filesystems, SSDs and backups may keep old blocks). The "
        "gallery must not be open in another program. The key comes from --key-file or from "
        "$SQUEEZERFACE_GALLERY_KEY (64 hex digits or base64) / $SQUEEZERFACE_GALLERY_KEY_FILE; the other "
        "commands read it from those variables. Without the key the gallery cannot be read: keep it safe.",
        epilog="example: squeezerface encrypt --db staff.sqlite --key-file staff.key --new-key, then "
        "SQUEEZERFACE_GALLERY_KEY_FILE=staff.key squeezerface list --db staff.sqlite. "
        "exit status: 0 encrypted, 2 bad input (no or bad key, already encrypted, in use, not a gallery), "
        "3 the crypto extra is missing",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", type=Path, required=True, help="gallery file (SQLite)")
    p.add_argument("--key-file", type=Path, default=None, help="key file (default: the environment)")
    p.add_argument(
        "--new-key",
        action="store_true",
        help="first write a new random key to --key-file (mode 600; an existing file is never overwritten)",
    )
    p.set_defaults(func=_cmd_encrypt)


def _cmd_encrypt(args: argparse.Namespace) -> int:
    from squeezerface.crypto import write_key_file
    from squeezerface.errors import GalleryKeyError
    from squeezerface.gallery import encrypt_gallery

    created = None
    if args.new_key:
        if args.key_file is None:
            raise GalleryKeyError("--new-key writes the new key to --key-file: give one")
        if not args.db.is_file():
            raise GalleryKeyError(f"no gallery at {args.db}: nothing to encrypt")
        created = write_key_file(args.key_file)
    try:
        done = encrypt_gallery(args.db, key_file=args.key_file)
    except BaseException:
        if created is not None:  # a key that encrypted nothing is not left lying around
            created.unlink(missing_ok=True)
        raise
    wiped = "overwritten and removed" if done.plaintext_overwritten else "removed (overwriting it failed)"
    print(
        f"encrypted {args.db}: {done.identities} identities, {done.templates} template(s), AES-256-GCM; "
        f"the old plaintext file was {wiped}"
    )
    if created is not None:
        print(f"new key in {created}: without it the gallery cannot be read, keep a safe copy")
    return EXIT_OK


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from squeezerface.bench import add_bench_arguments  # stdlib-only at import: keeps the CLI fast

    p = sub.add_parser(
        "bench",
        help="time every stage on this device beside the dlib peer; writes JSON + Markdown to submit",
        description="Run the latency benchmark with only the runtime installed: decode, detect, align, "
        "embed, match and end-to-end verify, batch 1, on 1 thread and all threads, for every shipped model "
        "per backend (onnxruntime, LiteRT when installed) and precision; each configuration in a fresh "
        "process, p50/p90/p99 of 200 timed runs after warm-up; the dlib peer in the same run when the "
        "teacher extra is installed (ratios ours/dlib); the core's GEMM rate (roofline); model load time, "
        "peak RSS, 1:N search; and this device (CPU, cores, clocks, board, OS, versions).",
        epilog="example: squeezerface bench --out my-bench (then attach my-bench/bench.json to a GitHub "
        "issue; see benchmarks/README.md). Takes a few minutes; --runs 20 for a quick look.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from squeezerface.bench import run_device_bench

    return run_device_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezerface",
        description="On-device face verification SDK: verify faces, enrol and identify people in a "
        "gallery, evaluate embedders on face pairs and calibrate thresholds, offline.",
    )
    from squeezerface import __version__

    parser.add_argument("--version", action="version", version=f"squeezerface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_verify(sub)
    _add_demo(sub)
    _add_enroll(sub)
    _add_identify(sub)
    _add_list(sub)
    _add_forget(sub)
    _add_encrypt(sub)
    _add_eval(sub)
    _add_calibrate(sub)
    _add_models(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except EmbedderUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MISSING_DEPENDENCY
    except SqueezerfaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
