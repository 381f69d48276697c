"""The napari reader and sample data, through napari itself."""

import numpy as np
import pytest

from updp_napari._reader import napari_get_reader, read_path
from updp_napari.core.errors import InputError


def test_get_reader_claims_only_what_it_reads(cohort, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path)) is None  # a folder without images
    assert callable(napari_get_reader(str(cohort / "p0000_s01" / "image.dcm")))
    assert callable(napari_get_reader(str(cohort)))
    assert callable(napari_get_reader([str(cohort / "p0000_s01")]))


def test_study_folder_gives_image_masks_report_and_header(cohort, records):
    record = next(r for r in records if r["masks"])
    layers = read_path(cohort / record["study_id"])
    (data, meta, kind) = layers[0]
    assert kind == "image" and data.shape == (256, 256)
    assert meta["metadata"]["report"] == (cohort / record["report"]).read_text(encoding="utf-8")
    assert meta["metadata"]["header"]["PatientID"] == record["header_phi"]["PatientID"]
    low, high = meta["contrast_limits"]
    assert low < np.median(data) < high
    labels, lmeta, lkind = layers[1]
    assert lkind == "labels"
    present = {lmeta["metadata"]["labels"][int(v)] for v in np.unique(labels) if v}
    assert present <= set(record["masks"]) and present


def test_cohort_folder_stacks_studies(cohort, records):
    layers = read_path(cohort)
    data, meta, kind = layers[0]
    assert kind == "image" and data.shape == (len(records), 256, 256)
    names = [s["name"] for s in meta["metadata"]["studies"]]
    assert names == [r["study_id"] for r in records]
    # Every study sits in the same display range whatever its bit depth.
    assert meta["contrast_limits"] == (0.0, 1.0)
    medians = np.median(data.reshape(len(records), -1), axis=1)
    assert ((medians > 0.05) & (medians < 0.95)).all()
    labels = layers[1][0]
    for i, r in enumerate(records):
        assert bool(labels[i].any()) == bool(r["masks"])


def test_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 10)
    reader = napari_get_reader(str(bad))
    with pytest.raises(InputError, match="broken.dcm: not a DICOM file"):
        reader(str(bad))


@pytest.mark.gui
def test_napari_opens_a_file_and_a_cohort(make_napari_viewer, cohort, records):
    viewer = make_napari_viewer()
    layers = viewer.open(str(cohort / "p0000_s01" / "image.dcm"), plugin="updp-napari")
    assert layers[0].data.shape == (256, 256)
    assert layers[0].metadata["header"]["PatientID"] == records[0]["header_phi"]["PatientID"]
    viewer.layers.clear()
    layers = viewer.open(str(cohort), plugin="updp-napari")
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds[0] == "Image" and layers[0].data.shape[0] == len(records)
    if any(r["masks"] for r in records):
        assert "Labels" in kinds
    # The screen shows a radiograph: something bright and something dark.
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.std() > 10


@pytest.mark.gui
def test_sample_data_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("updp-napari", "cohort")
    assert viewer.layers[0].data.ndim == 3 and viewer.layers[0].data.shape[0] >= 20
    assert viewer.layers[0].metadata["studies"][0]["report"]
