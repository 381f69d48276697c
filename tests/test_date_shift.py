"""The per-patient date shift never writes one of the study's dates onto another of them,
read either way round (08/05/2024 moved back 89 days is 05/08/2024: 5 August, read day-first).

The key below gives the sample patient p0005 exactly that keyed shift; it made the export of a
whole workspace fail its leak scan about once in 250 runs with a random key."""

import datetime as dt
import hashlib
from pathlib import Path

import pydicom

from updp_napari.core.keys import SHIFT_RANGE, date_shift_days, keyed_int
from updp_napari.deid.dicom import DicomDeidentifier, FileRecord
from updp_napari.deid.leaks import collect_identifiers
from updp_napari.deid.report import ReportDeidentifier
from updp_napari.deid.report.header_values import header_identifiers, patient_key

STUDY = Path(__file__).resolve().parent.parent / "sample_data" / "p0005_s02"
COLLIDING_KEY = hashlib.sha256(b"collide-517").digest()


def _study():
    ds = pydicom.dcmread(STUDY / "image.dcm", stop_before_pixels=True)
    return ds, (STUDY / "report.txt").read_text(encoding="utf-8")


def test_the_fixture_key_gives_the_colliding_shift():
    ds, _ = _study()
    raw = -(SHIFT_RANGE[0] + keyed_int(COLLIDING_KEY, "date-shift", patient_key(ds).upper(),
                                       SHIFT_RANGE[1] - SHIFT_RANGE[0] + 1))
    exam = dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date()
    moved = exam + dt.timedelta(days=raw)
    assert (moved.month, moved.day) == (exam.day, exam.month)  # the collision itself
    # Without dates, the keyed shift is what it always was.
    assert date_shift_days(COLLIDING_KEY, patient_key(ds)) == raw
    chosen = date_shift_days(COLLIDING_KEY, patient_key(ds), {exam})
    assert chosen != raw and SHIFT_RANGE[0] <= -chosen <= SHIFT_RANGE[1]


def test_no_shifted_date_reads_as_an_original_one():
    dates = {dt.date(2024, 8, 5), dt.date(2023, 3, 4), dt.date(1951, 5, 10), dt.date(2024, 1, 2)}
    for i in range(300):
        key = hashlib.sha256(b"k%d" % i).digest()
        shift = dt.timedelta(days=date_shift_days(key, "PATIENT", dates))
        for d in dates:
            moved = d + shift
            swapped = dt.date(moved.year, moved.day, moved.month) if moved.day <= 12 else moved
            assert moved not in dates and swapped not in dates


def test_report_and_header_move_together_and_the_scanner_finds_no_date(tmp_path):
    ds, text = _study()
    ids = collect_identifiers(ds)
    header = header_identifiers(ds)
    report = ReportDeidentifier(use_plugins=False).deidentify(
        text, header, mode="surrogate", key=COLLIDING_KEY)
    assert "date" not in ids.find(report.text)
    # The header alone moves its dates by the same number of days as the report.
    full = pydicom.dcmread(STUDY / "image.dcm")
    DicomDeidentifier(COLLIDING_KEY, pixels="off").deidentify_dataset(
        full, FileRecord(file="image.dcm", status="ok"))
    moved = dt.datetime.strptime(full.StudyDate, "%Y%m%d").date()
    original = dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date()
    shift = date_shift_days(COLLIDING_KEY, header.patient_key, header.all_dates)
    assert moved - original == dt.timedelta(days=shift)
    exam = original.strftime("%m/%d/%Y")
    assert exam in text
    assert (original + dt.timedelta(days=shift)).strftime("%m/%d/%Y") in report.text
