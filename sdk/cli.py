"""`squeezerface` command line. Argument parsing only: every command calls the library API.

Exit status: 0 success; 2 bad input or usage (a typed squeezerface error, message on stderr);
3 an optional dependency is missing (the message names the extra to install).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from squeezerface.errors import EmbedderUnavailableError, SqueezerfaceError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezerface",
        description="On-device face verification SDK: evaluate embedders on face pairs, offline.",
    )
    from squeezerface import __version__

    parser.add_argument("--version", action="version", version=f"squeezerface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_eval(sub)
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
