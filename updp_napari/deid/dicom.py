"""De-identify DICOM files and folders: header profile, burned-in text, a record per file.

``deidentify_tree(IN, OUT)`` mirrors IN's relative paths under OUT. A file that is not
DICOM, or whose pixels cannot be decoded when they must be, is listed with the reason and
the run goes on; nothing is written for it. The record says what was done to each element
path and pixel box, never what the values were.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..core.boxes import boxes_mask
from ..core.errors import InputError, UpdpError
from ..core.files import private_folder
from ..core.progress import Progress
from .header import DEFAULT_OPTIONS, HeaderDeidentifier
from .pixels import DEFAULT_SEARCH, SEARCH_MODES
from .report.header_values import dictionary_vr

_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass
class FileRecord:
    file: str  # path relative to the input root
    status: str  # "ok" or "skipped"
    reason: str = ""
    actions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    dates_shifted: int = 0
    pixels: dict = field(default_factory=dict)
    output: str = ""  # where it was written, relative to OUT, when not at ``file``

    def as_json(self) -> dict:
        out = {"file": self.file, "status": self.status}
        if self.output and self.output != self.file:
            out["output"] = self.output
        if self.reason:
            out["reason"] = self.reason
        if self.status == "ok":
            out.update(counts=self.counts, dates_shifted=self.dates_shifted, pixels=self.pixels,
                       actions=self.actions)
        return out


class DicomDeidentifier:
    """Header and pixel de-identification of one workspace (one key, one set of options)."""

    def __init__(self, key: bytes, options: tuple[str, ...] = DEFAULT_OPTIONS,
                 pixels: str = "ocr", trust_burned_in_no: bool = False,
                 extra_safe_private: frozenset = frozenset(), ocr_search: str = DEFAULT_SEARCH):
        if pixels not in ("ocr", "off"):
            raise UpdpError(f"pixels must be ocr or off, not {pixels!r}")
        if ocr_search not in SEARCH_MODES:
            raise UpdpError(f"ocr_search must be {' or '.join(SEARCH_MODES)}, not {ocr_search!r}")
        if pixels == "ocr":
            from .pixels import tesseract_available

            if not tesseract_available():
                raise UpdpError("tesseract not found: install the Debian package tesseract-ocr "
                                "(or set pixels to off, and scan the pixels another way)")
        self.key = key
        self.options = tuple(o for o in options if o != "clean-pixel-data" or pixels == "ocr")
        self.pixels = pixels
        self.trust_burned_in_no = trust_burned_in_no
        # regions: OCR reads the text the image analysis proposes; full: every image whole
        # (slower; the reference the region search is measured against).
        self.ocr_search = ocr_search
        self.extra_safe_private = extra_safe_private
        self._header: HeaderDeidentifier | None = None

    def _header_deidentifier(self) -> HeaderDeidentifier:
        """Built once: the profile, the options and the report rules for free text."""
        if self._header is None:
            from .report import ReportDeidentifier

            reports = ReportDeidentifier()

            def clean_text(text: str, identifiers) -> str:
                return reports.deidentify(text, identifiers, mode="tag").text

            self._header = HeaderDeidentifier(self.key, self.options, clean_text=clean_text,
                                              extra_safe_private=self.extra_safe_private)
        return self._header

    def deidentify_dataset(self, ds, record: FileRecord, dates=None) -> None:
        """De-identify ``ds`` in place, filling ``record``; ``dates``: all the study's (header
        and report), which the date shift must not map one onto another of (None: the
        file's own; ``keys.date_shift_days``)."""
        from .report.header_values import header_identifiers, patient_key

        if self.pixels == "ocr" and "PixelData" in ds:
            # The pixel scan looks for the header's values, read before anything changes.
            record.pixels = self._clean_pixels(ds, header_identifiers(ds))
        header = self._header_deidentifier()
        result = header.apply(ds, patient_key(ds), dates)
        if record.pixels.get("boxes"):
            ds.BurnedInAnnotation = "NO"
        record.actions = result.actions
        record.dates_shifted = result.dates_shifted
        counts = Counter(result.actions.values())
        record.counts = {a: counts.get(a, 0) for a in ("X", "Z", "D", "U", "C", "K")}

    def _clean_pixels(self, ds, identifiers) -> dict:
        """OCR the pixels and fill what reads as text; decoded first when compressed."""
        from .pixels import clean_burned_in

        flagged = str(ds.get("BurnedInAnnotation", "") or "").upper()
        if flagged == "NO" and self.trust_burned_in_no:
            return {"scanned": False, "reason": "BurnedInAnnotation is NO (trusted)"}
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            try:
                ds.decompress()
            except Exception as exc:  # the decoders raise many kinds
                raise InputError(f"compressed pixel data ({ds.file_meta.TransferSyntaxUID.name}) "
                                 f"could not be decoded: {type(exc).__name__}") from None
        colour = int(ds.get("SamplesPerPixel", 1) or 1) == 3
        photometric = str(ds.get("PhotometricInterpretation", ""))
        if colour and photometric not in ("RGB", "YBR_FULL", "YBR_FULL_422"):
            raise InputError(f"colour pixel data in {photometric or 'an unknown colour space'}: "
                             "burned-in text cleaning reads greyscale, RGB and YBR_FULL images "
                             "(with pixels off only the header is de-identified)")
        try:
            array = ds.pixel_array
            if colour and photometric != "RGB":  # read (and, if filled, written) as RGB
                from pydicom.pixels import convert_color_space

                array = convert_color_space(array, photometric, "RGB")
                photometric = "RGB"
        except Exception as exc:
            raise InputError(f"pixel data could not be read: {type(exc).__name__}") from None
        monochrome1 = photometric == "MONOCHROME1"
        names = [p for parts in identifiers.names for p in parts if len(p) >= 2]
        words = names + identifiers.ids + identifiers.dates + identifiers.institutions
        multi = array.ndim == (4 if colour else 3)
        frames = array if multi else array[None]
        out = frames.copy()
        found: dict[tuple, dict] = {}
        for frame in frames:
            # Colour images are read by their brightness and filled black in every channel.
            grey = frame.mean(axis=-1).astype(frame.dtype) if colour else frame
            for box in clean_burned_in(grey, words, monochrome1=monochrome1,
                                       search=self.ocr_search).boxes:
                found.setdefault(tuple(box["box"]), box)
        # Text burned into a series stands where it stood in every frame (OCR reads some
        # frames better than others), so every box found is filled in every frame.
        fill = 0 if colour else array.max() if monochrome1 else array.min()  # shows as black
        out[:, boxes_mask(found, frames.shape[1:3])] = fill  # half-open boxes (core.boxes)
        boxes = list(found.values())
        if boxes:
            pixels = out if multi else out[0]
            if colour:
                ds.PhotometricInterpretation = "RGB"
                ds.PlanarConfiguration = 0  # pixel_array gives colour by pixel
            ds.PixelData = pixels.astype(array.dtype, copy=False).tobytes()
        return {"scanned": True, "flagged_before": flagged or None, "boxes": boxes}

    def deidentify_file(self, src: Path, dst: Path, rel: str, out_root: Path | None = None
                        ) -> FileRecord:
        """De-identify ``src`` into ``dst``; with ``out_root``, into ``out_root`` / ``rel``
        where the file's own identifiers in ``rel`` are replaced by their stand-ins."""
        from ..ingest import read_dataset

        record = FileRecord(rel, "ok")
        try:
            ds = read_dataset(src)
        except InputError as exc:
            return FileRecord(rel, "skipped", str(exc).split(": ", 1)[-1])
        try:
            # Every element's VR and length first: reading a value of a damaged element (the
            # SOP Class UID as UJ) may itself fail, and anything after is then unreliable.
            check_structure(ds)
            if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
                return FileRecord(rel, "skipped", "no transfer syntax in the file meta")
            if not ds.file_meta.TransferSyntaxUID.is_transfer_syntax:
                return FileRecord(rel, "skipped", "a transfer syntax DICOM does not define (a "
                                                  "private one?): the file cannot be rewritten")
            if str(ds.get("SOPClassUID", "")) == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
                return FileRecord(rel, "skipped", "a DICOMDIR (media directory), not an instance: "
                                                  "make a new one for the de-identified files")
            if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
                return FileRecord(rel, "skipped", "no SOP Class or Instance UID: not a storable "
                                                  "DICOM instance")
            check_complete(ds)
            if out_root is not None:
                record.output = identifier_free_path(rel, ds, self.key)
                dst = out_root / record.output
            self.deidentify_dataset(ds, record)
        except InputError as exc:
            return FileRecord(rel, "skipped", str(exc))
        except Exception as exc:  # a malformed value anywhere: this file only, not the batch
            return FileRecord(rel, "skipped", f"could not be de-identified ({type(exc).__name__}; "
                                              "a malformed element?)")
        private_folder(dst.parent)
        tmp = dst.with_name(dst.name + ".part")
        try:
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, dst)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            if os.environ.get("UPDP_DEBUG"):
                raise
            return FileRecord(rel, "skipped", f"could not be written: {type(exc).__name__}")
        return record


def identifier_free_path(rel: str, ds, key: bytes) -> str:
    """``rel`` with the file's own identifiers (patient ID, accession, UIDs, name parts, birth
    date) in its folder and file names replaced by the stand-ins the header gets, and any
    other date, SSN, long number or personal name by keyed stand-ins (``deid.paths``):
    archives are often filed by MRN, and a mirrored path would carry it out."""
    import re

    from .header import remap_uid, stand_in
    from .paths import PathCleaner

    swaps: list[tuple[str, str]] = []
    # The same stand-ins the header gets: patient ID (0010,0020), accession (0008,0050).
    for tag in (0x00100020, 0x00080050):
        value = str((ds[tag].value if tag in ds else "") or "").strip()
        if value:
            swaps.append((value, stand_in(key, ds, tag)))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        uid = str(ds.get(keyword, "") or "").strip()
        if uid:
            swaps.append((uid, remap_uid(key, uid)))
    patient = stand_in(key, ds, 0x00100010)
    name = str(ds.get("PatientName", "") or "")
    swaps += [(part, patient) for part in re.split(r"[\^\s,=]+", name) if len(part) >= 2]
    birth = str(ds.get("PatientBirthDate", "") or "").strip()
    if birth:
        swaps.append((birth, "DOB"))
    others = ds.get("OtherPatientIDs", "") or ""
    for value in (others if not isinstance(others, str) else [others]):
        if str(value).strip():
            swaps.append((str(value).strip(), stand_in(key, ds, 0x00100020)))
    return PathCleaner(key, swaps).clean(rel)


#: The longest value of each string VR (PS3.5 Table 6.2-1; DA, DT and TM as in range
#: matching), per value of a multi-valued element; PN per component group.
_MAX_VALUE = {"AE": 16, "AS": 4, "CS": 16, "DA": 18, "DS": 16, "DT": 54, "IS": 12, "LO": 64,
              "PN": 3 * 64 + 2, "SH": 16, "TM": 28, "UI": 64, "ST": 1024, "LT": 10240}
#: Bytes per value of the binary VRs.
_VALUE_BYTES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8, "SV": 8,
                "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8}
#: Real files overrun the limits now and then; a damaged length field overruns them by far.
_OVERRUN = 2
#: More terms than any real character set names: a damaged (0008,0005) (decoding every text
#: element against thousands of terms takes minutes).
_MAX_CHARSET_TERMS = 8


def check_structure(ds) -> None:
    """Refuse a dataset holding an element this reader cannot classify or whose length its
    VR forbids: a VR code that is none of DICOM's, a string value far past its VR's maximum,
    a binary value that is not a whole number of its VR's units, a character set of dozens
    of terms. Each is what a damaged length or VR field leaves: an element that swallowed
    the elements after it (names and IDs among them), which would otherwise be written as
    read. Elements are checked raw, as read, nothing converted."""
    from pydicom.valuerep import VR

    valid = {str(v.value) for v in VR}

    def walk(dataset) -> None:
        if 0x00080005 in dataset:  # read (converted) with the file, or the item, already
            _check_character_set(dataset.get_item(0x00080005).value)
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag)
            vr = raw.VR
            if vr is not None and vr not in valid:
                raise InputError("an element with no valid VR (a damaged header?)")
            if vr is None:  # implicit VR: the dictionary's
                vr = dictionary_vr(tag)
            if vr == "SQ":
                for item in dataset[tag].value or ():
                    walk(item)
                continue
            value = raw.value
            if not isinstance(value, (bytes, bytearray)) or vr is None:
                continue
            if vr in _VALUE_BYTES and len(value) % _VALUE_BYTES[vr]:
                raise InputError(f"a {vr} value of {len(value)} bytes (a damaged length field?)")
            limit = _MAX_VALUE.get(vr)
            if limit is not None:
                parts = [value] if vr in ("ST", "LT") else bytes(value).split(b"\\")
                if any(len(part) > limit * _OVERRUN for part in parts):
                    raise InputError(f"a {vr} value far longer than its VR allows "
                                     "(a damaged length field?)")

    walk(ds)


def _check_character_set(value) -> None:
    """A Specific Character Set (raw bytes, or as read) names a few of the terms DICOM
    defines, nothing else (a damaged header can put any value there, a name or an ID)."""
    if isinstance(value, (bytes, bytearray)):
        terms = bytes(value).decode("latin-1").split("\\")
    elif isinstance(value, str):
        terms = [value]
    else:
        terms = [str(v) for v in value or ()]
    if len(terms) > _MAX_CHARSET_TERMS:
        raise InputError(f"a character set of {len(terms)} terms (a damaged header?)")
    known = _known_character_sets()
    for term in terms:
        text = term.strip(" \x00")
        if text and _fold_charset(text) not in known:
            raise InputError("a character set that is none of DICOM's (a damaged header?)")


def _fold_charset(term: str) -> str:
    """"ISO_IR 100", "ISO_IR_100", "iso-ir 100" alike."""
    return " ".join(term.upper().replace("_", " ").replace("-", " ").split())


@cache
def _known_character_sets() -> frozenset[str]:
    from pydicom.charset import python_encoding

    return frozenset(_fold_charset(k) for k in python_encoding)


def check_complete(ds) -> None:
    """Refuse an image whose pixel data is missing or shorter than its header says.

    An image is known by its pixel description or by its SOP class: a damaged length field
    can make the parser swallow the rest of the header (Rows, the pixels, names after it)
    into one bogus element, and what it read then is a partial understanding of the file."""
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    by_class = "Image Storage" in (getattr(sop_class, "name", "") or "")
    if "Rows" not in ds or "Columns" not in ds:
        if by_class:
            raise InputError("an image without its pixel description or data (a damaged header?)")
        return  # not an image (a report, a structured document)
    if "PixelData" not in ds:
        raise InputError("image without pixel data (a truncated file?)")
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return
    pixel_bytes = len(ds.get_item(0x7FE00010).value)  # the raw element: nothing to convert
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = 2  # two lumas share one pair of chroma values: four bytes for two pixels
    expected = int(ds.Rows) * int(ds.Columns) * frames * samples * bits // 8
    if pixel_bytes < expected:
        raise InputError(f"pixel data is truncated ({pixel_bytes} of {expected} bytes)")


def input_files(root: Path, follow_symlinks: bool = False,
                unreadable: list[tuple[Path, str]] | None = None) -> list[tuple[Path, str]]:
    """Every file under ``root`` (or ``root`` itself), with its path relative to the root;
    symbolic links listed as they are, folders that cannot be listed in ``unreadable``
    (``core.files.tree_files``)."""
    from ..core.files import tree_files

    if root.is_file():
        return [(root, root.name)]
    if not root.is_dir():
        raise InputError(f"{root}: no such file or folder")
    return [(p, p.relative_to(root).as_posix()) for p in tree_files(root, follow_symlinks, unreadable)]


def deidentify_tree(src: str | os.PathLike, dst: str | os.PathLike, deid: DicomDeidentifier,
                    progress: Progress | None = None,
                    record_path: str | os.PathLike | None = None,
                    follow_symlinks: bool = False) -> list[FileRecord]:
    """De-identify every DICOM file under ``src`` into ``dst``. Symbolic links are refused
    (their targets may lie anywhere) unless ``follow_symlinks``.

    The record names the original files, whose paths may carry identifiers, so it is kept
    out of ``dst``: written, owner-only, to ``record_path`` (in the workspace) when given.
    """
    from ..core.files import check_apart

    src, dst = Path(src), Path(dst)
    unreadable: list[tuple[Path, str]] = []
    files = input_files(src, follow_symlinks, unreadable)
    if not files and not unreadable:
        raise InputError(f"{src}: no files to de-identify")
    check_apart(src, dst)
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst}: already exists as a file; give a new file name, or a folder")
    # One file in, a new name with a suffix out ("IN.dcm OUT.dcm"): that file is written.
    single = src.is_file() and not dst.exists() and dst.suffix != ""
    private_folder(dst.parent if single else dst)
    # A folder that cannot be listed is recorded, never passed over: what it holds is lost
    # to this run.
    records = [FileRecord(folder.relative_to(src).as_posix(), "skipped", why)
               for folder, why in unreadable]
    for i, (path, rel) in enumerate(files):
        if single:
            records.append(deid.deidentify_file(path, dst, rel))
            continue
        target = dst / (rel if src.is_dir() else path.name)
        if path.suffix.lower() in (".txt", ".json", ".jsonl", ".md") and src.is_dir():
            records.append(FileRecord(rel, "skipped", "not DICOM (text beside the images; "
                                                      "de-identify reports with deid-report)"))
        elif path.is_symlink() and src.is_dir() and not follow_symlinks:
            # Its target may lie outside the input tree: never followed.
            records.append(FileRecord(rel, "skipped", "a symbolic link, not followed"))
        else:
            # The output's name has its identifiers replaced (and fits): a single file too.
            records.append(deid.deidentify_file(path, target, rel, out_root=dst))
        if progress:
            progress(i + 1, len(files))
    if record_path is not None:
        from ..core.files import write_text_atomic

        private_folder(Path(record_path).parent)
        write_text_atomic(record_path, "".join(json.dumps(r.as_json(), sort_keys=True) + "\n"
                                               for r in records), private=True)
    return records
