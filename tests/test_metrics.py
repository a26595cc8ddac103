"""Tests of squeezerface.metrics on hand-computed cases, plus brute-force properties on random data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezerface.errors import SqueezerfaceError
from squeezerface.metrics import (
    FoldAccuracy,
    Roc,
    auc,
    best_threshold,
    eer,
    far_key,
    k_fold_accuracy,
    plot_det,
    plot_roc,
    roc_curve,
    tar_at_far,
    verification_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pairs(genuine: list[float], impostor: list[float]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.array(genuine + impostor, dtype=float)
    labels = np.array([True] * len(genuine) + [False] * len(impostor))
    return scores, labels


# Random small score sets drawn from a few integer levels, so ties are common.
small_pairs = st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=40).filter(
    lambda xs: any(b for _, b in xs) and not all(b for _, b in xs)
)


def unzip(xs: list[tuple[int, bool]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([float(s) / 4 for s, _ in xs]), np.array([b for _, b in xs])


# ---------------------------------------------------------------------------------------------- ROC / AUC


def test_roc_points_hand_example() -> None:
    # Sorted: .9G .7I .6G .4G .3I .2I .1I (3 genuine, 4 impostor).
    s, lab = pairs([0.9, 0.6, 0.4], [0.7, 0.3, 0.2, 0.1])
    roc = roc_curve(s, lab)
    np.testing.assert_allclose(roc.far, [0, 0, 1 / 4, 1 / 4, 1 / 4, 2 / 4, 3 / 4, 1])
    np.testing.assert_allclose(roc.tar, [0, 1 / 3, 1 / 3, 2 / 3, 1, 1, 1, 1])
    np.testing.assert_allclose(roc.thresholds[:-1], [0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    assert roc.thresholds[-1] < 0.1
    assert auc(roc) == pytest.approx(10 / 12)  # 10 of 12 (genuine, impostor) pairs are ordered correctly


def test_roc_tied_scores_move_together() -> None:
    s = np.array([0.5, 0.5, 0.2])
    lab = np.array([True, False, False])
    roc = roc_curve(s, lab)
    # No (far=0, tar=1) point: the tied genuine and impostor cannot be separated by any threshold.
    np.testing.assert_allclose(roc.far, [0, 0.5, 1])
    np.testing.assert_allclose(roc.tar, [0, 1, 1])
    assert auc(roc) == pytest.approx(0.75)  # 0.5 (tie) + 1 (beats 0.2), over 2 pairs


def test_roc_is_frozen() -> None:
    s, lab = pairs([0.9], [0.1])
    roc = roc_curve(s, lab)
    with pytest.raises(ValueError):
        roc.far[0] = 0.5


def test_auc_perfect_and_inverted() -> None:
    s, lab = pairs([0.9, 0.8, 0.7], [0.3, 0.2])
    assert auc(roc_curve(s, lab)) == 1.0
    assert auc(roc_curve(-s, lab)) == 0.0


def test_auc_four_by_four_with_tie() -> None:
    # Concordant pairs: .8 beats 4, .6 beats 3, .5 beats 2 and ties 1 (0.5), .3 beats 2 -> 11.5 / 16.
    s, lab = pairs([0.8, 0.6, 0.5, 0.3], [0.7, 0.5, 0.2, 0.1])
    assert auc(roc_curve(s, lab)) == pytest.approx(11.5 / 16)


def test_auc_needs_two_points() -> None:
    with pytest.raises(ValueError, match="2 ROC points"):
        auc(Roc(far=np.array([0.0]), tar=np.array([0.0]), thresholds=np.array([1.0])))


@settings(max_examples=150, deadline=None)
@given(small_pairs)
def test_roc_matches_brute_force_and_auc_is_mann_whitney(xs: list[tuple[int, bool]]) -> None:
    s, lab = unzip(xs)
    gen, imp = s[lab], s[~lab]
    roc = roc_curve(s, lab)
    assert roc.far[0] == 0 and roc.tar[0] == 0 and roc.far[-1] == 1 and roc.tar[-1] == 1
    assert np.all(np.diff(roc.far) >= 0) and np.all(np.diff(roc.thresholds) < 0)
    assert len(roc.thresholds) == len(np.unique(s)) + 1
    for t, fa, ta in zip(roc.thresholds, roc.far, roc.tar, strict=True):
        assert fa == np.mean(imp > t) and ta == np.mean(gen > t)
    diff = gen[:, None] - imp[None, :]
    mann_whitney = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert auc(roc) == pytest.approx(mann_whitney, abs=1e-12)


# ---------------------------------------------------------------------------------------------- EER


def test_eer_hand_example() -> None:
    # ROC points around the crossing: t=.4 (FAR 1/4, FRR 1/3) and t=.3 (FAR 1/4, FRR 0).
    # FAR - FRR goes -1/12 -> +1/4, so w = 1/4: EER = 1/4, threshold = .4 + (.3 - .4) / 4 = .375.
    s, lab = pairs([0.9, 0.6, 0.4], [0.7, 0.3, 0.2, 0.1])
    r = eer(s, lab)
    assert r.eer == pytest.approx(0.25)
    assert r.threshold == pytest.approx(0.375)


def test_eer_interpolates_far_step() -> None:
    # Points: t=.5 (FAR 0, FRR 1/3) and t=.2 (FAR 1/2, FRR 1/3); FAR - FRR goes -1/3 -> +1/6, w = 2/3:
    # EER = 2/3 * 1/2 = 1/3, threshold = .5 + 2/3 * (.2 - .5) = .3.
    s, lab = pairs([0.9, 0.6, 0.2], [0.5, 0.1])
    r = eer(s, lab)
    assert r.eer == pytest.approx(1 / 3)
    assert r.threshold == pytest.approx(0.3)


def test_eer_exact_crossing_is_not_interpolated() -> None:
    # At t=.2 FAR = FRR = 1/2 exactly (a ROC point), so that point and its threshold are returned.
    s, lab = pairs([0.9, 0.2], [0.5, 0.1])
    r = eer(s, lab)
    assert r.eer == 0.5
    assert r.threshold == 0.2


def test_eer_perfect_separation_is_zero() -> None:
    s, lab = pairs([0.9, 0.8], [0.2, 0.1])
    r = eer(s, lab)
    assert r.eer == 0.0
    # Accepting > threshold must then make no error at all.
    assert np.all((s > r.threshold) == lab)


# ---------------------------------------------------------------------------------------------- TAR@FAR


def test_tar_at_far_hand_case() -> None:
    impostor = [i / 10 for i in range(10)]  # 0.0 .. 0.9
    s, lab = pairs([0.95, 0.85, 0.75, 0.5], impostor)
    r = tar_at_far(s, lab, 0.1)
    # k = 1 false accept allowed -> threshold = 2nd highest impostor = 0.8; genuines > .8: .95, .85.
    assert r.measurable
    assert r.threshold == pytest.approx(0.8)
    assert r.tar == 0.5
    assert (r.impostor_pairs, r.genuine_pairs, r.impostor_pairs_needed) == (10, 4, 10)
    assert np.mean(s[~lab] > r.threshold) <= 0.1


def test_tar_at_far_ties_at_threshold_lower_realised_far() -> None:
    s, lab = pairs([0.85, 0.8], [0.9, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    r = tar_at_far(s, lab, 0.2)  # k = 2 -> threshold = imp[2] = 0.8, only 0.9 is above it
    assert r.threshold == pytest.approx(0.8)
    assert r.tar == 0.5  # the genuine 0.8 ties the threshold and is rejected
    assert np.mean(s[~lab] > r.threshold) == pytest.approx(0.1)


def test_tar_at_far_not_measurable() -> None:
    s, lab = pairs([0.95, 0.85], [i / 10 for i in range(10)])
    r = tar_at_far(s, lab, 1e-3)
    assert not r.measurable
    assert r.tar is None and r.threshold is None
    assert r.impostor_pairs == 10
    assert r.impostor_pairs_needed == 1000
    d = r.to_dict()
    assert d["tar"] is None and d["measurable"] is False and d["impostor_pairs_needed"] == 1000


def test_tar_at_far_min_false_accepts() -> None:
    s, lab = pairs([0.95, 0.85], [i / 10 for i in range(10)])
    r = tar_at_far(s, lab, 0.1, min_false_accepts=10)
    assert not r.measurable and r.impostor_pairs_needed == 100
    assert tar_at_far(s, lab, 0.1, min_false_accepts=3).impostor_pairs_needed == 30
    # 7 / 0.00056 is 12500.000000000002 in floating point; ceil would say 12501.
    assert tar_at_far(s, lab, 0.00056, min_false_accepts=7).impostor_pairs_needed == 12_500


def test_tar_at_far_measurability_is_float_safe() -> None:
    # 10000 * 0.0003 is 2.9999999999999996 in floating point, yet 10000 impostors do support 3 false
    # accepts at FAR 3e-4: measurable, 10000 needed, threshold = 4th highest impostor.
    imp = np.arange(10_000) / 10_000.0
    s = np.concatenate([[0.99965, 0.5], imp])
    lab = np.zeros(s.shape[0], bool)
    lab[:2] = True
    r = tar_at_far(s, lab, 3e-4, min_false_accepts=3)
    assert r.measurable and r.impostor_pairs_needed == 10_000
    assert r.threshold == pytest.approx(0.9996)
    assert r.tar == 0.5
    assert not tar_at_far(s[:-1], lab[:-1], 3e-4, min_false_accepts=3).measurable  # 9999 impostors


def test_tar_at_far_floor_is_float_safe() -> None:
    # 0.29 * 100 == 28.999999999999996: 29 false accepts are allowed, not 28.
    imp = np.arange(100) / 100.0
    s = np.concatenate([[0.705, 0.695], imp])
    lab = np.array([True, True] + [False] * 100)
    r = tar_at_far(s, lab, 0.29)
    assert r.threshold == pytest.approx(0.70)  # index 29 of the descending impostors .99 .. .00
    assert r.tar == 0.5


def test_tar_at_far_one_accepts_all() -> None:
    s, lab = pairs([0.05, 0.5], [0.1, 0.2])
    r = tar_at_far(s, lab, 1.0)
    assert r.measurable and r.tar == 1.0


@pytest.mark.parametrize("far", [0.0, -0.1, 1.5, float("nan")])
def test_tar_at_far_rejects_bad_far(far: float) -> None:
    s, lab = pairs([0.9], [0.1])
    with pytest.raises(ValueError, match="far must be"):
        tar_at_far(s, lab, far)


def test_tar_at_far_realised_far_never_exceeds_target() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 300))
        s = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # rounding creates ties
        lab = rng.random(n) < 0.5
        lab[0], lab[1] = True, False
        far = float(rng.choice([0.5, 0.3, 0.1, 0.07, 0.05, 0.03, 0.01, 3e-3, 1e-3]))
        m = float(rng.choice([1.0, 2.0, 3.0, 7.0]))
        r = tar_at_far(s, lab, far, min_false_accepts=m)
        n_imp = int(np.sum(~lab))
        assert r.measurable == (n_imp >= r.impostor_pairs_needed)
        assert r.measurable == (n_imp * far >= m * (1 - 1e-12))
        if r.measurable:
            assert r.threshold is not None
            assert np.mean(s[~lab] > r.threshold) <= far
            assert r.tar == np.mean(s[lab] > r.threshold)
        else:
            assert r.tar is None and r.impostor_pairs_needed > n_imp


# ---------------------------------------------------------------------------------------------- accuracy


def test_best_threshold_simple() -> None:
    s, lab = pairs([0.9, 0.8], [0.4, 0.2])
    assert best_threshold(s, lab) == pytest.approx(0.6)


def test_best_threshold_tie_takes_median_candidate() -> None:
    # Alternating labels: candidates 1.5, 3.5, 5.5 all reach 4/6; the middle one must win.
    s = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    lab = np.array([False, True, False, True, False, True])
    assert best_threshold(s, lab) == 3.5


def test_best_threshold_edges() -> None:
    # All genuine: accepting everything is the unique best, so the threshold lies below the minimum.
    s = np.array([0.2, 0.4, 0.6])
    assert best_threshold(s, np.ones(3, bool)) < 0.2
    # All impostor: rejecting everything, threshold at or above the maximum.
    assert best_threshold(s, np.zeros(3, bool)) >= 0.6


def test_best_threshold_never_splits_neighbouring_floats_wrongly() -> None:
    # The midpoint of these two adjacent floats rounds up to b, which would also reject b.
    a = float(np.nextafter(1.0, 2.0))
    b = float(np.nextafter(a, 2.0))
    s = np.array([a, b])
    lab = np.array([False, True])
    t = best_threshold(s, lab)
    assert np.array_equal(s > t, lab)


@settings(max_examples=100, deadline=None)
@given(small_pairs)
def test_best_threshold_is_optimal(xs: list[tuple[int, bool]]) -> None:
    s, lab = unzip(xs)
    t = best_threshold(s, lab)
    u = np.unique(s)
    brute = [np.mean((s > c) == lab) for c in np.concatenate(([u[0] - 1], u))]
    assert np.mean((s > t) == lab) == max(brute)


def test_k_fold_uses_other_folds_only() -> None:
    # Fold 0: G .9 .8, I .5 .4 -> its own best threshold would be .65 (100%).
    # Fold 1: G .7 .3, I .1 .0 -> its own best threshold would be .2 (100%).
    s = np.array([0.9, 0.8, 0.5, 0.4, 0.7, 0.3, 0.1, 0.0])
    lab = np.array([True, True, False, False, True, False, False, False])
    lab[5] = True  # 0.3 is genuine
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = k_fold_accuracy(s, lab, folds)
    # Fold 0 is scored with fold 1's threshold .2: accepts all four -> 2/4.
    # Fold 1 is scored with fold 0's threshold .65: accepts .7 only -> G.7 ok, G.3 wrong, I ok, I ok -> 3/4.
    np.testing.assert_allclose(r.thresholds, [0.2, 0.65])
    np.testing.assert_allclose(r.accuracies, [0.5, 0.75])
    assert r.mean == pytest.approx(0.625)
    assert r.std == pytest.approx(0.125)  # ddof=0: sqrt(((.5-.625)^2 + (.75-.625)^2) / 2)
    assert r.stderr == pytest.approx(0.125 / math.sqrt(2))


def test_k_fold_fold_ids_need_not_be_contiguous() -> None:
    s = np.array([0.9, 0.8, 0.5, 0.4, 0.7, 0.3, 0.1, 0.0])
    lab = np.array([True, True, False, False, True, True, False, False])
    a = k_fold_accuracy(s, lab, np.array([0, 0, 0, 0, 1, 1, 1, 1]))
    b = k_fold_accuracy(s, lab, np.array([7, 7, 7, 7, 3, 3, 3, 3]))  # ascending id order: 3 first
    np.testing.assert_allclose(b.accuracies, a.accuracies[::-1])


def test_k_fold_needs_two_folds() -> None:
    s, lab = pairs([0.9, 0.8], [0.2, 0.1])
    with pytest.raises(ValueError, match="at least 2 folds"):
        k_fold_accuracy(s, lab, np.zeros(4, dtype=int))


def test_k_fold_rejects_bad_folds() -> None:
    s, lab = pairs([0.9, 0.8], [0.2, 0.1])
    with pytest.raises(ValueError, match="one id per pair"):
        k_fold_accuracy(s, lab, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="integer"):
        k_fold_accuracy(s, lab, np.array([0.0, 1.0, 0.0, 1.0]))


def test_fold_accuracy_is_frozen() -> None:
    r = FoldAccuracy(np.array([0.5, 1.0]), np.array([0.1, 0.2]), 0.75, 0.25)
    with pytest.raises(ValueError):
        r.accuracies[0] = 1.0


# ---------------------------------------------------------------------------------------------- validation


def test_length_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in length: 3 scores, 2 labels"):
        roc_curve(np.array([0.1, 0.2, 0.3]), np.array([True, False]))


def test_non_finite_scores_are_counted() -> None:
    s = np.array([0.1, np.nan, 0.3, np.inf])
    lab = np.array([True, False, True, False])
    for fn in (roc_curve, eer, best_threshold):
        with pytest.raises(ValueError, match="2 of 4 scores are non-finite"):
            fn(s, lab)


def test_errors_are_sdk_errors() -> None:
    with pytest.raises(SqueezerfaceError):
        roc_curve(np.array([0.1]), np.array([True, False]))


def test_single_class_rejected_where_rates_need_both() -> None:
    s = np.array([0.1, 0.2])
    lab = np.array([True, True])
    with pytest.raises(ValueError, match="2 genuine and 0 impostor"):
        roc_curve(s, lab)
    with pytest.raises(ValueError, match="genuine and one impostor"):
        tar_at_far(s, ~lab, 0.5)


def test_labels_must_be_boolean_like() -> None:
    s = np.array([0.1, 0.2])
    assert auc(roc_curve(s, np.array([0, 1]))) == 1.0
    with pytest.raises(ValueError, match="labels must be bool"):
        roc_curve(s, np.array([0, 2]))
    with pytest.raises(ValueError, match="1-D"):
        roc_curve(s.reshape(1, 2), np.array([True, False]))


def test_empty_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        best_threshold(np.array([]), np.array([], dtype=bool))


# ---------------------------------------------------------------------------------------------- report


def test_far_key() -> None:
    assert far_key(1e-3) == "1e-03"
    assert far_key(0.1) == "1e-01"
    assert far_key(1.5e-3) == "1.5e-03"


def test_verification_report_to_dict() -> None:
    rng = np.random.default_rng(1)
    n = 200
    lab = np.arange(n) % 2 == 0
    s = np.where(lab, 0.6, 0.3) + 0.15 * rng.normal(size=n)
    folds = np.arange(n) % 4
    rep = verification_report(s, lab, folds)
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)  # must be plain JSON
    for key in (
        "pairs",
        "genuine_pairs",
        "impostor_pairs",
        "accuracy_mean",
        "accuracy_std",
        "accuracy_per_fold",
        "fold_thresholds",
        "auc",
        "eer",
        "eer_threshold",
        "tar_at_far",
    ):
        assert key in d
    assert (d["pairs"], d["genuine_pairs"], d["impostor_pairs"]) == (200, 100, 100)
    assert type(d["accuracy_mean"]) is float and type(d["auc"]) is float
    assert all(type(a) is float for a in d["accuracy_per_fold"]) and len(d["accuracy_per_fold"]) == 4
    assert d["accuracy_mean"] == pytest.approx(np.mean(d["accuracy_per_fold"]))
    assert d["auc"] == pytest.approx(auc(roc_curve(s, lab)))
    assert d["eer"] == pytest.approx(eer(s, lab).eer)
    assert list(d["tar_at_far"]) == ["1e-01", "1e-02", "1e-03", "1e-04"]
    assert d["tar_at_far"]["1e-01"]["measurable"] is True
    assert type(d["tar_at_far"]["1e-01"]["tar"]) is float
    assert d["tar_at_far"]["1e-02"]["measurable"] is True  # 100 * 0.01 = 1 false accept
    assert d["tar_at_far"]["1e-03"] == {
        "far": 1e-3,
        "tar": None,
        "threshold": None,
        "measurable": False,
        "impostor_pairs": 100,
        "impostor_pairs_needed": 1000,
        "genuine_pairs": 100,
    }


def test_verification_report_rejects_duplicate_fars() -> None:
    s, lab = pairs([0.9, 0.8], [0.2, 0.1])
    with pytest.raises(ValueError, match="duplicates"):
        verification_report(s, lab, np.array([0, 1, 0, 1]), fars=(0.1, 0.1))


# ---------------------------------------------------------------------------------------------- plots


@pytest.fixture(scope="module")
def two_models() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    lab = np.arange(400) % 2 == 0
    good = np.where(lab, 0.7, 0.2) + 0.1 * rng.normal(size=400)
    weak = np.where(lab, 0.5, 0.3) + 0.15 * rng.normal(size=400)
    perfect = np.where(lab, 1.0, 0.0)  # FAR/FRR of exactly 0 and 1 must be clipped, not crash
    return {"good": (good, lab), "weak": (weak, lab), "perfect": (perfect, lab)}


@pytest.mark.parametrize("plot", [plot_roc, plot_det])
def test_plots_write_png(plot, two_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = plot(two_models, tmp_path / "sub" / f"{plot.__name__}.png", title="test")
    assert out == tmp_path / "sub" / f"{plot.__name__}.png"
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


@pytest.mark.parametrize("plot", [plot_roc, plot_det])
def test_plots_reject_empty_mapping(plot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="nothing to plot"):
        plot({}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
