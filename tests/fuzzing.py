"""Seeded mutations of DICOM files' raw bytes, and an identifier check that reads raw bytes.

Two halves, deliberately independent of the product:

* ``make_mutant(seed, index, sources)`` damages one cohort file at the byte level: bit flips,
  byte overwrites (tags included), length fields, truncation, inserted runs, VR codes, the
  transfer syntax, very long values, deeply nested undefined-length sequences, text elements
  that carry the patient's name, and the character set. Each mutation has a class and a
  variant, so figures can be given per class; the same ``(seed, index)`` always gives the
  same bytes, which makes every finding a reproducer (``python tests/fuzzing.py SEED INDEX
  OUT.dcm`` writes one).
* ``needles_of`` takes the identifiers of the UNMUTATED original (read with pydicom), and
  ``find_identifiers`` looks for them in the raw bytes of a written file: case-insensitive
  for names, in UTF-16 too, with separators stripped, and in the inflated body of a deflated
  file. Neither pydicom nor the product's leak scanner reads the output for the check.

``explain`` comes after the check, to group what it found by cause: it walks the output's
bytes, and asks pydicom's dictionary (and pydicom's reading of the mutant) what the element
holding a hit should have been.

The walker below understands explicit-VR little endian only (what the cohort is written in),
and only well enough to find elements to damage and to place a hit in its element.
"""

from __future__ import annotations

import random
import re
import struct
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# -- an explicit-VR little-endian element walker ---------------------------------------------

#: VRs with a 2-byte reserved field and a 4-byte length.
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
                      b"UT", b"UV"})
TEXT_VRS = frozenset({b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"PN", b"SH",
                      b"ST", b"TM", b"UC", b"UI", b"UR", b"UT"})
ALL_VRS = sorted(TEXT_VRS | LONG_VRS | {b"AT", b"FD", b"FL", b"SL", b"SS", b"UL", b"US"})
VR_SET = frozenset(ALL_VRS)
UNDEFINED = 0xFFFFFFFF
PREAMBLE = 132  # 128-byte preamble and "DICM"


@dataclass(frozen=True)
class Element:
    offset: int  # where the tag starts
    group: int
    element: int
    vr: bytes | None  # None for items and delimiters
    header: int  # bytes from the tag to the value
    length: int
    depth: int  # 0: top level (of the file meta or the dataset)

    @property
    def tag(self) -> tuple[int, int]:
        return self.group, self.element

    @property
    def len_offset(self) -> int:
        return self.offset + (4 if self.vr is None else 8 if self.vr in LONG_VRS else 6)

    @property
    def len_size(self) -> int:
        return 2 if self.vr is not None and self.vr not in LONG_VRS else 4

    @property
    def value_offset(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        """Where the next element starts (for an SQ or item: its first child)."""
        if self.vr in (None, b"SQ") or self.length == UNDEFINED:
            return self.value_offset
        return self.value_offset + self.length

    def name(self) -> str:
        vr = self.vr.decode("latin-1") if self.vr else "--"
        return f"({self.group:04X},{self.element:04X}) {vr}"


def walk(data: bytes, start: int = PREAMBLE, through_pixels: bool = False,
         lenient: bool = False) -> list[Element]:
    """Every element of the file meta and the dataset, sequences entered, in file order; the
    walk stops at the pixel data (listed; past it with ``through_pixels``) or at anything that
    does not parse (``lenient``: a VR code that is not one is read as pydicom reads it, with
    a 2-byte length)."""
    out: list[Element] = []
    pos = start
    stack: list[int | None] = []  # end offsets of the open sequences and items (None: undefined)
    while pos + 8 <= len(data):
        while stack and stack[-1] is not None and pos >= stack[-1]:
            stack.pop()
        group, elem = struct.unpack_from("<HH", data, pos)
        depth = len(stack)
        if group == 0xFFFE and not (depth == 0 and data[pos + 4:pos + 6] in VR_SET):
            (length,) = struct.unpack_from("<I", data, pos + 4)
            out.append(Element(pos, group, elem, None, 8, length, depth))
            pos += 8
            if elem == 0xE000:
                stack.append(None if length == UNDEFINED else pos + length)
            elif stack:  # a delimiter closes the innermost open item or sequence
                stack.pop()
            continue
        vr = bytes(data[pos + 4:pos + 6])
        if len(vr) < 2 or not (lenient or vr.isalpha() and vr.isupper()):
            break
        if vr in LONG_VRS:
            if pos + 12 > len(data):
                break
            (length,) = struct.unpack_from("<I", data, pos + 8)
            header = 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            header = 8
        out.append(Element(pos, group, elem, vr, header, length, depth))
        if (group, elem) == (0x7FE0, 0x0010) and depth == 0 and not through_pixels:
            break
        if vr == b"SQ":
            pos += header
            stack.append(None if length == UNDEFINED else pos + length)
            continue
        if length == UNDEFINED:
            break
        pos += header + length
    return out


def encode_element(group: int, element: int, vr: bytes, value: bytes, length: int | None = None
                   ) -> bytes:
    """One explicit-VR little-endian element; text is padded to even length."""
    if length is None and len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    n = len(value) if length is None else length
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", group, element, vr, 0, n) + value
    return struct.pack("<HH2sH", group, element, vr, n) + value


# -- the identifiers of an original ----------------------------------------------------------

#: Words of institution names that many institutions share: left out of the needles.
GENERIC_WORDS = frozenset("""
university hospital hospitals general regional memorial medical center centre clinic clinics
health healthcare community county saint state city children childrens infirmary institute
radiology imaging department university's the and of
""".split())
PERSON_ELEMENTS = ("ReferringPhysicianName", "PerformingPhysicianName",
                   "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician")
#: Separators taken out in the "stripped" view of a file and of a needle.
SEPARATORS = re.compile(rb"[\s^\-,./\\_:;()\x00]+")


@dataclass(frozen=True)
class Needle:
    category: str  # patient-name, physician-name, patient-id, date, uid, … (never the value)
    text: str
    kind: str  # "word": letters, whole word; "value": substring; "uid": exact substring
    origin: str = field(default="", compare=False)  # the element it came from: Kw or Seq/Kw


@dataclass
class Needles:
    """What must not be in a de-identified file made from one original."""

    items: list[Needle] = field(default_factory=list)
    names: list[list[str]] = field(default_factory=list)  # the patient's name parts (planting)
    patient_id: str = ""
    birth_date: str = ""

    def add(self, category: str, text: str, kind: str = "value", origin: str = "") -> None:
        text = text.strip()
        if text and Needle(category, text, kind) not in self.items:
            self.items.append(Needle(category, text, kind, origin))

    def with_planted(self, planted: list[str]) -> Needles:
        out = Needles(list(self.items), self.names, self.patient_id, self.birth_date)
        for value in planted:
            out.add("planted", value)
        return out


def _name_parts(value, minimum: int) -> list[str]:
    parts = re.split(r"[\^\s,=]+", str(value or ""))
    return [p for p in parts if len(p) >= minimum and p.isalpha()]


@cache
def needles_of(path: str | Path) -> Needles:
    """The identifiers of an unmutated original, read with pydicom."""
    import pydicom

    ds = pydicom.dcmread(path)
    out = Needles()
    name = ds.get("PatientName", "")
    parts = _name_parts(name, 3)
    out.names = [parts]
    for part in parts:
        out.add("patient-name", part, "word", "PatientName")
    if len(parts) >= 2:
        out.add("patient-name", parts[0] + parts[1], "value", "PatientName")  # ELLISONBRIDGET
        out.add("patient-name", parts[1] + parts[0], "value", "PatientName")  # BRIDGETELLISON
    for keyword in PERSON_ELEMENTS:
        for value in _values(ds.get(keyword)):
            for part in _name_parts(value, 4):
                out.add("physician-name", part, "word", keyword)
    out.patient_id = str(ds.get("PatientID", "") or "").strip()
    out.add("patient-id", out.patient_id, origin="PatientID")
    out.add("accession", str(ds.get("AccessionNumber", "") or ""), origin="AccessionNumber")
    out.add("study-id", str(ds.get("StudyID", "") or ""), origin="StudyID")
    for value in _values(ds.get("OtherPatientIDs")):
        out.add("patient-id", str(value), origin="OtherPatientIDs")
    for item in ds.get("OtherPatientIDsSequence", None) or []:
        out.add("patient-id", str(item.get("PatientID", "") or ""),
                origin="OtherPatientIDsSequence/PatientID")
    for item in ds.get("RequestAttributesSequence", None) or []:
        for keyword in ("ScheduledProcedureStepID", "RequestedProcedureID"):
            out.add("procedure-id", str(item.get(keyword, "") or ""),
                    origin=f"RequestAttributesSequence/{keyword}")
    out.birth_date = str(ds.get("PatientBirthDate", "") or "").strip()
    out.add("birth-date", out.birth_date, origin="PatientBirthDate")
    out.add("study-date", str(ds.get("StudyDate", "") or ""), origin="StudyDate")
    for word in re.split(r"[\s,]+", str(ds.get("InstitutionName", "") or "")):
        if len(word) >= 4 and word.isalpha() and word.lower() not in GENERIC_WORDS:
            out.add("institution", word, "word", "InstitutionName")
    for keyword, category in (("InstitutionAddress", "address"), ("PatientAddress", "address"),
                              ("PatientTelephoneNumbers", "phone"), ("StationName", "device"),
                              ("DeviceSerialNumber", "device")):
        for value in _values(ds.get(keyword)):
            out.add(category, str(value), origin=keyword)
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                    "FrameOfReferenceUID"):
        if keyword in ds:
            out.add("uid", str(ds[keyword].value), "uid", keyword)
    return out


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [v for v in value if v not in (None, "")]
    return [value]


# -- looking for them in raw bytes -----------------------------------------------------------

DEFLATED = b"1.2.840.10008.1.2.1.99"
#: Needles shorter than this are not looked for inside the pixel data: a 3-letter name part
#: turns up in 128 KiB of binary pixels by chance.
SHORT = 6


@dataclass(frozen=True)
class Hit:
    category: str
    form: str  # ascii, stripped, utf-16le, utf-16be, inflated-…
    offset: int
    origin: str = ""  # the element of the original it came from


def pixel_payload(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the last top-level pixel data value, found by its tag bytes alone."""
    for tag in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):  # little, big endian
        at = data.rfind(tag)
        if at < 0:
            continue
        if data[at + 4:at + 6] in (b"OW", b"OB"):
            start = at + 12
            raw_len = data[at + 8:at + 12]
        else:  # implicit VR
            start = at + 8
            raw_len = data[at + 4:at + 8]
        if len(raw_len) < 4:
            return None
        (n,) = struct.unpack("<I" if tag[0] == 0xE0 else ">I", raw_len)
        return start, len(data) if n == UNDEFINED else min(len(data), start + n)
    return None


def _views(data: bytes) -> list[tuple[str, bytes, bytes]]:
    """(form, full, masked) views of a file: lower-cased; masked has the pixels blanked. A
    deflated file is looked at as its meta and its inflated body (its compressed bytes would
    hold short names by chance)."""
    views = [("raw", data)]
    meta_end = _meta_end(data)
    if DEFLATED in data[:meta_end]:
        try:
            body = zlib.decompressobj(-15).decompress(data[meta_end:], 64 << 20)
            views = [("raw", data[:meta_end]), ("inflated", body)]
        except zlib.error:
            pass  # not inflatable: searched as it is
    out = []
    for form, view in views:
        low = view.lower()
        payload = pixel_payload(view)
        masked = low if payload is None else \
            low[:payload[0]] + b"\0" * (payload[1] - payload[0]) + low[payload[1]:]
        out.append((form, low, masked))
    return out


def _meta_end(data: bytes) -> int:
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00" or len(data) < 144:
        return 0
    (n,) = struct.unpack_from("<I", data, 140)
    return 144 + n


def _pattern(needle: Needle) -> re.Pattern:
    text = re.escape(needle.text.lower().encode("latin-1", "replace"))
    if needle.kind == "word":
        return re.compile(rb"(?<![a-z])" + text + rb"(?![a-z])")
    if needle.kind == "value" and needle.text.isdigit() and len(needle.text) < 8:
        return re.compile(rb"(?<![0-9])" + text + rb"(?![0-9])")
    return re.compile(text)


def find_identifiers(data: bytes, needles: Needles) -> list[Hit]:
    """Every needle found in ``data``: as ASCII (case-insensitive), with separators stripped
    (IDs and joined names of 6 characters or more), as UTF-16, and in a deflated body."""
    hits: list[Hit] = []
    for form, low, masked in _views(data):
        stripped = SEPARATORS.sub(b"", masked)
        for needle in needles.items:
            text = needle.text.lower().encode("latin-1", "replace")
            haystack = low if len(text) >= SHORT else masked
            m = _pattern(needle).search(haystack) if text in haystack else None
            if m:
                hits.append(Hit(needle.category, f"{form}-ascii", m.start(), needle.origin))
                continue
            bare = SEPARATORS.sub(b"", text)
            if needle.kind != "word" and len(bare) >= SHORT and bare != text and bare in stripped:
                hits.append(Hit(needle.category, f"{form}-stripped", -1, needle.origin))
                continue
            if len(text) >= 4:
                for enc in ("utf-16-le", "utf-16-be"):
                    wide = needle.text.lower().encode(enc)
                    if wide in (low if len(text) >= SHORT else masked):
                        hits.append(Hit(needle.category, f"{form}-{enc}", -1, needle.origin))
                        break
    return hits


def find_in_text(text: str, needles: list[Needle]) -> list[tuple[str, str]]:
    """(category, line with the value masked) for each needle found in printed or logged
    text (whole words for names and short numbers)."""
    found = []
    low = text.lower()
    for needle in needles:
        if needle.text.lower() not in low:  # a plain search first: most needles are absent
            continue
        value = re.escape(needle.text)
        if needle.kind == "word" or (needle.text.isdigit() and len(needle.text) < 8):
            value = r"(?<![a-z0-9])" + value + r"(?![a-z0-9])"
        for m in re.finditer(value, text, flags=re.IGNORECASE):
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.end())
            line = text[start:end if end >= 0 else len(text)]
            masked = re.sub(value, f"<{needle.category}>", line, flags=re.IGNORECASE)
            found.append((needle.category, masked[:200]))
    return found


# -- what a leak says about its cause (after the check, to group findings) -----------------

#: The longest value (each of a multi-valued element's values) a VR allows (PS3.5 6.2).
MAX_LENGTH = {b"AE": 16, b"AS": 4, b"CS": 16, b"DA": 18, b"DS": 16, b"DT": 54, b"IS": 12,
              b"LO": 64, b"PN": 194, b"SH": 16, b"ST": 1024, b"TM": 28, b"UI": 64, b"LT": 10240}


#: Text VRs whose values the profile's C (clean) and Z/D actions rewrite.
CLEANED_VRS = frozenset({b"AE", b"CS", b"DA", b"DT", b"LO", b"LT", b"PN", b"SH", b"ST", b"TM",
                         b"UC", b"UT"})


def explain(output: bytes, hits: list[Hit], mutant_data: bytes, source: Path) -> str | None:
    """Why a written file holds what it does, when every hit has one of the causes the
    dedicated tests document, else None:

    * ``invalid-vr``: an element whose VR code is no VR at all, written as read;
    * ``wrong-vr``: a dictionary element written with a VR that is not its own and not one
      of the text VRs the profile rewrites (its value kept while the profile meant to clean
      it);
    * ``overlong-value``: a value longer than its VR allows (a length field that swallowed
      its neighbours);
    * ``displaced-identifier``: the identifier sits in a cleaned text element, and the damage
      moved,
      altered or re-typed its own element in the mutant (so the cleaner, which knows the
      identifiers by their own elements, could not know it);
    * ``unknown-public-element``, ``item-tag-as-element``: an even-group tag the dictionary
      does not know, or an item tag read as an element, kept as read (fixed; not excused).
    """
    from pydicom.datadict import dictionary_has_tag, dictionary_VR

    elements = [e for e in walk(output, through_pixels=True, lenient=True) if e.vr is not None]
    causes = set()
    for hit in hits:
        if not hit.form.startswith("raw-ascii") or hit.offset < 0:
            return None
        inside = [e for e in elements if e.value_offset <= hit.offset < e.value_offset +
                  (len(output) if e.length == UNDEFINED else e.length)]
        if not inside:
            return None
        e = inside[-1]
        tag = (e.group << 16) | e.element
        if e.group % 2 == 1 and e.group != 0xFFFF:
            return None  # private: the product keeps only allow-listed ones
        if e.group == 0xFFFE:
            causes.add("item-tag-as-element")
            continue
        if not dictionary_has_tag(tag):
            causes.add("unknown-public-element")
            continue
        if e.vr not in VR_SET:
            causes.add("invalid-vr")
            continue
        value = output[e.value_offset:e.value_offset + e.length]
        if e.vr in MAX_LENGTH and max(len(v.rstrip(b" \0")) for v in value.split(b"\\")) > \
                MAX_LENGTH[e.vr]:
            causes.add("overlong-value")
            continue
        if e.vr.decode("latin-1") not in dictionary_VR(tag).split(" or ") and \
                e.vr not in CLEANED_VRS:
            causes.add("wrong-vr")
            continue
        if hit.origin and e.vr in CLEANED_VRS and \
                _value_at(mutant_data, hit.origin) != _value_at(source.read_bytes(), hit.origin):
            causes.add("displaced-identifier")
            continue
        return None
    return "+".join(sorted(causes)) or None


def _value_at(data: bytes, origin: str) -> str:
    """The raw value(s) at ``origin`` (Keyword, or Sequence/Keyword in every item) and their
    VR, as pydicom reads them; "(unreadable)" when it cannot."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        datasets = [ds]
        *sequences, keyword = origin.split("/")
        for sequence in sequences:
            datasets = [item for d in datasets for item in (d.get(sequence) or [])]
        found = []
        for d in datasets:
            if keyword in d:
                raw = d.get_item(keyword)
                found.append(f"{raw.VR}:{raw.value!r}")
        return "|".join(found)
    except Exception:
        return "(unreadable)"


# -- mutations -------------------------------------------------------------------------------

@dataclass
class Context:
    data: bytes
    elements: list[Element]
    needles: Needles
    pixel_offset: int  # where the pixel data element starts

    def header_pos(self, rng: random.Random) -> int:
        return rng.randrange(128, self.pixel_offset + 12)

    def pick(self, rng: random.Random, where=None) -> Element:
        pool = [e for e in self.elements if where is None or where(e)]
        return rng.choice(pool or self.elements)

    def planted_name(self, rng: random.Random) -> str:
        parts = self.needles.names[0] or ["NOBODY"]
        family, given = parts[0], parts[1] if len(parts) > 1 else parts[0]
        return rng.choice((f"{family}^{given}", f"{given.title()} {family.title()}",
                           f"{family.lower()}, {given.lower()}", f"Pt {family.upper()} {given}"))


@dataclass
class Mutant:
    data: bytes
    cls: str
    variant: str
    detail: str  # value-free: tags, VRs, offsets, sizes
    planted: list[str]
    source: Path
    seed: int
    index: int

    @property
    def label(self) -> str:
        return f"seed={self.seed} index={self.index} {self.cls}/{self.variant}: {self.detail}"


def _bit_flip(ctx: Context, rng: random.Random):
    buf = bytearray(ctx.data)
    n = rng.choice((1, 1, 1, 2, 4, 8, 32))
    anywhere = rng.random() < 0.1
    for _ in range(n):
        pos = rng.randrange(128, len(buf)) if anywhere else ctx.header_pos(rng)
        buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf), "anywhere" if anywhere else "header", f"{n} bit(s)", []


INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x20, 0x5C, 0x5E, 0x01, 0xFE)
RETAGS = ((0x0010, 0x0010), (0x0019, 0x0010), (0x0019, 0x1012), (0x7FE0, 0x0010),
          (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD), (0x0002, 0x0010),
          (0x0008, 0x0005), (0x0028, 0x0010), (0x0011, 0x0010), (0x0000, 0x0000),
          (0xFFFF, 0xFFFF), (0x0008, 0x0016), (0x0008, 0x0018))


def _byte_overwrite(ctx: Context, rng: random.Random):
    buf = bytearray(ctx.data)
    variant = rng.choice(("random", "interesting", "retag"))
    if variant == "retag":
        target = ctx.pick(rng, lambda e: e.vr is not None)
        group, elem = rng.choice(RETAGS) if rng.random() < 0.7 else \
            (rng.randrange(0x10000) | rng.choice((0, 1)), rng.randrange(0x10000))
        buf[target.offset:target.offset + 4] = struct.pack("<HH", group, elem)
        return bytes(buf), variant, f"{target.name()} -> ({group:04X},{elem:04X})", []
    runs = rng.randint(1, 4)
    for _ in range(runs):
        pos = ctx.header_pos(rng)
        n = rng.randint(1, 8)
        for i in range(pos, min(pos + n, len(buf))):
            buf[i] = rng.randrange(256) if variant == "random" else rng.choice(INTERESTING_BYTES)
    return bytes(buf), variant, f"{runs} run(s)", []


def _length_field(ctx: Context, rng: random.Random):
    target = ctx.pick(rng)
    old = target.length
    limit = 0xFFFF if target.len_size == 2 else 0xFFFFFFFF
    rest = len(ctx.data) - target.value_offset
    choices = [0, 1, old - 1, old + 1, old + 2, old * 2, old + rng.randint(3, 300),
               max(0, old - rng.randint(2, 64)), rest, rest + 2, limit, limit - 1,
               rng.randrange(limit + 1)]
    if target.len_size == 4:
        choices += [UNDEFINED, 0x7FFFFFFF, 0x80000000]
    new = rng.choice([c for c in choices if 0 <= c <= limit and c != old] or [0])
    buf = bytearray(ctx.data)
    fmt = "<H" if target.len_size == 2 else "<I"
    struct.pack_into(fmt, buf, target.len_offset, new)
    variant = "item/delimiter" if target.vr is None else \
        "meta" if target.group == 2 else "nested" if target.depth else "top"
    return bytes(buf), variant, f"{target.name()} length {old} -> {new}", []


def _truncate(ctx: Context, rng: random.Random):
    variant = rng.choice(("header", "header", "boundary", "pixels", "tail"))
    if variant == "header":
        cut = ctx.header_pos(rng)
    elif variant == "boundary":
        target = ctx.pick(rng)
        cut = rng.choice((target.offset, target.value_offset, target.offset + 4))
    elif variant == "pixels":
        cut = rng.randrange(ctx.pixel_offset + 12, len(ctx.data))
    else:
        cut = len(ctx.data) - rng.randint(1, 3)
    return ctx.data[:cut], variant, f"at {cut} of {len(ctx.data)}", []


def _insert_run(ctx: Context, rng: random.Random):
    data = ctx.data
    variant = rng.choice(("dup_run", "random_bytes", "zero_run", "dup_element"))
    if variant == "dup_element":
        target = ctx.pick(rng, lambda e: e.vr not in (None, b"SQ") and e.group != 0x7FE0)
        chunk = data[target.offset:target.end]
        at = rng.choice((target.end, ctx.pick(rng).offset))
        return data[:at] + chunk + data[at:], variant, f"{target.name()} copied to {at}", []
    at = ctx.header_pos(rng)
    n = rng.choice((1, 2, 3, 4, 7, 8, 16, 100, 1000))
    if variant == "dup_run":
        start = ctx.header_pos(rng)
        chunk = data[start:start + n]
    elif variant == "random_bytes":
        chunk = bytes(rng.randrange(256) for _ in range(n))
    else:
        chunk = b"\0" * n
    return data[:at] + chunk + data[at:], variant, f"{len(chunk)} byte(s) at {at}", []


VR_TABLE = {b"PN": b"UL", b"LO": b"UN", b"SH": b"OB", b"DA": b"UT", b"UI": b"SQ", b"LT": b"OW",
            b"CS": b"US", b"DS": b"FD", b"US": b"PN", b"SQ": b"LO", b"IS": b"SL", b"TM": b"AT",
            b"UL": b"UT", b"OW": b"UN", b"OB": b"SQ"}


def _vr_swap(ctx: Context, rng: random.Random):
    target = ctx.pick(rng, lambda e: e.vr is not None)
    variant = rng.choice(("table", "table", "valid", "random_letters", "not_letters"))
    if variant == "table":
        new = VR_TABLE.get(target.vr, b"UN")
    elif variant == "valid":
        new = rng.choice([v for v in ALL_VRS if v != target.vr])
    elif variant == "random_letters":
        new = bytes(rng.randrange(65, 91) for _ in range(2))
    else:
        new = bytes(rng.choice((0x00, 0x20, 0x3F, 0x61, 0xC3, 0xFF)) for _ in range(2))
    data = ctx.data
    reencode = (new in LONG_VRS) != (target.vr in LONG_VRS) and rng.random() < 0.5 \
        and target.length != UNDEFINED and not (new not in LONG_VRS and target.length > 0xFFFF)
    if reencode:  # the header rewritten for the new VR's length field; the value untouched
        header = encode_element(target.group, target.element, new, b"", length=target.length)
        data = data[:target.offset] + header + data[target.value_offset:]
        variant += "+reencoded"
    else:
        data = data[:target.offset + 4] + new + data[target.offset + 6:]
    return data, variant, f"{target.name()} -> {new!r}", []


TRANSFER_SYNTAXES = {
    "deflate_label": DEFLATED, "bigendian_label": b"1.2.840.10008.1.2.2",
    "implicit_label": b"1.2.840.10008.1.2", "jpeg_label": b"1.2.840.10008.1.2.4.50",
    "rle_label": b"1.2.840.10008.1.2.5", "j2k_label": b"1.2.840.10008.1.2.4.90",
    "unknown_uid": b"1.2.3.4.5.6", "empty": b"", "garbage": b"NOT^A^UID\\1",
}


def _set_transfer_syntax(data: bytes, elements: list[Element], uid: bytes, fix: bool) -> bytes:
    ts = next(e for e in elements if e.tag == (0x0002, 0x0010))
    new = encode_element(2, 0x10, b"UI", uid)
    data = data[:ts.offset] + new + data[ts.end:]
    if fix:
        group_length = next((e for e in elements if e.tag == (0x0002, 0x0000)), None)
        if group_length is not None:
            (old,) = struct.unpack_from("<I", data, group_length.value_offset)
            data = data[:group_length.value_offset] + \
                struct.pack("<I", old + len(new) - (ts.end - ts.offset)) + \
                data[group_length.value_offset + 4:]
    return data


def _transfer_syntax(ctx: Context, rng: random.Random):
    variant = rng.choice(sorted(TRANSFER_SYNTAXES) + ["deflate_real", "deflate_real_damaged"])
    fix = rng.random() < 0.8
    if variant.startswith("deflate_real"):
        data = _set_transfer_syntax(ctx.data, ctx.elements, DEFLATED, True)
        meta_end = _meta_end(data)
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = packer.compress(data[meta_end:]) + packer.flush()
        if variant == "deflate_real_damaged":
            body = bytearray(body)
            at = rng.randrange(len(body))
            if rng.random() < 0.5:
                body = body[:at]
            else:
                for i in range(at, min(at + rng.randint(1, 40), len(body))):
                    body[i] = rng.randrange(256)
        return data[:meta_end] + bytes(body), variant, "body deflated", []
    data = _set_transfer_syntax(ctx.data, ctx.elements, TRANSFER_SYNTAXES[variant], fix)
    return data, variant, "group length " + ("fixed" if fix else "stale"), []


NAME_TARGETS = {(0x0010, 0x0010), (0x0008, 0x0090), (0x0008, 0x1030), (0x0008, 0x103E),
                (0x0008, 0x0080), (0x0010, 0x1040), (0x0008, 0x1070), (0x0008, 0x1050),
                (0x0019, 0x1011), (0x0032, 0x1060), (0x0010, 0x2154)}


def _replace_value(data: bytes, target: Element, vr: bytes, value: bytes) -> bytes:
    new = encode_element(target.group, target.element, vr, value)
    return data[:target.offset] + new + data[target.end:]


def _long_value(ctx: Context, rng: random.Random):
    target = ctx.pick(rng, lambda e: e.vr in TEXT_VRS and e.group != 2)
    named = target.tag in NAME_TARGETS
    variant = rng.choice(("max_short", "to_ut", "to_uc", "many_values"))
    filler = rng.choice((b"A", b"x ", b"^", b"0", b"\xc3\xa9"))
    planted: list[str] = []
    if variant == "max_short":
        size, vr = 65534 - 64, target.vr
    elif variant == "many_values":  # a huge VM: 20 000 backslash-separated values
        size, vr, filler = 60000, target.vr, b"AB\\"
    else:
        size, vr = rng.choice((70_000, 200_000, 1_000_000)), b"UT" if variant == "to_ut" else b"UC"
    value = (filler * (size // len(filler) + 1))[:size]
    if named:
        name = ctx.planted_name(rng)
        planted.append(name)
        value = value[:size - 64] + b" " + name.encode("latin-1")
        variant += "+name"
    if vr not in LONG_VRS and len(value) > 65534:
        value = value[-65534:]
    data = _replace_value(ctx.data, target, vr, value)
    return data, variant, f"{target.name()} -> {vr.decode()} of {len(value)} bytes", planted


SEQUENCE_TAGS = {"content": (0x0040, 0xA730), "ref_series": (0x0008, 0x1115),
                 "private": (0x0029, 0x1010), "request": (0x0040, 0x0275)}


def _insert_top_level(ctx: Context, tag: tuple[int, int], chunk: bytes) -> bytes:
    """``chunk`` before the first top-level dataset element with a greater tag."""
    for e in ctx.elements:
        if e.depth == 0 and e.group != 2 and e.vr is not None and e.tag > tag:
            return ctx.data[:e.offset] + chunk + ctx.data[e.offset:]
    return ctx.data + chunk


def _deep_sequence(ctx: Context, rng: random.Random):
    where = rng.choice(sorted(SEQUENCE_TAGS))
    tag = SEQUENCE_TAGS[where]
    depth = rng.choice((1, 2, 8, 50, 120, 250, 600, 1200))
    end_kind = rng.choice(("terminated", "terminated", "unterminated", "appended"))
    name = ctx.planted_name(rng)
    inner_kind = rng.choice(("PN", "UT", "private"))
    if inner_kind == "PN":
        inner = encode_element(0x0010, 0x0010, b"PN", name.encode("latin-1"))
    elif inner_kind == "UT":  # Text Value, free text
        inner = encode_element(0x0040, 0xA160, b"UT", f"Patient {name} seen".encode("latin-1"))
    else:
        inner = encode_element(0x0029, 0x0010, b"LO", b"FUZZ NEST") + \
            encode_element(0x0029, 0x1001, b"LO", name.encode("latin-1"))
    seq = encode_element(tag[0], tag[1], b"SQ", b"", length=UNDEFINED)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED)
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    body = (seq + item) * depth + inner
    if end_kind != "unterminated":
        body += close * depth
    data = ctx.data + body if end_kind == "appended" else _insert_top_level(ctx, tag, body)
    variant = f"{end_kind}"
    return data, variant, f"({tag[0]:04X},{tag[1]:04X}) depth {depth}, {inner_kind} inside", [name]


# Where a name is planted, and how: (tag, VR, private creator or None, placement).
PLANTS = {
    "private_new_block": ((0x0011, 0x1001), b"LO", b"FUZZ PLANT", "ordered"),
    "private_orphan": ((0x0011, 0x1001), b"LO", None, "ordered"),
    "creator_is_name": ((0x0011, 0x1001), b"DS", "NAME", "ordered"),
    "image_comments_lt": ((0x0020, 0x4000), b"LT", None, "ordered"),
    "long_code_value_uc": ((0x0008, 0x0119), b"UC", None, "ordered"),
    "patient_comments_at_eof": ((0x0010, 0x4000), b"LT", None, "eof"),
    "private_at_eof": ((0x7FE1, 0x1001), b"LO", b"FUZZ TAIL", "eof"),
    "other_names_as_un": ((0x0010, 0x1001), b"UN", None, "ordered"),
    "text_value_unlisted_ut": ((0x0040, 0xA160), b"UT", None, "ordered"),
}
#: Plants that put a name where the profile keeps the element as it is: findings (see the
#: dedicated tests), drawn only when asked for.
BY_DESIGN_PLANTS = ("unlisted_public_lo", "safe_private_slot")


def _plant_text(ctx: Context, rng: random.Random, extra: tuple[str, ...] = ()):
    variant = rng.choice(sorted(PLANTS) + ["descriptor_tail", *extra])
    name = ctx.planted_name(rng)
    if rng.random() < 0.3 and ctx.needles.patient_id:
        name += f" MRN {ctx.needles.patient_id}"
    raw = name.encode("latin-1")
    if variant == "descriptor_tail" or variant == "unlisted_public_lo":
        tag = (0x0008, 0x1030) if variant == "descriptor_tail" else (0x0008, 0x0070)
        target = next(e for e in ctx.elements if e.tag == tag)
        old = ctx.data[target.value_offset:target.end].rstrip(b" \0")
        data = _replace_value(ctx.data, target, target.vr, old + b" " + raw)
        return data, variant, f"{target.name()} + name", [name]
    if variant == "safe_private_slot":  # the allow-listed exposure index holds the name
        target = next(e for e in ctx.elements if e.tag == (0x0019, 0x1012))
        return _replace_value(ctx.data, target, target.vr, raw), variant, target.name(), [name]
    (group, elem), vr, creator, placement = PLANTS[variant]
    chunk = b""
    if creator == "NAME":
        chunk = encode_element(group, 0x0010, b"LO", raw)
        value = b"1.5"
    else:
        if creator is not None:
            chunk = encode_element(group, 0x0010, b"LO", creator)
        value = raw if vr != b"LT" else b"Seen by " + raw + b" today"
    chunk += encode_element(group, elem, vr, value)
    data = ctx.data + chunk if placement == "eof" else _insert_top_level(ctx, (group, 0), chunk)
    return data, variant, f"({group:04X},{elem:04X}) {vr.decode()} {placement}", [name]


CHARSETS = {"utf8": b"ISO_IR 192", "latin1": b"ISO_IR 100", "cyrillic": b"ISO_IR 144",
            "katakana": b"ISO_IR 13", "jis": b"ISO 2022 IR 87", "extension": b"\\ISO 2022 IR 100",
            "multi": b"ISO 2022 IR 6\\ISO 2022 IR 87", "gb18030": b"GB18030",
            "unknown": b"XYZ 123", "empty": b""}


def _charset(ctx: Context, rng: random.Random):
    """Another Specific Character Set (or none), with the patient's name appended to the
    study description: in ASCII, in the declared set's bytes, or as UTF-16 (a broken
    writer)."""
    variant = rng.choice(sorted(CHARSETS) + ["removed"])
    target = next(e for e in ctx.elements if e.tag == (0x0008, 0x0005))
    if variant == "removed":
        data = ctx.data[:target.offset] + ctx.data[target.end:]
    else:
        data = _replace_value(ctx.data, target, b"CS", CHARSETS[variant])
    how = rng.choice(("none", "ascii", "utf-16-le"))
    planted: list[str] = []
    if how != "none":
        name = ctx.planted_name(rng)
        planted.append(name)
        elements = walk(data)
        described = next(e for e in elements if e.tag == (0x0008, 0x1030))
        old = data[described.value_offset:described.end].rstrip(b" \0")
        data = _replace_value(data, described, b"LO", old + b" " + name.encode(how
                              if how != "ascii" else "latin-1"))
        variant += f"+name-{how}"
    return data, variant, "(0008,0005) and (0008,1030)", planted


MUTATIONS = {
    "bit_flip": _bit_flip,
    "byte_overwrite": _byte_overwrite,
    "length_field": _length_field,
    "truncate": _truncate,
    "insert_run": _insert_run,
    "vr_swap": _vr_swap,
    "transfer_syntax": _transfer_syntax,
    "long_value": _long_value,
    "deep_sequence": _deep_sequence,
    "plant_text": _plant_text,
    "charset": _charset,
}
CLASSES = tuple(MUTATIONS)


@cache
def _source_bytes(path: Path) -> bytes:
    return path.read_bytes()


def make_mutant(seed: int, index: int, sources: list[Path], cls: str | None = None,
                by_design: bool = False) -> Mutant:
    """Mutant ``index`` of run ``seed``: the class goes round the list (every class is
    tried as often as the others); the source file and the damage are drawn from
    ``random.Random(f"{seed}:{index}")``."""
    rng = random.Random(f"{seed}:{index}")
    cls = cls or CLASSES[index % len(CLASSES)]
    source = sources[rng.randrange(len(sources))]
    data = _source_bytes(source)
    elements = walk(data)
    pixels = next(e.offset for e in elements if e.tag == (0x7FE0, 0x0010))
    ctx = Context(data, elements, needles_of(source), pixels)
    if cls == "plant_text":
        out = _plant_text(ctx, rng, BY_DESIGN_PLANTS if by_design else ())
    else:
        out = MUTATIONS[cls](ctx, rng)
    mutated, variant, detail, planted = out
    return Mutant(mutated, cls, variant, detail, planted, source, seed, index)


def sample_sources() -> list[Path]:
    """The cohort files the fuzz test draws from, in its order."""
    return sorted((Path(__file__).resolve().parent.parent / "sample_data").glob("*/image.dcm"))


if __name__ == "__main__":  # python tests/fuzzing.py SEED INDEX OUT.dcm: one mutant, to look at
    import sys

    seed, index, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    mutant = make_mutant(seed, index, sample_sources())
    out.write_bytes(mutant.data)
    print(f"{mutant.label} (from {mutant.source.parent.name})")
