"""Planning an audit of a finite frame: the exact bound for drawing without replacement."""

import pytest
from review_fixtures import build_workspace
from scipy.stats import hypergeom

from updp_napari.audit.stats import (
    plan_sample_size,
    plan_sample_size_finite,
    upper_bound,
    upper_bound_finite,
)
from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.review.store import ReviewStore


def _brute(k, n, population, confidence):
    best = k
    for d in range(k, population - (n - k) + 1):
        if hypergeom.cdf(k, population, d, n) > 1 - confidence:
            best = d
    return best / population


@pytest.mark.parametrize("k,n,population", [(0, 5, 9), (1, 20, 40), (2, 30, 31), (0, 50, 500),
                                            (3, 100, 1000)])
def test_the_finite_bound_is_the_exact_hypergeometric_one(k, n, population):
    assert upper_bound_finite(k, n, population) == pytest.approx(_brute(k, n, population, 0.95))
    # never looser than the infinite-frame bound it replaces
    assert upper_bound_finite(k, n, population) <= upper_bound(k, n) + 1.0 / population


def test_a_census_knows_the_rate_and_small_frames_need_every_case():
    assert upper_bound_finite(0, 9, 9) == 0.0 and upper_bound_finite(2, 9, 9) == pytest.approx(2 / 9)
    assert plan_sample_size_finite(0.01, 9) == 9            # not 299
    n = plan_sample_size_finite(0.01, 1000)
    assert upper_bound_finite(0, n, 1000) < 0.01 <= upper_bound_finite(0, n - 1, 1000)
    assert n < plan_sample_size(0.01) == 299
    with pytest.raises(InputError):
        plan_sample_size_finite(0.01, 3, allowed_findings=3)
    with pytest.raises(InputError):
        upper_bound_finite(0, 10, 5)


def test_plan_counts_the_frame_of_a_workspace(tmp_path, capsys):
    facts = build_workspace(tmp_path / "ws")
    with ReviewStore.open(facts["workspace"]) as store:
        for case in facts["cases"][:3]:
            store.decide(case, "accept", reviewer="ann")
    assert main(["audit", str(facts["workspace"]), "--plan", "--max-rate", "0.01"]) == 0
    assert capsys.readouterr().out.startswith("3 of 3 cases")
    assert main(["audit", "--plan", "--max-rate", "0.01", "--population", "1000"]) == 0
    assert capsys.readouterr().out.startswith("258 of 1000 cases")
    assert main(["audit", "--plan", "--max-rate", "0.01"]) == 0
    assert capsys.readouterr().out.startswith("299 cases")
    assert main(["audit", str(facts["workspace"]), "--plan", "--max-rate", "0.01",
                 "--population", "5"]) == 2


def test_audit_mark_checks_the_category_and_finds_a_span_by_its_text(tmp_path, capsys):
    from updp_napari.audit.session import AuditSession

    facts = build_workspace(tmp_path / "ws")
    ws = str(facts["workspace"])
    with ReviewStore.open(ws) as store:
        for case in facts["cases"]:
            store.decide(case, "accept", reviewer="ann")
    assert main(["audit", ws, "--sample", "4", "--seed", "1", "--list"]) == 0
    case = facts["cases"][0]
    with AuditSession.open(ws, auditor="ann") as audit:
        report = audit.target.outgoing_report(case)[0]
    word = report.split()[3]
    capsys.readouterr()
    assert main(["audit-mark", ws, case, "residual-phi", "--span", "0:5", "--category",
                 "FOO", "--auditor", "ann"]) == 2
    assert "FOO is not a finding category" in capsys.readouterr().err
    assert main(["audit-mark", ws, case, "residual-phi", "--text", word, "--category", "name",
                 "--auditor", "ann"]) == 0
    out = capsys.readouterr().out
    start = report.find(word)
    assert f"at report {start}:{start + len(word)}" in out and "(NAME)" in out
    assert f"marked {len(word)} character(s)" in out and word not in out.split("(finding")[1]
    assert main(["audit-mark", ws, case, "residual-phi", "--text", "no such words here",
                 "--auditor", "ann"]) == 2
    err = capsys.readouterr().err
    assert "not in its outgoing report" in err and "no such words" not in err


def test_the_report_passes_or_fails_against_the_target_stated_with_the_sample(tmp_path, capsys):
    facts = build_workspace(tmp_path / "ws")
    ws = str(facts["workspace"])
    with ReviewStore.open(ws) as store:
        for case in facts["cases"]:
            store.decide(case, "accept", reviewer="ann")
    report = tmp_path / "audit.html"
    assert main(["audit", ws, "--max-rate", "0.6", "--list"]) == 2  # the target goes with a sample
    assert main(["audit", ws, "--sample", "4", "--seed", "1", "--max-rate", "0.6", "--list",
                 "--auditor", "ann"]) == 0
    assert "target stated" in capsys.readouterr().err
    cases = facts["cases"]
    for case in cases[:3]:
        assert main(["audit-mark", ws, case, "clean", "--auditor", "ann"]) == 0
    assert main(["audit-report", ws, str(report)]) == 0
    assert "INCOMPLETE" in report.read_text()
    assert main(["audit-mark", ws, cases[3], "clean", "--auditor", "ann"]) == 0
    assert main(["audit-report", ws, str(report)]) == 0
    text = report.read_text()
    assert "PASS: the bound is below the target of 60" in text and "stated by ann" in text
    assert "drawn without replacement from a frame of 4" in text  # a census: the exact rate
    assert main(["audit-report", ws, str(report), "--max-rate", "0.0001"]) == 0
    assert "FAIL" not in report.read_text()  # 0 of 4 in a census of 4: the rate is 0
    assert main(["audit-mark", ws, cases[0], "residual-phi", "--span", "0:3", "--auditor",
                 "ann"]) == 0
    assert main(["audit-report", ws, str(report)]) == 0
    assert "PASS" in report.read_text()  # 1 of a census of 4: 25 %, below the stated 60 %
    assert main(["audit-report", ws, str(report), "--max-rate", "0.1"]) == 0
    text = report.read_text()
    assert "FAIL: the bound is not below the target of 10" in text
    assert "class=\"statement fail\"" in text
