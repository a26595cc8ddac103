"""The embedder architectures of the offline stage, by the base name their spec text starts with.

A saved model is `<stem>.json` (spec text, params, MMACs, facts) + `<stem>.safetensors`; `load` rebuilds
either architecture from that pair (no pickle), so trainers, the pruning driver and the converters handle
SqueezerFaceNet (the paper line) and MobileFaceNet (the pretrained line) alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pruning import mobilefacenet, model, spec


@dataclass(frozen=True)
class Architecture:
    """How to build a network from spec text and read the spec text back from a (pruned) network."""

    build: Callable[[str, bool], nn.Module]
    spec_text_of: Callable[[nn.Module], str]


ARCHITECTURES: dict[str, Architecture] = {
    spec.BASE_NAME: Architecture(
        build=lambda text, normalize: model.SqueezerFaceNet(
            spec.ModelSpec.from_text(text), normalize=normalize
        ),
        spec_text_of=lambda m: model.spec_of(m).to_text(),  # type: ignore[arg-type]
    ),
    mobilefacenet.BASE_NAME: Architecture(
        build=lambda text, normalize: mobilefacenet.MobileFaceNet(
            mobilefacenet.MobileFaceNetSpec.from_text(text), normalize=normalize
        ),
        spec_text_of=lambda m: mobilefacenet.spec_of(m).to_text(),  # type: ignore[arg-type]
    ),
}


def architecture_of(spec_text: str) -> Architecture:
    base = spec_text.split(":", 1)[0]
    if base not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {base!r} in spec {spec_text!r}; known: {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[base]


def spec_text_of(net: nn.Module) -> str:
    base = mobilefacenet.BASE_NAME if isinstance(net, mobilefacenet.MobileFaceNet) else spec.BASE_NAME
    return ARCHITECTURES[base].spec_text_of(net)


def build(spec_text: str, normalize: bool = True) -> nn.Module:
    return architecture_of(spec_text).build(spec_text, normalize)


def save(net: nn.Module, path_stem: str | Path, **extra: Any) -> tuple[Path, Path]:
    """Write `<stem>.safetensors` + `<stem>.json` (spec text, params, MMACs and `extra` facts)."""
    from safetensors.torch import save_file

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights, meta = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(weights))
    facts = {
        "spec": spec_text_of(net),
        "params": model.count_params(net),
        "mflops": round(model.count_mflops(net), 2),
        **extra,
    }
    meta.write_text(json.dumps(facts, indent=1))
    return weights, meta


def load(path_stem: str | Path, normalize: bool = True) -> nn.Module:
    """Rebuild from `<stem>.json` + `<stem>.safetensors`, in eval mode."""
    from safetensors.torch import load_file

    stem = Path(path_stem)
    net = build(json.loads(stem.with_suffix(".json").read_text())["spec"], normalize)
    net.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    return net.eval()
