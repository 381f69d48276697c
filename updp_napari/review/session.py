"""One reviewer going through the cases of a workspace, from Python (no Qt here).

The review dock and the command line are thin layers over this class; a notebook uses it
directly::

    from updp_napari.review.session import ReviewSession

    session = ReviewSession.open("ws", reviewer="ann")   # at the first undecided case
    case = session.current
    case.original, case.synthetic, case.mask             # numpy arrays
    case.spans, case.redacted                             # what is hidden, and the result
    session.toggle_span(case.spans[0].span_id)           # keep instead of redact, or back
    session.add_redaction(10, 18, "NAME")                 # a span the rules missed
    for step in (job := session.regenerate(strength=0.8, seed=3)):
        ...                                               # (done, total), then the result
    session.decide("accept", comment="findings intact")  # on disk when it returns
    session.next()

Every reviewer action goes through :class:`~updp_napari.review.store.ReviewStore`, which
writes it durably and appends it to the action log. Regeneration is a job: a generator that
yields ``(done, total)`` progress, honours a cancel token and, when it ends, stores the new
``synthetic`` artifact with its signature, unless the reviewer has meanwhile moved to
another case: then the result is dropped, so an image never lands on a case nobody is
looking at.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.boxes import Box
from ..core.errors import InputError, UpdpError
from ..core.jobs import inline_jobs, run_to_end
from ..core.users import check_person, current_user
from ..core.vocabulary import MAX_FINDING_LABEL
from .artifacts import CaseArtifacts
from .store import CaseRecord, ReviewStore, SpanRecord

#: Arrays kept in memory between reads (content-addressed, so never stale).
CACHED_ARRAYS = 16
#: Where ``save_mask`` accepts labels: 0 background, i + 1 for the i-th finding label.
MAX_LABEL = MAX_FINDING_LABEL


@dataclass(frozen=True)
class Regenerated:
    """The end of a regeneration: the new image and whether it was stored on its case."""

    case_id: str
    image: np.ndarray
    signature: dict
    stored: bool                  # False: the reviewer had moved on, the image was dropped
    artifact: str | None = None   # the artifact path when stored


@dataclass(frozen=True)
class RedactedPiece:
    """A run of the redacted report: unchanged text (``span`` None) or a replacement."""

    text: str
    span: object = None  # the core.spans.Span it replaces, when it is a replacement


class ReviewCase:
    """Read access to one case as it stands now (each call reads the store afresh).

    The artifacts are read by :class:`~updp_napari.review.artifacts.CaseArtifacts` (arrays
    through the session's cache); this class adds the review's view of them."""

    def __init__(self, session: ReviewSession, case_id: str):
        self._session = session
        self.case_id = case_id
        self._artifacts = CaseArtifacts(session.store, case_id, read_array=session._array)

    def __repr__(self) -> str:
        return f"ReviewCase({self.case_id!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ReviewCase) and other.case_id == self.case_id

    def __hash__(self) -> int:
        return hash(self.case_id)

    @property
    def record(self) -> CaseRecord:
        return self._session.store.case(self.case_id)

    @property
    def status(self) -> str:
        return self.record.status

    # -- images -----------------------------------------------------------------------------

    def array(self, name: str) -> np.ndarray | None:
        """An array artifact (read-only view; copy it to change it), or None when absent."""
        return self._artifacts.array(name)

    @property
    def original(self) -> np.ndarray | None:
        return self.array("original")

    @property
    def cleaned(self) -> np.ndarray | None:
        return self.array("cleaned")

    @property
    def synthetic(self) -> np.ndarray | None:
        """The synthetic counterpart; None when there is none, and always for a case out of
        the filter's domain (whatever an earlier run left)."""
        return None if self.out_of_domain is not None else self.array("synthetic")

    @property
    def out_of_domain(self) -> dict | None:
        """The domain record (``in_domain``, ``distance``, ``threshold``, ``reason``) when
        the image is out of the filter's domain; None when in domain or never checked."""
        return self._artifacts.out_of_domain()

    @property
    def image_risk(self) -> dict | None:
        """Why the synthetic image may not be shared (``{"findings", "reason"}``: a kept
        finding re-identifies beyond the filter's measured limit); None when it may."""
        return self._artifacts.image_risk()

    def signature(self, name: str):
        return self._artifacts.signature(name)

    @property
    def preserve_mask(self) -> np.ndarray | None:
        """The pipeline's preserved-region label image."""
        return self.array("preserve_mask")

    @property
    def reviewer_mask(self) -> np.ndarray | None:
        return self.array("reviewer_mask")

    @property
    def mask(self) -> np.ndarray | None:
        """The preserved region as it stands: the reviewer's edit when there is one."""
        return self._artifacts.mask()

    @property
    def shape(self) -> tuple[int, int] | None:
        return self._artifacts.shape()

    @property
    def text_boxes(self) -> list[Box]:
        """Burned-in text boxes as ``(x0, y0, x1, y1)`` in image pixels, half-open: columns
        ``x0 <= x < x1``, rows ``y0 <= y < y1`` (:class:`~updp_napari.core.boxes.Box`)."""
        return self._artifacts.text_boxes()

    @property
    def text_mask(self) -> np.ndarray | None:
        """bool mask of the burned-in text boxes: the pixels the pipeline filled (None when
        the case has no image)."""
        return self._artifacts.text_mask()

    def difference(self) -> np.ndarray | None:
        """``|synthetic - original|``: where the shared image departs from the study."""
        original, synthetic = self.original, self.synthetic
        if original is None or synthetic is None or original.shape != synthetic.shape:
            return None
        return np.abs(synthetic.astype(np.float32) - original.astype(np.float32))

    # -- report -----------------------------------------------------------------------------

    @property
    def report(self) -> str:
        """The original report text ("" when the case has none). PHI: never log it."""
        text = self._artifacts.text("report")
        return "" if text is None else text

    @property
    def spans(self) -> list[SpanRecord]:
        return self._session.store.spans(self.case_id)

    def redacted_pieces(self) -> list[RedactedPiece]:
        """The redacted report in runs, re-rendered from the spans whose action is
        ``redact`` as they stand now, exactly as the pipeline renders it."""
        from ..core.spans import Span, resolve
        from ..deid.report.replace import Replacer

        text = self.report
        spans = [s for s in self._session.store.spans(self.case_id) if s.action == "redact"]
        beyond = [s for s in spans if s.end > len(text)]
        if beyond:
            raise UpdpError(f"case {self.case_id}: span {beyond[0].span_id} ends past the end of "
                            "the report (the report artifact and the spans disagree)")
        # Spans a reviewer added may overlap the rules' spans: one replacement covers both.
        redact = resolve(Span(s.start, s.end, s.category, s.source) for s in spans)
        context = self._artifacts.json("report_context") or {}
        replacer = Replacer("surrogate", self._session.key,
                            int(context.get("shift_days", 0)),
                            avoid_names=set(context.get("avoid_names", [])))
        whole = replacer.apply(text, redact)
        pieces, pos = [], 0
        for span in redact:
            if span.start > pos:
                pieces.append(RedactedPiece(text[pos:span.start]))
            pieces.append(RedactedPiece(replacer.replacement(text[span.start:span.end],
                                                             span.category), span))
            pos = span.end
        if pos < len(text):
            pieces.append(RedactedPiece(text[pos:]))
        if "".join(p.text for p in pieces) != whole:  # never show pieces that disagree
            return [RedactedPiece(whole)]
        return pieces

    @property
    def redacted(self) -> str:
        """The redacted report as the spans stand now."""
        return "".join(piece.text for piece in self.redacted_pieces())

    # -- scores -----------------------------------------------------------------------------

    @property
    def scores(self) -> dict:
        """``{"privacy": float | None, "utility": float | None, "details": dict}``."""
        record = self.record
        details = self._artifacts.json("scores") or {}
        return {"privacy": record.privacy_score, "utility": record.utility_score,
                "details": details if isinstance(details, dict) else {"value": details}}


class RegenerationJob:
    """A new synthetic image for one case; iterate it (off the UI thread) to run it.

    Yields ``(done, total)`` while the filter works, then one :class:`Regenerated`. Set
    :meth:`cancel` (or the token given) to stop it: it then ends without a result and
    ``cancelled`` is True. Any ``progress`` callbacks run on the iterating thread.
    """

    def __init__(self, session: ReviewSession, case_id: str, source: np.ndarray,
                 source_name: str, mask: np.ndarray, mask_source: str,
                 text_mask: np.ndarray | None, filter, settings: dict, cancel=None):
        self.session = session
        self.case_id = case_id
        self._source, self._source_name = source, source_name
        self._mask, self._mask_source = mask, mask_source
        self._text_mask = text_mask
        self._filter = filter
        self.settings = settings
        self.cancel_token = cancel if cancel is not None else threading.Event()
        self.cancelled = False
        self.result: Regenerated | None = None

    @property
    def dropped(self) -> bool:
        return self.result is not None and not self.result.stored

    def cancel(self) -> None:
        if not hasattr(self.cancel_token, "set"):
            raise UpdpError("this job's cancel token cannot be set from here; set it yourself")
        self.cancel_token.set()

    def _cancel_requested(self) -> bool:
        return bool(self.cancel_token.is_set())

    def __iter__(self) -> Iterator:
        if self._cancel_requested():
            self.cancelled = True
            return
        filt = self._filter if self._filter is not None else _default_filter()
        settings = self.settings
        call = dict(strength=settings["strength"], seed=settings["seed"], steps=settings["steps"],
                    dilation=settings["dilation"])
        call = {k: v for k, v in call.items() if v is not None or k == "seed"}
        steps = _synthesis_steps(filt, self._source, self._mask > 0, self._text_mask, call,
                                 self.cancel_token)
        image = yield from steps
        if image is None or self._cancel_requested():
            self.cancelled = True
            return
        image = np.asarray(image, dtype=np.float32)
        if image.shape != self._source.shape:
            raise UpdpError(f"the filter returned an image of shape {image.shape} for a "
                            f"{self._source.shape} input")
        signature = self._signature(filt)
        self.result = self.session._store_regenerated(self.case_id, image, signature)
        if self.result.stored:
            # The queue must not show the figures of the image just replaced.
            self.session.rescore(self.case_id)
        yield self.result

    def run(self, progress: Callable[[int, int], None] | None = None) -> Regenerated | None:
        """Run to the end on this thread; the result (stored or dropped), None if cancelled."""
        run_to_end(self, progress)
        return self.result

    def _signature(self, filt) -> dict:
        from .. import __version__

        settings = dict(self.settings)
        for name in ("strength", "steps", "dilation"):
            if settings.get(name) is None:
                settings[name] = getattr(filt, f"default_{name}", None)
        made_by = getattr(filt, "signature", None)
        base = None
        if callable(made_by) and None not in (settings["strength"], settings["steps"],
                                              settings["dilation"]):
            base = made_by(settings["strength"], settings["steps"], settings["dilation"],
                           settings["seed"])
        if not isinstance(base, dict):
            kind = type(filt)
            base = {"model": f"{kind.__module__}.{kind.__qualname__}", **settings,
                    "updp_version": __version__}
        return {**base, "input": {
            "image": self._source_name, "image_sha256": _digest(self._source),
            "mask": self._mask_source, "mask_sha256": _digest(self._mask)},
            "regenerated_by": self.session.reviewer}


class ReviewSession:
    """The cases of one workspace as one reviewer goes through them.

    ``current`` is the case on screen; :meth:`go`, :meth:`next`, :meth:`previous` and
    :meth:`first_undecided` move it. Actions (:meth:`decide`, :meth:`toggle_span`,
    :meth:`add_redaction`, :meth:`save_mask`, :meth:`regenerate`) act on the current case.
    Safe to share with one background thread running a :class:`RegenerationJob`.
    """

    def __init__(self, store: ReviewStore, reviewer: str,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.reviewer = reviewer
        self._clock = clock
        self._lock = threading.RLock()
        self._current: str | None = None
        self._shown_at = clock()
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()
        self._scorers = None

    @classmethod
    def open(cls, workspace: str | os.PathLike, reviewer: str | None = None,
             clock: Callable[[], float] = time.monotonic) -> ReviewSession:
        """Open ``workspace`` at its first undecided case (or its first case when all are
        decided). ``reviewer`` defaults to the user name of this session."""
        reviewer = check_person(current_user() if reviewer is None else reviewer)
        store = ReviewStore.open(workspace)
        session = cls(store, reviewer, clock)
        start = store.first_undecided()
        if start is None:
            cases = store.cases()
            start = cases[0] if cases else None
        if start is not None:
            session.go(start.case_id)
        return session

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ReviewSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReviewSession({str(self.workspace)!r}, reviewer={self.reviewer!r})"

    @property
    def workspace(self) -> Path:
        return self.store.workspace

    @property
    def key(self) -> bytes:
        """The workspace's secret key (the store's)."""
        return self.store.key

    # -- the queue --------------------------------------------------------------------------

    def cases(self, status: str | None = None) -> list[CaseRecord]:
        """The cases (or those with ``status``) in review order."""
        return self.store.cases(status=status)

    def case(self, case_id: str) -> ReviewCase:
        """Any case of the workspace, without moving to it."""
        self.store.case(case_id)  # an error when there is no such case
        return ReviewCase(self, case_id)

    @property
    def current_id(self) -> str | None:
        return self._current

    @property
    def current(self) -> ReviewCase | None:
        current = self._current
        return None if current is None else ReviewCase(self, current)

    def _require_current(self) -> str:
        current = self._current
        if current is None:
            raise UpdpError(f"{self.workspace}: no case is open (the workspace has no cases)")
        return current

    def go(self, case_id: str) -> ReviewCase:
        """Show ``case_id``: it becomes current and its clock starts."""
        self.store.case(case_id)
        with self._lock:
            self._current = case_id
            self._shown_at = self._clock()
        return ReviewCase(self, case_id)

    def _step(self, direction: int, status: str | None) -> ReviewCase | None:
        order = [c.case_id for c in self.store.cases()]
        wanted = None if status is None else {c.case_id for c in self.store.cases(status=status)}
        if not order:
            return None
        here = order.index(self._current) if self._current in order else -1
        index = here + direction
        if here < 0 and direction < 0:
            index = len(order) - 1
        while 0 <= index < len(order):
            if wanted is None or order[index] in wanted:
                return self.go(order[index])
            index += direction
        return None

    def next(self, status: str | None = None) -> ReviewCase | None:
        """Move to the next case in review order (with ``status``, the next such case);
        None, staying put, at the end."""
        return self._step(+1, status)

    def previous(self, status: str | None = None) -> ReviewCase | None:
        """Move to the case before (with ``status``, the one before with it); None at the
        start."""
        return self._step(-1, status)

    def first_undecided(self) -> ReviewCase | None:
        """Move to the first pending case in review order; None (staying put) when every
        case is decided."""
        record = self.store.first_undecided()
        return None if record is None else self.go(record.case_id)

    def position(self) -> tuple[int, int]:
        """(1-based place of the current case in review order, number of cases)."""
        order = [c.case_id for c in self.store.cases()]
        return (order.index(self._current) + 1 if self._current in order else 0, len(order))

    def seconds_on_case(self) -> float:
        """Seconds since the current case was shown."""
        return max(0.0, self._clock() - self._shown_at)

    # -- reviewer actions -------------------------------------------------------------------

    def decide(self, decision: str, comment: str = "", override: bool = False,
               original_image: bool = False, report_only: bool = False):
        """Record ``accept``, ``reject`` or ``flag`` on the current case with the time spent
        on it since it was shown; durable when this returns (a ``DecisionRecord``; in
        second-reader mode, on a pending case, a blind ``Reading`` unless ``override``).
        Over another reviewer's decision only with ``override`` (``store.DecisionOverride``
        otherwise); a case out of the filter's domain is accepted only with
        ``original_image`` or ``report_only``, one whose image is not shareable only with
        ``report_only`` (see ``ReviewStore.decide``)."""
        case_id = self._require_current()
        seconds = round(self.seconds_on_case(), 3)
        if self.blind(case_id) and not override:
            return self.store.read_blind(case_id, decision, reviewer=self.reviewer,
                                         seconds=seconds, comment=comment,
                                         original_image=original_image, report_only=report_only)
        return self.store.decide(case_id, decision, reviewer=self.reviewer, seconds=seconds,
                                 comment=comment, override=override,
                                 original_image=original_image, report_only=report_only)

    def blind(self, case_id: str) -> bool:
        """Whether a decision on the case is a blind reading (second-reader mode, the case
        pending): it returns a ``store.Reading``, and the other reader's is not shown."""
        return self.store.second_reader and self.store.case(case_id).status == "pending"

    def history(self, case_id: str) -> list:
        """The case's action log as this reviewer may see it: while the case is read blind,
        another reader's reading is left out."""
        entries = self.store.action_log(case_id)
        if self.blind(case_id):
            entries = [e for e in entries if e.action != "read" or e.reviewer == self.reviewer]
        return entries

    def toggle_span(self, span_id: int) -> SpanRecord:
        """Flip one span of the current case between redact and keep."""
        return self.store.toggle_span(self._require_current(), span_id, self.reviewer)

    def add_redaction(self, start: int, end: int, category: str = "OTHER") -> SpanRecord:
        """Redact ``report[start:end]`` of the current case (a span the rules missed)."""
        case_id = self._require_current()
        length = len(ReviewCase(self, case_id).report)
        try:
            start, end = int(start), int(end)
        except (TypeError, ValueError):
            raise InputError("a redaction needs integer start and end offsets") from None
        if not 0 <= start < end <= length:
            raise InputError(f"a redaction must lie inside the report: 0 <= start < end <= "
                             f"{length}, not {start}..{end}")
        category = str(category or "").strip().upper()
        if not category.replace("_", "").isalnum():
            raise InputError("a redaction's category is a word such as NAME, DATE or OTHER")
        return self.store.add_span(case_id, start, end, category, self.reviewer,
                                   action="redact")

    def save_mask(self, mask) -> bool:
        """Store the reviewer's preserved-region label image for the current case (as
        ``reviewer_mask``, beside the pipeline's own). False when it equals the mask as it
        stands (nothing written)."""
        case_id = self._require_current()
        case = ReviewCase(self, case_id)
        mask = self._check_mask(case, mask)
        current = case.mask
        if current is not None and current.shape == mask.shape and np.array_equal(current, mask):
            return False
        self.store.record_mask_edit(case_id, self.reviewer, self.store.put_array(mask))
        return True

    def _check_mask(self, case: ReviewCase, mask) -> np.ndarray:
        mask = np.asarray(mask)
        shape = case.shape
        if mask.ndim != 2 or (shape is not None and mask.shape != shape):
            raise InputError(f"case {case.case_id}: the mask must be a 2-D label image of the "
                             f"image's shape {shape}, not {mask.shape}")
        if mask.dtype == bool:
            mask = mask.astype(np.uint8)
        if not np.issubdtype(mask.dtype, np.integer):
            raise InputError(f"case {case.case_id}: the mask must hold integer labels, not "
                             f"{mask.dtype}")
        if mask.size and (mask.min() < 0 or mask.max() > MAX_LABEL):
            raise InputError(f"case {case.case_id}: mask labels must be 0 to {MAX_LABEL} "
                             f"(0 background, i + 1 for the i-th finding), found "
                             f"{int(mask.min())}..{int(mask.max())}")
        return np.ascontiguousarray(mask, dtype=np.uint8)

    def regenerate(self, strength: float | None = None, seed: int = 0, mask=None, filter=None,
                   steps: int | None = None, dilation: float | None = None,
                   case_id: str | None = None, cancel=None) -> RegenerationJob:
        """A job that makes a new synthetic image for ``case_id`` (default: the current
        case) with the generative filter, from the cleaned image (the original when there
        is none), keeping ``mask`` (default: the case's mask as it stands).

        ``filter``: anything with the ``GenerativeFilter.synthesize`` signature (default:
        the shipped model, loaded on first use). The job stores its result only if
        ``case_id`` is still the current case when it ends.
        """
        case_id = self._require_current() if case_id is None else case_id
        case = self.case(case_id)
        if strength is not None:
            try:
                strength = float(strength)
            except (TypeError, ValueError):
                raise InputError("strength must be a number in (0, 1]") from None
            if not 0.0 < strength <= 1.0:
                raise InputError(f"strength must be in (0, 1], not {strength}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"seed must be a whole number 0 or more, not {seed!r}")
        if steps is not None and (not isinstance(steps, (int, np.integer)) or steps < 1):
            raise InputError(f"steps must be a whole number 1 or more, not {steps!r}")
        outside = case.out_of_domain
        if outside is not None:
            raise UpdpError(f"case {case_id} is out of the filter's domain "
                            f"({outside.get('reason') or 'no reason recorded'}): the filter would "
                            "draw an image of its own, not a counterpart of this study")
        source_name = "cleaned" if case.cleaned is not None else "original"
        source = case.array(source_name)
        if source is None:
            raise UpdpError(f"case {case_id}: no image to regenerate from (neither cleaned nor "
                            "original is stored)")
        if mask is not None:
            mask, mask_source = self._check_mask(case, mask), "given"
        elif case.reviewer_mask is not None:
            mask, mask_source = case.reviewer_mask, "reviewer_mask"
        elif case.preserve_mask is not None:
            mask, mask_source = case.preserve_mask, "preserve_mask"
        else:
            mask, mask_source = np.zeros(source.shape, np.uint8), "none"
        settings = {"strength": strength, "seed": int(seed),
                    "steps": None if steps is None else int(steps),
                    "dilation": None if dilation is None else float(dilation)}
        return RegenerationJob(self, case_id, np.array(source, dtype=np.float32), source_name,
                               np.array(mask), mask_source, case.text_mask, filter, settings,
                               cancel)

    def rescore(self, case_id: str) -> dict:
        """Score ``case_id`` again against every original of the workspace (as ``updp run``
        does), with the scorers that scored the workspace, else the shipped ones; returns
        the case's new scores."""
        from .scores import score_cases

        if self._scorers is None:
            from ..scoring import load_scorers

            recorded = None
            for record in self.store.cases():
                signature = record.artifacts.get("scores", {}).get("signature")
                if isinstance(signature, dict) and signature.get("scorers"):
                    recorded = signature["scorers"]
                    break
            try:
                self._scorers = load_scorers(recorded)
            except UpdpError:
                if recorded is None:
                    raise
                self._scorers = load_scorers(None)
        score_cases(self.store, self._scorers, only=[case_id])
        return self.case(case_id).scores

    def _store_regenerated(self, case_id: str, image: np.ndarray, signature: dict) -> Regenerated:
        # Checked and stored under the lock that moving between cases takes, so a result
        # never lands on a case the reviewer has just left.
        with self._lock:
            if self._current != case_id:
                return Regenerated(case_id, image, signature, stored=False)
            path = self.store.put_array(np.ascontiguousarray(image))
            self.store.record_regeneration(case_id, self.reviewer, path, signature)
        return Regenerated(case_id, image, signature, stored=True, artifact=path)

    # -- reading artifacts ------------------------------------------------------------------

    def _array(self, relpath: str) -> np.ndarray:
        with self._lock:
            cached = self._arrays.get(relpath)
            if cached is not None:
                self._arrays.move_to_end(relpath)
                return cached
        array = self.store.get_array(relpath)
        array.flags.writeable = False
        with self._lock:
            self._arrays[relpath] = array
            while len(self._arrays) > CACHED_ARRAYS:
                self._arrays.popitem(last=False)
        return array


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()[:16]


def _default_filter():
    from ..synth.job import load_filter

    return load_filter(None)


def _synthesis_steps(filt, image, mask, text_mask, call: dict, cancel):
    """Run ``filt.synthesize`` and turn its progress callbacks into ``(done, total)``
    yields; returns the image (None when cancelled).

    The filter runs on a helper thread so that progress reaches the iterating thread as
    it happens, and a cancel is answered at once even by a filter that never looks at its
    token. With ``UPDP_SYNC=1`` (tests) it runs inline and its progress follows at the end.
    """
    if inline_jobs():
        steps: list[tuple[int, int]] = []
        try:
            image = filt.synthesize(image, mask, text_mask, progress=lambda d, t: steps.append(
                (int(d), int(t))), cancel=cancel, **call)
        except Exception:
            if cancel.is_set():  # a filter may answer a cancel by raising
                return None
            raise
        yield from steps
        return None if cancel.is_set() else image

    messages: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            out = filt.synthesize(image, mask, text_mask, cancel=cancel, **call,
                                  progress=lambda d, t: messages.put(("step", int(d), int(t))))
            messages.put(("done", out))
        except BaseException as exc:  # handed to the iterating thread, raised there
            messages.put(("error", exc))

    threading.Thread(target=work, name="updp-regenerate", daemon=True).start()
    while True:
        try:
            message = messages.get(timeout=0.05)
        except queue.Empty:
            if cancel.is_set():
                return None  # the helper thread finishes on its own; its result is ignored
            continue
        if message[0] == "step":
            if cancel.is_set():
                return None
            yield message[1], message[2]
        elif message[0] == "done":
            return None if cancel.is_set() else message[1]
        else:
            if cancel.is_set():
                return None
            raise message[1]
