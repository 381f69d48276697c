"""Second-reader mode: cases decided blind by two reviewers, agreement as Cohen's kappa,
disagreements flagged for adjudication; and `updp status --html`."""

import json

import pytest
from review_fixtures import build_workspace

from updp_napari.cli import main
from updp_napari.core.errors import UpdpError
from updp_napari.core.metrics import cohens_kappa
from updp_napari.review.session import ReviewSession
from updp_napari.review.store import ReviewStore
from updp_napari.review.summary import reader_agreement


@pytest.fixture
def ws(tmp_path):
    return build_workspace(tmp_path / "ws")


def test_cohens_kappa_on_hand_computed_tables():
    # observed 3/4; chance 3/4·1/2 + 1/4·1/2 = 1/2 -> (0.75 - 0.5) / 0.5
    pairs = [("accept", "accept"), ("reject", "reject"), ("accept", "reject"),
             ("accept", "accept")]
    assert cohens_kappa(pairs, ("accept", "reject", "flag")) == pytest.approx(0.5)
    assert cohens_kappa([("accept", "reject"), ("reject", "accept")],
                        ("accept", "reject")) == pytest.approx(-1.0)
    assert cohens_kappa([("accept", "accept")] * 3, ("accept", "reject")) is None  # no spread
    assert cohens_kappa([], ("accept",)) is None


def test_two_blind_readers_decide_a_case_or_flag_it_for_adjudication(ws):
    first, second, third, _ = ws["cases"]
    with ReviewStore.open(ws["workspace"]) as store:
        assert not store.second_reader
        assert store.set_second_reader(True, "ann") and store.second_reader
        assert not store.set_second_reader(True, "ann")  # already on: nothing recorded

        read = store.read_blind(first, "reject", reviewer="ann", seconds=4.0)
        assert (read.outcome, read.status) == ("waiting", "pending")
        assert store.case(first).status == "pending" and not store.decisions(first)
        with pytest.raises(UpdpError, match="another reviewer"):
            store.read_blind(first, "reject", reviewer="ann")
        read = store.read_blind(first, "reject", reviewer="bob", seconds=6.0)
        assert (read.outcome, read.status) == ("agreed", "rejected")
        decision = store.decisions(first)[-1]
        assert decision.decision == "reject" and "ann and bob" in decision.comment
        with pytest.raises(UpdpError, match="blind reading is over"):
            store.read_blind(first, "accept", reviewer="carol")

        store.read_blind(second, "reject", reviewer="ann")
        read = store.read_blind(second, "flag", reviewer="bob")
        assert (read.outcome, read.status) == ("disagreed", "flagged")
        # adjudication: a plain decision by anyone, no override needed over a flag
        store.decide(second, "reject", reviewer="carol")
        assert store.case(second).status == "rejected"

        store.read_blind(third, "reject", reviewer="bob")
        assert store.round_readings(third)[0]["reviewer"] == "bob"
        assert store.reader_pairs() == [("reject", "reject"), ("reject", "flag")]
        agreement = reader_agreement(store)
    assert agreement["on"] and agreement["pairs"] == 2 and agreement["agreed"] == 1
    assert agreement["waiting_for_second_reader"] == 1
    assert agreement["disagreements_to_adjudicate"] == 0  # adjudicated
    # first reader: reject, reject; second: reject, flag -> chance agreement 1·1/2
    assert agreement["kappa"] == pytest.approx(0.0)


def test_an_undo_starts_a_new_blind_round(ws):
    first = ws["cases"][0]
    with ReviewStore.open(ws["workspace"]) as store:
        store.set_second_reader(True, "ann")
        store.read_blind(first, "reject", reviewer="ann")
        store.read_blind(first, "reject", reviewer="bob")
        store.undo(first, reviewer="bob")
        assert store.case(first).status == "pending" and store.round_readings(first) == []
        assert store.read_blind(first, "flag", reviewer="ann").outcome == "waiting"


def test_the_session_reads_blind_and_hides_the_other_reading(ws):
    first = ws["cases"][0]
    with ReviewStore.open(ws["workspace"]) as store:
        store.set_second_reader(True, "ann")
        store.read_blind(first, "reject", reviewer="ann")
    session = ReviewSession.open(ws["workspace"], reviewer="bob")
    try:
        session.go(first)
        assert session.blind(first)
        assert [e.action for e in session.history(first)
                if e.action == "read"] == []  # ann's reading is not shown to bob
        done = session.decide("flag")
        assert done.outcome == "disagreed" and session.store.case(first).status == "flagged"
        assert not session.blind(first)
        assert [e.reviewer for e in session.history(first) if e.action == "read"] == \
            ["ann", "bob"]  # once decided, both readings are in the history
    finally:
        session.close()


def test_decide_and_status_on_the_command_line(ws, tmp_path, capsys):
    first = ws["cases"][0]
    workspace = str(ws["workspace"])
    with ReviewStore.open(ws["workspace"]) as store:
        store.set_second_reader(True, "ann")
    assert main(["decide", workspace, first, "reject", "--reviewer", "ann"]) == 0
    assert "waits for a second reader" in capsys.readouterr().out
    assert main(["decide", workspace, first, "reject", "--reviewer", "bob"]) == 0
    assert "both readers agree" in capsys.readouterr().out
    assert main(["history", workspace, first]) == 0
    out = capsys.readouterr().out
    assert "read blind: reject" in out and "readers ann and bob agreed" in out

    page = tmp_path / "status.html"
    assert main(["status", workspace, "--json", "--html", str(page)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["second_reader"]["pairs"] == 1 and summary["second_reader"]["on"]
    assert "_scores" not in summary
    text = page.read_text(encoding="utf-8")
    assert "Second reader" in text and text.count("data:image/png;base64,") == 2
    assert "<script" not in text
    assert main(["status", workspace]) == 0
    assert "second reader: on; 1 case(s) read by two" in capsys.readouterr().out
    assert main(["status", workspace, "--html", str(tmp_path)]) == 2  # a folder: one line
    assert "is a folder" in capsys.readouterr().err
