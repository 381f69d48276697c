"""Finding the studies of an input folder: each DICOM image with its report and masks.

An input is a cohort folder made by ``updp make-cohort``, or any folder of DICOM files.
A report is matched to its image, in this order:

1. a manifest CSV (``--manifest``) with columns ``image`` and ``report`` (paths relative to
   the manifest's folder; ``report`` may be empty);
2. ``report.txt`` in the image's own folder (the study folder);
3. a ``.txt`` file anywhere under the input named by the image's AccessionNumber or
   StudyInstanceUID (``NUH-51-154710.txt``, ``1.2.840….txt``).

Pathology masks are ``mask_<label>.png`` beside the image (the cohort's layout), optional.
Nothing here prints a header value or report text; messages name files only.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import InputError
from .ingest import DICOM_SUFFIXES, MASK_PREFIX, REPORT_NAME


@dataclass
class StudyInput:
    """One image to run, with what belongs to it."""

    image: Path
    study_uid: str  # the case identity (keyed into the case id; never shown)
    report: Path | None = None
    masks: dict[str, Path] = field(default_factory=dict)
    site: str | None = None  # a cohort's site code; None for an archive
    name: str = ""  # the image's path relative to the input, for messages and records


@dataclass
class Discovery:
    studies: list[StudyInput]
    skipped: list[tuple[str, str]]  # (relative path, reason): not DICOM, no study UID, …


def _header(path: Path):
    from .ingest import read_dataset

    try:
        return read_dataset(path, stop_before_pixels=True,
                            specific_tags=["StudyInstanceUID", "SOPInstanceUID", "AccessionNumber"])
    except InputError:
        return None


def _masks(folder: Path) -> dict[str, Path]:
    from .core.vocabulary import FINDINGS

    return {label: folder / f"{MASK_PREFIX}{label}.png" for label in FINDINGS
            if (folder / f"{MASK_PREFIX}{label}.png").is_file()}


def _manifest(path: Path) -> dict[Path, Path | None]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read manifest ({type(exc).__name__})") from None
    if not rows or "image" not in rows[0]:
        raise InputError(f"{path}: manifest needs a header row with columns image,report")
    base = path.parent
    out: dict[Path, Path | None] = {}
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
        out[image_path] = report_path
    return out


def find_studies(root: str | os.PathLike, manifest: str | os.PathLike | None = None,
                 follow_symlinks: bool = False) -> Discovery:
    """Every DICOM image under ``root`` (or listed in ``manifest``) with its report. A symbolic
    link (an image, a report or a folder) is not followed unless ``follow_symlinks``: it is
    listed among the files left out, with the reason."""
    from .core.files import tree_files

    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (give the folder that holds the studies)")
    cohort_sites = _cohort_sites(root)
    if manifest is not None:
        listed = _manifest(Path(manifest))
        candidates = sorted(listed)
    else:
        listed = None
        candidates = [p for p in tree_files(root, follow_symlinks)
                      if p.suffix.lower() in DICOM_SUFFIXES or (p.is_symlink() and p.is_dir())]
    texts = None  # reports by file stem, read once when first needed
    studies, skipped = [], []
    seen: set[str] = set()
    linked = "a symbolic link, not followed (--follow-symlinks)"
    for path in candidates:
        name = _relative(path, root)
        if path.is_symlink() and not follow_symlinks:
            skipped.append((name, linked))  # its target may lie anywhere
            continue
        ds = _header(path)
        if ds is None:
            skipped.append((name, "not a readable DICOM file"))
            continue
        uid = str(ds.get("StudyInstanceUID", "") or "").strip()
        sop = str(ds.get("SOPInstanceUID", "") or "").strip()
        if not uid:
            skipped.append((name, "no StudyInstanceUID"))
            continue
        # One case per image: a study with several images gets one case per instance.
        identity = uid if uid not in seen else f"{uid}/{sop or name}"
        seen.add(uid)
        if listed is not None:
            report = listed[path]
        elif (path.parent / REPORT_NAME).is_file():
            report = path.parent / REPORT_NAME
        else:
            if texts is None:
                texts = {p.stem: p for p in sorted(root.rglob("*.txt")) if p.is_file()}
            accession = str(ds.get("AccessionNumber", "") or "").strip()
            report = texts.get(accession) if accession else None
            report = report or texts.get(uid)
        if report is not None and report.is_symlink() and not follow_symlinks:
            skipped.append((name, f"its report is {linked}"))
            continue
        studies.append(StudyInput(image=path, study_uid=identity, report=report,
                                  masks=_masks(path.parent),
                                  site=cohort_sites.get(name), name=name))
    if not studies:
        why = f" ({len(skipped)} files could not be used)" if skipped else ""
        raise InputError(f"{root}: no studies found: no DICOM images with a StudyInstanceUID{why}")
    return Discovery(studies, skipped)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _cohort_sites(root: Path) -> dict[str, str]:
    """A cohort's site code per image (from its ground truth), else nothing."""
    from .cohort.generate import GROUND_TRUTH, read_ground_truth

    if not (root / GROUND_TRUTH).is_file():
        return {}
    return {r["image"]: r["site"] for r in read_ground_truth(root)}
