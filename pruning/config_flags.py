"""Command-line flags from a training configuration dataclass: one `--flag` per field, so every trainer's
`--help` lists exactly its configuration, with the defaults, and a run is reproduced from its recorded
config by passing the same values back."""

from __future__ import annotations

import argparse
from dataclasses import fields


def _kind(annotation: object, default: object) -> type:
    """The type to parse a flag with: its default's, or for a default of None its annotation's."""
    if default is not None:
        return type(default)
    text = str(annotation)
    return int if "int" in text else float if "float" in text else str


def parse_resumable(
    parser: argparse.ArgumentParser, config: object, argv: list[str] | None
) -> tuple[object, bool, bool]:
    """A trainer's whole command line: its config's flags plus --resume and --quiet, parsed into
    (config of the same class, resume, quiet)."""
    add_config_flags(parser, config)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = vars(parser.parse_args(argv))
    resume, quiet = args.pop("resume"), args.pop("quiet")
    return type(config)(**args), resume, quiet


def add_config_flags(parser: argparse.ArgumentParser, config: object) -> None:
    """`--some-field VALUE` for every field of the dataclass instance `config` (booleans: --x / --no-x)."""
    for f in fields(config):  # type: ignore[arg-type]
        default = getattr(config, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=_kind(f.type, default), default=default)
