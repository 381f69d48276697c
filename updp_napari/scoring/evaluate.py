"""The scorers' figures on a set of studies: how well identity and findings are recognised.

``evaluate_scorers`` is what ``updp train-scorers`` reports on its held-out patients and
what ``updp eval-scorers`` reports on any cohort; the privacy–utility evaluation of the
generative filter calls it with the synthetic counterparts of the same studies.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..core.errors import InputError
from ..core.metrics import equal_error_rate, pair_targets, roc_auc, top_k_accuracy


def gallery_split(patients, studies) -> tuple[np.ndarray, np.ndarray]:
    """Closed-set protocol: each patient's first study (by study id) is the gallery, the
    others are queries. Returns ``(gallery_index, query_index)``; patients with one study
    are gallery only (distractors)."""
    patients, studies = np.asarray(patients), np.asarray(studies)
    first = {}
    for k in np.lexsort((studies, patients)):
        first.setdefault(patients[k], k)
    gallery = np.array(sorted(first.values()), dtype=int)
    query = np.setdiff1d(np.arange(len(patients)), gallery)
    return gallery, query


def evaluate_scorers(data, scorers, synthetic: np.ndarray | None = None, size: int = 128,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Figures of ``scorers`` (from ``load_scorers``) on ``data``: a ``CohortImages`` or a
    cohort folder (read at ``size``).

    ``reid``: verification AUC over all pairs (same patient vs not), the same over pairs
    taken at one site only (the site's look cannot help there), equal error rate,
    closed-set top-1 / top-5 (see ``gallery_split``). ``pathology``: AUC per label (None
    where the studies show one class), macro AUC, labels skipped.

    ``synthetic`` [N, H, W], aligned with the studies, adds ``synthetic``: the same
    pathology AUCs on the synthetic images and their agreement with the originals; the
    re-identification of each synthetic image against the patient's *other* original
    studies (closed-set top-1 with the originals of the first studies as gallery, and
    verification AUC of synthetic-vs-original pairs of other studies).
    """
    if isinstance(data, (str, os.PathLike)):
        from ..cohort.dataset import load_cohort_images

        data = load_cohort_images(data, size)
    if len(data) < 2:
        raise InputError("evaluation needs at least two studies")
    steps = 2 + (synthetic is not None)
    result = {"studies": len(data), "patients": len(set(data.patients)),
              "reid": _reid_figures(scorers.reid, data)}
    if progress:
        progress(1, steps)
    result["pathology"] = _pathology_figures(scorers.pathology, data.images, data.labels)
    if progress:
        progress(2, steps)
    if synthetic is not None:
        synthetic = np.asarray(synthetic)
        if len(synthetic) != len(data):
            raise InputError(f"synthetic holds {len(synthetic)} images for {len(data)} studies")
        result["synthetic"] = synthetic_figures(scorers, data, synthetic)
        if progress:
            progress(3, steps)
    return result


def _reid_figures(reid, data) -> dict:
    patients = np.asarray(data.patients)
    sites = np.asarray(data.sites)
    embeddings = reid.embed(data.images)
    sim = embeddings @ embeddings.T
    i, j, same = pair_targets(patients)
    out = {"pairs": int(len(i)), "same_patient_pairs": int(same.sum())}
    if same.any() and not same.all():
        scores = sim[i, j]
        out["verification_auc"] = round(roc_auc(scores, same), 4)
        out["equal_error_rate"] = round(equal_error_rate(scores, same), 4)
        out["mean_similarity_same"] = round(float(scores[same].mean()), 4)
        out["mean_similarity_other"] = round(float(scores[~same].mean()), 4)
        one_site = sites[i] == sites[j]
        if same[one_site].any() and not same[one_site].all():
            out["verification_auc_same_site"] = round(roc_auc(scores[one_site], same[one_site]), 4)
    gallery, query = gallery_split(patients, data.studies)
    if len(query):
        ranks = reid.closed_set_rank(data.images[query], data.images[gallery], patients[gallery],
                                     patients[query])
        out["closed_set_queries"] = int(len(query))
        out["closed_set_gallery_patients"] = int(len(gallery))
        out["closed_set_top1"] = round(top_k_accuracy(ranks, 1), 4)
        out["closed_set_top5"] = round(top_k_accuracy(ranks, 5), 4)
    return out


def _pathology_figures(pathology, images, labels) -> dict:
    probs = pathology.predict(images)
    per_label = pathology.auc_per_label(images, labels, probabilities=probs)
    predicted = probs >= pathology.thresholds
    return {"auc": per_label, "macro_auc": pathology.macro_auc(per_label),
            "skipped_labels": pathology.skipped_labels(per_label),
            "accuracy": round(float((predicted == (np.asarray(labels) > 0)).mean()), 4)}


def synthetic_figures(scorers, data, synthetic) -> dict:
    """The ``synthetic`` part of :func:`evaluate_scorers` alone (the originals' own figures
    are not computed again)."""
    patients = np.asarray(data.patients)
    out = {"pathology": _pathology_figures(scorers.pathology, synthetic, data.labels)}
    agreement = scorers.pathology.agreement(data.images, synthetic)
    out["pathology"]["label_agreement"] = round(float(agreement["label_agreement"].mean()), 4)
    out["pathology"]["mean_abs_difference"] = round(float(agreement["mean_abs_difference"].mean()), 4)
    reid = scorers.reid
    e_orig, e_syn = reid.embed(data.images), reid.embed(synthetic)
    out["reid"] = {"mean_similarity_to_own_original": round(float(np.sum(e_orig * e_syn, 1).mean()), 4)}
    sim = e_syn @ e_orig.T
    # Every synthetic image against every original, its own study included: the strictest
    # view, since the own original shares the very acquisition.
    same_all = patients[:, None] == patients[None]
    if same_all.any() and not same_all.all():
        out["reid"]["verification_auc_vs_originals"] = round(roc_auc(sim.ravel(), same_all.ravel()), 4)
    # The attacker holds the patient's other studies: own-study pairs are left out.
    other_study = ~np.eye(len(patients), dtype=bool)
    same = (patients[:, None] == patients[None]) & other_study
    if same.any() and not same[other_study].all():
        out["reid"]["verification_auc_vs_other_originals"] = round(
            roc_auc(sim[other_study], same[other_study]), 4)
    gallery, query = gallery_split(patients, data.studies)
    if len(query):
        ranks = reid.closed_set_rank(synthetic[query], data.images[gallery], patients[gallery],
                                     patients[query])
        out["reid"]["closed_set_top1"] = round(top_k_accuracy(ranks, 1), 4)
    return out
