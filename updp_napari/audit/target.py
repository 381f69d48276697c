"""What an audit looks at: a review workspace, or a share package exported from one.

Either way the auditor sees what leaves (or would leave) the hospital: the outgoing report
(the redacted text as the reviewer left it) and the outgoing image (the synthetic
counterpart). The audit's own database lives

* inside a workspace: ``WORKSPACE/audit/audit.sqlite`` (owner-only, like the workspace);
* beside a package: ``PACKAGE.audit/audit.sqlite`` — never inside the package, which is
  what the receiving hospital gets and what its hashes describe.

Suspects: :class:`~updp_napari.deid.report.ReportDeidentifier` run over the outgoing report
marks what still looks like PHI. In a workspace the positions of the stand-ins are known
(the review session renders them), so only PHI-looking text *outside* a stand-in is a
suspect: a name a reviewer chose to keep, or one the rules missed and the detector now
sees. A package carries no record of where its stand-ins are, and in surrogate mode a
stand-in is a realistic name, date or number, so there every PHI-looking span is listed,
stand-ins included: a list of places to look, not a count of leaks. Tag and mask
placeholders (``[NAME]``, ``****``) never count. The hint can miss what the detector
cannot see (that is what the auditor's eyes are for) and never decides a verdict.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError, UpdpError

WORKSPACE_DB = "workspace.sqlite"
MANIFEST = "manifest.json"
PACKAGE_KIND = "updp-share"
_CASE_ID = re.compile(r"[0-9a-f]{16}")
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]|\*+")


@dataclass(frozen=True)
class FrameCase:
    """One case a sample may be drawn from (ids, site, status, category and scores only)."""

    case_id: str
    site: str
    status: str
    category: str
    privacy_score: float | None = None
    utility_score: float | None = None


@dataclass(frozen=True)
class Suspect:
    """``report[start:end]`` of the outgoing report looks like PHI of ``category``."""

    start: int
    end: int
    category: str
    source: str


def audit_folder_for(path: Path, kind: str) -> Path:
    """Where the audit database of a workspace or package lives."""
    if kind == "workspace":
        return path / "audit"
    return path.parent / f"{path.name}.audit"


class AuditTarget:
    """A workspace or a share package, read-only: its cases and what each one shares."""

    def __init__(self, path: Path, kind: str, manifest: dict | None = None):
        self.path = path
        self.kind = kind
        self.manifest = manifest
        self.audit_folder = audit_folder_for(path, kind)
        self._session = None
        self._detector = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> AuditTarget:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such folder (give a review workspace or a share package)")
        if not path.is_dir():
            raise InputError(f"{path}: not a folder (give a review workspace or a share package)")
        path = path.resolve()
        if (path / WORKSPACE_DB).is_file():
            return cls(path, "workspace")
        if (path / MANIFEST).is_file():
            try:
                manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                raise InputError(f"{path / MANIFEST}: not a readable JSON manifest") from None
            if not isinstance(manifest, dict) or manifest.get("package") != PACKAGE_KIND \
                    or not isinstance(manifest.get("cases"), list):
                raise InputError(f"{path / MANIFEST}: not the manifest of an updp share package")
            for row in manifest["cases"]:
                if not isinstance(row, dict) or not _CASE_ID.fullmatch(str(row.get("case_id", ""))):
                    raise InputError(f"{path / MANIFEST}: a case row without a valid case id")
            return cls(path, "package", manifest)
        raise InputError(f"{path}: neither a review workspace (no {WORKSPACE_DB}) nor a share "
                         f"package (no {MANIFEST})")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> AuditTarget:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditTarget({str(self.path)!r}, {self.kind})"

    @property
    def session(self):
        """The review session of a workspace (read access to its cases)."""
        if self.kind != "workspace":
            raise UpdpError("a share package has no review session")
        if self._session is None:
            from ..review.session import ReviewSession

            self._session = ReviewSession.open(self.path, reviewer="audit")
        return self._session

    # -- cases -------------------------------------------------------------------------------

    def cases(self) -> list[FrameCase]:
        """Every case of the target, with its status (``exported`` for a package's cases)."""
        from .sample import case_category

        if self.kind == "package":
            return [FrameCase(str(row["case_id"]), str(row.get("site") or "unknown"), "exported",
                              str(row.get("category") or case_category(None)),
                              _number(row.get("privacy_score")),
                              _number(row.get("utility_score")))
                    for row in self.manifest["cases"]]
        out = []
        for record in self.session.store.cases():
            entry = record.artifacts.get("text_boxes")
            boxes, signature = None, None
            if entry is not None:
                signature = entry.get("signature")
                try:
                    boxes = json.loads(self.session.store.get_artifact(entry["path"]))
                except (UpdpError, ValueError):
                    boxes = None
            out.append(FrameCase(record.case_id, record.site or "unknown", record.status,
                                 case_category(boxes, signature), record.privacy_score,
                                 record.utility_score))
        return out

    def case_ids(self) -> set[str]:
        return {c.case_id for c in self.cases()}

    def _require(self, case_id: str) -> str:
        case_id = str(case_id)
        if not _CASE_ID.fullmatch(case_id):
            raise InputError("not a case id (case ids are 16 lowercase hex digits)")
        if case_id not in self.case_ids():
            raise InputError(f"{self.path}: no case {case_id} in this {self.kind}")
        return case_id

    # -- what a case shares ------------------------------------------------------------------

    def outgoing_report(self, case_id: str) -> tuple[str, list[tuple[int, int]] | None]:
        """The report as shared, and where its stand-ins stand (None: not known, a package).
        PHI may remain in it: never log it."""
        case_id = self._require(case_id)
        if self.kind == "package":
            path = self.path / "cases" / case_id / "report.txt"
            if not path.is_file():
                return "", None
            try:
                return path.read_text(encoding="utf-8"), None
            except UnicodeDecodeError:
                raise UpdpError(f"{path}: not UTF-8 text") from None
        pieces = self.session.case(case_id).redacted_pieces()
        ranges, pos = [], 0
        for piece in pieces:
            if piece.span is not None:
                ranges.append((pos, pos + len(piece.text)))
            pos += len(piece.text)
        return "".join(piece.text for piece in pieces), ranges

    def outgoing_image(self, case_id: str):
        """The image as shared (display 0…1, bright is dense), or None when there is none."""
        import numpy as np

        case_id = self._require(case_id)
        if self.kind == "package":
            path = self.path / "cases" / case_id / "image.dcm"
            if not path.is_file():
                return None
            from ..ingest import display_image

            return np.asarray(display_image(path), np.float32)
        image = self.session.case(case_id).synthetic
        return None if image is None else np.asarray(image, np.float32)

    def suspects(self, case_id: str, text: str | None = None,
                 stand_ins: list[tuple[int, int]] | None = None) -> list[Suspect]:
        """PHI-looking spans of the outgoing report that are not known stand-ins (see the
        module notes for what this can and cannot tell)."""
        if text is None:
            text, stand_ins = self.outgoing_report(case_id)
        if not text:
            return []
        if self._detector is None:
            from ..deid.report import ReportDeidentifier

            self._detector = ReportDeidentifier()
        stand_ins = stand_ins or []
        out = []
        for span in self._detector.detect(text):
            if any(span.start < end and start < span.end for start, end in stand_ins):
                continue
            if _PLACEHOLDER.fullmatch(text[span.start:span.end].strip()):
                continue
            out.append(Suspect(span.start, span.end, span.category, span.source))
        return out

    # -- for the report ---------------------------------------------------------------------

    def leak_scan(self) -> str | None:
        """The package's leak-scan summary; None for a workspace (scanned at export)."""
        if self.kind == "package":
            scan = self.manifest.get("leak_scan")
            ocr = self.manifest.get("ocr")
            if scan is None:
                return None
            return f"{scan} (OCR of the pixels: {'on' if ocr else 'off'})"
        return None

    def signatures(self, case_ids: list[str] | None = None) -> list[dict]:
        """How the shared images and scores were made: each distinct signature with how many
        of the cases (all, or ``case_ids``) carry it."""
        wanted = None if case_ids is None else set(case_ids)
        counts: dict[str, list] = {}

        def add(what: str, signature) -> None:
            text = json.dumps(signature, sort_keys=True, default=str)
            counts.setdefault(what + "\0" + text, [what, signature, 0])[2] += 1

        if self.kind == "package":
            for row in self.manifest["cases"]:
                if wanted is not None and row["case_id"] not in wanted:
                    continue
                add("synthetic image", row.get("synthesis") or {
                    k: row.get(k) for k in ("filter_model", "strength", "seed", "steps")})
        else:
            for record in self.session.store.cases():
                if wanted is not None and record.case_id not in wanted:
                    continue
                for name, what in (("synthetic", "synthetic image"), ("scores", "scores"),
                                   ("dicom", "header de-identification")):
                    entry = record.artifacts.get(name)
                    if entry is not None:
                        add(what, entry.get("signature"))
        return [{"what": what, "signature": signature, "cases": n}
                for what, signature, n in counts.values()]


def _number(value) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def frame_size(path: str | os.PathLike, frame: str | None = None) -> int:
    """The number of cases in the audit frame of the workspace or package at ``path`` (the
    cases a sample is drawn from: ``frame`` as in ``AuditSession.draw``)."""
    from .sample import frame_cases

    with AuditTarget.open(path) as target:
        _, cases = frame_cases(target.cases(), target.kind, frame)
    return len(cases)
