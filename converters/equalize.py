"""Cross-layer range equalization for SqueezerFaceNet (and the three pairs of MobileFaceNet where it is
exact) before int8 quantization.

int8 activations are quantized per tensor: one scale for all channels of a layer's output. When one channel
of the stem spans [0, 20] and another [0, 0.5], the second keeps only a few levels and the network loses
accuracy.

ReLU and max-pooling commute with a positive per-channel scale, so channel i of a conv+BN output can be
divided by s_i (BN's gamma and beta) and the next convolution's input channel i multiplied by s_i without
changing the function. Choosing s_i = sqrt(a_i / w_i), with a_i the channel's activation range on
calibration faces and w_i the largest weight the next layer applies to it, makes both equal to
sqrt(a_i w_i): activation ranges shrink toward each other while the next layer's per-channel weight ranges
stay balanced (the data-free quantization idea of Nagel et al., 2019, with measured activation ranges).

MobileFaceNet mostly uses ReLU6, which clips at a fixed 6: relu6(x / s) != relu6(x) / s, so a scaled
channel would change the function. Only its pairs separated by a plain ReLU or by nothing are equalized
(`equalize_mobilefacenet`); its ReLU6 pairs and its residual streams are left alone.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pruning.model import Fire, SqueezerFaceNet


def _scale_output(conv_bn: nn.Sequential, s: torch.Tensor) -> None:
    bn = conv_bn[1]
    bn.weight.data /= s
    bn.bias.data /= s


def _scale_input(conv: nn.Conv2d, s: torch.Tensor, offset: int = 0) -> None:
    conv.weight.data[:, offset : offset + len(s)] *= s[None, :, None, None]


def _ranges(model: SqueezerFaceNet, x: torch.Tensor, modules: list[nn.Module]) -> list[torch.Tensor]:
    """Per-channel max of relu(module output) over the batch."""
    found: dict[int, torch.Tensor] = {}

    def hook(i: int):
        def f(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            found[i] = torch.relu(output).amax(dim=(0, 2, 3))

        return f

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [found[i] for i in range(len(modules))]


def _pair_scale(act: torch.Tensor, weight_in: torch.Tensor) -> torch.Tensor:
    """sqrt(a / w) per channel, and 1 for channels that never fire on the calibration faces (nothing to
    balance; scaling them would only inflate their BatchNorm bias)."""
    alive = (act > 1e-4 * act.max().clamp_min(1e-12)) & (weight_in > 0)
    s = torch.sqrt(act.clamp_min(1e-12) / weight_in.clamp_min(1e-12)).clamp(1e-3, 1e3)
    return torch.where(alive, s, torch.ones_like(s))


def equalize(model: SqueezerFaceNet, calibration: np.ndarray, rounds: int = 2) -> SqueezerFaceNet:
    """Equalize, in place, every producer -> consumer pair: stem -> first squeeze, squeeze -> both expands,
    expands -> next squeeze (or the head). `calibration` is a normalised NCHW float batch."""
    model.eval()
    x = torch.from_numpy(calibration)
    fires = [m for m in model.features if isinstance(m, Fire)]
    for _ in range(rounds):
        # stem -> first squeeze
        (a,) = _ranges(model, x, [model.stem])
        w = fires[0].squeeze[0].weight.abs().amax(dim=(0, 2, 3))
        s = _pair_scale(a, w)
        _scale_output(model.stem, s)
        _scale_input(fires[0].squeeze[0], s)
        for k, fire in enumerate(fires):
            # squeeze -> expand1, expand3
            (a,) = _ranges(model, x, [fire.squeeze])
            w = torch.maximum(
                fire.expand1[0].weight.abs().amax(dim=(0, 2, 3)),
                fire.expand3[0].weight.abs().amax(dim=(0, 2, 3)),
            )
            s = _pair_scale(a, w)
            _scale_output(fire.squeeze, s)
            _scale_input(fire.expand1[0], s)
            _scale_input(fire.expand3[0], s)
            # expand1 | expand3 -> next squeeze (or the head), channels in concat order
            consumer = fires[k + 1].squeeze[0] if k + 1 < len(fires) else model.head[0]
            a1, a3 = _ranges(model, x, [fire.expand1, fire.expand3])
            w = consumer.weight.abs().amax(dim=(0, 2, 3))
            n1 = len(a1)
            s1, s3 = _pair_scale(a1, w[:n1]), _pair_scale(a3, w[n1:])
            _scale_output(fire.expand1, s1)
            _scale_output(fire.expand3, s3)
            _scale_input(consumer, torch.cat([s1, s3]))
    return model


def _bn_scale(bn: nn.BatchNorm2d, s: torch.Tensor) -> None:
    """Divide one BatchNorm's output channel i by s_i (its affine part only; the statistics stay)."""
    bn.weight.data /= s
    bn.bias.data /= s


def _output_ranges(model: nn.Module, x: torch.Tensor, module: nn.Module, relu: bool) -> torch.Tensor:
    """Per-channel max of one module's output over the batch: of relu(output) where a ReLU follows, of
    |output| where the next layer reads it directly."""
    found: list[torch.Tensor] = []

    def f(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        found.append((torch.relu(output) if relu else output.abs()).amax(dim=(0, 2, 3)))

    handle = module.register_forward_hook(f)
    with torch.no_grad():
        model(x)
    handle.remove()
    return found[0]


def equalize_mobilefacenet(model: nn.Module, calibration: np.ndarray, rounds: int = 2) -> nn.Module:
    """Equalize, in place, the three producer -> consumer pairs of MobileFaceNet where a per-channel scale
    commutes with what lies between (the rest of the network has ReLU6, which clips at a fixed 6, or a
    residual stream shared by a whole stage):

    * depthwise-separable block: depthwise BN -> ReLU -> pointwise conv;
    * the same block's pointwise BN -> ReLU -> first expansion conv;
    * GDC's BN -> (nothing: linear) -> embedding conv.

    Why these: on the unchanged public weights (benchmarks/RUNS.md, 2026-12-05) int8 lost the most signal
    at these three outputs, whose per-tensor ranges a few wide channels set. Equalizing them is exact but
    did not, on its own, lift the int8 cosine to the gate (0.9932 mean on 300 held-out faces vs 0.9936
    unequalized on 600): the rest of the loss is spread over the inverted-residual trunk."""
    from pruning.mobilefacenet import MobileFaceNet

    if not isinstance(model, MobileFaceNet):
        raise TypeError(f"expected MobileFaceNet, got {type(model).__name__}")
    model.eval()
    x = torch.from_numpy(calibration)
    first = model.features[0].conv[0][0]
    pairs = [
        (model.dw_conv.bn1, [model.dw_conv.pointwise], True),
        (model.dw_conv.bn2, [first], True),
        (model.gdconv.bn, [model.conv3], False),
    ]
    for _ in range(rounds):
        for bn, consumers, relu in pairs:
            a = _output_ranges(model, x, bn, relu)
            w = torch.stack([c.weight.abs().amax(dim=(0, 2, 3)) for c in consumers]).amax(dim=0)
            s = _pair_scale(a, w)
            _bn_scale(bn, s)
            for c in consumers:
                _scale_input(c, s)
    return model
