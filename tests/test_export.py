"""updp export: accepted cases only, synthetic pixels, manifest, and the leak gate."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from updp_napari.cli import main
from updp_napari.core.errors import UpdpError
from updp_napari.export import LeakFound, export_package
from updp_napari.ingest import display_image
from updp_napari.pipeline import run_pipeline
from updp_napari.review.session import ReviewSession

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
STUDIES = ["p0000_s01", "p0001_s01", "p0002_s02"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_models):
    model, scorers = tiny_models
    root = tmp_path_factory.mktemp("export")
    for study in STUDIES:
        shutil.copytree(SAMPLE / study, root / "in" / study)
    run_pipeline(root / "in", root / "ws", model=model, scorers=scorers, pixels="ocr")
    return root / "ws"


def test_only_accepted_cases_leave_with_synthetic_pixels_and_a_manifest(workspace, tmp_path, capsys):
    with ReviewSession.open(workspace, reviewer="ann") as session:
        cases = [c.case_id for c in session.cases()]
        session.go(cases[0])
        session.decide("accept")
        session.go(cases[1])
        session.decide("reject")
        synthetic = session.case(cases[0]).synthetic
        redacted = session.case(cases[0]).redacted
    out = tmp_path / "package"
    assert main(["export", str(workspace), str(out), "-q"]) == 0
    assert "exported 1 accepted case(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "cases").iterdir()) == [cases[0]]
    image = out / "cases" / cases[0] / "image.dcm"
    ds = pydicom.dcmread(image)
    assert ds.PatientIdentityRemoved == "YES" and "DERIVED" in ds.ImageType
    # The pixels are the synthetic image, stored the way the original stored its own.
    assert np.abs(display_image(image) - synthetic).max() < 0.01
    assert (out / "cases" / cases[0] / "report.txt").read_text(encoding="utf-8") == redacted
    manifest = json.loads((out / "manifest.json").read_text())
    row = manifest["cases"][0]
    assert row["case_id"] == cases[0] and row["decision"] == "accept" and row["reviewer"] == "ann"
    assert row["marks"].startswith("side markers (L/R) and other burned-in marks are not carried")
    assert row["image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert "clean" in manifest["leak_scan"] and row["synthesis"]
    with (out / "manifest.csv").open() as fh:
        assert [r["case_id"] for r in csv.DictReader(fh)] == [cases[0]]
    assert not list(out.rglob("secret.key")) and not list(out.rglob("*.sqlite"))
    # The package is a new folder: never written over.
    with pytest.raises(UpdpError, match="already exists"):
        export_package(workspace, out)


def test_a_name_the_reviewer_let_through_stops_the_export(workspace, tmp_path):
    with ReviewSession.open(workspace, reviewer="ann") as session:
        case = session.case(session.cases()[2].case_id)
        session.go(case.case_id)
        names = [s for s in case.spans if s.category == "NAME" and s.action == "redact"]
        assert names
        for span in names:
            session.toggle_span(span.span_id)  # a reviewer wrongly keeps every name
        session.decide("accept")
    out = tmp_path / "leaky"
    with pytest.raises(LeakFound, match="report") as caught:
        export_package(workspace, out, ocr=False)
    assert not caught.value.report.clean
    assert not out.exists() and not list(tmp_path.glob(".leaky.*"))
    assert main(["export", str(workspace), str(tmp_path / "again"), "--no-ocr", "-q"]) == 1


def test_nothing_accepted_is_a_clear_error(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    shutil.copytree(SAMPLE / STUDIES[0], tmp_path / "in" / STUDIES[0])
    run_pipeline(tmp_path / "in", tmp_path / "ws", model=model, scorers=scorers, pixels="off")
    assert main(["export", str(tmp_path / "ws"), str(tmp_path / "out")]) == 2
    assert "no accepted cases" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "in"), str(tmp_path / "out")]) == 2


def test_an_export_killed_mid_way_is_cleared_by_the_next(workspace, tmp_path):
    """SIGKILL after the first case: the half-built package beside OUT and the originals'
    copies (in the workspace, never in $TMPDIR) stay behind until the next export clears them."""
    import os
    import subprocess
    import sys

    with ReviewSession.open(workspace, reviewer="ann") as session:
        session.go(session.cases()[0].case_id)
        session.decide("accept")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    out = tmp_path / "killed"
    child = ("import os, signal, sys\n"
             "from updp_napari.export import export_package\n"
             "def die(done, total):\n"
             "    os.kill(os.getpid(), signal.SIGKILL)\n"
             "export_package(sys.argv[1], sys.argv[2], ocr=False, progress=die)\n")
    run = subprocess.run([sys.executable, "-c", child, str(workspace), str(out)],
                         env={**os.environ, "TMPDIR": str(tmpdir)}, capture_output=True)
    assert run.returncode == -9
    left = list((workspace / "tmp").glob("export-*"))
    assert left and list(left[0].rglob("*.dcm"))  # the originals' copies, in the workspace
    assert oct(left[0].stat().st_mode & 0o777) == "0o700"
    assert list(tmp_path.glob(".killed.*")) and not list(tmpdir.iterdir())
    try:  # an earlier test may have accepted a case whose names the gate stops
        export_package(workspace, tmp_path / "next", ocr=False)
    except LeakFound:
        pass
    assert not list((workspace / "tmp").glob("export-*"))
    assert not list(tmp_path.glob(".killed.*")) and not out.exists()


def test_a_case_the_audit_found_phi_in_is_not_exported_until_decided_again(tmp_path,
                                                                           tiny_models):
    model, scorers = tiny_models
    shutil.copytree(SAMPLE / STUDIES[0], tmp_path / "in" / STUDIES[0])
    ws = tmp_path / "ws"
    run_pipeline(tmp_path / "in", ws, model=model, scorers=scorers, pixels="off")
    with ReviewSession.open(ws, reviewer="ann") as session:
        case = session.cases()[0].case_id
        session.go(case)
        session.decide("accept")
    assert main(["audit", str(ws), "--sample", "1", "--seed", "1", "--auditor", "ian",
                 "--list"]) == 0
    assert main(["audit-mark", str(ws), case, "residual-phi", "--span", "0:4", "--category",
                 "NAME", "--auditor", "ian"]) == 0
    with pytest.raises(UpdpError, match="residual-PHI finding of the audit"):
        export_package(ws, tmp_path / "blocked", ocr=False)
    assert not (tmp_path / "blocked").exists()
    with ReviewSession.open(ws, reviewer="ann") as session:
        session.go(case)
        session.decide("accept")  # reviewed again after the finding
    assert export_package(ws, tmp_path / "share", ocr=False).cases == [case]
