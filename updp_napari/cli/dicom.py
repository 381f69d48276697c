"""DICOM files: ``deid-dicom`` and ``scan-leaks``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import UpdpError
from ._common import add_json_out, add_quiet, command, open_key, progress, warn, write_json_out

#: deid-dicom names this many skipped files; the record lists them all.
SKIPPED_SHOWN = 20


def register(subparsers) -> None:
    _register_deid_dicom(subparsers)
    _register_scan_leaks(subparsers)


# -- deid-dicom ------------------------------------------------------------------------------

def _register_deid_dicom(subparsers) -> None:
    p = command(
        subparsers, "deid-dicom", _cmd_deid_dicom,
        "de-identify DICOM files: PS3.15 profile, keyed UIDs, burned-in text",
        "Apply the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile with "
        "options, at any sequence depth; remove private elements not on the allow-list; remap "
        "UIDs with a keyed hash (the same input UID gives the same output UID across files and "
        "runs of a workspace); shift dates by the patient's offset (the one deid-report uses); "
        "clean descriptors with the report de-identifier; find burned-in text by OCR and fill "
        "it. OUT mirrors IN's relative paths; files that are not DICOM or cannot be decoded "
        "are listed and skipped; a record in the workspace says what was done to each file "
        "(element paths and actions, never values).")
    p.add_argument("input", type=Path, help="a DICOM file, or a folder (searched recursively)")
    p.add_argument("output", type=Path, help="folder to write the de-identified files to")
    p.add_argument("--pixels", choices=["ocr", "off"], default="ocr",
                   help="ocr: find and fill burned-in text (needs tesseract); off: header only "
                        "(default ocr)")
    p.add_argument("--ocr-search", choices=["regions", "full"], default="regions",
                   help="regions (default): OCR reads only the blocks the image analysis "
                        "proposes as print (lines of glyphs, runs of strokes shaped like "
                        "letters), fills the glyph lines of a block where it finds PHI in "
                        "it, and reads the whole image when it proposes too much; full: OCR "
                        "reads every image whole, two to three times slower (on the measured "
                        "cohorts it covered fewer PHI lines)")
    p.add_argument("--options", metavar="LIST",
                   help="comma list of profile options: retain-modified-dates, "
                        "clean-descriptors, retain-patient-characteristics, "
                        "retain-device-identity, retain-uids, retain-safe-private, "
                        "clean-pixel-data; 'default' for the defaults (all but retain-uids), "
                        "'none' for the basic profile alone, no-NAME to drop one "
                        "(e.g. default,no-retain-device-identity)")
    p.add_argument("--workspace", metavar="DIR", help="workspace folder holding the secret key "
                   "(DIR/secret.key, created owner-only)")
    p.add_argument("--key-file", metavar="K", help="the secret key file itself")
    p.add_argument("--record", metavar="FILE", help="where to write the per-file record "
                   "(default: WORKSPACE/records/deid-dicom-TIME.jsonl, or beside the key file); "
                   "it names the original files, so it never goes into OUT")
    p.add_argument("--safe-private", metavar="FILE", help="more private elements to keep "
                   "(creator, group, element; tab-separated)")
    p.add_argument("--follow-symlinks", action="store_true", help="read files through "
                   "symbolic links and enter linked folders (by default links are refused and "
                   "listed: their targets may lie outside the input)")
    p.add_argument("--trust-burned-in-no", action="store_true", help="skip the pixel scan "
                   "where BurnedInAnnotation says NO (by default every image is scanned: the "
                   "flag is often wrong)")
    add_quiet(p)


def _workspace_key(args: argparse.Namespace) -> bytes:
    """The workspace's secret key: DIR/secret.key (made, owner-only), or --key-file K."""
    if bool(args.workspace) == bool(args.key_file):
        raise UpdpError("give one of --workspace DIR or --key-file K (the secret that keys the "
                        "UID remap, pseudonyms and date shift; keep it with the workspace)")
    return open_key(key_file=args.key_file, workspace=args.workspace or None)


def _safe_private(args: argparse.Namespace) -> frozenset:
    from ..deid.header import parse_safe_private

    if not args.safe_private:
        return frozenset()
    try:
        text = Path(args.safe_private).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UpdpError(f"{args.safe_private}: cannot read ({type(exc).__name__})") from None
    return parse_safe_private(text, args.safe_private)


def _record_path(args: argparse.Namespace) -> Path:
    """--record, or a new record in the workspace (or beside the key): it names the
    original files, so it stays with the key."""
    from datetime import datetime, timezone

    if args.record:
        return Path(args.record)
    home = Path(args.workspace) if args.workspace else Path(args.key_file).parent
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return home / "records" / f"deid-dicom-{stamp}.jsonl"


def _cmd_deid_dicom(args: argparse.Namespace) -> int:
    from ..deid.dicom import DicomDeidentifier, deidentify_tree
    from ..deid.header import parse_options

    key = _workspace_key(args)
    extra = _safe_private(args)
    deid = DicomDeidentifier(key, parse_options(args.options), pixels=args.pixels,
                             trust_burned_in_no=args.trust_burned_in_no, extra_safe_private=extra,
                             ocr_search=args.ocr_search)
    record_path = _record_path(args)
    records = deidentify_tree(args.input, args.output, deid,
                              progress=progress(args, "deid-dicom"), record_path=record_path,
                              follow_symlinks=args.follow_symlinks)
    done = [r for r in records if r.status == "ok"]
    skipped = [r for r in records if r.status != "ok"]
    _report_skipped(skipped)
    boxes = sum(len(r.pixels.get("boxes", [])) for r in done)
    print(f"de-identified {len(done)} file(s) into {args.output} ({boxes} burned-in text "
          f"box(es) filled); skipped {len(skipped)}; record: {record_path}")
    return 1 if skipped and not done else 0


def _report_skipped(skipped: list) -> None:
    """Files that are plainly not DICOM (reports, masks) are counted; the rest are named."""
    not_dicom = [r for r in skipped if r.reason.startswith("not ")]
    named = [r for r in skipped if r not in not_dicom]
    for r in named[:SKIPPED_SHOWN]:
        warn(f"skipped {r.file}: {r.reason}")
    if len(named) > SKIPPED_SHOWN:
        warn(f"… and {len(named) - SKIPPED_SHOWN} more skipped (see the record)")
    if not_dicom:
        warn(f"{len(not_dicom)} file(s) are not DICOM and were left out (listed in the record)")


# -- scan-leaks ------------------------------------------------------------------------------

def _register_scan_leaks(subparsers) -> None:
    p = command(
        subparsers, "scan-leaks", _cmd_scan_leaks,
        "prove de-identified DICOM holds none of its original's identifiers",
        "Pair every original DICOM file under ORIGINALS with the file of the same relative "
        "path under DEIDENTIFIED, and search the original's identifiers (names in any order or "
        "case, IDs, dates in common forms, UIDs, addresses, phone numbers, institutions, "
        "devices, private text, nested sequences) in every element of the counterpart, in the "
        "reports (*.txt, *.json) beside it, in its path and, by OCR, in its pixels. Prints "
        "`file  place  category` per leak, never the value. Exit status 0 when clean, 1 when "
        "anything leaks, a counterpart is missing or unreadable, or an original could not be "
        "read whole (what was not read is not proven clean), 2 on input errors.")
    p.add_argument("originals", type=Path, help="original DICOM file, or a folder of them")
    p.add_argument("deidentified", type=Path, help="the de-identified file, or the folder that "
                   "mirrors the originals' relative paths")
    p.add_argument("--record", metavar="FILE", help="the deid-dicom record, to find files "
                   "written under another path (identifiers taken out of folder names)")
    p.add_argument("--no-ocr", action="store_true", help="leave the pixels out: headers, "
                   "reports and paths only")
    add_json_out(p, "also write the findings to FILE as JSON", old_json=True)
    add_quiet(p)


def _cmd_scan_leaks(args: argparse.Namespace) -> int:
    from ..deid.leaks import scan_leaks

    report = scan_leaks(args.originals, args.deidentified, ocr=not args.no_ocr,
                        progress=progress(args, "scan-leaks"), record=args.record)
    # Places and categories only: the values themselves never reach the output.
    for leak in report.leaks:
        print(leak.line())
    for path, reason in report.skipped:
        warn(f"skipped {path}: {reason}")
    if args.json_out:
        write_json_out(args.json_out, report.as_json())
    print(report.summary())
    if not report.files:
        raise UpdpError(f"{args.originals}: no DICOM file could be read, nothing was scanned")
    return 0 if report.clean else 1
