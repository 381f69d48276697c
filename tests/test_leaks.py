"""The leak scanner (`updp scan-leaks`): every identifier of an original found wherever it is
left in its de-identified copy, nothing flagged in a properly blanked one, no value in the
output."""

import json
import re
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from updp_napari.cli import main
from updp_napari.deid.leaks import MISSING, UNREADABLE, collect_identifiers, scan_leaks

# ---------------------------------------------------------------------------- helpers


def _resolve(ds, path: str):
    """The dataset holding the element at ``path`` and its key (keyword or private tag)."""
    *items, last = path.split(".")
    for item in items:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", item)
        ds = ds[m[1]].value[int(m[2])]
    m = re.fullmatch(r"\((\w{4}),(\w{4})\)", last)
    return ds, (int(m[1], 16) << 16 | int(m[2], 16)) if m else last


def blank(ds, record) -> None:
    """What a de-identifier must at least do: every header_phi element gone or replaced, the
    issuer (the hospital's short name) removed, new UIDs in the dataset and the file meta."""
    for path in record["header_phi"]:
        parent, key = _resolve(ds, path)
        if isinstance(key, str) and key.endswith("UID"):
            setattr(parent, key, generate_uid())
        else:
            del parent[key]
    del ds.IssuerOfPatientID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def write_blanked(cohort, records, out: Path, mutate=None) -> Path:
    """A de-identified tree mirroring ``cohort``; ``mutate(ds, record, folder)`` may leave
    something in."""
    for record in records:
        ds = pydicom.dcmread(cohort / record["image"])
        blank(ds, record)
        target = out / record["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if mutate is not None:
            mutate(ds, record, target.parent)
        ds.save_as(target)
    return out


def originals_only(cohort, records, out: Path, n: int | None = None) -> Path:
    """The originals' images (and reports) of the first ``n`` studies in a folder of their own."""
    for record in records[:n]:
        for key in ("image", "report"):
            target = out / record[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(cohort / record[key], target)
    return out


def places(report, file: Path) -> set[tuple[str, str]]:
    return {(leak.place, leak.category) for leak in report.leaks if leak.file == str(file)}


def person(record) -> tuple[str, str]:
    family, given = record["header_phi"]["PatientName"].split("^")[:2]
    return family, given


# ---------------------------------------------------------------------------- whole trees


def test_copy_of_the_originals_leaks_every_header_phi_path(cohort, records, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cohort, copy)
    report = scan_leaks(cohort, copy, ocr=False)
    assert report.files == len(records) and not report.skipped
    for record in records:
        found = places(report, copy / record["image"])
        assert set(record["header_phi"]) <= {place for place, _ in found}, record["study_id"]
        # The original report beside the copy repeats the patient's name and dates.
        assert ("report report.txt", "name") in found
        assert ("report report.txt", "date") in found


def test_blanked_copy_is_clean(cohort, records, tmp_path):
    deid = write_blanked(cohort, records, tmp_path / "deid")
    report = scan_leaks(cohort, deid, ocr=False)
    assert report.files == len(records)
    assert report.clean, [leak.line() for leak in report.leaks]
    assert report.summary().startswith(f"scanned {len(records)} files: clean")


# One leftover per case: what the de-identifier forgot, and the only findings expected.

def _name_in_description(ds, record, folder):
    family, given = person(record)
    ds.StudyDescription = f"Chest PA - {given.title()} {family.lower()}"
    return {("StudyDescription", "name")}


def _accession_in_nested_item(ds, record, folder):
    ds.RequestAttributesSequence[0].AccessionNumber = record["header_phi"]["AccessionNumber"]
    return {("RequestAttributesSequence[0].AccessionNumber", "accession")}


def _ssn_two_levels_down_reformatted(ds, record, folder):
    ssn = record["header_phi"]["OtherPatientIDsSequence[0].PatientID"]
    code = Dataset()
    code.CodeMeaning = "ref " + re.sub(r"\D", " ", ssn).replace(" ", "")  # digits only
    ds.RequestAttributesSequence[0].ScheduledProtocolCodeSequence = [code]
    return {("RequestAttributesSequence[0].ScheduledProtocolCodeSequence[0].CodeMeaning", "id")}


def _private_tag_left(ds, record, folder):
    block = ds.private_block(0x0019, "RIS LINK 2.1", create=True)
    block.add_new(0x10, "LO", record["header_phi"]["(0019,1010)"])
    # The MRN is the PatientID too: both categories are named.
    return {("(0019,1010)", "id"), ("(0019,1010)", "private")}


def _dates_reformatted_into_free_text(ds, record, folder):
    birth, study = record["header_phi"]["PatientBirthDate"], record["header_phi"]["StudyDate"]
    ds.ImageComments = (f"born {birth[6:]}.{birth[4:6]}.{birth[:4]}, "
                        f"seen {study[4:6]}/{study[6:]}/{study[:4]}")
    ds.DerivationDescription = f"from the {study[:4]}-{study[4:6]}-{study[6:]} exam"
    return {("ImageComments", "date"), ("DerivationDescription", "date")}


def _uid_left(ds, record, folder):
    ds.SeriesInstanceUID = record["header_phi"]["SeriesInstanceUID"]
    return {("SeriesInstanceUID", "uid")}


def _phone_in_bytes_of_a_private_element(ds, record, folder):
    digits = re.sub(r"\D", "", record["header_phi"]["PatientTelephoneNumbers"])
    text = f"call {digits[:3]}.{digits[3:6]}.{digits[6:]}".encode() + b"\x00\x01"
    ds.add_new(0x00291010, "UN", text)
    return {("(0029,1010)", "phone")}


def _name_after_the_pixel_data(ds, record, folder):
    family, given = person(record)
    block = ds.private_block(0x7FE1, "TRAILER", create=True)
    block.add_new(0x10, "LO", f"{given} {family}")
    ds.DataSetTrailingPadding = f"\x00\x00{family.upper()}^{given.upper()}\x00".encode()
    # "FAMILY^GIVEN" reads as the private "Family, Given" of (0019,1011) too.
    return {("(7FE1,1010)", "name"), ("DataSetTrailingPadding", "name"),
            ("DataSetTrailingPadding", "private")}


def _report_beside_with_the_name(ds, record, folder):
    family, given = person(record)
    (folder / "report.txt").write_text(f"Discussed with {given.title()} {family.title()}.\n"
                                       "No acute findings.\n", encoding="utf-8")
    (folder / "notes.json").write_text(json.dumps({"text": f"{family.upper()}, {given}"}))
    (folder / "clean.txt").write_text("Heart size normal. Kerley B lines absent.\n")
    # "LAST, First" is also the text of the private element (0019,1011).
    return {("report report.txt", "name"), ("report notes.json", "name"),
            ("report notes.json", "private")}


@pytest.mark.parametrize("leave_in", [
    _name_in_description, _accession_in_nested_item, _ssn_two_levels_down_reformatted,
    _private_tag_left, _dates_reformatted_into_free_text, _uid_left,
    _phone_in_bytes_of_a_private_element, _name_after_the_pixel_data,
    _report_beside_with_the_name,
], ids=lambda f: f.__name__.strip("_"))
def test_blanked_copy_leaks_exactly_what_was_left_in(cohort, records, tmp_path, leave_in):
    chosen = records[:3]
    expected = {}

    def mutate(ds, record, folder):
        expected[record["study_id"]] = leave_in(ds, record, folder)

    deid = write_blanked(cohort, chosen, tmp_path / "deid", mutate)
    src = originals_only(cohort, chosen, tmp_path / "orig")
    report = scan_leaks(src, deid, ocr=False)
    assert report.files == 3
    for record in chosen:
        assert places(report, deid / record["image"]) == expected[record["study_id"]]


# ---------------------------------------------------------------------------- output


def test_output_and_json_never_contain_the_values(cohort, records, tmp_path, capsys,
                                                  monkeypatch):
    chosen = records[:4]
    originals_only(cohort, chosen, tmp_path / "orig")
    shutil.copytree(tmp_path / "orig", tmp_path / "deid")
    monkeypatch.chdir(tmp_path)
    assert main(["scan-leaks", "orig", "deid", "--no-ocr", "--json-out", "leaks.json", "-q"]) == 1
    captured = capsys.readouterr()
    text = (captured.out + captured.err).lower()
    written = (tmp_path / "leaks.json").read_text().lower()
    data = json.loads(written)
    assert data["files"] == 4 and not data["clean"]
    assert len(data["leaks"]) == len(captured.out.splitlines()) - 1  # a line per leak + summary
    assert "deid/p0000_s01/image.dcm  patientname  name" in text
    for record in chosen:
        for value in record["header_phi"].values():
            assert value.lower() not in text and value.lower() not in written
            for part in re.split(r"[\^,\s]+", value):
                if len(part) >= 4 and not part.isdigit():
                    assert not re.search(rf"\b{re.escape(part.lower())}\b", text), part
                    assert not re.search(rf"\b{re.escape(part.lower())}\b", written), part


def test_leaking_folder_names_are_reported_and_masked(cohort, records, tmp_path, capsys):
    record = records[0]
    family = str(pydicom.dcmread(cohort / record["image"]).PatientName).split("^")[0]
    orig = tmp_path / "orig" / f"{family}_study"
    orig.mkdir(parents=True)
    shutil.copy2(cohort / record["image"], orig / "image.dcm")
    deid = tmp_path / "deid"
    target = deid / orig.name / "image.dcm"
    target.parent.mkdir(parents=True)
    ds = pydicom.dcmread(cohort / record["image"])
    blank(ds, record)
    ds.save_as(target)
    assert main(["scan-leaks", str(tmp_path / "orig"), str(deid), "--no-ocr", "-q"]) == 1
    out = capsys.readouterr().out
    assert f"{deid}/<name>/image.dcm  path  name" in out
    assert family.lower() not in out.lower()


# ---------------------------------------------------------------------------- inputs


def test_non_dicom_originals_are_skipped_with_a_reason_and_the_rest_scanned(
        cohort, records, tmp_path):
    chosen = records[:3]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    (src / "p0000_s01" / "scan.bin").write_bytes(b"\x89 not an image at all" * 20)
    (src / "broken.dcm").write_text("hello")
    truncated = (cohort / chosen[1]["image"]).read_bytes()[:400]
    (src / "truncated.dcm").write_bytes(truncated)
    deid = write_blanked(cohort, chosen, tmp_path / "deid")
    progress = []
    report = scan_leaks(src, deid, ocr=False, progress=lambda n, total: progress.append((n, total)))
    skipped = dict(report.skipped)
    assert "not a DICOM file" in skipped[str(src / "p0000_s01" / "scan.bin")]
    assert "not a DICOM file" in skipped[str(src / "broken.dcm")]
    assert "truncated" in skipped[str(src / "truncated.dcm")]
    # Fail closed: what could not be read whole is not proven clean.
    assert report.files == 3 and not report.leaks and not report.clean
    assert "NOT clean" in report.summary() and "3 skipped" in report.summary()
    assert progress == [(n, 6) for n in range(1, 7)]
    assert main(["scan-leaks", str(src), str(deid), "--no-ocr", "-q"]) == 1


def test_a_missing_counterpart_is_its_own_kind_of_finding(cohort, records, tmp_path, capsys):
    chosen = records[:3]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    deid = write_blanked(cohort, chosen, tmp_path / "deid")
    (deid / chosen[1]["image"]).unlink()
    (deid / chosen[2]["image"]).write_bytes(b"garbage")
    report = scan_leaks(src, deid, ocr=False)
    kinds = {leak.kind: leak for leak in report.leaks}
    assert set(kinds) == {MISSING, UNREADABLE} and len(report.leaks) == 2
    assert kinds[MISSING].file == str(deid / chosen[1]["image"])
    assert kinds[UNREADABLE].file == str(deid / chosen[2]["image"])
    assert main(["scan-leaks", str(src), str(deid), "--no-ocr", "-q"]) == 1
    out = capsys.readouterr().out
    assert "missing (no de-identified counterpart)" in out and "1 missing counterpart" in out
    assert f"{deid / chosen[2]['image']}  file  unreadable: not a DICOM file" in out


def test_exit_status_and_error_messages(cohort, records, tmp_path, capsys):
    chosen = records[:2]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    clean = write_blanked(cohort, chosen, tmp_path / "clean")
    assert main(["scan-leaks", str(src), str(clean), "--no-ocr", "-q"]) == 0
    assert "scanned 2 files: clean" in capsys.readouterr().out
    one = src / chosen[0]["image"]
    assert main(["scan-leaks", str(one), str(clean / chosen[0]["image"]), "--no-ocr", "-q"]) == 0
    assert main(["scan-leaks", str(one), str(one), "--no-ocr", "-q"]) == 2
    assert "same place" in capsys.readouterr().err
    assert main(["scan-leaks", str(src), str(src / "p0000_s01" / "report.txt") + "x",
                 "--no-ocr", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("updp scan-leaks: error:") and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "junk.bin").write_bytes(b"x")
    assert main(["scan-leaks", str(empty), str(clean), "--no-ocr", "-q"]) == 2
    assert "nothing was scanned" in capsys.readouterr().err
    assert main(["scan-leaks", str(src), str(src), "--no-ocr", "-q"]) == 2
    # A single original against the folder holding its counterpart's name.
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    shutil.copy2(one, leaky / one.name)
    assert main(["scan-leaks", str(one), str(leaky), "--no-ocr", "-q"]) == 1


def test_ocr_switch_is_refused_when_ocr_cannot_run(cohort, records, tmp_path, capsys,
                                                   monkeypatch):
    import updp_napari.deid.leaks as leaks

    def unavailable():
        raise leaks.UpdpError("OCR of the pixels needs tesseract; with OCR off the scan "
                              "reads headers and reports only")

    monkeypatch.setattr(leaks, "check_ocr_available", unavailable)
    chosen = records[:1]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    clean = write_blanked(cohort, chosen, tmp_path / "clean")
    assert main(["scan-leaks", str(src), str(clean), "-q"]) == 2
    assert "with OCR off" in capsys.readouterr().err


# ---------------------------------------------------------------------------- identifiers


def _dataset(**values) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


@pytest.mark.parametrize("written", [
    "ELLISON^BRIDGET^V", "Bridget Ellison", "ELLISON, BRIDGET", "bridget v. ellison",
    "Ms Ellison", "B. Ellison", "pt bridget", "Ellison Bridget V", "ELLISON^BRIDGET",
    "Bridget Ellisón",
])
def test_names_are_found_in_every_order_case_and_format(written):
    ids = collect_identifiers(_dataset(PatientName="ELLISON^BRIDGET^V"))
    assert set(ids.find(f"x {written} y")) == {"name"}


@pytest.mark.parametrize("written,category", [
    ("20230920", "date"), ("2023-09-20", "date"), ("09/20/2023", "date"), ("20.09.2023", "date"),
    ("Sep 20, 2023", "date"), ("20-SEP-2023", "date"), ("September 20th 2023", "date"),
    ("095528", "time"), ("09:55:28", "time"),
    ("(608) 555-0140", "phone"), ("608.555.0140", "phone"), ("tel 6085550140", "phone"),
    ("call 555-0140", "phone"),
    ("MRN H95582703", "id"), ("136736434", "id"), ("136-73-6434", "id"),
    ("NUH51154710", "accession"), ("acc 51-154710", "accession"),
    ("Fort Collins", "address"), ("6949 highland boulevard", "address"), ("CO 80570", "address"),
    ("northfield university hospital", "institution"), ("SN 2832 SO70", "device"),
    ("1.2.826.0.1.3680043.8.498.71.3.38657", "uid"), ("093Y", "age"), ("93 year old", "age"),
])
def test_other_identifiers_are_found_in_their_common_forms(written, category):
    ds = _dataset(StudyDate="20230920", StudyTime="095528", PatientTelephoneNumbers="(608) 555-0140",
                  PatientID="H95582703", AccessionNumber="NUH-51-154710",
                  PatientAddress="6949 Highland Boulevard, Fort Collins, CO 80570",
                  InstitutionName="Northfield University Hospital",
                  DeviceSerialNumber="SN-2832-SO70", SOPInstanceUID="1.2.826.0.1.3680043.8.498.71.3.38657",
                  PatientAge="093Y")
    ds.OtherPatientIDsSequence = [_dataset(PatientID="136-73-6434")]
    assert set(collect_identifiers(ds).find(f"see {written} here")) == {category}


def test_short_generic_and_standard_values_are_not_identifiers():
    ds = _dataset(PatientSex="M", Modality="DX", BurnedInAnnotation="YES", StudyID="123",
                  InstitutionalDepartmentName="Radiology", PatientAge="045Y",
                  StudyDescription="CHEST PA AND LATERAL", StudyTime="0955",
                  SOPClassUID="1.2.840.10008.5.1.4.1.1.1.1", PatientSize="1.72")
    block = ds.private_block(0x0019, "RIS LINK 2.1", create=True)
    block.add_new(0x12, "DS", "1.8")
    block.add_new(0x13, "LO", "PA")
    ids = collect_identifiers(ds)
    assert len(ids) == 0
    assert not ids.find("M DX YES 123 Radiology 045Y CHEST PA 0955 1.2.840.10008.5.1.4.1.1.1.1")


def test_a_name_part_shorter_than_three_letters_is_only_found_with_the_rest():
    ids = collect_identifiers(_dataset(PatientName="LI^WEI"))
    assert ids.find("Wei Li") and ids.find("LI, WEI") and ids.find("wei")
    assert not ids.find("li") and not ids.find("Li-ion battery")


def test_identifiers_in_nested_sequences_and_private_bytes_are_collected():
    inner = _dataset(AccessionNumber="ZX99887766")
    ds = _dataset(RequestAttributesSequence=[_dataset(ReferencedStudySequence=[inner])])
    ds.add_new(0x00291010, "UN", b"\x02\x00CASE ALPHA-778812\x00\x00")
    ids = collect_identifiers(ds)
    assert set(ids.find("ZX99887766")) == {"accession"}
    assert set(ids.find("case alpha 778812")) == {"private"}


# ---------------------------------------------------------------------------- OCR plumbing


@pytest.fixture
def fake_ocr(monkeypatch):
    """Stands in for ``updp_napari.deid.pixels``: reads back whatever text it is told."""
    import sys
    import types
    from collections import namedtuple

    OcrWord = namedtuple("OcrWord", "text box confidence")
    module = types.ModuleType("updp_napari.deid.pixels")
    module.seen = []
    module.words = []

    def ocr_words(pixels, *, monochrome1=False):
        module.seen.append((pixels.shape, monochrome1))
        return [OcrWord(w, (0, 0, 1, 1), 90.0) for w in module.words]

    module.ocr_words = ocr_words
    module.tesseract_available = lambda: True
    monkeypatch.setitem(sys.modules, "updp_napari.deid.pixels", module)
    return module


def test_text_read_from_the_pixels_is_searched_too(cohort, records, tmp_path, fake_ocr):
    chosen = records[:2]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    deid = write_blanked(cohort, chosen, tmp_path / "deid")
    family, given = person(chosen[0])
    fake_ocr.words = [f"{family.upper()},", given.upper(), "ID:", chosen[0]["header_phi"]["PatientID"]]
    report = scan_leaks(src, deid, ocr=True)
    assert places(report, deid / chosen[0]["image"]) == {("pixels (OCR)", "name"),
                                                          ("pixels (OCR)", "id"),
                                                          ("pixels (OCR)", "private")}
    assert [shape for shape, _ in fake_ocr.seen] == [(256, 256)] * 2
    assert [mono for _, mono in fake_ocr.seen] == [r["photometric"] == "MONOCHROME1" for r in chosen]


def test_pixels_that_cannot_be_read_fail_the_gate(cohort, records, tmp_path, fake_ocr):
    chosen = records[:1]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    deid = write_blanked(cohort, chosen, tmp_path / "deid")

    def broken(pixels, *, monochrome1=False):
        raise RuntimeError("tesseract crashed")

    fake_ocr.ocr_words = broken
    report = scan_leaks(src, deid, ocr=True)
    assert [(leak.place, leak.kind) for leak in report.leaks] == [("pixels (OCR)", UNREADABLE)]
    assert not report.clean


@pytest.mark.slow
def test_burned_in_names_are_read_from_the_pixels(cohort, records, tmp_path):
    pixels = pytest.importorskip("updp_napari.deid.pixels")
    if not pixels.tesseract_available():
        pytest.skip("tesseract is not installed")
    burned = [r for r in records if r["burned_in_phi"]][:3]
    plain = [r for r in records if not r["burned_in"]][:2]
    chosen = burned + plain
    src = originals_only(cohort, chosen, tmp_path / "orig")
    deid = write_blanked(cohort, chosen, tmp_path / "deid")  # header blanked, pixels kept
    report = scan_leaks(src, deid, ocr=True)
    ocr = {(leak.file, leak.category) for leak in report.leaks if leak.place == "pixels (OCR)"}
    assert {leak.place for leak in report.leaks} <= {"pixels (OCR)"}
    flagged = [r for r in burned if (str(deid / r["image"]), "name") in ocr]
    assert len(flagged) >= 2, "burned-in names not found by OCR"
    assert not {f for f, _ in ocr} & {str(deid / r["image"]) for r in plain}


def test_ocr_misreadings_are_still_matched_but_random_letters_are_not():
    ds = _dataset(PatientName="FITZGERALD^WILLIAM^D", PatientID="Z73534295")
    ids = collect_identifiers(ds)
    assert set(ids.find_ocr(["FITZGERALD4WILLIAM4D"])) == {"name"}  # ^ read as 4
    assert set(ids.find_ocr(["ID:", "278534295"])) == {"id"}  # Z as 2, 3 as 8
    assert set(ids.find_ocr(["RG-5337", "FITZ", "GERALD"])) == {"name"}  # split in two
    garbage = "ai ak Sige Rs fe ie Seeks pn CaAt Sr oh ee Be we Sythe mS But INS ar xe".split()
    assert not ids.find_ocr(garbage)
    # A name split in two counts when its halves stand side by side on one line, not when
    # OCR read two fragments of anatomy far apart one after the other.
    halves = ["FITZ", "GERALD"]
    assert set(ids.find_ocr(halves, [(40, 10, 60, 20), (63, 11, 101, 21)])) == {"name"}
    assert not ids.find_ocr(halves, [(40, 10, 60, 20), (190, 11, 228, 21)])
    assert not ids.find_ocr(halves, [(40, 10, 60, 20), (61, 30, 99, 40)])


def damaged_length(data: bytes) -> bytes:
    """The file with PatientBirthDate's length field saying 19 instead of 8: the parser then
    reads one bogus element that swallows what follows it (names, IDs, the pixels)."""
    tag = b"\x10\x00\x30\x00DA\x08\x00"
    assert data.count(tag) == 1
    return data.replace(tag, b"\x10\x00\x30\x00DA\x13\x00")


def test_a_header_the_parser_misreads_is_refused_and_never_called_clean(cohort, records, tmp_path,
                                                                          capsys):
    from updp_napari.deid.dicom import DicomDeidentifier

    chosen = records[:2]
    src = originals_only(cohort, chosen, tmp_path / "orig")
    bad = src / chosen[1]["image"]
    bad.write_bytes(damaged_length(bad.read_bytes()))
    out = tmp_path / "written.dcm"
    record = DicomDeidentifier(bytes(range(32)), pixels="off").deidentify_file(bad, out, "bad.dcm")
    assert record.status == "skipped" and "damaged" in record.reason and not out.exists()
    deid = write_blanked(cohort, chosen, tmp_path / "deid")
    report = scan_leaks(src, deid, ocr=False)
    assert [Path(p).name for p, _ in report.skipped] == [bad.name] and not report.clean
    assert main(["scan-leaks", str(src), str(deid), "--no-ocr", "-q"]) == 1
    assert "NOT clean" in capsys.readouterr().out
