"""Fairness and subgroup metrics of the evaluation lab, on cases worked out by hand."""

import numpy as np
import pytest

from updp_napari.core import fairness
from updp_napari.core.errors import InputError


def test_parity_difference_is_a_group_minus_the_weighted_others():
    # a: 0.5 (n 2), b: 0.2 (n 3), c: 0.8 (n 5)
    rates, sizes = {"a": 0.5, "b": 0.2, "c": 0.8}, {"a": 2, "b": 3, "c": 5}
    out = fairness.parity_difference(rates, sizes)
    assert out["a"] == pytest.approx(0.5 - (3 * 0.2 + 5 * 0.8) / 8)   # 0.5 - 0.575
    assert out["b"] == pytest.approx(0.2 - (2 * 0.5 + 5 * 0.8) / 7)   # 0.2 - 0.714…
    assert out["c"] == pytest.approx(0.8 - (2 * 0.5 + 3 * 0.2) / 5)   # 0.8 - 0.32
    assert fairness.parity_difference({"a": 0.3}, {"a": 4}) == {"a": None}
    with pytest.raises(InputError):
        fairness.parity_difference({"a": 0.3}, {"b": 4})


def test_group_rates_and_equalized_odds():
    truth = np.array([[1], [1], [0], [0], [1], [0], [0], [0]])
    pred = np.array([[1], [0], [0], [1], [1], [1], [0], [0]])
    groups = ["x", "x", "x", "x", "y", "y", "y", "y"]
    rates = fairness.group_rates(pred, truth, groups)
    # x: TP 1 of 2 positives, FP 1 of 2 negatives, 2 of 4 predicted, 2 of 4 right
    assert rates["x"] == {"n": 4, "positive_rate": 0.5, "accuracy": 0.5, "tpr": 0.5, "fpr": 0.5}
    # y: TP 1 of 1, FP 1 of 3
    assert rates["y"]["tpr"] == 1.0 and rates["y"]["fpr"] == pytest.approx(1 / 3)
    assert rates["y"]["accuracy"] == 0.75
    # TPR spread 0.5, FPR spread 1/6: the larger
    assert fairness.equalized_odds_difference(rates) == pytest.approx(0.5)
    only_negatives = fairness.group_rates(np.array([[0], [1]]), np.array([[0], [0]]), ["a", "b"])
    assert only_negatives["a"]["tpr"] is None
    assert fairness.equalized_odds_difference(only_negatives) == pytest.approx(1.0)  # FPR 0 vs 1


def test_subgroup_auroc_and_macro():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.3], [0.4, 0.7]])
    labels = np.array([[1, 0], [0, 1], [0, 0], [1, 1]])
    # column 0: positives 0.9, 0.4 vs negatives 0.2, 0.6 -> pairs won 1 + 1 + 0 + 1 of 4 = 0.75
    # column 1: positives 0.8, 0.7 vs negatives 0.1, 0.3 -> 1.0
    assert fairness.macro_auroc(probs, labels) == pytest.approx(0.875)
    sub = fairness.subgroup_auroc(probs, labels, ["a", "a", "b", "b"])
    # a: column 0 positives 0.9 vs negative 0.2 -> 1; column 1: 0.8 vs 0.1 -> 1
    assert sub["a"] == {"n": 2, "auroc": 1.0}
    # b: column 0: 0.4 vs 0.6 -> 0; column 1: 0.7 vs 0.3 -> 1
    assert sub["b"]["auroc"] == pytest.approx(0.5)
    assert fairness.macro_auroc(probs[:1], labels[:1]) is None


def test_pearson():
    assert fairness.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert fairness.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x centred -1, 0, 1; y centred -1/3, -1/3, 2/3 -> r = 1 / sqrt(2 * 2/3)
    assert fairness.pearson([1, 2, 3], [0, 0, 1]) == pytest.approx(1 / np.sqrt(4 / 3))
    assert fairness.pearson([1, 2], [1, 2]) is None
    assert fairness.pearson([1, 1, 1], [1, 2, 3]) is None


def test_patient_bootstrap_keeps_a_patients_rows_together():
    patients = ["p1", "p1", "p2", "p3"]
    seen = []

    def statistic(rows):
        seen.append(sorted(rows.tolist()))
        return float(len(rows))

    low, high, used = fairness.patient_bootstrap(statistic, patients, rounds=50, seed=0)
    assert used == 50 and 3 <= low <= high <= 6
    for rows in seen:
        assert rows.count(0) == rows.count(1)  # p1's two studies always together
    # a statistic undefined on every resample gives no interval
    assert fairness.patient_bootstrap(lambda r: None, patients, rounds=5) == (None, None, 0)
    # a constant statistic: a zero-width interval
    assert fairness.patient_bootstrap(lambda r: 0.7, patients, rounds=5)[:2] == (0.7, 0.7)
