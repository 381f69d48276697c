"""Hostile and broken inputs found by a sweep from outside: each gets a clear refusal, a
record, or is read as a person reads it, never a leak, a hang or lost data."""

import errno
import json
import os
import shutil
import unicodedata
from pathlib import Path

import pydicom
import pytest

from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.core.files import decode_report, tree_files
from updp_napari.deid.report import ReportDeidentifier

NOTE = "Patient José Smith seen 03/04/2019 by Dr. Renée Dubois. Discussed with Zoë Müller, RN."


def _one_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# --- report text ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_accents_written_after_their_letter_hide_no_name(form):
    text = unicodedata.normalize(form, NOTE)
    redacted = ReportDeidentifier().deidentify(text).text
    for name in ("Smith", "Dubois", "ller"):
        assert name not in redacted, (form, redacted)
    assert redacted.count("[NAME]") == 3


def test_a_variation_selector_after_a_name_hides_no_name():
    redacted = ReportDeidentifier().deidentify("Patient John\ufe0f Smith\ufe0f seen today.").text
    assert "John" not in redacted and "Smith" not in redacted


def test_utf8_with_a_stray_byte_is_read_as_utf8_around_it():
    raw = "Discussed with Dr. Renée Dubois.".encode() + b"\xa0" + "Patient: José García".encode()
    text = decode_report(raw, "r.txt")
    assert text == "Discussed with Dr. Renée Dubois.\xa0Patient: José García"
    redacted = ReportDeidentifier().deidentify(text).text
    assert "Dubois" not in redacted and "García" not in redacted


def test_windows_1252_and_utf16_without_a_mark_are_still_read():
    assert decode_report("café".encode("cp1252"), "r.txt") == "café"
    assert decode_report("Patient John".encode("utf-16-le"), "r.txt") == "Patient John"
    assert decode_report("Patient John".encode("utf-16-be"), "r.txt") == "Patient John"
    with pytest.raises(InputError, match="binary"):
        decode_report(b"\x00\x01\x02\x03", "r.txt")


# --- folders of reports --------------------------------------------------------------------

def test_a_folder_that_cannot_be_listed_is_recorded_not_passed_over(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    (src / "locked").mkdir(parents=True)
    (src / "a.txt").write_text("Patient John Smith\n")
    (src / "locked" / "b.txt").write_text("Patient John Smith\n")
    real_walk = os.walk

    def walk_without_locked(top, followlinks=False, onerror=None):
        # As a folder without read permission walks (the tests may run as root).
        for folder, dirs, files in real_walk(top, followlinks=followlinks, onerror=onerror):
            if "locked" in dirs:
                dirs.remove("locked")
                onerror(PermissionError(errno.EACCES, "Permission denied", str(Path(folder) / "locked")))
            yield folder, dirs, files

    monkeypatch.setattr("updp_napari.core.files.os.walk", walk_without_locked)
    with pytest.raises(InputError, match="locked: folder cannot be read"):
        tree_files(src)
    assert main(["deid-report", "--in", str(src), "--out", str(tmp_path / "out"), "-q"]) == 1
    captured = capsys.readouterr()
    assert "de-identified 1 of 2" in captured.out
    assert "skipped locked" in captured.err and "Permission denied" in captured.err
    assert main(["label-reports", str(src), "-q"]) == 1
    assert "locked: folder cannot be read" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_named_like_a_report_is_skipped_not_read_forever(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("Patient John Smith\n")
    os.mkfifo(src / "f.txt")
    (src / "z.txt").write_text("Patient Mary Jones\n")
    assert main(["deid-report", "--in", str(src), "--out", str(tmp_path / "out"), "-q"]) == 1
    assert "f.txt: not a regular file" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "z.txt"]


def test_an_output_folder_holding_the_input_is_refused(tmp_path, capsys):
    raw = tmp_path / "share" / "raw"
    raw.mkdir(parents=True)
    (raw / "r.txt").write_text("Patient John Smith\n")
    err = _one_error(capsys, ["deid-report", "--in", str(raw), "--out", str(tmp_path / "share")])
    assert "must not hold the input" in err


def test_a_report_that_fails_half_way_leaves_no_output(tmp_path, monkeypatch, capsys):
    import updp_napari.core.files as files

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / f"{name}.txt").write_text("Patient John Smith\n")
    real = files.write_text_atomic

    def full_disk_at_b_json(path, text, private=False):
        if Path(path).name == "b.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text, private)

    monkeypatch.setattr(files, "write_text_atomic", full_disk_at_b_json)
    out = tmp_path / "out"
    assert main(["deid-report", "--in", str(src), "--out", str(out), "--json", "-q"]) == 1
    assert "b.txt: could not be written (No space left on device)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt", "c.json", "c.txt"]


def test_a_temporary_file_is_removed_when_writing_fails(tmp_path, monkeypatch):
    from updp_napari.core.files import write_text_atomic

    def no_room(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("updp_napari.core.files.os.replace", no_room)
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "x.txt", "text")
    assert list(tmp_path.iterdir()) == []


def test_a_record_that_cannot_be_written_is_refused_before_any_report(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "PEARSON.txt").write_text("Patient John Smith\n")
    (tmp_path / "recdir").mkdir()
    (tmp_path / "afile").write_text("x")
    for record, says in ((tmp_path / "recdir", "is a folder"),
                         (tmp_path / "afile" / "r.jsonl", "is not a folder")):
        out = tmp_path / "out"
        err = _one_error(capsys, ["deid-report", "--in", str(src), "--out", str(out),
                                  "--record", str(record)])
        assert says in err and not out.exists()


def test_an_output_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "r.txt").write_text("Patient John Smith\n")
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert "exists and is not a folder" in _one_error(
            capsys, ["deid-report", "--in", str(src), "--out", str(out)])


def test_a_site_config_value_of_the_wrong_kind_is_refused(tmp_path, capsys):
    report = tmp_path / "r.txt"
    report.write_text("Seen by Quentin Blake today.\n")
    config = tmp_path / "site.toml"
    config.write_text('staff = "Quentin Blake"\n')
    assert "staff must be a list of strings" in _one_error(
        capsys, ["deid-report", str(report), "--config", str(config)])
    assert "cannot be read" in _one_error(
        capsys, ["deid-report", str(report), "--config", str(tmp_path)])
    config.write_text('staff = ["Quentin Blake"]\n')
    assert main(["deid-report", str(report), "--config", str(config)]) == 0
    assert "Blake" not in capsys.readouterr().out


def test_a_key_file_in_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    report = tmp_path / "r.txt"
    report.write_text("Patient John Smith\n")
    err = _one_error(capsys, ["deid-report", str(report), "--mode", "surrogate", "--key-file",
                              str(tmp_path / "nope" / "k.key")])
    assert "no such folder for the key file" in err


def test_a_name_with_a_newline_cannot_forge_a_line(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("Patient John Smith\n")
    (src / "x\n  skipped fake.txt: all good\n.txt").write_bytes(b"\x00\x01binary")
    assert main(["deid-report", "--in", str(src), "--out", str(tmp_path / "out"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\\n" in err


def test_label_reports_on_an_empty_folder_says_so(tmp_path, capsys):
    assert "no reports here" in _one_error(capsys, ["label-reports", str(tmp_path)])


def test_a_negative_seed_and_a_nan_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval-report", str(tmp_path), "--seed", "-1"])
    assert exit_.value.code == 2 and "a seed is 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train-ner", str(tmp_path), "--negatives", "nan"])
    assert "finite number" in capsys.readouterr().err


# --- annotated corpora -----------------------------------------------------------------------

def test_a_corpus_line_may_hold_line_separators_and_start_with_a_mark(tmp_path):
    from updp_napari.evaluate.report import read_corpus
    from updp_napari.labels.report import read_report_inputs

    corpus = tmp_path / "c.jsonl"
    lines = [json.dumps({"id": "n_1_1", "text": "Patient Smith\u2028seen\x85ok", "spans": []},
                        ensure_ascii=False),
             json.dumps({"id": "n_2_1", "text": "Mild cardiomegaly.", "spans": []})]
    corpus.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    assert [n["id"] for n in read_corpus(corpus)] == ["n_1_1", "n_2_1"]
    items, skipped = read_report_inputs(corpus)
    assert [i for i, _ in items] == ["n_1_1", "n_2_1"] and not skipped


def test_json_nested_past_any_depth_is_a_one_line_error(tmp_path, capsys):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"id":"a","text":"x","x":' + "[" * 100_000 + "]" * 100_000 + "}\n")
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"id":"a","text":"x","spans":[{"start":0,"end":' + "9" * 5000
                    + ',"category":"PTName"}]}\n')
    for corpus in (deep, huge):
        assert "JSON this reader does not take" in _one_error(capsys, ["eval-report", str(corpus)])


def test_a_malformed_cohort_ground_truth_is_a_one_line_error(tmp_path, capsys):
    for name, content, says in (
            ("c1", "{}\n", "names no report"),
            ("c2", b"\xff\xfe{}\n", "not UTF-8"),
            ("c3", '{"report":"r.txt","image":"x.dcm","phi_spans":[{"start":0,"end":500,'
                   '"category":"NAME"}]}\n', "out of range")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "r.txt").write_text("Patient John Smith\n")
        target = folder / "ground_truth.jsonl"
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert says in _one_error(capsys, ["eval-report", str(folder), "--no-header"])


# --- DICOM ---------------------------------------------------------------------------------

KEY = "ab" * 32


def _hostile(cohort, tmp_path: Path, change) -> tuple[Path, Path]:
    """A copy of one cohort study changed by ``change(ds)``, and the key file."""
    source = sorted(cohort.glob("*/image.dcm"))[0]
    folder = tmp_path / "in" / "s"
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(source)
    change(ds)
    ds.save_as(folder / "image.dcm")
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    return tmp_path / "in", key


def test_a_name_in_the_preamble_does_not_leave(cohort, tmp_path):
    from updp_napari.deid.dicom import DicomDeidentifier, deidentify_tree

    def plant(ds):
        ds.preamble = f"{ds.PatientName} MRN {ds.PatientID}".encode().ljust(128, b" ")

    src, _ = _hostile(cohort, tmp_path, plant)
    out = tmp_path / "out"
    records = deidentify_tree(src, out, DicomDeidentifier(bytes.fromhex(KEY), pixels="off"))
    assert [r.status for r in records] == ["ok"]
    (written,) = out.rglob("*.dcm")
    assert written.read_bytes()[:128] == bytes(128)


def test_scan_leaks_reads_the_preamble_and_coded_values(cohort, tmp_path, capsys):
    def plant(ds):
        ds.preamble = f"{ds.PatientName} MRN {ds.PatientID}".encode().ljust(128, b" ")
        ds.ImageType = ["DERIVED", str(ds.PatientName).split("^")[0]]

    src, _ = _hostile(cohort, tmp_path, plant)
    copy = tmp_path / "copy" / "s" / "image.dcm"
    copy.parent.mkdir(parents=True)
    ds = pydicom.dcmread(src / "s" / "image.dcm")
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs"):
        if keyword in ds:
            setattr(ds, keyword, "")
    ds.save_as(copy)
    assert main(["scan-leaks", str(src), str(tmp_path / "copy"), "--no-ocr"]) == 1
    found = capsys.readouterr().out
    assert "(preamble)" in found and "ImageType  name" in found


def test_own_identifiers_in_kept_coded_values_are_emptied(cohort, tmp_path):
    from updp_napari.deid.dicom import DicomDeidentifier, deidentify_tree

    names = {}

    def plant(ds):
        surname = str(ds.PatientName).split("^")[0]
        digits = "".join(c for c in str(ds.PatientID) if c.isdigit())
        names.update(surname=surname, digits=digits)
        ds.ImageType = ["DERIVED", surname]
        ds.BodyPartExamined = surname
        ds.add_new(0x00200012, "IS", digits)  # Acquisition Number
        ds.file_meta.FileMetaInformationVersion = str(ds.PatientName).encode()

    src, _ = _hostile(cohort, tmp_path, plant)
    assert len(names["digits"]) >= 6
    out = tmp_path / "out"
    deidentify_tree(src, out, DicomDeidentifier(bytes.fromhex(KEY), pixels="off"))
    (written,) = out.rglob("*.dcm")
    assert names["surname"].encode() not in written.read_bytes()
    ds = pydicom.dcmread(written)
    assert "AcquisitionNumber" not in ds or ds.AcquisitionNumber in ("", None)
    assert ds.file_meta.FileMetaInformationVersion == b"\x00\x01"
    assert list(ds.ImageType) != ["DERIVED", names["surname"]]


def test_a_file_cut_inside_a_sequence_is_refused_by_deid_and_scan(tmp_path):
    from pydicom.data import get_testdata_file

    from updp_napari.deid.dicom import DicomDeidentifier
    from updp_napari.deid.leaks import scan_leaks

    truncated = get_testdata_file("rtplan_truncated.dcm")
    if truncated is None:
        pytest.skip("pydicom's test file rtplan_truncated.dcm is not installed here")
    src = tmp_path / "t.dcm"
    shutil.copy(truncated, src)
    record = DicomDeidentifier(bytes.fromhex(KEY), pixels="off").deidentify_file(
        src, tmp_path / "o.dcm", "t.dcm")
    assert record.status == "skipped" and "runs past the end" in record.reason
    assert not (tmp_path / "o.dcm").exists()
    copy = tmp_path / "copy.dcm"
    shutil.copy(truncated, copy)
    result = scan_leaks(src, copy, ocr=False)
    assert not result.clean and "runs past the end" in str(result.skipped)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_scan_leaks_does_not_wait_on_a_pipe(tmp_path):
    from updp_napari.deid.leaks import scan_leaks

    originals = tmp_path / "orig"
    originals.mkdir()
    os.mkfifo(originals / "a.dcm")
    (tmp_path / "out").mkdir()
    result = scan_leaks(originals, tmp_path / "out", ocr=False)
    assert not result.clean


def test_two_different_files_of_one_instance_are_two_cases(cohort, tmp_path):
    from updp_napari.studies import find_studies

    source = sorted(cohort.glob("*/image.dcm"))[0]
    for name, number in (("a", None), ("b", 2), ("c", 3)):
        (tmp_path / name).mkdir()
        ds = pydicom.dcmread(source)
        if number is not None:
            ds.InstanceNumber = number
        ds.save_as(tmp_path / name / "image.dcm")
    studies = find_studies(tmp_path).studies
    assert len(studies) == 3 and len({s.study_uid for s in studies}) == 3

