"""EdgeFace (George et al., IEEE T-BIOM 2024) rebuilt in fp32 torch from the published dynamically-quantized
checkpoints, for the `edgeface-*` teacher embedders and for the offline tools (export, distillation).

The `_q.pt` files are state dicts of a wrapper whose `model` is timm's EdgeNeXt with a 512-d head, saved
after `torch.ao.quantization.quantize_dynamic`: every `nn.Linear` is stored as int8 packed parameters.
Running the quantized modules would tie the teacher to torch's deprecated quantized CPU kernels; instead
the fp32 network is rebuilt and each Linear gets its dequantized weight and its (float) bias, which is
exactly the function the quantized model computes up to the activation rounding of dynamic quantization.

torch and timm are imported inside the functions: this module is part of the runtime package, which never
imports torch when it is imported (only when an EdgeFace embedder is built).
"""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squeezerface.errors import EmbedderUnavailableError

if TYPE_CHECKING:
    import torch

EDGEFACE_ARCHS: dict[str, str] = {"edgeface-xs": "edgenext_x_small", "edgeface-xxs": "edgenext_xx_small"}
"""timm architecture of each published EdgeFace variant (full-rank; not the low-rank `_gamma_` ones)."""

EMBEDDING_SIZE = 512
_PACKED = "._packed_params._packed_params"


def _missing(what: str, exc: BaseException) -> EmbedderUnavailableError:
    """A `MissingExtraError` naming the extra (the embedder subclass, so the CLI exits with status 3)."""
    return EmbedderUnavailableError(
        f"{what} needs torch and timm, which the 'train' extra installs: "
        f'pip install -e ".[train]" (from the repository root): {exc}',
        extra="train",
    )


def import_timm() -> types.ModuleType:
    """`import timm`, working around a torchvision wheel whose compiled ops cannot load.

    timm imports torchvision. A torchvision wheel built for another torch (the PyPI 0.28 wheel is a CUDA
    build; this project pins the CPU torch) fails to load its `_C` library, which torchvision tolerates
    (`extension._has_ops()` is then False and its ops raise when called) except in `_meta_registrations`,
    which registers fake kernels for `torchvision::nms` & co. unconditionally and so makes `import
    torchvision` raise `RuntimeError: operator torchvision::nms does not exist`. Its sibling
    `_autograd_registrations` already skips its registrations when the ops are absent; this does the same
    for the meta ones by standing in an empty module, only after exactly that failure. Nothing else changes:
    timm never calls torchvision's compiled ops, and calling one still raises torchvision's own error.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise _missing("EdgeFace", exc) from exc
    try:
        import torchvision
    except ImportError:
        pass  # timm says what it needs below
    except RuntimeError as exc:
        extension = sys.modules.get("torchvision.extension")
        if "torchvision::" not in str(exc) or extension is None or extension._has_ops():
            raise
        stub = types.ModuleType(
            "torchvision._meta_registrations", "empty: torchvision's compiled ops did not load (import_timm)"
        )
        sys.modules[stub.__name__] = stub
        import torchvision  # noqa: F401
    try:
        import timm
    except ImportError as exc:
        raise _missing("EdgeFace", exc) from exc
    return timm


def dequantized_state(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The fp32 state dict of a dynamically quantized checkpoint: each packed Linear becomes `weight` (its
    int8 weight dequantized) and `bias`; its `scale`/`zero_point` (activation settings) are dropped."""
    linears = {k.removesuffix(_PACKED) for k in state if k.endswith(_PACKED)}
    settings = {f"{m}.{leaf}" for m in linears for leaf in ("scale", "zero_point", "_packed_params.dtype")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(_PACKED):
            weight, bias = value
            out[key.removesuffix(_PACKED) + ".weight"] = weight.dequantize()
            if bias is not None:
                out[key.removesuffix(_PACKED) + ".bias"] = bias.detach().clone()
        elif key not in settings:
            out[key] = value
    return out


def load_edgeface(path: str | Path, arch: str) -> torch.nn.Module:
    """The fp32 EdgeFace network (eval mode) with the weights of a published `_q.pt` checkpoint.

    Input: (N, 3, 112, 112) RGB aligned to the ArcFace template, `(x / 255 - 0.5) / 0.5`; output (N, 512),
    not normalised. Loaded with `weights_only=True` (plain tensors and tuples only; no pickled code).
    """
    timm = import_timm()
    import torch

    with warnings.catch_warnings():  # torch deprecates quantized tensors (and TypedStorage) on every load
        warnings.simplefilter("ignore", UserWarning)
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    state = {k.removeprefix("model."): v for k, v in dequantized_state(state).items()}
    model = timm.create_model(arch, pretrained=False)
    model.reset_classifier(EMBEDDING_SIZE)
    model.load_state_dict(state, strict=True)
    return model.eval()
