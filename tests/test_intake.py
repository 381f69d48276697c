"""Intake of real archives by ``updp run``: DICOM files without a suffix, DICOMDIR sets,
frontal chest radiographs only, one case per instance, and the site of the cases."""

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.studies import DICOMDIR_REASON, MEDIA_DIRECTORY, find_studies

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
FRONTAL_ONLY = "only frontal views are cases"


def _image(study: str) -> Path:
    return SAMPLE / study / "image.dcm"


def _copy(study: str, dst: Path, new_instance: bool = False, **tags) -> pydicom.Dataset:
    """The study's image saved at ``dst`` (any name), with ``tags`` set (None deletes one)."""
    ds = pydicom.dcmread(_image(study))
    if new_instance:
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in tags.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)
    return ds


def _uid(study: str) -> str:
    return pydicom.dcmread(_image(study), stop_before_pixels=True).StudyInstanceUID


def _dicomdir_set(root: Path, studies) -> None:
    """A DICOMDIR media set as PACS and CD exports write it: DICOMDIR and extensionless
    images in PT*/ST*/SE*/IM* folders."""
    fs = FileSet()
    for study in studies:
        fs.add(_image(study))
    fs.write(root)


def test_extensionless_images_are_found_and_a_dicomdir_is_an_index(tmp_path, monkeypatch):
    root = tmp_path / "cd"
    _dicomdir_set(root, ["p0000_s01", "p0001_s01"])
    images = sorted(p.relative_to(root).as_posix() for p in root.rglob("IM*"))
    assert len(images) == 2 and all("." not in name for name in images)
    assert (root / "DICOMDIR").is_file()
    # The same index under another name: known by its Media Storage SOP Class.
    shutil.copy(root / "DICOMDIR", root / "PT000000" / "INDEX")
    assert pydicom.dcmread(root / "PT000000" / "INDEX").file_meta.MediaStorageSOPClassUID \
        == MEDIA_DIRECTORY
    # A file named by its SOP Instance UID: a suffix not known here.
    _copy("p0002_s01", root / "export" / "1.2.826.0.1.3680043.99.7")
    # Companions, passed over silently.
    (root / "notes.txt").write_text("not a report of any study", encoding="utf-8")
    (root / "index.csv").write_text("a,b\n", encoding="utf-8")
    (root / "export" / "thumb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    (root / "export" / "meta.json").write_text("{}", encoding="utf-8")
    (root / ".DS_Store").write_bytes(bytes(200))
    # Neither DICOM nor a companion: listed, after a look at its first 132 bytes only.
    blob = root / "export" / "BLOB"
    blob.write_bytes(b"\x00\x01" * 200_000)

    from updp_napari import ingest

    parsed, read_sizes = [], []
    real_read, real_open = ingest.read_dataset, Path.open

    def spy_read(path, **options):
        parsed.append(Path(path).name)
        return real_read(path, **options)

    class SpyFile:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def read(self, size=-1):
            data = self.fh.read(size)
            read_sizes.append(len(data))
            return data

    def spy_open(self, *args, **kwargs):
        fh = real_open(self, *args, **kwargs)
        return SpyFile(fh) if self.name == "BLOB" else fh

    monkeypatch.setattr(ingest, "read_dataset", spy_read)
    monkeypatch.setattr(Path, "open", spy_open)
    found = find_studies(root)
    monkeypatch.undo()

    assert sorted(s.name for s in found.studies) == sorted(
        images + ["export/1.2.826.0.1.3680043.99.7"])
    assert {s.study_uid for s in found.studies} == {_uid(s) for s in
                                                    ("p0000_s01", "p0001_s01", "p0002_s01")}
    assert found.skipped == [("DICOMDIR", DICOMDIR_REASON),
                             ("PT000000/INDEX", DICOMDIR_REASON),
                             ("export/BLOB", "not a DICOM file (no DICOM preamble)")]
    assert "BLOB" not in parsed and "DICOMDIR" not in parsed  # never parsed
    assert not {"notes.txt", "index.csv", "thumb.png", "meta.json", ".DS_Store"} & set(parsed)
    assert read_sizes and sum(read_sizes) <= 132


def test_a_file_with_the_preamble_is_read_as_dicom(tmp_path):
    root = tmp_path / "in"
    _copy("p0000_s01", root / "a" / "IM1")
    (root / "a" / "IM2").write_bytes(bytes(128) + b"DICM" + b"\xff" * 64)
    (root / "a" / "IM3").write_bytes(bytes(128) + b"DICN" + b"\xff" * 64)
    found = find_studies(root)
    assert [s.name for s in found.studies] == ["a/IM1"]
    # IM2 was parsed (what the parser made of it is no study); IM3 was not.
    assert found.skipped == [("a/IM2", "no StudyInstanceUID"),
                             ("a/IM3", "not a DICOM file (no DICOM preamble)")]


def test_only_frontal_chest_radiographs_are_cases(tmp_path):
    root = tmp_path / "in"
    _copy("p0000_s01", root / "s1" / "frontal")
    _copy("p0000_s01", root / "s1" / "lateral", new_instance=True, ViewPosition="LL")
    _copy("p0000_s01", root / "s1" / "oblique", new_instance=True, ViewPosition="RAO")
    _copy("p0000_s01", root / "s1" / "xtable", new_instance=True,
          ViewPosition="XTABLE_LAT_DECUB")
    _copy("p0001_s01", root / "s2" / "abdomen", BodyPartExamined="ABDOMEN")
    _copy("p0002_s01", root / "s3" / "ct", Modality="CT")
    _copy("p0003_s01", root / "s4" / "thorax", ViewPosition="PA", BodyPartExamined="Thorax",
          Modality="CR")
    _copy("p0004_s01", root / "s5" / "untagged", ViewPosition=None, BodyPartExamined=None,
          Modality=None)
    found = find_studies(root)
    assert [s.name for s in found.studies] == ["s1/frontal", "s4/thorax", "s5/untagged"]
    # The lateral view of study 1 took no case: its frontal image is the study's one case.
    assert found.studies[0].study_uid == _uid("p0000_s01")
    reasons = dict(found.skipped)
    assert set(reasons) == {"s1/lateral", "s1/oblique", "s1/xtable", "s2/abdomen", "s3/ct"}
    assert reasons["s1/lateral"] == f"a lateral view (ViewPosition LL): {FRONTAL_ONLY}"
    assert reasons["s1/oblique"] == f"an oblique view (ViewPosition RAO): {FRONTAL_ONLY}"
    # A free-text ViewPosition is recognised but not quoted.
    assert reasons["s1/xtable"] == f"a lateral view (by its ViewPosition): {FRONTAL_ONLY}"
    assert reasons["s2/abdomen"].startswith("not a chest image")
    assert reasons["s3/ct"].startswith("not a radiograph")
    for reason in (reasons["s2/abdomen"], reasons["s3/ct"], reasons["s1/xtable"]):
        assert "ABDOMEN" not in reason and "CT" not in reason and "XTABLE" not in reason


def test_only_laterals_left_is_no_study(tmp_path):
    root = tmp_path / "in"
    _copy("p0000_s01", root / "IM1", ViewPosition="LAT")
    with pytest.raises(InputError, match="no studies found.*1 files could not be used"):
        find_studies(root)


def test_the_same_instance_twice_is_one_case(tmp_path):
    root = tmp_path / "in"
    _copy("p0000_s01", root / "a" / "IM1")
    second = _copy("p0000_s01", root / "a" / "IM2", new_instance=True)
    (root / "b").mkdir()
    shutil.copy(root / "a" / "IM1", root / "b" / "IM1")  # the same instance, byte for byte
    found = find_studies(root)
    assert [s.name for s in found.studies] == ["a/IM1", "a/IM2"]
    uid = _uid("p0000_s01")
    # Two frontal images of one study: a case each, as before.
    assert [s.study_uid for s in found.studies] == [uid, f"{uid}/{second.SOPInstanceUID}"]
    assert found.skipped == [("b/IM1", "the same image as a/IM1")]

    # The same instance in another encoding is another file: a case of its own (which copy
    # is sound shows only when its pixels are read), never silently dropped.
    ds = pydicom.dcmread(root / "a" / "IM1")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    (root / "c").mkdir()
    ds.save_as(root / "c" / "IM1", enforce_file_format=True)
    again = find_studies(root)
    assert [s.name for s in again.studies] == ["a/IM1", "a/IM2", "c/IM1"]
    assert again.skipped == [("b/IM1", "the same image as a/IM1")]


def test_site_of_the_run_and_of_the_manifest_rows(tmp_path):
    root = tmp_path / "archive"
    for n, study in enumerate(["p0000_s01", "p0001_s01", "p0002_s01"]):
        _copy(study, root / f"img{n}")
    assert {s.site for s in find_studies(root).studies} == {None}
    assert {s.site for s in find_studies(root, site=" NUH-East ").studies} == {"NUH-East"}

    manifest = root / "manifest.csv"
    manifest.write_text("image,report,site\nimg0,,S-North\nimg1,,\n", encoding="utf-8")
    listed = find_studies(root, manifest)
    assert [(s.name, s.site) for s in listed.studies] == [("img0", "S-North"), ("img1", None)]
    listed = find_studies(root, manifest, site="NUH-East")  # a row's own site wins
    assert [(s.name, s.site) for s in listed.studies] == [("img0", "S-North"),
                                                          ("img1", "NUH-East")]
    manifest.write_text("image,report,site\nimg0,,ok\nimg1,,bad\x07site\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: a site name is printable text"):
        find_studies(root, manifest)
    with pytest.raises(InputError, match="--site: a site name"):
        find_studies(root, site="x" * 65)

    # A cohort's own site codes win over --site.
    cohort = find_studies(SAMPLE, site="NUH-East")
    assert all(s.site and s.site != "NUH-East" for s in cohort.studies)
    assert [s.site for s in cohort.studies] == [s.site for s in find_studies(SAMPLE).studies]


def test_updp_run_reads_a_dicomdir_set_with_its_site(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    root, ws = tmp_path / "cd", tmp_path / "ws"
    _dicomdir_set(root, ["p0000_s01"])
    accession = pydicom.dcmread(_image("p0000_s01"), stop_before_pixels=True).AccessionNumber
    shutil.copy(SAMPLE / "p0000_s01" / "report.txt", root / f"{accession}.txt")
    assert main(["run", str(root), str(ws), "--filter-model", str(model), "--scorers",
                 str(scorers), "--pixels", "off", "--site", "NUH-East", "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 case(s)" in out and "1 done now" in out
    assert f"DICOMDIR: {DICOMDIR_REASON}" in out
    assert main(["cases", str(ws)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) >= 2 and "NUH-East" in table[1]
