"""``updp make-cohort``: a synthetic chest X-ray cohort with ground truth for every question.

Layout written under ``out``::

    <study_id>/image.dcm          DX or CR radiograph, header full of (synthetic) PHI
    <study_id>/report.txt         free-text report
    <study_id>/mask_<label>.png   one pixel mask per positive finding
    ground_truth.jsonl            one JSON object per study
    cohort.json                   how the cohort was made

The same arguments always give the same files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..core.errors import UpdpError
from ..core.files import write_text_atomic
from . import anatomy, burnin, pathology, render
from .dicomwriter import build_dataset, write_dicom
from .identities import MAX_SITES, age_group, draw_group, format_identifier, make_patient, make_sites
from .model import LABELS, Study
from .reports import write_report

GROUND_TRUTH = "ground_truth.jsonl"
COHORT_INFO = "cohort.json"
MIN_SIZE, MAX_SIZE = 64, 2048


class CohortError(UpdpError):
    """The cohort cannot be made as asked."""


def study_id(patient: int, study: int) -> str:
    return f"p{patient:04d}_s{study + 1:02d}"


def _check(out: Path, patients: int, studies: int, size: int, sites: int, overwrite: bool) -> None:
    if patients < 1:
        raise CohortError(f"patients must be at least 1 (got {patients})")
    if studies < 1:
        raise CohortError(f"studies must be at least 1 (got {studies})")
    if not MIN_SIZE <= size <= MAX_SIZE or size % 16:
        raise CohortError(f"size must be a multiple of 16 between {MIN_SIZE} and {MAX_SIZE} "
                          f"(got {size})")
    if not 1 <= sites <= MAX_SITES:
        raise CohortError(f"sites must be between 1 and {MAX_SITES} (got {sites})")
    if out.exists() and not out.is_dir():
        raise CohortError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CohortError(f"{out}: folder is not empty; choose an empty folder or allow overwriting it")


def make_cohort(out: str | os.PathLike, patients: int, studies: int, seed: int, size: int = 256,
                sites: int = 3, overwrite: bool = False,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the cohort; return the contents of ``cohort.json``."""
    out = Path(out)
    _check(out, patients, studies, size, sites, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    site_list = make_sites(sites, np.random.default_rng([seed, 0]))
    total = patients * studies
    records = []
    for p in range(patients):
        prng = np.random.default_rng([seed, 1, p])
        site = site_list[int(prng.integers(len(site_list)))]
        first_date = dt.date(2015, 1, 1) + dt.timedelta(days=int(prng.integers(0, 9 * 365)))
        # The group has a stream of its own: a seed's other draws are what they were before.
        group = draw_group(site, np.random.default_rng([seed, 3, p]))
        patient, _ = make_patient(p, site, prng, first_date, group=group)
        traits = anatomy.draw_traits(prng, patient.person.sex, patient.weight_kg, patient.height_m)
        traits = anatomy.group_traits(traits, group)
        date, previous = first_date, None
        for k in range(studies):
            srng = np.random.default_rng([seed, 2, p, k])
            study = _make_study(p, k, patient, site, date, previous, srng)
            records.append(_render_study(out, study, traits, seed, size, srng))
            if progress is not None:
                progress(len(records), total)
            previous, date = date, date + dt.timedelta(days=int(srng.integers(30, 700)))
    write_text_atomic(out / GROUND_TRUTH, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    info = {
        "generator": "updp make-cohort", "version": __version__, "seed": seed,
        "patients": patients, "studies_per_patient": studies, "size": size,
        "sites": [{"code": s.code, "name": s.name, "modality": s.modality,
                   "photometric": s.photometric, "report_style": s.report_style}
                  for s in site_list],
        "labels": list(LABELS), "studies": total,
    }
    write_text_atomic(out / COHORT_INFO, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def _make_study(p: int, k: int, patient, site, date: dt.date, previous: dt.date | None,
                rng: np.random.Generator) -> Study:
    age = (date - patient.birth_date).days * 4 // 1461
    return Study(
        study_id=study_id(p, k), patient=patient, site=site, index=k, date=date,
        time=dt.time(int(rng.integers(7, 20)), int(rng.integers(60)), int(rng.integers(60))),
        accession=format_identifier(site.accession_format, rng),
        view="AP" if rng.random() < 0.2 else "PA", age_years=int(age),
        referrer=site.referrers[int(rng.integers(len(site.referrers)))],
        radiologist=site.radiologists[int(rng.integers(len(site.radiologists)))],
        technologist=site.technologists[int(rng.integers(len(site.technologists)))],
        previous_date=previous,
    )


def _render_study(out: Path, study: Study, traits: anatomy.AnatomyTraits, seed: int, size: int,
                  rng: np.random.Generator) -> dict:
    acq = anatomy.draw_acquisition(rng, study.view)
    chest = anatomy.Chest(traits, acq, size)
    labels = pathology.choose_labels(rng, traits.chronic_cardiomegaly)
    found = pathology.build(chest, labels, rng)
    study.findings = found.findings
    density = chest.attenuation(found.extra, found.vessel_clear, found.lung_air)
    display = render.to_display(density, study.site, acq, rng, size)

    with_text = bool(rng.random() < study.site.burn_in_rate)
    boxes = burnin.burn_in(display, study, rng, with_phi=with_text)
    # The header says YES when text was burned in, except for the files where it lies.
    header_says = "YES" if with_text and rng.random() > 0.3 else "NO"
    pixels = render.to_stored(display, study.site)
    ds, header_phi = build_dataset(study, pixels, seed, header_says, rng)
    text, spans = write_report(study, rng)

    folder = out / study.study_id
    folder.mkdir(exist_ok=True)
    write_dicom(ds, folder / "image.dcm")
    (folder / "report.txt").write_text(text, encoding="utf-8", newline="\n")
    masks = {}
    for label, mask in found.masks.items():
        name = f"mask_{label}.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / name, optimize=False)
        masks[label] = f"{study.study_id}/{name}"

    return {
        "study_id": study.study_id,
        "patient": f"p{study.patient.index:04d}",
        "site": study.site.code,
        "study_index": study.index,
        "image": f"{study.study_id}/image.dcm",
        "report": f"{study.study_id}/report.txt",
        "size": size,
        "view": study.view,
        "modality": study.site.modality,
        "photometric": study.site.photometric,
        "demographics": {"sex": study.patient.person.sex, "age": study.age_years,
                         "age_group": age_group(study.age_years),
                         "group": study.patient.group},
        "labels": study.labels,
        "findings": [asdict(f) for f in study.findings],
        "masks": masks,
        "phi_spans": spans,
        "header_phi": header_phi,
        "burned_in": boxes,
        "burned_in_phi": with_text,
        "burned_in_annotation": header_says,
        "identity": traits.as_dict(),
        "acquisition": acq.as_dict(),
    }


def read_cohort_info(cohort: str | os.PathLike) -> dict:
    """The cohort's ``cohort.json`` (how it was made: generator, seed, size, sites, counts),
    or an empty dict when it is missing or unreadable."""
    try:
        info = json.loads((Path(cohort) / COHORT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def read_ground_truth(cohort: str | os.PathLike) -> list[dict]:
    """The cohort's ground-truth records, in study order."""
    path = Path(cohort) / GROUND_TRUTH
    if not path.is_file():
        raise CohortError(f"{path}: no ground truth here; is this a cohort made by updp make-cohort?")
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CohortError(f"{path}: line {n} is not valid JSON ({exc.msg})") from None
                    except (ValueError, RecursionError):
                        raise CohortError(f"{path}: line {n} is JSON nested too deep or with a "
                                          f"number too long") from None
                    if not isinstance(record, dict):
                        raise CohortError(f"{path}: line {n} is not a JSON object")
                    records.append(record)
    except UnicodeDecodeError as exc:
        raise CohortError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CohortError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return records


def summarize(records: list[dict]) -> list[str]:
    """A few lines saying what a cohort holds (counts only: no names, no values)."""
    sites: dict[str, int] = {}
    for r in records:
        sites[r["site"]] = sites.get(r["site"], 0) + 1
    findings = {label: sum(r["labels"][label] for r in records) for label in LABELS}
    normal = sum(1 for r in records if not any(r["labels"].values()))
    burned = sum(1 for r in records if r["burned_in_phi"])
    lying = sum(1 for r in records if r["burned_in_phi"] and r["burned_in_annotation"] == "NO")
    spans = sum(len(r["phi_spans"]) for r in records)
    group2: dict[str, int] = {}
    for r in records:
        if r.get("demographics", {}).get("group") == "g2":
            group2[r["site"]] = group2.get(r["site"], 0) + 1
    return [
        "studies per site: " + ", ".join(f"{k} {v}" for k, v in sorted(sites.items())),
        "population group g2: " + ", ".join(f"{k} {group2.get(k, 0)}/{v}"
                                            for k, v in sorted(sites.items())),
        f"findings: {normal} normal; " + ", ".join(f"{k} {v}" for k, v in findings.items() if v),
        f"burned-in PHI text: {burned} images ({lying} with BurnedInAnnotation wrongly NO)",
        f"report PHI spans: {spans} in {len(records)} reports",
    ]

