"""The identifiers of a study's DICOM header that its report may repeat."""

from __future__ import annotations

import datetime as dt
import os
from functools import cache

from ...core.vocabulary import UNSPACED_SCRIPT
from .detectors import HeaderIdentifiers

_PERSON_ELEMENTS = ("PatientName", "ReferringPhysicianName", "PerformingPhysicianName",
                    "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician")
_ID_ELEMENTS = ("PatientID", "AccessionNumber", "StudyID", "OtherPatientIDs")
_DATE_ELEMENTS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


def _person_parts(value) -> list[str]:
    """A person name's words, from every component group (``Yamada^Tarou=山田^太郎=やまだ^たろう``:
    alphabetic, ideographic and phonetic) and every component."""
    text = str(value).replace("^", " ").replace(",", " ").replace("=", " ")
    parts = [p for p in text.split() if len(p.strip(".")) >= 1]
    # A script written without spaces writes the whole name as one run (李华, 山田太郎).
    for group in str(value).split("="):
        if UNSPACED_SCRIPT.search(group):
            run = "".join(group.split("^")[:2]).replace(" ", "")
            if run not in parts:
                parts.append(run)
    return parts


IDENTIFIER_VRS = frozenset({"PN", "LO", "SH", "DA"})
PERSON_AND_ID_ELEMENTS = frozenset(_PERSON_ELEMENTS + _ID_ELEMENTS)


@cache
def keyword_of(tag: int) -> str:
    """The dictionary keyword of a tag ("" for private and unknown ones), looked up once."""
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) if (tag >> 16) % 2 == 0 else ""


@cache
def dictionary_vrs(tag: int) -> frozenset[str]:
    """The VRs the DICOM dictionary allows ``tag`` ("US or SS" is two); empty when the
    dictionary does not know it."""
    from pydicom.datadict import dictionary_VR

    try:
        return frozenset(v.strip() for v in dictionary_VR(tag).split(" or "))
    except KeyError:
        return frozenset()


def dictionary_vr(tag: int) -> str | None:
    """The dictionary's one VR for ``tag`` (None: unknown, or several allowed)."""
    vrs = dictionary_vrs(tag)
    return next(iter(vrs)) if len(vrs) == 1 else None


def add_identifiers(found: HeaderIdentifiers, elem) -> None:
    """Add what one (non-sequence) element holds of names, IDs, dates and institutions."""
    keyword = keyword_of(int(elem.tag))
    if elem.VR not in IDENTIFIER_VRS and keyword not in PERSON_AND_ID_ELEMENTS:
        return  # names, IDs, institutions and dates have these VRs, unless damaged
    values = elem.value if elem.VM > 1 else [elem.value]
    if isinstance(elem.value, (bytes, bytearray)):  # a name element read as OB or UN
        values = [bytes(elem.value).decode("latin-1").strip("\x00 ")]
    for value in values:
        if value in (None, ""):
            continue
        if elem.VR == "PN" or keyword in _PERSON_ELEMENTS:
            parts = _person_parts(value)
            if parts:
                found.names.append(parts)
        elif keyword in _ID_ELEMENTS or (keyword == "" and elem.VR in ("LO", "SH")
                                         and any(c.isdigit() for c in str(value))):
            found.ids.append(str(value).strip())
        elif elem.VR == "DA" and keyword in _DATE_ELEMENTS:
            found.dates.append(str(value))
        elif keyword == "InstitutionName":
            found.institutions.append(str(value).strip())


def patient_key(ds) -> str:
    """What the patient's date shift is keyed on: the patient ID, else the patient's name."""
    pid = str(ds.get("PatientID", "") or "").strip()
    return pid or " ".join(_person_parts(ds.get("PatientName", "") or ""))


def header_identifiers(ds) -> HeaderIdentifiers:
    """Collect names, IDs, dates and institutions from a pydicom dataset, sequences included."""
    found = HeaderIdentifiers(patient_key=patient_key(ds))

    def walk(dataset) -> None:
        for elem in dataset:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item)
            else:
                add_identifiers(found, elem)

    walk(ds)
    found.all_dates = dataset_dates(ds)
    return found


def dataset_dates(ds) -> set[dt.date]:
    """Every calendar date the dataset holds (DA values, and DT values' dates), sequences and
    private elements included: what a date shift must not map one onto another of. Elements
    are read raw where they are still raw, so nothing is converted on the way."""
    found: set[dt.date] = set()

    def add(value) -> None:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        for part in str(value).split("\\") if isinstance(value, (str, bytes)) else value:
            try:
                found.add(dt.datetime.strptime(str(part).strip()[:8], "%Y%m%d").date())
            except ValueError:
                continue

    def walk(dataset) -> None:
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag)
            vr = raw.VR
            if vr in (None, "UN"):
                vr = dictionary_vr(tag)
            if vr == "SQ":
                for item in dataset[tag].value or ():
                    walk(item)
            elif vr in ("DA", "DT") and raw.value:
                add(raw.value)

    walk(ds)
    return found


def read_header(path: str | os.PathLike) -> HeaderIdentifiers:
    from ...ingest import read_dataset

    return header_identifiers(read_dataset(path, stop_before_pixels=True))
