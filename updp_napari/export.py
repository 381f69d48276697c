"""The share package: accepted cases only, with synthetic pixels, behind the leak gate.

``export_package(WORKSPACE, OUT)`` writes::

    OUT/README.txt                      what the receiving hospital gets, and how it was made
    OUT/manifest.json, manifest.csv     one row per case: case id, content hashes, scores,
                                        decision, reviewer, time, model signatures
    OUT/cases/<case id>/image.dcm       the de-identified header with the synthetic pixels
    OUT/cases/<case id>/report.txt      the redacted report, as the reviewer left it

The package is built in a temporary folder beside OUT, scanned for every identifier of
every original (header values, in the DICOM, the report and by OCR of the pixels), and only
then renamed to OUT; when anything leaks nothing is left behind and the export fails. The
workspace key, the originals and the reviewers' comments never leave.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .audit.sample import case_category
from .core.errors import InputError, UpdpError
from .core.files import fsync_folder, private_folder, write_bytes_atomic
from .review.artifacts import CaseArtifacts
from .review.store import ORIGINAL_IMAGE, WITHHELD

MANIFEST_FIELDS = ("case_id", "site", "category", "image", "decision", "reviewer", "decided_at",
                   "privacy_score", "utility_score", "image_sha256", "report_sha256",
                   "filter_model", "strength", "seed", "steps")


class LeakFound(UpdpError):
    """The leak scan found an original identifier in the package: nothing was exported."""

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


@dataclass
class ExportSummary:
    out: Path
    cases: list[str] = field(default_factory=list)
    pending: int = 0  # cases not accepted (left out)
    scan: str = ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


SYNTHETIC = "synthetic counterpart (UPDP generative filter); no original pixels"
#: What becomes of side markers and other burned-in marks, per kind of shared image (the
#: manifest's ``marks``; the review dock says the same).
MARKS_NOT_CARRIED = ("side markers (L/R) and other burned-in marks are not carried into the "
                     "counterpart: it is drawn anew in the original's orientation")
MARKS_KEPT = ("burned-in text removed; a lone letter such as a side marker (L/R) is not PHI "
              "and stays")
ORIGINAL_DERIVED = ("original pixels with the burned-in text removed: out of the generative "
                    "filter's domain, no synthetic counterpart; shared as a reviewer accepted")


def with_synthetic_pixels(dicom_bytes: bytes, synthetic: np.ndarray, key: bytes,
                          derivation: str = SYNTHETIC) -> bytes:
    """The de-identified DICOM with its pixels replaced by ``synthetic`` (display 0…1, bright
    is dense), stored the way the original stored its pixels (window, photometric, rescale,
    bit depth), as a derived image with its own keyed SOP Instance UID; ``derivation`` says
    what the pixels are (DerivationDescription)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    from .deid.header import remap_uid
    from .ingest import _window, quiet_pydicom

    quiet_pydicom()
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes))
    rows, cols = int(ds.Rows), int(ds.Columns)
    image = np.clip(np.asarray(synthetic, np.float64), 0.0, 1.0)
    if image.shape != (rows, cols):
        raise UpdpError(f"synthetic image is {image.shape[1]}x{image.shape[0]} but the DICOM "
                        f"is {cols}x{rows}")
    bits = int(ds.get("BitsStored", 16) or 16)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    top = float((1 << bits) - 1) * slope + intercept
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    limits = _window(ds)
    if limits is None or limits[1] <= limits[0]:
        limits = (intercept, top)
    if photometric == "MONOCHROME1":
        limits = (top + intercept - limits[1], top + intercept - limits[0])
    values = limits[0] + image * (limits[1] - limits[0])  # display space, as ingest reads it
    if photometric == "MONOCHROME1":
        values = top + intercept - values
    stored = np.clip(np.round((values - intercept) / slope), 0, (1 << bits) - 1)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = (np.int16 if signed else np.uint16) if int(ds.get("BitsAllocated", 16)) > 8 else np.uint8
    ds.PixelData = stored.astype(dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds["PixelData"].VR = "OW" if dtype != np.uint8 else "OB"
    ds.SamplesPerPixel = 1
    for keyword in ("NumberOfFrames", "PlanarConfiguration"):  # one grey frame now
        if keyword in ds:
            delattr(ds, keyword)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = derivation
    ds.BurnedInAnnotation = "NO"
    ds.SOPInstanceUID = remap_uid(key, f"{ds.SOPInstanceUID}/synthetic")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _readme(rows: list[dict], scan: str) -> str:
    originals = sum(1 for r in rows if r["image"] == ORIGINAL_IMAGE)
    withheld = sum(1 for r in rows if r["image"] == WITHHELD)
    held = "" if not withheld else f"""
{withheld} case(s) (image = "{WITHHELD}") carry their report alone: their synthetic image
kept a finding whose region re-identified patients beyond the filter's measured limit, or
the study was out of the filter's domain, so no image of it is in this package.
"""
    caution = "" if not originals else f"""
CAUTION: {originals} case(s) (image = "{ORIGINAL_IMAGE}" in the manifest) were out of the
generative filter's domain and have no synthetic counterpart: their image.dcm holds the
ORIGINAL pixels with only the burned-in text removed, and shows the patient's own anatomy.
A reviewer accepted sharing each of them as such.
"""
    return f"""UPDP Review share package
=========================

{len(rows)} chest X-ray case(s), each accepted by a reviewer, made by updp-napari {__version__}.

cases/<case id>/image.dcm   DICOM: header de-identified (PS3.15 Annex E basic profile and the
                            options listed in DeidentificationMethod), dates shifted by one
                            offset per patient, UIDs replaced by keyed ones; the pixels are a
                            synthetic counterpart made by a generative filter that keeps the
                            findings and replaces the patient's anatomy. No original pixels.
                            Side markers (L/R) and other burned-in marks are not carried:
                            the counterpart is drawn anew in the original's orientation.
cases/<case id>/report.txt  the report with identifiers replaced by consistent stand-ins
                            (names, places, IDs; dates moved by the patient's offset).
manifest.json / .csv        per case: content hashes (SHA-256), privacy and utility scores,
                            the decision, who made it and when, and how the image was made.

Case ids are keyed hashes: they link a patient's studies within this package and to
nothing outside it. Leak scan before export: {scan}
{caution}{held}"""


def open_audit_findings(store, cases) -> set[str]:
    """The ``cases`` (accepted records of ``store``) with a live residual-PHI finding of the
    workspace's audit recorded after their last decision: sent back, not shareable until a
    reviewer decides them again."""
    from .audit.store import AuditStore
    from .audit.target import audit_folder_for

    workspace = Path(store.workspace)
    current = audit_folder_for(workspace, "workspace") / "audit.sqlite"
    if current.exists() and not current.is_file():
        raise UpdpError(f"{current}: not a file; the audit's findings cannot be read, so no "
                        "case can be shown free of them (nothing was exported)")
    # The audit of now, and every earlier one moved aside inside the workspace to start a
    # new one: a finding stands until its case is decided again, wherever its audit sits.
    findings = []
    for database in sorted({current, *workspace.glob("*/audit.sqlite")}):
        if database.is_file():
            with AuditStore.open(database.parent) as audit:
                findings += [f for f in audit.findings() if f.verdict == "residual_phi"]
    if not findings:
        return set()
    wanted = {record.case_id for record in cases}
    blocked = set()
    for finding in findings:
        if finding.case_id not in wanted:
            continue
        decisions = store.decisions(finding.case_id)
        if not decisions or decisions[-1].decided_at <= finding.at:
            blocked.add(finding.case_id)
    return blocked


def _changed_since(store, standing: dict[str, int]) -> list[str]:
    """The cases of ``standing`` (case -> decision id) no longer accepted under that
    decision, or with a residual-PHI finding of the audit after it, sorted."""
    accepted = {r.case_id: r for r in store.cases(status="accepted")}
    changed = {case for case, decision in standing.items()
               if case not in accepted or store.decisions(case)[-1].decision_id != decision}
    changed |= open_audit_findings(store, [accepted[c] for c in standing if c in accepted])
    return sorted(changed)


def _scratch_folder(workspace: Path) -> Path:
    """``WORKSPACE/tmp``, refused when it is a symbolic link: the originals' copies would go
    wherever it points, and that folder would be made owner-only."""
    scratch = workspace / _SCRATCH
    if scratch.is_symlink():
        raise UpdpError(f"{scratch}: a symbolic link; the workspace's scratch folder must be "
                        "a folder of its own (remove the link)")
    return scratch


def _scratch(workspace: Path, staging: Path) -> Path:
    """A new owner-only folder ``WORKSPACE/tmp/export-PID-XXXX`` noting ``staging`` (the
    originals' copies go in its ``originals/``)."""
    private_folder(_scratch_folder(workspace))
    folder = Path(tempfile.mkdtemp(prefix=f"export-{os.getpid()}-", dir=workspace / _SCRATCH))
    (folder / _STAGING_NOTE).write_text(str(staging.resolve()), encoding="utf-8")
    return folder


def recover_interrupted_exports(workspace: str | os.PathLike) -> int:
    """Remove what exports of ``workspace`` killed mid-way left behind (the originals' copies
    in the workspace and the half-built package beside OUT); returns how many were cleared.
    Exports still running (their process alive) are left alone."""
    scratch = _scratch_folder(Path(workspace))
    if not scratch.is_dir():
        return 0
    cleared = 0
    for folder in sorted(scratch.glob("export-*")):
        try:
            pid = int(folder.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and _alive(pid):
            continue
        note = folder / _STAGING_NOTE
        try:
            staging = Path(note.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            staging = None
        # Only a staging folder as export makes them (".OUT.XXXXXXXX", holding nothing but
        # a package's parts): a note edited to name another folder removes nothing.
        if staging is not None and _STAGING_NAME.fullmatch(staging.name) and staging.is_dir() \
                and not staging.is_symlink() and \
                all(p.name in _PACKAGE_PARTS for p in staging.iterdir()):
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        cleared += 1
    return cleared


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


_SCRATCH = "tmp"
_STAGING_NOTE = "staging.txt"
# What tempfile.mkdtemp(prefix=".OUT.") names a staging folder, and what a package holds.
_STAGING_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{8}")
_PACKAGE_PARTS = frozenset({"cases", "manifest.json", "manifest.csv", "README.txt"})


def export_package(workspace: str | os.PathLike, out: str | os.PathLike, *, ocr: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> ExportSummary:
    """Write the share package of ``workspace``'s accepted cases to ``out`` (which must not
    exist). Raises LeakFound (nothing written) when the leak scan finds anything."""
    from .deid.leaks import scan_leaks
    from .review.session import ReviewSession

    out = Path(out)
    if out.exists():
        raise InputError(f"{out}: already exists; the package is written to a new folder")
    if Path(workspace).resolve() in out.resolve().parents:
        raise InputError(f"{out}: inside the workspace; the package is shared, the workspace "
                         "holds the originals: write it outside")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder to write the package in")
    with ReviewSession.open(workspace, reviewer="export") as session:
        store = session.store
        accepted = store.cases(status="accepted")
        summary = ExportSummary(out, pending=len(store.cases()) - len(accepted))
        if not accepted:
            raise UpdpError(f"{workspace}: no accepted cases to export (accept cases in "
                            "updp review, or with updp decide)")
        shares = {r.case_id: store.shared_image(r.case_id) for r in accepted}
        # Each case judged once: (out of domain, why its image may not leave).
        judged = {}
        for r in accepted:
            artifacts = CaseArtifacts(store, r.case_id)
            judged[r.case_id] = (artifacts.out_of_domain(), artifacts.image_risk())
        outside = [r.case_id for r in accepted if judged[r.case_id][0] is not None
                   and shares[r.case_id] not in (ORIGINAL_IMAGE, WITHHELD)]
        if outside:
            raise UpdpError(
                f"{len(outside)} accepted case(s) are out of the filter's domain and have no "
                f"synthetic counterpart: {', '.join(outside[:10])}; only their original image "
                "with the burned-in text removed, or their report alone, could be shared, and "
                "only if a reviewer accepts exactly that (updp decide WORKSPACE CASE accept "
                "--original-image or --report-only, or in the review dock); otherwise reject "
                "them. Nothing was exported")
        risky = [r.case_id for r in accepted if shares[r.case_id] != WITHHELD
                 and judged[r.case_id][1] is not None]
        if risky:
            raise UpdpError(
                f"{len(risky)} accepted case(s) have a synthetic image that is not shareable "
                f"(a kept finding re-identifies beyond the filter's measured limit): "
                f"{', '.join(risky[:10])}; their report alone can be shared if a reviewer "
                "accepts exactly that (updp decide WORKSPACE CASE accept --report-only, or in "
                "the review dock); otherwise reject them. Nothing was exported")
        blocked = open_audit_findings(store, accepted)
        if blocked:
            raise UpdpError(
                f"{len(blocked)} accepted case(s) have a residual-PHI finding of the audit "
                f"made after their last decision: {', '.join(sorted(blocked)[:10])}; review "
                "them again (updp review, or updp decide) and export after that")
        recover_interrupted_exports(store.workspace)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        # The originals' copies for the gate are PHI: in the workspace (owner-only), with a
        # note of the staging folder, so that an export killed mid-way is cleared next time.
        scratch = _scratch(store.workspace, staging)
        originals = scratch / "originals"
        rows = []
        standing: dict[str, int] = {}  # case -> the decision it leaves under
        held_back: list[Path] = []
        try:
            for n, record in enumerate(accepted):
                case = session.case(record.case_id)
                domain, risk = judged[record.case_id]
                original_image = domain is not None
                withheld = shares[record.case_id] == WITHHELD
                pixels = "cleaned" if original_image else "synthetic"
                missing = [name for name in ("dicom", "source", pixels)
                           if name not in record.artifacts]
                if missing:
                    raise UpdpError(f"case {record.case_id}: accepted but has no "
                                    f"{', '.join(missing)} (run updp run again)")
                dicom = with_synthetic_pixels(
                    store.get_artifact(record.artifacts["dicom"]["path"]),
                    case.cleaned if original_image else case.synthetic, session.key,
                    ORIGINAL_DERIVED if original_image else SYNTHETIC)
                report = case.redacted.encode("utf-8")
                folder = staging / "cases" / record.case_id
                private_folder(folder)
                # A withheld image is written for the leak scan too (the report is scanned
                # beside it) and taken out before the package is moved into place.
                write_bytes_atomic(folder / "image.dcm", dicom)
                write_bytes_atomic(folder / "report.txt", report)
                if withheld:
                    held_back.append(folder / "image.dcm")
                source = originals / "cases" / record.case_id
                private_folder(source)
                write_bytes_atomic(source / "image.dcm",
                                   store.get_artifact(record.artifacts["source"]["path"]), private=True)
                decision = store.decisions(record.case_id)[-1]
                standing[record.case_id] = decision.decision_id
                signature = {} if original_image else \
                    record.artifacts["synthetic"].get("signature") or {}
                rows.append({
                    "case_id": record.case_id, "site": record.site or "",
                    # whether the image carried burned-in text: an audit stratifies by it
                    "category": case_category(case.text_boxes if "text_boxes" in record.artifacts
                                              else None, case.signature("text_boxes")),
                    "image": WITHHELD if withheld else
                    ORIGINAL_IMAGE if original_image else "synthetic",
                    "marks": "" if withheld else MARKS_KEPT if original_image else
                    MARKS_NOT_CARRIED,
                    "image_risk": risk, "domain": domain,
                    "decision": decision.decision, "reviewer": decision.reviewer,
                    "decided_at": decision.decided_at,
                    "privacy_score": record.privacy_score, "utility_score": record.utility_score,
                    "image_sha256": "" if withheld else _sha256(dicom),
                    "report_sha256": _sha256(report),
                    "filter_model": signature.get("model_id", signature.get("model", "")),
                    "strength": signature.get("strength"), "seed": signature.get("seed"),
                    "steps": signature.get("steps"), "synthesis": signature,
                    "scores": case.scores["details"],
                })
                if progress:
                    progress(n + 1, len(accepted))
            report_scan = scan_leaks(originals, staging, ocr=ocr)
            if not report_scan.clean:
                lines = [f"  {leak.line()}" for leak in report_scan.leaks[:20]]
                lines += [f"  {Path(path).name}: {reason}" for path, reason in report_scan.skipped[:20]]
                what = ("found identifiers in the package" if report_scan.leaks else
                        "could not read every original whole, so the package is not proven clean")
                raise LeakFound(f"the leak scan {what}; nothing was exported:\n" + "\n".join(lines)
                                + f"\n{report_scan.summary()}", report_scan)
            summary.scan = report_scan.summary()
            for path in held_back:
                path.unlink()
            manifest = {"package": "updp-share", "version": __version__, "cases": rows,
                        "leak_scan": summary.scan, "ocr": ocr}
            write_bytes_atomic(staging / "manifest.json",
                               json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
            table = io.StringIO()
            writer = csv.DictWriter(table, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            write_bytes_atomic(staging / "manifest.csv", table.getvalue().encode("utf-8"))
            write_bytes_atomic(staging / "README.txt", _readme(rows, summary.scan).encode("utf-8"))
            os.chmod(staging, 0o755)
            # What leaves is what stands now: decisions and audit findings recorded while the
            # package was made are read under the store's write lock, and the package moved
            # into place before it is let go, so no decision lands in between.
            with store.held():
                changed = _changed_since(store, standing)
                if changed:
                    raise UpdpError(
                        f"{len(changed)} case(s) were decided again, or sent back by the audit, "
                        f"while the package was made: {', '.join(changed[:10])}; nothing was "
                        "exported (run updp export again)")
                os.replace(staging, out)
                fsync_folder(out.parent)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise
            # A full disk, a folder taken away: said as where, and that nothing of it stays.
            in_workspace = bool(exc.filename) and Path(scratch) in Path(exc.filename).parents
            where = store.workspace if in_workspace else out
            what = ("the originals' copies for the leak scan could not be written in the "
                    "workspace" if in_workspace else "the package could not be written")
            raise UpdpError(f"{where}: {what} ({exc.strerror or exc}); nothing was "
                            "exported") from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        summary.cases = [r["case_id"] for r in rows]
    return summary
