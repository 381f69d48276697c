"""Finding studies: images with their reports (study folder, accession, UID, manifest)."""

import shutil
from pathlib import Path

import pydicom
import pytest

from updp_napari.core.errors import InputError
from updp_napari.studies import find_studies

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_a_cohort_gives_every_study_with_report_masks_and_site():
    found = find_studies(SAMPLE)
    assert len(found.studies) == 24 and not found.skipped
    first = found.studies[0]
    assert first.report == SAMPLE / "p0000_s01" / "report.txt"
    assert set(first.masks) == {"nodule", "atelectasis"} and first.site
    assert len({s.study_uid for s in found.studies}) == 24


def test_reports_are_matched_by_accession_or_uid_or_manifest(tmp_path):
    flat = tmp_path / "archive"
    (flat / "images").mkdir(parents=True)
    (flat / "reports").mkdir()
    for n, folder in enumerate(["p0000_s01", "p0000_s02", "p0001_s01"]):
        image = flat / "images" / f"img{n}.dcm"
        shutil.copy(SAMPLE / folder / "image.dcm", image)
        ds = pydicom.dcmread(image, stop_before_pixels=True)
        stem = ds.AccessionNumber if n != 1 else ds.StudyInstanceUID
        if n < 2:
            shutil.copy(SAMPLE / folder / "report.txt", flat / "reports" / f"{stem}.txt")
    (flat / "images" / "notes.dcm").write_bytes(b"not dicom at all")
    found = find_studies(flat)
    by_name = {s.name: s for s in found.studies}
    assert by_name["images/img0.dcm"].report.parent.name == "reports"
    assert by_name["images/img1.dcm"].report is not None
    assert by_name["images/img2.dcm"].report is None  # no report: a case without text
    assert found.skipped == [("images/notes.dcm", "not a readable DICOM file")]

    manifest = flat / "manifest.csv"
    manifest.write_text("image,report\nimages/img2.dcm,reports/none.txt\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: report file not found"):
        find_studies(flat, manifest)
    manifest.write_text("image,report\nimages/img2.dcm,\nimages/img0.dcm,reports/x.txt\n")
    (flat / "reports" / "x.txt").write_text("text", encoding="utf-8")
    found = find_studies(flat, manifest)
    assert [s.name for s in found.studies] == ["images/img0.dcm", "images/img2.dcm"]
    assert found.studies[0].report.name == "x.txt"


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        find_studies(tmp_path / "missing")
    (tmp_path / "file.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder"):
        find_studies(tmp_path / "file.dcm")
    with pytest.raises(InputError, match="no studies found.*1 files could not be used"):
        find_studies(tmp_path)
    (tmp_path / "file.dcm").unlink()
    with pytest.raises(InputError, match="no studies found"):
        find_studies(tmp_path)


def test_symbolic_links_are_left_out_unless_followed(tmp_path):
    src, outside = tmp_path / "in", tmp_path / "outside"
    shutil.copytree(SAMPLE / "p0000_s01", src / "a")
    shutil.copytree(SAMPLE / "p0001_s01", outside / "b")
    shutil.copytree(SAMPLE / "p0002_s01", src / "c")
    (src / "c" / "report.txt").unlink()
    (src / "c" / "report.txt").symlink_to(outside / "b" / "report.txt")
    (src / "linked").symlink_to(outside, target_is_directory=True)
    (src / "x.dcm").symlink_to(outside / "b" / "image.dcm")
    found = find_studies(src)
    assert [s.name for s in found.studies] == ["a/image.dcm"]
    reasons = dict(found.skipped)
    assert set(reasons) == {"c/image.dcm", "linked", "x.dcm"}
    assert all("symbolic link" in r for r in reasons.values())
    followed = find_studies(src, follow_symlinks=True)
    # x.dcm and linked/b/image.dcm are one file: one case
    assert len(followed.studies) == 3
    assert followed.skipped == [("x.dcm", "the same image as linked/b/image.dcm")]
