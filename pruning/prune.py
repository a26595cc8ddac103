"""Global filter pruning of a SqueezerFaceNet by first-order Taylor importance (and ablation criteria).

The paper (SqueezerFaceNet, Alonso-Fernandez et al. 2023) ranks filters by the first-order Taylor estimate of
Molchanov et al. 2019: the importance of a filter is the sum over its parameters of `(dL/dw * w)^2`, with the
gradient accumulated over many mini-batches; the lowest-ranked filters of the whole network are removed, the
network is fine-tuned, and this repeats.

Structure: torch-pruning's `DependencyGraph` finds which parameter slices disappear together when one output
channel of a conv is removed (its BatchNorm, the input slices of every consumer, the Fire concat with its
index offset, the depthwise GDC with `head`, the embedding's input columns). Such a set is a *group*; the
importances here score every channel of a group from all of its members, so they plug into
`tp.pruner.MetaPruner` / `tp.pruner.BasePruner` too. Our own driver (`prune_step`, `prune_to_params`) does the
ranking itself because it must be exact (remove exactly `n` channels, honour per-layer floors, land on a
parameter target) and deterministic, which `BasePruner`'s ratio/threshold scheme is not.

Typical use, one step:

    accumulate_gradients(model, batches, loss_fn, max_batches=64)   # p.grad := sum of per-batch gradients
    prune_step(model, example_input, TaylorImportance(), n_channels=64, floors=default_floors(original_spec))

Layers are named as in the spec text: `stem`, `fire{i}.squeeze`, `fire{i}.expand1`, `fire{i}.expand3` (i =
0..7) and `head`. The embedding size (the `embed` Linear's outputs and `embed_bn`) and the network input are
never pruned.

Note for callers that fine-tune: pruning replaces every touched `nn.Parameter` by a new, smaller one, so an
optimizer created before a pruning step holds stale tensors; build a new optimizer after each step.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import singledispatch
from typing import Any, Literal

import torch
import torch_pruning as tp
from torch import nn

from pruning import mobilefacenet as mfn
from pruning.model import (
    INPUT_SIZE,
    Fire,
    SqueezerFaceNet,
    count_mflops,
    count_params,
    spec_of,
)
from pruning.spec import FireSpec, ModelSpec

Normalizer = Literal["mean", "max", "l2"] | None
Scope = Literal["group", "filter"]
Plan = dict[str, list[int]]
"""Channels to remove, per layer name, as indices into that layer's current output channels."""

DEFAULT_FLOOR_FRACTION = 0.25
DEFAULT_MIN_CHANNELS = 4

# --------------------------------------------------------------------------------------------------
# Layer names <-> modules <-> spec
# --------------------------------------------------------------------------------------------------


@singledispatch
def layer_channels(spec: ModelSpec) -> dict[str, int]:
    """Output channels of every prunable layer, in network order (the embedding is not a prunable layer).

    Dispatches on the spec's type, like the other architecture-specific functions of this module
    (`layer_convs`, `spec_after`, `params_of_spec`, `model_spec`, `protected_modules`), so every driver
    below prunes SqueezerFaceNet and MobileFaceNet alike."""
    channels = {"stem": spec.stem}
    for i, fire in enumerate(spec.fires):
        channels[f"fire{i}.squeeze"] = fire.squeeze
        channels[f"fire{i}.expand1"] = fire.expand1
        channels[f"fire{i}.expand3"] = fire.expand3
    channels["head"] = spec.head
    return channels


@singledispatch
def layer_convs(model: SqueezerFaceNet) -> dict[str, nn.Conv2d]:
    """The conv whose output channels each prunable layer name stands for, in network order.

    `head` is the 1x1 conv; the depthwise `gdc` conv has no name of its own because its channels are the
    head's (torch-pruning couples them, and removing a head channel removes the matching GDC filter)."""
    convs: dict[str, nn.Conv2d] = {"stem": model.stem[0]}
    fires = [m for m in model.features if isinstance(m, Fire)]
    for i, fire in enumerate(fires):
        convs[f"fire{i}.squeeze"] = fire.squeeze[0]
        convs[f"fire{i}.expand1"] = fire.expand1[0]
        convs[f"fire{i}.expand3"] = fire.expand3[0]
    convs["head"] = model.head[0]
    return convs


def default_floors(
    spec: ModelSpec,
    *,
    fraction: float = DEFAULT_FLOOR_FRACTION,
    min_channels: int = DEFAULT_MIN_CHANNELS,
) -> dict[str, int]:
    """Per-layer minimum channel counts: max(min_channels, ceil(fraction * channels)), capped at the current
    count. Compute this once from the *original* model and pass it to every step of an iterative schedule;
    otherwise the 25% floor would shrink along with the layer."""
    return {
        name: min(count, max(min_channels, math.ceil(fraction * count), 1))
        for name, count in layer_channels(spec).items()
    }


def spec_after(spec: Any, plan: Mapping[str, Iterable[int]]) -> Any:
    """The spec a model would have after removing `plan`'s channels (no model needed)."""
    removed = {name: len(set(idxs)) for name, idxs in plan.items()}
    if isinstance(spec, mfn.MobileFaceNetSpec):
        return mfn.spec_after(spec, removed)
    unknown = set(removed) - set(layer_channels(spec))
    if unknown:
        raise KeyError(f"not prunable layer names: {sorted(unknown)}")
    fires = tuple(
        FireSpec(
            f.squeeze - removed.get(f"fire{i}.squeeze", 0),
            f.expand1 - removed.get(f"fire{i}.expand1", 0),
            f.expand3 - removed.get(f"fire{i}.expand3", 0),
        )
        for i, f in enumerate(spec.fires)
    )
    return replace(
        spec, stem=spec.stem - removed.get("stem", 0), fires=fires, head=spec.head - removed.get("head", 0)
    )


def params_of_spec(spec: Any) -> int:
    """Exact parameter count of the network a spec describes, built on the meta device (no memory, ~ms), so a
    schedule can find how many channels reach a parameter target before touching the real model."""
    with torch.device("meta"):
        if isinstance(spec, mfn.MobileFaceNetSpec):
            return count_params(mfn.MobileFaceNet(spec))
        return count_params(SqueezerFaceNet(spec))


@singledispatch
def model_spec(model: SqueezerFaceNet) -> ModelSpec:
    """The spec read back from a (pruned) model of either architecture."""
    return spec_of(model)


@singledispatch
def protected_modules(model: SqueezerFaceNet) -> set[nn.Module]:
    """Modules whose output channels no group may remove (the embedding)."""
    return {model.embed, model.embed_bn}


layer_channels.register(mfn.MobileFaceNetSpec, mfn.layer_channels)
layer_convs.register(mfn.MobileFaceNet, mfn.layer_convs)
model_spec.register(mfn.MobileFaceNet, mfn.spec_of)
protected_modules.register(mfn.MobileFaceNet, mfn.protected_modules)


def _default_input(model: nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, device=device)


def build_graph(model: SqueezerFaceNet, example_input: torch.Tensor | None = None) -> tp.DependencyGraph:
    """Trace the model into a torch-pruning dependency graph.

    The trace runs a real forward pass, which in train mode would update every BatchNorm's running statistics
    with the example input; so it runs in eval mode and the previous mode is restored."""
    example = _default_input(model) if example_input is None else example_input
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # No `ignored_layers` here: for build_dependency it means "do not trace", which would leave the
            # embedding's input columns out of the head's group. The embedding is protected in _layer_groups.
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    finally:
        model.train(was_training)
    return graph


def _out_handlers() -> tuple[Callable, ...]:
    return (tp.prune_conv_out_channels, tp.prune_depthwise_conv_out_channels, tp.prune_linear_out_channels)


def _layer_groups(model: SqueezerFaceNet, graph: tp.DependencyGraph) -> dict[str, tp.Group]:
    """Full-index group per named layer, rooted at that layer's conv (so root indices are its channels).

    Checks the coupling this module relies on: each group removes output channels of exactly one named conv
    (plus, for `head`, the depthwise GDC) and never the embedding's outputs. An architecture change that
    merged groups (a residual add, say) would make per-layer counts wrong, so it fails loudly here."""
    convs = layer_convs(model)
    named = {conv: name for name, conv in convs.items()}
    forbidden = protected_modules(model)
    groups: dict[str, tp.Group] = {}
    for name, conv in convs.items():
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, list(range(conv.out_channels)))
        for item in group:
            module, handler = item.dep.target.module, item.dep.handler
            if module in forbidden and handler in (
                tp.prune_linear_out_channels,
                tp.prune_batchnorm_out_channels,
            ):
                raise RuntimeError(f"pruning {name} would change the embedding size ({item.dep})")
            if handler in _out_handlers() and module in named and module is not conv:
                raise RuntimeError(
                    f"layers {name} and {named[module]} are coupled; per-layer pruning is invalid"
                )
        if name == "head" and isinstance(model, SqueezerFaceNet):
            members = {(item.dep.target.module, item.dep.handler) for item in group}
            if (model.embed, tp.prune_linear_in_channels) not in members or not any(
                module is model.gdc[0] for module, _ in members
            ):
                raise RuntimeError(
                    "head is not coupled with the GDC conv and the embedding input as expected"
                )
        groups[name] = group
    return groups


# --------------------------------------------------------------------------------------------------
# Importance criteria (torch-pruning `Importance`: group -> one score per root channel)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    """One parameter touched by a group member, the dim along which the group's channels index it, and its
    role: `out` = a producing filter (conv/linear output rows), `bn_weight`/`bn_bias` = BatchNorm affine,
    `in` = a consumer's input columns."""

    param: nn.Parameter
    dim: int
    role: Literal["out", "bn_weight", "bn_bias", "in"]


def _member_slices(module: Any, handler: Callable) -> list[_Slice]:
    """Parameters that one group member loses when its channels go, according to the pruning function."""
    if handler in _out_handlers():
        out = [_Slice(module.weight, 0, "out")]
        return out + ([_Slice(module.bias, 0, "out")] if getattr(module, "bias", None) is not None else [])
    if handler == tp.prune_conv_in_channels:
        if module.groups != 1:
            raise NotImplementedError(f"input-channel pruning of a grouped conv is not supported: {module}")
        return [_Slice(module.weight, 1, "in")]
    if handler == tp.prune_linear_in_channels:
        return [_Slice(module.weight, 1, "in")]
    if handler == tp.prune_batchnorm_out_channels:
        return (
            [_Slice(module.weight, 0, "bn_weight"), _Slice(module.bias, 0, "bn_bias")]
            if module.affine
            else []
        )
    if isinstance(module, nn.Module) and any(True for _ in module.parameters(recurse=False)):
        raise NotImplementedError(f"no importance rule for {type(module).__name__} via {handler}")
    return []  # parameter-free graph nodes: ReLU, max-pool, concat, reshape


def _per_channel(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum a parameter-shaped tensor over every dim except the channel dim."""
    return values.movedim(dim, 0).reshape(values.shape[dim], -1).sum(1)


def _normalize(scores: torch.Tensor, how: Normalizer) -> torch.Tensor:
    if how is None:
        return scores
    if how == "mean":
        denominator = scores.mean()
    elif how == "max":
        denominator = scores.max()
    elif how == "l2":
        denominator = scores.norm()
    else:
        raise ValueError(f"unknown normalizer {how!r}; use None, 'mean', 'max' or 'l2'")
    return scores / denominator if denominator > 0 else scores


class GroupImportance(tp.importance.Importance):
    """Base: sum per-slice channel scores over the members of a group, mapped to the root's channels.

    Subclasses say which slices count (`_keep`) and how a slice scores its channels (`_slice_scores`). Scores
    are float64 so that sums of many tiny squared terms neither underflow nor tie by rounding."""

    normalizer: Normalizer = None

    def _keep(self, piece: _Slice) -> bool:
        return True

    def _slice_scores(self, piece: _Slice, module: Any) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        root_idxs = group[0].root_idxs if group[0].root_idxs is not None else group[0].idxs
        position = {int(r): i for i, r in enumerate(root_idxs)}
        total = torch.zeros(len(root_idxs), dtype=torch.float64)
        found = False
        for item in group:
            if item.root_idxs is None or any(r is None for r in item.root_idxs):
                continue
            module = item.dep.target.module
            for piece in _member_slices(module, item.dep.handler):
                if not self._keep(piece):
                    continue
                scores = self._slice_scores(piece, module).detach().to("cpu", torch.float64)
                local = scores[torch.as_tensor(item.idxs, dtype=torch.long)]
                target = torch.as_tensor([position[int(r)] for r in item.root_idxs], dtype=torch.long)
                total.index_add_(0, target, local)
                found = True
        return _normalize(total, self.normalizer) if found else None


class TaylorImportance(GroupImportance):
    """First-order Taylor importance, squared form (Molchanov et al. 2019, as the SqueezerFaceNet paper uses).

    Score of channel c = sum over the group's parameter slices s that index c of sum_w (G_w * w)^2, where G is
    `p.grad` as left by `accumulate_gradients`: the gradient *summed* over many mini-batches (loss.backward()
    without zeroing grads in between), not a per-batch gradient. Summing instead of averaging scales every
    score by the same constant, so the ranking is unchanged.

    `scope="group"` (default) counts every parameter that disappears with the channel: the producing conv
    filter (and the GDC filter for `head`), its BatchNorm weight and bias, and the consumers' input slices
    (the next squeeze's or the expands' columns, `embed`'s column for `head`). `scope="filter"` counts only
    the producing filter(s) and BatchNorm, i.e. the paper's "filter". Members are aggregated by sum, as
    Molchanov 2019 does for a group.

    No per-layer normalisation by default (`normalizer=None`): each term estimates, in loss units, how much
    the loss changes when that weight is removed, so raw scores are already comparable between layers of any
    size and a global ranking is meaningful; dividing by a per-layer mean would instead make every layer look
    equally important on average and push towards uniform pruning ratios, which is what global ranking is
    meant to avoid. The too-small-layer risk of an unnormalised ranking is handled by per-layer floors."""

    def __init__(self, scope: Scope = "group", normalizer: Normalizer = None) -> None:
        if scope not in ("group", "filter"):
            raise ValueError(f"scope must be 'group' or 'filter', not {scope!r}")
        self.scope = scope
        self.normalizer = normalizer

    def _keep(self, piece: _Slice) -> bool:
        return self.scope == "group" or piece.role != "in"

    def _slice_scores(self, piece: _Slice, module: Any) -> torch.Tensor:
        if piece.param.grad is None:
            raise RuntimeError(
                f"{type(module).__name__} has no gradient: run accumulate_gradients() before Taylor scoring"
            )
        return _per_channel((piece.param.grad * piece.param).pow(2), piece.dim)


class MagnitudeL1Importance(GroupImportance):
    """L1 norm of the producing filter(s) of each channel (Li et al. 2017), for the ablation.

    Only conv/linear output rows count (for `head` that is the 1x1 filter plus the 7x7 GDC filter); BatchNorm
    and consumer slices do not. Normalised by each layer's mean by default: a filter's L1 norm grows with its
    fan-in (~sqrt(fan_in) at initialisation), so raw norms would rank 1x1 convs with 16 inputs against 3x3
    convs with 576 inputs by size, not by importance."""

    def __init__(self, normalizer: Normalizer = "mean") -> None:
        self.normalizer = normalizer

    def _keep(self, piece: _Slice) -> bool:
        return piece.role == "out"

    def _slice_scores(self, piece: _Slice, module: Any) -> torch.Tensor:
        return _per_channel(piece.param.abs(), piece.dim)


class RandomImportance(tp.importance.Importance):
    """Uniform random scores, reproducible: the generator for a group is seeded from (seed, the root module's
    name, its channel count), so the same model and seed give the same scores whatever the call order, and no
    global RNG is read or advanced. A global ranking of uniform scores removes channels from each layer
    roughly in proportion to its size."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, group: tp.Group) -> torch.Tensor:
        module = group[0].dep.target.module
        graph = getattr(group, "_DG", None)
        name = getattr(graph, "_module2name", {}).get(module, type(module).__name__)
        n = len(group[0].idxs)
        generator = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}:{name}:{n}".encode()))
        return torch.rand(n, generator=generator, dtype=torch.float64)


class ActivationTaylorImportance(GroupImportance):
    """Activation-based first-order Taylor criterion (Molchanov et al. 2017), optional variant.

    Per channel: |mean over spatial positions of a * dL/da|, averaged over examples (the paper's order: the
    absolute value is taken per example, after the spatial mean), with `a` the BatchNorm output. Using the
    pre-ReLU BN output is exact: a * dL/da is zero wherever the ReLU is off and equal to the post-ReLU product
    elsewhere. A group's score is the sum over its BatchNorms (head + GDC for `head`). Normalised per layer by
    its L2 norm by default, as the 2017 paper does (activation scores are not in comparable units across
    layers).

    Record with hooks while gradients are computed, then score:

        act = ActivationTaylorImportance()
        with act.recording(model):
            accumulate_gradients(model, batches, loss_fn, max_batches)
        prune_step(model, example_input, act, n)

    Recordings are per module and go stale once the model is pruned; `reset()` (or a new instance) before
    recording again.
    """

    def __init__(self, normalizer: Normalizer = "l2") -> None:
        self.normalizer = normalizer
        self._sums: dict[nn.Module, torch.Tensor] = {}
        self._counts: dict[nn.Module, int] = {}

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    @contextmanager
    def recording(self, model: nn.Module) -> Iterator[ActivationTaylorImportance]:
        """Hook every BatchNorm2d so that each backward pass adds its per-channel criterion."""

        def add(module: nn.Module, activation: torch.Tensor, grad: torch.Tensor) -> None:
            per_example = (activation * grad).mean(dim=(2, 3)).abs().sum(0).to("cpu", torch.float64)
            self._sums[module] = self._sums.get(module, 0) + per_example
            self._counts[module] = self._counts.get(module, 0) + activation.shape[0]

        def forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if output.requires_grad:
                saved = output.detach()
                output.register_hook(lambda grad: add(module, saved, grad.detach()))

        handles = [
            m.register_forward_hook(forward_hook) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _keep(self, piece: _Slice) -> bool:
        return piece.role == "bn_weight"  # one slice per BatchNorm: the recording is per module

    def _slice_scores(self, piece: _Slice, module: Any) -> torch.Tensor:
        if module not in self._sums:
            raise RuntimeError(
                "no activations recorded: score inside or after `with importance.recording(model)`"
            )
        scores = self._sums[module] / self._counts[module]
        if scores.shape[0] != piece.param.shape[0]:
            raise RuntimeError(
                "activation recording is stale (the model was pruned since): reset() and record"
            )
        return scores


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------


def accumulate_gradients(
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    max_batches: int,
    *,
    bn_eval: bool = True,
) -> int:
    """Zero all gradients, then run forward/backward on up to `max_batches` batches without an optimizer step
    or zeroing in between, so `p.grad` ends up holding the *sum* of the per-batch gradients (the accumulated
    gradient Taylor scoring needs). Returns the number of batches used.

    BatchNorm runs in eval mode by default (`bn_eval=True`; the previous mode is restored): scores then
    measure the network that will be deployed (running statistics, per-sample independent), scoring does not
    silently move the running statistics towards the scoring batches, and small batches do not make the
    gradients noisy through batch statistics. `bn_eval=False` scores in train mode (batch statistics; updates
    them)."""
    if max_batches < 1:
        raise ValueError("max_batches must be >= 1")
    was_training = model.training
    model.train(not bn_eval)
    model.zero_grad(set_to_none=True)
    used = 0
    try:
        with torch.enable_grad():
            for batch in batches:
                loss = loss_fn(model, batch)
                if loss.ndim != 0:
                    raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
                loss.backward()
                used += 1
                if used >= max_batches:  # checked here, not before the next batch: never load one too many
                    break
    finally:
        model.train(was_training)
    if used == 0:
        raise ValueError("no batches to accumulate gradients over")
    return used


# --------------------------------------------------------------------------------------------------
# Ranking and pruning
# --------------------------------------------------------------------------------------------------


def score_layers(
    model: SqueezerFaceNet,
    importance: tp.importance.Importance,
    example_input: torch.Tensor | None = None,
    *,
    graph: tp.DependencyGraph | None = None,
) -> dict[str, torch.Tensor]:
    """Importance of every output channel of every prunable layer (float64, CPU), by layer name."""
    if graph is None:
        graph = build_graph(model, example_input)
    scores: dict[str, torch.Tensor] = {}
    for name, group in _layer_groups(model, graph).items():
        score = importance(group)
        if score is None:
            continue
        score = torch.as_tensor(score).detach().to("cpu", torch.float64).flatten()
        if score.numel() != len(group[0].idxs):
            raise RuntimeError(f"{name}: importance returned {score.numel()} scores for {len(group[0].idxs)}")
        if torch.isnan(score).any():
            raise ValueError(f"{name}: importance is NaN (diverged gradients?)")
        scores[name] = score
    if not scores:
        raise RuntimeError("the importance scored no layer")
    return scores


def _resolve_floors(
    spec: ModelSpec, floors: Mapping[str, int] | None, min_channels_per_layer: int
) -> dict[str, int]:
    """Floors for the current model: the given ones (or the default 25% rule applied to the *current* spec),
    never below `min_channels_per_layer` nor 1."""
    base = default_floors(spec, min_channels=min_channels_per_layer) if floors is None else dict(floors)
    unknown = set(base) - set(layer_channels(spec))
    if unknown:
        raise KeyError(f"floors for unknown layers: {sorted(unknown)}")
    return {name: max(base.get(name, 0), min_channels_per_layer, 1) for name in layer_channels(spec)}


def ranked_candidates(
    scores: Mapping[str, torch.Tensor], channels: Mapping[str, int], floors: Mapping[str, int]
) -> list[tuple[str, int]]:
    """All removable channels, least important first, with floors applied greedily.

    Ties are broken by network order then channel index, so the ranking is deterministic. Because each layer
    only admits its `channels - floor` least important channels, removing the first `n` entries is exactly the
    greedy floor-respecting choice of `n` channels, for every `n` (schedules rely on this prefix property)."""
    order = {name: i for i, name in enumerate(channels)}
    everything = sorted(
        (float(value), order[name], idx, name)
        for name, score in scores.items()
        for idx, value in enumerate(score.tolist())
    )
    budget = {name: max(0, channels[name] - floors.get(name, channels[name])) for name in channels}
    out: list[tuple[str, int]] = []
    for _, _, idx, name in everything:
        if budget[name] > 0:
            budget[name] -= 1
            out.append((name, idx))
    return out


def _plan_of(candidates: Iterable[tuple[str, int]]) -> Plan:
    plan: Plan = {}
    for name, idx in candidates:
        plan.setdefault(name, []).append(idx)
    return {name: sorted(idxs) for name, idxs in plan.items()}


def removable_channels(
    model: SqueezerFaceNet,
    importance: tp.importance.Importance,
    floors: Mapping[str, int] | None,
    min_channels_per_layer: int,
    example_input: torch.Tensor | None = None,
    *,
    graph: tp.DependencyGraph | None = None,
) -> list[tuple[str, int]]:
    """Every channel the floors allow to remove, least important first (score, then rank)."""
    spec = model_spec(model)
    scores = score_layers(model, importance, example_input, graph=graph)
    return ranked_candidates(
        scores, layer_channels(spec), _resolve_floors(spec, floors, min_channels_per_layer)
    )


def select_channels(
    model: SqueezerFaceNet,
    example_input: torch.Tensor | None,
    importance: tp.importance.Importance,
    n_channels: int,
    *,
    floors: Mapping[str, int] | None = None,
    min_channels_per_layer: int = DEFAULT_MIN_CHANNELS,
    graph: tp.DependencyGraph | None = None,
) -> Plan:
    """The `n_channels` globally least important channels that floors allow, as {layer: sorted indices}."""
    if n_channels < 0:
        raise ValueError("n_channels must be >= 0")
    candidates = removable_channels(
        model, importance, floors, min_channels_per_layer, example_input, graph=graph
    )
    if n_channels > len(candidates):
        raise ValueError(
            f"cannot remove {n_channels} channels: floors leave only {len(candidates)} removable"
        )
    return _plan_of(candidates[:n_channels])


def apply_plan(
    model: SqueezerFaceNet,
    plan: Mapping[str, Iterable[int]],
    example_input: torch.Tensor | None = None,
    *,
    graph: tp.DependencyGraph | None = None,
) -> SqueezerFaceNet:
    """Remove the given output channels (indices into each layer's current channels) in place, with everything
    coupled to them, and refresh `model.spec` so that save/load rebuilds the pruned network from its text."""
    if graph is None:
        graph = build_graph(model, example_input)
    convs = layer_convs(model)
    wanted = {name: sorted({int(i) for i in idxs}) for name, idxs in plan.items()}
    unknown = set(wanted) - set(convs)
    if unknown:
        raise KeyError(f"not prunable layer names: {sorted(unknown)}")
    for name in convs:  # network order, so the result does not depend on the plan's dict order
        idxs = wanted.get(name)
        if not idxs:
            continue
        conv = convs[name]
        if idxs[0] < 0 or idxs[-1] >= conv.out_channels or len(idxs) >= conv.out_channels:
            raise ValueError(f"{name}: cannot remove {idxs} of {conv.out_channels} channels")
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs)
        group.prune()
    model.spec = model_spec(model)
    return model


def prune_step(
    model: SqueezerFaceNet,
    example_input: torch.Tensor | None,
    importance: tp.importance.Importance,
    n_channels: int,
    *,
    floors: Mapping[str, int] | None = None,
    min_channels_per_layer: int = DEFAULT_MIN_CHANNELS,
) -> SqueezerFaceNet:
    """Remove exactly `n_channels` output channels, the globally least important ones, in place.

    A channel is one output filter of a named layer (stem, a squeeze, an expand1, an expand3, or head with its
    GDC filter), so the sum of the spec's layer channels drops by exactly `n_channels`. No layer goes below
    its floor: `floors[name]` if given, else max(min_channels_per_layer, ceil(25% of its *current* channels));
    in an iterative schedule pass `default_floors(original_spec)` so the 25% refers to the original model. The
    embedding size and the network input are never pruned. Deterministic for deterministic scores. Raises
    ValueError if the floors do not leave `n_channels` removable channels."""
    graph = build_graph(model, example_input)
    plan = select_channels(
        model,
        example_input,
        importance,
        n_channels,
        floors=floors,
        min_channels_per_layer=min_channels_per_layer,
        graph=graph,
    )
    return apply_plan(model, plan, graph=graph)


# --------------------------------------------------------------------------------------------------
# Iterative schedule
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneRecord:
    """The model after one schedule step (step 0 = before any pruning)."""

    step: int
    removed: int
    params: int
    mflops: float
    spec: str
    removed_per_layer: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def channels_for_target(spec: ModelSpec, candidates: list[tuple[str, int]], target_params: int) -> int:
    """Smallest prefix of `candidates` whose removal brings the parameter count to <= target_params (or all of
    them if even that does not). Exact: parameter counts come from the resulting specs."""

    def params(n: int) -> int:
        return params_of_spec(spec_after(spec, _plan_of(candidates[:n])))

    if params(0) <= target_params:
        return 0
    lo, hi = 1, len(candidates)
    if hi == 0 or params(hi) > target_params:
        return hi
    while lo < hi:  # parameters fall monotonically with the prefix length
        mid = (lo + hi) // 2
        if params(mid) <= target_params:
            hi = mid
        else:
            lo = mid + 1
    return lo


def prune_to_params(
    model: SqueezerFaceNet,
    example_input: torch.Tensor | None,
    importance: tp.importance.Importance,
    target_params: int,
    *,
    step_fraction: float = 0.05,
    before_scoring: Callable[[SqueezerFaceNet], None] | None = None,
    finetune: Callable[[SqueezerFaceNet, int], None] | None = None,
    evaluate: Callable[[SqueezerFaceNet], Mapping[str, Any]] | None = None,
    floor_fraction: float = DEFAULT_FLOOR_FRACTION,
    min_channels_per_layer: int = DEFAULT_MIN_CHANNELS,
    floors: Mapping[str, int] | None = None,
    max_steps: int = 1000,
) -> list[PruneRecord]:
    """Prune -> fine-tune -> evaluate in steps until count_params(model) <= target_params (in place).

    Each step removes ~`step_fraction` of the channels the prunable layers currently have (at least one), but
    never more than needed: the last step removes the smallest number of lowest-ranked channels that reaches
    the target exactly. Floors come from the *original* model (`floor_fraction`, `min_channels_per_layer`);
    when they stop further pruning a warning is issued and the records show the target was not reached.

    Callbacks: `before_scoring(model)` runs before each ranking and must leave what the importance needs
    (e.g. `lambda m: accumulate_gradients(m, batches, loss_fn, 64)` for Taylor; for the activation variant
    `act.reset()` then the same call inside `with act.recording(m):`); `finetune(model, step)` trains after
    each step and must create its own optimizer (parameters are new tensors after pruning);
    `evaluate(model)` returns metrics stored in the record, also for step 0. Gradients are cleared after each
    pruning step so fine-tuning starts clean. Scores are recomputed from scratch at every step."""
    if not 0 < step_fraction <= 1:
        raise ValueError("step_fraction must be in (0, 1]")
    if floors is None:  # callers that resume a schedule pass the floors of the original model
        floors = default_floors(
            model_spec(model), fraction=floor_fraction, min_channels=min_channels_per_layer
        )

    def record(step: int, before: ModelSpec | None) -> PruneRecord:
        spec = model_spec(model)
        removed = {}
        if before is not None:
            now = layer_channels(spec)
            removed = {k: v - now[k] for k, v in layer_channels(before).items() if v != now[k]}
        metrics = dict(evaluate(model)) if evaluate is not None else {}
        return PruneRecord(
            step=step,
            removed=sum(removed.values()),
            params=count_params(model),
            mflops=round(count_mflops(model), 3),
            spec=spec.to_text(),
            removed_per_layer=removed,
            metrics=metrics,
        )

    records = [record(0, None)]
    for step in range(1, max_steps + 1):
        if count_params(model) <= target_params:
            break
        if before_scoring is not None:
            before_scoring(model)
        spec = model_spec(model)
        graph = build_graph(model, example_input)
        candidates = removable_channels(model, importance, floors, min_channels_per_layer, graph=graph)
        if not candidates:
            warnings.warn(
                f"floors reached at {count_params(model)} params, target {target_params} not met",
                stacklevel=2,
            )
            break
        n_step = max(1, round(step_fraction * sum(layer_channels(spec).values())))
        n = min(n_step, max(1, channels_for_target(spec, candidates, target_params)))
        apply_plan(model, _plan_of(candidates[:n]), graph=graph)
        model.zero_grad(set_to_none=True)
        if finetune is not None:
            finetune(model, step)
        records.append(record(step, spec))
    return records
