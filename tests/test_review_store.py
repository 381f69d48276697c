"""The review workspace store: durable decisions, spans side by side, action log, artifacts, CLI."""

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.core.spans import Span
from updp_napari.review import ReviewStore
from updp_napari.review.store import DATABASE, SCHEMA_VERSION

STUDIES = [f"1.2.840.99999.{n}.{n * 7919}" for n in range(1, 6)]


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    with ReviewStore.open(ws, create=True) as store:
        ids = [store.add_case(uid, site=f"S{n % 2}") for n, uid in enumerate(STUDIES)]
    return ws, ids


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_cases_round_trip_in_the_order_added(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        assert [c.case_id for c in store.cases()] == ids
        assert [c.case_id for c in store.cases("pending")] == ids
        store.set_scores(ids[1], privacy=0.25, utility=0.9)
        store.mark_failed(ids[2], "synthesis ran out of memory")
        art = store.put_artifact(b"synthetic image bytes", ".png")
        store.set_artifact(ids[1], "synthetic", art, signature={"model": "m1", "seed": 3})
    with ReviewStore.open(ws) as store:
        case = store.case(ids[1])
        assert (case.privacy_score, case.utility_score, case.site) == (0.25, 0.9, "S1")
        assert case.artifacts == {"synthetic": {"path": art,
                                                "signature": {"model": "m1", "seed": 3}}}
        assert store.case(ids[2]).status == "failed"
        assert store.case(ids[2]).failure_reason == "synthesis ran out of memory"
        assert [c.case_id for c in store.cases("failed")] == [ids[2]]
        assert store.case(ids[0]).study_ref.startswith("2.25.")


def test_case_ids_are_keyed_and_the_study_identity_is_not_stored(workspace, tmp_path):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        assert len(set(ids)) == len(ids)
        assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
        assert store.case_id_for(STUDIES[0]) == ids[0]
    with ReviewStore.open(tmp_path / "other", create=True) as other:  # another key
        assert other.add_case(STUDIES[0]) != ids[0]
    raw = b"".join(p.read_bytes() for p in ws.iterdir() if p.name.startswith(DATABASE))
    assert not any(uid.encode() in raw for uid in STUDIES)


def test_add_case_is_idempotent(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        store.decide(ids[0], "reject", reviewer="ann")
        art = store.put_artifact(b"mask", ".npy")
        assert store.add_case(STUDIES[0]) == ids[0]
        assert store.add_case(f"  {STUDIES[0]} ", artifacts={"mask": art}) == ids[0]
        assert len(store.cases()) == len(STUDIES)
        case = store.case(ids[0])
        assert case.status == "rejected" and case.site == "S0"  # the decision and site stay
        assert case.artifacts["mask"]["path"] == art


def test_database_is_in_wal_mode_with_full_sync_and_a_decision_is_committed_on_return(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        store.decide(ids[3], "accept", reviewer="ann", seconds=12.5, comment="clear")
        # Another connection sees it while the store is still open: nothing waits for close.
        other = sqlite3.connect(ws / DATABASE)
        row = other.execute("SELECT decision, reviewer, seconds, comment FROM decisions").fetchone()
        status = other.execute("SELECT status FROM cases WHERE case_id = ?",
                               (ids[3],)).fetchone()[0]
        other.close()
    assert row == ("accept", "ann", 12.5, "clear") and status == "accepted"


def test_workspace_files_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        ws = tmp_path / "ws"
        store = ReviewStore.open(ws, create=True)
        case_id = store.add_case(STUDIES[0])
        store.decide(case_id, "flag", reviewer="ann")  # the -wal and -shm files exist now
        art = store.put_artifact(b"pixels")
        paths = [ws / DATABASE, ws / f"{DATABASE}-wal", ws / f"{DATABASE}-shm",
                 ws / "secret.key", ws / art]
        modes = {p.name: _mode(p) for p in paths}
        folders = {p.name: _mode(p) for p in (ws, ws / "artifacts", (ws / art).parent)}
        store.close()
    finally:
        os.umask(old)
    assert set(modes.values()) == {0o600}, modes
    assert set(folders.values()) == {0o700}, folders


def test_action_log_refuses_update_and_delete(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        store.decide(ids[0], "accept", reviewer="ann")
        span = store.add_span(ids[0], 3, 9, "NAME", reviewer="bob")
        store.toggle_span(ids[0], span.span_id, reviewer="bob")
        before = store.action_log()
    assert [(e.action, e.reviewer) for e in before] == [
        ("decide", "ann"), ("add_span", "bob"), ("toggle_span", "bob")]
    raw = sqlite3.connect(ws / DATABASE)
    for sql in ("UPDATE audit_log SET reviewer = 'mallory'", "DELETE FROM audit_log",
                "DELETE FROM audit_log WHERE entry_id = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(sql)
    raw.commit()
    raw.close()
    with ReviewStore.open(ws) as store:
        assert store.action_log() == before


def test_first_undecided_resumes_where_the_review_stopped(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        assert store.first_undecided().case_id == ids[0]
        store.decide(ids[0], "accept", reviewer="ann")
        store.decide(ids[2], "reject", reviewer="ann")  # out of order
        assert store.first_undecided().case_id == ids[1]
        store.decide(ids[1], "flag", reviewer="ann")
        assert store.first_undecided().case_id == ids[3]
    with ReviewStore.open(ws) as store:  # a new session resumes at the same place
        assert store.first_undecided().case_id == ids[3]
        store.mark_failed(ids[3], "no image")
        store.decide(ids[4], "accept", reviewer="ann")
        assert store.first_undecided() is None
        assert [c.case_id for c in store.cases("pending")] == []


def test_decisions_are_kept_and_the_last_one_sets_the_status(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        store.decide(ids[0], "flag", reviewer="ann", seconds=4.0, comment="check the mask")
        store.decide(ids[0], "accept", reviewer="bob", seconds=20.0)
        assert store.case(ids[0]).status == "accepted"
        assert [(d.decision, d.reviewer, d.seconds) for d in store.decisions(ids[0])] == [
            ("flag", "ann", 4.0), ("accept", "bob", 20.0)]
        assert store.decisions(ids[1]) == []
        store.mark_failed(ids[1], "pixel decode failed")
        with pytest.raises(UpdpError, match="failed in the pipeline"):
            store.decide(ids[1], "accept", reviewer="ann")
        store.decide(ids[1], "reject", reviewer="ann")
        assert store.case(ids[1]).status == "rejected"


def test_decide_validates_its_inputs(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        with pytest.raises(InputError, match="decision must be accept, reject or flag"):
            store.decide(ids[0], "approve", reviewer="ann")
        with pytest.raises(InputError, match=f"no case {'0' * 16}"):
            store.decide("0" * 16, "accept", reviewer="ann")
        with pytest.raises(InputError, match="not a case id") as err:
            store.decide("ACC-12345678", "accept", reviewer="ann")
        assert "ACC" not in str(err.value)  # a mistyped argument may be an identifier
        with pytest.raises(InputError, match="reviewer"):
            store.decide(ids[0], "accept", reviewer="  ")
        with pytest.raises(InputError, match="seconds"):
            store.decide(ids[0], "accept", reviewer="ann", seconds=-1)
        with pytest.raises(InputError, match="status must be"):
            store.cases("done")
        assert store.decisions() == [] and store.action_log() == []
        assert store.case(ids[0]).status == "pending"


def test_spans_keep_what_was_proposed_beside_what_the_reviewer_decided(workspace):
    ws, ids = workspace
    found = [Span(0, 10, "NAME", "lexicon"), Span(20, 30, "DATE", "pattern"),
             {"start": 40, "end": 52, "category": "TERM", "source": "whitelist", "action": "keep"}]
    with ReviewStore.open(ws) as store:
        spans = store.set_spans(ids[0], found)
        assert [(s.start, s.end, s.action, s.origin) for s in spans] == [
            (0, 10, "redact", "auto"), (20, 30, "redact", "auto"), (40, 52, "keep", "auto")]
        name = spans[0]
        kept = store.toggle_span(ids[0], name.span_id, reviewer="ann")
        assert (kept.proposed_action, kept.action, kept.changed_by) == ("redact", "keep", "ann")
        assert kept.changed and not spans[1].changed
        added = store.add_span(ids[0], 60, 66, "ID", reviewer="ann")
        assert (added.origin, added.proposed_action, added.action) == ("reviewer", None, "redact")
        # The pipeline runs again: the reviewer's override and added span survive.
        again = store.set_spans(ids[0], found[:1] + [Span(22, 30, "DATE", "pattern")])
    assert [(s.start, s.end, s.action, s.origin) for s in again] == [
        (0, 10, "keep", "auto"), (22, 30, "redact", "auto"), (60, 66, "redact", "reviewer")]
    with ReviewStore.open(ws) as store:
        assert store.spans(ids[0]) == again
        assert store.spans(ids[1]) == []
        with pytest.raises(InputError, match="has no span"):
            store.toggle_span(ids[1], again[0].span_id, reviewer="ann")  # another case's span
        with pytest.raises(InputError, match="start < end"):
            store.add_span(ids[0], 9, 9, "NAME", reviewer="ann")
        with pytest.raises(InputError, match="span action"):
            store.add_span(ids[0], 1, 9, "NAME", reviewer="ann", action="hide")
        assert [e.action for e in store.action_log(ids[0])] == ["toggle_span", "add_span"]


def test_artifacts_are_content_addressed_checked_and_confined(workspace):
    ws, ids = workspace
    with ReviewStore.open(ws) as store:
        rel = store.put_artifact(b"report text", ".txt")
        assert store.put_artifact(b"report text", ".txt") == rel
        assert rel.startswith("artifacts/") and rel.endswith(".txt")
        assert store.get_artifact(rel) == b"report text"
        assert not [p for p in (ws / rel).parent.iterdir() if p.name.endswith(".tmp")]
        mask = np.zeros((8, 8), bool)
        mask[2:5, 3:6] = True
        arr = store.put_array(mask)
        np.testing.assert_array_equal(store.get_array(arr), mask)
        store.record_mask_edit(ids[0], "ann", arr)
        assert store.case(ids[0]).artifacts["reviewer_mask"]["path"] == arr
        assert store.action_log(ids[0])[-1].detail["mask"] == arr
        (ws / rel).write_bytes(b"report tex!")
        with pytest.raises(UpdpError, match="damaged"):
            store.get_artifact(rel)
        assert store.put_artifact(b"report text", ".txt") == rel  # rewritten whole
        assert store.get_artifact(rel) == b"report text"
        for bad in ("secret.key", "artifacts/../secret.key", "/etc/passwd", rel[:-5]):
            with pytest.raises(InputError):
                store.get_artifact(bad)
        with pytest.raises(InputError, match="missing"):
            store.record_mask_edit(ids[0], "ann", f"artifacts/ab/ab{'0' * 62}")


def test_open_refuses_folders_that_are_not_workspaces(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        ReviewStore.open(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        ReviewStore.open(tmp_path / "file")
    with pytest.raises(InputError, match="not a folder"):
        ReviewStore.open(tmp_path / "file", create=True)
    with pytest.raises(InputError, match=f"no {DATABASE}"):
        ReviewStore.open(tmp_path)
    (tmp_path / DATABASE).write_text("these are not the cases you are looking for\n" * 200)
    with pytest.raises(InputError, match="not a review workspace database"):
        ReviewStore.open(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    sqlite3.connect(foreign / DATABASE).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InputError, match="another program"):
        ReviewStore.open(foreign, create=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / DATABASE).touch()  # left by a creation that was interrupted
    with pytest.raises(InputError, match="empty database"):
        ReviewStore.open(empty)
    with ReviewStore.open(empty, create=True) as store:
        assert store.cases() == []


def test_a_newer_schema_is_refused_not_guessed_at(workspace):
    ws, ids = workspace
    raw = sqlite3.connect(ws / DATABASE)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    for create in (False, True):
        with pytest.raises(UpdpError, match="newer updp-napari"):
            ReviewStore.open(ws, create=create)
    raw = sqlite3.connect(ws / DATABASE)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # untouched
    raw.close()


_DECIDE_FOREVER = textwrap.dedent("""
    import sys
    from updp_napari.review import ReviewStore

    store = ReviewStore.open(sys.argv[1])
    ids = [c.case_id for c in store.cases()]
    n = 0
    while True:
        store.decide(ids[n % len(ids)], ("accept", "reject", "flag")[n % 3], reviewer="loop",
                     seconds=0.5, comment=str(n))
        print(n, flush=True)  # only after decide returned: a confirmed decision
        n += 1
""")


@pytest.mark.parametrize("kill_after", [1, 40])
def test_confirmed_decisions_survive_sigkill(workspace, kill_after):
    ws, ids = workspace
    child = subprocess.Popen([sys.executable, "-c", _DECIDE_FOREVER, str(ws)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    confirmed = []
    try:
        while len(confirmed) < kill_after:
            line = child.stdout.readline()
            assert line, f"the deciding process stopped on its own: {child.stderr.read()}"
            confirmed.append(int(line))
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    confirmed += [int(n) for n in rest.split()]  # printed before it died: confirmed too
    with ReviewStore.open(ws) as store:
        recorded = [int(d.comment) for d in store.decisions()]
        audited = [e.detail["decision_id"] for e in store.action_log()]
        decision_ids = [d.decision_id for d in store.decisions()]
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        last = store.decisions()[-1]
        assert store.case(last.case_id).status == {"accept": "accepted", "reject": "rejected",
                                                   "flag": "flagged"}[last.decision]
    assert set(confirmed) <= set(recorded)
    # In order, no gaps; at most the one call in flight when it died is there unconfirmed.
    assert recorded == list(range(len(recorded)))
    assert len(recorded) - len(confirmed) in (0, 1)
    assert audited == decision_ids  # a decision and its audit entry commit together


def test_cli_cases_and_decide(workspace, capsys, monkeypatch):
    ws, ids = workspace
    assert main(["cases", str(ws), "--ids"]) == 0
    assert capsys.readouterr().out.split() == ids
    assert main(["decide", str(ws), ids[1], "reject", "--reviewer", "ann",
                 "--comment", "collimation cuts the apex"]) == 0
    assert f"case {ids[1]}: rejected by ann" in capsys.readouterr().out
    monkeypatch.setenv("LOGNAME", "os-user")
    assert main(["decide", str(ws), ids[2], "flag"]) == 0
    capsys.readouterr()
    assert main(["cases", str(ws), "--status", "pending", "--ids"]) == 0
    assert capsys.readouterr().out.split() == [ids[0], ids[3], ids[4]]
    # The table: status, site, reviewer and the comment of the last decision, per case.
    assert main(["cases", str(ws)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["case", "status", "site"] and table[-1] == "5 case(s)"
    row = next(line for line in table if line.startswith(ids[1]))
    assert "rejected" in row and "ann" in row and "collimation cuts the apex" in row
    assert main(["cases", str(ws), "--json"]) == 0
    listed = {c["case_id"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed[ids[2]]["status"] == "flagged"
    assert [d["reviewer"] for d in listed[ids[2]]["decisions"]] == ["os-user"]
    with ReviewStore.open(ws) as store:
        assert [(d.case_id, d.decision, d.reviewer, d.comment) for d in store.decisions()] == [
            (ids[1], "reject", "ann", "collimation cuts the apex"), (ids[2], "flag", "os-user", "")]
        assert [e.action for e in store.action_log()] == ["decide", "decide"]
    out = subprocess.run([sys.executable, "-m", "updp_napari", "cases", str(ws), "--status",
                          "flagged", "--ids"], capture_output=True, text=True, check=True).stdout
    assert out == f"{ids[2]}\n"


@pytest.mark.parametrize("argv, message", [
    (["cases", "{tmp}/missing"], "no such folder"),
    (["cases", "{tmp}"], "not a review workspace"),
    (["cases", "{ws}", "--status", "done"], "status must be"),
    (["decide", "{tmp}", "{id}", "accept"], "not a review workspace"),
    (["decide", "{ws}", "0123456789abcdef", "accept"], "no case 0123456789abcdef"),
    (["decide", "{ws}", "MRN4711", "accept"], "not a case id"),
    (["decide", "{ws}", "{id}", "approve"], "decision must be accept, reject or flag"),
])
def test_cli_errors_are_one_line(workspace, tmp_path, capsys, argv, message):
    ws, ids = workspace
    argv = [a.format(tmp=tmp_path, ws=ws, id=ids[0]) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"updp {argv[0]}: error:")
    assert message in lines[0] and "MRN4711" not in lines[0]
    with ReviewStore.open(ws) as store:
        assert store.decisions() == []


def test_deciding_over_another_reviewer_needs_override_and_is_recorded(tmp_path):
    from updp_napari.review.store import DecisionOverride

    with ReviewStore.open(tmp_path / "ws", create=True) as store:
        case = store.add_case("1.2.3")
        store.decide(case, "accept", "ann")
        store.decide(case, "reject", "ann")  # one's own decision: changed freely
        with pytest.raises(DecisionOverride, match="decided \\(reject\\) by ann"):
            store.decide(case, "accept", "bob")
        assert store.case(case).status == "rejected"
        store.decide(case, "accept", "bob", override=True)
        assert store.case(case).status == "accepted"
        last = [e for e in store.action_log() if e.action == "decide"][-1]
        assert last.detail["overrides"] == {"decision": "reject", "reviewer": "ann"}
