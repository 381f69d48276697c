"""Evaluation metrics on plain arrays (core: numpy only)."""

import numpy as np
import pytest

from updp_napari.core.errors import UpdpError
from updp_napari.core.metrics import bootstrap_macro_auc_gap, macro_auc_gap, roc_auc


def test_macro_auc_gap_and_its_bootstrap_interval():

    rng = np.random.default_rng(0)
    y = rng.random((300, 3)) < 0.3
    y[:, 2] = False                                  # one label with no positive: left out
    sharp = y + rng.normal(0, 0.5, y.shape)
    blurred = y + rng.normal(0, 1.5, y.shape)
    gap = macro_auc_gap(sharp, blurred, y)
    expected = np.mean([roc_auc(sharp[:, j], y[:, j]) - roc_auc(blurred[:, j], y[:, j]) for j in (0, 1)])
    assert gap == pytest.approx(expected) and gap > 0.1
    assert macro_auc_gap(sharp, sharp, y) == 0.0
    groups = np.arange(300) // 3                     # a patient's three studies go together
    r = bootstrap_macro_auc_gap(sharp, blurred, y, groups, resamples=400, seed=1)
    assert r["gap"] == gap and r["resamples"] == 400
    assert 0 < r["low"] < gap < r["high"]
    assert r == bootstrap_macro_auc_gap(sharp, blurred, y, groups, resamples=400, seed=1)
    # fewer items, a wider interval
    small = bootstrap_macro_auc_gap(sharp[:60], blurred[:60], y[:60], groups[:60], resamples=400)
    assert small["high"] - small["low"] > r["high"] - r["low"]
    with pytest.raises(UpdpError, match="both classes"):
        bootstrap_macro_auc_gap(sharp, blurred, np.zeros_like(y))
    with pytest.raises(UpdpError, match="groups"):
        bootstrap_macro_auc_gap(sharp, blurred, y, groups[:10])
