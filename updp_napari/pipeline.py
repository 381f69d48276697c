"""The whole pipeline over a folder of studies, into a review workspace (``updp run``).

For each study: the header is de-identified and burned-in text filled (``deid.dicom``), the
report's PHI spans and protected pathology terms are found (``deid.report``), the
generative filter makes the synthetic counterpart (``synth``), and at the end every case is
scored against all originals of the workspace (``scoring``). Everything lands in the
workspace as the artifacts ``review.artifacts`` names; the review app reads them.

A second run skips cases that are finished with the same settings (resumable); a case that
fails is recorded with its reason (``updp cases WS --status failed``) and the others go on.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .core.boxes import Box, boxes_mask
from .core.errors import InputError, UpdpError
from .review.artifacts import put_array, put_json, put_text
from .studies import StudyInput, find_studies

#: Cases synthesised together (one model call per batch; a GPU takes them at once).
BATCH = 8


@dataclass
class RunSummary:
    cases: int = 0
    done: int = 0
    already_done: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (case id, file, reason)
    not_studies: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    scored: int = 0
    out_of_domain: list[tuple[str, str, str]] = field(default_factory=list)  # (case id, file, reason)


@dataclass
class _Prepared:
    case_id: str
    cleaned: np.ndarray
    preserve: np.ndarray
    text_mask: np.ndarray
    domain: dict  # the stored domain record: in domain, or why not


def _label_image(study: StudyInput, shape: tuple[int, int]) -> np.ndarray:
    from .core.vocabulary import FINDINGS
    from .ingest import label_image, read_mask

    return label_image({label: read_mask(path, shape) for label, path in study.masks.items()
                        if label in FINDINGS}, shape)


class Pipeline:
    """One workspace's settings: key, de-identifiers, filter and scorers (loaded once)."""

    def __init__(self, store, *, model=None, scorers=None, strength: float | None = None,
                 seed: int = 0, steps: int | None = None, dilation: float | None = None,
                 pixels: str = "ocr", options: tuple[str, ...] | None = None):
        from .deid.dicom import DicomDeidentifier
        from .deid.header import DEFAULT_OPTIONS
        from .deid.report import ReportDeidentifier

        self.store = store
        self.key = store.key
        self.dicom = DicomDeidentifier(self.key, options or DEFAULT_OPTIONS, pixels=pixels)
        self.reports = ReportDeidentifier()
        self.model, self.scorers_path = model, scorers
        self.synth = {"strength": strength, "steps": steps, "dilation": dilation}
        self.seed = seed
        self._filter = None
        self._scorers = None
        self._domain: tuple | None = None

    # -- models ----------------------------------------------------------------------------

    def filter(self):
        if self._filter is None:
            from .synth.job import load_filter

            self._filter = load_filter(self.model)
        return self._filter

    def case_seed(self, case_id: str) -> int:
        """The noise seed of one case: the run's seed plus a number read off the case id (a
        keyed hash), so every case draws its own counterpart and a run is reproducible. One
        seed for all would give every healthy chest the same counterpart, and that one
        image, by chance more like one patient than the others, would "re-identify" them."""
        return (int(self.seed) + int(case_id[:7], 16)) % 2**31

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

    def prepare(self, study: StudyInput, case_id: str) -> _Prepared:
        """De-identify the study's image and report into the case's artifacts."""
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

        domain, domain_signature = self.domain()
        # The original with its text regions: the check takes the nearer of the image with
        # them painted out and the image as it is (a large filled box is no radiograph's).
        where = domain_record(domain, original, text_mask, domain_signature["model"])

        store, key = self.store, self.key
        deid_signature = {"options": list(self.dicom.options), "pixels": self.dicom.pixels,
                          "package": __version__}
        put_array(store, case_id, "original", original, {"source": "input"})
        put_array(store, case_id, "cleaned", cleaned, deid_signature)
        put_array(store, case_id, "preserve_mask", preserve, {"source": preserve_source})
        put_json(store, case_id, "text_boxes", boxes, deid_signature)
        path = store.put_artifact(buffer.getvalue(), suffix=".dcm")
        store.set_artifact(case_id, "dicom", path, deid_signature)
        source = store.put_artifact(study.image.read_bytes(), suffix=".dcm")
        store.set_artifact(case_id, "source", source, {"source": "input"})
        put_json(store, case_id, "identity", {"patient": pseudonym(key, "patient-id", patient, "PT-")})
        put_json(store, case_id, "domain", where, domain_signature)
        # The filter's measured risk of a kept region, per finding: whether the case's image
        # may leave is judged from it and the mask as it stands (review.artifacts).
        # The same card's calibration turns the privacy attack into a probability
        # (review.scores).
        card = self.filter().model.card or {}
        put_json(store, case_id, "image_risk",
                 {"table": card.get("image_risk"),
                  "privacy_calibration": card.get("privacy_calibration")}, domain_signature)

        protected = [{"start": s, "end": e, "category": "PATHOLOGY", "source": "whitelist",
                      "action": "keep"} for s, e in self.reports.protected(text)] if text else []
        put_text(store, case_id, "report", text, {"source": "input" if study.report else "none"})
        put_json(store, case_id, "report_context", {
            "shift_days": shift,
            "avoid_names": sorted({part for parts in identifiers.names for part in parts})})
        store.set_spans(case_id, list(spans) + protected)
        return _Prepared(case_id, cleaned, preserve, text_mask, where)

    def synthesize(self, batch: list[_Prepared], progress=None) -> None:
        from .synth.job import run_job

        result = run_job([p.cleaned for p in batch], [p.preserve > 0 for p in batch],
                         [p.text_mask for p in batch], model=self.model,
                         seeds=[self.case_seed(p.case_id) for p in batch], progress=progress,
                         **self.synth)
        if result is None:
            raise UpdpError("synthesis was cancelled")
        for prepared, image in zip(batch, result.images):
            put_array(self.store, prepared.case_id, "synthetic", np.asarray(image, np.float32),
                      self.synth_signature(prepared.case_id))

    def finished(self, case_id: str) -> bool:
        """The case has its synthetic image, made with the settings of this run (or was found
        out of this filter's domain, so has none), or a reviewer has decided on it already
        (what was decided on is never replaced)."""
        record = self.store.case(case_id)
        if record.status in ("accepted", "rejected", "flagged"):
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
                 follow_symlinks: bool = False, site: str | None = None) -> RunSummary:
    """Run every study of ``input`` into ``workspace`` (made when missing); symbolic links
    in ``input`` are left out unless ``follow_symlinks``. ``site`` is the site of every case
    whose cohort or manifest row names none."""
    from .review.store import ReviewStore

    found = find_studies(input, manifest, follow_symlinks=follow_symlinks, site=site)
    summary = RunSummary(cases=len(found.studies), not_studies=found.skipped)
    with ReviewStore.open(workspace, create=True) as store:
        from .export import recover_interrupted_exports

        recover_interrupted_exports(store.workspace)  # an export killed mid-way left PHI
        pipe = Pipeline(store, model=model, scorers=scorers, strength=strength, seed=seed,
                        steps=steps, dilation=dilation, pixels=pixels)
        pipe.filter(), pipe.scorers()  # a missing model folder stops the run before any case
        pending: list[_Prepared] = []
        names: dict[str, str] = {}

        def flush() -> None:
            if not pending:
                return
            try:
                pipe.synthesize(pending)
                summary.done += len(pending)
            except UpdpError as exc:
                for p in pending:
                    store.mark_failed(p.case_id, f"synthesis: {exc}")
                    summary.failed.append((p.case_id, names[p.case_id], f"synthesis: {exc}"))
            pending.clear()

        for n, study in enumerate(found.studies):
            case_id = store.add_case(study.study_uid, site=study.site)
            names[case_id] = study.name
            if pipe.finished(case_id):
                summary.already_done += 1
            else:
                try:
                    store.clear_failure(case_id)
                    prepared = pipe.prepare(study, case_id)
                    if prepared.domain["in_domain"]:
                        pending.append(prepared)
                    else:  # no counterpart: the filter would draw one of its own
                        summary.out_of_domain.append((case_id, study.name,
                                                      prepared.domain["reason"]))
                except UpdpError as exc:
                    reason = str(exc).replace(str(study.image), study.name)
                    store.mark_failed(case_id, reason)
                    summary.failed.append((case_id, study.name, reason))
                except (MemoryError, KeyboardInterrupt):
                    raise
                except Exception as exc:  # damage met anywhere in one study: that study only
                    reason = f"could not be processed ({type(exc).__name__})"
                    store.mark_failed(case_id, reason)
                    summary.failed.append((case_id, study.name, reason))
                if len(pending) >= BATCH:
                    flush()
            if progress:
                progress(n + 1, len(found.studies))
        flush()
        summary.scored = pipe.score_all(score_progress)
    return summary
