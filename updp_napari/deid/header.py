"""DICOM header de-identification: the PS3.15 Annex E profile, its options, keyed UIDs.

The actions come from Table E.1-1 (``data/confidentiality_profile.tsv``): D replace with a
dummy, Z empty (or a dummy), X remove, K keep, C clean, U replace the UID. Every sequence is
walked at any depth, private elements go unless allow-listed, and every UID that is not a
standard one is remapped with a keyed hash, so the same input UID gives the same output UID
in every file and run of a workspace. What was done is recorded per element path, never
with the values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from .. import __version__
from ..core.errors import InputError
from ..core.keys import date_shift_days, keyed_digest, keyed_int
from ..core.times import time_to_hour
from .report.detectors import HeaderIdentifiers
from .report.header_values import (
    IDENTIFIER_VRS,
    PERSON_AND_ID_ELEMENTS,
    add_identifiers,
    dataset_dates,
    dictionary_vr,
    dictionary_vrs,
    keyword_of,
)

# CID 7050 De-identification Method (coding scheme DCM).
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTIONS: dict[str, tuple[str, str, str]] = {
    # name: (table column, CID 7050 code, code meaning)
    "retain-modified-dates": ("retain_long_modified_dates", "113107",
                              "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean-descriptors": ("clean_descriptors", "113105", "Clean Descriptors Option"),
    "retain-patient-characteristics": ("retain_patient_characteristics", "113108",
                                       "Retain Patient Characteristics Option"),
    "retain-device-identity": ("retain_device_identity", "113109", "Retain Device Identity Option"),
    "retain-uids": ("retain_uids", "113110", "Retain UIDs Option"),
    "retain-safe-private": ("retain_safe_private", "113111", "Retain Safe Private Option"),
    "clean-pixel-data": ("", "113101", "Clean Pixel Data Option"),
}
# Device identity is not kept by default: a device serial number or station name tells which
# hospital (and often which room) an image came from.
DEFAULT_OPTIONS = ("retain-modified-dates", "clean-descriptors", "retain-patient-characteristics",
                   "retain-safe-private", "clean-pixel-data")

_DATA = "updp_napari.deid.data"
_TAG = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")


def parse_options(text: str | None) -> tuple[str, ...]:
    """``--options``: a comma list of option names; ``default`` stands for the defaults,
    ``none`` for the basic profile alone, and ``no-NAME`` takes one away."""
    if text is None:
        return DEFAULT_OPTIONS
    chosen: list[str] = []
    for item in (t.strip().lower() for t in text.split(",")):
        if not item:
            continue
        if item == "default":
            chosen += [o for o in DEFAULT_OPTIONS if o not in chosen]
        elif item == "none":
            chosen = []
        elif item.startswith("no-") and item[3:] in OPTIONS:
            chosen = [o for o in chosen if o != item[3:]]
        elif item in OPTIONS:
            if item not in chosen:
                chosen.append(item)
        else:
            raise InputError(f"unknown de-identification option {item!r}; choose from "
                             f"{', '.join(OPTIONS)} (or default, none, no-NAME)")
    return tuple(chosen)


@dataclass(frozen=True)
class Rule:
    basic: str  # the profile's action: D, Z, X, K, C, U or a combination such as X/Z
    options: dict[str, str]  # table column -> action when that option is applied


@dataclass(frozen=True)
class Table:
    exact: dict[int, Rule]
    masked: list[tuple[int, int, Rule]]  # (mask, value, rule) for tags such as (50XX,XXXX)

    def rule(self, tag: int) -> Rule | None:
        rule = self.exact.get(tag)
        if rule is not None:
            return rule
        for mask, value, masked_rule in self.masked:
            if tag & mask == value:
                return masked_rule
        return None


@cache
def profile_table() -> Table:
    """Table E.1-1, read once from the package data."""
    text = resources.files(_DATA).joinpath("confidentiality_profile.tsv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header = lines[0].split("\t")
    exact: dict[int, Rule] = {}
    masked: list[tuple[int, int, Rule]] = []
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t")))
        m = _TAG.match(cells["tag"])
        if not m:
            continue
        rule = Rule(cells["basic"].strip(), {k: v.strip() for k, v in cells.items()
                                             if k not in ("tag", "name", "basic") and v.strip()})
        hexes = m.group(1) + m.group(2)
        if "X" in hexes:
            mask = int("".join("0" if c == "X" else "F" for c in hexes), 16)
            masked.append((mask, int(hexes.replace("X", "0"), 16), rule))
        else:
            exact[int(hexes, 16)] = rule
    return Table(exact, masked)


@cache
def safe_private() -> frozenset[tuple[str, int, int]]:
    """Private elements known to carry no identity: (creator, group, element within block)."""
    return parse_safe_private(resources.files(_DATA).joinpath("safe_private.tsv")
                              .read_text(encoding="utf-8"), "safe_private.tsv")


def parse_safe_private(text: str, source: str) -> frozenset[tuple[str, int, int]]:
    entries = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        try:
            entries.add((cells[0].strip().upper(), int(cells[1], 16), int(cells[2], 16) & 0xFF))
        except (IndexError, ValueError):
            raise InputError(f"{source}: line {n}: expected creator, group and element "
                             "(hex) separated by tabs") from None
    return frozenset(entries)


def remap_uid(key: bytes, uid: str) -> str:
    """A keyed, consistent replacement UID under the 2.25 (UUID-derived) root."""
    return f"2.25.{keyed_int(key, 'uid', uid.strip(), 2 ** 128)}"


def pseudonym(key: bytes, purpose: str, value: str, prefix: str) -> str:
    """A short keyed stand-in for an identifier: the same value gives the same stand-in."""
    return prefix + keyed_digest(key, purpose, value.strip().upper()).hex()[:12].upper()


@dataclass
class HeaderResult:
    actions: dict[str, str] = field(default_factory=dict)  # element path -> action taken
    dates_shifted: int = 0
    dates_removed: int = 0
    options: tuple[str, ...] = ()


# Dummies name this tool, so they cannot be mistaken for (or equal) an original value.
_DUMMY_TEXT = "UPDP REMOVED"
_DUMMY_BY_VR = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "UPDP^REMOVED",
                "AS": "000Y", "IS": "0", "DS": "0", "LO": _DUMMY_TEXT, "SH": _DUMMY_TEXT,
                "LT": _DUMMY_TEXT, "ST": _DUMMY_TEXT, "UT": _DUMMY_TEXT, "CS": "UPDP_REMOVED",
                "AE": "UPDP", "UC": _DUMMY_TEXT}
_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "PN", "CS", "AE"}
# Identifiers replaced by keyed stand-ins rather than emptied: a study stays linkable to
# the same patient's other studies in the shared set, and to nothing outside it.
_PSEUDONYMS = {0x00100020: ("patient-id", "PT-"), 0x00100010: ("patient-id", "PT-"),
               0x00080050: ("accession", "AC-"), 0x00200010: ("study-id", "ST-")}
_PATIENT_AGE = 0x00101010
# Removed whatever the options: the Retain Patient Characteristics Option keeps Ethnic Group,
# but with a site's mix it narrows who a patient can be, and a shared set needs it for nothing
# (an evaluation reads the group where it stays, in the workspace's own inputs).
_ALWAYS_REMOVED = {0x00102160: "X"}
# File meta elements kept: version, SOP class and instance, transfer syntax, implementation.
_META_KEPT = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x0012, 0x0013}


class HeaderDeidentifier:
    """Applies the profile and the chosen options to one dataset in place."""

    def __init__(self, key: bytes, options: tuple[str, ...] = DEFAULT_OPTIONS,
                 clean_text: Callable[[str, HeaderIdentifiers], str] | None = None,
                 extra_safe_private: frozenset[tuple[str, int, int]] = frozenset()):
        unknown = [o for o in options if o not in OPTIONS]
        if unknown:
            raise InputError(f"unknown de-identification option(s): {', '.join(unknown)}")
        self.key = key
        self.options = tuple(options)
        self.columns = {OPTIONS[o][0] for o in options if OPTIONS[o][0]}
        self.table = profile_table()
        self.clean_text = clean_text
        self.safe_private = safe_private() | extra_safe_private
        self._code_items: list | None = None

    def action(self, tag: int) -> str | None:
        """The action for ``tag`` under the chosen options (None: not in the table)."""
        if tag in _ALWAYS_REMOVED:
            return _ALWAYS_REMOVED[tag]
        rule = self.table.rule(tag)
        if rule is None:
            return None
        chosen = [rule.options[c] for c in self.columns if c in rule.options]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        basic = rule.basic.replace("*", "")
        # Combined actions depend on the attribute's type in the IOD; the choice below is
        # valid for every type: a dummy where D is allowed, else an empty value.
        if "/" in basic:
            parts = basic.split("/")
            return "U" if "U" in parts and tag_is_uid(tag) else "D" if "D" in parts else "Z"
        return basic

    def apply(self, ds, patient_key: str, dates: Iterable[dt.date] | None = None) -> HeaderResult:
        """De-identify ``ds`` in place; ``patient_key`` keys the date shift (as for reports),
        which maps none of ``dates`` onto another: the study's, header and report (None: the
        file's own, ``dataset_dates``).

        One walk does it all: each element's identifying values are noted before it is
        changed, and free text is cleaned at the end, with everything the file named.
        """
        result = HeaderResult(options=self.options)
        dates = dataset_dates(ds) if dates is None else set(dates)
        shift = date_shift_days(self.key, patient_key, dates) \
            if "retain-modified-dates" in self.options else None
        self._found = HeaderIdentifiers(patient_key=patient_key)
        self._texts: list = []
        self._safe: list = []
        self._walk(ds, "", result, shift)
        # Safe-listed values (the maker's name) stay as they are unless they hold one of the
        # file's own identifiers (a name typed into the field): then they are cleaned too.
        from .report.detectors import Context, detect_header_identifiers
        from .report.lexicons import default_lexicons

        context = Context(default_lexicons(), self._found)
        self._texts += [(item, elem) for item, elem in self._safe
                        if any(detect_header_identifiers(str(elem.value), context))]
        # Whole words only, and no initials: "PA" as a view is no one's initials.
        found = self._found
        words = {p.casefold() for parts in found.names for p in parts if sum(map(str.isalpha, p)) >= 3}
        words |= {v.strip().casefold() for v in found.ids if len(v.strip()) >= 4}
        id_digits = {d for d in (re.sub(r"\D", "", v) for v in found.ids) if len(d) >= 6}
        self._kept_codes(ds, "", result, words, id_digits)
        for item, elem in self._texts:
            values = elem.value if elem.VM > 1 else [elem.value]
            cleaned = [self.clean_text(str(v), self._found) if v else v for v in values]
            elem.value = cleaned if elem.VM > 1 else cleaned[0]
            if isinstance(elem, _RawText):
                elem.store(item)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            # The file meta holds the instance UID again and may name the sending station.
            for tag in [t for t in meta.keys() if t.element not in _META_KEPT]:
                del meta[tag]
                result.actions[f"file_meta.({tag.group:04X},{tag.element:04X})"] = "X"
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            if "SOPClassUID" in ds:
                meta.MediaStorageSOPClassUID = ds.SOPClassUID
            # The writer is this tool now, not the modality that made the original.
            from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            meta.ImplementationVersionName = f"UPDP_{__version__}"[:16]
            if "FileMetaInformationVersion" in meta:
                meta.FileMetaInformationVersion = b"\x00\x01"  # the one value it may hold
        # The 128 bytes before "DICM" belong to no element: a writer may have put anything
        # there (the patient's name, a TIFF header). Zeros, as the standard's default.
        if getattr(ds, "preamble", None) is not None:
            ds.preamble = b"\x00" * 128
        self._mark(ds, result, shift)
        return result

    # -- the walk ----------------------------------------------------------------------------

    def _walk(self, ds, prefix: str, result: HeaderResult, shift: int | None,
              encoding: str | None = "") -> None:
        had_private = False
        options = self.options
        if encoding == "":
            encoding = _plain_encoding(ds)
        elif encoding is not None and 0x00080005 in ds:
            encoding = None  # an item with its own character set: let pydicom decode it
        for tag in list(ds.keys()):
            # Elements the profile leaves alone stay as read, unconverted: pydicom writes
            # them back byte for byte (most of a header, and the pixel data).
            # (Implicit-VR and UN elements are converted as before: their VR comes from the
            # dictionary, and a file written with explicit VR needs it.)
            raw = ds.get_item(tag)
            raw_vr = raw.VR
            action = None if tag.is_private else self.action(int(tag))
            if raw_vr not in (None, "UN", "SQ") and raw_vr not in IDENTIFIER_VRS \
                    and not tag.is_private and action is None \
                    and _action_by_vr(raw_vr, options, int(tag)) is None:
                continue
            if encoding is not None and raw.is_raw and raw_vr in _PLAIN_TEXT_VRS \
                    and not raw.is_implicit_VR and raw.is_little_endian:
                elem = _RawText(raw, encoding)  # read and written without pydicom's conversion
            else:
                elem = ds[tag]
            vr = elem.VR
            if vr != "SQ":
                if vr in IDENTIFIER_VRS or keyword_of(int(tag)) in PERSON_AND_ID_ELEMENTS:
                    # (a name element written with another VR is a name all the same)
                    add_identifiers(self._found, elem)  # before anything is changed
            elif tag.is_private:
                self._collect(elem)  # about to go: what it names still counts
            if tag.is_private:
                had_private = True
                self._private(ds, elem, prefix + _name(elem), result)
                continue
            if vr == "SQ":
                path = prefix + _name(elem)
                # A dummy sequence would say nothing true: removing it is the safe reading
                # of D for sequences (structured content is not cleaned item by item).
                if action in ("X", "D"):
                    self._collect(elem)  # what a removed sequence names still counts
                    del ds[tag]
                    result.actions[path] = "X"
                    continue
                for i, item in enumerate(elem.value or []):
                    self._walk(item, f"{path}[{i}].", result, shift, encoding)
                continue
            if action is None:
                action = _action_by_vr(vr, options, int(tag))
                if action is None:
                    continue
            self._act(ds, elem, action, prefix + _name(elem), result, shift)
            if isinstance(elem, _RawText) and elem.changed and action != "X":
                elem.store(ds)
        # Private creators whose blocks are now empty go too (tags only: nothing to convert).
        if had_private:
            tags = list(ds.keys())
            used = {(t.group, t.element >> 8) for t in tags
                    if t.is_private and not t.is_private_creator}
            for tag in [t for t in tags if t.is_private_creator]:
                if (tag.group, tag.element & 0xFF) not in used:
                    del ds[tag]

    def _kept_codes(self, ds, prefix: str, result: HeaderResult, words: set[str],
                    id_digits: set[str]) -> None:
        """Coded and numeric values the profile keeps (CS, AE, AS, IS, DS) emptied where they
        hold one of the file's own identifiers: a surname typed as the body part or image
        type (``words``: its name parts and IDs, folded), a patient ID's digits as an
        acquisition number (``id_digits``)."""
        for elem in list(ds):
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value or []):
                    self._kept_codes(item, f"{prefix}{_name(elem)}[{i}].", result, words, id_digits)
                continue
            if elem.VR not in _KEPT_CODE_VRS or elem.tag.is_private or elem.is_empty or \
                    int(elem.tag) == 0x00120062:  # Patient Identity Removed, written here
                continue
            values = [str(v) for v in (elem.value if elem.VM > 1 else [elem.value])]
            if elem.VR in ("IS", "DS"):
                hit = any(re.sub(r"\D", "", v) in id_digits for v in values)
            else:
                hit = any(v.strip().casefold() in words or
                          any(w in words for w in re.split(r"[^\w-]+", v.casefold()))
                          for v in values)
            if hit:
                elem.value = ""
                result.actions[prefix + _name(elem)] = "Z"

    def _collect(self, sequence) -> None:
        for item in sequence.value or []:
            for elem in item:
                if elem.VR == "SQ":
                    self._collect(elem)
                else:
                    add_identifiers(self._found, elem)

    def _act(self, ds, elem, action: str, path: str, result: HeaderResult, shift: int | None) -> None:
        tag = int(elem.tag)
        empty = elem.is_empty
        if elem.VR in ("DA", "DT") and action in ("X", "Z", "D") and not empty:
            result.dates_removed += 1
        if action == "S":
            if self.clean_text is not None and not empty:
                self._safe.append((ds, elem))
            result.actions[path] = "K"
        elif action == "K":
            if tag == _PATIENT_AGE and not empty:
                elem.value = cap_age(str(elem.value))
            result.actions[path] = "K"
        elif action == "X":
            del ds[elem.tag]
            result.actions[path] = "X"
        elif action == "U":
            self._uids(elem, path, result)
        elif action == "C":
            self._clean(ds, elem, path, result, shift)
        elif action in ("Z", "D"):
            if tag in _PSEUDONYMS and not empty:
                elem.value = stand_in(self.key, ds, tag)
                result.actions[path] = "D"
            elif action == "Z" or empty:
                elem.value = "" if elem.VR not in ("US", "SS", "UL", "SL", "FL", "FD") else None
                result.actions[path] = "Z"
            else:
                elem.value = _DUMMY_BY_VR.get(elem.VR, "")
                result.actions[path] = "D"
        else:  # an action this table should not hold: remove, the safe side
            del ds[elem.tag]
            result.actions[path] = "X"

    def _clean(self, ds, elem, path: str, result: HeaderResult, shift: int | None) -> None:
        """C: dates move by the patient's shift; free text goes through the report rules."""
        expected = dictionary_vrs(int(elem.tag))
        if expected and elem.VR not in expected:
            # Not the VR the standard gives it (a date read as US): what it holds cannot be
            # cleaned as what it should be, so it goes.
            del ds[elem.tag]
            result.actions[path] = "X"
            return
        if elem.VR in ("DA", "DT"):
            if shift is None:
                elem.value = ""
                result.actions[path] = "Z"
                return
            elem.value = _shift_values(elem, shift)
            result.dates_shifted += 1
            result.actions[path] = "C"
        elif elem.VR == "TM":
            # Dates move by whole days, so the time of day is kept, but only to the hour: an
            # exact timestamp is itself a look-up key into the hospital's systems.
            values = elem.value if elem.VM > 1 else [elem.value]
            hours = [tm_to_hour(str(v)) for v in values]
            elem.value = hours if elem.VM > 1 else hours[0]
            result.actions[path] = "C"
        elif elem.VR in _TEXT_VRS and self.clean_text is not None:
            self._texts.append((ds, elem))  # cleaned once the whole file's identifiers are known
            result.actions[path] = "C"
        elif elem.VR in ("AS", "IS", "DS", "CS", "US", "FL", "FD"):
            result.actions[path] = "K"  # a characteristic (size, weight, sex), kept as asked
        else:
            # A VR this element should not have (a description as OB, a date as SS): what it
            # holds cannot be cleaned, so it goes.
            del ds[elem.tag]
            result.actions[path] = "X"

    def _uids(self, elem, path: str, result: HeaderResult) -> None:
        if "retain-uids" in self.options or elem.value in (None, ""):
            return
        values = elem.value if elem.VM > 1 else [elem.value]
        remapped = [v if is_standard_uid(str(v)) else remap_uid(self.key, str(v)) for v in values]
        if remapped != [str(v) for v in values]:
            elem.value = remapped if elem.VM > 1 else remapped[0]
            result.actions[path] = "U"

    def _private(self, ds, elem, path: str, result: HeaderResult) -> None:
        tag = elem.tag
        if tag.is_private_creator:
            return  # creators go with their blocks, below
        creator = _creator(ds, tag)
        if "retain-safe-private" in self.options and creator is not None and \
                (creator.upper(), tag.group, tag.element & 0xFF) in self.safe_private:
            if elem.VR in _TEXT_VRS and self.clean_text is not None:
                # Safe-listed for what it should hold; text is cleaned all the same, in case
                # it holds a name (a safe slot typed into by hand).
                self._texts.append((ds, elem))
                result.actions[path] = "C"
                return
            if _holds_its_vr(elem):
                result.actions[path] = "K"
                return
            # A number slot holding something else (a name typed into an exposure index).
        del ds[tag]
        result.actions[path] = "X"

    def _mark(self, ds, result: HeaderResult, shift: int | None) -> None:
        from pydicom.dataset import Dataset

        ds.add_new(0x00120062, "CS", "YES")  # Patient Identity Removed
        methods = [f"UPDP Review {__version__}", "PS3.15 E.1 Basic Profile", *self.options]
        ds.add_new(0x00120063, "LO", [m[:64] for m in methods])  # De-identification Method
        if self._code_items is None:
            # The same few read-only items serve every file this de-identifier writes.
            self._code_items = []
            for value, meaning in [BASIC_PROFILE_CODE] + [OPTIONS[o][1:] for o in self.options]:
                item = Dataset()
                item.add_new(0x00080100, "SH", value)  # Code Value
                item.add_new(0x00080102, "SH", "DCM")  # Coding Scheme Designator
                item.add_new(0x00080104, "LO", meaning)  # Code Meaning
                self._code_items.append(item)
        # De-identification Method Code Sequence
        ds.add_new(0x00120064, "SQ", list(self._code_items))
        if shift is not None and result.dates_shifted:
            ds.add_new(0x00280303, "CS", "MODIFIED")  # Longitudinal Temporal Information Modified
        elif result.dates_removed:
            ds.add_new(0x00280303, "CS", "REMOVED")


# -- helpers ---------------------------------------------------------------------------------

# Text VRs whose raw bytes are read and written here directly when the character set is a
# plain one (single-byte or UTF-8, where a backslash byte always separates values): most of
# a header's changed elements, and pydicom's per-element conversion was half the run time.
_PLAIN_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                             "TM", "UC", "UI", "UR", "UT"})
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
# Coded and numeric VRs the profile mostly keeps: emptied where they hold the file's own
# identifiers (``HeaderDeidentifier._kept_codes``).
_KEPT_CODE_VRS = frozenset({"CS", "AE", "AS", "IS", "DS"})
_PLAIN_CODECS = frozenset({"ascii", "utf-8", "latin-1", "cp1252"})


def _plain_encoding(ds) -> str | None:
    """The dataset's Python codec when its character set is a plain one, else None."""
    import codecs

    from pydicom.charset import convert_encodings

    encodings = convert_encodings(ds.get("SpecificCharacterSet", None) or "ISO_IR 6")
    if len(encodings) != 1:
        return None  # code extensions (ISO 2022 escapes): pydicom decodes those
    try:
        name = codecs.lookup(encodings[0]).name
    except LookupError:
        return None
    return encodings[0] if name in _PLAIN_CODECS or name.startswith("iso8859") else None


class _RawText:
    """A raw explicit-VR text element seen through the few attributes the walk uses
    (``tag``, ``VR``, ``VM``, ``value``, ``is_empty``), decoded without pydicom's per-element
    conversion and written back as raw bytes only when its value changed."""

    __slots__ = ("VR", "_encoding", "_values", "changed", "tag")

    def __init__(self, raw, encoding: str):
        self.tag, self.VR, self._encoding, self.changed = raw.tag, raw.VR, encoding, False
        text = raw.value.decode(encoding, errors="replace") if raw.value else ""
        if self.VR in _SINGLE_VALUE_VRS:
            self._values = [text.rstrip(" \0")]
        else:
            self._values = [v.strip(" \0") for v in text.split("\\")]

    @property
    def VM(self) -> int:
        return 0 if self._values == [""] else len(self._values)

    @property
    def is_empty(self) -> bool:
        return self.VM == 0

    @property
    def value(self):
        return self._values[0] if len(self._values) == 1 else list(self._values)

    @value.setter
    def value(self, new) -> None:
        if new is None:
            new = ""
        self._values = [str(v) for v in new] if isinstance(new, (list, tuple)) else [str(new)]
        self.changed = True

    def store(self, ds) -> None:
        from pydicom.dataelem import RawDataElement

        data = "\\".join(self._values).encode(self._encoding, errors="replace")
        if len(data) % 2:
            data += b"\0" if self.VR == "UI" else b" "
        ds[self.tag] = RawDataElement(self.tag, self.VR, len(data), data, 0, False, True)


def _action_by_vr(vr: str, options: tuple[str, ...], tag: int = 0) -> str | None:
    """What to do with an element the table does not list: dates, times, names, free text
    (UC, the unlimited text of any length, included; and the descriptions of overlays) and
    UIDs are treated as the table treats their kind; a URL is removed; codes and numbers are
    kept."""
    if vr in ("LO", "SH", "ST", "LT", "UT", "UC", "AE") and not (tag >> 16) & 1 and _retired(tag):
        return "X"  # a retired text element nobody reads now (or a current one, a bit flipped)
    if vr in ("DA", "DT", "TM"):
        return "C" if "retain-modified-dates" in options else "X"
    if vr == "PN":
        return "Z"
    if vr in ("LT", "ST", "UT", "UC"):
        return "C" if "clean-descriptors" in options else "X"
    if vr in ("LO", "SH") and not (tag >> 16) & 1 and tag in _SAFE_CODES:
        return "S"  # kept, unless it holds one of the file's own identifiers
    if vr in ("LO", "SH") and not (tag >> 16) & 1 and _names_a_thing(tag):
        return "X"  # an identifier or serial number the table does not list: a device's, a lot's
    if vr in ("LO", "SH") and not (tag >> 16) & 1:
        # A label, name or description the table does not list (the overlays', a segment's,
        # one this dictionary does not know) may hold a name: cleaned. Codes and the
        # equipment's maker (a safe-list) stay as they are.
        return "C" if "clean-descriptors" in options else "X"
    if vr == "UR":
        return "X"  # a link says where the data (or the patient) is
    if vr == "UI":
        return "U"
    if not (tag >> 16) & 1 and tag not in _SAFE_CODES and vr not in _KEPT_UNLISTED_VRS \
            and not _known_public(tag):
        return "X"  # an element nobody can say the meaning of (UN, OB … unknown): removed
    return None


#: Unlisted short strings kept as they are (unless they hold one of the file's own
#: identifiers): codes, coding schemes, the equipment's maker and software, and the method
#: this tool writes itself. Other unlisted LO/SH values are cleaned.
_SAFE_CODES = frozenset({
    0x00080100,  # CodeValue
    0x00080102,  # CodingSchemeDesignator
    0x00080103,  # CodingSchemeVersion
    0x00080112,  # CodingSchemeRegistry
    0x00181020,  # SoftwareVersions
    0x00120063,  # DeidentificationMethod
    0x00080070,  # Manufacturer
    0x00281054,  # RescaleType
    0x00283004,  # ModalityLUTType
    0x00181210,  # ConvolutionKernel
    0x00181160,  # FilterType
    0x00181260,  # PlateType
    0x00181261,  # PhosphorType
    0x00180024,  # SequenceName
    0x00189005,  # PulseSequenceName
    0x00180085,  # ImagedNucleus
    0x00201040,  # PositionReferenceIndicator
})
#: VRs of values that are numbers or codes, kept where unlisted even in an unknown element.
_KEPT_UNLISTED_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "IS", "DS",
                                "AT", "CS", "AS", "SQ", "LO", "SH"})


@cache
def _known_public(tag: int) -> bool:
    """Whether the DICOM dictionary knows ``tag`` (repeating groups such as 60xx included)."""
    from pydicom.datadict import get_entry

    try:
        get_entry(tag)
    except KeyError:
        return False
    return True


@cache
def _retired(tag: int) -> bool:
    from pydicom.datadict import dictionary_is_retired

    try:
        return bool(dictionary_is_retired(tag))
    except KeyError:
        return False


def _names_a_thing(tag: int) -> bool:
    """Whether an unlisted element's keyword says it holds an identifier or a number of
    something (SecondaryCaptureDeviceID, ProductLotIdentifier, WedgeModelNumber)."""
    keyword = keyword_of(tag)
    return keyword.endswith(("ID", "IDs", "Identifier", "Number", "Numbers"))


def _holds_its_vr(elem) -> bool:
    """Whether a kept element's value is what its VR says: numbers for DS and IS."""
    if elem.VR not in ("DS", "IS") or elem.value in (None, ""):
        return True
    values = elem.value if elem.VM > 1 else [elem.value]
    try:
        for value in values:
            float(str(value))
    except (TypeError, ValueError):
        return False
    return True


def _is_overlay(tag: int) -> bool:
    """An element of the overlay groups (60xx, even): its label and description are free
    text a technologist types."""
    group = tag >> 16
    return 0x6000 <= group <= 0x60FF and group % 2 == 0


def _name(elem) -> str:
    return keyword_of(int(elem.tag)) or f"({elem.tag.group:04X},{elem.tag.element:04X})"


def _creator(ds, tag) -> str | None:
    creator_tag = (tag.group << 16) | (tag.element >> 8)
    if creator_tag in ds:
        value = ds[creator_tag].value
        return str(value).strip() if value is not None else None
    return None


def stand_in(key: bytes, ds, tag: int) -> str:
    """The keyed stand-in for the identifier ``ds`` holds at ``tag`` (PT-…, AC-…, ST-…)."""
    purpose, prefix = _PSEUDONYMS[tag]
    return pseudonym(key, purpose, _pseudonym_source(ds, tag), prefix)


def _pseudonym_source(ds, tag: int) -> str:
    """Patient name and ID both map from the patient's ID, so they agree with each other."""
    if tag in (0x00100010, 0x00100020):
        return str(ds.get("PatientID", "") or ds.get("PatientName", ""))
    return str(ds[tag].value)


def tag_is_uid(tag: int) -> bool:
    return dictionary_vr(tag) == "UI"


def is_standard_uid(uid: str) -> bool:
    """A UID the standard defines (SOP classes, transfer syntaxes, …), which names nothing."""
    from pydicom.uid import UID_dictionary  # a dict: no cache by value (an archive has millions)

    return uid.strip() in UID_dictionary


def cap_age(age: str) -> str:
    """Ages of 90 years and over are one group (HIPAA): ``093Y`` → ``090Y``."""
    m = re.fullmatch(r"(\d{3})([DWMY])", age.strip())
    if not m:
        return age
    n, unit = int(m.group(1)), m.group(2)
    years = {"D": n / 365.25, "W": n / 52.18, "M": n / 12, "Y": n}[unit]
    return "090Y" if years >= 90 else age


def _shift_values(elem, shift: int):
    values = elem.value if elem.VM > 1 else [elem.value]
    out = [shift_date(str(v), shift, elem.VR) for v in values]
    return out if elem.VM > 1 else out[0]


def shift_date(value: str, days: int, vr: str = "DA") -> str:
    """Move a DA or DT value by ``days``; an unreadable one becomes empty, never kept.

    A DT's time of day is kept to the hour, as a TM's is (``tm_to_hour``); its UTC offset
    is kept."""
    value = value.strip()
    if not value:
        return value
    try:
        day = dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    moved = (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    if vr != "DT" or len(value) == 8:
        return moved
    m = _DT_TIME.fullmatch(value[8:])
    if not m:
        return ""
    hour = tm_to_hour(m["time"]) if m["time"] else ""
    if m["time"] and not hour:
        return ""
    return moved + hour + (m["offset"] or "")


#: DICOM TM, HH[MM[SS[.F{1,6}]]], and the older HH:MM:SS.frac form.
_TM = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?")
#: What follows a DT's YYYYMMDD: a time of day, then a UTC offset (&ZZXX).
_DT_TIME = re.compile(r"(?P<time>\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?P<offset>[+-]\d{4})?")


def tm_to_hour(value: str) -> str:
    """A TM value kept to the hour (``time_to_hour``), written ``HH0000``; an unreadable one
    becomes empty, never kept."""
    m = _TM.fullmatch(value.strip())
    if not m:
        return ""
    try:  # a leap second (60) is valid DICOM but not a datetime.time; it is zeroed anyway
        t = dt.time(int(m[1]), int(m[2] or 0), min(int(m[3] or 0), 59),
                    int((m[4] or "0").ljust(6, "0")))
    except ValueError:
        return ""
    return time_to_hour(t).strftime("%H%M%S")
