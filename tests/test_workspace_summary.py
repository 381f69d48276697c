"""`updp cases` flags and `updp status`: what a steward sees of a workspace from the terminal."""

import json

import pytest
from review_fixtures import build_workspace

from updp_napari.cli import main
from updp_napari.review.artifacts import put_json
from updp_napari.review.scores import compare_findings
from updp_napari.review.store import ReviewStore


@pytest.fixture
def ws(tmp_path):
    facts = build_workspace(tmp_path / "ws")
    first, second, third, _ = facts["cases"]
    with ReviewStore.open(facts["workspace"]) as store:
        put_json(store, first, "domain", {"in_domain": False, "distance": 4.5, "threshold": 1.0,
                                          "reason": "unlike"})
        put_json(store, second, "image_risk", {"table": None})  # nothing measured safe
        put_json(store, third, "scores", compare_findings(("nodule", "effusion"), [0.9, 0.1],
                                                          [0.1, 0.8], [0.5, 0.5]))
        store.decide(third, "reject", reviewer="ann", seconds=12.0)
        store.decide(second, "accept", reviewer="bob", seconds=30.0, report_only=True)
    return facts


def test_cases_shows_what_to_look_at_closely(ws, capsys):
    first, second, third, fourth = ws["cases"]
    assert main(["cases", str(ws["workspace"])]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert "out of domain" in lines[first]
    assert "image withheld" in lines[second]
    assert "finding lost, new positive" in lines[third]
    assert main(["cases", str(ws["workspace"]), "--json"]) == 0
    rows = {r["case_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[third]["verdict"] == "nodule lost; effusion added (new positive)"
    assert rows[third]["findings"]["nodule"]["state"] == "lost"
    assert rows[second]["flags"] == ["image withheld"]


def test_status_counts_flags_scores_and_reviewers(ws, capsys):
    assert main(["status", str(ws["workspace"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cases"] == 4
    assert summary["by_status"] == {"pending": 2, "rejected": 1, "accepted": 1}
    assert summary["flags"] == {"out of domain": 1, "image withheld": 1, "finding lost": 1,
                                "new positive": 1}
    assert summary["reviewers"] == {"ann": {"decisions": 1, "median_seconds": 12.0},
                                    "bob": {"decisions": 1, "median_seconds": 30.0}}
    assert summary["utility"]["cases"] == 4
    assert main(["status", str(ws["workspace"])]) == 0
    out = capsys.readouterr().out
    assert "by status: pending 2" in out and "reviewer bob: 1 decision(s), median 30 s" in out
    assert main(["status", str(ws["workspace"] / "nope")]) == 2


def test_review_at_a_case_that_is_not_there_is_one_line(ws, tmp_path, capsys):
    assert main(["review", str(ws["workspace"]), "--case", "0" * 16,
                 "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "0000000000000000" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_patient_ranked_first_is_an_alert_in_the_table(ws, capsys):
    fourth = ws["cases"][3]
    with ReviewStore.open(ws["workspace"]) as store:
        store.set_scores(fourth, privacy=0.0, utility=1.0)
        put_json(store, fourth, "scores", {"privacy": 0.0, "reid_rank": 1, "gallery_patients": 4})
    assert main(["cases", str(ws["workspace"]), "--json"]) == 0
    rows = {r["case_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[fourth]["flags"] == ["re-identification alert"]


def test_history_lists_what_was_done_to_a_case_in_words(ws, capsys):
    second = ws["cases"][1]
    with ReviewStore.open(ws["workspace"]) as store:
        span = store.spans(second)[0]
        store.toggle_span(second, span.span_id, reviewer="ann")
        store.decide(second, "reject", reviewer="cid", override=True)
    assert main(["history", str(ws["workspace"]), second]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"case {second}: rejected; 3 action(s)"
    assert "bob" in lines[1] and "accept (was pending); shares: withheld, report only" in lines[1]
    assert f"span {span.span_id}: {span.action} -> " in lines[2]
    assert "cid" in lines[3] and "reject (was accepted), over bob's accept (override)" in lines[3]
    assert main(["history", str(ws["workspace"]), second, "--json"]) == 0
    assert [e["action"] for e in json.loads(capsys.readouterr().out)] == \
        ["decide", "toggle_span", "decide"]
    assert main(["history", str(ws["workspace"]), "0" * 16]) == 2


def test_a_decision_is_taken_back_with_pending_and_stays_in_the_history(ws, capsys):
    third = ws["cases"][2]  # rejected by ann
    wsp = str(ws["workspace"])
    assert main(["decide", wsp, third, "pending", "--reviewer", "bob"]) == 2  # ann's, not bob's
    assert "needs --override" in capsys.readouterr().err
    assert main(["decide", wsp, third, "pending", "--reviewer", "ann"]) == 0
    assert "pending again (reject taken back by ann)" in capsys.readouterr().out
    with ReviewStore.open(ws["workspace"]) as store:
        assert store.case(third).status == "pending"
        assert [d.decision for d in store.decisions(third)] == ["reject"]
        store.decide(third, "accept", reviewer="bob")  # nothing stands: no override needed
        assert store.case(third).status == "accepted"
    assert main(["decide", wsp, ws["cases"][3], "pending", "--reviewer", "ann"]) == 2
    assert "no decision to undo" in capsys.readouterr().err
    assert main(["history", wsp, third]) == 0
    assert "took back the reject (was rejected); pending" in capsys.readouterr().out
