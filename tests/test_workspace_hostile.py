"""The review workspace under hostile states found by a sweep from outside: decisions that
land while an export or a run is working, audits moved aside, a missing key, forged notes,
a locked store. Nothing leaves without a standing accept; no decision is lost or changed."""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.export import export_package
from updp_napari.pipeline import Pipeline, run_pipeline
from updp_napari.review.session import ReviewSession
from updp_napari.review.store import DATABASE, ReviewStore
from updp_napari.studies import find_studies

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
STUDIES = ["p0000_s01", "p0001_s01"]


@pytest.fixture()
def workspace(tmp_path, tiny_models):
    """A fresh workspace of two sample studies (pixels off), every case accepted."""
    model, scorers = tiny_models
    for study in STUDIES:
        shutil.copytree(SAMPLE / study, tmp_path / "in" / study)
    ws = tmp_path / "ws"
    run_pipeline(tmp_path / "in", ws, model=model, scorers=scorers, pixels="off")
    with ReviewSession.open(ws, reviewer="ann") as session:
        for case in session.cases():
            session.go(case.case_id)
            session.decide("accept")
    return ws


def _one_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_a_case_decided_again_while_the_package_is_made_stops_the_export(workspace, tmp_path,
                                                                        monkeypatch):
    import updp_napari.deid.leaks as leaks

    case = ReviewStore.open(workspace).cases()[0].case_id
    real = leaks.scan_leaks

    def scan_then_reject(*args, **kwargs):
        report = real(*args, **kwargs)
        with ReviewStore.open(workspace) as other:  # another reviewer, another process
            other.decide(case, "reject", reviewer="bob", override=True)
        return report

    monkeypatch.setattr(leaks, "scan_leaks", scan_then_reject)
    with pytest.raises(UpdpError, match="decided again"):
        export_package(workspace, tmp_path / "share", ocr=False)
    assert not (tmp_path / "share").exists()
    assert not list(tmp_path.glob(".share.*"))


def test_an_audit_moved_aside_still_holds_its_cases_back(workspace, tmp_path, capsys):
    case = ReviewStore.open(workspace).cases()[0].case_id
    assert main(["audit", str(workspace), "--sample", "2", "--seed", "1", "--auditor", "ian",
                 "--list"]) == 0
    assert main(["audit-mark", str(workspace), case, "residual-phi", "--span", "0:4",
                 "--category", "NAME", "--auditor", "ian"]) == 0
    (workspace / "audit").rename(workspace / "audit-1")  # to start a new audit
    with pytest.raises(UpdpError, match="residual-PHI finding"):
        export_package(workspace, tmp_path / "share", ocr=False)
    (workspace / "audit").mkdir()
    (workspace / "audit" / "audit.sqlite").mkdir()  # a folder where the database belongs
    with pytest.raises(UpdpError, match="not a file"):
        export_package(workspace, tmp_path / "share", ocr=False)
    assert not (tmp_path / "share").exists()


def test_a_run_never_rewrites_a_case_decided_while_it_was_prepared(workspace, tiny_models):
    model, scorers = tiny_models
    studies = find_studies(workspace.parent / "in").studies
    with ReviewStore.open(workspace) as store:
        pipe = Pipeline(store, model=model, scorers=scorers, pixels="off")
        case = store.case_id_for(studies[0].study_uid)
        before = store.case(case)
        assert before.status == "accepted"
        prepared = pipe.preparer().prepare(studies[0], case)
        assert pipe.write(prepared) is False
        assert store.case(case).updated_at == before.updated_at
        assert store.case(case).artifacts == before.artifacts


def test_a_workspace_whose_key_is_gone_gets_no_new_one(workspace, tmp_path, tiny_models):
    model, scorers = tiny_models
    (workspace / "secret.key").unlink()
    with pytest.raises(InputError, match="secret.key: missing"):
        run_pipeline(tmp_path / "in", workspace, model=model, scorers=scorers, pixels="off")
    assert not (workspace / "secret.key").exists()


def test_a_failed_case_flagged_first_still_cannot_be_accepted(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    shutil.copytree(SAMPLE / STUDIES[0], tmp_path / "in" / STUDIES[0])
    image = tmp_path / "in" / STUDIES[0] / "image.dcm"
    image.write_bytes(image.read_bytes()[:3000])
    ws = tmp_path / "ws"
    run_pipeline(tmp_path / "in", ws, model=model, scorers=scorers, pixels="off")
    case = ReviewStore.open(ws).cases()[0].case_id
    assert main(["decide", str(ws), case, "flag", "--reviewer", "ann"]) == 0
    assert "failed in the pipeline" in _one_error(
        capsys, ["decide", str(ws), case, "accept", "--reviewer", "ann"])


def test_a_forged_export_note_removes_nothing_and_a_linked_scratch_is_refused(workspace,
                                                                             tmp_path):
    victim = tmp_path / "victim" / ".precious"
    victim.mkdir(parents=True)
    (victim / "keep").write_text("data")
    note = workspace / "tmp" / "export-999999999-x"
    note.mkdir(parents=True)
    (note / "staging.txt").write_text(str(victim))
    export_package(workspace, tmp_path / "share", ocr=False)
    assert (victim / "keep").read_text() == "data"
    shutil.rmtree(workspace / "tmp")
    public = tmp_path / "public"
    public.mkdir(mode=0o755)
    os.symlink(public, workspace / "tmp")
    with pytest.raises(UpdpError, match="symbolic link"):
        export_package(workspace, tmp_path / "share2", ocr=False)
    assert list(public.iterdir()) == [] and oct(public.stat().st_mode & 0o777) == "0o755"


def test_the_package_is_not_written_inside_the_workspace(workspace, capsys):
    assert "inside the workspace" in _one_error(
        capsys, ["export", str(workspace), str(workspace / "share")])


def test_a_locked_store_is_a_one_line_error_and_records_nothing(workspace):
    raw = sqlite3.connect(workspace / DATABASE, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")  # writers wait; readers do not (write-ahead log)
    try:
        with ReviewStore.open(workspace, busy_timeout=0.2) as store:
            case = store.cases()[0].case_id
            with pytest.raises(UpdpError, match="locked by another process.*nothing was recorded"):
                store.decide(case, "reject", reviewer="bob", override=True)
    finally:
        raw.execute("ROLLBACK")
        raw.close()
    with ReviewStore.open(workspace) as store:
        assert store.case(case).status == "accepted"


def test_numbers_too_large_and_ids_like_names_are_one_line_errors(workspace, capsys):
    err = _one_error(capsys, ["audit", str(workspace), "--sample", "9" * 20, "--list"])
    assert "too large" in err or "larger" in err
    with pytest.raises(SystemExit):  # refused by the parser, with its usage line
        main(["audit", str(workspace), "--sample", "2", "--seed", "9" * 20, "--list"])
    assert "under 2**63" in capsys.readouterr().err
    assert main(["audit", str(workspace), "--sample", "2", "--seed", "1", "--auditor", "ian",
                 "--list"]) == 0
    capsys.readouterr()
    err = _one_error(capsys, ["audit-mark", str(workspace), "CHEN^ELLA RG-597590", "clean",
                              "--auditor", "ian"])
    assert "CHEN" not in err and "597590" not in err


def test_a_name_with_control_characters_is_refused():
    from updp_napari.core.users import check_person

    for bad in ("eve\x1b[31m", "eve\x0bFAKE", "eve\u202eevil"):
        with pytest.raises(InputError, match="control characters"):
            check_person(bad)
    assert check_person("  Zoë Müller ") == "Zoë Müller"


def test_an_atomic_write_never_replaces_a_pipe_or_a_device(tmp_path):
    from updp_napari.core.files import write_bytes_atomic, write_text_atomic

    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    pipe = tmp_path / "page.html"
    os.mkfifo(pipe)
    for write in (write_text_atomic, lambda p, d: write_bytes_atomic(p, d.encode())):
        with pytest.raises(InputError, match="not a regular file"):
            write(pipe, "<html>")
    assert not pipe.is_file() and pipe.exists()


def test_a_rerun_makes_a_changed_pending_case_again_and_names_a_changed_decided_one(
        tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    for study in STUDIES:
        shutil.copytree(SAMPLE / study, tmp_path / "in" / study)
    ws = tmp_path / "ws"
    run_pipeline(tmp_path / "in", ws, model=model, scorers=scorers, pixels="off")
    studies = {s.name.split("/")[0]: s for s in find_studies(tmp_path / "in").studies}
    with ReviewStore.open(ws) as store:
        decided = store.case_id_for(studies[STUDIES[0]].study_uid)
        pending = store.case_id_for(studies[STUDIES[1]].study_uid)
        store.decide(decided, "accept", reviewer="ann")
        before = {c: store.case(c).artifacts["report"]["path"] for c in (decided, pending)}
    for study in STUDIES:
        report = tmp_path / "in" / study / "report.txt"
        report.write_text(report.read_text() + "\nAddendum: no change.\n")
    summary = run_pipeline(tmp_path / "in", ws, model=model, scorers=scorers, pixels="off")
    assert summary.changed_after_decision == [(decided, studies[STUDIES[0]].name)]
    assert summary.done == 1 and summary.already_done == 1
    with ReviewStore.open(ws) as store:
        assert store.case(decided).artifacts["report"]["path"] == before[decided]
        assert store.case(pending).artifacts["report"]["path"] != before[pending]
        assert "Addendum" in store.get_artifact(store.case(pending).artifacts["report"]["path"]).decode()


def test_loosened_modes_of_the_workspace_are_made_owner_only_again(workspace):
    for path in (workspace, workspace / "secret.key", workspace / DATABASE, workspace / "artifacts"):
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    with ReviewStore.open(workspace) as store:
        store.cases()
    for path in (workspace, workspace / "secret.key", workspace / DATABASE, workspace / "artifacts"):
        assert path.stat().st_mode & 0o077 == 0, path


def _full_disk_under(monkeypatch, folder_test):
    """os.fsync fails as a full disk does (no file named) for files whose path passes
    ``folder_test``."""
    import errno

    real = os.fsync

    def fsync(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if folder_test(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_names_the_file_and_the_export_leaves_nothing(workspace, tmp_path,
                                                                  monkeypatch, capsys):
    from updp_napari.core.files import write_bytes_atomic

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("no /proc here to tell which file is written")
    _full_disk_under(monkeypatch, lambda path: "/full/" in path or "/.share." in path)
    (tmp_path / "full").mkdir()
    with pytest.raises(OSError) as raised:
        write_bytes_atomic(tmp_path / "full" / "a.bin", b"x")
    assert raised.value.filename == str(tmp_path / "full" / "a.bin")
    assert not list((tmp_path / "full").iterdir())  # no temporary file left
    err = _one_error(capsys, ["export", str(workspace), str(tmp_path / "share")])
    assert f"{tmp_path / 'share'}: the package could not be written (No space left on " \
           "device); nothing was exported" in err
    assert not (tmp_path / "share").exists() and not list(tmp_path.glob(".share.*"))


def test_a_full_database_disk_says_so_and_what_stands(tmp_path):
    with ReviewStore.open(tmp_path / "ws", create=True) as store:
        case = store.add_case("1.2.3")
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages}")  # the file can grow no more
        with pytest.raises(UpdpError, match=r"workspace.sqlite: database or disk is full "
                                            r"\(free space on its disk and run again; what was "
                                            r"recorded before stands\); nothing was recorded"):
            for _ in range(200):
                store.decide(case, "flag", reviewer="ann", comment="x" * 3000, override=True)
        assert store.cases()[0].case_id == case
