"""`squeezerface` command line. Argument parsing only: every command calls the library API.

Exit status: 0 success; 1 a negative answer (verify: different people; identify: nobody recognised);
2 bad input or usage (a typed squeezerface error, message on stderr); 3 an optional dependency is missing
(the message names the extra to install).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from squeezerface.cli import bench, evaluate, faces
from squeezerface.cli.common import EXIT_BAD_INPUT, EXIT_DIFFERENT, EXIT_MISSING_DEPENDENCY, EXIT_OK
from squeezerface.errors import EmbedderUnavailableError, SqueezerfaceError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIFFERENT", "EXIT_MISSING_DEPENDENCY", "EXIT_OK", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezerface",
        description="On-device face verification SDK: verify faces, enrol and identify people in a "
        "gallery, evaluate embedders on face pairs and calibrate thresholds, offline.",
    )
    from squeezerface import __version__

    parser.add_argument("--version", action="version", version=f"squeezerface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    faces.add_verify(sub)
    faces.add_demo(sub)
    faces.add_enroll(sub)
    faces.add_identify(sub)
    faces.add_list(sub)
    faces.add_forget(sub)
    faces.add_encrypt(sub)
    evaluate.add_eval(sub)
    evaluate.add_calibrate(sub)
    evaluate.add_models(sub)
    bench.add_bench(sub)
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
