"""Privacy–utility evaluation of the generative filter: ``updp evaluate-filter``.

For each strength the filter makes a counterpart of every study of a cohort; the scorers
(``updp_napari.scoring``) then say how well the patient is still recognised and how well the
findings still are:

* re-identification: verification AUC over pairs of originals (the cohort's identity level),
  over synthetic-vs-original pairs (every synthetic image against every original, its own
  included) and over synthetic-vs-other-originals (the attacker holds the patient's other
  studies); closed-set top-1 of the originals and of the synthetic images;
* pathology: macro AUC on the originals and on the synthetic images, and the share of
  labels on which the classifier's calls agree;
* fidelity: SSIM inside the preserve mask (findings, burned-in text excluded) and outside it;
* realism (``updp_napari.synth.realism``): how well classifiers trained to tell counterparts
  from originals do it, out-of-fold AUC with folds grouped by patient;
* conspicuity per finding: the pathology AUC on originals and counterparts, their difference,
  and how the scores move from each original to its counterpart;
* new positives: the share of normal studies whose counterpart the pathology scorer calls
  positive for a finding it does not call on the original.

The top-level keys are the figures at the filter's default strength; ``curve`` holds one
entry per strength.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..core.errors import InputError, UpdpError

# The targets, reported beside the figures (never used to change them).
TARGETS = {"reid_auc_original_min": 0.95, "reid_auc_synthetic_max": 0.60,
           "pathology_auc_gap_max": 0.02, "region_noise_auc_max": 0.60,
           "realism_auc_max": 0.75, "conspicuity_auc_shift_max": 0.03,
           "new_positive_rate_max": 0.02}


def parse_strengths(text: str, what: str = "strengths") -> list[float]:
    """A comma list of strengths (``"0.2,0.4"``); ``what`` names it in the message."""
    try:
        strengths = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what}: not a comma list of numbers") from None
    if not strengths:
        raise InputError(f"{what}: give at least one strength")
    return strengths


def evaluate_filter(cohort: str | os.PathLike, model=None, scorers=None,
                    strengths: Sequence[float] = (0.2, 0.4, 0.6, 0.8), *, steps: int | None = None,
                    dilation: float | None = None, eta: float | None = None, seed: int = 0,
                    limit: int | None = None, size: int = 256, batch_size: int = 8,
                    progress: Callable[[str, int, int], None] | None = None,
                    realism_cnn: bool = True) -> dict:
    """Evaluate the filter in ``model`` (a folder; None: the shipped one) with the scorers in
    ``scorers`` (a folder; None: the shipped ones) on a cohort made by ``updp make-cohort``.

    The filter's default strength is always evaluated, added to ``strengths`` when missing.
    ``progress(stage, done, total)`` reports reading, each strength's synthesis, and the
    realism test. ``realism_cnn`` False leaves the CNN out of the realism test (the logistic
    regression on handcrafted features alone).
    """
    from ..cohort.dataset import load_cohort_images
    from ..scoring import load_scorers
    from ..scoring.evaluate import evaluate_scorers, synthetic_figures
    from .filter import GenerativeFilter
    from .measure import conspicuity_shift, new_positive_rate, region_attack, region_noise_auc, region_ssim
    from .realism import realism_test

    strengths = sorted({float(s) for s in strengths})
    if any(not 0.0 < s <= 1.0 for s in strengths):
        raise InputError(f"strengths must lie in (0, 1], got {', '.join(f'{s:g}' for s in strengths)}")
    filt = GenerativeFilter.load(model)
    filt.resolve_eta(eta)  # a bad value is refused before any work
    judges = load_scorers(scorers)
    default = filt.default_strength
    if default not in strengths:
        strengths = sorted(strengths + [default])
    data = load_cohort_images(cohort, size, progress=(lambda d, t: progress("read", d, t))
                              if progress else None)
    if limit:
        data = data.subset(np.arange(min(int(limit), len(data))))
    if len(set(data.patients)) < 2:
        raise InputError(f"{cohort}: evaluation needs studies of at least two patients")
    original = evaluate_scorers(data, judges)
    reid_o, path_o = original["reid"], original["pathology"]
    preserve = data.preserve
    seeds = [seed + i for i in range(len(data))]
    curve = []
    gap_interval = None
    region: dict = {}
    realism: dict = {}
    conspicuity: dict = {}
    new_positives: dict = {}
    calibration: dict = {}
    p_original = judges.pathology.predict(data.images)
    for strength in strengths:
        stage = f"strength {strength:g}"
        started = time.perf_counter()
        synthetic = np.stack(filt.synthesize_batch(
            list(data.images), list(preserve), list(data.text_boxes), seeds=seeds, strength=strength,
            steps=steps, dilation=dilation, eta=eta, batch_size=batch_size,
            progress=(lambda d, t, s=stage: progress(s, d, t)) if progress else None))
        seconds = (time.perf_counter() - started) / len(data)
        figures = synthetic_figures(judges, data, synthetic)
        if strength == default:
            p_synthetic = judges.pathology.predict(synthetic)
            gap_interval = _gap_interval(p_original, p_synthetic, data)
            conspicuity = conspicuity_shift(p_original, p_synthetic, data.labels, data.label_names)
            # The scorer's own operating points where it has them (scorers trained by this
            # package do); otherwise 95 % specificity on the normal originals.
            new_positives = new_positive_rate(p_original, p_synthetic, data.labels, data.label_names,
                                              judges.pathology.config.get("thresholds"))
            realism = realism_test(data.images, synthetic, data.patients, seed=seed, cnn=realism_cnn,
                                   progress=(lambda d, t: progress("realism", d, t))
                                   if progress else None)
            calibration = privacy_calibration(judges, data.images, synthetic, data.patients,
                                              seed=seed)
            # An adversary's view: the kept region alone, against the patients' other studies.
            region = region_attack(data.images, synthetic, preserve & ~data.text_boxes,
                                   data.patients, data.labels, data.label_names)
        inside, outside, tells = [], [], []
        for o, s, m, t in zip(data.images, synthetic, preserve, data.text_boxes):
            i, o_ = region_ssim(o, s, m & ~t)
            if not np.isnan(i):
                inside.append(i)
            outside.append(o_)
            # Can the kept region be found from the counterpart alone, by its noise? Either
            # way off 0.5 is a tell.
            auc = region_noise_auc(s, m & ~t)
            if auc is not None:
                tells.append(max(auc, 1.0 - auc))
        reid_s, path_s = figures["reid"], figures["pathology"]
        curve.append({
            "strength": strength,
            "reid_auc_synthetic": reid_s.get("verification_auc_vs_originals"),
            "reid_auc_synthetic_other_studies": reid_s.get("verification_auc_vs_other_originals"),
            "closed_set_top1_synthetic": reid_s.get("closed_set_top1"),
            "similarity_to_own_original": reid_s.get("mean_similarity_to_own_original"),
            "pathology_auc_synthetic": path_s.get("macro_auc"),
            "pathology_auc_per_label_synthetic": path_s.get("auc"),
            "pathology_label_agreement": path_s.get("label_agreement"),
            "ssim_inside": round(statistics.fmean(inside), 4) if inside else None,
            "ssim_outside": round(statistics.fmean(outside), 4),
            "region_noise_auc": round(statistics.fmean(tells), 4) if tells else None,
            "region_noise_auc_over_0_6": round(float(np.mean(np.array(tells) > 0.6)), 4)
            if tells else None,
            "seconds_per_image": round(seconds, 3),
        })
    at_default = next(c for c in curve if c["strength"] == default)
    signature = filt.signature(*filt.resolve_settings(default, steps, dilation), seed, eta)
    result = {
        "cohort": str(cohort), "studies": len(data), "patients": len(set(data.patients)),
        "size": size, "filter": signature,
        "scorers": str(judges.path) if judges.path else None,
        "default_strength": default,
        "reid_auc_original": reid_o.get("verification_auc"),
        "reid_auc_synthetic": at_default["reid_auc_synthetic"],
        "reid_auc_synthetic_other_studies": at_default["reid_auc_synthetic_other_studies"],
        "closed_set_top1_original": reid_o.get("closed_set_top1"),
        "closed_set_top1_synthetic": at_default["closed_set_top1_synthetic"],
        "pathology_auc_original": path_o.get("macro_auc"),
        "pathology_auc_synthetic": at_default["pathology_auc_synthetic"],
        "pathology_auc_per_label_original": path_o.get("auc"),
        "ssim_inside": at_default["ssim_inside"], "ssim_outside": at_default["ssim_outside"],
        "region_noise_auc": at_default["region_noise_auc"],
        "region_attack": region,
        "privacy_calibration": calibration,
        "pathology_auc_gap": gap_interval,
        "realism_auc": realism.get("auc"),
        "realism_auc_by_classifier": realism.get("by_classifier"),
        "realism": realism,
        "conspicuity": conspicuity,
        "new_positive_rate": new_positives.get("rate"),
        "new_positive_count": new_positives.get("count"),
        "normal_studies": new_positives.get("normal_studies"),
        "new_positives": new_positives,
        "curve": curve,
    }
    result["targets"] = _against_targets(result)
    return result


#: Fewer studies with a finding than this in the region attack: its risk is not measured.
RISK_MIN_QUERIES = 10


def risk_table(result: dict) -> dict:
    """The per-finding re-identification risk of a kept region, as the filter's card keeps
    it (``image_risk``) for the pipeline to judge each case by: a finding is shareable as an
    image when the region attack's top-1 on it is at most twice chance, over at least
    ``RISK_MIN_QUERIES`` studies with it; otherwise not (unmeasured is not safe)."""
    attack = result.get("region_attack") or {}
    chance = attack.get("chance")
    per = {}
    for name, rec in (attack.get("per_finding") or {}).items():
        top1, queries = rec.get("top1"), rec.get("queries", 0)
        ok = chance is not None and top1 is not None and queries >= RISK_MIN_QUERIES \
            and top1 <= 2 * chance
        per[name] = {"queries": queries, "top1": top1, "chance": chance,
                     "ratio": round(top1 / chance, 2) if chance and top1 is not None else None,
                     "shareable": bool(ok)}
    return {"limit": f"region attack top-1 <= 2 x chance over >= {RISK_MIN_QUERIES} studies",
            "attack": attack.get("attack"), "measured_on": _cohort_of(result["cohort"]),
            "studies": result.get("studies"), "per_finding": per}


def privacy_calibration(judges, originals, synthetic, patients, seed: int = 0) -> dict:
    """The workspace's privacy attack (each counterpart against every original, by its best
    similarity to each patient's, ``review.scores``) turned into a probability: the softmax
    temperature that makes the true patients most likely, fitted on these counterparts whose
    patients are known. Measured held out first: fitted on half the patients, tested on the
    other half and the other way round (calibration error of the top guess, mean probability
    of the true patient against the share re-identified)."""
    from ..core.metrics import calibration_error, fit_temperature, softmax_own

    names, best = judges.reid.patient_best(synthetic, originals, patients)
    own = judges.reid.own_columns(names, patients)
    people = sorted(set(patients))
    order = np.random.default_rng(seed).permutation(len(people))
    first = {people[i] for i in order[: len(people) // 2]}
    fold = np.array([p in first for p in patients])
    confidence, correct, truth = [], [], []
    for fit in (fold, ~fold):
        test = ~fit
        if not fit.any() or not test.any():
            continue
        t = fit_temperature(best[fit], own[fit])
        guess = np.argmax(best[test], axis=1)
        confidence.append(softmax_own(best[test], guess, t))
        correct.append(guess == own[test])
        truth.append(softmax_own(best[test], own[test], t))
    confidence, correct, truth = (np.concatenate(v) if v else np.array([])
                                  for v in (confidence, correct, truth))
    return {
        "attack": "counterpart against every original; best similarity per patient; softmax",
        "temperature": round(fit_temperature(best, own), 5),
        "scorers": judges.reid.digest,
        "pairs": int(len(best)), "patients": len(names), "chance": round(1.0 / len(names), 5),
        "heldout": {
            "top1": round(float(np.mean(correct)), 4) if len(correct) else None,
            "mean_probability_of_true_patient": round(float(np.mean(truth)), 4)
            if len(truth) else None,
            "mean_confidence_of_top_guess": round(float(np.mean(confidence)), 4)
            if len(confidence) else None,
            "calibration_error": round(calibration_error(confidence, correct), 4)
            if len(correct) else None,
            "folds": "2, grouped by patient"},
    }


def _cohort_of(folder) -> dict:
    from .domain import _folder_signature

    return _folder_signature(folder)


def record_risk(model, result: dict) -> dict:
    """Write :func:`risk_table` of ``result`` into the card of the filter folder ``model``
    (None: the shipped one); returns the table."""
    from .filter import SHIPPED_MODEL
    from .model import set_card_section

    table = risk_table(result)
    folder = SHIPPED_MODEL if model is None else model
    set_card_section(folder, "image_risk", table)
    if result.get("privacy_calibration"):
        set_card_section(folder, "privacy_calibration",
                         {**result["privacy_calibration"],
                          "measured_on": _cohort_of(result["cohort"])})
    return table


def _gap_interval(p_original, p_synthetic, data) -> dict | None:
    """The macro pathology AUC gap (originals minus synthetic, from the scorer's
    probabilities on each) with a 95 % interval from 2,000 bootstrap resamples of the
    patients (a patient's studies go together)."""
    from ..core.metrics import bootstrap_macro_auc_gap

    try:
        r = bootstrap_macro_auc_gap(p_original, p_synthetic, np.asarray(data.labels) > 0,
                                    data.patients)
    except UpdpError:  # no finding with both classes: no AUC, no gap
        return None
    return {"value": round(r["gap"], 4), "ci95": [round(r["low"], 4), round(r["high"], 4)],
            "resampled": "patients", "resamples": r["resamples"]}


def _against_targets(r: dict) -> dict:
    """Each target with the measured figure and whether it is met (None: not measurable)."""
    def check(value, ok):
        return {"value": value, "met": None if value is None else bool(ok(value))}

    measured = r.get("pathology_auc_gap") or {}
    attack = r.get("region_attack") or {}
    gap = measured.get("value")
    # Per finding, the AUC difference of counterparts from originals: the largest one, and
    # the findings beyond the bound either way.
    shifts = {name: c["auc_difference"] for name, c in (r.get("conspicuity") or {}).items()
              if c.get("auc_difference") is not None}
    largest = round(max(abs(v) for v in shifts.values()), 4) if shifts else None
    outside = sorted(name for name, v in shifts.items()
                     if abs(v) > TARGETS["conspicuity_auc_shift_max"])
    if gap is None and r["pathology_auc_original"] is not None and r["pathology_auc_synthetic"] is not None:
        gap = round(r["pathology_auc_original"] - r["pathology_auc_synthetic"], 4)
    return {
        "reid_auc_original >= 0.95": check(r["reid_auc_original"],
                                            lambda v: v >= TARGETS["reid_auc_original_min"]),
        "reid_auc_synthetic <= 0.60": check(r["reid_auc_synthetic"],
                                             lambda v: v <= TARGETS["reid_auc_synthetic_max"]),
        "pathology_auc drop <= 0.02": {
            **check(gap, lambda v: v <= TARGETS["pathology_auc_gap_max"]),
            "ci95": measured.get("ci95")},
        "region_noise_auc <= 0.60": check(r.get("region_noise_auc"),
                                           lambda v: v <= TARGETS["region_noise_auc_max"]),
        "region attack top-1 <= 2 x chance": {
            **check(attack.get("top1"), lambda v: v <= 2 * attack["chance"]),
            "chance": attack.get("chance")},
        "region attack AUC <= 0.60": check(attack.get("verification_auc"),
                                           lambda v: v <= TARGETS["reid_auc_synthetic_max"]),
        "realism AUC <= 0.75": {
            **check(r.get("realism_auc"), lambda v: v <= TARGETS["realism_auc_max"]),
            "by_classifier": r.get("realism_auc_by_classifier")},
        "per-finding AUC within 0.03": {
            **check(largest, lambda v: v <= TARGETS["conspicuity_auc_shift_max"]),
            "outside": outside},
        "new positives on normal studies <= 0.02": {
            **check(r.get("new_positive_rate"), lambda v: v <= TARGETS["new_positive_rate_max"]),
            "count": r.get("new_positive_count"), "normal_studies": r.get("normal_studies")},
    }


def summary_lines(r: dict) -> list[str]:
    """The result as a short table for the terminal."""
    def f(v):
        return "  n/a" if v is None else f"{v:5.3f}"

    lines = [f"{r['studies']} studies of {r['patients']} patients at {r['size']}px; "
             f"filter default strength {r['default_strength']:g}"
             + (f", {r['filter']['steps']} steps, dilation {r['filter']['dilation']:g}, eta "
                f"{r['filter']['eta']:g}" if "eta" in r.get("filter", {}) else ""),
             f"originals: re-id AUC {f(r['reid_auc_original'])}, closed-set top-1 "
             f"{f(r['closed_set_top1_original'])}, pathology macro AUC {f(r['pathology_auc_original'])}",
             "strength  reid AUC (all / other studies)  top-1  pathology AUC  agree  "
             "SSIM in / out  region tell  s/image"]
    for c in r["curve"]:
        lines.append(f"  {c['strength']:>5g}   {f(c['reid_auc_synthetic'])} / "
                     f"{f(c['reid_auc_synthetic_other_studies'])}             "
                     f"{f(c['closed_set_top1_synthetic'])}  {f(c['pathology_auc_synthetic'])}"
                     f"          {f(c['pathology_label_agreement'])}  {f(c['ssim_inside'])} / "
                     f"{f(c['ssim_outside'])}  {f(c.get('region_noise_auc'))}        "
                     f"{c['seconds_per_image']:.2f}")
    attack = r.get("region_attack") or {}
    if attack.get("queries"):
        lines.append(f"region attack ({attack['queries']} counterparts with a finding, the kept "
                     f"region against the other studies; {attack['attack']}): top-1 "
                     f"{f(attack['top1'])} (chance {f(attack['chance'])}), verification AUC "
                     f"{f(attack['verification_auc'])}")
    calibration = r.get("privacy_calibration") or {}
    if calibration.get("heldout"):
        held = calibration["heldout"]
        lines.append(f"privacy as a probability ({calibration['pairs']} counterparts, "
                     f"{calibration['patients']} patients, chance {f(calibration['chance']).strip()}): "
                     f"temperature {calibration['temperature']:.4f}; held out: true patient's mean "
                     f"probability {f(held['mean_probability_of_true_patient']).strip()}, top-1 "
                     f"{f(held['top1']).strip()}, top guess's confidence "
                     f"{f(held['mean_confidence_of_top_guess']).strip()}, calibration error "
                     f"{f(held['calibration_error']).strip()}")
    lines += _realism_lines(r, f)
    for name, t in r["targets"].items():
        state = "not measurable" if t["met"] is None else ("met" if t["met"] else "NOT met")
        beyond = f" (outside: {', '.join(t['outside'])})" if t.get("outside") else ""
        lines.append(f"target {name}: {f(t['value']).strip()}{interval_text(t.get('ci95'))} — "
                     f"{state}{beyond}")
    return lines


def _realism_lines(r: dict, f) -> list[str]:
    """The realism test, the conspicuity per finding and the new positives, at the default
    strength (nothing for a result without them)."""
    lines = []
    realism = r.get("realism") or {}
    if r.get("realism_auc") is not None:
        by = ", ".join(f"{k} {f(v).strip()}" for k, v in (r.get("realism_auc_by_classifier") or {}).items())
        lines.append(f"realism test (counterparts vs originals, {realism.get('folds', '?')} folds "
                     f"grouped by patient): AUC {f(r['realism_auc']).strip()} ({by})")
    conspicuity = r.get("conspicuity") or {}
    if conspicuity:
        lines.append("finding         pos  AUC orig / synth   diff   shift pos (median / mean)  "
                     "shift neg (median / mean)  pos higher")
        for name, c in conspicuity.items():
            sp, sn = c.get("shift_positives") or {}, c.get("shift_negatives") or {}
            diff = c.get("auc_difference")
            lines.append(f"  {name:<14}{c['positives']:>3}  {f(c.get('auc_original'))} / "
                         f"{f(c.get('auc_synthetic'))}  "
                         f"{'   n/a' if diff is None else f'{diff:+6.3f}'}   "
                         f"{_signed(sp.get('median'))} / {_signed(sp.get('mean'))}"
                         f"            {_signed(sn.get('median'))} / {_signed(sn.get('mean'))}"
                         f"            {f(c.get('share_positives_higher'))}")
    if r.get("normal_studies") is not None:
        source = (r.get("new_positives") or {}).get("thresholds_from")
        lines.append(f"new positives on normal studies: {r.get('new_positive_count')} of "
                     f"{r['normal_studies']} ({f(r.get('new_positive_rate')).strip()})"
                     + (f", thresholds: {source}" if source else ""))
    return lines


def _signed(v) -> str:
    return "   n/a" if v is None else f"{v:+6.3f}"


def interval_text(ci95) -> str:
    """A target's 95 % interval as printed beside its figure; "" when there is none (or the
    value read from an evaluation file is not a pair of numbers)."""
    if not (isinstance(ci95, (list, tuple)) and len(ci95) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ci95)):
        return ""
    return f" (95 % interval {ci95[0]:.3f} to {ci95[1]:.3f}, patients resampled)"


def plot_curve(r: dict, out: str | os.PathLike) -> None:
    """The privacy–utility curve as a PNG: AUCs against strength, and pathology AUC against
    re-identification AUC of the synthetic images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = r["curve"]
    s = [c["strength"] for c in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.plot(s, [c["reid_auc_synthetic"] for c in curve], "o-", color="tab:red",
              label="re-id AUC, synthetic vs originals")
    left.plot(s, [c["pathology_auc_synthetic"] for c in curve], "s-", color="tab:blue",
              label="pathology AUC, synthetic")
    if r["reid_auc_original"] is not None:
        left.axhline(r["reid_auc_original"], color="tab:red", ls="--", lw=1, label="re-id AUC, originals")
    if r["pathology_auc_original"] is not None:
        left.axhline(r["pathology_auc_original"], color="tab:blue", ls="--", lw=1,
                     label="pathology AUC, originals")
    left.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
    left.set(xlabel="filter strength", ylabel="AUC", ylim=(0.4, 1.02),
             title="Identity and findings against strength")
    left.legend(fontsize=8, loc="lower left")
    xs = [c["reid_auc_synthetic"] for c in curve]
    ys = [c["pathology_auc_synthetic"] for c in curve]
    right.plot(xs, ys, "o-", color="tab:purple")
    for x, y, st in zip(xs, ys, s):
        if x is not None and y is not None:
            right.annotate(f"s={st:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if r["reid_auc_original"] is not None and r["pathology_auc_original"] is not None:
        right.plot([r["reid_auc_original"]], [r["pathology_auc_original"]], "k*", ms=12, label="originals")
        right.legend(fontsize=8)
    right.axvline(0.5, color="grey", ls=":", lw=1)
    right.set(xlabel="re-identification AUC (lower is more private)",
              ylabel="pathology macro AUC (higher keeps more)", title="Privacy–utility curve")
    fig.suptitle(f"{r['studies']} studies of {r['patients']} patients — {r['cohort']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
