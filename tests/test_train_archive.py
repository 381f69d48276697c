"""`updp train ARCHIVE`: every model from DICOM files and reports, no ground truth read."""

import json
import shutil
from pathlib import Path

from updp_napari.cli import main
from updp_napari.cohort.generate import read_ground_truth
from updp_napari.core.vocabulary import FINDINGS

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
TINY = ["--scorer-size", "32", "--reid-steps", "3", "--pathology-epochs", "1",
        "--filter-size", "32", "--filter-epochs", "1", "-q"]


def test_train_learns_from_reports_alone_and_resumes(tmp_path, capsys):
    truth = {r["study_id"]: r for r in read_ground_truth(SAMPLE)}
    archive = tmp_path / "archive"
    shutil.copytree(SAMPLE, archive)
    # No ground truth to read: the cohort's records and masks are gone.
    (archive / "ground_truth.jsonl").unlink()
    for mask in archive.rglob("mask_*.png"):
        mask.unlink()
    models = tmp_path / "models"
    assert main(["train", str(archive), "--out", str(models), "--site", "north",
                 "--region-rounds", "1", *TINY]) == 0
    out = capsys.readouterr().out
    assert "prepared 24 studies of 8 patients" in out and "cardiomegaly" in out
    records = read_ground_truth(models / "work")
    assert {r["site"] for r in records} == {"north"}
    assert all(len(r["patient"]) == 16 for r in records)  # keyed hashes, not the header's IDs
    # The labels are the reports', and they agree with the truth the run never saw.
    agree = [r["labels"][f] == truth[Path(r["image"]).parent.name]["labels"][f]
             for r in records for f in FINDINGS]
    assert sum(agree) / len(agree) >= 0.95
    assert any(r["masks"] for r in records)  # regions read from the reports
    assert (models / "scorers" / "reid").is_dir() and (models / "filter" / "updp_filter.json").is_file()
    # The classifier learnt from the regions, then again from the outlines its maps drew there.
    card = json.loads((models / "scorers" / "pathology" / "updp_scorer.json").read_text())
    assert card["training"]["regions"]["rounds"] == 1
    # A second run finds every stage done.
    assert main(["train", str(archive), "--out", str(models), "--json", *TINY[:-1]]) == 0
    assert set(json.loads(capsys.readouterr().out).values()) == {"skipped: done before"}
    # The models run the pipeline.
    one = tmp_path / "one"
    shutil.copytree(archive / "p0002_s02", one / "p0002_s02")
    assert main(["run", str(one), str(tmp_path / "ws"), "--filter-model", str(models / "filter"),
                 "--scorers", str(models / "scorers"), "--pixels", "off", "-q"]) == 0


def test_train_needs_reports(tmp_path, capsys):
    archive = tmp_path / "archive"
    for name in ("p0000_s01", "p0001_s01"):
        shutil.copytree(SAMPLE / name, archive / name)
        (archive / name / "report.txt").unlink()
    assert main(["train", str(archive), "--out", str(tmp_path / "m"), *TINY]) == 2
    assert "at least two patients with reports" in capsys.readouterr().err
