"""Finding the studies of an input folder: each DICOM image with its report and masks.

An input is a cohort folder made by ``updp make-cohort``, or any folder of DICOM files: files
named ``*.dcm``/``*.dicom``, and files without a suffix (or with one not known here, as PACS
exports and DICOMDIR media name them) that carry the DICOM preamble (``DICM`` at byte 128;
only those 132 bytes are read to tell). Companion files (text, tables, pictures, documents)
are passed over silently; any other file is listed among the files left out, with the reason.
A DICOMDIR is an index, not an image: its images are found by the walk of the folder.

Only frontal chest radiographs are cases: an image whose ViewPosition is lateral or oblique,
whose BodyPartExamined is given and is not the chest, or whose Modality is given and is not a
radiograph (CR, DX, DR, RG, OT) is left out with the reason; a missing tag excludes nothing.
The same instance twice (one SOPInstanceUID, the same bytes: a copy, or one file reached by
two links) is one case: the later copy is left out.

A report is matched to its image, in this order:

1. a manifest CSV (``--manifest``) with columns ``image`` and ``report`` (paths relative to
   the manifest's folder; ``report`` may be empty) and, optionally, ``site``;
2. ``report.txt`` in the image's own folder (the study folder);
3. a ``.txt`` file anywhere under the input named by the image's AccessionNumber or
   StudyInstanceUID (``NUH-51-154710.txt``, ``1.2.840….txt``).

Pathology masks are ``mask_<label>.png`` beside the image (the cohort's layout), optional.
A case's site is the cohort's own (its ground truth), else the manifest row's ``site``, else
the run's ``site`` (``updp run --site``).
Nothing here prints a header value or report text; messages name files only (and the
ViewPosition code of a view that is left out, one of the codes listed here).
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import InputError
from .ingest import DICOM_SUFFIXES, MASK_PREFIX, REPORT_NAME

#: The Media Storage Directory Storage SOP Class: a DICOMDIR.
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
DICOMDIR_REASON = "a DICOMDIR index; its images are read from the folder"

#: Files beside the images that are not images: passed over without a word (never read).
COMPANION_SUFFIXES = frozenset({
    ".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".xml", ".html", ".htm", ".log", ".ini",
    ".yaml", ".yml", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".pdf", ".rtf",
    ".doc", ".docx", ".odt", ".npz", ".npy",
})
#: Files an operating system leaves in folders.
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})

#: Radiographic modalities (CR, DX; DR and RG as some sites write them; OT for secondary
#: captures of a film). Any other Modality (CT, MR, US, …) is not a case.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT"})
#: BodyPartExamined values of the chest contain one of these (case-insensitive; THORAX,
#: TORAX and TORACE in other languages).
CHEST_PARTS = ("CHEST", "THORA", "TORA", "LUNG", "PECHO")
#: ViewPosition codes of a lateral or an oblique projection (DICOM's defined terms and the
#: variants sites write). A code outside these lists is taken for frontal (AP, PA, …).
LATERAL_VIEWS = frozenset({"LL", "RL", "LLD", "RLD", "LAT", "LATERAL", "L LAT", "R LAT",
                           "LLAT", "RLAT", "XTABLE LAT", "XTABLE LATERAL", "CROSS TABLE LATERAL",
                           "LATERAL DECUBITUS", "LAT DECUB"})
OBLIQUE_VIEWS = frozenset({"LO", "RO", "LLO", "RLO", "LAO", "RAO", "LPO", "RPO", "OBL",
                           "OBLIQUE"})
#: A ViewPosition of several words with one of these is lateral (oblique): "X TABLE LATERAL".
LATERAL_WORDS = frozenset({"LAT", "LATERAL", "LATERALE"})
OBLIQUE_WORDS = frozenset({"OBL", "OBLIQUE", "OBLIQUA"})
FRONTAL_ONLY = "only frontal views are cases"


@dataclass
class StudyInput:
    """One image to run, with what belongs to it."""

    image: Path
    study_uid: str  # the case identity (keyed into the case id; never shown)
    report: Path | None = None
    masks: dict[str, Path] = field(default_factory=dict)
    site: str | None = None  # the cohort's site code, the manifest's or the run's; else None
    name: str = ""  # the image's path relative to the input, for messages and records


@dataclass
class Discovery:
    studies: list[StudyInput]
    skipped: list[tuple[str, str]]  # (relative path, reason): not DICOM, no study UID, …


@dataclass
class _Row:
    report: Path | None
    site: str | None


def _header(path: Path):
    """The tags intake decides by, no pixels. ImageLaterality is read with them but excludes
    nothing: the side of a chest image (L, R) says nothing of its projection."""
    from .ingest import read_dataset

    try:
        return read_dataset(path, stop_before_pixels=True,
                            specific_tags=["StudyInstanceUID", "SOPInstanceUID", "SOPClassUID",
                                           "AccessionNumber", "Modality", "BodyPartExamined",
                                           "ViewPosition", "ImageLaterality"])
    except InputError:
        return None


def _text(ds, keyword: str) -> str:
    """A header value as upper-case text with single spaces ("" when missing or odd)."""
    from pydicom.multival import MultiValue

    try:
        value = ds.get(keyword, "")
    except Exception:  # a damaged element: as good as missing, never quoted
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        value = " ".join(str(v) for v in value)
    text = str(value or "").replace("_", " ").replace("-", " ")
    return " ".join(text.upper().split())


def _sniff(path: Path) -> str | None:
    """None when ``path`` is a regular file with the DICOM preamble (``DICM`` at byte 128),
    else why not. Reads those 132 bytes only."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        return f"cannot be read ({type(exc).__name__})"
    if len(head) == 132 and head[128:132] == b"DICM":
        return None
    return "not a DICOM file (no DICOM preamble)"


def _is_dicomdir(path: Path, ds=None) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    if ds is None:
        return False
    meta = getattr(ds, "file_meta", None)
    classes = {str(getattr(meta, "MediaStorageSOPClassUID", "") or "").strip(),
               _text(ds, "SOPClassUID")}
    return MEDIA_DIRECTORY in classes


def _not_a_frontal_chest_radiograph(ds) -> str | None:
    """Why the image is not a case, or None. Missing tags exclude nothing; no value is quoted
    but a ViewPosition code from the lists above."""
    modality = _text(ds, "Modality")
    if modality and modality not in RADIOGRAPH_MODALITIES:
        return ("not a radiograph (its Modality is none of CR, DX, DR, RG, OT): only chest "
                "radiographs are cases")
    part = _text(ds, "BodyPartExamined")
    if part and not any(word in part for word in CHEST_PARTS):
        return ("not a chest image (its BodyPartExamined names another part): only chest "
                "radiographs are cases")
    view = _text(ds, "ViewPosition")
    words = set(view.split())
    # The code is quoted only when it is one of the lists' (a free text is not).
    for kind, codes, tokens in (("a lateral", LATERAL_VIEWS, LATERAL_WORDS),
                                ("an oblique", OBLIQUE_VIEWS, OBLIQUE_WORDS)):
        if view in codes:
            return f"{kind} view (ViewPosition {view}): {FRONTAL_ONLY}"
        if words & tokens:
            return f"{kind} view (by its ViewPosition): {FRONTAL_ONLY}"
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two images of one SOPInstanceUID are the same file or byte for byte the same
    (read only when their sizes agree). Copies that differ (another transfer syntax, a
    damaged copy) stay cases each, as their own: which one is sound is learnt when read."""
    import filecmp

    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _masks(folder: Path) -> dict[str, Path]:
    from .core.vocabulary import FINDINGS

    return {label: folder / f"{MASK_PREFIX}{label}.png" for label in FINDINGS
            if (folder / f"{MASK_PREFIX}{label}.png").is_file()}


def _site(value: str | None, where: str) -> str | None:
    """A site name as given (trimmed), None when empty; printable text up to 64 characters."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 64 or not value.isprintable():
        raise InputError(f"{where}: a site name is printable text of at most 64 characters")
    return value


def _manifest(path: Path) -> dict[Path, _Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read manifest ({type(exc).__name__})") from None
    if not rows or "image" not in rows[0]:
        raise InputError(f"{path}: manifest needs a header row with columns image,report")
    base = path.parent
    out: dict[Path, _Row] = {}
    for n, row in enumerate(rows, start=2):
        image = (row.get("image") or "").strip()
        if not image:
            raise InputError(f"{path}: line {n} names no image")
        report = (row.get("report") or "").strip()
        image_path = (base / image).resolve()
        if not image_path.is_file():
            raise InputError(f"{path}: line {n}: image file not found")
        report_path = (base / report).resolve() if report else None
        if report_path is not None and not report_path.is_file():
            raise InputError(f"{path}: line {n}: report file not found")
        out[image_path] = _Row(report_path, _site(row.get("site"), f"{path}: line {n}"))
    return out


def _candidates(root: Path, follow_symlinks: bool, skipped: list[tuple[str, str]]) -> list[Path]:
    """The files under ``root`` that may be images: DICOM suffixes, and the files without a
    known suffix that carry the DICOM preamble. Companion files are passed over; every other
    file is put in ``skipped`` with the reason (a DICOMDIR, a file without the preamble)."""
    from .core.files import tree_files

    out = []
    unreadable: list[tuple[Path, str]] = []
    files = tree_files(root, follow_symlinks, unreadable)
    skipped += [(_relative(folder, root), why) for folder, why in unreadable]
    for path in files:
        suffix = path.suffix.lower()
        if path.is_symlink() and not follow_symlinks:
            # Listed (by the caller) unless plainly a companion; never read through the link.
            if path.is_dir() or suffix not in COMPANION_SUFFIXES:
                out.append(path)
            continue
        if _is_dicomdir(path):
            skipped.append((_relative(path, root), DICOMDIR_REASON))
        elif suffix in DICOM_SUFFIXES:
            out.append(path)
        elif (suffix in COMPANION_SUFFIXES or path.name.lower() in SYSTEM_FILES
              or path.name.startswith("._")):
            continue
        elif (why := _sniff(path)) is None:
            out.append(path)
        else:
            skipped.append((_relative(path, root), why))
    return out


def find_studies(root: str | os.PathLike, manifest: str | os.PathLike | None = None,
                 follow_symlinks: bool = False, site: str | None = None) -> Discovery:
    """Every frontal chest radiograph under ``root`` (or listed in ``manifest``) with its
    report; the rest is listed in ``skipped`` with the reason. A symbolic link (an image, a
    report or a folder) is not followed unless ``follow_symlinks``: it is listed among the
    files left out, with the reason. ``site`` is the site of every case whose cohort or
    manifest row names none."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (give the folder that holds the studies)")
    site = _site(site, "--site")
    cohort_sites = _cohort_sites(root)
    studies, skipped = [], []
    if manifest is not None:
        listed = _manifest(Path(manifest))
        candidates = sorted(listed)
    else:
        listed = None
        candidates = _candidates(root, follow_symlinks, skipped)
    texts = None  # reports by file stem, read once when first needed
    seen: set[str] = set()
    instances: dict[str, tuple[Path, str]] = {}  # SOPInstanceUID -> the image kept for it
    linked = "a symbolic link, not followed (--follow-symlinks)"
    for path in candidates:
        name = _relative(path, root)
        if path.is_symlink() and not follow_symlinks:
            skipped.append((name, linked))  # its target may lie anywhere
            continue
        if _is_dicomdir(path):  # a manifest may name one
            skipped.append((name, DICOMDIR_REASON))
            continue
        ds = _header(path)
        if ds is None:
            skipped.append((name, "not a readable DICOM file"))
            continue
        if _is_dicomdir(path, ds):
            skipped.append((name, DICOMDIR_REASON))
            continue
        uid = str(ds.get("StudyInstanceUID", "") or "").strip()
        sop = str(ds.get("SOPInstanceUID", "") or "").strip()
        if not uid:
            skipped.append((name, "no StudyInstanceUID"))
            continue
        why = _not_a_frontal_chest_radiograph(ds)
        if why is not None:
            skipped.append((name, why))
            continue
        if sop and sop in instances and _same_file(instances[sop][0], path):
            skipped.append((name, f"the same image as {instances[sop][1]}"))
            continue
        if listed is not None:
            row = listed[path]
        elif (path.parent / REPORT_NAME).is_file():
            row = _Row(path.parent / REPORT_NAME, None)
        else:
            if texts is None:
                texts = {p.stem: p for p in sorted(root.rglob("*.txt")) if p.is_file()}
            accession = str(ds.get("AccessionNumber", "") or "").strip()
            report = texts.get(accession) if accession else None
            row = _Row(report or texts.get(uid), None)
        report = row.report
        if report is not None and report.is_symlink() and not follow_symlinks:
            skipped.append((name, f"its report is {linked}"))
            continue
        # One case per image: a study with several images gets one case per instance.
        identity = uid if uid not in seen else f"{uid}/{sop or name}"
        if identity in seen:
            # Another file of the same instance that is no copy of it (edited, cut short):
            # a case of its own, never one that replaces the other's.
            identity = f"{uid}/{name}"
        seen.update((uid, identity))
        if sop:
            instances.setdefault(sop, (path, name))
        studies.append(StudyInput(image=path, study_uid=identity, report=report,
                                  masks=_masks(path.parent),
                                  site=cohort_sites.get(name) or row.site or site, name=name))
    if not studies:
        why = f" ({len(skipped)} files could not be used)" if skipped else ""
        raise InputError(f"{root}: no studies found: no frontal chest DICOM images with a "
                         f"StudyInstanceUID{why}")
    return Discovery(studies, sorted(skipped, key=lambda item: item[0]))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        pass
    try:  # reached through a followed link: the path as found under the input
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return path.name


def _cohort_sites(root: Path) -> dict[str, str]:
    """A cohort's site code per image (from its ground truth), else nothing."""
    from .cohort.generate import GROUND_TRUTH, read_ground_truth

    if not (root / GROUND_TRUTH).is_file():
        return {}
    return {r["image"]: r["site"] for r in read_ground_truth(root)}
