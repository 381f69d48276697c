"""One auditor walking an audit sample, from Python (the CLI and the audit dock use it)::

    from updp_napari.audit.session import AuditSession

    audit = AuditSession.open("ws", auditor="ann")           # or a share package folder
    audit.draw(60, strata=("site", "category"), seed=7)       # once; reopening keeps it
    view = audit.current                                       # the first case not audited
    view.report, view.suspects, view.image                     # what leaves, and the hints
    audit.mark("residual_phi", span=(120, 131), category="NAME")   # on disk on return
    audit.next()
    audit.statistics()                                         # rates and bounds

The time an auditor spends on a case (from when it is shown to the mark) is recorded with
each finding.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import InputError, UpdpError
from ..core.users import current_user
from .sample import draw_sample, frame_cases, frame_digest, parse_strata
from .store import AuditStore, Finding, SampleRecord, check_auditor, not_in_sample
from .target import AuditTarget, Suspect

#: The audit's stated target, in its folder.
TARGET_FILE = "target.json"


@dataclass(frozen=True)
class AuditView:
    """One sampled case as the auditor sees it. ``report`` may hold PHI: never log it."""

    case_id: str
    position: int          # 0-based place in the sample
    site: str
    category: str
    report: str
    stand_ins: list | None  # (start, end) of the known stand-ins; None: not known (package)
    suspects: list[Suspect]
    findings: list[Finding]

    @property
    def verdicts(self) -> set[str]:
        return {f.verdict for f in self.findings}


def default_auditor() -> str:
    return current_user("auditor")


class AuditSession:
    """A target, its audit store, and where the auditor is in the sample."""

    def __init__(self, target: AuditTarget, auditor: str,
                 clock: Callable[[], float] = time.monotonic):
        self.target = target
        self.auditor = check_auditor(auditor)
        self._clock = clock
        self._store: AuditStore | None = None
        self._lock = threading.RLock()
        self._current: str | None = None
        self._shown_at = clock()

    @classmethod
    def open(cls, target: str | os.PathLike, auditor: str | None = None,
             clock: Callable[[], float] = time.monotonic) -> AuditSession:
        """Open the audit of ``target`` (a workspace or a share package); at the first
        sampled case not yet audited when a sample exists."""
        session = cls(AuditTarget.open(target), auditor or default_auditor(), clock)
        try:
            if (session.target.audit_folder / "audit.sqlite").is_file():
                session._store = AuditStore.open(session.target.audit_folder)
                session._resume()
        except BaseException:
            session.close()
            raise
        return session

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        self.target.close()

    def __enter__(self) -> AuditSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def audit_folder(self) -> Path:
        return self.target.audit_folder

    @property
    def store(self) -> AuditStore:
        if self._store is None:
            raise InputError(f"{self.target.path}: no audit sample yet (updp audit TARGET "
                             "--sample N draws one)")
        return self._store

    @property
    def sample(self) -> SampleRecord | None:
        return None if self._store is None else self._store.sample()

    # -- the sample ------------------------------------------------------------------------

    def draw(self, n: int, strata=(), seed: int | None = None,
             frame: str | None = None) -> tuple[SampleRecord, bool]:
        """Draw the sample, or reopen the one drawn before when the request matches it
        (what was not given is not compared). Returns (sample, drawn now)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"the sample size must be a whole number 1 or more, not {n!r}")
        strata = parse_strata(strata)
        existing = self.sample
        if existing is not None:
            asked = {"size": n, "strata": strata, "seed": seed, "frame": frame}
            have = {"size": existing.size_requested, "strata": existing.strata,
                    "seed": existing.seed, "frame": existing.frame}
            differ = [k for k, v in asked.items()
                      if v is not None and (k != "strata" or v) and v != have[k]]
            if differ:
                raise UpdpError(
                    f"{self.audit_folder}: an audit sample was already drawn "
                    f"(size {existing.size_requested}, "
                    f"strata {','.join(existing.strata) or 'none'}, "
                    f"seed {existing.seed}, frame {existing.frame}); its findings belong to "
                    f"it. Reopen it with the same settings or none; to start a new audit, "
                    f"rename that folder where it is (it keeps this one, and its residual-PHI "
                    f"findings still hold their cases back until they are decided again)")
            return existing, False
        name, cases = frame_cases(self.target.cases(), self.target.kind, frame)
        result = draw_sample(cases, n, strata, seed)
        if self._store is None:
            self._store = AuditStore.open(self.audit_folder, create=True)
        record = self._store.record_sample(
            result, {c.case_id: c for c in cases}, target_kind=self.target.kind,
            target=str(self.target.path), frame=name, auditor=self.auditor)
        self._resume()
        return record, True

    def frame_changed(self) -> bool:
        """True when the frame now holds other cases than when the sample was drawn."""
        sample = self.sample
        if sample is None:
            return False
        _, cases = frame_cases(self.target.cases(), self.target.kind,
                               None if sample.frame == "package" else sample.frame)
        return frame_digest(c.case_id for c in cases) != sample.frame_sha256

    def _resume(self) -> None:
        sample = self.sample
        if sample is None or not sample.cases:
            return
        done = {f.case_id for f in self.store.findings()}
        start = next((c.case_id for c in sample.cases if c.case_id not in done),
                     sample.cases[0].case_id)
        self.go(start)

    # -- moving ----------------------------------------------------------------------------

    @property
    def current_id(self) -> str | None:
        return self._current

    def go(self, case_id: str) -> AuditView:
        ids = self.store.sample().case_ids if self._store is not None and self.sample else []
        if case_id not in ids:
            raise InputError(not_in_sample(case_id))
        with self._lock:
            self._current = case_id
            self._shown_at = self._clock()
        return self.view(case_id)

    def _step(self, direction: int) -> AuditView | None:
        ids = self.sample.case_ids if self.sample else []
        if not ids:
            return None
        here = ids.index(self._current) if self._current in ids else -1
        index = here + direction
        if 0 <= index < len(ids):
            return self.go(ids[index])
        return None

    def next(self) -> AuditView | None:
        return self._step(+1)

    def previous(self) -> AuditView | None:
        return self._step(-1)

    def position(self) -> tuple[int, int]:
        ids = self.sample.case_ids if self.sample else []
        return (ids.index(self._current) + 1 if self._current in ids else 0, len(ids))

    @property
    def current(self) -> AuditView | None:
        return None if self._current is None else self.view(self._current)

    def seconds_on_case(self) -> float:
        return max(0.0, self._clock() - self._shown_at)

    def view(self, case_id: str) -> AuditView:
        sample = self.sample
        entry = next((c for c in sample.cases if c.case_id == case_id), None) if sample else None
        if entry is None:
            raise InputError(not_in_sample(case_id))
        report, stand_ins = self.target.outgoing_report(case_id)
        return AuditView(case_id, entry.position, entry.site, entry.category, report, stand_ins,
                         self.target.suspects(case_id, report, stand_ins),
                         self.store.findings(case_id))

    def image(self, case_id: str | None = None):
        return self.target.outgoing_image(case_id or self._require_current())

    def _require_current(self) -> str:
        if self._current is None:
            raise UpdpError("no sampled case is open")
        return self._current

    # -- marking ---------------------------------------------------------------------------

    def mark(self, verdict: str, *, case_id: str | None = None, category: str | None = None,
             span=None, box=None, comment: str = "", seconds: float | None = None) -> Finding:
        """Record a finding on ``case_id`` (default: the current case, with the time spent on
        it since it was shown). Spans are checked against the outgoing report, boxes against
        the outgoing image."""
        measured = case_id is None  # a case named from a script: no time was measured
        case_id = case_id or self._require_current()
        sample = self.sample
        if sample is None:
            raise InputError(f"{self.target.path}: no audit sample yet (updp audit TARGET "
                             "--sample N draws one)")
        if case_id not in sample.case_ids:
            raise InputError(not_in_sample(case_id))
        report_length = image_shape = None
        if span is not None:
            report_length = len(self.target.outgoing_report(case_id)[0])
        if box is not None:
            image = self.target.outgoing_image(case_id)
            image_shape = None if image is None else tuple(image.shape[:2])
        if seconds is None and measured:
            seconds = round(self.seconds_on_case(), 3)
        return self.store.mark(case_id, verdict, self.auditor, phi_category=category, span=span,
                               box=box, seconds=seconds, comment=comment,
                               report_length=report_length, image_shape=image_shape)

    def withdraw(self, finding_id: int, reason: str = "") -> None:
        self.store.withdraw(finding_id, self.auditor, reason)

    def state_target(self, max_rate: float, confidence: float = 0.95) -> dict:
        """Record the rate the audit must bound (``max_rate`` at ``confidence``), stated before
        the cases are looked at: the report gives PASS or FAIL against it. Kept in the audit
        folder (``target.json``); a later statement replaces it and says so."""
        import json

        from ..core.files import write_text_atomic
        from .stats import _check, check_rate

        _check(0, 1, confidence)
        previous = self.stated_target()
        target = {"max_rate": check_rate(max_rate), "confidence": float(confidence),
                  "stated_by": self.auditor,
                  "stated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if previous is not None:
            target["replaces"] = previous
        write_text_atomic(self.audit_folder / TARGET_FILE, json.dumps(target, indent=2) + "\n",
                          private=True)
        return target

    def stated_target(self) -> dict | None:
        """The target stated with :meth:`state_target`, or None."""
        import json

        try:
            target = json.loads((self.audit_folder / TARGET_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        ok = isinstance(target, dict) and isinstance(target.get("max_rate"), (int, float))
        return target if ok else None

    def statistics(self, confidence: float = 0.95) -> dict:
        from .stats import audit_statistics

        return audit_statistics(self.store.sample(), self.store.findings(), confidence)
