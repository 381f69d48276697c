"""The audit on a real pipeline workspace and on the share package exported from it, and the
self-contained HTML audit report."""

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pydicom
import pytest
from test_date_shift import COLLIDING_KEY

from updp_napari.audit.report import load_evaluation, write_audit_report
from updp_napari.audit.session import AuditSession
from updp_napari.audit.stats import upper_bound
from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.review.session import ReviewSession

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
SECTIONS = ("1. The sample and how it was drawn", "2. Findings", "3. Rates and exact bounds",
            "4. Privacy and utility scores", "5. Re-identification and the privacy–utility curve",
            "6. Leak scan", "7. Configuration", "8. Model signatures", "9. Software versions")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_models):
    """The sample cohort through the pipeline, every case accepted and exported; then, in the
    workspace only, one patient name kept in one report (the package was exported clean)."""
    from updp_napari.export import export_package
    from updp_napari.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("audit")
    ws, package = root / "ws", root / "share"
    # A fixed key, the one whose keyed date shift would write a sample patient's exam date
    # onto itself read day-first (test_date_shift): the export's leak scan must stay clean.
    ws.mkdir(mode=0o700)
    (ws / "secret.key").write_text(COLLIDING_KEY.hex() + "\n")
    (ws / "secret.key").chmod(0o600)
    run_pipeline(SAMPLE, ws, model=tiny_models[0], scorers=tiny_models[1], pixels="off")
    with ReviewSession.open(ws, reviewer="rita") as session:
        cases = [c.case_id for c in session.cases()]
        for case in cases:
            session.go(case)
            session.decide("accept")
    export_package(ws, package, ocr=False)
    leaked = cases[5]
    with ReviewSession.open(ws, reviewer="rita") as session:
        session.go(leaked)
        name = next(s for s in session.current.spans if s.category == "NAME")
        session.toggle_span(name.span_id)
        name_text = session.current.report[name.start:name.end]
        reports = {c: session.case(c).report for c in cases}
    return {"ws": ws, "package": package, "cases": cases, "leaked": leaked, "name": name_text,
            "reports": reports}


def _header_values() -> set[str]:
    values = set()
    for path in sorted(SAMPLE.glob("*/image.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        values |= {str(ds.PatientName), str(ds.PatientID), str(ds.AccessionNumber)}
    return {v for v in values if len(v) >= 4}


def _phi_free(html: str, shared: dict) -> None:
    assert shared["name"] not in html
    for value in _header_values():
        assert value not in html
    for report in shared["reports"].values():  # no line of any original report
        for line in report.splitlines():
            if len(line.strip()) >= 25:
                assert line.strip() not in html


def _evaluation(tmp_path) -> Path:
    """An ``evaluate-filter --json`` result with the fields the report reads (figures made up
    for this test only, so their presence in the report can be checked)."""
    curve = [{"strength": s, "reid_auc_synthetic": a, "reid_auc_synthetic_other_studies": a,
              "closed_set_top1_synthetic": 0.1, "similarity_to_own_original": 0.2,
              "pathology_auc_synthetic": p, "pathology_auc_per_label_synthetic": {},
              "pathology_label_agreement": 0.9, "ssim_inside": 0.8, "ssim_outside": 0.3,
              "seconds_per_image": 0.01}
             for s, a, p in [(0.4, 0.8123, 0.7711), (1.0, 0.5432, 0.7011)]]
    data = {"cohort": "cohort", "studies": 24, "patients": 8, "size": 32,
            "filter": {"model_id": "tiny"}, "scorers": "scorers", "default_strength": 1.0,
            "reid_auc_original": 0.9876, "reid_auc_synthetic": 0.5432,
            "reid_auc_synthetic_other_studies": 0.5432, "closed_set_top1_original": 0.9,
            "closed_set_top1_synthetic": 0.1, "pathology_auc_original": 0.7811,
            "pathology_auc_synthetic": 0.7011, "pathology_auc_per_label_original": {},
            "ssim_inside": 0.8, "ssim_outside": 0.3, "curve": curve,
            "targets": {"reid_auc_original >= 0.95": {"value": 0.9876, "met": True},
                        "pathology_auc drop <= 0.02": {"value": 0.08, "met": False,
                                                       "ci95": [0.0412, 0.1234]}}}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(data))
    return path


def test_workspace_audit_surfaces_the_kept_name_and_reports_it(shared, tmp_path):
    ws, leaked = shared["ws"], shared["leaked"]
    with AuditSession.open(ws, auditor="ann") as audit:
        sample, _ = audit.draw(24, strata=("site", "category"), seed=4)
        assert sorted(sample.case_ids) == sorted(shared["cases"])
        assert {c.category for c in sample.cases} == {"not scanned"}  # run with --pixels off
        suspects = {cid: audit.view(cid).suspects for cid in sample.case_ids}
        assert [cid for cid, found in suspects.items() if found] == [leaked]
        hit = suspects[leaked][0]
        assert audit.view(leaked).report[hit.start:hit.end] == shared["name"]
        for cid in sample.case_ids:
            if cid == leaked:
                audit.mark("residual_phi", case_id=cid, span=(hit.start, hit.end),
                           category=hit.category, comment=f"kept: {shared['name']}")
            else:
                audit.mark("clean", case_id=cid)
        stats = audit.statistics()
    assert stats["residual_phi"]["events"] == 1 and stats["audited"] == 24
    assert stats["residual_phi"]["upper"] == pytest.approx(upper_bound(1, 24))
    out = tmp_path / "audit.html"
    assert main(["audit-report", str(ws), str(out), "--evaluation",
                 str(_evaluation(tmp_path))]) == 0
    html = out.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in html
    assert "Every case had about the same chance" in html  # the whole frame was drawn
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # bounds, scores, the privacy–utility curve
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert "@media print" in html
    assert f"{upper_bound(1, 24):.2%}" in html
    assert "0.988" in html and "0.543" in html  # the evaluation's figures, as given
    assert "0.080 (95 % interval 0.041 to 0.123, patients resampled)" in html
    assert "No leak scan: this is a workspace" in html
    assert "tiny untrained" in html  # the filter's signature
    for name in ("numpy", "scipy", "matplotlib", "python"):
        assert f"<td>{name}</td>" in html
    _phi_free(html, shared)  # the comment names the leak; the report must not


def test_package_audit_lives_beside_the_package_and_leaves_it_unchanged(shared, tmp_path):
    package = shared["package"]

    def digest():
        return {p.relative_to(package).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(package.rglob("*")) if p.is_file()}

    before = digest()
    with AuditSession.open(package, auditor="ann") as audit:
        assert audit.target.kind == "package"
        assert audit.audit_folder == package.parent / "share.audit"
        sample, _ = audit.draw(6, strata=("site",), seed=1)
        assert len(sample.case_ids) == 6 and len({c.site for c in sample.cases}) == 3
        # the manifest carries each case's category (this workspace ran with --pixels off)
        assert {c.category for c in sample.cases} == {"not scanned"}
        view = audit.view(sample.case_ids[0])
        # A package does not say where its stand-ins are: surrogate names are listed too.
        assert any(s.category == "NAME" for s in view.suspects)
        image = audit.image(sample.case_ids[0])
        assert image.ndim == 2 and 0.0 <= image.min() and image.max() <= 1.0
        audit.mark("residual_phi", case_id=sample.case_ids[0], box=(2, 2, 20, 12),
                   category="NAME")
        audit.mark("over_redaction", case_id=sample.case_ids[1])
        for cid in sample.case_ids[2:]:
            audit.mark("clean", case_id=cid)
        stats = audit.statistics()
    assert stats["residual_phi"]["events"] == 1 and stats["over_redaction"]["events"] == 1
    assert stats["residual_phi"]["upper"] == pytest.approx(upper_bound(1, 6))
    assert digest() == before and not (package / "audit").exists()
    with AuditSession.open(package, auditor="bob") as audit:  # reopened: the same findings
        assert len(audit.store.findings()) == 6
    out = tmp_path / "package-audit.html"
    write_audit_report(package, out)
    html = out.read_text(encoding="utf-8")
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["leak_scan"] in html
    assert "No evaluation was given" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 2
    _phi_free(html, shared)
    with pytest.raises(InputError, match="inside the share package"):
        write_audit_report(package, package / "audit.html")


def test_report_errors(shared, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"curve": "no"}))
    with pytest.raises(InputError, match="not the output of updp evaluate-filter"):
        load_evaluation(bad)
    with pytest.raises(InputError, match="no such file"):
        load_evaluation(tmp_path / "missing.json")
    copy = tmp_path / "ws"
    shutil.copytree(shared["ws"], copy, ignore=shutil.ignore_patterns("audit"))
    assert main(["audit-report", str(copy), str(tmp_path / "r.html")]) == 2
    with pytest.raises(InputError, match="no such folder to write"):
        write_audit_report(shared["ws"], tmp_path / "nowhere" / "r.html")


def test_the_report_says_when_strata_were_drawn_at_unequal_rates(shared, tmp_path):
    import shutil

    package = tmp_path / "share"
    shutil.copytree(shared["package"], package)
    with AuditSession.open(package, auditor="ann") as audit:
        audit.draw(4, strata=("site",), seed=2)  # 4 cases over 3 sites of 3, 9 and 12
    out = tmp_path / "unequal.html"
    assert main(["audit-report", str(package), str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "The chances differ" in html and "Every case had about the same chance" not in html
