"""Privacy audit: exact bounds, the sample-size plan, reproducible stratified sampling, the
durable audit store, and a planted residual-PHI case the audit must surface."""

import json
import os
import sqlite3
import stat

import pytest
from review_fixtures import build_workspace

from updp_napari.audit.sample import allocate, case_category, draw_sample, parse_strata
from updp_napari.audit.session import AuditSession
from updp_napari.audit.stats import (
    interval,
    lower_bound,
    plan_sample_size,
    rate_summary,
    upper_bound,
)
from updp_napari.audit.store import AuditStore
from updp_napari.audit.target import FrameCase
from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.review.session import ReviewSession

# -- bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, n, confidence, expected", [
    (0, 299, 0.95, 0.00997), (0, 10, 0.95, 0.2589), (1, 100, 0.95, 0.0466),
    (0, 59, 0.95, 0.0495)])
def test_upper_bound_matches_published_values(k, n, confidence, expected):
    assert upper_bound(k, n, confidence) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("n", [1, 2, 7, 30, 299, 1000])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_zero_findings_bound_is_the_closed_form(n, confidence):
    assert upper_bound(0, n, confidence) == pytest.approx(1 - (1 - confidence) ** (1 / n),
                                                          rel=1e-9)


@pytest.mark.parametrize("k, n", [(1, 10), (3, 40), (12, 300), (0, 5)])
def test_bounds_are_where_the_binomial_tail_equals_the_error_rate(k, n):
    from scipy.stats import binom

    upper = upper_bound(k, n, 0.95)
    assert binom.cdf(k, n, upper) == pytest.approx(0.05, abs=1e-9)
    if k:
        assert binom.sf(k - 1, n, lower_bound(k, n, 0.95)) == pytest.approx(0.05, abs=1e-9)


def test_bound_edges_and_the_two_sided_interval():
    assert upper_bound(10, 10) == 1.0
    assert lower_bound(0, 10) == 0.0
    low, high = interval(1, 100, 0.95)  # the usual table: 0.03% to 5.45%
    assert low == pytest.approx(0.000253, abs=2e-6)
    assert high == pytest.approx(0.0545, abs=5e-5)
    assert high > upper_bound(1, 100, 0.95)  # each tail holds 2.5%, not 5%
    summary = rate_summary(2, 40)
    assert summary["rate"] == 0.05 and summary["upper"] == upper_bound(2, 40)
    assert rate_summary(0, 0)["upper"] is None
    for bad in [(3, 2, 0.95), (-1, 5, 0.95), (0, 0, 0.95), (0, 5, 1.0), (0, 5, 0.0)]:
        with pytest.raises(InputError):
            upper_bound(*bad)


def test_plan_gives_the_least_sufficient_sample():
    assert plan_sample_size(0.01, 0.95) == 299
    assert plan_sample_size(0.05, 0.95) == 59
    assert plan_sample_size(0.01, 0.95, allowed_findings=1) == 473
    for rate, confidence, k in [(0.02, 0.9, 0), (0.01, 0.99, 2), (0.1, 0.95, 3)]:
        n = plan_sample_size(rate, confidence, k)
        assert upper_bound(k, n, confidence) < rate <= upper_bound(k, n - 1, confidence)
    for bad in [(0, 0.95, 0), (1.5, 0.95, 0), (0.01, 1, 0), (0.01, 0.95, -1), (0.01, 0.95, 0.5)]:
        with pytest.raises(InputError):
            plan_sample_size(*bad)


# -- sampling ----------------------------------------------------------------------------------


def _frame(counts: dict) -> list[FrameCase]:
    """Cases with ids from a counter, in the given (site, category) groups."""
    cases, n = [], 0
    for (site, category), size in counts.items():
        for _ in range(size):
            cases.append(FrameCase(f"{n * 7919 % 65536:04x}{n:012x}", site, "accepted", category))
            n += 1
    return cases


def test_sampling_is_reproducible_and_independent_of_input_order():
    cases = _frame({("site_a", "burned-in text"): 40, ("site_b", "no burned-in text"): 60})
    first = draw_sample(cases, 25, seed=7)
    again = draw_sample(list(reversed(cases)), 25, seed=7)
    other = draw_sample(cases, 25, seed=8)
    assert first.case_ids == again.case_ids
    assert first.case_ids != other.case_ids
    assert len(set(first.case_ids)) == 25 and set(first.case_ids) <= {c.case_id for c in cases}
    unseeded = draw_sample(cases, 5)
    assert draw_sample(cases, 5, seed=unseeded.seed).case_ids == unseeded.case_ids
    whole = draw_sample(cases, 500, seed=1)
    assert sorted(whole.case_ids) == sorted(c.case_id for c in cases)


def test_stratified_sampling_allocates_in_proportion():
    counts = {("site_a", "burned-in text"): 120, ("site_a", "no burned-in text"): 280,
              ("site_b", "burned-in text"): 60, ("site_b", "no burned-in text"): 140,
              ("site_c", "no burned-in text"): 3}
    cases = _frame(counts)
    by_id = {c.case_id: c for c in cases}
    draw = draw_sample(cases, 60, strata=("site", "category"), seed=3)
    got = {}
    for cid in draw.case_ids:
        key = (by_id[cid].site, by_id[cid].category)
        got[key] = got.get(key, 0) + 1
    total = sum(counts.values())
    for key, size in counts.items():
        assert abs(got.get(key, 0) - 60 * size / total) <= 1, key
    assert got[("site_c", "no burned-in text")] == 1  # a small stratum is still represented
    assert sum(a["sample"] for a in draw.allocation) == 60
    by_site = draw_sample(cases, 60, strata=("site",), seed=3)
    sites = [by_id[c].site for c in by_site.case_ids]
    assert (sites.count("site_a"), sites.count("site_b"), sites.count("site_c")) == (39, 20, 1)


def test_allocation_rules_and_sampling_errors():
    assert allocate([20, 3, 1], 6) == [4, 1, 1]
    assert allocate([100, 1, 1], 2) == [2, 0, 0]  # too few to give every stratum one
    assert allocate([5, 5], 20) == [5, 5]
    assert parse_strata("category, site") == ("site", "category")
    for bad in ("age", "site,site", "site;category"):
        with pytest.raises(InputError):
            parse_strata(bad)
    cases = _frame({("site_a", "unknown"): 5})
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError):
            draw_sample(cases, bad, seed=1)
    with pytest.raises(InputError):
        draw_sample([], 3, seed=1)


def test_case_category_is_defined_once():
    assert case_category([{"box": [1, 2, 3, 4]}], {"pixels": "ocr"}) == "burned-in text"
    assert case_category([], {"pixels": "ocr"}) == "no burned-in text"
    assert case_category([], {"pixels": "off"}) == "not scanned"
    assert case_category(None) == "unknown"


# -- a workspace with a planted residual name ---------------------------------------------------


@pytest.fixture
def planted(tmp_path):
    """The 4-case review workspace, every case accepted, one with a name kept in its report."""
    facts = build_workspace(tmp_path / "ws")
    leaked_case = facts["cases"][1]
    with ReviewSession.open(facts["workspace"], reviewer="rita") as session:
        session.go(leaked_case)
        name = next(s for s in session.current.spans
                    if s.category == "NAME" and s.source.startswith("context"))
        session.toggle_span(name.span_id)  # the reviewer wrongly keeps a patient's name
        name_text = session.current.report[name.start:name.end]
        for case in facts["cases"]:
            session.go(case)
            session.decide("accept")
    return {**facts, "leaked_case": leaked_case, "name": name_text}


def test_the_audit_surfaces_the_planted_name_and_counts_it(planted):
    ws, leaked = planted["workspace"], planted["leaked_case"]
    with AuditSession.open(ws, auditor="ann") as audit:
        sample, drawn = audit.draw(4, strata=("site", "category"), seed=5)
        assert drawn and sorted(sample.case_ids) == sorted(planted["cases"])
        views = {cid: audit.view(cid) for cid in sample.case_ids}
        # Surrogates are known stand-ins in a workspace: only the kept name is suspect.
        assert {cid for cid, v in views.items() if v.suspects} == {leaked}
        suspect = views[leaked].suspects[0]
        assert suspect.category == "NAME"
        assert views[leaked].report[suspect.start:suspect.end] == planted["name"]
        for cid in sample.case_ids:
            if cid != leaked:
                audit.mark("clean", case_id=cid)
        before = audit.statistics()
        assert before["residual_phi"]["events"] == 0 and before["not_audited"] == 1
        audit.go(leaked)
        finding = audit.mark("residual_phi", span=(suspect.start, suspect.end), category="name")
        assert finding.phi_category == "NAME" and finding.seconds is not None
        stats = audit.statistics()
    assert stats["audited"] == 4 and stats["residual_phi_cases"] == [leaked]
    assert stats["residual_phi"]["rate"] == 0.25
    assert stats["residual_phi"]["upper"] == pytest.approx(upper_bound(1, 4))
    assert stats["by_phi_category"]["NAME"]["events"] == 1
    site = next(v.site for v in views.values() if v.case_id == leaked)
    group = stats["by_site"][site]["residual_phi"]
    assert group["events"] == 1 and group["upper"] == pytest.approx(
        upper_bound(1, group["cases"]))


def test_findings_survive_reopening_and_the_store_is_durable_and_append_only(planted):
    ws = planted["workspace"]
    with AuditSession.open(ws, auditor="ann") as audit:
        sample, _ = audit.draw(3, seed=11)
        first = sample.case_ids[0]
        audit.mark("clean", case_id=first)
        audit.mark("over_redaction", case_id=sample.case_ids[1], box=(4, 4, 30, 20),
                   comment="lost the effusion margin")
    folder = ws / "audit"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "audit.sqlite").st_mode) == 0o600
    with AuditSession.open(ws, auditor="bob") as audit:
        again, drawn = audit.draw(3)  # the same request reopens the sample
        assert not drawn and again.case_ids == sample.case_ids
        assert audit.current_id == sample.case_ids[2]  # resumes at the first case not audited
        verdicts = {f.case_id: f.verdict for f in audit.store.findings()}
        assert verdicts == {first: "clean", sample.case_ids[1]: "over_redaction"}
        with pytest.raises(UpdpError, match="already drawn"):
            audit.draw(3, seed=12)
        with pytest.raises(UpdpError, match="withdraw"):
            audit.mark("clean", case_id=sample.case_ids[1])
        # A problem on a clean case withdraws the clean mark.
        audit.mark("residual_phi", case_id=first, box=(0, 0, 10, 10), category="DATE")
        live = audit.store.findings(first)
        assert [f.verdict for f in live] == ["residual_phi"]
        assert [f.withdrawn for f in audit.store.findings(first, include_withdrawn=True)] == \
            [True, False]
        audit.withdraw(live[0].finding_id, reason="misread")
        assert audit.store.findings(first) == []
        actions = [e.action for e in audit.store.log()]
        assert actions == ["draw_sample", "mark", "mark", "withdraw", "mark", "withdraw"]
    db = sqlite3.connect(folder / "audit.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for sql in ("UPDATE findings SET verdict = 'clean'", "DELETE FROM findings",
                    "DELETE FROM audit_log", "UPDATE sample_cases SET case_id = 'x'",
                    "DELETE FROM withdrawals"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(sql)
        # Offsets and boxes only: the kept name is nowhere in the database.
        dump = "\n".join(db.iterdump())
        assert planted["name"] not in dump
    finally:
        db.close()


def test_marking_checks_what_it_is_given(planted):
    ws = planted["workspace"]
    with AuditSession.open(ws, auditor="ann") as audit:
        with pytest.raises(InputError, match="no audit sample"):
            audit.mark("clean", case_id=planted["cases"][0])
        sample, _ = audit.draw(2, seed=1)
        case = sample.case_ids[0]
        outside = next(c for c in planted["cases"] if c not in sample.case_ids)
        report = audit.view(case).report
        for kwargs, match in [
            ({"verdict": "clean", "case_id": outside}, "not in the audit sample"),
            ({"verdict": "residual_phi", "case_id": case}, "needs where"),
            ({"verdict": "residual_phi", "case_id": case, "span": (5, 2)}, "START < END"),
            ({"verdict": "residual_phi", "case_id": case, "span": (0, len(report) + 1)},
             "past the end"),
            ({"verdict": "residual_phi", "case_id": case, "box": (0, 0, 9999, 5)}, "outside"),
            ({"verdict": "clean", "case_id": case, "category": "NAME"}, "takes no"),
            ({"verdict": "leaky", "case_id": case}, "verdict"),
            ({"verdict": "residual_phi", "case_id": case, "span": (0, 3), "category": "a b"},
             "not a finding category"),
        ]:
            with pytest.raises(UpdpError, match=match):
                audit.mark(**kwargs)
        assert audit.store.findings() == []


def test_the_frame_follows_the_workspace_statuses(tmp_path):
    facts = build_workspace(tmp_path / "ws")
    with ReviewSession.open(facts["workspace"], reviewer="rita") as session:
        session.go(facts["cases"][0])
        session.decide("accept")
        session.go(facts["cases"][1])
        session.decide("reject")
    with AuditSession.open(facts["workspace"], auditor="ann") as audit:
        sample, _ = audit.draw(10, seed=2)  # accepted only, by default
        assert sample.case_ids == [facts["cases"][0]] and sample.frame == "accepted"
    with AuditSession.open(facts["workspace"], auditor="ann") as audit:
        assert audit.frame_changed() is False
    other = build_workspace(tmp_path / "ws2")
    with AuditSession.open(other["workspace"], auditor="ann") as audit:
        with pytest.raises(InputError, match="no cases"):
            audit.draw(3, seed=1)
        sample, _ = audit.draw(3, seed=1, frame="all")
        assert len(sample.case_ids) == 3 and sample.frame == "all"


def test_audit_store_refuses_other_databases(tmp_path):
    (tmp_path / "a").mkdir()
    sqlite3.connect(tmp_path / "a" / "audit.sqlite").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InputError, match="another program"):
        AuditStore.open(tmp_path / "a")
    with pytest.raises(InputError, match="no audit here"):
        AuditStore.open(tmp_path / "b")


# -- command line ------------------------------------------------------------------------------


def test_cli_plan_prints_the_needed_sample_size(capsys):
    assert main(["audit", "--plan", "--max-rate", "0.01", "--confidence", "0.95"]) == 0
    assert capsys.readouterr().out.startswith("299 cases")
    assert main(["audit", "--plan", "--max-rate", "0.01", "--findings", "1"]) == 0
    assert capsys.readouterr().out.startswith("473 cases")


def test_cli_walks_a_workspace_audit(planted, capsys):
    ws = str(planted["workspace"])
    assert main(["audit", ws, "--sample", "4", "--stratify", "site", "--seed", "9",
                 "--auditor", "ann", "--list"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 4
    counts = {line.split()[1]: int(line.split()[-2]) for line in lines}
    assert counts[planted["leaked_case"]] == 1 and sum(counts.values()) == 1
    assert planted["name"] not in out
    assert main(["audit-mark", ws, planted["leaked_case"], "residual-phi", "--span", "3:9",
                 "--category", "NAME", "--auditor", "ann"]) == 0
    assert "residual-phi (NAME) at report 3:9 by ann" in capsys.readouterr().out
    assert main(["audit-stats", ws, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["residual_phi"]["events"] == 1 and stats["audited"] == 1
    assert main(["audit", ws, "--list"]) == 0  # reopens
    assert "residual_phi" in capsys.readouterr().out
    # a finding recorded by mistake is withdrawn, not deleted: out of the statistics
    with AuditSession.open(ws, auditor="ann") as audit:
        finding = audit.store.findings()[0]
    assert main(["audit-withdraw", ws, str(finding.finding_id), "--reason", "wrong case"]) == 0
    assert main(["audit-stats", ws, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["residual_phi"]["events"] == 0
    assert main(["audit-withdraw", ws, str(finding.finding_id)]) == 2
    assert "already withdrawn" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["audit", "{tmp}"], "neither a review workspace"),
    (["audit", "{tmp}/missing", "--sample", "3"], "no such folder"),
    (["audit", "{ws}", "--sample", "0"], "whole number 1 or more"),
    (["audit", "{ws}", "--sample", "3", "--stratify", "age"], "strata are site, category"),
    (["audit", "{ws}"], "no audit sample yet"),
    (["audit-mark", "{ws}", "0123456789abcdef", "clean"], "no audit sample yet"),
    (["audit", "--plan"], "--max-rate"),
    (["audit", "--plan", "--max-rate", "2"], "between 0 and 1"),
])
def test_cli_errors_are_one_line(tmp_path, planted, capsys, argv, message):
    argv = [a.format(tmp=tmp_path / "empty", ws=planted["workspace"]) for a in argv]
    (tmp_path / "empty").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["clean", "--span", "1:2"], "takes no span"),
    (["residual-phi", "--span", "12"], "START:END"),
    (["residual-phi", "--span", "9:3"], "START < END"),
    (["residual-phi", "--box", "1,2,3"], "x0,y0,x1,y1"),
    (["residual-phi", "--box", "5,5,2,9"], "x0 < x1"),
])
def test_cli_mark_errors(planted, capsys, extra, message):
    ws = str(planted["workspace"])
    assert main(["audit", ws, "--sample", "4", "--seed", "1", "--auditor", "ann", "--list"]) == 0
    capsys.readouterr()
    assert main(["audit-mark", ws, planted["cases"][0], *extra, "--auditor", "ann"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    other = build_workspace(planted["workspace"].parent / "other")["cases"][0]
    assert main(["audit-mark", ws, other, "clean"]) == 2
    assert "not in the audit sample" in capsys.readouterr().err


def test_a_seeded_draw_is_pinned():
    # The same frame, size, strata and seed must give this sample on any machine and in any
    # later version: an auditor re-draws it to show how it was made.
    cases = _frame({("site_a", "unknown"): 6, ("site_b", "unknown"): 4})
    assert draw_sample(cases, 4, strata=("site",), seed=2026).case_ids == [
        "1eef000000000001", "7bbc000000000004", "f778000000000008", "b99a000000000006"]
