"""`squeezerface` command line. Argument parsing only: every command calls the library API.

Exit status: 0 success; 1 a negative answer (verify: different people; identify: nobody recognised);
2 bad input or usage (a typed squeezerface error, message on stderr); 3 an optional dependency is missing
(the message names the extra to install). With `--json`, an error is also one JSON object on stdout,
`{"error": {"type", "message", "path"}}`, with the same exit status, so a script reads one stream. Messages
name the command line's options (`--policy`, `--no-quality-gate`, `--max-pixels`), never Python keywords.
Output cut short by the reader (`squeezerface models --json | head`) ends quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from squeezerface.cli import bench, evaluate, faces
from squeezerface.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENT,
    EXIT_MISSING_DEPENDENCY,
    EXIT_OK,
    cli_error,
    print_json_error,
    report_error,
)
from squeezerface.errors import SqueezerfaceError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIFFERENT", "EXIT_MISSING_DEPENDENCY", "EXIT_OK", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as JSON on stdout too when the command line asks for --json."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            print_json_error("UsageError", f"{self.prog}: {message}", None)
        super().error(message)


def build_parser(*, bench_options: bool = True) -> argparse.ArgumentParser:
    """The whole command line. `bench_options=False` leaves out the options of `bench` (and the import of
    the benchmark package they come from): `main` does so unless the command line names `bench`."""
    parser = _Parser(
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
    bench.add_bench(sub, with_options=bench_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in argv
    parser = build_parser(bench_options="bench" in argv)  # the benchmark package only for its command
    args = parser.parse_args(argv)
    args.argv = argv
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.func(args))
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (SqueezerfaceError, OSError) as exc:  # OSError: an output folder or file the user may not write
        code, message = cli_error(exc) or (EXIT_BAD_INPUT, str(exc))
        report_error(exc, message, args, as_json)
        return code


def _quiet_broken_pipe() -> int:
    """The reader closed the pipe (`| head`): stop without a traceback, and keep Python's final flush
    of stdout from raising again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
