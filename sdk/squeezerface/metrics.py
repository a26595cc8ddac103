"""Verification metrics: ROC/AUC, EER, TAR@FAR, k-fold accuracy, and ROC/DET plots.

Conventions, shared by every function so numbers from different reports can be compared:

* `scores` is a 1-D float array of similarity scores (higher = more alike);
* `labels` is a 1-D bool array (True = genuine pair, same person; False = impostor pair);
* a pair is *accepted* when `score > threshold` (strict), so a threshold equal to the highest impostor
  score accepts no impostor. Every threshold returned here is meant to be used with that rule.

Only numpy is imported at module import; matplotlib is imported inside the plotting functions so that
`import squeezerface.metrics` stays cheap on a device that never draws a figure.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezerface.errors import SqueezerfaceError

__all__ = [
    "EerResult",
    "FoldAccuracy",
    "MetricsInputError",
    "Roc",
    "TarAtFar",
    "VerificationReport",
    "auc",
    "best_threshold",
    "eer",
    "far_key",
    "k_fold_accuracy",
    "plot_det",
    "plot_roc",
    "roc_curve",
    "tar_at_far",
    "verification_report",
]


class MetricsInputError(SqueezerfaceError, ValueError):
    """Scores, labels or folds unusable for a metric. A ValueError too, so plain `except ValueError` works."""


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    """Frozen dataclasses should not hold arrays that can be edited in place behind their back."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _check_pairs(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (float64 scores, bool labels), raising a message that says what is wrong and how much."""
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels)
    if s.ndim != 1:
        raise MetricsInputError(f"scores must be 1-D, got shape {s.shape}")
    if lab.ndim != 1:
        raise MetricsInputError(f"labels must be 1-D, got shape {lab.shape}")
    if s.shape[0] != lab.shape[0]:
        raise MetricsInputError(
            f"scores and labels differ in length: {s.shape[0]} scores, {lab.shape[0]} labels"
        )
    if s.shape[0] == 0:
        raise MetricsInputError("no pairs: scores and labels are empty")
    bad = int(np.count_nonzero(~np.isfinite(s)))
    if bad:
        raise MetricsInputError(f"{bad} of {s.shape[0]} scores are non-finite (NaN or inf)")
    if lab.dtype != np.bool_:
        # 0/1 integer labels (e.g. LFW's "same" column) are unambiguous; anything else is a caller bug.
        if lab.dtype.kind not in "iuf" or not np.all((lab == 0) | (lab == 1)):
            raise MetricsInputError(f"labels must be bool (or 0/1), got dtype {lab.dtype}")
        lab = lab.astype(bool)
    return s, lab


def _require_both_classes(labels: np.ndarray, what: str) -> tuple[int, int]:
    """Rates like FAR and TAR are undefined without both classes; say which one is missing."""
    n_gen = int(np.count_nonzero(labels))
    n_imp = int(labels.shape[0] - n_gen)
    if n_gen == 0 or n_imp == 0:
        raise MetricsInputError(
            f"{what} needs at least one genuine and one impostor pair, "
            f"got {n_gen} genuine and {n_imp} impostor"
        )
    return n_gen, n_imp


# --------------------------------------------------------------------------------------------------
# ROC, AUC, EER
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Roc:
    """ROC curve, one point per distinct threshold, far ascending (thresholds descending).

    Point i is the operating point of accepting `score > thresholds[i]`. The first point accepts nothing
    (threshold = max score, far = tar = 0), the last accepts everything (threshold just below the min score,
    far = tar = 1).
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray

    def __post_init__(self) -> None:
        far, tar, thr = (np.asarray(a, dtype=np.float64) for a in (self.far, self.tar, self.thresholds))
        if not (far.ndim == tar.ndim == thr.ndim == 1 and far.shape == tar.shape == thr.shape):
            raise MetricsInputError(
                f"Roc arrays must be 1-D of one length, got {far.shape}, {tar.shape}, {thr.shape}"
            )
        object.__setattr__(self, "far", _readonly(far))
        object.__setattr__(self, "tar", _readonly(tar))
        object.__setattr__(self, "thresholds", _readonly(thr))

    @property
    def frr(self) -> np.ndarray:
        """False reject rate, 1 - TAR: what DET curves and EER are stated in."""
        return 1.0 - self.tar


def _group_counts(scores: np.ndarray, labels: np.ndarray, descending: bool) -> tuple[np.ndarray, ...]:
    """Sort once and return (distinct scores, genuine count per group, impostor count per group).

    Grouping equal scores is what makes ties move together: a threshold cannot separate two equal scores.
    """
    order = np.argsort(-scores if descending else scores, kind="stable")
    s = scores[order]
    lab = labels[order]
    # Index of the last element of each run of equal scores.
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    cum_gen = np.cumsum(lab, dtype=np.int64)[ends]
    cum_all = ends.astype(np.int64) + 1
    gen = np.diff(cum_gen, prepend=0)
    imp = np.diff(cum_all - cum_gen, prepend=0)
    return s[ends], gen, imp


def roc_curve(scores: Any, labels: Any) -> Roc:
    """ROC over every distinct threshold, from "accept nothing" to "accept all", in O(n log n)."""
    s, lab = _check_pairs(scores, labels)
    n_gen, n_imp = _require_both_classes(lab, "roc_curve")
    distinct, gen, imp = _group_counts(s, lab, descending=True)
    tp = np.concatenate(([0], np.cumsum(gen)))
    fp = np.concatenate(([0], np.cumsum(imp)))
    # thresholds[0] = max score accepts nothing; thresholds[i] = i-th distinct score (descending, 0-based
    # i) accepts the i groups above it; the last one sits just below the min score and accepts all.
    thresholds = np.append(distinct, np.nextafter(distinct[-1], -np.inf))
    return Roc(far=fp / n_imp, tar=tp / n_gen, thresholds=thresholds)


def auc(roc: Roc) -> float:
    """Trapezoidal area under TAR(FAR). With ties counted as diagonal steps this equals the Mann-Whitney
    probability P(genuine > impostor) + 0.5 P(genuine == impostor)."""
    far, tar = roc.far, roc.tar
    if far.shape[0] < 2:
        raise MetricsInputError(f"auc needs at least 2 ROC points, got {far.shape[0]}")
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1])) / 2.0)


@dataclass(frozen=True)
class EerResult:
    """Equal error rate and the (interpolated) threshold where FAR == FRR."""

    eer: float
    threshold: float


def eer(scores: Any, labels: Any) -> EerResult:
    """Point where FAR == FRR, linearly interpolated between the two ROC points that bracket the crossing.

    FAR - FRR is strictly increasing along the ROC (every threshold step accepts at least one more pair), so
    the crossing is unique. The threshold is interpolated with the same weight; it is a reporting value
    (the operating point between two realisable ones), not a threshold that realises the EER exactly.
    """
    roc = roc_curve(scores, labels)
    d = roc.far - roc.frr  # -1 at "accept nothing", +1 at "accept all"
    i = int(np.argmax(d >= 0.0))
    if d[i] == 0.0:
        return EerResult(eer=float(roc.far[i]), threshold=float(roc.thresholds[i]))
    w = -d[i - 1] / (d[i] - d[i - 1])
    rate = roc.far[i - 1] + w * (roc.far[i] - roc.far[i - 1])
    thr = roc.thresholds[i - 1] + w * (roc.thresholds[i] - roc.thresholds[i - 1])
    return EerResult(eer=float(rate), threshold=float(thr))


# --------------------------------------------------------------------------------------------------
# TAR at a fixed FAR
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TarAtFar:
    """TAR at a target FAR, or the reason it cannot be stated.

    measurable is False when the impostor set is too small to observe `min_false_accepts` false accepts at
    this FAR; then tar and threshold are None and `impostor_pairs_needed` says how many impostors would be.
    """

    far: float
    tar: float | None
    threshold: float | None
    measurable: bool
    impostor_pairs: int
    impostor_pairs_needed: int
    genuine_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _false_accepts_allowed(far: float, n_imp: int) -> int:
    """Largest k <= n_imp with k / n_imp <= far, i.e. floor(far * n_imp) judged by the realised rate itself:
    0.29 * 100 is 28.999999999999996, which a bare floor would turn into 28 although 29 / 100 == 0.29."""
    k = math.floor(far * n_imp)
    while k < n_imp and (k + 1) / n_imp <= far:
        k += 1
    while k > 0 and k / n_imp > far:
        k -= 1
    return k


def _supports(n_imp: int, far: float, min_false_accepts: float) -> bool:
    """Whether n_imp impostors can show min_false_accepts false accepts at this FAR: n_imp * far >= m,
    judged as m / n_imp <= far so that it agrees with `_false_accepts_allowed` (10000 * 0.0003 is
    2.9999999999999996, yet 3 / 10000 == 0.0003)."""
    return min_false_accepts <= 0.0 or (n_imp > 0 and min_false_accepts / n_imp <= far)


def _impostors_needed(far: float, min_false_accepts: float) -> int:
    """Smallest n that `_supports`: ceil(min_false_accepts / far), nudged to the same rounding."""
    if min_false_accepts <= 0.0:
        return 0
    n = max(1, math.ceil(min_false_accepts / far))
    while n > 1 and _supports(n - 1, far, min_false_accepts):
        n -= 1
    while not _supports(n, far, min_false_accepts):
        n += 1
    return n


def tar_at_far(scores: Any, labels: Any, far: float, min_false_accepts: float = 1.0) -> TarAtFar:
    """Exact TAR at a FAR target, never interpolated or extrapolated.

    With n impostors, k = floor(far * n) false accepts are allowed; the threshold is the (k+1)-th highest
    impostor score, so at most k impostors score strictly above it and the realised FAR is <= far (ties at
    the threshold make it smaller, never larger). A FAR below `min_false_accepts / n` is not measurable:
    the data could not show a single false accept at that rate, so any TAR quoted there would be invented.
    """
    s, lab = _check_pairs(scores, labels)
    n_gen, n_imp = _require_both_classes(lab, "tar_at_far")
    far = float(far)
    if not (0.0 < far <= 1.0):
        raise MetricsInputError(f"far must be in (0, 1], got {far}")
    if not (math.isfinite(min_false_accepts) and min_false_accepts >= 0.0):
        raise MetricsInputError(f"min_false_accepts must be finite and >= 0, got {min_false_accepts}")
    needed = _impostors_needed(far, float(min_false_accepts))
    if not _supports(n_imp, far, min_false_accepts):
        return TarAtFar(far, None, None, False, n_imp, needed, n_gen)
    imp = np.sort(s[~lab])[::-1]
    k = _false_accepts_allowed(far, n_imp)
    # k == n_imp (far == 1) allows every impostor: put the threshold just below every score.
    thr = float(imp[k]) if k < n_imp else float(np.nextafter(s.min(), -np.inf))
    tar = float(np.mean(s[lab] > thr))
    return TarAtFar(far, tar, thr, True, n_imp, needed, n_gen)


# --------------------------------------------------------------------------------------------------
# Accuracy: best threshold and k-fold protocol
# --------------------------------------------------------------------------------------------------


def _best_threshold_checked(s: np.ndarray, lab: np.ndarray) -> float:
    distinct, gen, imp = _group_counts(s, lab, descending=False)
    m = distinct.shape[0]
    n_gen = int(gen.sum())
    # Candidate j (0..m) rejects the j lowest distinct scores and accepts the rest;
    # correct = impostors rejected + genuines accepted.
    imp_rejected = np.concatenate(([0], np.cumsum(imp)))
    gen_rejected = np.concatenate(([0], np.cumsum(gen)))
    correct = imp_rejected + (n_gen - gen_rejected)
    best = np.flatnonzero(correct == correct.max())
    # Lower median of the tied best candidates: deterministic, and away from the edges of a flat optimum.
    j = int(best[(best.shape[0] - 1) // 2])
    if 0 < j < m:
        lo, hi = distinct[j - 1], distinct[j]
        mid = lo + (hi - lo) / 2.0
        # For neighbouring floats the midpoint can round up to `hi`, which would reject `hi` too.
        return float(mid if mid < hi else lo)
    pad = (distinct[-1] - distinct[0]) / (2.0 * (m - 1)) if m > 1 else 0.5
    if j == 0:
        below = distinct[0] - pad
        return float(below if below < distinct[0] else np.nextafter(distinct[0], -np.inf))
    return float(distinct[-1] + pad)  # anything >= max rejects all under the strict rule


def best_threshold(scores: Any, labels: Any) -> float:
    """Threshold maximising accuracy mean((score > t) == label), in O(n log n).

    Candidates are the midpoints between consecutive distinct scores, plus one below the min (accept all)
    and one above the max (reject all), offset by half the mean gap between distinct scores. On a tie of
    accuracy the lower-median candidate (in score order) among the best wins, so the choice is
    deterministic and does not drift to the edge of a plateau.
    """
    s, lab = _check_pairs(scores, labels)
    return _best_threshold_checked(s, lab)


@dataclass(frozen=True, eq=False)
class FoldAccuracy:
    """Per-fold accuracies and the thresholds (chosen on the other folds) that produced them, in ascending
    fold-id order.

    std uses ddof=0 (np.std's default), the convention of the widely used LFW evaluation code (e.g. facenet's
    `np.std(accuracy)`), so numbers compare with published "mean +- std". Note the LFW README's own standard
    error uses the n-1 estimate; `stderr` here is std / sqrt(k) with the ddof=0 std.
    """

    accuracies: np.ndarray
    thresholds: np.ndarray
    mean: float
    std: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "accuracies", _readonly(np.asarray(self.accuracies, dtype=np.float64)))
        object.__setattr__(self, "thresholds", _readonly(np.asarray(self.thresholds, dtype=np.float64)))

    @property
    def stderr(self) -> float:
        """Standard error of the mean accuracy, std / sqrt(number of folds)."""
        return self.std / math.sqrt(self.accuracies.shape[0])


def k_fold_accuracy(scores: Any, labels: Any, folds: Any) -> FoldAccuracy:
    """Accuracy under k-fold cross-validation of the threshold (LFW View 2: 10 folds of 600 pairs).

    Fold f is scored with the best threshold of all *other* folds: choosing it on fold f itself would
    leak the test labels into the threshold and overstate accuracy.
    """
    s, lab = _check_pairs(scores, labels)
    fid = np.asarray(folds)
    if fid.ndim != 1 or fid.shape[0] != s.shape[0]:
        raise MetricsInputError(
            f"folds must be 1-D with one id per pair ({s.shape[0]}), got shape {fid.shape}"
        )
    if fid.dtype.kind not in "iu":
        raise MetricsInputError(f"folds must be integer fold ids, got dtype {fid.dtype}")
    ids = np.unique(fid)
    if ids.shape[0] < 2:
        raise MetricsInputError(f"k-fold accuracy needs at least 2 folds, got {ids.shape[0]}")
    accs = np.empty(ids.shape[0])
    thrs = np.empty(ids.shape[0])
    for i, f in enumerate(ids):
        test = fid == f
        thrs[i] = _best_threshold_checked(s[~test], lab[~test])
        accs[i] = np.mean((s[test] > thrs[i]) == lab[test])
    return FoldAccuracy(accs, thrs, float(np.mean(accs)), float(np.std(accs, ddof=0)))


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def far_key(far: float) -> str:
    """Stable text key for a FAR: "1e-03" for 1e-3, and the shortest exact form otherwise ("1.5e-03"),
    so two different FARs never share a key."""
    return np.format_float_scientific(float(far), trim="-", exp_digits=2)


@dataclass(frozen=True, eq=False)
class VerificationReport:
    """Every headline number of a verification run, computed from one set of (scores, labels, folds)."""

    pairs: int
    genuine_pairs: int
    impostor_pairs: int
    folds: FoldAccuracy
    auc: float
    eer: EerResult
    tar_at_far: tuple[TarAtFar, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types (ints, floats, lists, None), for `json.dump` without a custom encoder."""
        return {
            "pairs": self.pairs,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "accuracy_mean": float(self.folds.mean),
            "accuracy_std": float(self.folds.std),
            "accuracy_stderr": float(self.folds.stderr),
            "accuracy_per_fold": [float(a) for a in self.folds.accuracies],
            "fold_thresholds": [float(t) for t in self.folds.thresholds],
            "auc": float(self.auc),
            "eer": float(self.eer.eer),
            "eer_threshold": float(self.eer.threshold),
            "tar_at_far": {far_key(t.far): t.to_dict() for t in self.tar_at_far},
        }


def verification_report(
    scores: Any,
    labels: Any,
    folds: Any,
    fars: Sequence[float] = (1e-1, 1e-2, 1e-3, 1e-4),
    *,
    min_false_accepts: float = 1.0,
) -> VerificationReport:
    """Bundle k-fold accuracy, AUC, EER and TAR@FAR so a benchmark reports them from the same inputs."""
    s, lab = _check_pairs(scores, labels)
    n_gen, n_imp = _require_both_classes(lab, "verification_report")
    keys = [far_key(f) for f in fars]
    if len(set(keys)) != len(keys):
        raise MetricsInputError(f"fars contains duplicates: {list(fars)}")
    return VerificationReport(
        pairs=int(s.shape[0]),
        genuine_pairs=n_gen,
        impostor_pairs=n_imp,
        folds=k_fold_accuracy(s, lab, folds),
        auc=auc(roc_curve(s, lab)),
        eer=eer(s, lab),
        tar_at_far=tuple(tar_at_far(s, lab, f, min_false_accepts) for f in fars),
    )


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    """pyplot on the headless Agg backend. If pyplot is already loaded (a notebook, an app) its backend is
    left alone: switching would close the caller's open figures, and savefig writes PNG on any backend."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    if not curves:
        raise MetricsInputError("nothing to plot: the mapping of label -> (scores, labels) is empty")


def plot_roc(
    reports: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "ROC"
) -> Path:
    """Write a ROC figure (FAR on a log axis, TAR linear), one curve per model, EER marked, to a PNG.

    A log FAR axis shows the low-FAR region where verification systems are operated; FAR = 0 is clipped to
    1 / (2 n_impostor), half the smallest observable rate, so the curve starts at the left edge.
    """
    _check_curves(reports)
    plt = _pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    try:
        x_min = 1.0
        for name, (scores, labels) in reports.items():
            s, lab = _check_pairs(scores, labels)
            _, n_imp = _require_both_classes(lab, f"plot_roc ({name})")
            roc = roc_curve(s, lab)
            e = eer(s, lab)
            floor = 1.0 / (2.0 * n_imp)
            x_min = min(x_min, floor)
            (line,) = ax.plot(
                np.maximum(roc.far, floor),
                roc.tar,
                label=f"{name} (AUC {auc(roc):.4f}, EER {e.eer:.2%})",
            )
            ax.plot([max(e.eer, floor)], [1.0 - e.eer], "o", color=line.get_color(), markersize=5)
        ax.set_xscale("log")
        ax.set_xlim(x_min, 1.0)
        ax.set_ylim(0.0, 1.01)
        ax.set_xlabel("False accept rate (FAR)")
        ax.set_ylabel("True accept rate (TAR)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        fig.savefig(out, dpi=120, format="png")
    finally:
        plt.close(fig)
    return out


_DET_TICKS = (1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95)


def plot_det(
    reports: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "DET"
) -> Path:
    """Write a DET figure (FAR vs FRR on normal-deviate axes), one curve per model, EER marked, to a PNG.

    Probit axes turn the curves of Gaussian-like score distributions into near-straight lines, so models
    are easy to compare across the whole error range. Rates of 0 and 1 have no normal deviate; they are
    clipped to 1 / (2 n) and 1 - 1 / (2 n) of the class they count.
    """
    from statistics import NormalDist

    _check_curves(reports)
    probit = np.vectorize(NormalDist().inv_cdf, otypes=[float])
    plt = _pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    try:
        lo, hi = _DET_TICKS[2], 0.5
        for name, (scores, labels) in reports.items():
            s, lab = _check_pairs(scores, labels)
            n_gen, n_imp = _require_both_classes(lab, f"plot_det ({name})")
            roc = roc_curve(s, lab)
            e = eer(s, lab)
            fa_eps, fr_eps = 1.0 / (2.0 * n_imp), 1.0 / (2.0 * n_gen)
            lo = min(lo, fa_eps, fr_eps)
            hi = max(hi, min(e.eer + 0.1, 0.99))  # keep every EER marker in view
            far = np.clip(roc.far, fa_eps, 1.0 - fa_eps)
            frr = np.clip(roc.frr, fr_eps, 1.0 - fr_eps)
            (line,) = ax.plot(probit(far), probit(frr), label=f"{name} (EER {e.eer:.2%})")
            e_rate = min(max(e.eer, fa_eps, fr_eps), 1.0 - max(fa_eps, fr_eps))
            ax.plot([probit(e_rate)], [probit(e_rate)], "o", color=line.get_color(), markersize=5)
        ticks = [t for t in _DET_TICKS if lo * 0.999 <= t <= hi]
        limits = (float(probit(lo)), float(probit(hi)))
        ax.plot(limits, limits, color="0.6", linewidth=0.8, linestyle="--")  # FAR == FRR
        for set_ticks, set_labels, set_lim in (
            (ax.set_xticks, ax.set_xticklabels, ax.set_xlim),
            (ax.set_yticks, ax.set_yticklabels, ax.set_ylim),
        ):
            set_ticks(probit(ticks))
            set_labels([f"{100 * t:g}%" for t in ticks])
            set_lim(*limits)
        ax.set_xlabel("False accept rate (FAR)")
        ax.set_ylabel("False reject rate (FRR)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
        fig.tight_layout()
        fig.savefig(out, dpi=120, format="png")
    finally:
        plt.close(fig)
    return out
