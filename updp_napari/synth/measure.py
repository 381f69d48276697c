"""How private and how faithful the filter is on a cohort: an identity proxy and region SSIM.

Until a re-identification model is at hand, identity is measured by Pearson correlation at
128 pixels (``PROXY_SIZE``), the way a template-matching attacker would: every synthetic
image is compared with its own original, and used as a query against a gallery of every
*other* original study of the cohort.

* ``self``: correlation of synthetic and original, beside the levels of two originals of the
  same patient, of different patients, and of different patients of the same site (a
  patient's studies all come from one site, and sites differ in exposure and framing, so
  the last is the fair "stranger" level for an image that keeps its site's look);
* ``top1``: share of queries whose best-matching gallery image is of the same patient (for
  the originals themselves: how well the proxy re-identifies before filtering);
* ``margin``: mean correlation with the patient's other studies minus that with other
  patients' studies of the same site: about 0 when the image says nothing of the patient.

Fidelity is SSIM (scikit-image) at the input's resolution, averaged inside the preserve
mask and outside it.

Run: ``python -m updp_napari.synth.measure COHORT [--model DIR] [--strengths 0.6,0.8,1]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import UpdpError

PROXY_SIZE = 128


def _unit_rows(images: np.ndarray) -> np.ndarray:
    from . import masks as mk

    rows = np.stack([mk.resize(im, (PROXY_SIZE, PROXY_SIZE)) for im in images]).reshape(len(images), -1)
    rows = rows.astype(np.float64) - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def identity_levels(originals: np.ndarray, patients, sites) -> dict:
    """Correlation levels among the originals, and the proxy's re-identification of them."""
    z = _unit_rows(originals)
    corr = z @ z.T
    p, s = np.asarray(patients), np.asarray(sites)
    eye = np.eye(len(p), dtype=bool)
    same = (p[:, None] == p[None]) & ~eye
    other = p[:, None] != p[None]
    same_site = other & (s[:, None] == s[None])
    ranked = np.where(eye, -np.inf, corr)
    has_mate = same.any(axis=1)
    top1 = float(np.mean((p[ranked.argmax(axis=1)] == p)[has_mate])) if has_mate.any() else None
    def mean(where):
        return round(float(corr[where].mean()), 4) if where.any() else None

    return {"same_patient": mean(same), "different_patient": mean(other),
            "different_patient_same_site": mean(same_site),
            "top1": None if top1 is None else round(top1, 4),
            "margin": _margin(corr, same, same_site)}


def _margin(corr: np.ndarray, same: np.ndarray, same_site: np.ndarray) -> float | None:
    rows = [corr[i, same[i]].mean() - corr[i, same_site[i]].mean()
            for i in range(len(corr)) if same[i].any() and same_site[i].any()]
    return round(float(np.mean(rows)), 4) if rows else None


def identity_of(synthetic: np.ndarray, originals: np.ndarray, patients, sites) -> dict:
    """The proxy for synthetic images ``synthetic[i]`` made from ``originals[i]``."""
    zs, zo = _unit_rows(synthetic), _unit_rows(originals)
    corr = zs @ zo.T            # query i against gallery j
    p, s = np.asarray(patients), np.asarray(sites)
    eye = np.eye(len(p), dtype=bool)
    same = (p[:, None] == p[None]) & ~eye
    same_site = (p[:, None] != p[None]) & (s[:, None] == s[None])
    ranked = np.where(eye, -np.inf, corr)   # the original itself is not in the gallery
    has_mate = same.any(axis=1)
    top1 = float(np.mean((p[ranked.argmax(axis=1)] == p)[has_mate])) if has_mate.any() else None
    return {"self": round(float(np.mean(np.diag(corr))), 4),
            "top1": None if top1 is None else round(top1, 4),
            "margin": _margin(corr, same, same_site)}


def region_ssim(original: np.ndarray, synthetic: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Mean SSIM inside ``region`` and outside it (NaN where a side is empty)."""
    from skimage.metrics import structural_similarity

    _, ssim_map = structural_similarity(original, synthetic, data_range=1.0, full=True)
    inside = float(ssim_map[region].mean()) if region.any() else float("nan")
    outside = float(ssim_map[~region].mean()) if (~region).any() else float("nan")
    return inside, outside


def measure(cohort, model=None, strengths=(0.6, 0.8, 1.0), steps=None, dilation=None, seed=0,
            limit: int | None = None, size: int = 256, progress=None) -> dict:
    """The identity proxy and region SSIM of the filter at each strength, on ``cohort``."""
    from ..cohort.dataset import load_cohort_images
    from .filter import GenerativeFilter

    data = load_cohort_images(cohort, size)
    if limit:
        data = data.subset(np.arange(min(limit, len(data))))
    filt = GenerativeFilter.load(model)
    result = {"cohort": str(cohort), "images": len(data), "patients": len(set(data.patients)),
              "size": size, "proxy_size": PROXY_SIZE,
              "steps": filt.default_steps if steps is None else steps,
              "dilation": filt.default_dilation if dilation is None else dilation,
              "eta": filt.default_eta,
              "originals": identity_levels(data.images, data.patients, data.sites), "strengths": {}}
    preserve = data.preserve
    for strength in strengths:
        outputs, seconds = [], []
        for i in range(len(data)):
            start = time.perf_counter()
            outputs.append(filt.synthesize(data.images[i], preserve[i], data.text_boxes[i],
                                           strength=strength, steps=steps, dilation=dilation,
                                           seed=seed + i))
            seconds.append(time.perf_counter() - start)
            if progress:
                progress(i + 1, len(data))
        synthetic = np.stack(outputs)
        inside, outside = zip(*(region_ssim(o, s, m & ~t) for o, s, m, t in
                                zip(data.images, synthetic, preserve, data.text_boxes)))
        inside = [v for v in inside if not np.isnan(v)]
        entry = identity_of(synthetic, data.images, data.patients, data.sites)
        entry.update(ssim_inside=round(float(np.mean(inside)), 4) if inside else None,
                     ssim_outside=round(float(np.mean(outside)), 4),
                     images_with_findings=len(inside),
                     median_seconds=round(statistics.median(seconds), 3))
        result["strengths"][f"{strength:g}"] = entry
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m updp_napari.synth.measure",
        description="Identity proxy and preserve-region SSIM of the generative filter on a "
                    "cohort made by updp make-cohort, at several strengths (JSON).")
    parser.add_argument("cohort", type=Path)
    parser.add_argument("--model", metavar="DIR", help="filter folder (default: the shipped one)")
    parser.add_argument("--strengths", default="0.6,0.8,1", help="comma list (default 0.6,0.8,1)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    parser.add_argument("--dilation", type=float, help="preserve-mask growth, share of the side")
    parser.add_argument("--limit", type=int, help="only the first N studies")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", metavar="OUT.json", help="also write the result here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        strengths = [float(s) for s in args.strengths.split(",")]
    except ValueError:
        parser.error(f"--strengths: not a comma list of numbers: {args.strengths!r}")
    try:
        result = measure(args.cohort, args.model, strengths, args.steps, args.dilation, limit=args.limit)
    except UpdpError as exc:
        print(f"measure: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def region_noise_auc(image: np.ndarray, region: np.ndarray, window: int = 9) -> float | None:
    """How well the local spread of fine noise tells the kept region from the rest of one
    counterpart: the AUC of the local standard deviation of the high-pass residual, inside the
    region against outside (0.5: no tell; far from 0.5 either way: the region shows). None
    when the region is empty or the whole image."""
    from scipy import ndimage

    from .masks import blur

    region = np.asarray(region, bool)
    if not region.any() or region.all():
        return None
    x = np.asarray(image, np.float32)
    residual = x - blur(x, 1.0)
    mean = ndimage.uniform_filter(residual, window)
    local = np.sqrt(np.maximum(ndimage.uniform_filter(residual * residual, window) - mean * mean, 0))
    # Away from the border between them, so the window sees one side only.
    inner = ndimage.binary_erosion(region, iterations=window)
    outer = ~ndimage.binary_dilation(region, iterations=window)
    if not inner.any() or not outer.any():
        return None
    return _auc(local[inner], local[outer])


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties half)."""
    from scipy.stats import rankdata

    scores = np.concatenate([positive, negative])
    ranks = rankdata(scores)
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def region_attack(originals: np.ndarray, synthetic: np.ndarray, preserve: np.ndarray,
                  patients, labels: np.ndarray | None = None,
                  label_names: tuple[str, ...] = (), min_area: int = 64) -> dict:
    """An attacker who holds the hospital's other studies and looks only at the kept region:
    each counterpart's region (its bounding box) is matched, at the same place, against every
    *other* original study, by Pearson correlation of the pixels as they are, low-passed
    (outline and density) and high-passed (texture); the strongest of the three is reported.

    Returns closed-set top-1 (the best-matching other study is one of the same patient)
    against chance (one over the patients with another study), the same/different-patient
    verification AUC over all pairs, both for every counterpart with a region, and top-1 per
    finding. A copy of the patient's pixels shows here even where a whole-image verifier
    sees a stranger."""
    from .masks import blur

    p = np.asarray(patients)
    n = len(p)
    has_mate = np.array([(p == p[i]).sum() > 1 for i in range(n)])
    queries = [i for i in range(n) if preserve[i].sum() >= min_area and has_mate[i]]
    if not queries:
        return {"queries": 0}
    views = {"pixels": lambda x: x, "low-pass": lambda x: blur(x, 3.0),
             "high-pass": lambda x: x - blur(x, 1.0)}
    results = {}
    for name, view in views.items():
        seen_o = np.stack([view(np.asarray(o, np.float32)) for o in originals])
        hits, same, other = [], [], []
        for i in queries:
            rows, cols = np.nonzero(preserve[i])
            box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
            q = view(np.asarray(synthetic[i], np.float32))[box].ravel()
            g = seen_o[:, box[0], box[1]].reshape(n, -1)
            score = _row_correlation(q, g)
            score[i] = -np.inf  # not its own original: the attacker has the other studies
            hits.append(p[int(np.argmax(score))] == p[i])
            mates = (p == p[i]) & (np.arange(n) != i)
            same += list(score[mates])
            other += list(score[p != p[i]])
        results[name] = {"top1": float(np.mean(hits)), "hits": hits,
                         "auc": _auc(np.array(same), np.array(other))}
    strongest = max(results, key=lambda k: (results[k]["top1"], results[k]["auc"]))
    best = results[strongest]
    patients_with_mate = len({p[i] for i in range(n) if has_mate[i]})
    out = {"queries": len(queries), "attack": strongest, "top1": round(best["top1"], 4),
           "chance": round(1.0 / max(patients_with_mate, 1), 4),
           "verification_auc": round(best["auc"], 4),
           "by_view": {k: {"top1": round(v["top1"], 4), "verification_auc": round(v["auc"], 4)}
                       for k, v in results.items()}}
    if labels is not None and label_names:
        per = {}
        for j, label in enumerate(label_names):
            picked = [h for h, i in zip(best["hits"], queries) if labels[i][j]]
            if picked:
                per[label] = {"queries": len(picked), "top1": round(float(np.mean(picked)), 4)}
        out["per_finding"] = per
    return out


def _row_correlation(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``q`` with each row of ``g``."""
    q = q.astype(np.float64) - q.mean()
    g = g.astype(np.float64) - g.mean(axis=1, keepdims=True)
    den = np.sqrt((q * q).sum() * (g * g).sum(axis=1))
    return np.where(den > 0, (g @ q) / np.where(den > 0, den, 1.0), 0.0)


def conspicuity_shift(p_original: np.ndarray, p_synthetic: np.ndarray, labels: np.ndarray,
                      label_names: tuple[str, ...]) -> dict:
    """Per finding, how the pathology scorer's view of it moves from originals to their
    counterparts (``p_*`` [N, labels] probabilities, aligned; ``labels`` [N, labels]).

    Each finding gets the studies that have it and those that do not, the AUC on the
    originals and on the counterparts (None with one class only) and their difference
    (counterparts minus originals), the median and mean of the score shift (counterpart
    minus original) over the studies with the finding (``shift_positives``) and over those
    without (``shift_negatives``), and the share of positives whose counterpart scores
    higher than their original (0.5: no drift; near 1: findings made more conspicuous, near
    0: less)."""
    from ..core.metrics import roc_auc

    p_o = np.asarray(p_original, np.float64)
    p_s = np.asarray(p_synthetic, np.float64)
    y = np.asarray(labels) > 0
    if p_o.shape != p_s.shape or p_o.shape != y.shape:
        raise UpdpError(f"conspicuity: scores {p_o.shape} and {p_s.shape} and labels {y.shape} "
                        "must match")

    def shift(d):
        return {"median": round(float(np.median(d)), 4), "mean": round(float(np.mean(d)), 4)} \
            if len(d) else None

    out = {}
    for j, name in enumerate(label_names):
        pos = y[:, j]
        d = p_s[:, j] - p_o[:, j]
        both = pos.any() and not pos.all()
        auc_o = round(roc_auc(p_o[:, j], pos), 4) if both else None
        auc_s = round(roc_auc(p_s[:, j], pos), 4) if both else None
        out[name] = {
            "positives": int(pos.sum()), "negatives": int((~pos).sum()),
            "auc_original": auc_o, "auc_synthetic": auc_s,
            "auc_difference": None if auc_o is None else round(auc_s - auc_o, 4),
            "shift_positives": shift(d[pos]), "shift_negatives": shift(d[~pos]),
            "share_positives_higher": round(float(np.mean(d[pos] > 0)), 4) if pos.any() else None}
    return out


def specificity_thresholds(p_normal: np.ndarray, specificity: float = 0.95) -> np.ndarray:
    """Per column of ``p_normal`` [N, labels] (scores of studies without any finding), the
    lowest threshold at which at most ``1 - specificity`` of them score at or above it."""
    p = np.sort(np.asarray(p_normal, np.float64), axis=0)
    n = len(p)
    if n == 0:
        raise UpdpError("specificity thresholds need at least one normal study")
    allowed = int(np.floor((1.0 - specificity) * n + 1e-9))
    return np.nextafter(p[n - allowed - 1], np.inf)


def new_positive_rate(p_original: np.ndarray, p_synthetic: np.ndarray, labels: np.ndarray,
                      label_names: tuple[str, ...], thresholds=None) -> dict:
    """Among the normal studies (no finding label), the share whose counterpart is called
    positive for a finding its original is not called positive for: a finding the filter
    drew in. A call is a score at or above the finding's threshold: ``thresholds`` (the
    scorer's operating points) when given, otherwise the one of 95 % specificity on the
    normal originals (:func:`specificity_thresholds`).

    Returns ``rate``, ``count``, ``normal_studies``, the thresholds and where they come from,
    new calls per finding, and for reference the share of normal originals already called
    positive for something and the share of normal studies that lose a call."""
    p_o = np.asarray(p_original, np.float64)
    p_s = np.asarray(p_synthetic, np.float64)
    normal = ~(np.asarray(labels) > 0).any(axis=1)
    out: dict = {"normal_studies": int(normal.sum())}
    if not normal.any():
        return {**out, "rate": None, "count": 0, "thresholds_from": None}
    if thresholds is None:
        t = specificity_thresholds(p_o[normal])
        source = "95 % specificity on the normal originals"
    else:
        t = np.asarray(thresholds, np.float64)
        source = "scorer"
    called_o, called_s = p_o[normal] >= t, p_s[normal] >= t
    new = called_s & ~called_o
    lost = called_o & ~called_s
    return {**out, "rate": round(float(new.any(axis=1).mean()), 4), "count": int(new.any(axis=1).sum()),
            "thresholds_from": source,
            "thresholds": {name: round(float(v), 4) for name, v in zip(label_names, t)},
            "per_finding": {name: int(new[:, j].sum()) for j, name in enumerate(label_names)},
            "original_positive_rate": round(float(called_o.any(axis=1).mean()), 4),
            "lost_positive_rate": round(float(lost.any(axis=1).mean()), 4)}
