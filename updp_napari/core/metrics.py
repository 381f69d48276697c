"""Small evaluation metrics on plain arrays (numpy and the standard library only).

The scorers report these on held-out patients; the privacy–utility evaluation reports them
on original and synthetic images. Each is exact (no binning, no sampling).
"""

from __future__ import annotations

import numpy as np

from .errors import UpdpError


def roc_auc(scores, targets) -> float:
    """Area under the ROC curve of ``scores`` for binary ``targets`` (1 = positive).

    Exact, computed as the Mann–Whitney U statistic: the chance that a random positive
    scores above a random negative, ties counting one half. Raises UpdpError when only one
    class is present (the AUC is then undefined) or the inputs do not match.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    targets = np.asarray(targets).ravel()
    if scores.shape != targets.shape:
        raise UpdpError(f"roc_auc: {scores.size} scores but {targets.size} targets")
    if not np.all(np.isfinite(scores)):
        raise UpdpError("roc_auc: the scores hold NaN or infinite values")
    positive = targets.astype(bool)
    if not np.array_equal(targets, positive.astype(targets.dtype)):
        raise UpdpError("roc_auc: targets must be 0 or 1")
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UpdpError(f"roc_auc: needs both classes, got {n_pos} positive and {n_neg} negative")
    ranks = _average_ranks(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values, and the mean rank of that run.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    mean_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def pair_targets(groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair ``i < j`` of items and whether both share a group.

    Returns ``(i, j, same)``: the index arrays and a bool array, 1 where ``groups[i] ==
    groups[j]`` (e.g. the same patient).
    """
    groups = np.asarray(groups)
    i, j = np.triu_indices(groups.size, k=1)
    return i, j, groups[i] == groups[j]


def top_k_accuracy(ranks, k: int = 1) -> float:
    """Share of queries whose true match ranks ``k`` or better (ranks are 1-based)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise UpdpError("top_k_accuracy: no ranks given")
    return float(np.mean(ranks <= k))


def equal_error_rate(scores, targets) -> float:
    """The error rate where false accepts equal false rejects (verification's usual figure).

    Taken at the threshold where the two rates are closest, as their mean.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(targets).ravel().astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise UpdpError(f"equal_error_rate: needs both classes, got {n_pos} positive and "
                        f"{n_neg} negative")
    thresholds = np.unique(scores)
    # Accept a pair when its score is at least the threshold.
    order = np.argsort(scores)
    sorted_scores, sorted_pos = scores[order], positive[order]
    below = np.searchsorted(sorted_scores, thresholds, side="left")
    pos_below = np.r_[0, np.cumsum(sorted_pos)][below]
    neg_below = below - pos_below
    false_reject = pos_below / n_pos
    false_accept = (n_neg - neg_below) / n_neg
    best = int(np.argmin(np.abs(false_reject - false_accept)))
    return float((false_reject[best] + false_accept[best]) / 2.0)


def macro_auc_gap(scores_a, scores_b, targets) -> float | None:
    """Mean over labels of ``AUC(scores_a) − AUC(scores_b)`` ([N, labels] arrays, the same
    items scored twice), over the labels whose targets hold both classes (None if none do)."""
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    y = np.asarray(targets).astype(bool)
    if not a.shape == b.shape == y.shape or a.ndim != 2:
        raise UpdpError(f"macro_auc_gap: scores {a.shape} and {b.shape}, targets {y.shape}; "
                        "expected three equal [N, labels] arrays")
    gaps = [roc_auc(a[:, j], y[:, j]) - roc_auc(b[:, j], y[:, j])
            for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return float(np.mean(gaps)) if gaps else None


def bootstrap_macro_auc_gap(scores_a, scores_b, targets, groups=None, *, resamples: int = 2000,
                            level: float = 0.95, seed: int = 0) -> dict:
    """:func:`macro_auc_gap` with a percentile bootstrap interval.

    The items are resampled with replacement by ``groups`` (e.g. patient, whose studies are
    not independent: all of a group's items come in together; None: each item alone), and
    both score sets are taken on the same resample, so the interval is that of the paired
    difference. Returns ``{"gap", "low", "high", "level", "resamples"}`` (``resamples``: how
    many gave a gap; a resample with no label of both classes gives none).
    """
    y = np.asarray(targets).astype(bool)
    gap = macro_auc_gap(scores_a, scores_b, y)
    if gap is None:
        raise UpdpError("bootstrap_macro_auc_gap: no label has both classes")
    if not 0 < level < 1 or resamples < 1:
        raise UpdpError("bootstrap_macro_auc_gap: level must lie in (0, 1) and resamples be >= 1")
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if groups.shape != (len(y),):
        raise UpdpError(f"bootstrap_macro_auc_gap: {groups.size} groups for {len(y)} items")
    _, member_of = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(member_of == g) for g in range(member_of.max() + 1)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(resamples)):
        index = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        value = macro_auc_gap(a[index], b[index], y[index])
        if value is not None:
            values.append(value)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail]) if values else (np.nan, np.nan)
    return {"gap": gap, "low": float(low), "high": float(high), "level": level,
            "resamples": len(values)}


def cohens_kappa(pairs, categories) -> float | None:
    """Cohen's kappa of two raters over ``pairs`` of ``(first rater's, second rater's)``
    labels from ``categories``: (observed − chance agreement) / (1 − chance agreement), with
    chance from each rater's own label frequencies. None when chance agreement is 1 (both
    raters always gave one same label: kappa is undefined) or there are no pairs."""
    pairs = list(pairs)
    if not pairs:
        return None
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(index), len(index)))
    for a, b in pairs:
        table[index[a], index[b]] += 1
    table /= table.sum()
    observed = float(np.trace(table))
    chance = float(table.sum(axis=1) @ table.sum(axis=0))
    if chance >= 1.0 - 1e-12:
        return None
    return (observed - chance) / (1.0 - chance)


def softmax_own(scores, own, temperature: float) -> np.ndarray:
    """The probability each row of ``scores`` [N, K] gives its column ``own[n]`` under a
    softmax at ``temperature``: an attacker's belief that the candidate in that column is
    the one, when its scores are turned into probabilities."""
    z = np.asarray(scores, np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(p)), np.asarray(own, int)]


def fit_temperature(scores, own, lo: float = 1e-3, hi: float = 10.0) -> float:
    """The softmax temperature that makes the probabilities of the true columns ``own`` of
    ``scores`` [N, K] most likely (least negative log-likelihood; golden-section search over
    log temperature in ``[lo, hi]``): temperature scaling, fitted on pairs whose truth is
    known."""
    scores = np.asarray(scores, np.float64)
    own = np.asarray(own, int)
    if scores.ndim != 2 or len(scores) == 0 or len(own) != len(scores):
        raise ValueError("fit_temperature needs scores [N, K] and one true column per row")

    def loss(log_t: float) -> float:
        return -float(np.mean(np.log(np.maximum(softmax_own(scores, own, np.exp(log_t)), 1e-300))))

    a, b = np.log(lo), np.log(hi)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(80):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2.0))


def calibration_error(probabilities, correct, bins: int = 10) -> float:
    """Expected calibration error: the mean gap between stated probability and observed
    frequency over equal-width probability bins, weighted by the bins' counts."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(correct, np.float64)
    if len(p) == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return float(error / len(p))
