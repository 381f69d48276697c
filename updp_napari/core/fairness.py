"""Subgroup and fairness metrics on plain arrays (numpy only), and the patient bootstrap.

Definitions, as ``updp evaluate-utility`` reports them:

* **AUROC per subgroup**: the ROC AUC of the scores within the subgroup (None where it holds
  one class only).
* **Statistical parity difference** of a subgroup: its rate (share predicted positive, or
  accuracy) minus the mean rate of the other subgroups weighted by their sizes. 0 is parity.
* **Equalized-odds difference** of an attribute: the larger of the spread (largest minus
  smallest) of the true-positive rates and of the false-positive rates across its subgroups.
  0 means every subgroup is treated alike given the truth.
* **Size–loss correlation**: Pearson's r between subgroups' sizes and their performance
  loss (e.g. the AUROC lost when training on counterparts): negative when small subgroups
  lose more.
* **Patient bootstrap**: intervals from resampling patients (all of a patient's studies
  together), so a patient's studies never count as independent evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .errors import InputError
from .metrics import roc_auc


def auroc_or_none(scores, targets) -> float | None:
    """ROC AUC, or None when ``targets`` hold a single class (no AUC exists)."""
    targets = np.asarray(targets).ravel()
    if targets.size == 0 or targets.min() == targets.max():
        return None
    return roc_auc(scores, targets)


def macro_auroc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean AUROC over the label columns that hold both classes (None when none does)."""
    values = [auroc_or_none(probabilities[:, j], labels[:, j]) for j in range(labels.shape[1])]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def subgroup_auroc(probabilities: np.ndarray, labels: np.ndarray, groups: Sequence[str]
                   ) -> dict[str, dict]:
    """Per subgroup: its size and macro AUROC (None where no label has both classes)."""
    groups = np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        rows = groups == g
        out[g] = {"n": int(rows.sum()), "auroc": macro_auroc(probabilities[rows], labels[rows])}
    return out


def parity_difference(rates: dict[str, float], sizes: dict[str, int]) -> dict[str, float | None]:
    """Per subgroup: its rate minus the size-weighted mean rate of the others (None for a
    subgroup with no other to compare with)."""
    if set(rates) != set(sizes):
        raise InputError("parity_difference: rates and sizes must name the same subgroups")
    out: dict[str, float | None] = {}
    for g in rates:
        others = [h for h in rates if h != g and sizes[h] > 0]
        weight = sum(sizes[h] for h in others)
        out[g] = None if not weight else float(
            rates[g] - sum(sizes[h] * rates[h] for h in others) / weight)
    return out


def group_rates(predicted: np.ndarray, truth: np.ndarray, groups: Sequence[str]) -> dict[str, dict]:
    """Per subgroup, over every (study, label) cell: size in studies, positive rate, accuracy,
    true-positive rate and false-positive rate (None where undefined)."""
    predicted = np.asarray(predicted).astype(bool)
    truth = np.asarray(truth).astype(bool)
    if predicted.shape != truth.shape:
        raise InputError(f"group_rates: predictions {predicted.shape} and truth {truth.shape} differ")
    groups = np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        rows = groups == g
        p, t = predicted[rows], truth[rows]
        out[g] = {
            "n": int(rows.sum()),
            "positive_rate": float(p.mean()) if p.size else None,
            "accuracy": float((p == t).mean()) if p.size else None,
            "tpr": float(p[t].mean()) if t.any() else None,
            "fpr": float(p[~t].mean()) if (~t).any() else None,
        }
    return out


def equalized_odds_difference(rates: dict[str, dict]) -> float | None:
    """The larger of the TPR spread and the FPR spread across subgroups (``group_rates``);
    None when fewer than two subgroups have either rate."""
    spreads = []
    for key in ("tpr", "fpr"):
        values = [r[key] for r in rates.values() if r.get(key) is not None]
        if len(values) >= 2:
            spreads.append(max(values) - min(values))
    return float(max(spreads)) if spreads else None


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r; None with fewer than three pairs or when either side is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise InputError(f"pearson: {x.size} and {y.size} values")
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    x, y = x - x.mean(), y - y.mean()
    return float((x @ y) / np.sqrt((x @ x) * (y @ y)))


def patient_bootstrap(statistic: Callable[[np.ndarray], float | None], patients: Sequence[str],
                      rounds: int = 1000, seed: int = 0, level: float = 0.95
                      ) -> tuple[float | None, float | None, int]:
    """``level`` percentile interval of ``statistic(rows)`` over resamples of patients: each
    round draws as many patients as there are, with replacement, and takes all their rows.
    Returns (low, high, rounds used); rounds where the statistic is None are left out."""
    patients = np.asarray(patients)
    names, index = np.unique(patients, return_inverse=True)
    rows_of = [np.flatnonzero(index == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        picked = rng.integers(len(names), size=len(names))
        value = statistic(np.concatenate([rows_of[k] for k in picked]))
        if value is not None:
            values.append(value)
    if not values:
        return None, None, 0
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high), len(values)
