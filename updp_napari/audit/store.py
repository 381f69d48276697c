"""The audit's own database: the sample and the auditor's findings, durable and append-only.

One SQLite file per audited target (``WORKSPACE/audit/audit.sqlite`` or
``PACKAGE.audit/audit.sqlite``, see :mod:`.target`), in WAL mode with ``synchronous=FULL``:
every write is one committed transaction, on disk before the call returns. Nothing is ever
changed or deleted — the database refuses it — so a finding is withdrawn by recording a
withdrawal, and the history stays readable. An append-only log records every action.

A finding says *where*, never *what*: report character offsets or an image box, a PHI
category, the auditor, the time spent and a comment. The leaked text itself is never
stored (nor printed, nor put in the report).

Rules a verdict follows:

* ``clean`` — nothing found; refused while the case has live problem findings (withdraw
  them first);
* ``residual_phi`` — needs where: a report span or an image box; a case may have several;
* ``over_redaction`` — pathology text or image content lost; where is optional.

Recording a problem on a case marked clean withdraws the clean mark in the same transaction.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core.boxes import Box
from ..core.durable import DurableDatabase
from ..core.errors import InputError, UpdpError
from ..core.files import private_folder
from ..core.users import check_person
from ..core.vocabulary import ALL_PHI_CATEGORIES, AUDIT_CATEGORIES

DATABASE = "audit.sqlite"
#: ``PRAGMA application_id``: ASCII "UPDA".
APPLICATION_ID = 0x55504441
SCHEMA_VERSION = 1
VERDICTS = ("clean", "residual_phi", "over_redaction")
PROBLEMS = ("residual_phi", "over_redaction")
_CASE_ID = re.compile(r"[0-9a-f]{16}")


def not_in_sample(case_id) -> str:
    """The message for a case outside the sample: the id is echoed only when it has the
    shape of a case id (a mistyped argument may be a name or an accession number)."""
    if _CASE_ID.fullmatch(str(case_id)):
        return f"case {case_id} is not in the audit sample"
    return ("not a case of the audit sample (case ids are 16 lowercase hex digits; `updp audit "
            "TARGET --list` lists the sample)")
_WORD = re.compile(r"[A-Z][A-Z0-9_]{0,31}")

_APPEND_ONLY = ("samples", "sample_cases", "findings", "withdrawals", "audit_log")

_SCHEMA = f"""
CREATE TABLE samples (
    sample_id      INTEGER PRIMARY KEY,
    target_kind    TEXT NOT NULL CHECK (target_kind IN ('workspace', 'package')),
    target         TEXT NOT NULL,          -- the folder audited, as given
    frame          TEXT NOT NULL,          -- accepted | decided | all | package
    frame_size     INTEGER NOT NULL,
    frame_sha256   TEXT NOT NULL,          -- hash of the frame's sorted case ids
    size_requested INTEGER NOT NULL,
    strata         TEXT NOT NULL,          -- JSON list: site, category
    seed           INTEGER NOT NULL,
    allocation     TEXT NOT NULL,          -- JSON: [{{stratum, frame, sample}}]
    drawn_by       TEXT NOT NULL,
    drawn_at       TEXT NOT NULL
);
CREATE TABLE sample_cases (
    sample_id INTEGER NOT NULL REFERENCES samples (sample_id),
    position  INTEGER NOT NULL,             -- walking order, from 0
    case_id   TEXT NOT NULL,
    site      TEXT NOT NULL,
    category  TEXT NOT NULL,
    PRIMARY KEY (sample_id, position),
    UNIQUE (sample_id, case_id)
);
CREATE TABLE findings (
    finding_id   INTEGER PRIMARY KEY,
    sample_id    INTEGER NOT NULL REFERENCES samples (sample_id),
    case_id      TEXT NOT NULL,
    verdict      TEXT NOT NULL CHECK (verdict IN {VERDICTS}),
    phi_category TEXT,                     -- NAME, DATE, …; NULL for clean
    char_start   INTEGER CHECK (char_start IS NULL OR char_start >= 0),
    char_end     INTEGER CHECK (char_end IS NULL OR char_end > char_start),
    box          TEXT,                     -- JSON [x0, y0, x1, y1] in image pixels, or NULL
    auditor      TEXT NOT NULL,
    seconds      REAL CHECK (seconds IS NULL OR seconds >= 0),
    comment      TEXT NOT NULL DEFAULT '',
    at           TEXT NOT NULL,
    FOREIGN KEY (sample_id, case_id) REFERENCES sample_cases (sample_id, case_id)
);
CREATE INDEX findings_case ON findings (case_id, finding_id);
CREATE TABLE withdrawals (
    finding_id INTEGER PRIMARY KEY REFERENCES findings (finding_id),
    auditor    TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL
);
CREATE TABLE audit_log (
    entry_id INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    auditor  TEXT NOT NULL,
    action   TEXT NOT NULL,
    case_id  TEXT,
    detail   TEXT NOT NULL DEFAULT '{{}}'    -- JSON; ids, offsets and words, never report text
);
""" + "".join(f"""
CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t}
BEGIN SELECT RAISE(ABORT, 'the audit database is append-only'); END;
CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t}
BEGIN SELECT RAISE(ABORT, 'the audit database is append-only'); END;
""" for t in _APPEND_ONLY)


@dataclass(frozen=True)
class SampleRecord:
    sample_id: int
    target_kind: str
    target: str
    frame: str
    frame_size: int
    frame_sha256: str
    size_requested: int
    strata: tuple[str, ...]
    seed: int
    allocation: list
    drawn_by: str
    drawn_at: str
    cases: tuple  # SampleCase, in walking order

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases]


@dataclass(frozen=True)
class SampleCase:
    position: int
    case_id: str
    site: str
    category: str


@dataclass(frozen=True)
class Finding:
    finding_id: int
    case_id: str
    verdict: str
    phi_category: str | None
    span: tuple[int, int] | None
    box: tuple[int, int, int, int] | None
    auditor: str
    seconds: float | None
    comment: str
    at: str
    withdrawn: bool = False


@dataclass(frozen=True)
class LogEntry:
    entry_id: int
    at: str
    auditor: str
    action: str
    case_id: str | None
    detail: dict


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_auditor(auditor) -> str:
    return check_person(auditor, "auditor")


def check_span(span, report_length: int | None = None) -> tuple[int, int]:
    try:
        start, end = (int(v) for v in span)
    except (TypeError, ValueError):
        raise InputError("a span is two whole numbers START:END (character offsets)") from None
    if start < 0 or end <= start:
        raise InputError(f"a span needs 0 <= START < END, not {start}:{end}")
    if report_length is not None and end > report_length:
        raise InputError(f"the span {start}:{end} runs past the end of the report "
                         f"({report_length} characters)")
    return start, end


def check_box(box, shape: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError):
        raise InputError("a box is four numbers x0,y0,x1,y1 (image pixels)") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError("a box is four numbers x0,y0,x1,y1 (image pixels)")
    # Half-open, as every box of the package (core.boxes).
    return tuple(Box(*(int(round(v)) for v in values)).check(shape))


#: What an auditor's finding may be filed under: the PHI categories, and PATHOLOGY for
#: over-redaction (a finding's words or image content lost).
FINDING_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(
    ALL_PHI_CATEGORIES + AUDIT_CATEGORIES + ("PATHOLOGY",)))


def check_category(category) -> str | None:
    """The category in upper case, one of :data:`FINDING_CATEGORIES`; a typo is an error, not
    a row of its own in the statistics."""
    if category is None or str(category).strip() == "":
        return None
    word = str(category).strip().upper().replace("-", "_")
    if not _WORD.fullmatch(word) or word not in FINDING_CATEGORIES:
        shown = word if _WORD.fullmatch(word) and len(word) <= 20 else "that"
        raise InputError(f"{shown} is not a finding category; use one of "
                         f"{', '.join(FINDING_CATEGORIES)}")
    return word


class AuditStore(DurableDatabase):
    """The sample and findings of one audit. Open with :meth:`open`; close when done."""

    WHAT = "an audit"
    APPLICATION_ID = APPLICATION_ID
    SCHEMA_VERSION = SCHEMA_VERSION
    SCHEMA = _SCHEMA

    def __init__(self, folder: Path, connection: sqlite3.Connection, database: Path):
        super().__init__(connection, database)
        self.folder = folder

    @classmethod
    def open(cls, folder: str | os.PathLike, create: bool = False,
             busy_timeout: float = 30.0) -> AuditStore:
        folder = Path(folder)
        database = folder / DATABASE
        if create:
            if folder.exists() and not folder.is_dir():
                raise InputError(f"{folder}: not a folder, cannot hold an audit")
            private_folder(folder)
            cls._create_file(database)
        elif not database.is_file():
            raise InputError(f"{folder}: no audit here yet (draw a sample with updp audit "
                             "TARGET --sample N)")
        return cls._connect(database, create, busy_timeout, folder)

    def __repr__(self) -> str:
        return f"AuditStore({str(self.folder)!r})"

    # -- the sample ---------------------------------------------------------------------------

    def sample(self) -> SampleRecord | None:
        """The audit's sample (None before one is drawn)."""
        rows = self._read("SELECT sample_id, target_kind, target, frame, frame_size, "
                          "frame_sha256, size_requested, strata, seed, allocation, drawn_by, "
                          "drawn_at FROM samples ORDER BY sample_id LIMIT 1")
        if not rows:
            return None
        row = list(rows[0])
        cases = tuple(SampleCase(*r) for r in self._read(
            "SELECT position, case_id, site, category FROM sample_cases WHERE sample_id = ? "
            "ORDER BY position", (row[0],)))
        row[7] = tuple(json.loads(row[7]))
        row[9] = json.loads(row[9])
        return SampleRecord(*row, cases)

    def record_sample(self, draw, cases_by_id: dict, *, target_kind: str, target: str,
                      frame: str, auditor: str) -> SampleRecord:
        """Store a :class:`~updp_napari.audit.sample.Draw` (``cases_by_id``: the frame's
        cases, for each sampled case's site and category). One sample per audit."""
        auditor = check_auditor(auditor)
        now = _now()
        with self._write() as cur:
            if cur.execute("SELECT count(*) FROM samples").fetchone()[0]:
                raise UpdpError(f"{self.folder}: this audit already has its sample")
            cur.execute("INSERT INTO samples (target_kind, target, frame, frame_size, "
                        "frame_sha256, size_requested, strata, seed, allocation, drawn_by, "
                        "drawn_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (target_kind, target, frame, draw.frame_size, draw.frame_sha256,
                         draw.size_requested, json.dumps(list(draw.strata)), draw.seed,
                         json.dumps(draw.allocation), auditor, now))
            sample_id = cur.lastrowid
            for position, case_id in enumerate(draw.case_ids):
                case = cases_by_id[case_id]
                cur.execute("INSERT INTO sample_cases (sample_id, position, case_id, site, "
                            "category) VALUES (?, ?, ?, ?, ?)",
                            (sample_id, position, case_id, case.site, case.category))
            _log(cur, now, auditor, "draw_sample", None,
                 {"size": len(draw.case_ids), "requested": draw.size_requested,
                  "strata": list(draw.strata), "seed": draw.seed, "frame": frame,
                  "frame_size": draw.frame_size})
        return self.sample()

    def _sample_id_for(self, cur: sqlite3.Cursor, case_id: str) -> int:
        case_id = str(case_id)
        if not _CASE_ID.fullmatch(case_id):
            raise InputError("not a case id (case ids are 16 lowercase hex digits; `updp audit "
                             "TARGET --list` lists the sample)")
        row = cur.execute("SELECT sample_id FROM sample_cases WHERE case_id = ?",
                          (case_id,)).fetchone()
        if row is None:
            raise InputError(not_in_sample(case_id))
        return row[0]

    # -- findings -----------------------------------------------------------------------------

    def mark(self, case_id: str, verdict: str, auditor: str, *, phi_category: str | None = None,
             span=None, box=None, seconds: float | None = None, comment: str = "",
             report_length: int | None = None,
             image_shape: tuple[int, int] | None = None) -> Finding:
        """Record a finding on a sampled case; on disk when this returns."""
        verdict = str(verdict).replace("-", "_")
        if verdict not in VERDICTS:
            raise InputError("the verdict is clean, residual-phi or over-redaction")
        auditor = check_auditor(auditor)
        phi_category = check_category(phi_category)
        span = None if span is None else check_span(span, report_length)
        box = None if box is None else check_box(box, image_shape)
        if seconds is not None:
            try:
                seconds = float(seconds)
            except (TypeError, ValueError):
                raise InputError("seconds must be a number") from None
            if not math.isfinite(seconds) or seconds < 0:
                raise InputError("seconds must be 0 or more")
        if verdict == "clean" and (span or box or phi_category):
            raise InputError("a clean verdict takes no span, box or category")
        if verdict == "residual_phi" and span is None and box is None:
            raise InputError("residual PHI needs where: a report span (START:END) or an image "
                             "box (x0,y0,x1,y1)")
        if span is not None and box is not None:
            raise InputError("one finding is either a report span or an image box; record two")
        if verdict == "residual_phi" and phi_category is None:
            phi_category = "OTHER"
        comment = str(comment or "")
        now = _now()
        with self._write() as cur:
            sample_id = self._sample_id_for(cur, case_id)
            live = cur.execute(
                "SELECT finding_id, verdict FROM findings WHERE case_id = ? AND finding_id NOT "
                "IN (SELECT finding_id FROM withdrawals)", (case_id,)).fetchall()
            if verdict == "clean":
                problems = [f for f, v in live if v != "clean"]
                if problems:
                    raise UpdpError(f"case {case_id} has {len(problems)} live finding(s) of "
                                    "residual PHI or over-redaction; withdraw them before "
                                    "marking it clean")
            else:
                for finding_id, v in live:
                    if v == "clean":
                        cur.execute("INSERT INTO withdrawals (finding_id, auditor, reason, at) "
                                    "VALUES (?, ?, ?, ?)",
                                    (finding_id, auditor, f"superseded by {verdict}", now))
                        _log(cur, now, auditor, "withdraw", case_id,
                             {"finding_id": finding_id, "reason": "superseded"})
            cur.execute("INSERT INTO findings (sample_id, case_id, verdict, phi_category, "
                        "char_start, char_end, box, auditor, seconds, comment, at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (sample_id, case_id, verdict, phi_category,
                         None if span is None else span[0], None if span is None else span[1],
                         None if box is None else json.dumps(list(box)), auditor, seconds,
                         comment, now))
            finding_id = cur.lastrowid
            _log(cur, now, auditor, "mark", case_id,
                 {"finding_id": finding_id, "verdict": verdict, "phi_category": phi_category,
                  "span": None if span is None else list(span),
                  "box": None if box is None else list(box), "seconds": seconds})
        return Finding(finding_id, case_id, verdict, phi_category, span, box, auditor, seconds,
                       comment, now)

    def withdraw(self, finding_id: int, auditor: str, reason: str = "") -> None:
        """Withdraw a finding (a mistake): it stays in the history, out of the statistics."""
        auditor = check_auditor(auditor)
        now = _now()
        with self._write() as cur:
            row = cur.execute("SELECT case_id FROM findings WHERE finding_id = ?",
                              (int(finding_id),)).fetchone()
            if row is None:
                raise InputError(f"no finding {finding_id} in this audit")
            if cur.execute("SELECT 1 FROM withdrawals WHERE finding_id = ?",
                           (int(finding_id),)).fetchone():
                raise InputError(f"finding {finding_id} is already withdrawn")
            cur.execute("INSERT INTO withdrawals (finding_id, auditor, reason, at) "
                        "VALUES (?, ?, ?, ?)", (int(finding_id), auditor, str(reason or ""), now))
            _log(cur, now, auditor, "withdraw", row[0], {"finding_id": int(finding_id)})

    def findings(self, case_id: str | None = None, include_withdrawn: bool = False) -> list[Finding]:
        """Findings (of one case, or of all), oldest first; live ones unless asked."""
        sql = ("SELECT f.finding_id, f.case_id, f.verdict, f.phi_category, f.char_start, "
               "f.char_end, f.box, f.auditor, f.seconds, f.comment, f.at, "
               "w.finding_id IS NOT NULL FROM findings f LEFT JOIN withdrawals w "
               "ON w.finding_id = f.finding_id")
        where, params = [], []
        if case_id is not None:
            where.append("f.case_id = ?")
            params.append(str(case_id))
        if not include_withdrawn:
            where.append("w.finding_id IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for row in self._read(sql + " ORDER BY f.finding_id", params):
            span = None if row[4] is None else (row[4], row[5])
            box = None if row[6] is None else tuple(json.loads(row[6]))
            out.append(Finding(row[0], row[1], row[2], row[3], span, box, row[7], row[8],
                               row[9], row[10], bool(row[11])))
        return out

    def log(self) -> list[LogEntry]:
        rows = self._read("SELECT entry_id, at, auditor, action, case_id, detail FROM audit_log "
                          "ORDER BY entry_id")
        return [LogEntry(*row[:5], json.loads(row[5])) for row in rows]


def _log(cur: sqlite3.Cursor, at: str, auditor: str, action: str, case_id: str | None,
         detail: dict) -> None:
    cur.execute("INSERT INTO audit_log (at, auditor, action, case_id, detail) "
                "VALUES (?, ?, ?, ?, ?)", (at, auditor, action, case_id, json.dumps(detail)))
