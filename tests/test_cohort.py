"""The synthetic cohort: ground truth consistent with the files, identity, sites, determinism."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from updp_napari.cohort.generate import CohortError, make_cohort, read_ground_truth
from updp_napari.cohort.model import LABELS
from updp_napari.ingest import flatten_header, read_dicom


def test_layout_and_counts(cohort, records):
    assert len(records) == 24
    info = json.loads((cohort / "cohort.json").read_text())
    assert info["studies"] == 24 and info["seed"] == 11 and info["labels"] == list(LABELS)
    for r in records:
        assert (cohort / r["image"]).is_file()
        assert (cohort / r["report"]).is_file()
        assert r["image"] == f"{r['study_id']}/image.dcm"
    assert len({r["study_id"] for r in records}) == 24
    assert len({r["patient"] for r in records}) == 6


def test_every_span_text_is_at_its_offsets(cohort, records):
    for r in records:
        text = (cohort / r["report"]).read_text(encoding="utf-8")
        assert r["phi_spans"], r["study_id"]
        for span in r["phi_spans"]:
            assert text[span["start"]:span["end"]] == span["text"], (r["study_id"], span)


def test_masks_present_exactly_where_labels_are_positive(cohort, records):
    positives = 0
    for r in records:
        folder = cohort / r["study_id"]
        for label in LABELS:
            path = folder / f"mask_{label}.png"
            if r["labels"][label]:
                positives += 1
                assert r["masks"][label] == f"{r['study_id']}/mask_{label}.png"
                mask = np.asarray(Image.open(path)) > 0
                assert mask.shape == (256, 256)
                assert mask.any(), (r["study_id"], label)
            else:
                assert label not in r["masks"] and not path.exists(), (r["study_id"], label)
        assert {f["label"] for f in r["findings"]} == {k for k, v in r["labels"].items() if v}
    assert positives > 5


def test_findings_are_described_in_the_report(cohort, records):
    words = {"cardiomegaly": ("enlarged", "cardiomegaly"), "effusion": ("effusion",),
             "nodule": ("nodule",), "mass": ("mass",), "consolidation": ("consolidation",),
             "pneumothorax": ("pneumothorax",), "atelectasis": ("atelectasis",)}
    for r in records:
        text = (cohort / r["report"]).read_text(encoding="utf-8").lower()
        for finding in r["findings"]:
            assert any(w in text for w in words[finding["label"]]), (r["study_id"], finding)
            if finding["side"] in ("left", "right"):
                # The lingula is the left lung's middle zone; naming it names the side.
                assert finding["side"] in text or (finding["side"] == "left" and "lingula" in text)


def test_effusion_mask_is_denser_than_the_same_place_without_it(wide_cohort):
    """Masks line up with the pixels: a finding raises brightness where its mask says."""
    root, records = wide_cohort
    checked = 0
    for r in records:
        if not r["labels"]["effusion"]:
            continue
        img = read_dicom(root / r["image"], with_header=False)
        mask = np.asarray(Image.open(root / r["masks"]["effusion"])) > 0
        # The mirror image of the mask on the other side (healthy lung, or a smaller effusion).
        mirrored = mask[:, ::-1] & ~mask
        if r["findings"][[f["label"] for f in r["findings"]].index("effusion")]["side"] == "bilateral":
            continue
        if mirrored.sum() < 20:
            continue
        assert img.pixels[mask].mean() > img.pixels[mirrored].mean(), r["study_id"]
        checked += 1
    assert checked >= 2


def test_same_patient_shares_identity_traits(records):
    by_patient = {}
    for r in records:
        by_patient.setdefault(r["patient"], []).append(r)
    for studies in by_patient.values():
        first = studies[0]
        for s in studies[1:]:
            assert s["identity"] == first["identity"]
            assert s["site"] == first["site"]
            assert s["demographics"]["sex"] == first["demographics"]["sex"]
            assert s["acquisition"] != first["acquisition"]  # each study varies
    traits = [json.dumps(v[0]["identity"], sort_keys=True) for v in by_patient.values()]
    assert len(set(traits)) == len(traits)


def _features(root: Path, records) -> np.ndarray:
    feats = []
    for r in records:
        img = read_dicom(root / r["image"], with_header=False).pixels
        low, high = np.percentile(img, [1, 99])
        g = np.clip((img - low) / (high - low), 0, 1)
        k = g.shape[0] // 32
        f = g.reshape(32, k, 32, k).mean(axis=(1, 3)).ravel()
        feats.append((f - f.mean()) / f.std())
    return np.array(feats)


def test_identity_is_measurable_with_a_simple_image_distance(wide_cohort):
    root, records = wide_cohort
    feats = _features(root, records)
    patients = np.array([r["patient"] for r in records])
    dist = 1.0 - feats @ feats.T / feats.shape[1]
    same = patients[:, None] == patients[None, :]
    off = ~np.eye(len(patients), dtype=bool)
    mean_same, mean_other = dist[same & off].mean(), dist[~same].mean()
    assert mean_same < 0.6 * mean_other
    # Closed-set re-identification by nearest neighbour, far above chance (1/40).
    nearest = np.where(off, dist, np.inf).argmin(axis=1)
    accuracy = (patients[nearest] == patients).mean()
    assert accuracy > 10 / 40


def test_header_ground_truth_matches_the_files(cohort, records):
    for r in records:
        header = flatten_header(pydicom.dcmread(cohort / r["image"]))
        for path, value in r["header_phi"].items():
            assert header.get(path) == value, (r["study_id"], path)
        for needed in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                       "StudyDate", "InstitutionName", "InstitutionAddress",
                       "ReferringPhysicianName", "OperatorsName", "StationName",
                       "DeviceSerialNumber", "StudyInstanceUID",
                       "RequestAttributesSequence[0].RequestedProcedureID", "(0019,1010)"):
            assert needed in r["header_phi"], needed


def test_dicom_files_are_valid_radiographs(cohort, records, tmp_path):
    for r in records:
        ds = pydicom.dcmread(cohort / r["image"])
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID in ("1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1")
        assert ds.Modality in ("DX", "CR") and ds.Modality == r["modality"]
        assert ds.PhotometricInterpretation == r["photometric"]
        assert ds.BitsAllocated == 16 and ds.BitsStored in (12, 14, 16)
        assert ds.HighBit == ds.BitsStored - 1 and ds.PixelRepresentation == 0
        assert ds.SamplesPerPixel == 1 and (ds.Rows, ds.Columns) == (256, 256)
        assert float(ds.WindowWidth) > 0
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16 and pixels.max() <= (1 << ds.BitsStored) - 1
        assert pixels.std() > 0.05 * (1 << ds.BitsStored)  # an image, not a blank
        assert ds.BurnedInAnnotation == r["burned_in_annotation"]
        # Round trip: what pydicom writes back reads the same.
        out = tmp_path / "rt.dcm"
        ds.save_as(out, enforce_file_format=True)
        again = pydicom.dcmread(out)
        assert again == ds and np.array_equal(again.pixel_array, pixels)


def test_monochrome1_reads_the_same_way_up(cohort, records):
    """Lungs are dark and the spine bright in display orientation, whatever the photometric."""
    seen = set()
    for r in records:
        img = read_dicom(cohort / r["image"], with_header=False).pixels
        size = img.shape[0]
        centre = img[size // 3:size // 2, size // 2 - 4:size // 2 + 4].mean()
        lung = img[size // 3:size // 2, size // 5:size // 5 + 10].mean()
        assert centre > lung, r["study_id"]
        seen.add(r["photometric"])
    assert seen == {"MONOCHROME1", "MONOCHROME2"}


def test_burned_in_text_and_the_lying_header(wide_cohort):
    root, records = wide_cohort
    with_text = [r for r in records if r["burned_in_phi"]]
    assert with_text and len(with_text) < len(records)
    lying = [r for r in with_text if r["burned_in_annotation"] == "NO"]
    assert lying, "some files must claim no burned-in text although they carry it"
    corners = set()
    for r in with_text:
        categories = {b["category"] for b in r["burned_in"]}
        assert "NAME" in categories
        img = read_dicom(root / r["image"], with_header=False).pixels
        for b in r["burned_in"]:
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]
            corners.add((x0 < img.shape[1] // 2, y0 < img.shape[0] // 2))
            if b["category"] == "MRN":
                assert b["text"].endswith(r["header_phi"]["PatientID"])
    assert len(corners) >= 3
    for r in records:
        if not r["burned_in_phi"]:
            assert r["burned_in_annotation"] == "NO"
            assert all(not b["phi"] for b in r["burned_in"])


def test_headers_carry_phi_in_the_hard_places(wide_cohort):
    root, records = wide_cohort
    names_in_description = 0
    for r in records:
        ds = pydicom.dcmread(root / r["image"])
        assert ds.RequestAttributesSequence[0].AccessionNumber == ds.AccessionNumber
        block = ds.private_block(0x0019, "RIS LINK 2.1")
        assert block[0x10].value == ds.PatientID
        if "StudyDescription" in r["header_phi"]:
            names_in_description += 1
            assert ds.PatientName.family_name in ds.StudyDescription
    assert names_in_description > 0


def test_sites_differ_in_look_style_and_formats(wide_cohort):
    root, records = wide_cohort
    by_site = {}
    for r in records:
        by_site.setdefault(r["site"], []).append(r)
    assert len(by_site) == 5
    looks = set()
    first_lines = set()
    for rs in by_site.values():
        ds = pydicom.dcmread(root / rs[0]["image"])
        looks.add((ds.Modality, ds.PhotometricInterpretation, ds.BitsStored, ds.Manufacturer))
        first_lines.add((root / rs[0]["report"]).read_text(encoding="utf-8").splitlines()[0])
        institutions = {pydicom.dcmread(root / r["image"]).InstitutionName for r in rs}
        assert len(institutions) == 1
    assert len(looks) >= 4
    assert len(first_lines) >= 3


def test_demographics_and_ages_over_89(wide_cohort):
    _, records = wide_cohort
    sexes = {r["demographics"]["sex"] for r in records}
    assert sexes == {"F", "M"}
    for r in records:
        age = r["demographics"]["age"]
        assert 18 <= age < 110
        assert (age >= 90) == (r["demographics"]["age_group"] == "90+")
        aged = [s for s in r["phi_spans"] if s["category"] == "AGE"]
        if age < 90:
            assert not aged


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    make_cohort(tmp_path / "a", patients=2, studies=2, seed=3, size=128)
    make_cohort(tmp_path / "b", patients=2, studies=2, seed=3, size=128)
    make_cohort(tmp_path / "c", patients=2, studies=2, seed=4, size=128)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a["ground_truth.jsonl"] != c["ground_truth.jsonl"]
    assert a["p0000_s01/image.dcm"] != c["p0000_s01/image.dcm"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(patients=0, studies=1), "patients must be"),
    (dict(patients=1, studies=0), "studies must be"),
    (dict(patients=1, studies=1, size=100), "size must be"),
    (dict(patients=1, studies=1, sites=9), "sites must be"),
])
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(CohortError, match=message):
        make_cohort(tmp_path / "out", seed=0, **kwargs)


def test_non_empty_folder_needs_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(CohortError, match="not empty"):
        make_cohort(tmp_path, patients=1, studies=1, seed=0, size=64)
    make_cohort(tmp_path, patients=1, studies=1, seed=0, size=64, overwrite=True)
    assert (tmp_path / "keep.txt").exists() and len(read_ground_truth(tmp_path)) == 1


def test_ground_truth_reader_names_bad_files(tmp_path):
    with pytest.raises(CohortError, match="no ground truth"):
        read_ground_truth(tmp_path)
    (tmp_path / "ground_truth.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(CohortError, match="line 2"):
        read_ground_truth(tmp_path)
