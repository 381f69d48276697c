"""The review workspace: cases, spans, decisions and the action log in SQLite, plus artifacts.

A workspace is a folder::

    WORKSPACE/secret.key          the key that makes case ids, UIDs and surrogates (owner-only)
    WORKSPACE/workspace.sqlite    this store (WAL mode; -wal and -shm files beside it)
    WORKSPACE/artifacts/ab/<sha256>[.suffix]   content-addressed files (images, masks, reports)
    WORKSPACE/records/            what the batch commands did to each file

Every write is one committed transaction, flushed to disk (``synchronous=FULL``) before the
call returns, so a decision survives the process being killed or the power going off the
moment after. Every reviewer action is also appended to an action log that the database
itself refuses to change or delete.

The store keeps offsets, categories, scores and keyed ids, never report text or header
values; those stay in the artifacts. Case ids are keyed hashes of the study's identity, so
they are safe to print, log and export.

From a notebook::

    from updp_napari.review import ReviewStore
    store = ReviewStore.open("ws")
    case = store.first_undecided()
    store.decide(case.case_id, "accept", reviewer="ann", seconds=42.0)
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..core.durable import DurableDatabase
from ..core.errors import InputError, UpdpError
from ..core.files import private_folder, write_bytes_atomic
from ..core.keys import KEY_FILE as KEY_FILE  # the workspace layout, named here too
from ..core.keys import workspace_key
from ..core.users import check_person

DATABASE = "workspace.sqlite"
ARTIFACTS = "artifacts"
#: Marks a database as ours in its header (``PRAGMA application_id``): ASCII "UPDP".
APPLICATION_ID = 0x55504450
#: Bumped whenever the tables change; a database from a newer version is refused, not guessed at.
SCHEMA_VERSION = 1

STATUSES = ("pending", "accepted", "rejected", "flagged", "failed")
#: The decision words a reviewer gives, and the status each one leaves the case in.
DECISIONS = {"accept": "accepted", "reject": "rejected", "flag": "flagged"}
#: What an accept of an out-of-domain case shares, as the action log records it.
ORIGINAL_IMAGE = "original, burned-in text removed"
#: What an accept of a case whose image is not shareable shares instead: the report alone.
WITHHELD = "withheld, report only"


class DecisionOverride(UpdpError):
    """A decision over another reviewer's, asked for without ``override``."""
ACTIONS = ("redact", "keep")
ORIGINS = ("auto", "reviewer")
CASE_ID_HEX = 16
_CASE_ID = re.compile(rf"[0-9a-f]{{{CASE_ID_HEX}}}")
_ARTIFACT = re.compile(rf"{ARTIFACTS}/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})(\.[a-z0-9]{{1,8}})?")
_SUFFIX = re.compile(r"(\.[a-z0-9]{1,8})?")

_SCHEMA = f"""
CREATE TABLE cases (
    seq            INTEGER PRIMARY KEY,   -- the order cases were added: the review order
    case_id        TEXT NOT NULL UNIQUE,  -- keyed hash of the study identity
    study_ref      TEXT NOT NULL UNIQUE,  -- keyed StudyInstanceUID, as deid-dicom writes it
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN {STATUSES}),
    failure_reason TEXT,
    privacy_score  REAL,
    utility_score  REAL,
    site           TEXT,
    artifacts      TEXT NOT NULL DEFAULT '{{}}',  -- JSON: name -> {{path, signature}}
    added_at       TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX cases_status ON cases (status, seq);

-- What the model and rules said (proposed_action) beside what stands now (action).
CREATE TABLE spans (
    span_id         INTEGER PRIMARY KEY,
    case_id         TEXT NOT NULL REFERENCES cases (case_id),
    char_start      INTEGER NOT NULL CHECK (char_start >= 0),
    char_end        INTEGER NOT NULL CHECK (char_end > char_start),
    category        TEXT NOT NULL,
    source          TEXT NOT NULL,         -- the rule or model that found it, or 'reviewer'
    origin          TEXT NOT NULL CHECK (origin IN {ORIGINS}),
    proposed_action TEXT CHECK (proposed_action IN {ACTIONS}),  -- NULL when a reviewer added it
    action          TEXT NOT NULL CHECK (action IN {ACTIONS}),
    changed_by      TEXT                   -- the reviewer who last set action
);
CREATE INDEX spans_case ON spans (case_id, char_start, char_end);

CREATE TABLE decisions (
    decision_id INTEGER PRIMARY KEY,
    case_id     TEXT NOT NULL REFERENCES cases (case_id),
    decision    TEXT NOT NULL CHECK (decision IN {tuple(DECISIONS)}),
    reviewer    TEXT NOT NULL,
    seconds     REAL CHECK (seconds IS NULL OR seconds >= 0),  -- time spent; NULL: not measured
    comment     TEXT NOT NULL DEFAULT '',
    decided_at  TEXT NOT NULL
);
CREATE INDEX decisions_case ON decisions (case_id, decision_id);

CREATE TABLE audit_log (
    entry_id INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action   TEXT NOT NULL,
    case_id  TEXT,
    detail   TEXT NOT NULL DEFAULT '{{}}'    -- JSON; ids, offsets and words, never report text
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
"""


@dataclass(frozen=True)
class CaseRecord:
    """One study under review. ``artifacts`` maps a name to ``{"path", "signature"}``."""

    case_id: str
    study_ref: str
    status: str
    site: str | None
    privacy_score: float | None
    utility_score: float | None
    failure_reason: str | None
    artifacts: dict = field(default_factory=dict)
    added_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class SpanRecord:
    """``text[start:end]`` of the case's report: what was proposed and what stands now."""

    span_id: int
    case_id: str
    start: int
    end: int
    category: str
    source: str
    origin: str
    proposed_action: str | None
    action: str
    changed_by: str | None

    @property
    def changed(self) -> bool:
        """True when a reviewer overrode the model or rules (or added the span)."""
        return self.action != self.proposed_action


@dataclass(frozen=True)
class DecisionRecord:
    decision_id: int
    case_id: str
    decision: str
    reviewer: str
    seconds: float | None
    comment: str
    decided_at: str


@dataclass(frozen=True)
class ActionEntry:
    entry_id: int
    at: str
    reviewer: str
    action: str
    case_id: str | None
    detail: dict


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Reading:
    """One reader's blind decision on a case in second-reader mode, and what it led to:
    ``"waiting"`` for the second reader, ``"agreed"`` (the case took the readers' decision)
    or ``"disagreed"`` (the case is flagged for adjudication)."""

    case_id: str
    decision: str
    reviewer: str
    seconds: float | None
    outcome: str
    status: str  # the case's status after this reading


class ReviewStore(DurableDatabase):
    """The cases of one workspace and everything reviewers did to them.

    Open with :meth:`open`; use as a context manager or call :meth:`close`. One store may be
    used from several threads (calls are serialised); several processes may open the same
    workspace (SQLite locks; a writer waits up to ``busy_timeout`` seconds).
    """

    WHAT = "a review workspace"
    APPLICATION_ID = APPLICATION_ID
    SCHEMA_VERSION = SCHEMA_VERSION
    SCHEMA = _SCHEMA

    def __init__(self, workspace: Path, connection: sqlite3.Connection, database: Path):
        super().__init__(connection, database)
        self.workspace = workspace
        self._key: bytes | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, workspace: str | os.PathLike, create: bool = False,
             busy_timeout: float = 30.0) -> ReviewStore:
        """Open the store of ``workspace``; with ``create=True`` make the folder, key and
        database first where they are missing (all owner-only)."""
        workspace = Path(workspace)
        database = workspace / DATABASE
        if create:
            if workspace.exists() and not workspace.is_dir():
                raise InputError(f"{workspace}: not a folder, cannot hold a review workspace")
            if database.is_file() and not (workspace / KEY_FILE).exists():
                # A new key would give every study a new case id beside the decided ones, and
                # new UIDs and stand-ins to what was decided on: only a store without cases
                # may have its key made now.
                store = cls._connect(database, create, busy_timeout, workspace)
                if store._read("SELECT count(*) FROM cases")[0][0]:
                    store.close()
                    raise InputError(f"{workspace / KEY_FILE}: missing, and {DATABASE} holds "
                                     "cases made with it; put the key back (a new one cannot "
                                     "replace it)")
                workspace_key(workspace, create=True)
                return store
            workspace_key(workspace, create=True)
            cls._create_file(database)
        elif not workspace.exists():
            raise InputError(f"{workspace}: no such folder (not a review workspace)")
        elif not workspace.is_dir():
            raise InputError(f"{workspace}: not a folder (not a review workspace)")
        elif not database.is_file():
            raise InputError(f"{workspace}: not a review workspace (no {DATABASE} in it)")
        _owner_only(workspace)
        return cls._connect(database, create, busy_timeout, workspace)

    def __repr__(self) -> str:
        return f"ReviewStore({str(self.workspace)!r})"

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the store's write lock for the block: no other process records anything
        meanwhile, and this store's own reads see the database as it stands."""
        with self._write():
            yield

    # -- cases -----------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        """The workspace's secret key (read once). It never leaves the workspace."""
        if self._key is None:
            self._key = workspace_key(self.workspace)
        return self._key

    def case_id_for(self, study: str) -> str:
        """The case id of a study: a keyed hash of its identity (its StudyInstanceUID)."""
        from ..core.keys import keyed_digest

        study = _identity(study)
        return keyed_digest(self.key, "case-id", study).hex()[:CASE_ID_HEX]

    def add_case(self, study: str, site: str | None = None,
                 artifacts: dict | None = None) -> str:
        """Add the case of ``study`` (its StudyInstanceUID, or another identity unique in the
        archive) and return its case id. The identity itself is not stored.

        Adding the same study again changes nothing but ``site`` and the named ``artifacts``
        when given; status, scores, spans and decisions stay.
        """
        from ..deid.header import remap_uid

        case_id = self.case_id_for(study)
        study_ref = remap_uid(self.key, _identity(study))
        artifacts = _artifact_map(artifacts or {})
        now = _now()
        with self._write() as cur:
            row = cur.execute("SELECT study_ref, site, artifacts FROM cases WHERE case_id = ?",
                              (case_id,)).fetchone()
            if row is None:
                cur.execute("INSERT INTO cases (case_id, study_ref, site, artifacts, added_at, "
                            "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (case_id, study_ref, site, json.dumps(artifacts), now, now))
                return case_id
            if row[0] != study_ref:  # two studies on one truncated hash: never merge them
                raise UpdpError(f"case id {case_id} already belongs to another study")
            merged = {**json.loads(row[2]), **artifacts}
            site = row[1] if site is None else site
            if site != row[1] or merged != json.loads(row[2]):
                cur.execute("UPDATE cases SET site = ?, artifacts = ?, updated_at = ? "
                            "WHERE case_id = ?", (site, json.dumps(merged), now, case_id))
        return case_id

    def cases(self, status: str | None = None) -> list[CaseRecord]:
        """All cases (or those with ``status``) in the order they were added."""
        if status is None:
            rows = self._read(f"SELECT {_CASE_COLUMNS} FROM cases ORDER BY seq")
        else:
            rows = self._read(f"SELECT {_CASE_COLUMNS} FROM cases WHERE status = ? ORDER BY seq",
                              (_check_word(status, STATUSES, "status"),))
        return [_case(row) for row in rows]

    def case(self, case_id: str) -> CaseRecord:
        rows = self._read(f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?",
                          (_check_case_id(case_id),))
        if not rows:
            raise InputError(f"{self.workspace}: no case {case_id} in this workspace")
        return _case(rows[0])

    def first_undecided(self) -> CaseRecord | None:
        """The first pending case in review order (where a review session resumes), or None."""
        rows = self._read(f"SELECT {_CASE_COLUMNS} FROM cases WHERE status = 'pending' "
                          "ORDER BY seq LIMIT 1")
        return _case(rows[0]) if rows else None

    def _require_case(self, cur: sqlite3.Cursor, case_id: str) -> str:
        """The case's status; an error when there is no such case."""
        row = cur.execute("SELECT status FROM cases WHERE case_id = ?",
                          (_check_case_id(case_id),)).fetchone()
        if row is None:
            raise InputError(f"{self.workspace}: no case {case_id} in this workspace")
        return row[0]

    def set_scores(self, case_id: str, privacy: float | None = None,
                   utility: float | None = None) -> None:
        """Set the privacy and/or utility score of a case (None leaves one as it is)."""
        with self._write() as cur:
            self._require_case(cur, case_id)
            for column, value in (("privacy_score", privacy), ("utility_score", utility)):
                if value is not None:
                    cur.execute(f"UPDATE cases SET {column} = ?, updated_at = ? WHERE case_id = ?",
                                (_finite(value, column), _now(), case_id))

    def set_artifact(self, case_id: str, name: str, path: str,
                     signature: dict | str | None = None) -> None:
        """Attach an artifact (a path from :meth:`put_artifact`) to a case under ``name``,
        with the signature of how it was made."""
        entry = _artifact_map({name: {"path": path, "signature": signature}})
        self.artifact_path(path)  # must exist
        with self._write() as cur:
            self._require_case(cur, case_id)
            row = cur.execute("SELECT artifacts FROM cases WHERE case_id = ?",
                              (case_id,)).fetchone()
            cur.execute("UPDATE cases SET artifacts = ?, updated_at = ? WHERE case_id = ?",
                        (json.dumps({**json.loads(row[0]), **entry}), _now(), case_id))

    def mark_failed(self, case_id: str, reason: str) -> None:
        """The pipeline could not finish this case. ``reason`` is shown to reviewers: say
        what failed, never a value from the report or header."""
        reason = str(reason).strip()
        if not reason:
            raise InputError("mark_failed needs a reason")
        with self._write() as cur:
            self._require_case(cur, case_id)
            cur.execute("UPDATE cases SET status = 'failed', failure_reason = ?, updated_at = ? "
                        "WHERE case_id = ?", (reason, _now(), case_id))

    def clear_failure(self, case_id: str) -> None:
        """A failed case was run again and went through: it is pending review again."""
        with self._write() as cur:
            self._require_case(cur, case_id)
            cur.execute("UPDATE cases SET status = 'pending', failure_reason = NULL, updated_at = ? "
                        "WHERE case_id = ? AND status = 'failed'", (_now(), case_id))

    # -- reviewer actions ------------------------------------------------------------------

    def _check_decision(self, case_id: str, decision: str, original_image: bool,
                        report_only: bool) -> str:
        """The decision word, checked against what the case allows (see :meth:`decide`)."""
        decision = _check_word(decision, tuple(DECISIONS), "decision")
        if (original_image or report_only) and decision != "accept":
            raise InputError("sharing the original image, or the report only, is a kind of "
                             f"accept; it goes with accept, not {decision}")
        if original_image and report_only:
            raise InputError("the original image and the report only are two different accepts; "
                             "choose one")
        if decision == "accept" and self._exists(case_id):
            from .artifacts import CaseArtifacts

            artifacts = CaseArtifacts(self, _check_case_id(case_id))
            outside = artifacts.out_of_domain()
            risk = artifacts.image_risk()
            if risk is not None and not report_only:
                raise UpdpError(
                    f"case {case_id}'s synthetic image is not shareable ({risk['reason']}); "
                    "it can be accepted for its report only, the image withheld: accept it "
                    "with --report-only (in the review dock: tick \"share the report only\"), "
                    "or reject it")
            if risk is None and outside is None and report_only:
                raise InputError(f"case {case_id}'s image is shareable; --report-only is only "
                                 "for cases whose image is not")
            if outside is not None and not (original_image or report_only):
                why = outside.get("reason") or "no reason recorded"
                raise UpdpError(
                    f"case {case_id} is out of the filter's domain ({why}) and has no "
                    "synthetic counterpart; it can be accepted only as its original image "
                    "with the burned-in text removed, which shows the patient's own anatomy: "
                    "accept it with --original-image (in the review dock: tick \"share the "
                    "original image\"), accept its report alone with --report-only, or reject it")
            if outside is None and original_image:
                raise InputError(f"case {case_id} is in the filter's domain and has a synthetic "
                                 "counterpart; --original-image is only for cases out of domain")
        return decision

    def decide(self, case_id: str, decision: str, reviewer: str, seconds: float | None = None,
               comment: str = "", override: bool = False,
               original_image: bool = False, report_only: bool = False) -> DecisionRecord:
        """Record a reviewer's ``accept``, ``reject`` or ``flag``; it is on disk on return.

        ``seconds`` is the time spent on the case (None when not measured). A later decision
        replaces the case's status; every decision stays in :meth:`decisions`. Deciding over
        another reviewer's accept or reject needs ``override`` (else
        :class:`DecisionOverride`), and the action log records it as one; a flag asks for
        another look, which anyone gives.

        A case out of the filter's domain has no synthetic counterpart; accepting it needs
        ``original_image``: the reviewer accepts sharing its original image with the
        burned-in text removed (not de-identified pixels), recorded with the decision
        (:meth:`accepted_original_image`). Refused on any other case or decision.

        A case whose synthetic image is not shareable (its kept findings re-identify beyond
        the filter's measured limit, ``CaseArtifacts.image_risk``) is accepted only with
        ``report_only``: its report leaves, its image does not (:meth:`shared_image`).
        """
        decision = self._check_decision(case_id, decision, original_image, report_only)
        reviewer = _check_reviewer(reviewer)
        seconds = _check_seconds(seconds)
        comment = str(comment or "")
        now = _now()
        with self._write() as cur:
            status = self._require_case(cur, case_id)
            if status == "failed" and decision == "accept":
                raise UpdpError(f"case {case_id} failed in the pipeline and has nothing to "
                                "accept; re-run it, or reject or flag it")
            if decision == "accept" and cur.execute(
                    "SELECT failure_reason FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]:
                # Flagged after it failed, a case is no longer "failed" but has nothing in it
                # still: its failure is cleared only when a run goes through.
                raise UpdpError(f"case {case_id} failed in the pipeline and has nothing to "
                                "accept; take its decision back (updp decide WORKSPACE CASE "
                                "pending) and run it again, or reject it")
            # A pending case (never decided, or a decision taken back) has none standing.
            last = _standing(cur, case_id) if status in DECISIONS.values() else None
            overridden = _overridden(last, reviewer)
            if overridden is not None and not override:
                raise DecisionOverride(
                    f"case {case_id} was decided ({last[0]}) by {overridden}; deciding over "
                    "another reviewer's decision needs --override (and is recorded as one)")
            details = {}
            if original_image:
                details["image"] = ORIGINAL_IMAGE
            elif report_only:
                details["image"] = WITHHELD
            if overridden is not None:
                details["overrides"] = {"decision": last[0], "reviewer": overridden}
            decision_id = _record_decision(cur, now, case_id, decision, reviewer, seconds,
                                           comment, status, details)
        return DecisionRecord(decision_id, case_id, decision, reviewer, seconds, comment, now)

    def undo(self, case_id: str, reviewer: str, override: bool = False) -> dict:
        """Take back the case's standing decision: the case is pending again, the decision
        stays in :meth:`decisions` and the action log records the undo (``updp decide CASE
        pending``). Another reviewer's accept or reject is undone only with ``override``."""
        reviewer = _check_reviewer(reviewer)
        now = _now()
        with self._write() as cur:
            status = self._require_case(cur, case_id)
            last = _standing(cur, case_id)
            if status not in DECISIONS.values() or last is None:
                raise UpdpError(f"case {case_id} is {status}: there is no decision to undo")
            if _overridden(last, reviewer) is not None and not override:
                raise DecisionOverride(
                    f"case {case_id} was decided ({last[0]}) by {last[1]}; undoing another "
                    "reviewer's decision needs --override (and is recorded as one)")
            cur.execute("UPDATE cases SET status = 'pending', updated_at = ? WHERE case_id = ?",
                        (now, case_id))
            details = {"decision_id": last[2], "decision": last[0], "previous_status": status}
            if last[1] != reviewer:
                details["overrides"] = {"decision": last[0], "reviewer": last[1]}
            _audit(cur, now, reviewer, "undo", case_id, details)
        return details

    # -- second reader ---------------------------------------------------------------------

    @property
    def second_reader(self) -> bool:
        """Whether the workspace is in second-reader mode: each case is decided blind by two
        reviewers (:meth:`read_blind`); agreement decides it, a disagreement flags it for
        adjudication."""
        rows = self._read("SELECT detail FROM audit_log WHERE action = 'second_reader' "
                          "ORDER BY entry_id DESC LIMIT 1")
        return bool(rows) and bool(json.loads(rows[0][0]).get("on"))

    def set_second_reader(self, on: bool, reviewer: str) -> bool:
        """Turn second-reader mode on or off (recorded in the action log); True if it changed."""
        reviewer = _check_reviewer(reviewer)
        if self.second_reader == bool(on):
            return False
        with self._write() as cur:
            _audit(cur, _now(), reviewer, "second_reader", None, {"on": bool(on)})
        return True

    def read_blind(self, case_id: str, decision: str, reviewer: str,
                   seconds: float | None = None, comment: str = "",
                   original_image: bool = False, report_only: bool = False) -> Reading:
        """Record one reader's blind ``accept``, ``reject`` or ``flag`` of a pending case.

        The first reading leaves the case pending. The second, by another reviewer, decides
        it: the same decision (and, for an accept, the same image shared) is recorded as the
        case's decision, naming both readers; different ones flag it for adjudication, which
        any reviewer then gives with :meth:`decide`. A reviewer reads a case once per round
        (an undo starts a new round). The same checks as :meth:`decide` apply."""
        decision = self._check_decision(case_id, decision, original_image, report_only)
        reviewer = _check_reviewer(reviewer)
        seconds = _check_seconds(seconds)
        image = ORIGINAL_IMAGE if original_image else WITHHELD if report_only else None
        now = _now()
        with self._write() as cur:
            status = self._require_case(cur, case_id)
            if status != "pending":
                raise UpdpError(f"case {case_id} is {status}: its blind reading is over (a "
                                "flagged case is adjudicated with a plain decision; take a "
                                "decision back with pending)")
            readings = _round_readings(cur.execute(_CASE_LOG, (case_id,)).fetchall())
            if any(r["reviewer"] == reviewer for r in readings):
                raise UpdpError(f"case {case_id}: {reviewer} has read it already; the second "
                                "reading must be another reviewer's")
            detail = {"decision": decision, "seconds": seconds}
            if image:
                detail["image"] = image
            _audit(cur, now, reviewer, "read", case_id, detail)
            if not readings:
                return Reading(case_id, decision, reviewer, seconds, "waiting", status)
            first = readings[0]
            agreed = first["decision"] == decision and first.get("image") == image
            final = decision if agreed else "flag"
            note = (f"read blind by {first['reviewer']} and {reviewer}: "
                    + ("agreed" if agreed else f"{first['decision']} against {decision}, "
                                                 "to adjudicate"))
            details = {"readers": [first["reviewer"], reviewer], "agreed": agreed}
            if agreed and image:
                details["image"] = image
            _record_decision(cur, now, case_id, final, reviewer, seconds,
                             note + (f"; {comment}" if comment else ""), status, details)
        return Reading(case_id, decision, reviewer, seconds,
                       "agreed" if agreed else "disagreed", DECISIONS[final])

    def reader_pairs(self) -> list[tuple[str, str]]:
        """``(first reader's decision, second reader's decision)`` of every completed blind
        round, in the order they completed (for the agreement, ``review.readers``)."""
        out = []
        rounds: dict[str, list[dict]] = {}
        for entry in self.action_log():
            if entry.action == "read":
                rounds.setdefault(entry.case_id, []).append(entry.detail)
            elif entry.action in ("undo", "decide"):
                reads = rounds.pop(entry.case_id, [])
                if entry.detail.get("readers") and len(reads) >= 2:
                    out.append((reads[0]["decision"], reads[1]["decision"]))
        return out

    def round_readings(self, case_id: str) -> list[dict]:
        """The blind readings of the case's current round (since its last decision or undo),
        oldest first: ``{"reviewer", "decision", "seconds", "image"?}``."""
        return _round_readings(self._read(_CASE_LOG, (_check_case_id(case_id),)))

    def shared_image(self, case_id: str) -> str | None:
        """What the case's standing decision, an accept, shares as its image: ``"synthetic"``,
        :data:`ORIGINAL_IMAGE` or :data:`WITHHELD`; None when the case is not accepted."""
        decisions = self.decisions(case_id)
        if self.case(case_id).status != "accepted" or not decisions \
                or decisions[-1].decision != "accept":
            return None
        last = decisions[-1].decision_id
        for entry in self.action_log(case_id):
            if entry.action == "decide" and entry.detail.get("decision_id") == last:
                return entry.detail.get("image", "synthetic")
        return "synthetic"

    def accepted_original_image(self, case_id: str) -> bool:
        """The case's last decision is an accept of its original image with the burned-in
        text removed (``decide(..., original_image=True)``)."""
        return self.shared_image(case_id) == ORIGINAL_IMAGE

    def _exists(self, case_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM cases WHERE case_id = ?", (_check_case_id(case_id),)))

    def decisions(self, case_id: str | None = None) -> list[DecisionRecord]:
        """Every decision (of one case, or of all), oldest first."""
        sql = ("SELECT decision_id, case_id, decision, reviewer, seconds, comment, decided_at "
               "FROM decisions")
        if case_id is None:
            rows = self._read(sql + " ORDER BY decision_id")
        else:
            rows = self._read(sql + " WHERE case_id = ? ORDER BY decision_id",
                              (_check_case_id(case_id),))
        return [DecisionRecord(*row) for row in rows]

    def record_mask_edit(self, case_id: str, reviewer: str, mask_artifact: str) -> None:
        """A reviewer changed the preserved-region mask; ``mask_artifact`` (from
        :meth:`put_array` or :meth:`put_artifact`) becomes the case's ``reviewer_mask`` beside
        the pipeline's own mask, which stays."""
        reviewer = _check_reviewer(reviewer)
        self.artifact_path(mask_artifact)
        now = _now()
        with self._write() as cur:
            self._require_case(cur, case_id)
            row = cur.execute("SELECT artifacts FROM cases WHERE case_id = ?",
                              (case_id,)).fetchone()
            artifacts = json.loads(row[0])
            previous = artifacts.get("reviewer_mask", {}).get("path")
            artifacts["reviewer_mask"] = {"path": mask_artifact, "signature": {"reviewer": reviewer}}
            cur.execute("UPDATE cases SET artifacts = ?, updated_at = ? WHERE case_id = ?",
                        (json.dumps(artifacts), now, case_id))
            _audit(cur, now, reviewer, "edit_mask", case_id,
                   {"mask": mask_artifact, "previous": previous})

    def record_regeneration(self, case_id: str, reviewer: str, synthetic_artifact: str,
                            signature: dict) -> None:
        """A reviewer regenerated the synthetic image: ``synthetic_artifact`` (from
        :meth:`put_array`) becomes the case's ``synthetic``, and the action log keeps the
        settings and the image it replaced, in one transaction."""
        reviewer = _check_reviewer(reviewer)
        self.artifact_path(synthetic_artifact)
        now = _now()
        entry = _artifact_map({"synthetic": {"path": synthetic_artifact, "signature": signature}})
        with self._write() as cur:
            self._require_case(cur, case_id)
            row = cur.execute("SELECT artifacts FROM cases WHERE case_id = ?",
                              (case_id,)).fetchone()
            artifacts = json.loads(row[0])
            previous = artifacts.get("synthetic", {}).get("path")
            cur.execute("UPDATE cases SET artifacts = ?, updated_at = ? WHERE case_id = ?",
                        (json.dumps({**artifacts, **entry}), now, case_id))
            settings = {k: signature.get(k) for k in ("strength", "seed", "steps", "dilation")
                        if isinstance(signature, dict) and k in signature}
            _audit(cur, now, reviewer, "regenerate", case_id,
                   {"synthetic": synthetic_artifact, "previous": previous, **settings})

    # -- spans -----------------------------------------------------------------------------

    def set_spans(self, case_id: str, spans: Iterable) -> list[SpanRecord]:
        """Replace what the model and rules found in a case's report.

        ``spans`` are :class:`updp_napari.core.spans.Span` objects (or anything with
        ``start``, ``end``, ``category``, ``source`` and optionally ``action``, default
        ``redact``; or dicts with those keys). Spans a reviewer added stay; where a reviewer
        overrode a span that comes back unchanged (same offsets and category), the override
        is kept.
        """
        rows = [_proposed(span) for span in spans]
        with self._write() as cur:
            self._require_case(cur, case_id)
            overrides = {(s, e, c): (a, who) for s, e, c, a, who in cur.execute(
                "SELECT char_start, char_end, category, action, changed_by FROM spans "
                "WHERE case_id = ? AND origin = 'auto' AND action != proposed_action",
                (case_id,))}
            cur.execute("DELETE FROM spans WHERE case_id = ? AND origin = 'auto'", (case_id,))
            for start, end, category, source, proposed in rows:
                action, who = overrides.get((start, end, category), (proposed, None))
                cur.execute("INSERT INTO spans (case_id, char_start, char_end, category, source, "
                            "origin, proposed_action, action, changed_by) "
                            "VALUES (?, ?, ?, ?, ?, 'auto', ?, ?, ?)",
                            (case_id, start, end, category, source, proposed, action, who))
        return self.spans(case_id)

    def spans(self, case_id: str) -> list[SpanRecord]:
        """The case's spans in reading order."""
        self.case(case_id)
        rows = self._read(f"SELECT {_SPAN_COLUMNS} FROM spans WHERE case_id = ? "
                          "ORDER BY char_start, char_end, span_id", (case_id,))
        return [SpanRecord(*row) for row in rows]

    def toggle_span(self, case_id: str, span_id: int, reviewer: str) -> SpanRecord:
        """Flip a span between ``redact`` and ``keep``; returns it as it now stands."""
        reviewer = _check_reviewer(reviewer)
        now = _now()
        with self._write() as cur:
            self._require_case(cur, case_id)
            row = cur.execute("SELECT action FROM spans WHERE span_id = ? AND case_id = ?",
                              (int(span_id), case_id)).fetchone()
            if row is None:
                raise InputError(f"case {case_id} has no span {span_id}")
            action = "keep" if row[0] == "redact" else "redact"
            cur.execute("UPDATE spans SET action = ?, changed_by = ? WHERE span_id = ?",
                        (action, reviewer, int(span_id)))
            _audit(cur, now, reviewer, "toggle_span", case_id,
                   {"span_id": int(span_id), "from": row[0], "to": action})
            found = cur.execute(f"SELECT {_SPAN_COLUMNS} FROM spans WHERE span_id = ?",
                                (int(span_id),)).fetchone()
        return SpanRecord(*found)

    def add_span(self, case_id: str, start: int, end: int, category: str, reviewer: str,
                 action: str = "redact") -> SpanRecord:
        """A span the model and rules missed (or a term to keep), marked by a reviewer."""
        reviewer = _check_reviewer(reviewer)
        start, end, category, _, action = _proposed(
            {"start": start, "end": end, "category": category, "source": "reviewer",
             "action": action})
        now = _now()
        with self._write() as cur:
            self._require_case(cur, case_id)
            cur.execute("INSERT INTO spans (case_id, char_start, char_end, category, source, "
                        "origin, proposed_action, action, changed_by) "
                        "VALUES (?, ?, ?, ?, 'reviewer', 'reviewer', NULL, ?, ?)",
                        (case_id, start, end, category, action, reviewer))
            span_id = cur.lastrowid
            _audit(cur, now, reviewer, "add_span", case_id,
                   {"span_id": span_id, "start": start, "end": end, "category": category,
                    "action": action})
            found = cur.execute(f"SELECT {_SPAN_COLUMNS} FROM spans WHERE span_id = ?",
                                (span_id,)).fetchone()
        return SpanRecord(*found)

    # -- action log ------------------------------------------------------------------------
    # (The table keeps its first name, audit_log, so that existing workspaces open; the
    # privacy audit is another thing, in updp_napari.audit.)

    def action_log(self, case_id: str | None = None) -> list[ActionEntry]:
        """Every reviewer action (of one case, or of all), oldest first."""
        sql = "SELECT entry_id, at, reviewer, action, case_id, detail FROM audit_log"
        if case_id is None:
            rows = self._read(sql + " ORDER BY entry_id")
        else:
            rows = self._read(sql + " WHERE case_id = ? ORDER BY entry_id",
                              (_check_case_id(case_id),))
        return [ActionEntry(*row[:5], json.loads(row[5])) for row in rows]

    # -- artifacts -------------------------------------------------------------------------

    def put_artifact(self, data: bytes, suffix: str = "") -> str:
        """Store ``data`` under its sha256 and return its path relative to the workspace
        (``artifacts/ab/ab…[suffix]``). Storing the same bytes twice writes them once."""
        data = bytes(data)
        if not _SUFFIX.fullmatch(suffix):
            raise InputError(f"artifact suffix must look like '.png' (lowercase, up to 8 "
                             f"letters or digits), not {suffix!r}")
        digest = hashlib.sha256(data).hexdigest()
        relpath = f"{ARTIFACTS}/{digest[:2]}/{digest}{suffix}"
        path = self.workspace / relpath
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            return relpath
        private_folder(self.workspace / ARTIFACTS)
        private_folder(path.parent)
        write_bytes_atomic(path, data, private=True)
        return relpath

    def artifact_path(self, relpath: str) -> Path:
        """The file of an artifact path; an error when it is not one of ours or is missing."""
        match = _ARTIFACT.fullmatch(str(relpath))
        if match is None:
            raise InputError(f"{relpath!r} is not an artifact path (artifacts/ab/<sha256>)")
        path = self.workspace / relpath
        if not path.is_file():
            raise InputError(f"{path}: artifact missing from the workspace")
        return path

    def get_artifact(self, relpath: str) -> bytes:
        """The bytes of an artifact, checked against the hash in its name."""
        path = self.artifact_path(relpath)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != _ARTIFACT.fullmatch(relpath).group(2):
            raise UpdpError(f"{path}: artifact damaged (its content no longer matches its hash)")
        return data

    def put_array(self, array) -> str:
        """Store a numpy array (``.npy``, no pickles) and return its artifact path."""
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self.put_artifact(buffer.getvalue(), ".npy")

    def get_array(self, relpath: str):
        import numpy as np

        return np.load(io.BytesIO(self.get_artifact(relpath)), allow_pickle=False)


_CASE_COLUMNS = ("case_id, study_ref, status, site, privacy_score, utility_score, "
                 "failure_reason, artifacts, added_at, updated_at")
_SPAN_COLUMNS = ("span_id, case_id, char_start, char_end, category, source, origin, "
                 "proposed_action, action, changed_by")


def _owner_only(workspace: Path) -> None:
    """Make the workspace's own folder and files owner-only again where their modes were
    loosened (``chmod 777``, a copy under another umask): they hold the key and the
    originals. What lies in its owner-only folders is out of others' reach."""
    for path in (workspace, workspace / KEY_FILE, workspace / DATABASE,
                 workspace / f"{DATABASE}-wal", workspace / f"{DATABASE}-shm",
                 workspace / ARTIFACTS, workspace / "tmp", workspace / "audit"):
        try:
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                os.chmod(path, 0o700 if stat.S_ISDIR(mode) else 0o600)
        except OSError:  # absent, or not ours to change
            continue


def _case(row: tuple) -> CaseRecord:
    values = list(row)
    values[7] = json.loads(values[7])
    return CaseRecord(*values)


def _standing(cur: sqlite3.Cursor, case_id: str) -> tuple[str, str, int] | None:
    """``(decision, reviewer, decision_id)`` of the case's last decision not undone."""
    undone = {json.loads(row[0]).get("decision_id") for row in cur.execute(
        "SELECT detail FROM audit_log WHERE case_id = ? AND action = 'undo'", (case_id,))}
    for row in cur.execute("SELECT decision, reviewer, decision_id FROM decisions "
                           "WHERE case_id = ? ORDER BY decision_id DESC", (case_id,)):
        if row[2] not in undone:
            return row
    return None


def _overridden(last: tuple[str, str, int] | None, reviewer: str) -> str | None:
    """Whose decision ``reviewer`` would act over (None: none of another's stands). A flag
    asks for another look: anyone resolves it. An accept or a reject stands."""
    return last[1] if last is not None and last[1] != reviewer and last[0] != "flag" else None


_CASE_LOG = "SELECT reviewer, action, detail FROM audit_log WHERE case_id = ? ORDER BY entry_id"


def _record_decision(cur: sqlite3.Cursor, now: str, case_id: str, decision: str, reviewer: str,
                     seconds: float | None, comment: str, previous: str, details: dict) -> int:
    """Write a decision, the case's new status and its action-log entry (with ``details``
    beside the decision's own); returns the decision's id."""
    cur.execute("INSERT INTO decisions (case_id, decision, reviewer, seconds, comment, "
                "decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, decision, reviewer, seconds, comment, now))
    decision_id = cur.lastrowid
    cur.execute("UPDATE cases SET status = ?, updated_at = ? WHERE case_id = ?",
                (DECISIONS[decision], now, case_id))
    _audit(cur, now, reviewer, "decide", case_id,
           {"decision": decision, "decision_id": decision_id, "seconds": seconds,
            "previous_status": previous, **details})
    return decision_id


def _check_seconds(seconds) -> float | None:
    """The time spent on a case: None (not measured) or a finite number, 0 or more."""
    if seconds is None:
        return None
    seconds = _finite(seconds, "seconds")
    if seconds < 0:
        raise InputError(f"seconds must be 0 or more, not {seconds}")
    return seconds


def _round_readings(rows: Iterable[tuple]) -> list[dict]:
    """The blind readings of a case's current round (since its last undo or decision), from
    its log rows (``_CASE_LOG``), oldest first, each ``{"reviewer", "decision", "image"?}``."""
    readings: list[dict] = []
    for reviewer, action, detail in rows:
        if action == "read":
            readings.append({"reviewer": reviewer, **json.loads(detail)})
        elif action in ("undo", "decide"):
            readings = []
    return readings


def _audit(cur: sqlite3.Cursor, at: str, reviewer: str, action: str, case_id: str | None,
           detail: dict) -> None:
    cur.execute("INSERT INTO audit_log (at, reviewer, action, case_id, detail) "
                "VALUES (?, ?, ?, ?, ?)", (at, reviewer, action, case_id, json.dumps(detail)))


def _identity(study: str) -> str:
    study = str(study).strip()
    if not study:
        raise InputError("a case needs the study's identity (its StudyInstanceUID)")
    return study


def _check_case_id(case_id: str) -> str:
    case_id = str(case_id)
    if not _CASE_ID.fullmatch(case_id):
        # Not echoed: a mistyped argument may be an accession number or a name.
        raise InputError(f"not a case id (case ids are {CASE_ID_HEX} lowercase hex digits; "
                         "`updp cases WORKSPACE` lists them)")
    return case_id


def _check_word(word: str, allowed: tuple[str, ...], what: str) -> str:
    if word not in allowed:
        shown = repr(word) if isinstance(word, str) and len(word) <= 20 else "that"
        raise InputError(f"{what} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                         f"not {shown}")
    return word


def _check_reviewer(reviewer: str) -> str:
    return check_person(reviewer, "reviewer")


def _finite(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number") from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, not {value}")
    return value


def _proposed(span) -> tuple[int, int, str, str, str]:
    """(start, end, category, source, action) of a Span, span-like object or dict."""
    get = span.get if isinstance(span, dict) else (lambda k, d=None: getattr(span, k, d))
    try:
        start, end = int(get("start")), int(get("end"))
    except (TypeError, ValueError):
        raise InputError("a span needs integer start and end offsets") from None
    if start < 0 or end <= start:
        raise InputError(f"a span must have 0 <= start < end, not {start}..{end}")
    category, source = str(get("category") or "").strip(), str(get("source") or "").strip()
    if not category or not source:
        raise InputError("a span needs a category and a source")
    action = _check_word(get("action", "redact") or "redact", ACTIONS, "span action")
    return start, end, category, source, action


def _artifact_map(artifacts: dict) -> dict:
    """Artifacts as stored: name -> {"path", "signature"} (a bare path becomes that)."""
    out = {}
    for name, entry in artifacts.items():
        if not isinstance(name, str) or not name:
            raise InputError("artifact names must be non-empty strings")
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        if not _ARTIFACT.fullmatch(str(entry.get("path", ""))):
            raise InputError(f"artifact {name!r}: {entry.get('path')!r} is not an artifact "
                             "path (use put_artifact)")
        out[name] = {"path": entry["path"], "signature": entry.get("signature")}
    return out
