"""MobileFaceNet (Chen et al. 2018) in torch, built from a channel spec, so a pruned copy rebuilds from text.

The *pretrained line* of the embedder issue starts from the public MobileFaceNet weights in
`../shared/teachers/mobilefacenet/` (foamliu/MobileFaceNet, Apache-2.0; trained by its authors on refined
MS-Celeb-1M, research terms) and prunes it by the paper's Taylor criterion. The layout is fixed by those
weights: a 3x3 stem, a depthwise-separable block, 15 inverted residual blocks, a 1x1 conv to 512 channels,
a global depthwise 7x7 conv (GDC) and a 1x1 conv + BatchNorm to the 128-d embedding.

What pruning may change, and so what the spec holds: each block's hidden (expansion) width, which nothing
outside the block sees, and the head width (the 512 channels of the 1x1 conv, the GDC and the embedding
conv's inputs). The residual stream's widths (64 and 128) are coupled through the additions of a whole
stage, so they stay. Spec text: `mobilefacenet:128,...,256|512|128` (15 hidden widths | head | embedding).

Input: the project's convention, RGB `(x - 127.5) / 128` (the runtime's cards and `faceset.to_input`);
the weights expect ImageNet mean/std on `x / 255`, so a fixed per-channel affine (a buffer, not trained)
maps one to the other inside the network. Exported graphs keep it as one Mul + Add, which int8 handles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BASE_NAME = "mobilefacenet"
STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))
"""(expansion, output channels, blocks, first stride) per stage, as the MobileFaceNet paper lays it out."""
STEM = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _block_layout() -> list[tuple[int, int, int, int]]:
    """(input channels, output channels, stride, default hidden width) of each inverted residual block."""
    blocks, cin = [], STEM
    for t, c, n, s in STAGES:
        for i in range(n):
            blocks.append((cin, c, s if i == 0 else 1, cin * t))
            cin = c
    return blocks


BLOCKS = _block_layout()


@dataclass(frozen=True)
class MobileFaceNetSpec:
    """Hidden width of each of the 15 blocks, head width, embedding size."""

    hidden: tuple[int, ...] = tuple(b[3] for b in BLOCKS)
    head: int = 512
    embedding: int = 128
    base: str = BASE_NAME

    def __post_init__(self) -> None:
        if self.base != BASE_NAME:
            raise ValueError(f"not a {BASE_NAME} spec: base {self.base!r}")
        if len(self.hidden) != len(BLOCKS):
            raise ValueError(f"{BASE_NAME} has {len(BLOCKS)} blocks, spec has {len(self.hidden)}")
        if min((*self.hidden, self.head, self.embedding)) < 1:
            raise ValueError(f"every layer needs at least one channel: {self.to_text()}")

    def to_text(self) -> str:
        return f"{self.base}:{','.join(map(str, self.hidden))}|{self.head}|{self.embedding}"

    @classmethod
    def from_text(cls, text: str) -> MobileFaceNetSpec:
        try:
            base, body = text.strip().split(":", 1)
            hidden, head, embedding = body.split("|")
            return cls(tuple(int(h) for h in hidden.split(",")), int(head), int(embedding), base)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a {BASE_NAME} spec: {text!r} ({exc})") from exc


def conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU6: MobileFaceNet's basic unit (names match the weight file)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class DepthwiseSeparable(nn.Module):
    """The 3x3 depthwise + 1x1 block after the stem (ReLU, as in the weights' source)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear projection, with the identity added when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, hidden: int) -> None:
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            conv_bn_act(cin, hidden, 1),
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class GDC(nn.Module):
    """Global depthwise conv: a 7x7 filter per channel over the final 7x7 map (keeps where-in-the-face)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 7, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))


class MobileFaceNet(nn.Module):
    """(N, 3, 112, 112) input in the project's normalisation -> (N, embedding) (L2-normalised if asked)."""

    def __init__(self, spec: MobileFaceNetSpec | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.spec = spec = spec or MobileFaceNetSpec()
        self.normalize = normalize
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        # (x * 128 + 127.5) / 255 = raw in [0, 1]; then ImageNet normalisation: one affine per channel.
        self.register_buffer("in_scale", 128.0 / 255.0 / std, persistent=False)
        self.register_buffer("in_shift", (127.5 / 255.0 - mean) / std, persistent=False)
        self.conv1 = conv_bn_act(3, STEM, 3, 2)
        self.dw_conv = DepthwiseSeparable(STEM)
        self.features = nn.Sequential(
            *(
                InvertedResidual(cin, cout, s, h)
                for (cin, cout, s, _), h in zip(BLOCKS, spec.hidden, strict=True)
            )
        )
        self.conv2 = conv_bn_act(BLOCKS[-1][1], spec.head, 1)
        self.gdconv = GDC(spec.head)
        self.conv3 = nn.Conv2d(spec.head, spec.embedding, 1)
        self.bn = nn.BatchNorm2d(spec.embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.in_scale + self.in_shift
        x = self.features(self.dw_conv(self.conv1(x)))
        x = self.bn(self.conv3(self.gdconv(self.conv2(x)))).flatten(1)
        return F.normalize(x, dim=1) if self.normalize else x


def spec_of(model: MobileFaceNet) -> MobileFaceNetSpec:
    """Read the channel counts back from a (possibly pruned) module."""
    hidden = tuple(block.conv[0][0].out_channels for block in model.features)
    return MobileFaceNetSpec(hidden, model.conv2[0].out_channels, model.conv3.out_channels)


def load_pretrained(path: str | Path, normalize: bool = True) -> MobileFaceNet:
    """The public weights (a plain state dict of this exact layout) in eval mode."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = MobileFaceNet(normalize=normalize)
    model.load_state_dict(state)
    return model.eval()


def spec_from_json(path_stem: str | Path) -> str:
    return json.loads(Path(path_stem).with_suffix(".json").read_text())["spec"]


# Pruning view (used by `pruning.prune`): each block's expansion conv and the head conv are the prunable
# layers; removing one of their output channels removes, with it, the BatchNorm channel, the depthwise
# filter and the next conv's input column (torch-pruning's dependency graph finds those).


def layer_channels(spec: MobileFaceNetSpec) -> dict[str, int]:
    """Output channels of every prunable layer, in network order."""
    return {**{f"block{i}": h for i, h in enumerate(spec.hidden)}, "head": spec.head}


def layer_convs(model: MobileFaceNet) -> dict[str, nn.Conv2d]:
    """The conv whose output channels each prunable layer name stands for."""
    return {**{f"block{i}": b.conv[0][0] for i, b in enumerate(model.features)}, "head": model.conv2[0]}


def spec_after(spec: MobileFaceNetSpec, removed: dict[str, int]) -> MobileFaceNetSpec:
    """The spec after removing `removed[name]` channels from each named layer."""
    unknown = set(removed) - set(layer_channels(spec))
    if unknown:
        raise KeyError(f"not prunable layer names: {sorted(unknown)}")
    hidden = tuple(h - removed.get(f"block{i}", 0) for i, h in enumerate(spec.hidden))
    return MobileFaceNetSpec(hidden, spec.head - removed.get("head", 0), spec.embedding)


def protected_modules(model: MobileFaceNet) -> set[nn.Module]:
    """Modules whose output channels no pruning group may remove: the embedding conv and its BatchNorm."""
    return {model.conv3, model.bn}
