"""SqueezerFaceNet in torch, built from a `ModelSpec`.

SqueezeNet 1.1 features with BatchNorm after every conv (as the paper adds), then a face-specific head:
a 1x1 conv to `head` channels, a global depthwise 7x7 conv (MobileFaceNet's GDC keeps where-in-the-face
information that average pooling throws away), and a linear embedding with BatchNorm. The output is
L2-normalised unless `normalize=False` (training losses use the raw vector).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pruning.spec import POOL_AFTER_FIRE, FireSpec, ModelSpec

INPUT_SIZE = 112


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            cin, cout, k, stride=stride, padding=k // 2 if groups == 1 else 0, groups=groups, bias=False
        ),
        nn.BatchNorm2d(cout),
    )


class Fire(nn.Module):
    def __init__(self, cin: int, spec: FireSpec) -> None:
        super().__init__()
        self.squeeze = conv_bn(cin, spec.squeeze, 1)
        self.expand1 = conv_bn(spec.squeeze, spec.expand1, 1)
        self.expand3 = conv_bn(spec.squeeze, spec.expand3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.squeeze(x))
        return F.relu(torch.cat([self.expand1(s), self.expand3(s)], dim=1))


class SqueezerFaceNet(nn.Module):
    def __init__(self, spec: ModelSpec | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.spec = spec or ModelSpec()
        self.normalize = normalize
        s = self.spec
        self.stem = conv_bn(3, s.stem, 3, stride=2)
        layers: list[nn.Module] = []
        cin = s.stem
        for i, fire in enumerate(s.fires):
            layers.append(Fire(cin, fire))
            cin = fire.out_channels
            if i in POOL_AFTER_FIRE:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.head = conv_bn(cin, s.head, 1)
        self.gdc = conv_bn(s.head, s.head, 7, groups=s.head)
        self.embed = nn.Linear(s.head, s.embedding, bias=False)
        self.embed_bn = nn.BatchNorm1d(s.embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.features(x)
        x = F.relu(self.head(x))
        x = self.gdc(x).flatten(1)
        x = self.embed_bn(self.embed(x))
        return F.normalize(x, dim=1) if self.normalize else x


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_mflops(model: nn.Module, size: int = INPUT_SIZE) -> float:
    """Multiply-accumulates of one forward pass, in millions (conv and linear layers; the usual 'FLOPs'
    of face-recognition papers, which count MACs)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += k * output.numel() // output.shape[0]
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total / 1e6


def spec_of(model: SqueezerFaceNet) -> ModelSpec:
    """Read the channel counts back from a (possibly pruned) module."""
    fires = [m for m in model.features if isinstance(m, Fire)]
    return ModelSpec(
        stem=model.stem[0].out_channels,
        fires=tuple(
            FireSpec(f.squeeze[0].out_channels, f.expand1[0].out_channels, f.expand3[0].out_channels)
            for f in fires
        ),
        head=model.head[0].out_channels,
        embedding=model.embed.out_features,
        base=model.spec.base,
    )


def save_model(model: SqueezerFaceNet, path_stem: str | Path, **extra: object) -> tuple[Path, Path]:
    """Write `<stem>.safetensors` + `<stem>.json` (spec text, params, MFLOPs, and `extra` facts)."""
    from safetensors.torch import save_file

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    spec = spec_of(model)
    weights = stem.with_suffix(".safetensors")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights))
    meta = stem.with_suffix(".json")
    meta.write_text(
        json.dumps(
            {
                "spec": spec.to_text(),
                "params": count_params(model),
                "mflops": round(count_mflops(model), 2),
                **extra,
            },
            indent=1,
        )
    )
    return weights, meta


def load_model(path_stem: str | Path, normalize: bool = True) -> SqueezerFaceNet:
    """Rebuild from `<stem>.json` spec + `<stem>.safetensors` weights (no pickle anywhere)."""
    from safetensors.torch import load_file

    stem = Path(path_stem)
    spec = ModelSpec.from_text(json.loads(stem.with_suffix(".json").read_text())["spec"])
    model = SqueezerFaceNet(spec, normalize=normalize)
    model.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    return model.eval()
