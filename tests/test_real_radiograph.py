"""A real chest radiograph through the whole product: the shipped filter never saw one like it,
so the case is marked out of domain, shown as such, refused by the export until a reviewer
accepts its original image, and the package is clean (pydicom-data's RG1_UNCR.dcm, fetched
once into the test-data cache; skipped when it cannot be fetched)."""

import json
import shutil

import pydicom
import pytest
from public_data import real_radiograph

from updp_napari.cli import main

REPORT = ("FINDINGS: Multiple round masses in both lungs.\n"
          "IMPRESSION: Pulmonary metastases likely. No pleural effusion.\n")


@pytest.fixture(scope="module")
def radiograph():
    path, why = real_radiograph()
    if path is None:
        pytest.skip(f"the real radiograph is not available: {why}")
    return path


@pytest.mark.slow
def test_a_real_radiograph_is_out_of_domain_and_leaves_only_as_its_accepted_original(
        radiograph, tmp_path, capsys):
    from updp_napari.ingest import display_image

    study = tmp_path / "in" / "study"
    study.mkdir(parents=True)
    shutil.copy(radiograph, study / "RG1_UNCR.dcm")
    (study / "report.txt").write_text(REPORT)
    image = display_image(study / "RG1_UNCR.dcm")
    assert image.shape == (1955, 1841)
    ws = tmp_path / "ws"
    assert main(["run", str(tmp_path / "in"), str(ws), "--threads", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 case(s) out of the filter's domain" in out
    (case_id,) = (line.split()[0] for line in out.splitlines() if "RG1_UNCR.dcm" in line)

    shot = tmp_path / "review.png"
    assert main(["review", str(ws), "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000

    package = tmp_path / "package"
    assert main(["decide", str(ws), case_id, "accept", "--reviewer", "ann"]) == 2
    assert main(["decide", str(ws), case_id, "accept", "--reviewer", "ann",
                 "--original-image"]) == 0
    capsys.readouterr()
    assert main(["export", str(ws), str(package), "-q"]) == 0
    manifest = json.loads((package / "manifest.json").read_text())
    (row,) = manifest["cases"]
    assert row["image"].startswith("original") and row["domain"]["distance"] > 1.0
    shared = pydicom.dcmread(package / "cases" / case_id / "image.dcm")
    original = pydicom.dcmread(study / "RG1_UNCR.dcm")
    assert (shared.Rows, shared.Columns) == (original.Rows, original.Columns)
    assert "PatientName" not in shared or str(shared.PatientName) != str(original.PatientName)

    originals = tmp_path / "originals" / "cases" / case_id
    originals.mkdir(parents=True)
    shutil.copy(study / "RG1_UNCR.dcm", originals / "image.dcm")
    capsys.readouterr()
    assert main(["scan-leaks", str(tmp_path / "originals"), str(package), "-q"]) == 0
    assert "clean" in capsys.readouterr().out
