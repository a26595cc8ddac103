"""Training configurations become command-line flags one for one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pruning.config_flags import add_config_flags


@dataclass(frozen=True)
class _Config:
    out: str = "runs/x"
    epochs: int = 3
    lr: float = 1e-3
    bf16: bool = True
    max_steps: int | None = None
    init: str | None = None


def test_every_field_is_a_typed_flag_with_its_default() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, _Config())
    assert _Config(**vars(parser.parse_args([]))) == _Config()
    args = parser.parse_args(["--epochs", "5", "--lr", "0.5", "--no-bf16", "--max-steps", "7", "--init", "a"])
    assert _Config(**vars(args)) == _Config(epochs=5, lr=0.5, bf16=False, max_steps=7, init="a")


def test_a_resumable_trainer_parses_its_config_resume_and_quiet() -> None:
    from pruning.config_flags import parse_resumable

    config, resume, quiet = parse_resumable(
        argparse.ArgumentParser(), _Config(), ["--epochs", "9", "--resume"]
    )
    assert (config, resume, quiet) == (_Config(epochs=9), True, False)
