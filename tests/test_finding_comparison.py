"""The counterpart's findings against the original's, one by one, and the utility score."""

import pytest

from updp_napari.review.scores import MOVED, compare_findings

NAMES = ("cardiomegaly", "effusion", "nodule", "mass")
T = [0.5, 0.5, 0.4, 0.5]


def test_kept_lost_added_and_moved_findings_each_count():
    r = compare_findings(NAMES, [0.9, 0.1, 0.7, 0.1], [0.8, 0.6, 0.2, 0.1], T)
    assert r["kept"] == ["cardiomegaly"] and r["lost"] == ["nodule"]
    assert r["added"] == ["effusion"] and r["moved"] == []
    assert r["utility"] == pytest.approx(1 / 3)  # kept / (kept + lost + added)
    assert r["verdict"] == "nodule lost; effusion added (new positive)"
    assert r["findings"]["nodule"] == {"original": 0.7, "counterpart": 0.2, "threshold": 0.4,
                                       "state": "lost"}
    assert r["findings"]["mass"]["state"] == "absent"


def test_a_case_that_loses_its_only_finding_scores_zero_not_six_sevenths():
    r = compare_findings(NAMES, [0.1, 0.1, 0.9, 0.1], [0.1, 0.1, 0.1, 0.1], T)
    assert r["utility"] == 0.0 and r["verdict"] == "nodule lost"


def test_agreement_with_and_without_findings_and_a_large_move():
    none = compare_findings(NAMES, [0.1] * 4, [0.1] * 4, T)
    assert none["utility"] == 1.0 and none["verdict"] == "all 4 findings agree (none called)"
    moved = compare_findings(NAMES, [0.55, 0.1, 0.1, 0.1], [0.55 + MOVED + 0.1, 0.1, 0.1, 0.1], T)
    assert moved["utility"] == 1.0 and moved["moved"] == ["cardiomegaly"]
    assert moved["findings"]["cardiomegaly"]["state"] == "kept, moved"
    assert moved["verdict"] == (f"all 4 findings agree (cardiomegaly kept); cardiomegaly moved by "
                                f"more than {MOVED:g}")
