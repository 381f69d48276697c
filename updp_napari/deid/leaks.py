"""The leak scanner: the export gate that proves a de-identified copy holds none of the
identifiers of its original.

Each original DICOM file is paired with the file of the same relative path in the
de-identified tree. The original's identifying values (names in every order, IDs, dates in
their common written forms, UIDs, addresses, phone numbers, institutions, devices, private
text, at any depth of nesting) are searched, normalised, in every element of the
counterpart, in the reports beside it, in its path, and in the text OCR reads from its
pixels. A finding names the file, the place and the category, never the value, so the
scanner's output can be shared.

The scanner collects the original's identifiers by its own rules, not the de-identifiers':
a value the header profile forgot is still searched for. Only inside the original's free
text (a StudyDescription naming the patient) does it use the report rules to tell which
words are identifying.
"""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError, UpdpError
from ..core.vocabulary import MONTHS, UNSPACED_SCRIPT

# Files in an originals tree that accompany a study but are not images: the report, its
# redacted JSON, masks, ground truth. They are not scanned as originals (the de-identified
# reports beside each counterpart are searched instead); every other file is tried as DICOM.
COMPANION_SUFFIXES = frozenset({".txt", ".json", ".jsonl", ".png", ".jpg", ".jpeg", ".csv",
                                ".tsv", ".md", ".toml"})
REPORT_SUFFIXES = (".txt", ".json")

# Kinds of finding: PHI found in the counterpart; no counterpart at the mirrored path;
# a counterpart (or its pixels) that cannot be read, so nothing can be proved about it.
LEAK, MISSING, UNREADABLE = "leak", "missing", "unreadable"

# Words that fill DICOM fields everywhere. A value made only of them identifies nobody, and
# searching it would flag every de-identified file that keeps a description or a code.
GENERIC_WORDS = frozenset("""
    yes no none null unknown anonymous anon removed redacted deidentified test n a na
    chest thorax radiology radiography imaging image images department dept xray x ray xr
    dx cr ct mr us pa ap lat lateral portable left right upright supine erect original
    primary secondary derived other monochrome1 monochrome2 identity inverse linear
    hospital medical center centre clinic clinical health university general regional
    patient physician doctor staff technologist operator station main mrs ms dr md phd
""".split())

_MONTHS = tuple(m.lower() for m in MONTHS)

# Element keywords by category. PN values are names wherever they are; DA/DT/TM/UI/AS by VR.
_ID_KEYWORDS = frozenset({
    "PatientID", "OtherPatientIDs", "StudyID", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID", "AdmissionID", "ServiceEpisodeID",
    "MedicalRecordLocator", "PlacerOrderNumberImagingServiceRequest",
    "FillerOrderNumberImagingServiceRequest", "PlacerOrderNumberProcedure",
    "FillerOrderNumberProcedure", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
    "InterpretationID", "ResultsID", "StudyIDIssuer",
})
_ACCESSION_KEYWORDS = frozenset({"AccessionNumber"})
_INSTITUTION_KEYWORDS = frozenset({
    "InstitutionName", "InstitutionalDepartmentName", "IssuerOfPatientID",
    "IssuerOfAdmissionID", "IssuerOfServiceEpisodeID", "ResponsibleOrganization",
    "RequestingService", "LocalNamespaceEntityID", "UniversalEntityID", "ClinicalTrialSiteName",
    "IssuerOfClinicalTrialSubjectID",
})
_DEVICE_KEYWORDS = frozenset({
    "DeviceSerialNumber", "StationName", "DetectorID", "DeviceID", "PlateID", "CassetteID",
    "GantryID", "GeneratorID", "XRayDetectorID", "XRaySourceID", "SecondaryCaptureDeviceID",
    "DeviceLabel", "ScheduledStationName", "PerformedStationName", "ScheduledStationAETitle",
    "PerformedStationAETitle", "StationAETitle", "SourceApplicationEntityTitle",
})
# Free text that PS3.15 removes because it may say anything about the patient. The whole
# value is searched (not its words: those are mostly ordinary clinical vocabulary).
# Kept values that name the equipment and its codes, never a person.
_PUBLIC_KEYWORDS = frozenset({"Manufacturer", "ManufacturerModelName", "SoftwareVersions",
                              "CodeMeaning", "CodingSchemeDesignator"})
_TEXT_KEYWORDS = frozenset({
    "PatientComments", "AdditionalPatientHistory", "ImageComments", "StudyComments",
    "RequestedProcedureComments", "ImagingServiceRequestComments", "InterpretationText",
    "MedicalAlerts", "Allergies", "Occupation", "RegionOfResidence", "MilitaryRank",
    "BranchOfService", "PatientReligiousPreference", "SpecialNeeds", "PatientState",
    "ReasonForTheRequestedProcedure", "ReasonForStudy", "IdentifyingComments", "VisitComments",
})
_NAME_KEYWORDS = frozenset({"OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                            "ResponsiblePerson", "PersonName"})

# VRs whose values are binary numbers: no text to leak, nothing to search.
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT", "US or SS"})
# VRs with a fixed format (dates, numbers, UIDs): searched for whole tokens only, because
# the digit-only comparison below would find IDs inside unrelated runs of numbers there.
_FORMATTED_VRS = frozenset({"DA", "DT", "TM", "DS", "IS", "UI", "AS"})
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
# Image data (searched by OCR instead), ICC profiles and overlay bit planes: no text in them.
_BULK_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x00282000})
_BULK_GROUP_MASKS = (0x60003000,)  # overlay bit planes (60xx,3000)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

_NON_ALNUM = re.compile(r"[\W_]+")
_COMBINING = re.compile(r"[\u0300-\u036f]+")
_PRINTABLE_RUN = re.compile(r"[\x20-\x7e]{4,}")
_ZIP = re.compile(r"(?<!\d)\d{5}(?:-\d{4})?(?!\d)")
# Characters OCR confuses in small print, folded to one form on both sides of a comparison.
_OCR_CONFUSABLE = str.maketrans("oqdiljsbzg", "0000111826")


# ---------------------------------------------------------------------------- findings

@dataclass(frozen=True)
class Leak:
    """One finding: PHI of ``category`` at ``place`` of the de-identified ``file``, or (by
    ``kind``) a missing or unreadable counterpart. Never holds the value itself."""

    file: str
    place: str = ""
    category: str = ""
    kind: str = LEAK
    sources: tuple[str, ...] = ()  # where the value sat in the original (element paths)
    reason: str = ""  # why an unreadable counterpart (or its pixels) could not be read

    def line(self) -> str:
        if self.kind == MISSING:
            return f"{self.file}  -  missing (no de-identified counterpart)"
        if self.kind == UNREADABLE:
            return f"{self.file}  {self.place}  unreadable: {self.reason}"
        return f"{self.file}  {self.place}  {self.category}"

    def as_json(self) -> dict:
        return {"kind": self.kind, "file": self.file, "place": self.place,
                "category": self.category, "sources": list(self.sources),
                "reason": self.reason}


@dataclass
class LeakReport:
    leaks: list[Leak] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (original path, reason)
    files: int = 0  # originals read and paired

    @property
    def clean(self) -> bool:
        """No leak, and every original read whole: a file the scanner could not read is not
        proven clean (fail closed)."""
        return not self.leaks and not self.skipped

    def count(self, kind: str) -> int:
        return sum(1 for leak in self.leaks if leak.kind == kind)

    def summary(self) -> str:
        leaks = [leak for leak in self.leaks if leak.kind == LEAK]
        n_files = len({leak.file for leak in leaks})
        parts = [f"{len(leaks)} leak{'s' * (len(leaks) != 1)} in {n_files} "
                 f"file{'s' * (n_files != 1)}"]
        missing, unreadable = self.count(MISSING), self.count(UNREADABLE)
        if missing:
            parts.append(f"{missing} missing counterpart{'s' * (missing != 1)}")
        if unreadable:
            parts.append(f"{unreadable} unreadable")
        parts.append(f"{len(self.skipped)} skipped (could not be read whole, so not proven clean)"
                     if self.skipped else "0 skipped")
        verdict = "clean" if self.clean else "NOT clean"
        return (f"scanned {self.files} file{'s' * (self.files != 1)}: {verdict}; "
                + ", ".join(parts))

    def as_json(self) -> dict:
        return {"files": self.files, "clean": self.clean,
                "leaks": [leak.as_json() for leak in self.leaks],
                "skipped": [{"file": path, "reason": reason} for path, reason in self.skipped],
                "summary": self.summary()}


# ------------------------------------------------------------------------ normalising

def normalise(text: str) -> str:
    """Case-folded, accents dropped, every run of punctuation/space/``^`` one space, padded
    with a space each side so that ``" tok " in normalise(x)`` is a whole-token search.
    Read first as a person reads it, as the report rules do: invisible and control
    characters inside a name removed, full-width letters folded, HTML and RTF markup gone
    (the text of every part of it kept)."""
    from .report.normalise import fold_text

    text = fold_text(text)
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return " " + _NON_ALNUM.sub(" ", text.casefold()).strip() + " "


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _bytes_text(raw: bytes) -> str:
    """Bytes of OB/UN/private elements read as text, leniently: what a person could read in them."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("ascii", errors="replace")
    if raw.count(b"\x00") * 3 > len(raw):
        # UTF-16 text (or strings padded with NULs): read it with the NULs taken out too.
        text += "\n" + raw.replace(b"\x00", b"").decode("ascii", errors="replace")
    return text


def _ocr_fold(text: str) -> str:
    return normalise(text).replace(" ", "").translate(_OCR_CONFUSABLE)


def _side_by_side(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Two word boxes on one line (overlapping by half the smaller height), at most one
    and a half line heights apart."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(a[2], b[2])
    return overlap >= 0.5 * max(1, min(ha, hb)) and gap <= 1.5 * max(ha, hb, 1)


def _infix_distance(pattern: str, text: str) -> int:
    """Fewest edits turning ``pattern`` into some substring of ``text``."""
    prev = [0] * (len(text) + 1)
    for i, p in enumerate(pattern, 1):
        cur = [i] + [0] * len(text)
        for j, t in enumerate(text, 1):
            cur[j] = min(prev[j - 1] + (p != t), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return min(prev)


class Identifiers:
    """The identifying values of one original, normalised, each with its category and the
    element path it came from. ``find(text)`` says which of them ``text`` contains."""

    def __init__(self) -> None:
        self._tokens: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._digits: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._digit_re: re.Pattern | None = None
        self._folded: dict[str, set[tuple[str, str]]] | None = None
        # Normalised values of the original's public elements that identify nobody.
        self.public_text: set[str] = set()
        # Values searched as written, punctuation and all ("09:55:28"): normalised, they
        # would match digits of neighbouring numbers by chance.
        self._exact: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._unspaced: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.public_digits: set[str] = set()

    def in_public_text(self, norm: str) -> bool:
        """Whether the normalised (space-padded) ``norm`` stands, as whole words, in a value
        of the original's public, non-identifying elements."""
        return any(norm in public for public in self.public_text)

    def __len__(self) -> int:
        return len(self._tokens) + len(self._digits)

    def add(self, text: str, category: str, source: str, *, min_alnum: int = 4,
            min_all_digits: int = 4) -> None:
        norm = normalise(text)
        words = norm.split()
        alnum = "".join(words)
        # Values too short ("M", "YES", "DX", "123") match everywhere and identify nobody;
        # values made only of generic DICOM words ("CHEST PA", "Radiology") likewise.
        size = len(alnum) + len(UNSPACED_SCRIPT.findall(alnum))  # an ideograph counts as two
        if size < min_alnum or (alnum.isdigit() and len(alnum) < min_all_digits):
            return
        if all(w in GENERIC_WORDS for w in words):
            return
        if UNSPACED_SCRIPT.search(norm):
            # Scripts written without spaces (山田太郎): searched as a run of characters.
            self._unspaced[alnum].add((category, source))
            return
        self._tokens[norm].add((category, source))
        self._folded = None

    def add_exact(self, text: str, category: str, source: str) -> None:
        self._exact[text].add((category, source))

    def add_digits(self, text: str, category: str, source: str, *, min_digits: int = 6) -> None:
        # Phone numbers and IDs are compared by their digits so that "(608) 555-0140",
        # "608.555.0140" and "6085550140" are one value. Shorter digit strings are left to the
        # whole-token search: as bare digits they would turn up by chance in other numbers.
        digits = _digits(text)
        if len(digits) >= min_digits:
            self._digits[digits].add((category, source))
            self._digit_re = self._folded = None

    def find(self, text: str, *, digits: bool = True) -> dict[str, set[str]]:
        """Categories of the identifiers found in ``text`` → the original elements they came from."""
        found: dict[str, set[str]] = defaultdict(set)
        if not text:
            return found
        hay = normalise(text)
        for tok, owners in self._tokens.items():
            if tok in hay:
                for cat, src in owners:
                    found[cat].add(src)
        if self._unspaced:
            joined = hay.replace(" ", "")
            for run, owners in self._unspaced.items():
                if run in joined:
                    for cat, src in owners:
                        found[cat].add(src)
        for exact, owners in self._exact.items():
            if exact in text:
                for cat, src in owners:
                    found[cat].add(src)
        if digits and self._digits and any(ch.isdigit() for ch in hay):
            for m in self._digit_pattern().finditer(hay):
                for cat, src in self._digits.get(m.group().replace(" ", ""), ()):
                    found[cat].add(src)
        return found

    def find_ocr(self, words: list[str], boxes: list[tuple[int, int, int, int]] | None = None
                 ) -> dict[str, set[str]]:
        """Like :meth:`find`, for the words OCR read: separators are often lost or misread
        (``^`` read as ``4``), letters confused with digits, a character dropped or wrong.
        Each identifier of five characters or more is also looked for inside each word (and
        each pair of neighbouring words, for a value split in two), separators removed and
        confusable characters folded, allowing one error from six characters and two from
        ten. Words are not run together further: OCR of anatomy yields long runs of random
        letters, in which short identifiers would turn up by chance. With ``boxes`` (where
        each word was read, x0, y0, x1, y1), a pair counts only when its words stand next
        to each other on one line: OCR lists fragments of anatomy from all over the image
        one after another, and two of them far apart once made a surname."""
        found = self.find(" ".join(words))
        folded = [_ocr_fold(w) for w in words]
        candidates = {w for w in folded if w}
        candidates |= {folded[i] + folded[i + 1] for i in range(len(folded) - 1)
                       if folded[i] and folded[i + 1]
                       and (boxes is None or _side_by_side(boxes[i], boxes[i + 1]))}
        for form, owners in self._folded_forms().items():
            errors = 0 if len(form) < 6 else 1 if len(form) < 10 else 2
            # A match with k errors keeps one of k + 1 pieces of the form unchanged: a cheap
            # test that spares the edit-distance search almost every time.
            step = -(-len(form) // (errors + 1))
            pieces = [form[i:i + step] for i in range(0, len(form), step)]
            for cand in candidates:
                if len(cand) < len(form) - errors or not any(pc in cand for pc in pieces):
                    continue
                if errors == 0 or _infix_distance(form, cand) <= errors:
                    for cat, src in owners:
                        found[cat].add(src)
                    break
        return found

    def _folded_forms(self) -> dict[str, set[tuple[str, str]]]:
        if self._folded is None:
            folded: dict[str, set[tuple[str, str]]] = defaultdict(set)
            for tok, owners in (*self._tokens.items(), *self._digits.items()):
                form = _ocr_fold(tok)
                if len(form) >= 5:
                    folded[form] |= owners
            self._folded = folded
        return self._folded

    def _digit_pattern(self) -> re.Pattern:
        if self._digit_re is None:
            # Digits with at most one separator between them (normalised text has only
            # spaces), not inside a longer run of digits; a letter before is fine ("MRN123…").
            alts = sorted((" ?".join(d) for d in self._digits), key=len, reverse=True)
            self._digit_re = re.compile(r"(?<![0-9])(?:" + "|".join(alts) + r")(?![0-9])")
        return self._digit_re


# ------------------------------------------------------------------------ collecting

def _element_name(elem) -> str:
    if elem.tag.is_private or not elem.keyword:
        return f"({elem.tag.group:04X},{elem.tag.element:04X})"
    return elem.keyword


def _is_bulk(tag) -> bool:
    return int(tag) in _BULK_TAGS or any(int(tag) & 0xFF00FFFF == m for m in _BULK_GROUP_MASKS)


def _text_values(elem) -> list[str]:
    value = elem.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (bytes, bytearray)):
        return [_bytes_text(bytes(value))]
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def _kind(elem) -> str | None:
    """What an element of the original holds, or None when it holds nothing identifying."""
    vr, kw = elem.VR, elem.keyword
    if elem.tag.is_private:
        if elem.tag.element < 0x100:
            return None  # private creator: names the vendor's dictionary, not the patient
        if vr in ("PN", "DA", "DT", "TM", "UI"):
            return {"PN": "name", "DA": "date", "DT": "datetime", "TM": "time", "UI": "uid"}[vr]
        if vr in _TEXT_VRS or vr in ("UN", "OB", "OW") or isinstance(elem.value, bytes):
            return "private"
        return None  # private numbers (DS, IS, binary) are measurements, not identifiers
    if vr == "PN" or kw in _NAME_KEYWORDS:
        return "name"
    if kw in _ACCESSION_KEYWORDS:
        return "accession"
    if kw in _ID_KEYWORDS:
        return "id"
    if "Address" in kw:
        return "address"
    if "Telephone" in kw or "Telecom" in kw:
        return "phone"
    if kw in _INSTITUTION_KEYWORDS:
        return "institution"
    if kw in _DEVICE_KEYWORDS:
        return "device"
    if kw in _TEXT_KEYWORDS:
        return "text"
    # Every date, time and instance UID is identifying (PS3.15 removes or replaces them).
    # Sex, modality, body part, sizes, counts and codes are not: they are left out here.
    return {"DA": "date", "DT": "datetime", "TM": "time", "UI": "uid", "AS": "age"}.get(vr)


def _letter_weight(part: str) -> int:
    """Letters in ``part``, a character of an unspaced script counting as two."""
    return sum(2 if UNSPACED_SCRIPT.match(ch) else 1 for ch in part if ch.isalpha())


def _name_components(value: str) -> tuple[str, str, str]:
    """(family, given, middle) of a name written ``LAST^FIRST^M``, ``LAST, FIRST M`` or
    ``First M Last``."""
    text = value.strip()
    if "^" in text:
        family, given, middle = ([*text.split("^"), "", ""])[:3]
    elif "," in text:
        family, _, rest = text.partition(",")
        words = rest.split()
        given, middle = (words[0] if words else ""), " ".join(words[1:])
    else:
        words = text.split()
        if len(words) < 2:
            return text, "", ""
        family, given, middle = words[-1], words[0], " ".join(words[1:-1])
    return family, given, middle


def _add_name(ids: Identifiers, value: str, source: str) -> None:
    ids.add(value, "name", source)
    for group in value.split("="):  # alphabetic=ideographic=phonetic representations
        family, given, middle = (normalise(p).strip() for p in _name_components(group))
        g_init, m_init = given[:1], middle[:1]
        forms = [(family, given, middle), (family, given), (given, middle, family),
                 (given, family), (given, m_init, family), (family, given, m_init),
                 (g_init, family), (family, g_init), (g_init, m_init, family)]
        for form in forms:
            if all(form):
                ids.add(" ".join(form), "name", source)
        # Each part alone too, from three letters ("Lee", "Cox"); shorter parts ("Li", "Wu")
        # are found only inside the forms above: alone they are syllables of other words.
        # Even a part the original also holds in a coded element ("RIVERA" typed as the image
        # type): deid-dicom empties such a value, and a copy of it left is the name.
        for part in f"{family} {given} {middle}".split():
            if _letter_weight(part) >= 3:
                ids.add(part, "name", source, min_alnum=3)


def _date_forms(value: str) -> list[str]:
    v = value.strip()
    if not re.fullmatch(r"\d{8}", v):
        v = _digits(v)  # old "YYYY.MM.DD"
        if len(v) != 8:
            return [value]
    y, m, d = v[:4], v[4:6], v[6:]
    mi, di = int(m), int(d)
    if not (1 <= mi <= 12 and 1 <= di <= 31):
        return [v]
    month = _MONTHS[mi - 1]
    nth = f"{di}{'th' if 10 <= di % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(di % 10, 'th')}"
    # Two-digit years ("09/20/23") are left out: they read like times and other number triples.
    return [v, f"{y} {m} {d}", f"{y} {mi} {di}", f"{m} {d} {y}", f"{d} {m} {y}",
            f"{mi} {di} {y}", f"{di} {mi} {y}", f"{month} {di} {y}", f"{month[:3]} {di} {y}",
            f"{di} {month} {y}", f"{di} {month[:3]} {y}", f"{month} {nth} {y}",
            f"{month[:3]} {nth} {y}", f"{nth} {month} {y}"]


def _time_forms(value: str) -> list[str]:
    digits = value.strip().split(".")[0]
    if len(digits) < 6 or not digits.isdigit():
        # HH or HHMM alone is any four-digit number (a window width, a year); not searched.
        return []
    if digits[2:6] == "0000":
        return []  # a time on the hour says no more than the hour, which may be kept
    forms = [digits[:6]]
    if value.strip() != digits[:6]:
        forms.append(value.strip())
    return forms


def _add_time(ids: Identifiers, value: str, source: str) -> None:
    for form in _time_forms(value):
        ids.add(form, "time", source)
    digits = value.strip().split(".")[0]
    if len(digits) >= 6 and digits.isdigit() and not digits[2:6] == "0000":
        # Written with colons only as written: spaced out ("09 26 06"), a time would match
        # a date's month and day and the next time's hour ("2018-09-26 06:13") by chance.
        ids.add_exact(f"{digits[:2]}:{digits[2:4]}:{digits[4:6]}", "time", source)


def _well_known_uid(value: str) -> bool:
    from pydicom.uid import UID_dictionary

    # SOP classes, transfer syntaxes, coding schemes: the standard's own, the same in every file.
    return value in UID_dictionary or value.startswith("1.2.840.10008.")


def _add_value(ids: Identifiers, kind: str, source: str, value: str) -> None:
    value = value.strip().strip("\x00").strip()
    if not value:
        return
    if kind == "name":
        _add_name(ids, value, source)
    elif kind == "date":
        for part in value.split("-"):  # a range "YYYYMMDD-YYYYMMDD"
            for form in _date_forms(part):
                ids.add(form, "date", source)
    elif kind == "datetime":
        for form in _date_forms(value[:8]):
            ids.add(form, "date", source)
        _add_time(ids, value[8:], source)
        ids.add(value, "date", source)
    elif kind == "time":
        _add_time(ids, value, source)
    elif kind == "uid":
        if not _well_known_uid(value):
            ids.add(value, "uid", source)
    elif kind == "age":
        m = re.fullmatch(r"(\d{3})Y", value)
        # Ages over 89 are identifying (HIPAA); younger ones are generalised enough. An age of
        # exactly 90 is the aggregated "90 or over" a de-identifier writes (090Y), so it is
        # no finding.
        if m and int(m[1]) > 90:
            n = int(m[1])
            forms = [value, f"{n}y", f"{n} years", f"{n} year old", f"{n} yo"]
            for form in forms:
                ids.add(form, "age", source, min_alnum=3)
    elif kind == "phone":
        ids.add(value, "phone", source)
        ids.add_digits(value, "phone", source, min_digits=7)
        digits = _digits(value)
        if len(digits) >= 10:
            ids.add_digits(digits[-7:], "phone", source, min_digits=7)  # without area code
    elif kind in ("id", "accession"):
        ids.add(value, kind, source)
        ids.add_digits(value, kind, source, min_digits=6)
    elif kind == "address":
        ids.add(value, "address", source)
        for part in re.split(r"[,\n^;]", value):
            ids.add(part, "address", source)
        for zip_code in _ZIP.findall(value):
            ids.add(zip_code, "address", source, min_alnum=5)
    elif kind == "private":
        for chunk in _PRINTABLE_RUN.findall(value) or [value]:
            # Text the original also holds in a public, non-identifying element ("CHEST",
            # a protocol name), or a UID the standard defines, is no private information.
            if normalise(chunk) in ids.public_text or _well_known_uid(chunk.strip()):
                continue
            # Private numbers shorter than six digits are counters and measurements.
            ids.add(chunk, "private", source, min_all_digits=6)
            if _digits(chunk) not in ids.public_digits:  # a code the public header repeats
                ids.add_digits(chunk, "private", source, min_digits=6)
    elif kind == "text":
        # Free text is searched for what identifies someone in it, as the report rules find
        # it (names, dates, IDs, places …): a cleaned comment keeps its other words.
        for piece, category in _phi_in_text(value):
            ids.add(piece, category, source, min_alnum=3)
    else:  # institution, device
        # "TOSHIBA" as institution inside the manufacturer "TOSHIBA_MEC" names a vendor, not
        # a hospital.
        norm = normalise(value)  # padded: a whole-word search
        if not ids.in_public_text(norm):
            ids.add(value, kind, source)


def collect_identifiers(ds) -> Identifiers:
    """Every identifying value of a pydicom dataset, nested sequences at any depth.

    The file meta group is left out: it names the writing software, and its only instance
    identifier repeats SOPInstanceUID.
    """
    ids = Identifiers()
    found: list[tuple[str, str, str]] = []

    def walk(dataset, prefix: str) -> None:
        for elem in dataset:
            path = prefix + _element_name(elem)
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or ()):
                    walk(item, f"{path}[{i}].")
                continue
            if _is_bulk(elem.tag) or elem.VR in _NUMERIC_VRS:
                continue
            kind = _kind(elem)
            kw = elem.keyword
            if kind is None:
                # Only coded values (CS: body part, image type) and the equipment's maker are
                # words the file uses in public; a description (LO, SH, ST) may itself hold
                # the patient's name.
                if not elem.tag.is_private and (elem.VR == "CS" or kw in _PUBLIC_KEYWORDS):
                    values = _text_values(elem)
                    ids.public_text.update(normalise(v) for v in values)
                    ids.public_digits.update(_digits(v) for v in values)
                continue
            found.extend((kind, path, value) for value in _text_values(elem))

    walk(ds, "")
    for kind, path, value in found:
        _add_value(ids, kind, path, value)
    return ids


def _phi_in_text(text: str) -> list[tuple[str, str]]:
    """(text, category) of what the report rules find in a free-text value."""
    from .report import ReportDeidentifier

    global _RULES
    if _RULES is None:
        _RULES = ReportDeidentifier(use_plugins=False)
    return [(text[s.start:s.end], s.category.lower()) for s in _RULES.detect(text)]


_RULES = None


# ------------------------------------------------------------------------ searching

# De-identification Method and its Code Sequence: written by deid-dicom from fixed text.
_WRITTEN_BY_DEIDENTIFIER = frozenset({0x00120063, 0x00120064})


def dataset_places(ds) -> Iterator[tuple[str, str, bool]]:
    """``(element path, text, free_text)`` for every element with text in it, the file meta
    group first, nested items as ``Seq[i].Keyword``, private ones as ``(gggg,eeee)``.
    ``free_text`` is False for formatted values (dates, numbers, UIDs)."""

    def walk(dataset, prefix: str) -> Iterator[tuple[str, str, bool]]:
        for elem in dataset:
            if int(elem.tag) in _WRITTEN_BY_DEIDENTIFIER:
                continue  # fixed wording the de-identifier adds, never copied from the input
            path = prefix + _element_name(elem)
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or ()):
                    yield from walk(item, f"{path}[{i}].")
                continue
            if _is_bulk(elem.tag) or elem.VR in _NUMERIC_VRS:
                continue
            values = _text_values(elem)
            if values:
                yield path, "\\".join(values), elem.VR not in _FORMATTED_VRS

    # The 128 bytes before "DICM" are no element, but a writer may have put a name there.
    preamble = getattr(ds, "preamble", None)
    if preamble and preamble.strip(b"\x00"):
        yield "(preamble)", re.sub(r"[\x00-\x1f\x7f]+", " ", preamble.decode("latin-1")), True
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from walk(meta, "")
    yield from walk(ds, "")


def _report_text(path: Path) -> str:
    """A report's text for searching: decoded whatever its encoding; JSON as its strings."""
    import json

    from ..core.files import decode_report

    raw = path.read_bytes()
    try:
        # As deid-report read it (UTF-16 without its mark, UTF-8 with stray bytes …), so the
        # scan searches the text that was de-identified.
        text = decode_report(raw, path.name)
    except InputError:  # binary or broken: searched for whatever text it holds
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        text = raw.decode("utf-16" if utf16 else "cp1252", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            return text
        strings: list[str] = []

        def walk(node) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    strings.append(str(k))
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
            elif node is not None:
                strings.append(str(node))

        walk(data)
        return "\n".join(strings)
    return text


def _pixel_words(ds) -> tuple[list[str], list[tuple[int, int, int, int]]]:
    """The words OCR reads in every frame, and where (frames stacked far apart, so that no
    two words of different frames pass for neighbours)."""
    import numpy as np

    from .pixels import ocr_words

    pixels = np.asarray(ds.pixel_array)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    mono1 = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    if samples > 1:
        pixels = pixels.mean(axis=-1)  # colour: OCR reads the luminance
    frames = pixels if pixels.ndim == 3 else pixels[None]
    words: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    for n, frame in enumerate(frames):
        offset = n * 2 * (frame.shape[0] + 1)
        for w in ocr_words(frame, monochrome1=mono1):
            words.append(w.text)
            boxes.append((w.box[0], w.box[1] + offset, w.box[2], w.box[3] + offset))
    return words, boxes


def check_ocr_available() -> None:
    """Raise UpdpError when the pixels cannot be read by OCR here."""
    try:
        from .pixels import tesseract_available
    except ImportError:
        raise UpdpError("OCR of the pixels needs updp_napari.deid.pixels, which is not "
                        "installed here; with OCR off the scan reads headers and reports only") from None
    available = tesseract_available() if callable(tesseract_available) else tesseract_available
    if not available:
        raise UpdpError("OCR of the pixels needs tesseract (Debian package tesseract-ocr); "
                        "with OCR off the scan reads headers and reports only")


# ------------------------------------------------------------------------ pairing

def _read(path: Path, *, pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    from ..ingest import overrun, quiet_pydicom

    quiet_pydicom()
    try:
        # A pipe or a device would block the read, or never end it.
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError("not a regular file")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        # The whole file is parsed, elements after the pixel data included (trailing private
        # groups, signatures); large values, the pixels above all, are read only when used.
        ds = pydicom.dcmread(path, defer_size=None if pixels else "256 KB")
    except InvalidDicomError:
        raise InputError("not a DICOM file (no DICOM preamble or header found)") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # any damage (deflate, nesting, lengths); never quote its bytes
        raise InputError(f"DICOM file is damaged or truncated ({type(exc).__name__})") from None
    # pydicom stops quietly at the end of a truncated file; what it read then is only part of
    # the header, and a scan of part of it proves nothing.
    if (why := overrun(ds, path.stat().st_size)) is not None:
        raise InputError(why)
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    is_image = "Rows" in ds or "Image Storage" in (getattr(sop_class, "name", "") or "")
    if is_image and not any(k in ds for k in _PIXEL_KEYWORDS):
        raise InputError("DICOM file is truncated (an image without its image data)")
    if "SOPInstanceUID" not in ds and "DirectoryRecordSequence" not in ds:
        raise InputError("DICOM file is truncated or holds no DICOM object (no SOP Instance UID)")
    return ds


def _originals(root: Path, exclude: Path | None) -> list[tuple[Path, Path]]:
    """``(original, path relative to the originals root)``, sorted."""
    if root.is_file():
        return [(root, Path(root.name))]
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if exclude is not None:
            dirs[:] = [d for d in dirs if (here / d).resolve() != exclude]
        dirs.sort()
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() in COMPANION_SUFFIXES or name.startswith("."):
                continue
            found.append((path, path.relative_to(root)))
    return found


class _Scanner:
    def __init__(self, ocr: bool):
        self.ocr = ocr
        self._reports: dict[Path, list[tuple[str, str | None]]] = {}

    def reports_beside(self, folder: Path) -> list[tuple[str, str | None]]:
        """``(name, text)`` of the reports in ``folder``, text None when it cannot be read."""
        if folder not in self._reports:
            found: list[tuple[str, str | None]] = []
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix.lower() in REPORT_SUFFIXES and path.is_file():
                        try:
                            found.append((path.name, _report_text(path)))
                        except OSError:
                            found.append((path.name, None))
            self._reports[folder] = found
        return self._reports[folder]

    def scan(self, ids: Identifiers, deid_path: Path, base: Path, rel: Path) -> list[Leak]:
        """Findings for one counterpart, ``deid_path`` = ``base / rel``."""
        # A leaking folder or file name is itself a finding, and is masked in every record
        # of this file so that the output stays free of the value.
        path_hits: dict[str, set[str]] = defaultdict(set)
        masked = []
        for part in rel.parts:
            hits = ids.find(part)
            for cat, srcs in hits.items():
                path_hits[cat] |= srcs
            masked.append(f"<{min(hits)}>" if hits else part)
        shown = str(base / Path(*masked))

        records: list[Leak] = []

        def add(place: str, hits: dict[str, set[str]]) -> None:
            for cat in sorted(hits):
                records.append(Leak(shown, place, cat, LEAK, tuple(sorted(hits[cat]))))

        if path_hits:
            add("path", path_hits)
        if not deid_path.is_file():
            records.insert(0, Leak(shown, kind=MISSING))
            return records
        try:
            ds = _read(deid_path, pixels=self.ocr)
            for place, text, free in dataset_places(ds):
                hits = ids.find(text, digits=free)
                if hits:
                    add(place, hits)
        except InputError as exc:
            records.append(Leak(shown, "file", kind=UNREADABLE, reason=str(exc)))
            ds = None
        except Exception as exc:  # damage met while walking it (deep nesting, odd values)
            records.append(Leak(shown, "file", kind=UNREADABLE,
                                reason=f"DICOM file is damaged ({type(exc).__name__})"))
            ds = None

        for name, text in self.reports_beside(deid_path.parent):
            name_hits = ids.find(Path(name).stem)
            shown_name = f"<{min(name_hits)}>{Path(name).suffix}" if name_hits else name
            if name_hits:
                add(f"report {shown_name} (file name)", name_hits)
            if text is None:
                records.append(Leak(shown, f"report {shown_name}", kind=UNREADABLE,
                                    reason="cannot be read"))
                continue
            hits = ids.find(text)
            if hits:
                add(f"report {shown_name}", hits)

        if self.ocr and ds is not None and "PixelData" in ds:
            try:
                text, boxes = _pixel_words(ds)
            except Exception as exc:
                # Decoders and OCR raise anything; the gate records that these pixels were
                # not read, and goes on with the other files.
                records.append(Leak(shown, "pixels (OCR)", kind=UNREADABLE,
                                    reason=f"pixels not read ({type(exc).__name__})"))
            else:
                hits = ids.find_ocr(text, boxes)
                if hits:
                    add("pixels (OCR)", hits)
        return records


def _moved_files(record: Path) -> dict[str, str]:
    """Files ``deid-dicom`` wrote under another relative path (identifiers taken out of
    folder and file names), from its record: {original: output}."""
    moved: dict[str, str] = {}
    if not record.is_file():
        raise UpdpError(f"{record}: no such record")
    try:
        for line in record.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("output"):
                moved[str(entry["file"])] = str(entry["output"])
    except (OSError, UnicodeDecodeError, ValueError):
        raise UpdpError(f"{record}: not a readable de-identification record") from None
    return moved


def scan_leaks(originals: str | os.PathLike, deidentified: str | os.PathLike, *,
               ocr: bool = True, progress: Callable[[int, int], None] | None = None,
               record: str | os.PathLike | None = None) -> LeakReport:
    """Search every identifier of every original DICOM file in its de-identified counterpart.

    ``originals`` is a DICOM file or a folder (searched recursively); ``deidentified`` the
    de-identified file, or the folder that mirrors the originals' relative paths. Files of
    the originals that are not DICOM, or could not be read whole, are listed in ``skipped``
    with the reason, and the report is then not clean; companions (``*.txt``, ``*.json``,
    ``*.png``, …) are not tried. ``ocr=False`` leaves the pixels out.
    ``record`` (deid-dicom's) maps originals to counterparts written under another path.
    Raises UpdpError when the inputs cannot be used at all.
    """
    src, dst = Path(originals), Path(deidentified)
    if not src.exists():
        raise UpdpError(f"{src}: no such file or folder")
    if not dst.exists():
        raise UpdpError(f"{dst}: no such file or folder")
    if src.resolve() == dst.resolve():
        raise UpdpError(f"{src}: the originals and the de-identified copy are the same place")
    if src.is_dir() and dst.is_file():
        raise UpdpError(f"{dst}: the originals are a folder, so the de-identified copy must be one")
    if ocr:
        check_ocr_available()

    exclude = dst.resolve() if src.is_dir() else None
    pairs = _originals(src, exclude)
    if not pairs:
        raise UpdpError(f"{src}: no files to scan here")
    scanner = _Scanner(ocr)
    report = LeakReport()
    moved = _moved_files(Path(record)) if record is not None and dst.is_dir() else {}
    for n, (orig, rel) in enumerate(pairs, 1):
        try:
            original = _read(orig, pixels=False)
            removed = str(original.get("PatientIdentityRemoved", "") or "").strip().upper()
            ids = collect_identifiers(original)
        except InputError as exc:
            report.skipped.append((str(orig), str(exc)))
        except Exception as exc:  # damage met while walking it (deep nesting, odd values)
            report.skipped.append((str(orig), f"DICOM file is damaged ({type(exc).__name__})"))
        else:
            if removed == "YES":
                # Scanned against its own de-identified copy, anything would look clean.
                raise UpdpError(f"{orig}: says PatientIdentityRemoved YES, so it is no original:"
                                " are the arguments the wrong way round? (ORIGINALS first, "
                                "then DEIDENTIFIED)")
            report.files += 1
            if dst.is_dir():
                base, rel_out = dst, Path(moved.get(rel.as_posix(), rel.as_posix()))
            else:  # one file against one file
                base, rel_out = dst.parent, Path(dst.name)
            report.leaks.extend(scanner.scan(ids, base / rel_out, base, rel_out))
        if progress is not None:
            progress(n, len(pairs))
    return report
