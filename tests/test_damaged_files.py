"""Damaged DICOM files among good ones: each is refused with a value-free reason, the batch
goes on, and nothing calls what it could not read clean.

The damage is made here from the sample cohort: a corrupt deflate stream, sequences nested
past the recursion limit, and a length field that makes the parser swallow the header.
"""

import io
import shutil
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.deid.dicom import DicomDeidentifier, deidentify_tree
from updp_napari.deid.leaks import scan_leaks
from updp_napari.ingest import read_dataset

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
KEY = bytes(range(32))


def corrupt_deflate(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = bytearray(buf.getvalue())
    meta_end = 144 + struct.unpack("<I", out[140:144])[0]
    out[meta_end + 10:meta_end + 40] = b"\xab" * 30
    return bytes(out)


def deep_nesting(data: bytes, depth: int = 400) -> bytes:
    sequence = struct.pack("<HH", 0x7FE1, 0x1010) + b"SQ\x00\x00" + b"\xff" * 4
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    ends = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return data + (sequence + item) * depth + ends * depth


def swallowed_header(data: bytes) -> bytes:
    tag = b"\x10\x00\x30\x00DA\x08\x00"  # PatientBirthDate, length 8
    assert data.count(tag) == 1
    return data.replace(tag, b"\x10\x00\x30\x00DA\x13\x00")


DAMAGE = {"deflate.dcm": corrupt_deflate, "nested.dcm": deep_nesting,
          "swallowed.dcm": swallowed_header}


@pytest.fixture()
def mixed(tmp_path):
    """Three good studies and one damaged file of each kind, in one folder."""
    src = tmp_path / "in"
    good = sorted(SAMPLE.glob("p000*_s01/image.dcm"))[:3]
    for path in good:
        (src / path.parent.name).mkdir(parents=True)
        shutil.copy(path, src / path.parent.name / "image.dcm")
    data = good[0].read_bytes()
    (src / "damaged").mkdir()
    for name, damage in DAMAGE.items():
        (src / "damaged" / name).write_bytes(damage(data))
    return src, [p.parent.name for p in good]


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_the_shared_reader_refuses_damage_without_quoting_it(mixed, name):
    src, _ = mixed
    path = src / "damaged" / name
    try:
        ds = read_dataset(path)
    except InputError as exc:
        assert str(path) in str(exc) and "damaged" in str(exc)
        return
    # The swallowed header reads "well" to pydicom: the image checks must refuse it.
    assert name == "swallowed.dcm" and "Rows" not in ds


def test_deid_dicom_goes_on_past_every_damaged_file(mixed, tmp_path, capsys):
    src, good = mixed
    records = deidentify_tree(src, tmp_path / "out", DicomDeidentifier(KEY, pixels="off"))
    by_file = {r.file: r for r in records}
    for name in DAMAGE:
        record = by_file[f"damaged/{name}"]
        assert record.status == "skipped" and record.reason, name
    assert sum(r.status == "ok" for r in records) == len(good)
    assert not (tmp_path / "out" / "damaged").exists() or \
        not any((tmp_path / "out" / "damaged").iterdir())
    # And from the command line: no traceback, the good files written, exit status 0
    # (some were done), the damaged ones listed.
    assert main(["deid-dicom", str(src), str(tmp_path / "cli"), "--pixels", "off",
                 "--key-file", str(tmp_path / "k.key"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "damaged" in err


def test_the_gate_is_not_clean_when_an_original_could_not_be_read(mixed, tmp_path):
    src, _ = mixed
    out = tmp_path / "out"
    deidentify_tree(src, out, DicomDeidentifier(KEY, pixels="off"))
    report = scan_leaks(src, out, ocr=False)
    skipped = {Path(path).name for path, _ in report.skipped}
    assert skipped == set(DAMAGE) and not report.clean


def test_updp_run_records_damaged_studies_and_processes_the_rest(mixed, tmp_path, tiny_models):
    from updp_napari.pipeline import run_pipeline

    src, good = mixed
    summary = run_pipeline(src, tmp_path / "ws", model=tiny_models[0], scorers=tiny_models[1],
                           pixels="off")
    refused = {Path(name).name for _, name, _ in summary.failed} | \
        {Path(name).name for name, _ in summary.not_studies}
    assert set(DAMAGE) <= refused
    assert summary.done == len(good)
    for _, _, reason in summary.failed:
        assert "Traceback" not in reason and "\n" not in reason


def test_symbolic_links_are_not_followed(mixed, tmp_path):
    from updp_napari.deid.report import ReportDeidentifier
    from updp_napari.deid.report.batch import deidentify_folder

    src, good = mixed
    secret = tmp_path / "outside" / "secret.dcm"
    secret.parent.mkdir()
    shutil.copy(src / good[0] / "image.dcm", secret)
    (src / "linked.dcm").symlink_to(secret)
    written = deidentify_tree(src, tmp_path / "out", DicomDeidentifier(KEY, pixels="off"))
    records = {r.file: r for r in written}
    assert records["linked.dcm"].status == "skipped" and "link" in records["linked.dcm"].reason
    assert not (tmp_path / "out" / "linked.dcm").exists()

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "a.txt").write_text("Seen by Dr. Okafor.", encoding="utf-8")
    outside = tmp_path / "outside" / "notes.txt"
    outside.write_text("private notes of Ann Lee", encoding="utf-8")
    (reports / "b.txt").symlink_to(outside)
    result = deidentify_folder(reports, tmp_path / "redacted", ReportDeidentifier(use_plugins=False))
    assert [str(rel) for rel, _ in result.skipped] == ["b.txt"]
    assert (tmp_path / "redacted" / "a.txt").exists() and not (tmp_path / "redacted" / "b.txt").exists()


def test_no_value_of_a_file_reaches_warnings_or_output(tmp_path, capsys):
    """pydicom warns about an invalid UID with its digits; the product lets none out."""
    import logging
    import warnings

    src = tmp_path / "in"
    src.mkdir()
    test_files = Path(pydicom.__file__).parent / "data" / "test_files"
    shutil.copy(test_files / "rtdose_rle_1frame.dcm", src / "dose.dcm")
    uid_digits = "0123.4567.89012345678901"
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    from pydicom import config

    # As a fresh process finds pydicom: warning about values (another test may have quietened it).
    config.settings.reading_validation_mode = config.WARN
    config.settings.writing_validation_mode = config.WARN
    handler = Keep()
    logging.getLogger("pydicom").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["deid-dicom", str(src), str(tmp_path / "out"), "--pixels", "off",
                         "--key-file", str(tmp_path / "k.key"), "-q"]) == 0
            assert main(["scan-leaks", str(src), str(tmp_path / "out"), "--no-ocr", "-q"]) == 0
    finally:
        logging.getLogger("pydicom").removeHandler(handler)
    out = capsys.readouterr()
    said = [str(w.message) for w in caught] + records + [out.out, out.err]
    assert not [s for s in said if uid_digits in s]


def test_folders_are_owner_only_whatever_the_umask(mixed, tmp_path):
    import os

    from updp_napari.deid.report import ReportDeidentifier
    from updp_napari.deid.report.batch import deidentify_folder

    src, _ = mixed
    reports = tmp_path / "reports" / "site"
    reports.mkdir(parents=True)
    (reports / "a.txt").write_text("Seen by Dr. Okafor.", encoding="utf-8")
    old = os.umask(0)
    try:
        deidentify_tree(src, tmp_path / "new" / "out", DicomDeidentifier(KEY, pixels="off"),
                        record_path=tmp_path / "ws" / "records" / "r.jsonl")
        deidentify_folder(tmp_path / "reports", tmp_path / "red" / "dacted",
                          ReportDeidentifier(use_plugins=False))
    finally:
        os.umask(old)
    made = [tmp_path / "new", tmp_path / "new" / "out", tmp_path / "ws", tmp_path / "ws" / "records",
            tmp_path / "red", tmp_path / "red" / "dacted", tmp_path / "red" / "dacted" / "site"]
    made += [p for p in (tmp_path / "new" / "out").rglob("*") if p.is_dir()]
    for folder in made:
        assert folder.stat().st_mode & 0o777 == 0o700, folder
