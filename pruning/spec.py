"""The architecture as data: a base name plus per-layer channel counts.

A pruned network is the same base with fewer channels, so it is described by text like
`squeezerfacenet:64|16,64,64|16,64,64|32,128,128|32,128,128|48,192,192|48,192,192|64,256,256|64,256,256|768|128`
(stem | fire squeeze,expand1x1,expand3x3 x8 | head channels | embedding size) and rebuilt from that text
plus a state dict, never unpickled (the timm `_prune.py` idea).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

BASE_NAME = "squeezerfacenet"
POOL_AFTER_FIRE = (1, 3)
"""SqueezeNet 1.1 layout: max-pool after the stem and after fires 3 and 5 (0-based fire indices 1 and 3)."""


@dataclass(frozen=True)
class FireSpec:
    """One Fire module: squeeze 1x1 -> (expand 1x1 || expand 3x3), concatenated."""

    squeeze: int
    expand1: int
    expand3: int

    @property
    def out_channels(self) -> int:
        return self.expand1 + self.expand3


@dataclass(frozen=True)
class ModelSpec:
    """Channel counts of every prunable layer of a SqueezerFaceNet."""

    stem: int = 64
    fires: tuple[FireSpec, ...] = (
        FireSpec(16, 64, 64),
        FireSpec(16, 64, 64),
        FireSpec(32, 128, 128),
        FireSpec(32, 128, 128),
        FireSpec(48, 192, 192),
        FireSpec(48, 192, 192),
        FireSpec(64, 256, 256),
        FireSpec(64, 256, 256),
    )
    head: int = 768
    embedding: int = 128
    base: str = BASE_NAME

    def __post_init__(self) -> None:
        if self.base != BASE_NAME:
            raise ValueError(f"unknown base architecture {self.base!r}; known: {BASE_NAME}")
        if len(self.fires) != 8:
            raise ValueError(f"{BASE_NAME} has 8 Fire modules, spec has {len(self.fires)}")
        counts = [self.stem, self.head, self.embedding] + [c for f in self.fires for c in asdict(f).values()]
        if any(int(c) < 1 for c in counts):
            raise ValueError(f"every layer needs at least one channel: {self.to_text()}")

    def to_text(self) -> str:
        fires = "|".join(f"{f.squeeze},{f.expand1},{f.expand3}" for f in self.fires)
        return f"{self.base}:{self.stem}|{fires}|{self.head}|{self.embedding}"

    @classmethod
    def from_text(cls, text: str) -> ModelSpec:
        try:
            base, body = text.strip().split(":", 1)
            parts = body.split("|")
            stem, head, embedding = int(parts[0]), int(parts[-2]), int(parts[-1])
            fires = tuple(FireSpec(*(int(c) for c in p.split(","))) for p in parts[1:-2])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a model spec: {text!r} ({exc})") from exc
        return cls(stem=stem, fires=fires, head=head, embedding=embedding, base=base)

    def to_json(self) -> str:
        return json.dumps({"base": self.base, "spec": self.to_text()})

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        return cls.from_text(json.loads(text)["spec"])

    def with_fire(self, index: int, fire: FireSpec) -> ModelSpec:
        fires = list(self.fires)
        fires[index] = fire
        return replace(self, fires=tuple(fires))
