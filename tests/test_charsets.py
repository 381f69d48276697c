"""Person names with component groups (alphabetic=ideographic=phonetic) and the character
sets they come in: every part of every group is a name, in the header and in descriptions,
for the de-identifier and for the leak scan alike."""

import shutil
from pathlib import Path

import pydicom
import pytest

from updp_napari.deid.dicom import DicomDeidentifier, deidentify_tree
from updp_napari.deid.leaks import collect_identifiers, scan_leaks
from updp_napari.deid.report.header_values import header_identifiers

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "p0001_s01" / "image.dcm"
KEY = bytes(range(32))

# (character set, patient name, study description, series description, the name's parts)
CASES = {
    "iso2022-japanese": (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう",
                         "CHEST PA Tarou", "胸部太郎", ["Tarou", "Yamada", "山田", "太郎", "やまだ"]),
    "iso2022-korean": (["", "ISO 2022 IR 149"], "Hong^Gildong=홍^길동=홍^길동",
                       "Chest Gildong", "흉부 길동", ["Gildong", "Hong", "길동"]),
    "utf-8": ("ISO_IR 192", "Wang^Xiaoming=王^小明", "CXR 王小明 様", "Xiaoming",
              ["Xiaoming", "Wang", "小明"]),
    "latin-1": ("ISO_IR 100", "Müller^Jürgen", "Thorax Jürgen", "MÜLLER pa", ["Jürgen", "Müller"]),
    "gb18030": ("GB18030", "Li^Hua=李^华", "胸部 李华", "Hua Li chest", ["李华"]),
}


def _make(folder: Path, name: str) -> Path:
    charset, person, study, series, _ = CASES[name]
    ds = pydicom.dcmread(SAMPLE)
    ds.SpecificCharacterSet = charset
    ds.PatientName = person
    ds.StudyDescription = study
    ds.SeriesDescription = series
    path = folder / name / "image.dcm"
    path.parent.mkdir(parents=True)
    ds.save_as(path)
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("charsets")
    for name in CASES:
        _make(root / "in", name)
    records = deidentify_tree(root / "in", root / "out", DicomDeidentifier(KEY, pixels="off"))
    assert all(r.status == "ok" for r in records), [(r.file, r.reason) for r in records]
    # Output names may differ (a folder named like a person is renamed): go by the record.
    return root, {r.file.split("/")[0]: root / "out" / (r.output or r.file) for r in records}


def test_every_component_group_is_a_name_part():
    ds = pydicom.Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = CASES["iso2022-japanese"][1]
    parts = header_identifiers(ds).names[0]
    assert {"Yamada", "Tarou", "山田", "太郎", "やまだ", "たろう"} <= set(parts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_part_of_the_name_is_left_in_any_description(written, name):
    ds = pydicom.dcmread(written[1][name])
    values = " ".join(str(ds.get(k, "")) for k in ("PatientName", "StudyDescription",
                                                  "SeriesDescription"))
    for part in CASES[name][4]:
        assert part.casefold() not in values.casefold(), (name, "a name part is left")
    # The descriptions' other words stay.
    assert any(w in values for w in ("CHEST", "Chest", "CXR", "Thorax", "胸部", "흉부", "chest", "pa"))


def test_the_leak_scan_agrees_and_catches_parts_left_in(written, tmp_path):
    root, _ = written
    assert scan_leaks(root / "in", root / "out", ocr=False).clean
    # A copy with only the patient name blanked: each description still names the patient.
    bad = tmp_path / "bad"
    shutil.copytree(root / "in", bad)
    for path in bad.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName = ""
        ds.save_as(path)
    report = scan_leaks(root / "in", bad, ocr=False)
    flagged = {Path(leak.file).parent.name for leak in report.leaks}
    assert flagged == set(CASES)


def test_a_description_is_no_public_word_list():
    """A name part the original's own description repeats is still the patient's name."""
    ds = pydicom.dcmread(SAMPLE)
    ds.StudyDescription = f"CHEST {str(ds.PatientName).split('^')[1]}"
    ids = collect_identifiers(ds)
    assert "name" in ids.find(ds.StudyDescription)
