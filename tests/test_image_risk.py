"""A synthetic image whose kept finding re-identifies beyond the filter's measured limit does
not leave: the case is accepted for its report only."""

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from review_fixtures import SAFE_RISK

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.review.artifacts import image_risk_verdict
from updp_napari.synth.evaluate import RISK_MIN_QUERIES, record_risk, risk_table

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
CARDIOMEGALY, EFFUSION, NODULE = 1, 2, 3  # values in the label image: FINDINGS[v - 1]


def _risky(*names):
    table = json.loads(json.dumps(SAFE_RISK))
    table["measured_on"] = {"seed": 8008}
    for name in names:
        table["per_finding"][name].update(top1=0.119, chance=0.01, ratio=11.9, queries=59,
                                          shareable=False)
    return table


def test_the_verdict_names_each_finding_that_may_not_leave_and_why():
    assert image_risk_verdict(None, []) is None  # nothing of the patient kept
    assert image_risk_verdict(_risky(), [CARDIOMEGALY, NODULE]) is None
    risk = image_risk_verdict(_risky("cardiomegaly"), [CARDIOMEGALY, EFFUSION])
    assert risk["findings"] == ["cardiomegaly"]
    assert "11.9x chance" in risk["reason"] and "59 studies" in risk["reason"]
    assert "cohort seed 8008" in risk["reason"]
    unmeasured = _risky()
    del unmeasured["per_finding"]["nodule"]
    assert image_risk_verdict(unmeasured, [NODULE])["reason"].startswith("nodule: not measured")
    none = image_risk_verdict(None, [EFFUSION])  # no table: cannot be shown safe
    assert none["findings"] == ["effusion"] and "no measured" in none["reason"]


def test_the_risk_table_comes_from_the_region_attack_per_finding(tmp_path):
    result = {"cohort": str(tmp_path), "studies": 300, "region_attack": {
        "attack": "low-pass", "chance": 0.01, "per_finding": {
            "cardiomegaly": {"queries": 59, "top1": 0.1186},
            "effusion": {"queries": 64, "top1": 0.0},
            "mass": {"queries": RISK_MIN_QUERIES - 1, "top1": 0.0},   # too few to tell
            "nodule": {"queries": 39, "top1": 0.02}}}}                # at twice chance
    per = risk_table(result)["per_finding"]
    assert [k for k, v in per.items() if v["shareable"]] == ["effusion", "nodule"]
    assert per["cardiomegaly"]["ratio"] == pytest.approx(11.86)
    folder = tmp_path / "filter"
    folder.mkdir()
    with pytest.raises(InputError, match="no readable filter card"):
        record_risk(folder, result)
    (folder / "updp_filter.json").write_text(json.dumps({"model": {"size": 32}}))
    record_risk(folder, result)
    card = json.loads((folder / "updp_filter.json").read_text())
    assert card["model"] == {"size": 32} and card["image_risk"]["per_finding"] == per


def test_a_case_keeping_a_risky_finding_leaves_as_its_report_alone(tiny_models, tmp_path, capsys):
    from updp_napari.review.store import WITHHELD, ReviewStore

    filt, scorers = tiny_models
    risky = tmp_path / "filter"
    shutil.copytree(filt, risky)
    card = json.loads((risky / "updp_filter.json").read_text())
    card["image_risk"] = _risky("cardiomegaly")
    (risky / "updp_filter.json").write_text(json.dumps(card))
    studies = tmp_path / "in"
    for name in ("p0002_s02", "p0000_s01"):  # cardiomegaly; atelectasis and a nodule
        shutil.copytree(SAMPLE / name, studies / name)
    ws = tmp_path / "ws"
    assert main(["run", str(studies), str(ws), "--filter-model", str(risky), "--scorers",
                 str(scorers), "-q"]) == 0
    with ReviewStore.open(ws) as store:
        from updp_napari.review.artifacts import CaseArtifacts

        verdicts = {c.case_id: CaseArtifacts(store, c.case_id).image_risk() for c in store.cases()}
        (heart,) = [c for c, v in verdicts.items() if v is not None]
        (other,) = [c for c, v in verdicts.items() if v is None]
        assert verdicts[heart]["findings"] == ["cardiomegaly"]
        with pytest.raises(UpdpError, match="--report-only"):
            store.decide(heart, "accept", reviewer="ann")
        with pytest.raises(InputError, match="is shareable"):
            store.decide(other, "accept", reviewer="ann", report_only=True)
        store.decide(other, "accept", reviewer="ann")
        store.decide(heart, "accept", reviewer="ann", report_only=True)
        assert store.shared_image(heart) == WITHHELD and store.shared_image(other) == "synthetic"
    capsys.readouterr()
    package = tmp_path / "package"
    assert main(["export", str(ws), str(package), "--no-ocr", "-q"]) == 0
    assert (package / "cases" / heart / "report.txt").is_file()
    assert not (package / "cases" / heart / "image.dcm").exists()
    assert pydicom.dcmread(package / "cases" / other / "image.dcm").Rows > 0
    rows = {r["case_id"]: r for r in json.loads((package / "manifest.json").read_text())["cases"]}
    assert rows[heart]["image"] == WITHHELD and rows[heart]["image_sha256"] == ""
    assert rows[heart]["image_risk"]["findings"] == ["cardiomegaly"]
    assert "carry their report alone" in (package / "README.txt").read_text()

    # An accept given before the risk was known does not leave with its image.
    with ReviewStore.open(ws) as store:
        store.decide(heart, "accept", reviewer="ann", override=True, report_only=True)
        store.decide(heart, "flag", reviewer="ann")
        from updp_napari.review.artifacts import put_json

        put_json(store, heart, "image_risk", {"table": SAFE_RISK})
        store.decide(heart, "accept", reviewer="ann")          # shareable then
        put_json(store, heart, "image_risk", {"table": _risky("cardiomegaly")})
    assert main(["export", str(ws), str(tmp_path / "again"), "--no-ocr", "-q"]) == 2
    assert "not shareable" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()
