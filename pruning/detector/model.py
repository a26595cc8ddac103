"""The tiny face detector: depthwise-separable backbone, a light top-down feature pyramid, and one shared
anchor-free head per stride (8, 16, 32) predicting a face score, a box and 5 landmarks at every location.

Design in the spirit of YuNet / BlazeFace / SCRFD-500M, sized for mobile verification (one or a few faces,
40 px and up) rather than crowds. The network outputs raw per-location values; decoding and NMS live in
the runtime (`squeezerface.detect`, numpy + OpenCV), so the exported graph is plain convolutions.

Output layout, (N, A, 15) with A = sum over strides of (H/s) * (W/s), locations in row-major order per
stride, strides in ascending order: [score logit, dx, dy, log w, log h, 10 landmark offsets]. With the
location's centre (cx, cy) = ((j + 0.5) s, (i + 0.5) s): box centre = (cx + dx s, cy + dy s), size =
(exp(log w) s, exp(log h) s); landmark k = (cx + ox_k s, cy + oy_k s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16, 32)
OUTPUTS = 15  # score, box (4), landmarks (10)


def spec_text(base: str, stages: tuple[int, ...], last: int) -> str:
    """`base:c1,c2,...|last`: the text form of a network's channel widths (timm style: rebuilt from text)."""
    return f"{base}:{','.join(map(str, stages))}|{last}"


def parse_spec_text(text: str) -> tuple[str, tuple[int, ...], int]:
    """(base, stages, last) from `base:c1,c2,...|last`."""
    base, body = text.split(":", 1)
    stages, last = body.split("|")
    return base, tuple(int(c) for c in stages.split(",")), int(last)


@dataclass(frozen=True)
class DetectorSpec:
    """Channel widths as text, e.g. `tinyface:16,32,48,64,96|48` (backbone stages | pyramid width)."""

    stages: tuple[int, ...] = (16, 32, 48, 64, 96)
    neck: int = 48
    base: str = "tinyface"

    def to_text(self) -> str:
        return spec_text(self.base, self.stages, self.neck)

    @classmethod
    def from_text(cls, text: str) -> DetectorSpec:
        base, stages, neck = parse_spec_text(text)
        return cls(stages, neck, base)


def conv_bn(
    cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def dw_sep(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1 (MobileNet block)."""
    return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1))


class TinyFaceDetector(nn.Module):
    def __init__(self, spec: DetectorSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or DetectorSpec()
        c1, c2, c3, c4, c5 = self.spec.stages
        n = self.spec.neck
        self.stem = nn.Sequential(conv_bn(3, c1, 3, 2), dw_sep(c1, c2, 2), dw_sep(c2, c2))  # stride 4
        self.stage8 = nn.Sequential(dw_sep(c2, c3, 2), dw_sep(c3, c3))
        self.stage16 = nn.Sequential(dw_sep(c3, c4, 2), dw_sep(c4, c4))
        self.stage32 = nn.Sequential(dw_sep(c4, c5, 2), dw_sep(c5, c5))
        self.lateral = nn.ModuleList([conv_bn(c, n, 1) for c in (c3, c4, c5)])
        self.smooth = nn.ModuleList([dw_sep(n, n) for _ in STRIDES])
        self.head = nn.Sequential(conv_bn(n, n, 3, groups=n), nn.Conv2d(n, OUTPUTS, 1))
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = -4.0  # start with a low face prior (focal-loss practice)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p8 = self.stage8(self.stem(x))
        p16 = self.stage16(p8)
        p32 = self.stage32(p16)
        l32 = self.lateral[2](p32)
        l16 = self.lateral[1](p16) + F.interpolate(l32, size=p16.shape[-2:], mode="nearest")
        l8 = self.lateral[0](p8) + F.interpolate(l16, size=p8.shape[-2:], mode="nearest")
        outs = []
        for feat, smooth in zip((l8, l16, l32), self.smooth, strict=True):
            y = self.head(smooth(feat))  # (N, 15, h, w), one head shared by every stride
            outs.append(y.flatten(2).transpose(1, 2))
        return torch.cat(outs, dim=1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_weights(model: nn.Module, stem: str | Path, **meta: object) -> None:
    """STEM.safetensors (tensors) + STEM.json (the spec as text, params, and `meta`): never a pickle."""
    from safetensors.torch import save_file

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()},
        str(stem.with_suffix(".safetensors")),
    )
    spec = model.spec.to_text()  # type: ignore[union-attr]
    stem.with_suffix(".json").write_text(
        json.dumps({"spec": spec, "params": count_params(model), **meta}, indent=1)
    )


def load_weights(model_class: type, spec_class: type, stem: str | Path) -> nn.Module:
    """Rebuild `model_class(spec)` from STEM.json's spec text and load STEM.safetensors into it."""
    from safetensors.torch import load_file

    stem = Path(stem)
    model = model_class(spec_class.from_text(json.loads(stem.with_suffix(".json").read_text())["spec"]))
    model.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    return model.eval()


def save_detector(model: TinyFaceDetector, stem: str | Path, **extra: object) -> None:
    save_weights(model, stem, strides=list(STRIDES), **extra)


def load_detector(stem: str | Path) -> TinyFaceDetector:
    return load_weights(TinyFaceDetector, DetectorSpec, stem)  # type: ignore[return-value]
