"""Face commands: verify two photos (or many pairs), the demo, and the gallery (enroll, identify, list,
forget, encrypt)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from squeezerface.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENT,
    EXIT_OK,
    add_face_options,
    cli_error,
    cosine_threshold,
    error_path,
    face_verifier,
    json_error,
    positive_int,
)


def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="are two photos of the same person? (shipped detector + embedder, offline)",
        description="Detect the face in each photo, align it, embed it with the shipped embedder "
        "(mobilefacenet-taylor-900k unless --model names another) and compare the cosine score with the "
        "model card's threshold at the chosen false-accept rate. With --pairs, many pairs in one process "
        "(the models loaded once): one result line per pair, in order.",
        epilog="exit status: 0 same person, 1 different people, 2 bad input (no face, unreadable photo...), "
        "3 a missing extra; with --pairs: 0 when every pair ran (whatever the answers), else the status of "
        "the first pair that failed",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image_a", type=Path, nargs="?")
    p.add_argument("image_b", type=Path, nargs="?")
    p.add_argument(
        "--pairs",
        type=Path,
        default=None,
        metavar="FILE",
        help="verify every pair FILE lists ('-': standard input), one 'A B' per line (paths separated by "
        "spaces or a tab, relative to the current folder; blank lines and lines starting with # skipped), "
        "instead of two photos; a pair that fails gives an error line and the rest go on",
    )
    p.add_argument(
        "--far", default="1e-3", help="operating point: a calibrated FAR (1e-2, 1e-3, 1e-4) or eer"
    )
    p.add_argument(
        "--threshold",
        type=cosine_threshold,
        default=None,
        help="explicit cosine threshold in [-1, 1] (overrides --far)",
    )
    add_face_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON (--pairs: one per line)")
    p.set_defaults(func=cmd_verify, usage_error=p.error)


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    photos = (args.image_a, args.image_b)
    if args.pairs is not None and any(photos):
        args.usage_error("--pairs reads the photos from FILE: give no photos beside it")
    if args.pairs is None and not all(photos):
        args.usage_error("give two photos (A B), or --pairs FILE")
    if args.pairs is not None:
        with _pairs_stream(args.pairs) as stream:  # an unreadable FILE fails before the models load
            return _verify_pairs(_verifier(args), stream, args)
    match, results = _verify_pair(_verifier(args), photos, args)
    if args.json:
        print(json.dumps(_pair_json(match, photos, results)))
    else:
        for note in _notes(photos, results, args.policy):
            print(note)
        print(_verdict(match))
    return EXIT_OK if match.accepted else EXIT_DIFFERENT


def _verifier(args: argparse.Namespace) -> Any:
    verifier = face_verifier(args)
    if args.threshold is None:
        verifier.threshold(args.far)  # an operating point the card lacks fails before any image work
    return verifier


def _verify_pair(
    verifier: Any, photos: tuple[Path, ...], args: argparse.Namespace, results: list | None = None
) -> tuple[Any, list]:
    """(Match, each photo's FaceResult) of two photos, at --far or --threshold. `results`, when given, is
    filled as the photos are done: after an error, `photos[len(results)]` is the photo that raised it."""
    results = [] if results is None else results
    for image in photos:
        results.append(verifier.analyze(image, str(image)))
    match = verifier.compare(results[0].embedding, results[1].embedding, args.far, args.threshold)
    return match, results


def _pair_json(match: Any, photos: tuple[Path, ...], results: list) -> dict:
    images = [{"path": str(p), **r.to_dict()} for p, r in zip(photos, results, strict=True)]
    return {**match.to_dict(), "images": images}


def _verdict(match: Any) -> str:
    verdict = "same person" if match.accepted else "different people"
    return f"{verdict}: cosine {match.score:.4f}, threshold {match.threshold:.4f} ({match.operating_point})"


def _notes(photos: tuple[Path, ...], results: list, policy: str) -> list[str]:
    notes = (_several_faces_note(path, r, policy) for path, r in zip(photos, results, strict=True))
    return [note for note in notes if note]


def _verify_pairs(verifier: Any, stream: TextIO, args: argparse.Namespace) -> int:
    """`verify --pairs FILE`: every pair, in order, with the models loaded once. One line per pair on stdout
    (JSON Lines with --json: the single verify's object plus "a" and "b"; a failed pair's line is the error
    object plus "a" and "b"), flushed at once so that a script can feed pairs and read answers as they
    come; several-faces notes and error messages go to stderr. Returns 0 when every pair ran, whatever
    the answers, else the exit status of the first pair that failed."""
    import json

    from squeezerface.errors import PairsFormatError, SqueezerfaceError

    status = EXIT_OK
    source = "<stdin>" if str(args.pairs) == "-" else str(args.pairs)
    for line_no, line, fields in _pair_lines(stream):
        pair = tuple(Path(f) for f in fields)
        a, b = [*fields, None, None][:2]
        label = f"{a} {b}" if len(fields) == 2 else line  # what a text line starts with
        done: list = []
        try:
            if len(fields) != 2:
                raise PairsFormatError(source, line_no, line, f"expected 2 photos (A B), found {len(fields)}")
            match, results = _verify_pair(verifier, pair, args, done)
        except BrokenPipeError:
            raise
        except (SqueezerfaceError, OSError) as exc:
            code, message = cli_error(exc) or (EXIT_BAD_INPUT, str(exc))
            status = status or code
            where = "" if isinstance(exc, PairsFormatError) else f"{source}:{line_no}: "
            print(f"error: {where}{message}", file=sys.stderr)
            if args.json:  # the photo that failed where the error does not name its file
                path = error_path(exc, args) or (str(pair[len(done)]) if len(done) < len(pair) else None)
                record = json_error(type(exc).__name__, message, path)
                print(json.dumps({"a": a, "b": b, **record}), flush=True)
            else:
                print(f"{label}: error: {message}", flush=True)
            continue
        if args.json:
            print(json.dumps({"a": a, "b": b, **_pair_json(match, pair, results)}), flush=True)
        else:
            for note in _notes(pair, results, args.policy):
                print(note, file=sys.stderr)
            print(f"{label}: {_verdict(match)}", flush=True)
    return status


@contextmanager
def _pairs_stream(path: Path) -> Iterator[TextIO]:
    """--pairs FILE opened (paths as bytes the file system gave: surrogateescape), or standard input for '-'
    (left open)."""
    if str(path) == "-":
        yield sys.stdin
        return
    with path.open(encoding="utf-8", errors="surrogateescape") as stream:
        yield stream


def _pair_lines(stream: TextIO) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, line, its whitespace-separated fields) of each pair line, read as they come; blank
    lines and lines starting with # are skipped."""
    for line_no, raw in enumerate(stream, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield line_no, line, line.split()


def _several_faces_note(path: Path, result: Any, policy: str) -> str | None:
    """A line saying which face was used when a photo shows several (text output)."""
    faces = getattr(result, "faces", ())
    if len(faces) < 2:
        return None
    face = result.face
    box = ", ".join(f"{v:.0f}" for v in face.box)
    return f"note: {len(faces)} faces in {path}; used the {policy} one at ({box}) (--policy)"


def add_demo(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
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
        verdict = "same person" if match.accepted else "different people"
        point = f"{match.operating_point}, {match.model}"
        print(f"{verdict}: cosine {match.score:.4f}, threshold {match.threshold:.4f} ({point})")
    return EXIT_OK if match.accepted else EXIT_DIFFERENT


def add_enroll(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="enrol a photo even when it is already enrolled (under this name or another); by default "
        "such a photo is reported and nothing is written",
    )
    add_face_options(p)
    p.set_defaults(func=cmd_enroll)


def cmd_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from squeezerface.gallery import Gallery, ModelInfo

    verifier = face_verifier(args)
    model = ModelInfo.from_card(verifier.embedder.card)
    if args.db.exists():  # a damaged file or a gallery of another model fails before any image work
        Gallery(args.db, model, create=False, readonly=True).close()
    embeddings, failures = _embed_photos(verifier, args.images)
    if failures:
        return _nothing_enrolled(failures, f"{len(failures)} of {len(args.images)} photo(s) failed")
    vectors = np.stack(embeddings)
    with Gallery(args.db, model) as gallery:
        repeated = _duplicate_photos(gallery, args.images, vectors, args.name, args.replace)
        if repeated and not args.allow_duplicate:
            why = f"{len(repeated)} photo(s) already enrolled (--allow-duplicate enrols them anyway)"
            return _nothing_enrolled(repeated, why)
        for line in repeated:
            print(f"warning: {line}", file=sys.stderr)
        info = gallery.enroll(args.name, vectors, replace=args.replace)
    print(
        f"enrolled {info.name}: {len(embeddings)} photo(s) added, {info.templates} template(s) in {args.db}"
    )
    return EXIT_OK


def _embed_photos(verifier: object, images: list[Path]) -> tuple[list, list[str]]:
    """Each photo's embedding through the face path; the messages of the photos that failed."""
    from squeezerface.errors import ImageDecodeError, LowQualityError, MultipleFacesError, NoFaceError

    embeddings, failures = [], []
    for image in images:
        try:
            embeddings.append(verifier.embed_one(image, str(image)))  # type: ignore[attr-defined]
        except (ImageDecodeError, NoFaceError, MultipleFacesError, LowQualityError) as exc:
            failures.append(exc.cli_message())
    return embeddings, failures


def _duplicate_photos(
    gallery: object, images: list[Path], vectors: object, name: str, replace: bool
) -> list[str]:
    """Sentences naming every photo already enrolled (same face: `Gallery.duplicates`), under this name or
    another, and photos given twice in one command."""
    import numpy as np

    found = gallery.duplicates(vectors)  # type: ignore[attr-defined]
    out = []
    for image, owners in zip(images, found, strict=True):
        owners = [o for o in owners if not (replace and o == name)]  # --replace drops those templates
        if owners:
            out.append(f"{image} is already enrolled as {', '.join(owners)}")
    v = np.asarray(vectors)
    same = np.triu(v @ v.T >= 0.999, k=1)
    for i, j in zip(*np.nonzero(same), strict=True):
        out.append(f"{images[j]} is the same photo as {images[i]}")
    return out


def _nothing_enrolled(failures: list[str], why: str) -> int:
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    print(f"error: nothing enrolled: {why}", file=sys.stderr)
    return EXIT_BAD_INPUT


def add_identify(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--top-k", type=positive_int, default=5, help="how many candidates to show")
    point = p.add_mutually_exclusive_group()
    point.add_argument(
        "--far", default="1e-3", help="operating point: a calibrated FAR (1e-2, 1e-3, 1e-4) or eer"
    )
    point.add_argument(
        "--threshold", type=cosine_threshold, default=None, help="explicit cosine threshold in [-1, 1]"
    )
    p.add_argument(
        "--aggregate",
        choices=("mean", "best"),
        default="mean",
        help="score of a person with several templates: their renormalised mean, or the best one",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_face_options(p)
    p.set_defaults(func=cmd_identify)


def cmd_identify(args: argparse.Namespace) -> int:
    import json

    from squeezerface.gallery import Gallery, ModelInfo

    verifier = face_verifier(args)
    if args.threshold is None:
        t = verifier.threshold(args.far)  # a point the card lacks fails before image work
        threshold, point = t.value, t.operating_point
    else:
        threshold, point = args.threshold, "explicit"
    model = ModelInfo.from_card(verifier.embedder.card)
    with Gallery(args.db, model, create=False, aggregate=args.aggregate, readonly=True) as gallery:
        probe = verifier.analyze(args.image, str(args.image))
        candidates = gallery.identify(probe.embedding, top_k=args.top_k, threshold=threshold)
    best = candidates[0] if candidates and candidates[0].accepted else None
    if args.json:
        result = {
            "identified": best.name if best else None,
            "threshold": float(threshold),
            "operating_point": point,
            "aggregate": args.aggregate,
            "model": model.file,
            "image": {"path": str(args.image), **probe.to_dict()},
            "candidates": [c.to_dict() for c in candidates],
        }
        print(json.dumps(result))
    else:
        note = _several_faces_note(args.image, probe, args.policy)
        if note:
            print(note)
        verdict = f"identified {best.name}" if best else "nobody recognised"
        print(f"{verdict}: threshold {threshold:.4f} ({point})")
        for rank, c in enumerate(candidates, 1):
            mark = "accepted" if c.accepted else "rejected"
            print(f"  {rank}. {c.name}  cosine {c.score:.4f}  {mark}  ({c.templates} template(s))")
    return EXIT_OK if best else EXIT_DIFFERENT


def add_list(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    import json

    from squeezerface.gallery import Gallery

    with Gallery(args.db, create=False, readonly=True) as gallery:
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


def add_forget(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=cmd_forget)


def cmd_forget(args: argparse.Namespace) -> int:
    from squeezerface.gallery import Gallery

    with Gallery(args.db, create=False) as gallery:
        removed = gallery.forget(args.name, vacuum=args.vacuum)
    print(f"forgot {args.name}: {removed} template(s) deleted" + (", file vacuumed" if args.vacuum else ""))
    return EXIT_OK


def add_encrypt(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=cmd_encrypt)


def cmd_encrypt(args: argparse.Namespace) -> int:
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
