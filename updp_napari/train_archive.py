"""Everything the pipeline needs, learned from an archive's DICOM files and reports alone:
``updp train ARCHIVE --out MODELS``.

No finding label, mask, text box or identity is read from ground truth, even where an
archive happens to hold some (a cohort's ``ground_truth.jsonl``, ``mask_*.png`` files); a
cohort's site codes are taken as its sites (an archive's come from ``--site`` or a
manifest's ``site`` column):

1. **prepare** — every frontal chest image of the archive (``studies.find_studies``) with
   its report: finding labels from the report labeller (``labels.report``: positive only;
   negated, uncertain and unmentioned are negative; or, with ``labeller``, from a report
   classifier of ``updp train-report-classifier``, whose ε the summary records), the
   regions to keep from the report's words (``labels.regions``), the patient from the
   header (PatientID, kept as a keyed hash: it only groups a patient's studies for the
   re-identification verifier's pairs),
   the site from ``--site`` or a manifest. Written as a training set in the layout the
   trainers read (``MODELS/work/``, owner-only: it names the archive's files);
2. **scorers** — the re-identification verifier and the pathology classifier
   (``scoring.train_scorers``) into ``MODELS/scorers``; the classifier is fitted to the
   report's regions, then trained again on the outlines its own maps draw inside them
   (``region_rounds`` times: ``scoring.pathology.train_pathology_from_regions``);
3. **filter** — the generative filter (``synth.train.train_filter``) into
   ``MODELS/filter``, and the description of its domain (``synth.domain``) from the
   archive's images.

Each stage leaves a ``.done`` note; a second run skips the stages that are done
(resumable). ``updp run --filter-model MODELS/filter --scorers MODELS/scorers`` uses them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .core.errors import InputError

WORK = "work"
STAGES = ("prepare", "scorers", "filter")


def _done(models: Path, stage: str) -> Path:
    return models / f".{stage}.done"


def report_labeller(model: str | os.PathLike | None = None):
    """``(labels_of, description)``: ``labels_of(text)`` gives ``{finding: True | False}``
    (positive or not) from the rule labeller (``model`` None: positive only; negated,
    uncertain and unmentioned are not) or from the report classifier in the folder
    ``model`` (made by ``updp train-report-classifier``; positive at its threshold);
    ``description`` says which, and for a classifier the privacy its card records."""
    from .core.vocabulary import FINDINGS
    from .labels.report import POSITIVE, label_report

    if model is None:
        def rules(text: str) -> dict:
            labels = label_report(text)
            return {f: labels.get(f) == POSITIVE for f in FINDINGS}

        return rules, "rules"
    from .scoring.report_classifier import classifier_labels, load_labeller

    classifier, privacy = load_labeller(model)

    def learned(text: str) -> dict:
        labels, _probabilities = classifier_labels(classifier, [text])
        return {f: labels[0][f] == POSITIVE for f in FINDINGS}

    return learned, {"model": str(model), **privacy}


def prepare_archive(archive: str | os.PathLike, work: str | os.PathLike, *,
                    manifest: str | os.PathLike | None = None, site: str | None = None,
                    size: int = 256, labeller: str | os.PathLike | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the training set of ``archive`` into ``work`` (see the module); returns what it
    holds (studies, patients, positives per finding, studies left out with the reason).
    ``labeller``: a report classifier's folder to take the finding labels from instead of
    the rules (see :func:`report_labeller`)."""
    from PIL import Image

    from .cohort.generate import COHORT_INFO, GROUND_TRUTH
    from .core.files import private_folder, write_text_atomic
    from .core.vocabulary import FINDINGS
    from .deid.report.header_values import patient_key
    from .ingest import display_image, quiet_pydicom, read_dataset, read_report
    from .labels.regions import hint_mask, report_region_hints
    from .studies import find_studies

    labels_of, labelled_by = report_labeller(labeller)
    quiet_pydicom()
    work = Path(work)
    private_folder(work)
    key_file = work / "patient.key"
    if not key_file.is_file():
        key_file.write_bytes(secrets.token_bytes(32))
        os.chmod(key_file, 0o600)
    key = key_file.read_bytes()
    found = find_studies(archive, manifest, site=site)
    records, skipped = [], list(found.skipped)
    positives = dict.fromkeys(FINDINGS, 0)
    for n, study in enumerate(found.studies):
        try:
            image = display_image(study.image)
            patient = patient_key(read_dataset(study.image, stop_before_pixels=True))
            text = read_report(study.report) if study.report is not None else ""
        except InputError as exc:
            skipped.append((study.name, str(exc).replace(str(study.image), study.name)))
            continue
        if not text:
            skipped.append((study.name, "no report: its findings cannot be learned"))
            continue
        labels = labels_of(text)
        hints = report_region_hints(text)
        folder = work / "masks" / f"{n:06d}"
        masks = {}
        for finding in FINDINGS:
            if not labels[finding]:
                continue
            positives[finding] += 1
            region = np.zeros(image.shape, bool)
            for hint in (h for h in hints if h.finding == finding):
                region |= hint_mask(hint, image.shape)
            if region.any():
                private_folder(folder)
                Image.fromarray(region.astype(np.uint8) * 255).save(folder / f"mask_{finding}.png")
                masks[finding] = str((folder / f"mask_{finding}.png").relative_to(work))
        pseudonym = hmac.new(key, (patient or study.name).encode("utf-8"),
                             hashlib.sha256).hexdigest()[:16]
        records.append({"image": str(Path(study.image).resolve()), "study_id": f"s{n:06d}",
                        "patient": pseudonym, "site": study.site or "unknown",
                        "labels": {f: int(labels[f]) for f in FINDINGS},
                        "masks": masks, "burned_in": []})
        if progress:
            progress(n + 1, len(found.studies))
    if len({r["patient"] for r in records}) < 2:
        raise InputError(f"{archive}: training needs studies of at least two patients with "
                         f"reports ({len(records)} usable studies)")
    write_text_atomic(work / GROUND_TRUTH, "".join(json.dumps(r) + "\n" for r in records),
                      private=True)
    summary = {"generator": "updp train (archive: labels and regions from reports)",
               "masks": "regions", "size": size, "studies": len(records),
               "patients": len({r["patient"] for r in records}),
               "sites": sorted({r["site"] for r in records}),
               "positives": positives, "skipped": len(skipped), "labeller": labelled_by}
    write_text_atomic(work / COHORT_INFO, json.dumps(summary, indent=2) + "\n", private=True)
    return {**summary, "left_out": skipped}


def train_from_archive(archive: str | os.PathLike, models: str | os.PathLike, *,
                       manifest: str | os.PathLike | None = None, site: str | None = None,
                       scorer_size: int = 128, reid_steps: int = 600, pathology_epochs: int = 25,
                       region_rounds: int = 2,
                       filter_size: int = 128, filter_epochs: int = 40, seed: int = 0,
                       threads: int = 1, labeller: str | os.PathLike | None = None,
                       progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run the stages that are not done yet (see the module); returns each stage's summary
    (``{"prepare": …, "scorers": …, "filter": …}``, ``"skipped"`` for a stage done before)."""
    from .core.files import private_folder, write_text_atomic
    from .scoring import train_scorers
    from .synth.domain import fit_domain_folder
    from .synth.train import train_filter

    models = Path(models)
    if models.exists() and not models.is_dir():
        raise InputError(f"{models}: not a folder")
    private_folder(models)
    work = models / WORK

    def stage(name):
        return (lambda d, t: progress(name, d, t)) if progress else None

    out: dict = {}
    for name in STAGES:
        if _done(models, name).is_file():
            out[name] = "skipped: done before"
            continue
        if name == "prepare":
            result = prepare_archive(archive, work, manifest=manifest, site=site,
                                     labeller=labeller, progress=stage("prepare"))
            result = {k: v for k, v in result.items() if k != "left_out"} | \
                {"left_out": [f"{n}: {r}" for n, r in result["left_out"]]}
        elif name == "scorers":
            result = train_scorers(work, models / "scorers", size=scorer_size,
                                   reid_steps=reid_steps, pathology_epochs=pathology_epochs,
                                   region_rounds=region_rounds, seed=seed, threads=threads,
                                   progress=stage("scorers"))
        else:
            card = train_filter(work, models / "filter", size=filter_size, epochs=filter_epochs,
                                seed=seed, threads=threads, progress=stage("filter"))
            try:  # the archive's own images, text as it is (no ground-truth boxes)
                domain = fit_domain_folder(models / "filter", archive, text_boxes=False,
                                           progress=progress)
                domain = {k: v for k, v in domain.items() if k != "skipped"}
            except InputError as exc:
                domain = {"missing": f"no domain description: {exc}"}
            result = {"model_id": card.get("model_id"), "domain": domain}
        write_text_atomic(_done(models, name), json.dumps(result, default=str) + "\n")
        out[name] = result
    return out


def training_set(source: str | os.PathLike, work: str | os.PathLike, *,
                 manifest: str | os.PathLike | None = None,
                 labeller: str | os.PathLike | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[Path, dict | None]:
    """A folder in the training layout for ``source``: ``source`` itself when it is one
    (a cohort made by ``updp make-cohort``, or a ``work/`` folder prepared before), else the
    archive ``source`` prepared into ``work`` (see :func:`prepare_archive`). Returns the folder
    and the preparation's summary (None when nothing was prepared)."""
    from .cohort.generate import GROUND_TRUTH

    source = Path(source)
    if not source.is_dir():
        raise InputError(f"{source}: no such folder (expected a cohort or an archive of studies)")
    if (source / GROUND_TRUTH).is_file():
        return source, None
    summary = prepare_archive(source, work, manifest=manifest, labeller=labeller,
                              progress=progress)
    return Path(work), summary
