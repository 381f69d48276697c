"""updp evaluate-utility: every section on a tiny cohort, and clear errors."""

import base64
import json

import pydicom
import pytest

from updp_napari.cli import main
from updp_napari.cohort.generate import make_cohort, read_ground_truth
from updp_napari.pipeline import run_pipeline
from updp_napari.review.store import ReviewStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_models):
    model, scorers = tiny_models
    root = tmp_path_factory.mktemp("lab")
    cohort, ws = root / "cohort", root / "ws"
    make_cohort(cohort, patients=12, studies=1, seed=31, size=128, sites=3)
    run_pipeline(cohort, ws, model=model, scorers=scorers, pixels="off")
    return cohort, ws


def test_every_section_in_json_and_html(lab, tmp_path, capsys):
    cohort, ws = lab
    out, page = tmp_path / "u.json", tmp_path / "report.html"
    rc = main(["evaluate-utility", str(cohort), "--workspace", str(ws), "--sites", "--seeds", "0,1",
               "--epochs", "1", "--size", "32", "--bootstrap", "20", "--json-out", str(out),
               "--html", str(page), "-q"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "counterparts - originals" in printed and "realism AUC" in printed
    result = json.loads(out.read_text())
    sites = sorted({r["site"] for r in read_ground_truth(cohort)})
    expected = {"originals", "counterparts"} | {f"{kind}:{s}" for s in sites
                                                for kind in ("local", "local+shared",
                                                             "local+shared-originals")}
    assert set(result["conditions"]) == expected
    for entry in result["conditions"].values():
        assert len(entry["per_seed_macro_auroc"]) == 2
        assert set(entry["per_finding"]) == set(result["cohort"]["labels"])
    parity = result["comparisons"]["counterparts_minus_originals"]
    assert parity["target"] and "interval_within_target" in parity
    assert set(result["comparisons"]["local_plus_shared_minus_local"]["per_site"]) == set(sites)
    cross = result["cross_site"]
    assert len(cross["macro_auroc"]) == len(sites) == len(cross["macro_auroc"][0])
    for name in ("originals", "counterparts"):
        for attr in ("sex", "age_group", "site", "group"):
            section = result["subgroups"][name][attr]
            assert {"auroc", "rates", "parity_positive_rate", "parity_accuracy",
                    "equalized_odds_difference"} <= set(section)
    assert set(result["subgroups"]["counterparts"]["group"]["auroc"]) <= {"g1", "g2"}
    assert "pearson" in result["subgroups"]["size_loss"]
    assert result["realism"]["folds"] == 3 and result["realism"]["pairs"] > 0
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3
    png = text.split("data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "report_figures").iterdir()) == \
        ["conditions.png", "cross_site.png", "subgroups.png"]


def test_a_workspace_of_another_cohort_is_refused(lab, tmp_path, capsys):
    cohort, ws = lab
    other = tmp_path / "other"
    make_cohort(other, patients=3, studies=1, seed=32, size=64, sites=1)
    assert main(["evaluate-utility", str(other), "--workspace", str(ws), "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds none of the studies" in err and "Traceback" not in err


def test_a_workspace_without_counterparts_is_refused(lab, tmp_path, capsys):
    cohort, _ = lab
    bare = tmp_path / "bare"
    with ReviewStore.open(bare, create=True) as store:
        for r in read_ground_truth(cohort):
            uid = pydicom.dcmread(cohort / r["image"], stop_before_pixels=True).StudyInstanceUID
            store.add_case(str(uid), site=r["site"])
    assert main(["evaluate-utility", str(cohort), "--workspace", str(bare), "-q"]) == 2
    assert "no synthetic counterpart" in capsys.readouterr().err
    assert main(["evaluate-utility", str(cohort), "--workspace", str(tmp_path / "none"), "-q"]) == 2
    assert main(["evaluate-utility", str(cohort), "--workspace", str(bare), "--seeds", "a", "-q"]) == 2
