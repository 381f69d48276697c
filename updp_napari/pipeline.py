"""The whole pipeline over a folder of studies, into a review workspace (``updp run``).

For each study: the header is de-identified and burned-in text filled (``deid.dicom``), the
report's PHI spans and protected pathology terms are found (``deid.report``), the
generative filter makes the synthetic counterpart (``synth``), and at the end every case is
scored against all originals of the workspace (``scoring``). Everything lands in the
workspace as the artifacts ``review.artifacts`` names; the review app reads them.

A second run skips cases that are finished with the same settings (resumable); a case that
fails is recorded with its reason (``updp cases WS --status failed``) and the others go on.

The work on one study is split in two: :class:`CasePreparer` computes everything to store
(decode, header profile, burned-in text, report spans, domain check) without the store,
so an executor (``executors``) can run it in worker processes; :meth:`Pipeline.write`
stores it, in this process only (one writer). Synthesis and scoring stay here, batched.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .core.boxes import Box, boxes_mask
from .core.errors import InputError, UpdpError
from .review.artifacts import encode_array, encode_json, put_array
from .review.store import DECISIONS
from .studies import StudyInput, find_studies

#: Cases synthesised together (one model call per batch; a GPU takes them at once).
BATCH = 8
#: The statuses a reviewer's decision leaves: what was decided on is never replaced.
DECIDED = frozenset(DECISIONS.values())


@dataclass
class RunSummary:
    cases: int = 0
    done: int = 0
    already_done: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (case id, file, reason)
    not_studies: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    scored: int = 0
    out_of_domain: list[tuple[str, str, str]] = field(default_factory=list)  # (case id, file, reason)
    # Decided cases whose image or report in the input is no longer what was decided on:
    # left as decided, and said (case id, file).
    changed_after_decision: list[tuple[str, str]] = field(default_factory=list)
    workers: int = 1  # processes that prepared the cases
    # Seconds by stage: "cases" (wall, preparing, writing and synthesising every case),
    # "prepare_worker" (summed over the workers), "write", "synthesis", "scoring".
    seconds: dict = field(default_factory=lambda: dict.fromkeys(
        ("cases", "prepare_worker", "write", "synthesis", "scoring"), 0.0))


@dataclass
class CaseTask:
    """One study to prepare: what a worker is sent (picklable; no store, no key)."""

    case_id: str
    study: StudyInput


@dataclass
class PreparedCase:
    """Everything the preparation of one case stores, as the bytes to store (picklable): the
    single writer (:meth:`Pipeline.write`) stores it without computing anything."""

    case_id: str
    artifacts: list[tuple[str, bytes, str, dict | None]]  # (name, data, suffix, signature)
    spans: list[dict]
    cleaned: np.ndarray  # what synthesis starts from, its preserved region and text mask
    preserve: np.ndarray
    text_mask: np.ndarray
    domain: dict  # the stored domain record: in domain, or why not
    seconds: float = 0.0  # how long the preparation took, where it ran
    # Its counterpart, when an executor that synthesises (``executors``) made it already.
    synthetic: np.ndarray | None = None


@dataclass
class CaseFailure:
    """A study that could not be prepared, and why (no value from the study in the reason)."""

    case_id: str
    reason: str
    seconds: float = 0.0


def _label_image(study: StudyInput, shape: tuple[int, int]) -> np.ndarray:
    from .core.vocabulary import FINDINGS
    from .ingest import label_image, read_mask

    return label_image({label: read_mask(path, shape) for label, path in study.masks.items()
                        if label in FINDINGS}, shape)


class CasePreparer:
    """The preparation of one case, apart from the store: the workspace key, the
    de-identifier settings and the filter's domain description, nothing else. Picklable, so
    an executor sends it once to each worker process; the de-identifiers are built there, on
    :meth:`setup` (or the first case). Holds the workspace key: an executor may send it only
    where the workspace itself may be read.

    Calling it with a :class:`CaseTask` returns a :class:`PreparedCase`, or a
    :class:`CaseFailure` for a study that cannot be prepared (never raises for one study's
    damage; ``MemoryError`` and ``KeyboardInterrupt`` pass)."""

    def __init__(self, key: bytes, *, options: tuple[str, ...], pixels: str, domain,
                 domain_signature: dict, image_risk: dict):
        self.key, self.options, self.pixels = key, tuple(options), pixels
        self.domain, self.domain_signature, self.image_risk = domain, domain_signature, image_risk
        self._dicom = self._reports = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_dicom": None, "_reports": None}  # built where it runs

    def setup(self) -> None:
        """Build the de-identifiers (lexicons, patterns, tables): once per process."""
        if self._dicom is None:
            from .deid.dicom import DicomDeidentifier
            from .deid.report import ReportDeidentifier

            self._dicom = DicomDeidentifier(self.key, self.options, pixels=self.pixels)
            self._reports = ReportDeidentifier()

    @property
    def dicom(self):
        self.setup()
        return self._dicom

    @property
    def reports(self):
        self.setup()
        return self._reports

    def __call__(self, task: CaseTask) -> PreparedCase | CaseFailure:
        import time

        start = time.perf_counter()
        study = task.study
        try:
            prepared = self.prepare(study, task.case_id)
            prepared.seconds = time.perf_counter() - start
            return prepared
        except UpdpError as exc:
            reason = str(exc).replace(str(study.image), study.name)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # damage met anywhere in one study: that study only
            reason = f"could not be processed ({type(exc).__name__})"
        return CaseFailure(task.case_id, reason, time.perf_counter() - start)

    def prepare(self, study: StudyInput, case_id: str) -> PreparedCase:
        """De-identify the study's image and report into the case's artifacts (not stored)."""
        import pydicom

        from .core.keys import date_shift_days
        from .deid.dicom import FileRecord
        from .deid.header import pseudonym
        from .deid.report.deidentifier import study_dates
        from .deid.report.header_values import header_identifiers, patient_key
        from .ingest import display_image, read_report

        original = display_image(study.image)  # InputError names the file and the problem
        try:
            ds = pydicom.dcmread(study.image)
        except Exception as exc:  # read_dicom above read it; this is only belt and braces
            raise InputError(f"{study.name}: DICOM file cannot be read ({type(exc).__name__})") \
                from None
        identifiers = header_identifiers(ds)
        patient = patient_key(ds)
        text = read_report(study.report) if study.report is not None else ""
        spans = self.reports.detect(text, identifiers) if text else []
        # One shift for header and report, mapping none of the study's dates onto another.
        dates = identifiers.all_dates | study_dates(text, spans)
        shift = date_shift_days(self.key, patient, dates)
        record = FileRecord(file=study.name, status="ok")
        self.dicom.deidentify_dataset(ds, record, dates)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        # Half-open boxes (core.boxes): the pixels the fill painted, and what the review reads.
        boxes = [{"box": Box.from_json(b["box"]).as_json(), "reason": b.get("reason", "ocr")}
                 for b in record.pixels.get("boxes", [])]
        text_mask = boxes_mask((b["box"] for b in boxes), original.shape)
        cleaned = original.copy()
        cleaned[text_mask] = 0.0  # filled text shows as black, as in the de-identified file
        # The findings to keep: the mask files beside the image when there are any (a
        # cohort), else where the report puts what it affirms (labels.regions).
        if study.masks:
            preserve, preserve_source = _label_image(study, original.shape), "mask files"
        else:
            from .labels.regions import report_regions

            preserve = report_regions(text, original.shape) if text else \
                np.zeros(original.shape, np.uint8)
            preserve_source = "report"
        from .synth.domain import domain_record

        domain_signature = self.domain_signature
        # The original with its text regions: the check takes the nearer of the image with
        # them painted out and the image as it is (a large filled box is no radiograph's).
        where = domain_record(self.domain, original, text_mask, domain_signature["model"])

        deid_signature = {"options": list(self.options), "pixels": self.pixels,
                          "package": __version__}
        protected = [{"start": s, "end": e, "category": "PATHOLOGY", "source": "whitelist",
                      "action": "keep"} for s, e in self.reports.protected(text)] if text else []
        # In the order the store gets them (the case's artifact map keeps that order).
        artifacts = [
            ("original", encode_array(original), ".npy", {"source": "input"}),
            ("cleaned", encode_array(cleaned), ".npy", deid_signature),
            ("preserve_mask", encode_array(preserve), ".npy", {"source": preserve_source}),
            ("text_boxes", encode_json(boxes), ".json", deid_signature),
            ("dicom", buffer.getvalue(), ".dcm", deid_signature),
            ("source", study.image.read_bytes(), ".dcm", {"source": "input"}),
            ("identity", encode_json({"patient": pseudonym(self.key, "patient-id", patient,
                                                           "PT-")}), ".json", None),
            ("domain", encode_json(where), ".json", domain_signature),
            # The filter's measured risk of a kept region, per finding: whether the case's
            # image may leave is judged from it and the mask as it stands (review.artifacts);
            # with the calibration that turns the privacy attack into a probability
            # (review.scores).
            ("image_risk", encode_json(self.image_risk), ".json", domain_signature),
            ("report", text.encode("utf-8"), ".txt",
             {"source": "input" if study.report else "none"}),
            ("report_context", encode_json({
                "shift_days": shift,
                "avoid_names": sorted({part for parts in identifiers.names for part in parts})}),
             ".json", None),
        ]
        spans = [{"start": s.start, "end": s.end, "category": s.category, "source": s.source,
                  "action": getattr(s, "action", "redact")} for s in spans] + protected
        return PreparedCase(case_id, artifacts, spans, cleaned, preserve, text_mask, where)


def case_seed_of(seed: int, cleaned_name: str) -> int:
    """The noise seed of a case whose cleaned image is stored as ``cleaned_name`` (the
    sha256 of its bytes; anything else: the case id): see :meth:`Pipeline.case_seed`."""
    return (int(seed) + int(cleaned_name[:7], 16)) % 2**31


class CaseSynthesizer:
    """The model stage apart from the store: the run's filter and settings (picklable, so an
    executor may run it where its model is: ``setup()`` loads it once there). Calling it with
    prepared cases returns their counterparts; the model always gets ``BATCH`` images at once
    (a short batch is filled up with repeats of its own, whose outputs are dropped): a kernel
    may be chosen by batch size, and a batch of one measured 4e-7 off the same image in a
    batch of eight. So a counterpart does not depend on which cases shared its batch, nor on
    where it was made: a resumed run, or another executor, ends with the same bytes."""

    def __init__(self, model, synth: dict, seed: int):
        self.model = None if model is None else os.fspath(model)
        self.synth, self.seed = dict(synth), int(seed)
        self.batch = BATCH  # as the run has it, wherever this runs

    def setup(self, device: str | None = None, threads: int | None = None) -> None:
        from .synth.job import load_filter

        load_filter(self.model, device=device, threads=threads)

    def seed_of(self, prepared: PreparedCase) -> int:
        """A prepared case's seed, from the bytes its cleaned image will be stored as."""
        import hashlib

        data = next(data for name, data, _, _ in prepared.artifacts if name == "cleaned")
        return case_seed_of(self.seed, hashlib.sha256(data).hexdigest())

    def fill(self, outcomes: list) -> None:
        """Give each in-domain prepared case among ``outcomes`` (failures pass) its
        counterpart, made here in this process: what an executor that synthesises does."""
        ready = [o for o in outcomes if isinstance(o, PreparedCase) and o.domain.get("in_domain")]
        if ready:
            for case, image in zip(ready, self(ready, isolate=False)):
                case.synthetic = image

    def __call__(self, batch: list[PreparedCase], seeds: list[int] | None = None, *,
                 isolate: bool | None = None, progress=None) -> list[np.ndarray]:
        from .synth.job import run_job

        if seeds is None:
            seeds = [self.seed_of(p) for p in batch]
        images = []
        for start in range(0, len(batch), self.batch):
            cases, numbers = batch[start:start + self.batch], seeds[start:start + self.batch]
            padded = [k % len(cases) for k in range(self.batch)]
            result = run_job([cases[k].cleaned for k in padded],
                             [cases[k].preserve > 0 for k in padded],
                             [cases[k].text_mask for k in padded], model=self.model,
                             seeds=[numbers[k] for k in padded], progress=progress,
                             batch_size=self.batch, isolate=isolate, **self.synth)
            if result is None:
                raise UpdpError("synthesis was cancelled")
            images += [np.asarray(image, np.float32) for image in result.images[:len(cases)]]
        return images


class Pipeline:
    """One workspace's settings: key, de-identifiers, filter and scorers (loaded once)."""

    def __init__(self, store, *, model=None, scorers=None, strength: float | None = None,
                 seed: int = 0, steps: int | None = None, dilation: float | None = None,
                 pixels: str = "ocr", options: tuple[str, ...] | None = None):
        from .deid.dicom import DicomDeidentifier
        from .deid.header import DEFAULT_OPTIONS

        self.store = store
        self.key = store.key
        checked = DicomDeidentifier(self.key, options or DEFAULT_OPTIONS, pixels=pixels)
        self.options, self.pixels = checked.options, checked.pixels  # as the files get them
        self.model, self.scorers_path = model, scorers
        self.synth = {"strength": strength, "steps": steps, "dilation": dilation}
        self.seed = seed
        self._filter = None
        self._scorers = None
        self._domain: tuple | None = None
        self._preparer: CasePreparer | None = None

    # -- models ----------------------------------------------------------------------------

    def filter(self):
        if self._filter is None:
            from .synth.job import load_filter

            self._filter = load_filter(self.model)
        return self._filter

    def case_seed(self, case_id: str) -> int:
        """The noise seed of one case: the run's seed plus a number read off the content hash
        of the case's cleaned image (the name the workspace stores it under), so every case
        draws its own counterpart, a run is reproducible, and the counterpart — and with it
        the privacy score — is the same whatever the workspace's key. One seed for all would
        give every healthy chest the same counterpart, and that one image, by chance more
        like one patient than the others, would "re-identify" them. (A case stored without
        its cleaned image, which the pipeline never leaves, falls back to its keyed id.)"""
        entry = self.store.case(case_id).artifacts.get("cleaned") or {}
        name = Path(str(entry.get("path", ""))).stem
        return case_seed_of(self.seed, name if re.fullmatch(r"[0-9a-f]{64}", name) else case_id)

    def synth_signature(self, case_id: str) -> dict:
        filt = self.filter()
        strength, steps, dilation = filt.resolve_settings(**self.synth)
        signature = filt.signature(strength, steps, dilation, self.case_seed(case_id))
        signature["package"] = __version__
        return signature

    def domain(self):
        """``(description or None, signature)`` of the filter's domain (``synth.domain``)."""
        if self._domain is None:
            from .synth.domain import Domain, domain_digest

            filt = self.filter()
            folder = filt.model.path
            domain = Domain.load(folder) if folder is not None else None
            self._domain = (domain, {"model": filt.model_id, "domain": domain_digest(folder),
                                     "package": __version__})
        return self._domain

    def scorers(self):
        if self._scorers is None:
            from .scoring import load_scorers

            self._scorers = load_scorers(self.scorers_path)
        return self._scorers

    # -- one case --------------------------------------------------------------------------

    def preparer(self) -> CasePreparer:
        """The preparation of a case with this run's settings, to run anywhere."""
        if self._preparer is None:
            domain, signature = self.domain()
            card = self.filter().model.card or {}
            self._preparer = CasePreparer(
                self.key, options=self.options, pixels=self.pixels, domain=domain,
                domain_signature=signature,
                image_risk={"table": card.get("image_risk"),
                            "privacy_calibration": card.get("privacy_calibration")})
        return self._preparer

    def write(self, prepared: PreparedCase) -> bool:
        """Store a prepared case (the single writer: only the process that holds the store);
        False, with nothing written, when a reviewer decided on it meanwhile (what was
        decided on is never replaced: checked and written under the store's lock)."""
        store, case_id = self.store, prepared.case_id
        with store.held():
            if self.decided(case_id):
                return False
            for name, data, suffix, signature in prepared.artifacts:
                store.set_artifact(case_id, name, store.put_artifact(data, suffix=suffix), signature)
            store.set_spans(case_id, prepared.spans)
        return True

    def input_changed(self, study: StudyInput, case_id: str) -> bool:
        """Whether the study's image or report in the input differs from what the case was
        made from (the stored copies are named by their sha256). A report that cannot be
        read now counts as changed: running the case again says why."""
        import hashlib

        from .ingest import read_report

        stored = self.store.case(case_id).artifacts
        if "source" not in stored or "report" not in stored:
            return False  # made before these were kept, or never made: nothing to compare

        def digest(entry: dict) -> str:
            return Path(entry["path"]).name.split(".")[0]

        try:
            image = hashlib.sha256(study.image.read_bytes()).hexdigest()
            text = read_report(study.report) if study.report is not None else ""
        except (OSError, UpdpError):
            return True
        return image != digest(stored["source"]) or \
            hashlib.sha256(text.encode("utf-8")).hexdigest() != digest(stored["report"])

    def decided(self, case_id: str) -> bool:
        """Whether a reviewer's decision stands on the case (read as the store is now)."""
        return self.store.case(case_id).status in DECIDED

    def prepare(self, study: StudyInput, case_id: str) -> PreparedCase:
        """De-identify the study's image and report into the case's artifacts, here."""
        prepared = self.preparer().prepare(study, case_id)
        self.write(prepared)
        return prepared

    def synthesizer(self) -> CaseSynthesizer:
        """The model stage with this run's settings, to run anywhere (an executor's)."""
        return CaseSynthesizer(self.model, self.synth, self.seed)

    def synthesize(self, batch: list[PreparedCase], progress=None) -> None:
        """Make and store the counterparts of ``batch`` (those an executor made already are
        only stored)."""
        todo = [p for p in batch if p.synthetic is None]
        if todo:
            images = self.synthesizer()(todo, [self.case_seed(p.case_id) for p in todo],
                                        progress=progress)
            for prepared, image in zip(todo, images):
                prepared.synthetic = image
        for prepared in batch:
            with self.store.held():
                if not self.decided(prepared.case_id):
                    put_array(self.store, prepared.case_id, "synthetic",
                              np.asarray(prepared.synthetic, np.float32),
                              self.synth_signature(prepared.case_id))

    def finished(self, case_id: str) -> bool:
        """The case has its synthetic image, made with the settings of this run (or was found
        out of this filter's domain, so has none), or a reviewer has decided on it already
        (what was decided on is never replaced)."""
        record = self.store.case(case_id)
        if record.status in DECIDED:
            return True
        if record.status == "failed":
            return False
        checked = record.artifacts.get("domain")
        if checked is None or checked.get("signature") != self.domain()[1]:
            return False
        from .review.artifacts import CaseArtifacts

        if CaseArtifacts(self.store, case_id).out_of_domain() is not None:
            return True
        entry = record.artifacts.get("synthetic")
        return entry is not None and entry.get("signature") == self.synth_signature(case_id)

    # -- scores over the workspace ---------------------------------------------------------

    def score_all(self, progress=None) -> int:
        """Privacy and utility of every case with a synthetic image, against all originals
        (see ``review.scores``)."""
        from .review.scores import score_cases

        return score_cases(self.store, self.scorers(), progress=progress)


def run_pipeline(input: str | os.PathLike, workspace: str | os.PathLike, *,
                 manifest: str | os.PathLike | None = None, model=None, scorers=None,
                 strength: float | None = None, seed: int = 0, steps: int | None = None,
                 dilation: float | None = None, pixels: str = "ocr",
                 progress: Callable[[int, int], None] | None = None,
                 score_progress: Callable[[int, int], None] | None = None,
                 follow_symlinks: bool = False, site: str | None = None,
                 executor: str = "local", workers: int | None = 1) -> RunSummary:
    """Run every study of ``input`` into ``workspace`` (made when missing); symbolic links
    in ``input`` are left out unless ``follow_symlinks``. ``site`` is the site of every case
    whose cohort or manifest row names none.

    ``executor`` names where the cases are prepared (``executors``: ``local``, or a plugin's);
    ``workers``: how many processes prepare at once (1: in this process; None: one per usable
    core). Whatever the executor, this process alone writes the workspace, synthesises (in
    batches of ``BATCH``) and scores, and the workspace ends the same, byte for byte."""
    import time

    from .executors import get_executor
    from .review.store import ReviewStore

    runner = get_executor(executor, workers)
    # Workers (or what they start from) load in the background while this process reads
    # the input and loads its own models.
    if callable(getattr(runner, "start", None)):
        runner.start()
    found = find_studies(input, manifest, follow_symlinks=follow_symlinks, site=site)
    summary = RunSummary(cases=len(found.studies), not_studies=found.skipped)
    seconds = summary.seconds
    with ReviewStore.open(workspace, create=True) as store:
        from .export import recover_interrupted_exports

        recover_interrupted_exports(store.workspace)  # an export killed mid-way left PHI
        pipe = Pipeline(store, model=model, scorers=scorers, strength=strength, seed=seed,
                        steps=steps, dilation=dilation, pixels=pixels)
        pipe.filter(), pipe.scorers()  # a missing model folder stops the run before any case
        pending: list[PreparedCase] = []
        names: dict[str, str] = {}
        handled = 0

        def advance() -> None:
            nonlocal handled
            handled += 1
            if progress:
                progress(handled, len(found.studies))

        def failed(case_id: str, reason: str) -> None:
            with store.held():
                if pipe.decided(case_id):
                    return  # decided meanwhile: the decision stands, as it was taken
                store.mark_failed(case_id, reason)
            summary.failed.append((case_id, names[case_id], reason))

        def flush() -> None:
            if not pending:
                return
            start = time.perf_counter()
            try:
                pipe.synthesize(pending)
                summary.done += len(pending)
            except UpdpError as exc:
                for p in pending:
                    failed(p.case_id, f"synthesis: {exc}")
            seconds["synthesis"] += time.perf_counter() - start
            pending.clear()

        def stored(prepared: PreparedCase) -> bool:
            """Store a prepared case; False (the case recorded as failed) when it cannot be."""
            try:
                store.clear_failure(prepared.case_id)
                if pipe.write(prepared):
                    return True
                summary.already_done += 1  # decided while it was prepared: left as decided
                return False
            except UpdpError as exc:
                failed(prepared.case_id, str(exc))
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:  # as for damage met while preparing: that case only
                failed(prepared.case_id, f"could not be processed ({type(exc).__name__})")
            return False

        def tasks():
            """The cases still to do, added to the store as they are reached (lazily: the
            executor asks for the next one when it has room)."""
            for study in found.studies:
                case_id = store.add_case(study.study_uid, site=study.site)
                names[case_id] = study.name
                done = pipe.finished(case_id)
                if done and pipe.input_changed(study, case_id):
                    if pipe.decided(case_id):
                        summary.changed_after_decision.append((case_id, study.name))
                    else:
                        done = False  # made again from what the input holds now
                if done:
                    summary.already_done += 1
                    advance()
                else:
                    yield CaseTask(case_id, study)

        from contextlib import closing

        started = time.perf_counter()
        # An executor that synthesises too (executors) gets the model stage to run where it
        # will; what it yields comes back with its counterpart, which this process stores.
        extra = {"synthesizer": pipe.synthesizer()} if getattr(runner, "synthesizes", False) else {}
        with closing(runner.map(pipe.preparer(), tasks(), ahead=BATCH, **extra)) as outcomes:
            for outcome in outcomes:
                start = time.perf_counter()
                seconds["prepare_worker"] += outcome.seconds
                if isinstance(outcome, CaseFailure):
                    failed(outcome.case_id, outcome.reason)
                elif stored(outcome):
                    if outcome.domain["in_domain"]:
                        pending.append(outcome)
                    else:  # no counterpart: the filter would draw one of its own
                        summary.out_of_domain.append((outcome.case_id, names[outcome.case_id],
                                                      outcome.domain["reason"]))
                seconds["write"] += time.perf_counter() - start
                if len(pending) >= BATCH:
                    flush()
                advance()
            flush()
        seconds["cases"] = time.perf_counter() - started
        start = time.perf_counter()
        summary.scored = pipe.score_all(score_progress)
        seconds["scoring"] = time.perf_counter() - start
        summary.workers = int(getattr(runner, "workers", None) or workers or 1)
    return summary
