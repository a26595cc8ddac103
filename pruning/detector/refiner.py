"""The landmark refiner network: a 64x64 face crop in (cut by rough points, see `squeezerface.landmarks`),
10 point offsets from the template out, in units of `OFFSET_UNIT` crop pixels.

A small depthwise-separable CNN down to a 4x4 map, then a 1x1 squeeze and one fully connected layer over
the flattened map: landmarks need to know *where* features are, which a global pool would throw away.
Channel widths are text (`lmref:16,32,64,96|16`), rebuilt from that text, never a pickled module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pruning.detector.model import (
    conv_bn,
    dw_sep,
    load_weights,
    parse_spec_text,
    save_weights,
    spec_text,
)
from squeezerface.landmarks import CROP


@dataclass(frozen=True)
class RefinerSpec:
    """Backbone widths at strides 2, 4, 8, 16 and the squeeze width before the fully connected layer."""

    stages: tuple[int, ...] = (16, 32, 64, 96)
    squeeze: int = 16
    base: str = "lmref"

    def to_text(self) -> str:
        return spec_text(self.base, self.stages, self.squeeze)

    @classmethod
    def from_text(cls, text: str) -> RefinerSpec:
        base, stages, squeeze = parse_spec_text(text)
        return cls(stages, squeeze, base)


class LandmarkRefinerNet(nn.Module):
    def __init__(self, spec: RefinerSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or RefinerSpec()
        c1, c2, c3, c4 = self.spec.stages
        self.features = nn.Sequential(
            conv_bn(3, c1, 3, 2),  # 32
            dw_sep(c1, c2, 2),  # 16
            dw_sep(c2, c2),
            dw_sep(c2, c3, 2),  # 8
            dw_sep(c3, c3),
            dw_sep(c3, c4, 2),  # 4
            dw_sep(c4, c4),
            conv_bn(c4, self.spec.squeeze, 1),
        )
        cells = (CROP // 16) ** 2
        self.fc = nn.Linear(self.spec.squeeze * cells, 10)
        nn.init.zeros_(self.fc.weight)  # start at the template: the rough points are the first guess
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def save_refiner(model: LandmarkRefinerNet, stem: str | Path, **extra: object) -> None:
    save_weights(model, stem, crop=CROP, **extra)


def load_refiner(stem: str | Path) -> LandmarkRefinerNet:
    return load_weights(LandmarkRefinerNet, RefinerSpec, stem)  # type: ignore[return-value]
