"""An adversary who trains on what was shared: a re-identification network trained only on a
share's counterparts, grouped by the keyed patient IDs their headers carry, then used to
find patients from their original radiographs (``updp attack-share``).

A real adversary can run the public pipeline and read a package's headers: the package
tells which counterparts belong to one (pseudonymous) patient. The network is the project's
own verifier (``scoring.reid.train_reid``), trained on the counterparts of half the
patients; the other half is attacked: each of their originals (the adversary's own image of
a person, from elsewhere) is ranked against those patients' counterparts (closed set:
top-1, chance 1 / patients), and every original–counterpart pair is scored same or
different patient (verification AUC, chance 0.5). The workspace holds both the
counterparts as they are shared and the originals the attack is measured with.

With ``with_originals`` the adversary is stronger: it holds radiographs of its training
patients and ran the public pipeline on them, so it trains on each of their originals and
counterparts as one identity, and learns what of a person survives the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..core.errors import InputError


def share_attack(workspace: str | os.PathLike, *, accepted_only: bool = False,
                 train_share: float = 0.5, steps: int = 600, input_size: int = 64,
                 with_originals: bool = False, cohort: str | os.PathLike | None = None,
                 seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Train on the counterparts of ``train_share`` of the workspace's patients (drawn with
    ``seed``; with ``with_originals`` on their originals too), attack the others (see the
    module's description); ``accepted_only`` keeps the accepted cases alone (what an export
    shares). With the ``cohort`` the workspace was made from, the figures are given per
    finding too (its ground truth is read for that split only). Returns the figures, with
    chance."""
    from ..core.metrics import roc_auc, top_k_accuracy
    from ..review.artifacts import CaseArtifacts
    from ..review.store import ReviewStore
    from ..scoring.reid import rank_of_own, train_reid

    if not 0.0 < float(train_share) < 1.0:
        raise InputError(f"train_share must lie between 0 and 1, not {train_share}")
    originals, counterparts, patients, case_ids = [], [], [], []
    with ReviewStore.open(workspace) as store:
        findings_of = _cohort_findings(cohort, store) if cohort is not None else None
        for case in store.cases(status="accepted" if accepted_only else None):
            art = CaseArtifacts(store, case.case_id)
            if "synthetic" not in case.artifacts or art.out_of_domain() is not None:
                continue
            identity = art.json("identity") or {}
            original, synthetic = art.array("original"), art.array("synthetic")
            if original is None or synthetic is None or not identity.get("patient"):
                continue
            originals.append(original)
            counterparts.append(synthetic)
            patients.append(identity["patient"])
            case_ids.append(case.case_id)
    people = sorted(set(patients))
    if len(people) < 4:
        raise InputError(f"{workspace}: the attack needs counterparts of at least 4 patients "
                         f"(found {len(people)})")
    order = np.random.default_rng(seed).permutation(len(people))
    cut = min(len(people) - 2, max(2, int(round(train_share * len(people)))))
    trained = {people[k] for k in order[:cut]}
    patients = np.asarray(patients)
    train = np.array([p in trained for p in patients])
    if len({p for p in patients[train]}) < 2 or (~train).sum() < 2:
        raise InputError(f"{workspace}: too few counterparts to train and attack")
    rows = np.flatnonzero(train)
    images = [counterparts[k] for k in rows] + ([originals[k] for k in rows] if with_originals else [])
    labels = np.concatenate([patients[train]] * (2 if with_originals else 1))
    scorer = train_reid(np.stack(images), labels, input_size=input_size, steps=steps, seed=seed,
                        progress=progress)
    test = np.flatnonzero(~train)
    test_patients = patients[test]
    queries = [originals[k] for k in test]
    gallery = [counterparts[k] for k in test]
    names, best = scorer.patient_best(queries, gallery, test_patients)
    ranks = rank_of_own(best, scorer.own_columns(names, test_patients))
    # Verification: every original against every counterpart of the attacked patients.
    sim = scorer.similarity_matrix(queries, gallery)
    same = test_patients[:, None] == test_patients[None, :]
    attacked = len(set(test_patients.tolist()))
    per_finding = None
    if findings_of is not None:
        held = [findings_of.get(case_ids[k]) for k in test]
        per_finding = _per_finding(held, ranks, sim, same, attacked)
    return {
        "attack": ("verifier trained on its own patients' originals and their counterparts "
                   "(the public pipeline run by the adversary), used on the originals"
                   if with_originals else
                   "verifier trained on the share's counterparts (grouped by keyed patient "
                   "ID), used on the originals"),
        "trained_on": {"patients": len(trained), "counterparts": int(train.sum()),
                       "originals": int(train.sum()) if with_originals else 0,
                       "steps": steps, "input_size": input_size},
        "attacked": {"patients": attacked, "originals": int(len(test))},
        "top1": round(top_k_accuracy(ranks, 1), 4),
        "chance": round(1.0 / attacked, 4),
        "top1_over_chance": round(top_k_accuracy(ranks, 1) * attacked, 2),
        "verification_auc": round(float(roc_auc(sim.ravel(), same.ravel())), 4),
        "seed": seed, "accepted_only": accepted_only,
        **({"per_finding": per_finding} if per_finding is not None else {}),
    }


def _cohort_findings(cohort: str | os.PathLike, store) -> dict[str, frozenset[str]]:
    """case id -> the findings the cohort's ground truth gives its study."""
    from pathlib import Path

    from ..cohort.generate import read_ground_truth
    from ..ingest import quiet_pydicom
    from .utility import study_case_id

    cohort = Path(cohort)
    quiet_pydicom()
    return {study_case_id(cohort, rec, store):
            frozenset(f for f, v in rec.get("labels", {}).items() if v)
            for rec in read_ground_truth(cohort)}


def _per_finding(held: list, ranks: np.ndarray, sim: np.ndarray, same: np.ndarray,
                 attacked: int) -> dict:
    """Top-1 and verification AUC over the attacked originals of each finding, of studies
    with any finding and of normal ones (originals the cohort does not know are left out)."""
    from ..core.metrics import roc_auc, top_k_accuracy

    names = sorted({f for h in held if h for f in h})
    groups = {"with findings": [bool(h) for h in held],
              "normal": [h is not None and not h for h in held],
              **{f: [bool(h) and f in h for h in held] for f in names}}
    out = {}
    for name, rows in groups.items():
        rows = np.asarray(rows, bool)
        if not rows.any():
            continue
        pairs, labels = sim[rows].ravel(), same[rows].ravel()
        auc = roc_auc(pairs, labels) if 0 < labels.sum() < len(labels) else None
        out[name] = {"originals": int(rows.sum()), "top1": round(top_k_accuracy(ranks[rows], 1), 4),
                     "chance": round(1.0 / attacked, 4),
                     "verification_auc": None if auc is None else round(float(auc), 4)}
    return out
