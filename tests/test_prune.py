"""Filter pruning: Taylor scores by hand, exact global removal, coupling (concat, GDC, embedding), save/load.

Tiny inputs (2x3x112x112), one thread: the whole file runs in a few seconds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="pruning needs the 'train' extra")
tp = pytest.importorskip("torch_pruning", reason="pruning needs the 'train' extra")

from torch import nn  # noqa: E402

from pruning import prune as P  # noqa: E402
from pruning.model import (  # noqa: E402
    SqueezerFaceNet,
    count_params,
    load_model,
    save_model,
    spec_of,
)

torch.set_num_threads(1)


def _model(seed: int = 0) -> SqueezerFaceNet:
    """A fresh model whose BatchNorms are calibrated on one random batch, so that in eval mode every channel
    is alive (an uncalibrated net has ReLU-dead channels whose Taylor scores are exactly 0, which would make
    'the lowest channel' ambiguous)."""
    torch.manual_seed(seed)
    model = SqueezerFaceNet()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.momentum = None  # cumulative average: one batch sets the running stats to its own
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    model.train()
    with torch.no_grad():
        model(_images(seed + 100))
    return model.eval()


def _images(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(seed))


def _loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Any smooth scalar of the embedding will do for testing the gradient bookkeeping."""
    return (model(batch) * torch.linspace(-1.0, 1.0, 128)).sum()


def _total_channels(spec) -> int:
    return sum(P.layer_channels(spec).values())


def _sq(param: torch.Tensor, index) -> torch.Tensor:
    return (param.grad * param).pow(2)[index].sum()


def test_taylor_matches_hand_computation() -> None:
    model = _model()
    P.accumulate_gradients(model, [_images()], _loss, max_batches=1)
    fire, c = model.features[3], 3  # fire2 (features: fire0, fire1, pool, fire2, ...)
    producer = _sq(fire.squeeze[0].weight, c) + _sq(fire.squeeze[1].weight, c) + _sq(fire.squeeze[1].bias, c)
    consumers = _sq(fire.expand1[0].weight, (slice(None), c)) + _sq(fire.expand3[0].weight, (slice(None), c))

    group = P.score_layers(model, P.TaylorImportance())
    filt = P.score_layers(model, P.TaylorImportance(scope="filter"))
    assert producer > 0 and consumers > 0
    assert group["fire2.squeeze"][c].item() == pytest.approx((producer + consumers).item(), rel=1e-5)
    assert filt["fire2.squeeze"][c].item() == pytest.approx(producer.item(), rel=1e-5)

    h = 7  # a head channel also owns its GDC filter + BN and one input column of the embedding
    head = (
        _sq(model.head[0].weight, h)
        + _sq(model.head[1].weight, h)
        + _sq(model.head[1].bias, h)
        + _sq(model.gdc[0].weight, h)
        + _sq(model.gdc[1].weight, h)
        + _sq(model.gdc[1].bias, h)
    )
    embed_column = _sq(model.embed.weight, (slice(None), h))
    assert filt["head"][h].item() == pytest.approx(head.item(), rel=1e-5)
    assert group["head"][h].item() == pytest.approx((head + embed_column).item(), rel=1e-5)


def test_taylor_without_gradients_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="accumulate_gradients"):
        P.score_layers(SqueezerFaceNet(), P.TaylorImportance())


def test_accumulate_gradients_sums_batches_and_leaves_bn_alone() -> None:
    model = _model()
    model.train()
    stats = model.stem[1].running_mean.clone()
    batch = _images()
    assert P.accumulate_gradients(model, [batch], _loss, max_batches=1) == 1
    once = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert P.accumulate_gradients(model, [batch, batch, batch], _loss, max_batches=2) == 2
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, 2 * once[name], rtol=1e-5, atol=1e-9)
    assert model.training  # mode restored
    assert torch.equal(model.stem[1].running_mean, stats)  # eval-mode BN: scoring moved no statistics


def test_prune_step_removes_exactly_n_and_respects_floors() -> None:
    model = _model()
    before = spec_of(model)
    floors = P.default_floors(before)
    floors["fire0.squeeze"] = before.fires[0].squeeze  # this layer may not lose anything
    n = 400
    P.prune_step(model, None, P.RandomImportance(seed=3), n, floors=floors)
    after = spec_of(model)
    assert model.spec == after
    assert _total_channels(before) - _total_channels(after) == n
    for name, count in P.layer_channels(after).items():
        assert count >= floors[name], name
    assert after.fires[0].squeeze == before.fires[0].squeeze
    assert after.embedding == 128 and model.embed.out_features == 128 and model.embed_bn.num_features == 128
    assert model.gdc[0].groups == model.gdc[0].out_channels == model.head[0].out_channels == after.head
    assert model.stem[0].in_channels == 3
    out = model(_images())
    assert out.shape == (2, 128)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_prune_step_refuses_what_floors_forbid() -> None:
    model = SqueezerFaceNet()
    removable = _total_channels(model.spec) - sum(P.default_floors(model.spec).values())
    with pytest.raises(ValueError, match="floors"):
        P.prune_step(model, None, P.RandomImportance(), removable + 1)
    assert spec_of(model) == model.spec  # nothing happened


def test_lowest_importance_channel_is_removed() -> None:
    model = _model()
    expand3, bn, dead = model.features[4].expand3[0], model.features[4].expand3[1], 5  # fire3.expand3
    with torch.no_grad():
        expand3.weight[dead] = 0
        bn.weight[dead] = 0
        bn.bias[dead] = 0
    kept = torch.cat([expand3.weight[:dead], expand3.weight[dead + 1 :]]).detach().clone()
    P.accumulate_gradients(model, [_images()], _loss, max_batches=1)
    scores = P.score_layers(model, P.TaylorImportance())
    assert scores["fire3.expand3"][dead] == 0
    others = torch.cat([s for name, s in scores.items() if name != "fire3.expand3"])
    assert others.min() > 0 and (scores["fire3.expand3"] > 0).sum() == 127

    P.prune_step(model, None, P.TaylorImportance(), 1)
    assert model.spec.fires[3].expand3 == 127
    assert torch.equal(model.features[4].expand3[0].weight, kept)


def test_pruned_model_equals_original_with_those_channels_silenced() -> None:
    """Index bookkeeping through the Fire concat (expand3 sits at an offset), the stem -> pool -> squeeze path
    and head -> GDC -> embedding: zeroing a channel's BN scale and shift silences it exactly in eval mode (for
    head, the GDC BN too), which must equal removing it."""
    model = _model()
    plan = {
        "stem": [4],
        "fire1.expand1": [0, 5],
        "fire1.expand3": [3, 7, 63],
        "fire2.squeeze": [1],
        "fire7.expand3": [0, 255],
        "head": [2, 10, 767],
    }
    silenced = copy.deepcopy(model)
    bns = {
        "stem": [silenced.stem[1]],
        "fire1.expand1": [silenced.features[1].expand1[1]],
        "fire1.expand3": [silenced.features[1].expand3[1]],
        "fire2.squeeze": [silenced.features[3].squeeze[1]],
        "fire7.expand3": [silenced.features[9].expand3[1]],
        "head": [silenced.head[1], silenced.gdc[1]],
    }
    with torch.no_grad():
        for name, idxs in plan.items():
            for bn in bns[name]:
                bn.weight[idxs] = 0
                bn.bias[idxs] = 0
    P.apply_plan(model, plan)
    assert P.spec_after(silenced.spec, plan) == model.spec
    assert count_params(model) == P.params_of_spec(model.spec)
    # In float64: the two networks sum the same products in another order, so in float32 they differ by
    # rounding that depends on the CPU's kernels (1.85e-5 on one x86 machine); in float64 the difference
    # is ~1e-15, and 1e-9 still catches any channel that is not truly silenced (effects of order 1e-2).
    model, silenced = model.double(), silenced.double()
    x = _images().double()
    with torch.no_grad():
        torch.testing.assert_close(model(x), silenced(x), rtol=0, atol=1e-9)


def test_save_load_round_trip_after_pruning(tmp_path: Path) -> None:
    model = _model()
    original_text = model.spec.to_text()
    P.accumulate_gradients(model, [_images()], _loss, max_batches=1)
    P.prune_step(model, None, P.TaylorImportance(), 50)
    save_model(model, tmp_path / "pruned")
    loaded = load_model(tmp_path / "pruned")
    assert loaded.spec.to_text() == model.spec.to_text() != original_text
    x = _images(7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=1e-6)


def test_l1_and_random_are_deterministic_and_differ() -> None:
    model = _model()
    graph = P.build_graph(model)
    l1_a = P.score_layers(model, P.MagnitudeL1Importance(), graph=graph)
    l1_b = P.score_layers(model, P.MagnitudeL1Importance(), graph=graph)
    rnd_a = P.score_layers(model, P.RandomImportance(seed=5), graph=graph)
    rnd_b = P.score_layers(copy.deepcopy(model), P.RandomImportance(seed=5))
    rnd_c = P.score_layers(model, P.RandomImportance(seed=6), graph=graph)
    for name in l1_a:
        assert torch.equal(l1_a[name], l1_b[name])
        assert torch.equal(rnd_a[name], rnd_b[name])
    assert not torch.equal(rnd_a["head"], rnd_c["head"])
    l1 = P.select_channels(model, None, P.MagnitudeL1Importance(), 100, graph=graph)
    rnd = P.select_channels(model, None, P.RandomImportance(seed=5), 100, graph=graph)
    assert l1 != rnd
    # L1 of a filter: sum of |w| over the producing conv(s), mean-normalised per layer
    w = model.stem[0].weight.abs().flatten(1).sum(1).double()
    torch.testing.assert_close(l1_a["stem"], w / w.mean())


def test_activation_taylor_scores_every_layer_and_goes_stale() -> None:
    model = _model()
    act = P.ActivationTaylorImportance()
    with act.recording(model):
        P.accumulate_gradients(model, [_images()], _loss, max_batches=1)
    scores = P.score_layers(model, act)
    assert set(scores) == set(P.layer_channels(model.spec))
    assert all(float(s.norm()) == pytest.approx(1.0) for s in scores.values())  # per-layer L2 normalised
    P.prune_step(model, None, act, 10)
    with pytest.raises(RuntimeError, match="stale"):
        P.score_layers(model, act)


def test_prune_to_params_lands_on_target() -> None:
    model = SqueezerFaceNet()
    start = count_params(model)
    target = int(start * 0.97)
    calls: list[str] = []

    def finetune(m: SqueezerFaceNet, step: int) -> None:
        assert all(p.grad is None for p in m.parameters())
        calls.append(f"finetune{step}")

    records = P.prune_to_params(
        model,
        None,
        P.RandomImportance(seed=0),
        target,
        step_fraction=0.01,
        before_scoring=lambda m: calls.append("score"),
        finetune=finetune,
        evaluate=lambda m: {"params": count_params(m)},
    )
    assert records[0].step == 0 and records[0].params == start and records[0].removed == 0
    assert records[-1].params <= target < records[-2].params
    assert [r.metrics["params"] for r in records] == [r.params for r in records]
    assert all(r.removed == sum(r.removed_per_layer.values()) > 0 for r in records[1:])
    assert calls[:2] == ["score", "finetune1"] and len(calls) == 2 * (len(records) - 1)
    assert records[-1].spec == model.spec.to_text()
    # the last step removed no more channels than needed
    last = records[-1]
    assert last.removed <= round(0.01 * _total_channels(spec_of(SqueezerFaceNet())))


def test_importance_plugs_into_torch_pruning_metapruner() -> None:
    model = _model()
    P.accumulate_gradients(model, [_images()], _loss, max_batches=1)
    pruner = tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 3, 112, 112),
        importance=P.TaylorImportance(),
        global_pruning=True,
        pruning_ratio=0.1,
        ignored_layers=[model.embed, model.embed_bn],
        root_module_types=[nn.Conv2d],
    )
    pruner.step()
    assert _total_channels(spec_of(model)) < _total_channels(model.spec)
    assert model(_images()).shape == (2, 128)
