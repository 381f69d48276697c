"""DICOM header de-identification: profile actions, sequences, private blocks, UIDs, dates."""

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from updp_napari.cli import main
from updp_napari.core.keys import date_shift_days
from updp_napari.deid.dicom import DicomDeidentifier, deidentify_tree
from updp_napari.deid.header import (
    DEFAULT_OPTIONS,
    HeaderDeidentifier,
    cap_age,
    parse_options,
    profile_table,
)
from updp_napari.deid.report import ReportDeidentifier
from updp_napari.deid.report.header_values import header_identifiers

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _first(cohort, records, **where):
    for r in records:
        if all(r[k] == v for k, v in where.items()):
            return Path(cohort) / r["image"], r
    raise LookupError(where)


def _deid(path, options=DEFAULT_OPTIONS, key=KEY):
    ds = pydicom.dcmread(path)
    original = pydicom.dcmread(path)
    ident = header_identifiers(original)
    reports = ReportDeidentifier(use_plugins=False)
    deid = HeaderDeidentifier(key, options,
                              clean_text=lambda t, ids: reports.deidentify(t, ids, mode="tag").text)
    result = deid.apply(ds, ident.patient_key)
    return original, ds, result


def test_the_table_is_annex_e():
    table = profile_table()
    assert len(table.exact) > 300
    assert table.rule(0x00100010).basic == "Z"  # Patient's Name
    assert table.rule(0x00101040).basic == "X"  # Patient's Address
    assert table.rule(0x0020000D).basic == "U"  # Study Instance UID
    assert table.rule(0x00081030).options.get("clean_descriptors") == "C"  # Study Description
    assert table.rule(0x50001234) is not None  # (50XX,XXXX) curve data, by mask


def test_every_action_kind(cohort, records):
    path, record = _first(cohort, records)
    original, ds, result = _deid(path)
    acts = result.actions
    # X: removed
    assert "PatientAddress" not in ds and acts["PatientAddress"] == "X"
    assert "PatientTelephoneNumbers" not in ds
    # Z → keyed stand-in (D) for the identifiers that keep studies of one patient together
    assert ds.PatientID.startswith("PT-") and ds.PatientID != original.PatientID
    assert str(ds.PatientName) == ds.PatientID
    assert ds.AccessionNumber.startswith("AC-")
    # Z: emptied
    assert ds.ReferringPhysicianName == "" and acts["ReferringPhysicianName"] == "Z"
    # D: a dummy where the table asks for a value
    assert any(a == "D" for a in acts.values())
    # C: dates moved by the patient's shift, descriptors cleaned
    shift = date_shift_days(KEY, header_identifiers(original).patient_key)
    moved = dt.datetime.strptime(original.StudyDate, "%Y%m%d") + dt.timedelta(days=shift)
    assert ds.StudyDate == moved.strftime("%Y%m%d") and acts["StudyDate"] == "C"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    # K: patient characteristics kept, as asked; device identity only when asked
    assert ds.PatientSex == original.PatientSex and acts["PatientSex"] == "K"
    assert "DeviceSerialNumber" not in ds or ds.DeviceSerialNumber != original.DeviceSerialNumber
    _, kept, _ = _deid(path, options=parse_options("default,retain-device-identity"))
    assert kept.DeviceSerialNumber == original.DeviceSerialNumber
    # Times kept to the hour only
    assert ds.StudyTime == original.StudyTime[:2] + "0000"
    # U: UIDs remapped under 2.25, standard UIDs untouched
    assert ds.StudyInstanceUID.startswith("2.25.") and len(ds.StudyInstanceUID) <= 64
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    assert ds.SOPClassUID == original.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # The method is written down, with the CID 7050 codes of what was applied
    assert ds.PatientIdentityRemoved == "YES"
    codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113107", "113105", "113108", "113111", "113101"}
    assert all(item.CodingSchemeDesignator == "DCM" for item in ds.DeidentificationMethodCodeSequence)
    # Pixels untouched by the header step
    assert ds.PixelData == original.PixelData


def test_basic_profile_alone_removes_what_options_would_keep(cohort, records):
    path, _ = _first(cohort, records)
    original, ds, result = _deid(path, options=())
    assert "DeviceSerialNumber" not in ds or ds.DeviceSerialNumber != original.DeviceSerialNumber
    assert ds.StudyDate != original.StudyDate  # no shift option: emptied or a dummy
    assert {i.CodeValue for i in ds.DeidentificationMethodCodeSequence} == {"113100"}
    assert "LongitudinalTemporalInformationModified" not in ds or \
        ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_descriptors_are_cleaned_not_dropped(cohort, records):
    path, _ = _first(cohort, records)
    ds = pydicom.dcmread(path)
    ds.StudyDescription = f"CHEST PA - {str(ds.PatientName).split('^')[0]} pneumothorax"
    ds.save_as(path.parent / "described.dcm")
    original, out, _ = _deid(path.parent / "described.dcm")
    last = str(original.PatientName).split("^")[0]
    assert last not in out.StudyDescription and last.lower() not in out.StudyDescription.lower()
    assert "CHEST PA" in out.StudyDescription and "pneumothorax" in out.StudyDescription
    (path.parent / "described.dcm").unlink()


def test_nested_sequences_at_any_depth(cohort, records):
    path, _ = _first(cohort, records)
    ds = pydicom.dcmread(path)
    inner = Dataset()
    inner.PatientName = ds.PatientName
    inner.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    inner.ReferencedSOPClassUID = ds.SOPClassUID
    ds.RequestAttributesSequence[0].ReferencedStudySequence = [inner]
    ds.save_as(path.parent / "nested.dcm")
    original, out, result = _deid(path.parent / "nested.dcm")
    (path.parent / "nested.dcm").unlink()
    request = out.RequestAttributesSequence[0]
    assert request.AccessionNumber.startswith("AC-")
    assert request.AccessionNumber == out.AccessionNumber  # the same value, the same stand-in
    assert "OtherPatientIDsSequence" not in out  # X on a sequence removes it whole
    deep = request.ReferencedStudySequence[0]
    assert str(deep.PatientName) != str(original.PatientName)
    assert deep.ReferencedSOPInstanceUID == out.SOPInstanceUID  # references stay consistent
    assert deep.ReferencedSOPClassUID == original.SOPClassUID
    assert "RequestAttributesSequence[0].ReferencedStudySequence[0].PatientName" in result.actions


def test_private_blocks(cohort, records):
    path, _ = _first(cohort, records)
    _, out, result = _deid(path)
    block = [e for e in out if e.tag.group == 0x0019]
    kept = {e.tag.element & 0xFF for e in block if not e.tag.is_private_creator}
    assert kept == {0x12}  # the allow-listed exposure index; the MRN and name are gone
    assert result.actions["(0019,1010)"] == "X" and result.actions["(0019,1011)"] == "X"
    _, out, _ = _deid(path, options=parse_options("default,no-retain-safe-private"))
    assert not [e for e in out if e.tag.group == 0x0019]  # creator gone with its block


def test_uids_are_consistent_across_files_and_runs_and_keyed(cohort, records, tmp_path):
    path, _ = _first(cohort, records)
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()  # a second image of the same series
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(tmp_path / "second.dcm")
    _, a, _ = _deid(path)
    _, again, _ = _deid(path)
    _, b, _ = _deid(tmp_path / "second.dcm")
    _, other, _ = _deid(path, key=OTHER_KEY)
    assert a.StudyInstanceUID == b.StudyInstanceUID == again.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID == again.SOPInstanceUID != b.SOPInstanceUID
    assert other.StudyInstanceUID != a.StudyInstanceUID
    assert pydicom.uid.UID(a.StudyInstanceUID).is_valid


def test_date_shift_is_the_one_the_report_step_uses(cohort, records):
    path, record = _first(cohort, records)
    original, ds, _ = _deid(path)
    ident = header_identifiers(original)
    report_date = dt.datetime.strptime(original.StudyDate, "%Y%m%d").strftime("%m/%d/%Y")
    text = f"Comparison: chest radiograph of {report_date}."
    red = ReportDeidentifier(use_plugins=False).deidentify(text, ident, mode="surrogate", key=KEY)
    shifted = dt.datetime.strptime(ds.StudyDate, "%Y%m%d").strftime("%m/%d/%Y")
    assert shifted in red.text


def test_age_over_89_is_capped():
    assert cap_age("093Y") == "090Y" and cap_age("089Y") == "089Y" and cap_age("012M") == "012M"


def test_unknown_option_is_a_clear_error():
    with pytest.raises(Exception, match="unknown de-identification option"):
        parse_options("default,retain-everything")


def test_folder_with_a_corrupt_file_goes_on(cohort, tmp_path, records):
    src = tmp_path / "in"
    for r in records[:3]:
        target = src / r["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(cohort) / r["image"], target)
    (src / "garbage.dcm").write_bytes(b"\x00" * 300 + b"not dicom at all")
    good = Path(cohort) / records[3]["image"]
    (src / "truncated.dcm").write_bytes(good.read_bytes()[:2000])
    record_path = tmp_path / "ws" / "record.jsonl"
    records_out = deidentify_tree(src, tmp_path / "out", DicomDeidentifier(KEY, pixels="off"),
                                  record_path=record_path)
    by_file = {r.file: r for r in records_out}
    assert by_file["garbage.dcm"].status == "skipped" and "DICOM" in by_file["garbage.dcm"].reason
    assert by_file["truncated.dcm"].status == "skipped"
    assert sum(r.status == "ok" for r in records_out) == 3
    for r in records[:3]:
        assert pydicom.dcmread(tmp_path / "out" / r["image"]).PatientIdentityRemoved == "YES"
    logged = [json.loads(line) for line in record_path.read_text().splitlines()]
    assert {entry["file"] for entry in logged} == set(by_file)
    assert os.stat(record_path).st_mode & 0o777 == 0o600
    # It names the original files: it stays in the workspace, out of the shared folder.
    assert not [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".jsonl", ".json")]
    text = record_path.read_text()
    original = pydicom.dcmread(Path(cohort) / records[0]["image"])
    assert str(original.PatientID) not in text and original.PatientName.family_name not in text


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm", "JPGExtended.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_input(tmp_path, name):
    src = TEST_FILES / name
    original = pydicom.dcmread(src)
    # Header only: the compressed pixel data is copied untouched.
    rec = DicomDeidentifier(KEY, pixels="off").deidentify_file(src, tmp_path / "h.dcm", name)
    assert rec.status == "ok", rec.reason
    out = pydicom.dcmread(tmp_path / "h.dcm")
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.PixelData == original.PixelData
    # With the pixel scan: decoded, scanned, written uncompressed, the image unchanged.
    rec = DicomDeidentifier(KEY, pixels="ocr").deidentify_file(src, tmp_path / "p.dcm", name)
    assert rec.status == "ok", rec.reason
    out = pydicom.dcmread(tmp_path / "p.dcm")
    assert not out.file_meta.TransferSyntaxUID.is_compressed
    if not rec.pixels["boxes"]:
        np.testing.assert_array_equal(out.pixel_array, original.pixel_array)


@pytest.mark.parametrize("name", ["SC_rgb_jpeg.dcm", "SC_rgb_rle_2frame.dcm",
                                  "examples_ybr_color.dcm"])
def test_colour_images_are_scanned(tmp_path, name):
    rec = DicomDeidentifier(KEY, pixels="ocr").deidentify_file(TEST_FILES / name,
                                                                tmp_path / "c.dcm", name)
    assert rec.status == "ok" and rec.pixels["scanned"], rec.reason
    out = pydicom.dcmread(tmp_path / "c.dcm")
    assert out.pixel_array.shape == pydicom.dcmread(TEST_FILES / name).pixel_array.shape


def test_undecodable_pixels_are_refused_with_the_reason(tmp_path):
    # pydicom's own sample of a JPEG stream no decoder accepts.
    deid = DicomDeidentifier(KEY, pixels="ocr")
    rec = deid.deidentify_file(TEST_FILES / "JPEG-lossy.dcm", tmp_path / "x.dcm", "JPEG-lossy.dcm")
    assert rec.status == "skipped" and "could not be decoded" in rec.reason
    assert not (tmp_path / "x.dcm").exists()


def test_burned_in_text_flagged_no_is_found(cohort, records, tmp_path):
    path, record = _first(cohort, records, burned_in_phi=True, burned_in_annotation="NO")
    rec = DicomDeidentifier(KEY, pixels="ocr").deidentify_file(path, tmp_path / "o.dcm", "o.dcm")
    assert rec.status == "ok" and rec.pixels["scanned"] and rec.pixels["boxes"]
    before = pydicom.dcmread(path).pixel_array
    after = pydicom.dcmread(tmp_path / "o.dcm").pixel_array
    changed = before != after
    assert changed.any() and changed.mean() < 0.2  # text filled, the image otherwise kept
    trusting = DicomDeidentifier(KEY, pixels="ocr", trust_burned_in_no=True)
    rec = trusting.deidentify_file(path, tmp_path / "t.dcm", "t.dcm")
    assert rec.pixels == {"scanned": False, "reason": "BurnedInAnnotation is NO (trusted)"}


def test_cli_mirrors_paths_and_keeps_the_workspace_private(cohort, tmp_path, capsys):
    out, ws = tmp_path / "out", tmp_path / "ws"
    assert main(["deid-dicom", str(cohort), str(out), "--pixels", "off", "--workspace", str(ws),
                 "-q"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    expected = sorted(p.relative_to(cohort).as_posix() for p in Path(cohort).rglob("*.dcm"))
    assert written == expected
    assert os.stat(ws).st_mode & 0o777 == 0o700
    assert os.stat(ws / "secret.key").st_mode & 0o777 == 0o600
    (record,) = (ws / "records").glob("deid-dicom-*.jsonl")
    assert len(record.read_text().splitlines()) == len(list(Path(cohort).rglob("*.*")))
    assert "de-identified" in capsys.readouterr().out
    assert main(["deid-dicom", str(cohort), str(tmp_path / "o2"), "--pixels", "off"]) == 2
    assert "--workspace" in capsys.readouterr().err


def test_deidentified_cohort_passes_the_leak_scan(cohort, records, tmp_path):
    from updp_napari.deid.leaks import scan_leaks

    # Every header of the cohort, pixels aside: no identifier left anywhere.
    deidentify_tree(cohort, tmp_path / "headers", DicomDeidentifier(KEY, pixels="off"))
    report = scan_leaks(cohort, tmp_path / "headers", ocr=False)
    assert report.files == len(records) and report.clean, [
        (leak.place, leak.category) for leak in report.leaks][:10]
    # Images with burned-in text, the pixels scanned too (a lying NO among them).
    burned = [r for r in records if r["burned_in_phi"]][:3]
    assert any(r["burned_in_annotation"] == "NO" for r in burned) or len(burned) < 3
    src = tmp_path / "burned"
    for r in burned:
        (src / r["image"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(cohort) / r["image"], src / r["image"])
    deidentify_tree(src, tmp_path / "pixels", DicomDeidentifier(KEY, pixels="ocr"))
    report = scan_leaks(src, tmp_path / "pixels", ocr=True)
    assert report.clean, [(leak.place, leak.category) for leak in report.leaks]


def test_elements_the_table_does_not_list_are_treated_by_their_kind(cohort, records, tmp_path):
    path, _ = _first(cohort, records)
    ds = pydicom.dcmread(path)
    assert profile_table().rule(0x00080012) is None  # Instance Creation Date: not listed
    ds.InstanceCreationDate = ds.StudyDate
    ds.InstanceCreationTime = "101530"
    ds.save_as(tmp_path / "extra.dcm")
    original, out, result = _deid(tmp_path / "extra.dcm")
    assert out.InstanceCreationDate == out.StudyDate != original.StudyDate  # shifted alike
    assert out.InstanceCreationTime == "100000"
    _, bare, _ = _deid(tmp_path / "extra.dcm", options=())
    assert "InstanceCreationDate" not in bare and "InstanceCreationTime" not in bare


def test_identifiers_in_folder_names_are_replaced_and_the_scan_follows(cohort, records, tmp_path):
    from updp_napari.deid.leaks import scan_leaks

    path, _ = _first(cohort, records)
    pid = str(pydicom.dcmread(path, stop_before_pixels=True).PatientID)
    src = tmp_path / "archive"
    (src / pid / "CR1").mkdir(parents=True)
    shutil.copy(path, src / pid / "CR1" / "image.dcm")
    out, record_path = tmp_path / "out", tmp_path / "ws" / "record.jsonl"
    (record,) = deidentify_tree(src, out, DicomDeidentifier(KEY, pixels="off"),
                                record_path=record_path)
    assert record.output.startswith("PT-") and pid not in record.output
    assert (out / record.output).is_file() and not (out / pid).exists()
    assert scan_leaks(src, out, ocr=False, record=record_path).clean
    # Without the record the counterpart is not found: the gate stays shut.
    unfollowed = scan_leaks(src, out, ocr=False)
    assert not unfollowed.clean and "missing" in [leak.kind for leak in unfollowed.leaks]


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                                  "rtdose_rle_1frame.dcm", "SC_rgb_jpeg.dcm"])
def test_implicit_big_endian_and_un_encoded_headers(tmp_path, name):
    """Elements left as read must still be written right; UN-encoded dates are still dates."""
    from updp_napari.deid.leaks import scan_leaks

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(TEST_FILES / name, src / name)
    (record,) = deidentify_tree(src, tmp_path / "out", DicomDeidentifier(KEY, pixels="off"))
    assert record.status == "ok", record.reason
    assert pydicom.dcmread(tmp_path / "out" / name).PatientIdentityRemoved == "YES"
    assert scan_leaks(src, tmp_path / "out", ocr=False).clean


def test_pipeline_reports_and_images_share_the_shift_and_pass_the_scan(cohort, records, tmp_path):
    """deid-report --header-beside and deid-dicom with one workspace key, then scan-leaks."""
    from updp_napari.deid.leaks import scan_leaks

    src, out, key = tmp_path / "in", tmp_path / "out", tmp_path / "k.key"
    for r in records[:4]:
        for name in (r["image"], r["report"]):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(cohort) / name, src / name)
    assert main(["deid-dicom", str(src), str(out), "--pixels", "off", "--key-file", str(key),
                 "-q"]) == 0
    assert main(["deid-report", "--in", str(src), "--out", str(out), "--header-beside",
                 "--mode", "surrogate", "--key-file", str(key), "-q"]) == 0
    r = records[0]
    original = pydicom.dcmread(src / r["image"], stop_before_pixels=True)
    shifted = pydicom.dcmread(out / r["image"], stop_before_pixels=True).StudyDate
    days = (dt.datetime.strptime(shifted, "%Y%m%d")
            - dt.datetime.strptime(original.StudyDate, "%Y%m%d")).days
    workspace_key = bytes.fromhex(key.read_text().strip())
    assert days == date_shift_days(workspace_key, header_identifiers(original).patient_key)
    # The report step, given the same header, moves the same date by the same days.
    ident = header_identifiers(original)
    written = dt.datetime.strptime(original.StudyDate, "%Y%m%d").strftime("%m/%d/%Y")
    moved = ReportDeidentifier(use_plugins=False).deidentify(
        f"Compared with {written}.", ident, mode="surrogate", key=workspace_key).text
    assert dt.datetime.strptime(shifted, "%Y%m%d").strftime("%m/%d/%Y") in moved
    report = scan_leaks(src, out, ocr=False)
    assert report.files == 4
    assert report.clean, [(leak.file, leak.place, leak.category) for leak in report.leaks]


@pytest.mark.parametrize("charset, name, description", [
    ("ISO_IR 192", "Müller^Zoë", "Thorax pa Zoë Müller nachkontrolle"),     # UTF-8: read directly
    ("ISO_IR 100", "Müller^Zoë", "Thorax pa Zoë Müller nachkontrolle"),     # Latin-1: read directly
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎", "胸部 Yamada Tarou"),  # code extensions
])
def test_character_sets_are_read_and_written_faithfully(tmp_path, charset, name, description):
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName, ds.PatientID, ds.StudyDescription = name, "ZX-4711", description
    ds.InstitutionName, ds.StudyDate = "Klinikum Süd", "20240307"
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", "1.2.3.4.5.6.7"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    path = tmp_path / "in.dcm"
    ds.save_as(path, enforce_file_format=True)
    original, out, _ = _deid(path)
    saved = tmp_path / "out.dcm"
    out.save_as(saved, enforce_file_format=True)
    back = pydicom.dcmread(saved)
    assert back.PatientID.startswith("PT-") and str(back.PatientName) == back.PatientID
    assert "Süd" not in back.InstitutionName and back.StudyDate != "20240307"
    # The descriptor is cleaned of the patient's name, and its other words survive intact.
    kept = str(back.StudyDescription)
    assert "Müller" not in kept and "Yamada" not in kept and "Zo" not in kept
    assert kept.split()[0] == description.split()[0]


def test_unlisted_text_links_and_overlay_descriptions_are_not_passed_through(cohort, records, tmp_path):
    """Elements outside the profile's table are handled by their VR: a long UC value holding
    the name is cleaned, a URL removed, an overlay's description cleaned."""
    path, _ = _first(cohort, records, study_index=0)
    ds = pydicom.dcmread(path)
    family = str(ds.PatientName.family_name)
    ds.add_new(0x00080119, "UC", "code note " + "x" * 300_000 + f" for {family}")  # LongCodeValue
    ds.add_new(0x00287FE0, "UR", f"https://pacs.example/{family}")  # PixelDataProviderURL
    ds.add_new(0x60000022, "LO", f"marked by tech for {family}")  # OverlayDescription
    src = tmp_path / "in.dcm"
    ds.save_as(src, enforce_file_format=True)
    _, out, _ = _deid(src)
    assert family not in str(out.get(0x00080119).value if 0x00080119 in out else "")
    assert 0x00287FE0 not in out
    assert family not in str(out.get(0x60000022).value if 0x60000022 in out else "")


def test_elements_outside_the_table_are_handled_by_vr_and_a_safe_list(tmp_path):
    """Never passed through as read: an unlisted label or description is cleaned, an element
    the dictionary does not know is removed unless its VR says it is a number or a code."""
    from updp_napari.deid.dicom import FileRecord

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "p0001_s01" / "image.dcm"
    ds = pydicom.dcmread(sample)
    family = str(ds.PatientName).split("^")[0]
    ds.add_new(0x00620005, "LO", f"lesion of {family}")  # SegmentLabel: unlisted, known
    ds.add_new(0x00089998, "LO", f"{family} chest")  # public, unknown to the dictionary
    ds.add_new(0x00089996, "UN", f"{family}".encode())  # unknown, UN: nobody can say
    ds.add_new(0x00089994, "OB", f"{family}-" .encode())
    ds.add_new(0x00089992, "US", 7)  # an unknown number stays
    ds.Manufacturer = "ACME MEDICAL"
    DicomDeidentifier(KEY, pixels="off").deidentify_dataset(ds, FileRecord("x", "ok"))
    assert family not in str(ds.get(0x00620005).value) and "lesion" in ds[0x00620005].value
    assert family not in str(ds[0x00089998].value) and "chest" in ds[0x00089998].value
    assert 0x00089996 not in ds and 0x00089994 not in ds
    assert ds[0x00089992].value == 7 and ds.Manufacturer == "ACME MEDICAL"
