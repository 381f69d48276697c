"""Output names: identifiers in folder and file names replaced, names never too long for the
file system, and symbolic links followed only on request — for deid-dicom and deid-report."""

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from updp_napari.cli import main
from updp_napari.deid.paths import NAME_BYTES, PathCleaner, short_name

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "p0001_s01" / "image.dcm"
KEY = bytes(range(32))


def test_identifiers_in_names_are_replaced_and_ordinary_words_kept():
    clean = PathCleaner(KEY, [("RG-928103", "PT-1"), ("Li", "PT-1")]).clean
    assert clean("RG-928103/image.dcm") == "PT-1/image.dcm"
    out = clean("PEARSON_PATRICK/19510510/study_1951-05-10/123-45-6789/x.dcm")
    for value in ("PEARSON", "PATRICK", "19510510", "1951-05-10", "123-45-6789", "6789"):
        assert value not in out
    assert out.endswith("/x.dcm") and out.count("/") == 4
    # Words of the archive's own vocabulary stay; a short header value only as a whole word.
    assert clean("chest_series/report final.txt") == "chest_series/report final.txt"
    assert clean("Lisinopril/Li_scan.dcm") == "Lisinopril/PT-1_scan.dcm"
    assert clean("p0001_s01/image.dcm") == "p0001_s01/image.dcm"
    # Keyed: the same name gives the same output, another key another.
    assert clean("PEARSON.txt") == clean("PEARSON.txt")
    assert PathCleaner(bytes(32)).clean("PEARSON.txt") != clean("PEARSON.txt")


@pytest.mark.parametrize("name", ["9" * 251 + ".dcm", "é" * 127 + ".txt", "x" * 300])
def test_long_names_are_shortened_by_a_keyed_hash(name):
    out = short_name(name, KEY)
    assert len(out.encode("utf-8")) <= NAME_BYTES
    assert out.endswith(Path(name).suffix if "." in name else out[-1])
    assert short_name(name + "y", KEY) != out  # names that differ stay apart
    assert short_name("short.dcm", KEY) == "short.dcm"


def _identifiers(ds) -> list[str]:
    parts = [p for p in str(ds.PatientName).replace("^", " ").split() if len(p) >= 2]
    return [ds.PatientID, ds.AccessionNumber, ds.PatientBirthDate, *parts]


def test_deid_dicom_long_and_identifying_names(tmp_path, capsys):
    ds = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    family = str(ds.PatientName).split("^")[0]
    src = tmp_path / "in"
    folders = {
        "mrn-folder": (ds.PatientID * 40)[:250],  # 250 bytes of MRN: longer once replaced
        "birth": f"{family}_{ds.PatientBirthDate}",
        "ssn": "123-45-6789",
        "short-parts": "Li_Wu_chest",  # a name of two-letter parts (written below)
    }
    for folder in folders.values():
        (src / folder).mkdir(parents=True)
        shutil.copy(SAMPLE, src / folder / "image.dcm")
    short = pydicom.dcmread(SAMPLE)
    short.PatientName = "Li^Wu"
    short.save_as(src / folders["short-parts"] / "image.dcm")
    (src / "long").mkdir()
    shutil.copy(SAMPLE, src / "long" / ((ds.PatientID * 40)[:247] + ".dcm"))  # 251 characters
    record = tmp_path / "record.jsonl"
    assert main(["deid-dicom", str(src), str(tmp_path / "out"), "--key-file",
                 str(tmp_path / "k.key"), "--pixels", "off", "--record", str(record), "-q"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 5 and all(line["status"] == "ok" for line in lines)
    written = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(written) == 5
    for path in written:
        rel = path.relative_to(tmp_path / "out").as_posix()
        assert all(len(part.encode()) <= NAME_BYTES for part in rel.split("/"))
        for value in _identifiers(ds) + ["123-45-6789", "6789", "Li_", "_Wu"]:
            assert value.casefold() not in rel.casefold(), "an identifier in an output name"
    # Every name was renamed, and the record says where each went.
    assert {line["output"] for line in lines} == \
        {p.relative_to(tmp_path / "out").as_posix() for p in written}


def _reports(root: Path) -> None:
    (root / "2262592").mkdir(parents=True)
    (root / "2262592" / "PEARSON.txt").write_text("Seen by Dr. Okafor on 03/04/2021.\n")
    (root / ("5" * 251 + ".txt")).write_text("Chest clear.\n")
    (root / "plain.txt").write_text("No acute disease.\n")


def test_deid_report_batch_replaces_identifiers_in_names_and_records_them(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _reports(src)
    key = tmp_path / "keys" / "k.key"
    key.parent.mkdir()
    assert main(["deid-report", "--in", str(src), "--out", str(out), "--mode", "surrogate",
                 "--key-file", str(key), "-q"]) == 0
    captured = capsys.readouterr()
    assert "renamed" in captured.out and "Traceback" not in captured.err
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt"))
    assert len(names) == 3 and "plain.txt" in names
    for name in names:
        assert "2262592" not in name and "pearson" not in name.casefold() and "55555" not in name
        assert all(len(part.encode()) <= NAME_BYTES for part in name.split("/"))
    (record,) = (key.parent / "records").glob("deid-report-*.jsonl")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert {line["output"] for line in lines} == set(names)
    assert oct(record.stat().st_mode & 0o777) == "0o600"


def test_deid_report_refuses_links_unless_asked(tmp_path, capsys):
    src = tmp_path / "in"
    _reports(src)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Patient Okafor.\n")
    (src / "linked.txt").symlink_to(outside / "secret.txt")
    (src / "linked-folder").symlink_to(outside, target_is_directory=True)
    assert main(["deid-report", "--in", str(src), "--out", str(tmp_path / "a"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "linked.txt" in err and "linked-folder" in err and "symbolic link" in err
    assert len(list((tmp_path / "a").rglob("*.txt"))) == 3
    assert main(["deid-report", "--in", str(src), "--out", str(tmp_path / "b"), "-q",
                 "--follow-symlinks"]) == 0
    assert len(list((tmp_path / "b").rglob("*.txt"))) == 5


def test_deid_dicom_follows_links_only_when_asked(tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    shutil.copy(SAMPLE, src / "a" / "image.dcm")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(SAMPLE, outside / "other.dcm")
    (src / "b").symlink_to(outside, target_is_directory=True)
    args = ["--key-file", str(tmp_path / "k.key"), "--pixels", "off", "-q"]
    main(["deid-dicom", str(src), str(tmp_path / "o1"), "--record", str(tmp_path / "r1"), *args])
    lines = [json.loads(line) for line in (tmp_path / "r1").read_text().splitlines()]
    assert {(line["file"], line["status"]) for line in lines} == {("a/image.dcm", "ok"),
                                                                  ("b", "skipped")}
    main(["deid-dicom", str(src), str(tmp_path / "o2"), "--record", str(tmp_path / "r2"),
          "--follow-symlinks", *args])
    assert len(list((tmp_path / "o2").rglob("*.dcm"))) == 2
