"""Regions to preserve from the report's words, for studies without mask files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from updp_napari.core.vocabulary import FINDINGS
from updp_napari.labels.regions import RegionHint, hint_mask, report_region_hints, report_regions

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.mark.parametrize("text,hints", [
    ("Subsegmental atelectasis at the left base.", [("atelectasis", ("left",), "base")]),
    ("Moderate left apical pneumothorax.", [("pneumothorax", ("left",), "apex")]),
    ("Large bilateral pleural effusions.", [("effusion", ("left", "right"), "base")]),
    ("A 5.1 cm mass in the right upper lobe.", [("mass", ("right",), "upper")]),
    ("Small right pleural effusion.", [("effusion", ("right",), "base")]),   # effusion: base
    ("There is a right pneumothorax.", [("pneumothorax", ("right",), "upper")]),
    ("Mild cardiomegaly.", [("cardiomegaly", ("left", "right"), None)]),
    ("No pleural effusion or pneumothorax. No focal consolidation.", []),
])
def test_each_affirmed_finding_gets_the_side_and_level_of_its_sentence(text, hints):
    assert [(h.finding, h.sides, h.level) for h in report_region_hints(text)] == hints


def test_the_patients_left_is_the_images_right_and_levels_stack():
    left_base = hint_mask(RegionHint("atelectasis", ("left",), "base"), (100, 100))
    cols, rows = np.nonzero(left_base.any(axis=0))[0], np.nonzero(left_base.any(axis=1))[0]
    assert cols.min() >= 48 and rows.min() > 40
    apex = hint_mask(RegionHint("nodule", ("right",), "apex"), (100, 100))
    assert np.nonzero(apex.any(axis=0))[0].max() < 53 and np.nonzero(apex.any(axis=1))[0].max() < 40
    labels = report_regions("Moderate cardiomegaly. Small left pleural effusion.", (64, 64))
    assert set(np.unique(labels)) == {0, FINDINGS.index("cardiomegaly") + 1,
                                      FINDINGS.index("effusion") + 1}


def test_the_regions_cover_the_findings_the_report_names(records, cohort):
    covered = []
    for rec in records:
        text = (cohort / rec["image"]).parent.joinpath("report.txt").read_text()
        hints = report_region_hints(text)
        for finding, mask_file in rec.get("masks", {}).items():
            with Image.open(cohort / mask_file) as im:
                truth = np.asarray(im.convert("L")) > 0
            mine = [h for h in hints if h.finding == finding]
            assert mine, f"{rec['study_id']}: {finding} not read from its report"
            region = np.logical_or.reduce([hint_mask(h, truth.shape) for h in mine])
            covered.append((region & truth).sum() / truth.sum())
    assert len(covered) >= 10 and np.mean(covered) >= 0.9


def test_a_study_without_mask_files_keeps_what_its_report_names(tiny_models, tmp_path):
    from updp_napari.pipeline import run_pipeline
    from updp_napari.review.session import ReviewSession

    model, scorers = tiny_models
    study = tmp_path / "in" / "s"
    shutil.copytree(SAMPLE / "p0002_s02", study)  # cardiomegaly
    for mask in study.glob("mask_*.png"):
        mask.unlink()
    run_pipeline(tmp_path / "in", tmp_path / "ws", model=model, scorers=scorers, pixels="off")
    with ReviewSession.open(tmp_path / "ws", reviewer="t") as session:
        case = session.case(session.cases()[0].case_id)
        assert case.signature("preserve_mask")["source"] == "report"
        assert FINDINGS.index("cardiomegaly") + 1 in np.unique(case.preserve_mask)
