"""Privacy and utility scores of a workspace's cases, against all of its originals.

``updp run`` scores every case once its synthetic images are made; the review session scores
a case again when a reviewer regenerates its synthetic image, so the queue never shows the
figures of an image that is gone.

* privacy: where the patient's own originals rank among all patients' originals by
  likeness to the synthetic image (re-identification scorer), scaled 0…1 (0: its own
  patient is the best match, re-identified; about 0.5: no better than chance; None with a
  single patient);
* re-identification probability (beside it, when the filter's card holds a calibration
  measured with these scorers, ``updp evaluate-filter --record-risk``): the same attack's
  similarities to each patient turned into the probability it gives the true patient, by a
  softmax at the temperature calibrated on held-out counterparts whose patients were known;
  against chance, 1 / the gallery's patients;
* utility: how well the counterpart keeps the findings, as a radiologist reads it: of the
  findings the pathology classifier calls on either image (at its own thresholds), the share
  called on both — kept / (kept + lost + added); 1 when it calls none on either. Beside it,
  finding by finding (``findings``): the two probabilities and the state — ``kept``,
  ``lost``, ``added`` (a new positive: an artefact that reads as a finding), ``moved``
  (called the same, but the probability moved by more than ``MOVED``) or ``absent`` — and a
  one-line ``verdict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .artifacts import CaseArtifacts, put_json

#: A probability moving by more than this between original and counterpart is shown, even
#: when the call stays the same.
MOVED = 0.25
#: A privacy score below this is a re-identification alert: the patient's own originals are
#: among the best-matching tenth of the gallery's patients (chance puts them in the middle).
PRIVACY_ALERT = 0.1
PRIVACY_MEANING = ("privacy score: where the patient's own originals rank among all the "
                   "workspace's patients by likeness to the counterpart (re-identification "
                   "scorer), 0 = ranked first (re-identified), about 0.5 = chance, 1 = last; "
                   f"below {PRIVACY_ALERT:g} (the best-matching tenth) is an alert. The "
                   "re-identification probability beside it is the same attack's belief in the "
                   "true patient, calibrated on held-out counterparts (chance: 1 / the patients "
                   "in the workspace); red at twice chance or more")
UTILITY_MEANING = ("utility score: of the findings the pathology scorer calls on either "
                   "image, the share it calls on both (kept / (kept + lost + added)); below 1 "
                   "a finding was lost or added")


def score_cases(store, scorers, only: Iterable[str] | None = None,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Score the cases ``only`` (default: every case with a synthetic image) of ``store``
    with ``scorers`` (``scoring.load_scorers``); the gallery is the originals of every case
    that has a synthetic image and did not fail. Returns how many cases were scored."""
    from .. import __version__

    cases = [c for c in store.cases() if c.status != "failed" and "synthetic" in c.artifacts
             and CaseArtifacts(store, c.case_id).out_of_domain() is None]
    wanted = None if only is None else set(only)
    if not cases or (wanted is not None and not wanted & {c.case_id for c in cases}):
        return 0
    art = [CaseArtifacts(store, c.case_id) for c in cases]
    originals = [a.array("original") for a in art]
    patients = [(a.json("identity") or {}).get("patient", c.case_id) for a, c in zip(art, cases)]
    n_patients = len(set(patients))
    picked = [k for k, c in enumerate(cases) if wanted is None or c.case_id in wanted]
    synthetic = [art[k].array("synthetic") for k in picked]
    own = [originals[k] for k in picked]
    similarity = scorers.reid.similarity(own, synthetic)
    from ..scoring.reid import rank_of_own

    names_, best = scorers.reid.patient_best(synthetic, originals, patients)
    own_columns = scorers.reid.own_columns(names_, [patients[k] for k in picked])
    ranks = rank_of_own(best, own_columns)
    digest = scorers.reid.digest
    agreement = scorers.pathology.agreement(own, synthetic)
    names = scorers.pathology.label_names
    thresholds = [float(t) for t in scorers.pathology.thresholds]
    for n, k in enumerate(picked):
        privacy = None if n_patients < 2 else float((ranks[n] - 1) / (n_patients - 1))
        compared = compare_findings(names, agreement["original"][n], agreement["synthetic"][n],
                                    thresholds)
        utility = compared["utility"]
        details = {
            "reid_similarity": round(float(similarity[n]), 4),
            "reid_rank": int(ranks[n]), "gallery_patients": n_patients,
            **reid_probability(art[k], best[n], int(own_columns[n]), n_patients, digest),
            "pathology_mean_abs_difference": round(float(agreement["mean_abs_difference"][n]), 4),
            "pathology_original": _rounded(names, agreement["original"][n]),
            "pathology_synthetic": _rounded(names, agreement["synthetic"][n]),
            "privacy": None if privacy is None else round(privacy, 4),
            "utility": round(utility, 4),
            "label_agreement": round(float(agreement["label_agreement"][n]), 4),
            **compared,
        }
        store.set_scores(cases[k].case_id, privacy=privacy, utility=utility)
        put_json(store, cases[k].case_id, "scores", details,
                 {"scorers": str(scorers.path), "package": __version__})
        if progress:
            progress(n + 1, len(picked))
    return len(picked)


def reid_probability(artifacts: CaseArtifacts, best, own: int, patients: int,
                     digest: str) -> dict:
    """The calibrated re-identification probability of one case (see the module's
    description), with chance and what it rests on; None, with the reason, when the filter's
    card has no calibration for these scorers or the gallery holds one patient."""
    record = artifacts.json("image_risk")
    calibration = record.get("privacy_calibration") if isinstance(record, dict) else None
    chance = round(1.0 / patients, 4) if patients else None
    if patients < 2:
        return {"reid_probability": None, "reid_chance": chance,
                "reid_probability_basis": "a gallery of one patient"}
    if not isinstance(calibration, dict) or calibration.get("scorers") != digest:
        return {"reid_probability": None, "reid_chance": chance,
                "reid_probability_basis": "not calibrated for these scorers (updp "
                                          "evaluate-filter --record-risk)"}
    import numpy as np

    from ..core.metrics import softmax_own

    p = float(softmax_own(np.asarray(best)[None, :], [own], float(calibration["temperature"]))[0])
    held = calibration.get("heldout") or {}
    basis = (f"softmax at temperature {calibration['temperature']:g}, calibrated on "
             f"{calibration.get('pairs')} counterparts of {calibration.get('patients')} patients"
             + (f" (held-out calibration error {held['calibration_error']:.3f})"
                if held.get("calibration_error") is not None else ""))
    return {"reid_probability": round(p, 4), "reid_chance": chance,
            "reid_probability_basis": basis}


def _rounded(names, values) -> dict[str, float]:
    return {name: round(float(v), 4) for name, v in zip(names, values)}


def compare_findings(names, original, synthetic, thresholds) -> dict:
    """Finding by finding, the original's and the counterpart's probability and calls:
    ``findings`` (name -> original, counterpart, state), ``kept``, ``lost``, ``added``,
    ``moved`` (names), ``utility`` (kept / (kept + lost + added); 1 when nothing is called)
    and a one-line ``verdict``."""
    findings, groups = {}, {"kept": [], "lost": [], "added": [], "moved": []}
    for name, p, q, t in zip(names, original, synthetic, thresholds):
        p, q = float(p), float(q)
        before, after = p >= t, q >= t
        state = ("kept" if after else "lost") if before else ("added" if after else "absent")
        if state in ("kept", "absent") and abs(q - p) > MOVED:
            groups["moved"].append(name)
            state = f"{state}, moved"
        if state in groups:
            groups[state].append(name)
        elif state.startswith("kept"):
            groups["kept"].append(name)
        findings[name] = {"original": round(p, 4), "counterpart": round(q, 4),
                          "threshold": round(t, 4), "state": state}
    called = len(groups["kept"]) + len(groups["lost"]) + len(groups["added"])
    utility = 1.0 if called == 0 else len(groups["kept"]) / called
    if not groups["lost"] and not groups["added"]:
        verdict = f"all {len(findings)} findings agree" + (
            f" ({', '.join(groups['kept'])} kept)" if groups["kept"] else " (none called)")
    else:
        verdict = "; ".join([f"{n} lost" for n in groups["lost"]]
                            + [f"{n} added (new positive)" for n in groups["added"]])
    if groups["moved"]:
        verdict += f"; {', '.join(groups['moved'])} moved by more than {MOVED:g}"
    return {"findings": findings, **groups, "utility": utility, "verdict": verdict}
