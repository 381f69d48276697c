"""Reading images and reports: display orientation, windows, and clear errors."""

import pydicom
import pytest

from updp_napari.core.errors import InputError
from updp_napari.ingest import read_dicom, read_report


def test_truncated_and_foreign_files_name_the_file(cohort, tmp_path):
    data = (cohort / "p0000_s01" / "image.dcm").read_bytes()
    cases = {"short.dcm": data[:1000], "cut.dcm": data[: len(data) - 4000],
             "text.dcm": b"just some text, not an image"}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError) as info:
            read_dicom(path)
        assert str(path) in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        read_dicom(tmp_path / "missing.dcm")


def test_error_messages_do_not_quote_header_values(cohort, tmp_path):
    ds = pydicom.dcmread(cohort / "p0000_s01" / "image.dcm")
    data = (cohort / "p0000_s01" / "image.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 4000])
    with pytest.raises(InputError) as info:
        read_dicom(path)
    assert str(ds.PatientID) not in str(info.value)
    assert ds.PatientName.family_name not in str(info.value)


def test_window_from_the_header(cohort):
    img = read_dicom(cohort / "p0000_s01" / "image.dcm")
    ds = pydicom.dcmread(cohort / "p0000_s01" / "image.dcm")
    low, high = img.contrast_limits
    assert high - low == pytest.approx(float(ds.WindowWidth))
    assert img.header["PatientID"] == ds.PatientID


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
def test_reports_in_common_encodings(tmp_path, encoding):
    text = "Findings: no effusion. Signed by Dr. Zoë Müller — 03/04/2019."
    path = tmp_path / "report.txt"
    path.write_bytes(text.encode(encoding))
    assert read_report(path) == text


def test_binary_report_is_refused(tmp_path):
    path = tmp_path / "report.txt"
    path.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match="binary"):
        read_report(path)
